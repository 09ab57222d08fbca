"""Typed, validated view of `params.yaml`: the one place where defaults and allowed values live.

Every stage loads its params through `load_params`, so a typo, a wrong type or an
out-of-range value fails before any work starts, with one message naming the key.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import GallonError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEVER_ECHOED = {"api_key_env"}  # a key pasted by mistake must not reach a log
MOLECULENET_NAMES = ("bace", "bbbp", "clintox", "hiv", "esol", "freesolv", "lipo", "tox21", "sider")


class ParamsError(GallonError, ValueError):
    """A params.yaml problem, phrased for the person editing the file."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str | None) -> str | None:
    """Only http(s) with a host: file://, ftp:// or a bare path could read or send data somewhere unexpected."""
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host (got {value!r})")
    return value.strip()


def _env_var_name(value: str) -> str:
    """The *name* of the variable holding the key; the message never echoes the value, in case it is the key."""
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the name of an environment variable (letters, digits, _), such as OPENAI_API_KEY; "
            "never put the key itself in params.yaml"
        )
    return value


class CsvSource(Section):
    """A user's own CSV file instead of a MoleculeNet set."""

    path: str
    smiles_column: str = "smiles"
    target_columns: list[str] = Field(min_length=1)
    task_type: Literal["classification", "regression"]

    @field_validator("path")
    @classmethod
    def _inside_data_folder(cls, value: str) -> str:
        """dvc.yaml tracks `data/` as prepare's input: a CSV elsewhere would change unseen."""
        parts = PurePosixPath(value.replace("\\", "/")).parts
        if len(parts) < 2 or parts[0] != "data" or ".." in parts:
            raise ValueError(f"put the CSV in the project's data/ folder and name it data/<file> (got {value!r})")
        return value


class DatasetParams(Section):
    name: str = "bace"
    csv: CsvSource | None = None
    fragments: Literal["keep_all", "largest", "strip_salts"] = "keep_all"
    duplicates: Literal["drop_conflicting", "keep_first", "mean"] = "drop_conflicting"
    strict: bool = False

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "csv" and value not in MOLECULENET_NAMES:
            raise ValueError(f"unknown dataset {value!r}; allowed: {', '.join(MOLECULENET_NAMES)} or 'csv'")
        return value

    @model_validator(mode="after")
    def _csv_when_named(self) -> DatasetParams:
        if self.name == "csv" and self.csv is None:
            raise ValueError(
                "dataset.name is 'csv' but dataset.csv (path, smiles_column, target_columns, task_type) is missing"
            )
        return self


class SplitParams(Section):
    method: Literal["scaffold", "random_scaffold", "random"] = "scaffold"
    train: float = Field(0.8, gt=0, lt=1)
    valid: float = Field(0.1, gt=0, lt=1)
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _room_for_test(self) -> SplitParams:
        if self.train + self.valid >= 1:
            raise ValueError(
                f"split.train + split.valid must be < 1 to leave a test part (got {self.train} + {self.valid})"
            )
        return self


class RenderParams(Section):
    size: int = Field(500, ge=64, le=4096)
    workers: int = Field(0, ge=0, description="0 = all cores")


