"""Local fake model servers that speak the OpenAI Chat Completions and Anthropic Messages wire formats.

Real HTTP/1.1 on 127.0.0.1 (random port), served from a thread of its own so a test's event loop,
a blocking benchmark or another process can all call it. Streams are chunked transfer encoding
carrying server-sent events, as the real services send them.

Modes:
- `normal`: answers at once.
- `slow`: waits `chunk_delay` seconds before each streamed chunk (and before a JSON answer).
- `error`: answers HTTP `status` (500 by default) with the service's JSON error body.
- `drop`: sends the headers and `drop_after` chunks, then cuts the connection mid-stream.
`refuse_next` (any mode): the next N connections are reset before any response, like a refused one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["normal", "slow", "error", "drop"]

DEFAULT_REPLY = "¡Golazo! Messi la clavó en el ángulo y el estadio explotó de alegría."


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeModelServer:
    reply: str = DEFAULT_REPLY
    mode: Mode = "normal"
    chunk_delay: float = 0.0
    status: int = 500
    drop_after: int = 2
    refuse_next: int = 0
    # Words per streamed delta; 1 gives one SSE event per word.
    words_per_chunk: int = 1
    send_usage: bool = True
    # Writes a whole stream at once (a zero-latency model): the client reads it in one or two reads.
    burst: bool = False
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeModelServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, self.host, 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-model-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def reset(self) -> None:
        """Back to a normal, answering server with nothing recorded (between tests)."""
        self.reply = DEFAULT_REPLY
        self.mode = "normal"
        self.chunk_delay = 0.0
        self.status = 500
        self.drop_after = 2
        self.refuse_next = 0
        self.words_per_chunk = 1
        self.send_usage = True
        self.burst = False
        self.requests.clear()
        self.connections = 0

    # -- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refuse_next > 0:
            self.refuse_next -= 1
            _reset(writer)
            return
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                keep_open = await self._respond(request, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Shutdown: end quietly so the stream machinery has no cancelled task to report.
            writer.transport.abort()
            return
        finally:
            if not writer.is_closing():
                writer.close()

    async def _respond(self, request: Recorded, writer: asyncio.StreamWriter) -> bool:
        if request.path.endswith("/chat/completions"):
            flavour = "openai"
        elif request.path.endswith("/messages"):
            flavour = "anthropic"
        else:
            await _send_json(writer, 404, {"error": {"message": f"no route {request.path}"}})
            return True
        if self.mode == "error":
            await _send_json(writer, self.status, _error_body(flavour, self.status))
            return True
        if not request.body.get("stream"):
            if self.mode == "slow":
                await asyncio.sleep(self.chunk_delay)
            body = _openai_json(self, request) if flavour == "openai" else _anthropic_json(self, request)
            await _send_json(writer, 200, body)
            return True
        events = _openai_events(self, request) if flavour == "openai" else _anthropic_events(self, request)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        for index, event in enumerate(events):
            if self.mode == "drop" and index >= self.drop_after:
                _reset(writer)
                return False
            if self.mode == "slow":
                await asyncio.sleep(self.chunk_delay)
            payload = event.encode()
            writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            if not self.burst:
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    # -- what the model says -----------------------------------------------------------------------

    def deltas(self) -> list[str]:
        words = self.reply.split(" ")
        size = max(1, self.words_per_chunk)
        groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        return [g + (" " if i < len(groups) - 1 else "") for i, g in enumerate(groups)]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP reset (SO_LINGER 0): the client sees the connection refused or torn."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> Recorded | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    raw = await reader.readexactly(length) if length else b""
    body = json.loads(raw) if raw else {}
    return Recorded(method, path, headers, body)


async def _send_json(writer: asyncio.StreamWriter, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()


def _error_body(flavour: str, status: int) -> dict[str, Any]:
    if flavour == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": f"fake failure {status}"}}
    return {"error": {"message": f"fake failure {status}", "type": "server_error", "code": None}}


def _words(text: str) -> int:
    return len(text.split())


def _prompt_words(body: dict[str, Any]) -> int:
    system = body.get("system")
    total = _words(system) if isinstance(system, str) else 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            total += _words(content)
    return total


def _openai_json(server: FakeModelServer, request: Recorded) -> dict[str, Any]:
    model = request.body.get("model", "fake-model")
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": server.reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": _prompt_words(request.body),
            "completion_tokens": _words(server.reply),
            "total_tokens": _prompt_words(request.body) + _words(server.reply),
        },
    }


def _openai_events(server: FakeModelServer, request: Recorded) -> Iterator[str]:
    model = request.body.get("model", "fake-model")
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> str:
        choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        data: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if usage is not None:
            data["usage"] = usage
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for delta in server.deltas():
        yield chunk({"content": delta})
    yield chunk({}, finish="stop")
    wants_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
    if server.send_usage and wants_usage:
        prompt = _prompt_words(request.body)
        completion = _words(server.reply)
        yield chunk(
            {},
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        )
    yield "data: [DONE]\n\n"


def _anthropic_json(server: FakeModelServer, request: Recorded) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model", "fake-claude"),
        "content": [{"type": "text", "text": server.reply}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": _prompt_words(request.body), "output_tokens": _words(server.reply)},
    }


def _anthropic_events(server: FakeModelServer, request: Recorded) -> Iterator[str]:
    model = request.body.get("model", "fake-claude")

    def event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data}, ensure_ascii=False)}\n\n"

    input_tokens = _prompt_words(request.body) if server.send_usage else 0
    yield event(
        "message_start",
        {
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            }
        },
    )
    yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    yield event("ping", {})
    for delta in server.deltas():
        yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": delta}})
    yield event("content_block_stop", {"index": 0})
    output_tokens = _words(server.reply) if server.send_usage else 0
    yield event(
        "message_delta",
        {
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )
    yield event("message_stop", {})


@contextmanager
def running_fake(**options: Any) -> Iterator[FakeModelServer]:
    server = FakeModelServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


if __name__ == "__main__":
    # `python -m tests.twin.fakes` serves until interrupted (for benchmarks from another process).
    with running_fake(burst="--burst" in sys.argv) as fake:
        print(fake.openai_base_url, flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
