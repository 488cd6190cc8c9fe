"""Chunks follow paragraphs and sentences, stay near their target size, overlap a little, never vary."""

from __future__ import annotations

import itertools

from vibethink.twin.knowledge import chunking, ingest
from vibethink.twin.models import SourceKind


def sentence(n: int) -> str:
    return f"Sentence number {n} talks about the derby, the goals and the fans in the stadium."


def test_short_text_is_one_chunk() -> None:
    assert chunking.chunk_text("Hola.\n\nMundo.") == ["Hola.\nMundo."]


def test_long_text_is_split_on_sentences_near_the_target_size() -> None:
    text = " ".join(sentence(n) for n in range(60))
    chunks = chunking.chunk_text(text)
    assert len(chunks) > 4
    assert all(len(c) <= chunking.TARGET_CHARS + chunking.OVERLAP_CHARS for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    for n in range(60):
        assert any(sentence(n) in c for c in chunks)


def test_consecutive_chunks_overlap_by_a_sentence() -> None:
    chunks = chunking.chunk_text(" ".join(sentence(n) for n in range(40)))
    for before, after in itertools.pairwise(chunks):
        last = before.splitlines()[-1]
        assert after.startswith(last)


def test_a_heading_starts_the_chunk_of_its_section() -> None:
    body = " ".join(sentence(n) for n in range(7))
    chunks = chunking.chunk_text(f"Early years\n\n{body}\n\nThe World Cup\n\n{body}")
    assert chunks[0].startswith("Early years")
    assert any(c.startswith("The World Cup") for c in chunks)
    assert not any(c.endswith("The World Cup") for c in chunks)


def test_a_word_longer_than_a_chunk_is_cut() -> None:
    chunks = chunking.chunk_text("x" * 2000)
    assert [len(c) for c in chunks] == [800, 800, 400]


def test_chunking_is_deterministic() -> None:
    text = "\n\n".join(" ".join(sentence(p * 10 + n) for n in range(p + 1)) for p in range(12))
    assert chunking.chunk_text(text) == chunking.chunk_text(text)


def test_records_are_one_chunk_each_and_long_ones_keep_their_question() -> None:
    long_answer = " ".join(sentence(n) for n in range(40))
    text = ingest.extract(
        SourceKind.QA,
        [{"question": "Short?", "answer": "Yes."}, {"question": "Tell me everything", "answer": long_answer}],
    )
    chunks = chunking.chunk_source(SourceKind.QA, text)
    assert chunks[0] == "Q: Short?\nA: Yes."
    assert len(chunks) > 2
    assert all(c.startswith("Q: Tell me everything") for c in chunks[1:])
