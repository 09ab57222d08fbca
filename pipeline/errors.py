"""The one base class for errors a user can act on: the CLI prints them without a traceback."""


class GallonError(Exception):
    """Bad input, bad params or a missing artifact; the message says what to do."""
