"""What the remote adapters share: one pooled HTTP client each, and which failures earn a retry."""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypeVar

import httpx2

from vibethink.twin.context import HistoryTurn
from vibethink.twin.providers.base import ProviderUnavailable

T = TypeVar("T")

# One retry: a refused or reset connection before any answer is usually a restarting server.
ATTEMPTS: Final = 2
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def http_client(*, timeout_seconds: float, connect_timeout_seconds: float) -> httpx2.AsyncClient:
    """The provider instance's one client: a keep-alive pool, read timeout per chunk, connect timeout."""
    return httpx2.AsyncClient(
        timeout=timeout(timeout_seconds=timeout_seconds, connect_timeout_seconds=connect_timeout_seconds),
        limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0),
        follow_redirects=False,
    )


def timeout(*, timeout_seconds: float, connect_timeout_seconds: float) -> httpx2.Timeout:
    return httpx2.Timeout(timeout_seconds, connect=connect_timeout_seconds)


def is_connection_failure(exc: BaseException) -> bool:
    """True when no answer started: refused, reset before the response, or a connect timeout.

    A read timeout is not one: the server took the request and may still be working on it.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx2.ReadTimeout | httpx2.WriteTimeout | httpx2.PoolTimeout):
            return False
        if isinstance(cause, httpx2.ConnectTimeout | httpx2.ConnectError | httpx2.NetworkError):
            return True
        if isinstance(cause, httpx2.RemoteProtocolError | ConnectionError):
            return True
        cause = cause.__cause__
    return False


async def open_with_one_retry(
    open_stream: Callable[[], Awaitable[T]], *, provider: str, is_retryable: Callable[[BaseException], bool]
) -> T:
    """Opens the response; retries once when `is_retryable`, otherwise any failure is ProviderUnavailable."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await open_stream()
        except Exception as exc:
            if attempt < ATTEMPTS and is_retryable(exc):
                continue
            raise ProviderUnavailable(f"{provider}: {_describe(exc)}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def next_item(iterator: AsyncIterator[T], *, provider: str) -> T | None:
    """The stream's next item, None at its end; any failure mid-stream is ProviderUnavailable."""
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return None
    except Exception as exc:
        raise ProviderUnavailable(f"{provider}: the stream broke off ({_describe(exc)})") from exc


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    cause = exc.__cause__
    detail = f"{name} ({type(cause).__name__})" if cause is not None else name
    message = str(exc).strip()
    return f"{detail}: {message[:200]}" if message else detail


def alternating_turns(history: tuple[HistoryTurn, ...], fan_message: str) -> list[tuple[str, str]]:
    """(role, text) pairs that start with the fan and alternate, as the Messages API requires.

    A leading twin greeting is dropped and consecutive turns of one side are joined.
    """
    turns: list[tuple[str, str]] = []
    for turn in (*history, HistoryTurn("fan", fan_message)):
        role = "assistant" if turn.role == "twin" else "user"
        if not turn.content:
            continue
        if not turns and role == "assistant":
            continue
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{turn.content}")
        else:
            turns.append((role, turn.content))
    return turns


class EventReader:
    """Server-sent events parsed from a body as it arrives, a network read at a time.

    `feed` returns every event completed by one read, so a burst of chunks (a fast model, or
    several tokens in one TCP segment) is handled as one batch instead of one by one.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        text = self._pending + self._decoder.decode(chunk)
        # A trailing "\r" waits for the next read: it may be the first half of "\r\n".
        held = ""
        if text.endswith("\r"):
            text, held = text[:-1], "\r"
        lines = _LINE_BREAK.split(text)
        self._pending = lines.pop() + held  # the last piece has no line break yet
        return self._lines(lines)

    def close(self) -> list[tuple[str, str]]:
        """Whatever the body's end completes (a last event without its blank line)."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        events = self._lines(_LINE_BREAK.split(rest)) if rest else []
        if self._data:
            events.append((self._event, "\n".join(self._data)))
            self._event, self._data = "", []
        return events

    def _lines(self, lines: list[str]) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._event, "\n".join(self._data)))
                self._event, self._data = "", []
            elif line.startswith("data:"):
                self._data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith("event:"):
                self._event = line[6:].strip()
        return events


async def event_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[str, str]]]:
    """The events of an SSE body, in batches of what each network read completed."""
    reader = EventReader()
    async for chunk in chunks:
        events = reader.feed(chunk)
        if events:
            yield events
    events = reader.close()
    if events:
        yield events
