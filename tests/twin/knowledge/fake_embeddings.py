"""A local server speaking OpenAI's `POST /v1/embeddings`, with deterministic bag-of-words vectors.

Texts sharing words get close vectors, so vector search can be tested for meaning, not only shape.
Real HTTP on 127.0.0.1 from a thread of its own; `fail_next` answers 500 to the next N requests,
`force_dimensions` answers vectors of the wrong size.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMENSIONS = 384


def bag_of_words(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return [x / norm for x in vector]


@dataclass
class FakeEmbeddings:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_next: int = 0
    # Answer vectors of this size whatever was asked (a misconfigured model).
    force_dimensions: int | None = None


@contextmanager
def fake_embeddings_server() -> Iterator[FakeEmbeddings]:
    state = FakeEmbeddings()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/embeddings":
                self._answer(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                return
            if state.fail_next > 0:
                state.fail_next -= 1
                self._answer(500, {"error": {"message": "overloaded", "type": "server_error"}})
                return
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            dimensions = state.force_dimensions or int(body.get("dimensions") or 1536)
            data = [
                {"object": "embedding", "index": i, "embedding": bag_of_words(text, dimensions)}
                for i, text in reversed(list(enumerate(inputs)))
            ]
            usage = sum(len(t.split()) for t in inputs)
            self._answer(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": usage, "total_tokens": usage},
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
