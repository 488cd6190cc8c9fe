"""The SSE reader the remote adapters share: the same events however the body is cut into reads."""

from __future__ import annotations

import random

import pytest

from vibethink.twin.providers.transport import EventReader

BODY = (
    b'event: message_start\r\ndata: {"x": "h\xc3\xa9llo"}\r\n\r\n'
    b"data: one\ndata: two\n\n"
    b": a comment line\n"
    b"data:no-space\r\rdata: [DONE]\n\n"
    b"data: tail without its blank line"
)
EVENTS = [
    ("message_start", '{"x": "héllo"}'),
    ("", "one\ntwo"),
    ("", "no-space"),
    ("", "[DONE]"),
    ("", "tail without its blank line"),
]


def read_in(cuts: list[int]) -> list[tuple[str, str]]:
    reader, events, start = EventReader(), [], 0
    for end in [*cuts, len(BODY)]:
        events += reader.feed(BODY[start:end])
        start = end
    return events + reader.close()


def test_one_read_gives_every_event() -> None:
    assert read_in([]) == EVENTS


@pytest.mark.parametrize("cut", range(1, len(BODY)))
def test_any_single_cut_gives_the_same_events(cut: int) -> None:
    # Cuts inside "\r\n" and inside the two bytes of "é" included.
    assert read_in([cut]) == EVENTS


def test_random_cuts_give_the_same_events() -> None:
    chooser = random.Random(20261126)
    for _ in range(500):
        cuts = sorted(chooser.sample(range(1, len(BODY)), chooser.randint(1, 20)))
        assert read_in(cuts) == EVENTS


def test_a_burst_comes_back_as_one_batch() -> None:
    reader = EventReader()
    burst = b"".join(b'data: {"n": %d}\n\n' % n for n in range(30))
    assert len(reader.feed(burst)) == 30
    assert reader.close() == []
