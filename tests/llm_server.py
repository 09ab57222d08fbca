"""A scriptable OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

Serves `/v1/chat/completions` and `/v1/embeddings`. Answers are deterministic functions of the
request; every request is counted, so tests can assert exact numbers of calls. Faults are
scripted per request: `server.script(Fault("429", retry_after=0.1), match="CCO")` makes the
next request whose text contains "CCO" get a 429; unmatched requests are answered normally.

Fault kinds: ok, 429, 500, stall (sleep past the client's timeout), error_body (HTTP 200 with
an error object), empty, no_choices, length, refusal, malformed (HTTP 200, not JSON),
drop (close the connection without answering), 401, quota (429 insufficient_quota).

Run standalone (for benchmarks): `python -m tests.llm_server --latency 0.1`; prints the base URL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


@dataclass(frozen=True)
class Fault:
    kind: str = "ok"
    retry_after: float | None = None
    delay: float = 0.0


def answer_for(text: str, model: str) -> str:
    """The deterministic answer the server gives (tests compare cached answers to it)."""
    digest = hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()[:16]
    return f"Description {digest} of: {text[:60]}"


def embedding_for(text: str, model: str, dim: int) -> list[float]:
    digest = hashlib.sha256(f"{model}\n{text}".encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dim)]


def _request_text(path: str, body: dict) -> tuple[str, int]:
    """All text of a request (what `match` is tested against) and its number of pictures."""
    if path.endswith("/embeddings"):
        items = body.get("input", [])
        return "\n".join([items] if isinstance(items, str) else items), 0
    texts, images = [], 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                images += 1
    return "\n".join(texts), images


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops a burst of connects (each then waits a 1 s SYN retry)


class LLMServer:
    """Thread-backed HTTP server; use as a context manager or call start()/stop()."""

    def __init__(self, latency: float = 0.0, stall_s: float = 5.0, embed_dim: int = 8) -> None:
        self.latency = latency
        self.stall_s = stall_s
        self.embed_dim = embed_dim
        self.hits: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.served = 0  # answers fully written back with HTTP 200 and no fault
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self._rules: list[tuple[str | None, deque[Fault]]] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_hits(self) -> int:
        return self.hits["/v1/chat/completions"]

    @property
    def embed_hits(self) -> int:
        return self.hits["/v1/embeddings"]

    def script(self, *faults: Fault, match: str | None = None) -> None:
        """Queue `faults` for the next requests whose text contains `match` (any request if None)."""
        with self._lock:
            self._rules.append((match, deque(faults)))

    def reset_counts(self) -> None:
        with self._lock:
            self.hits.clear()
            self.outcomes.clear()
            self.served = 0
            self.requests.clear()
            self.headers.clear()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_fault(self, text: str) -> Fault:
        for match, faults in self._rules:
            if faults and (match is None or match in text):
                return faults.popleft()
        return Fault()

    def count_served(self) -> None:
        with self._lock:
            self.served += 1

    def record(self, path: str, body: dict, headers: dict[str, str]) -> tuple[Fault, str, int]:
        text, images = _request_text(path, body)
        with self._lock:
            self.hits[path] += 1
            self.requests.append(body)
            self.headers.append(headers)
            fault = self._next_fault(text)
            self.outcomes[fault.kind] += 1
        return fault, text, images


def _chat_body(text: str, images: int, model: str, fault: Fault) -> dict:
    answer = answer_for(text, model)
    message: dict = {"role": "assistant", "content": answer, "refusal": None}
    finish = "stop"
    if fault.kind == "empty":
        message["content"] = ""
    elif fault.kind == "length":
        finish = "length"
    elif fault.kind == "refusal":
        message["content"], message["refusal"] = None, "I cannot help with that."
    choice = {"index": 0, "message": message, "finish_reason": finish}
    usage = {"prompt_tokens": len(text) // 4 + 85 * images, "completion_tokens": len(answer) // 4}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [] if fault.kind == "no_choices" else [choice],
        "usage": usage,
    }


ERRORS = {
    "429": (429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
    "500": (500, {"error": {"message": "The server had an error", "type": "server_error", "code": None}}),
    "401": (
        401,
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
    ),
    "quota": (
        429,
        {
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
    ),
}


def _handler_for(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            """Silent: tests read counters, not logs."""

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            fault, text, images = server.record(self.path, body, {k.lower(): v for k, v in self.headers.items()})
            time.sleep(server.latency + fault.delay + (server.stall_s if fault.kind == "stall" else 0))
            if fault.kind == "drop":
                self.close_connection = True
                return
            if fault.kind in ERRORS:
                status, payload = ERRORS[fault.kind]
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return self._send(status, json.dumps(payload).encode(), headers)
            if fault.kind == "malformed":
                return self._send(200, b'{"id": "chatcmpl-test", "choices": [', {})
            if fault.kind == "error_body":
                return self._send(
                    200, json.dumps({"error": {"message": "upstream overloaded", "code": 502}}).encode(), {}
                )
            model = body.get("model", "")
            if self.path.endswith("/embeddings"):
                inputs = body.get("input", [])
                inputs = [inputs] if isinstance(inputs, str) else inputs
                data = [
                    {"object": "embedding", "index": i, "embedding": embedding_for(item, model, server.embed_dim)}
                    for i, item in enumerate(inputs)
                ]
                payload = {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                }
                return self._send(200, json.dumps(payload).encode(), {})
            self._send(200, json.dumps(_chat_body(text, images, model, fault)).encode(), {})
            if fault.kind == "ok":
                server.count_served()

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with LLMServer(latency=args.latency) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