class DescribeParams(Section):
    provider: Literal["offline", "openai"] = "offline"
    model: str = "rdkit-descriptors"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(700, ge=1)
    image: bool = True
    image_detail: Literal["low", "high", "auto"] = "low"
    bond_list: bool = True
    concurrency: int = Field(8, ge=1, le=1024)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_base_s: float = Field(1.0, gt=0, description="first backoff delay; doubles per retry, with jitter")
    retry_max_s: float = Field(60.0, gt=0, description="longest backoff delay (a server's Retry-After wins)")
    max_requests: int | None = Field(None, ge=0)
    max_cost_usd: float | None = Field(None, ge=0)
    price_per_1k_prompt_tokens: float = Field(0.0, ge=0)
    price_per_1k_completion_tokens: float = Field(0.0, ge=0)
    max_failure_fraction: float = Field(0.05, ge=0, le=1)
    flush_every: int = Field(50, ge=1)
    flush_seconds: float = Field(10.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return _env_var_name(value)


class EmbedParams(Section):
    provider: Literal["local", "openai"] = "local"
    model: str = "all-MiniLM-L6-v2"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = Field(64, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return _env_var_name(value)


class TrainParams(Section):
    """Shared by every model trained: seeds and the optimiser loop."""

    seeds: list[NonNegativeInt] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    epochs: int = Field(800, ge=1)
    patience: int = Field(100, ge=1, description="epochs without validation gain before stopping")
    batch_size: int = Field(0, ge=0, description="0 = full batch, as in the paper")
    threads: int = Field(1, ge=0, description="torch CPU threads; 1 gives the same numbers on any machine, 0 = all")

    workers: int = Field(0, ge=0, description="seeds trained side by side in processes; 0 = one per core")

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct (got {value}); each seed writes its own seed_N outputs")
        return value


class TeacherParams(Section):
    model: Literal["gcn", "gine"] = "gcn"
    hidden: int = Field(32, ge=1)
    layers: int = Field(3, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)
    lr: float = Field(0.005, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class StudentParams(Section):
    """The edge-free student: the paper's per-atom MLP, or graph-free molecule features."""

    inputs: str = Field("atoms", description="atoms, or '+'-joined blocks of fingerprint, descriptors, pooled_atoms")
    hidden: int = Field(32, ge=1)
    layers: int = Field(3, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    lr: float = Field(0.005, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    fingerprint_radius: int = Field(2, ge=0)
    fingerprint_bits: int = Field(2048, ge=8)

    @field_validator("inputs")
    @classmethod
    def _known_blocks(cls, value: str) -> str:
        blocks = value.split("+")
        allowed = ("fingerprint", "descriptors", "pooled_atoms")
        if value == "atoms" or (all(block in allowed for block in blocks) and len(set(blocks)) == len(blocks)):
            return value
        raise ValueError(f"got {value!r}; allowed: atoms, or any '+'-joined mix of {', '.join(allowed)}")


class PriorParams(Section):
    """The LLM-prior head: description embedding -> prediction."""

    hidden: int = Field(32, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    lr: float = Field(0.001, gt=0)
    weight_decay: float = Field(0.0001, ge=0)


class DistillParams(Section):
    alpha: float = Field(0.1, ge=0, description="weight of the teacher term")
    beta: float = Field(0.1, ge=0, description="weight of the LLM-prior term")
    temperature: float = Field(1.0, gt=0)
    terms: Literal["paper", "logits", "representations", "both"] = Field(
        "paper",
        description="paper: logits for classification, representations for regression",
    )
    student: StudentParams = StudentParams()
    prior: PriorParams = PriorParams()


class Params(Section):
    dataset: DatasetParams = DatasetParams()
    split: SplitParams = SplitParams()
    render: RenderParams = RenderParams()
    describe: DescribeParams = DescribeParams()
    embed: EmbedParams = EmbedParams()
    train: TrainParams = TrainParams()
    teacher: TeacherParams = TeacherParams()
    distill: DistillParams = DistillParams()


def _describe_item(item: dict) -> str:
    """One error as `key: what is wrong (got value)`, with a hint for YAML's yes/no/on/off booleans."""
    key = ".".join(str(part) for part in item["loc"]) or "(top level)"
    if item["type"] == "extra_forbidden":
        return f"  {key}: unknown key; check the spelling against the documented params"
    message = item["msg"]
    value = item.get("input")
    if item["type"] not in ("missing", "value_error") and not _NEVER_ECHOED.intersection(map(str, item["loc"])):
        message += f" (got {value!r:.80})"
    if isinstance(value, bool) and item["type"] != "bool_type":
        message += "; YAML reads yes/no/on/off/true/false as booleans: quote the value"
    return f"  {key}: {message}"


def _describe_error(error: ValidationError) -> str:
    return "\n".join(_describe_item(item) for item in error.errors())


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load keeps the last of two equal keys without a word; a hand-edited file deserves an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_params(raw: dict | None) -> Params:
    """Validate an already-loaded mapping; raises ParamsError naming every bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as error:
        raise ParamsError(f"params.yaml is invalid:\n{_describe_error(error)}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root or pass --params")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {error}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path} must hold a mapping of sections (dataset, split, ...), got {type(raw).__name__}")
    return parse_params(raw)
