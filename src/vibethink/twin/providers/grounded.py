"""The offline default: no model and no network. It answers only from the request's passages.

Extractive and deterministic: the reply is the passages' sentences that best overlap the fan's
question, in the twin's voice (greeting on the first turn, a fitting catchphrase, the twin's
language), cited as [1], [2]. When nothing overlaps enough it says, in character, that it does not
know; it never invents.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from vibethink.twin.knowledge import Passage
from vibethink.twin.providers.base import Citation, Generation, GenerationRequest, Usage, citation_for

MODEL: Final = "grounded"
# Passages read, best first; lower-ranked ones rarely add a better sentence than these.
TOP_PASSAGES: Final = 5
# Share of the question's content words a sentence must contain to count as an answer.
MIN_OVERLAP: Final = 0.3
MAX_SENTENCES: Final = 3

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_SPACES = re.compile(r"\s+")
MAX_TITLE_CHARS: Final = 80
_ENDS_A_SENTENCE: Final = ".!?…;:,\"'»”)]"
_OPENS_A_SENTENCE: Final = '¡¿«"“'
# How the Q&A extractor writes a pair (`knowledge.ingest.extract_qa`).
_QUESTION, _ANSWER = "Q: ", "A: "
# The reply streams a sentence (with its citation mark) at a time.
_DELTA_END = re.compile(r"(?<=[.!?…\]])\s+(?!\[)")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS: Final[dict[str, frozenset[str]]] = {
    "en": _word_set(
        """a an the and or but if of at by for with about against between into through during before
        after above below to from up down in out on off over under again further then once here there
        when where why how all any both each few more most other some such no nor not only own same so
        than too very can will just should now is are was were be been being have has had having do does
        did doing i me my we our you your he him his she her it its they them their what which who whom
        this that these those am would could tell know about please much many"""
    ),
    "es": _word_set(
        """a al algo algun alguna algunas alguno algunos ante antes como con contra cual cuales cuando
        de del desde donde durante e el ella ellas ellos en entre era eran es esa esas ese eso esos esta
        estaba estan estas este esto estos fue fueron ha han hasta hay la las le les lo los mas me mi mis
        mucho muy nada ni no nos o os otra otro para pero poco por porque que quien quienes se sea ser si
        sin sobre su sus tambien te tengo tiene tu tus un una uno unos y ya yo dime cuentame sabes puedes
        decir hablame algo cual cuanto cuantos cuanta cuantas"""
    ),
}


@dataclass(frozen=True, slots=True)
class Voice:
    greeting: str
    unknown: str
    ask_about: str
    nothing_asked: str


VOICES: Final[dict[str, Voice]] = {
    "es": Voice(
        greeting="¡Hola! Soy {name}.",
        unknown="¡Uy, amigo! De eso no tengo información, y prefiero no inventar.",
        ask_about="Pregúntame sobre {topics}.",
        nothing_asked="¿Qué quieres saber?",
    ),
    "en": Voice(
        greeting="Hi! I'm {name}.",
        unknown="Oh, my friend! I don't have any information about that, and I'd rather not make it up.",
        ask_about="Ask me about {topics}.",
        nothing_asked="What would you like to know?",
    ),
}


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower case without accents, so "Mundial", "mundial" and "MUNDIÁL" match.

    Cached: a twin's passages come back turn after turn, and so do their sentences.
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(word: str) -> str:
    # Plural and common inflection endings, so "goles" meets "gol" and "titles" meets "title".
    for ending in ("iones", "ies", "es", "s", "ing", "ed"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


@lru_cache(maxsize=4096)
def terms(text: str, language: str) -> frozenset[str]:
    stop = STOPWORDS.get(language, STOPWORDS["en"])
    return frozenset(_stem(w) for w in _WORD.findall(fold(text)) if len(w) > 1 and w not in stop)


@lru_cache(maxsize=4096)
def sentences(text: str) -> tuple[tuple[str, str], ...]:
    """(sentence, the heading it sits under) for each sentence of a passage worth saying.

    Headings are never said — a title on a line of its own ("Mundiales"), the question of a Q&A
    pair ("Q: …") — but their words count for the sentences under them: "Boca Juniors." answers
    "tu equipo favorito" under "Q: ¿Cuál es tu equipo favorito?". An answer's "A: " is not said.
    """
    lines = [line for line in (_SPACES.sub(" ", raw).strip() for raw in text.split("\n")) if line]
    found: list[tuple[str, str]] = []
    heading = ""
    for n, line in enumerate(lines):
        if line.startswith(_QUESTION):
            heading = line.removeprefix(_QUESTION).strip()
            continue
        if n + 1 < len(lines) and _is_title(line, lines[n + 1]):
            heading = line
            continue
        line = line.removeprefix(_ANSWER).strip()
        found.extend((s, heading) for s in (part.strip() for part in _SENTENCE_END.split(line)) if s)
    return tuple(found)


def _is_title(line: str, following: str) -> bool:
    """A short capitalised line that ends no sentence, before a line that starts one. (A line of
    prose wrapped mid-sentence goes on in lower case and stays.)"""
    return (
        len(line) <= MAX_TITLE_CHARS
        and line[-1] not in _ENDS_A_SENTENCE
        and (line[0].isupper() or line[0].isdigit())
        and (following[0].isupper() or following[0].isdigit() or following[0] in _OPENS_A_SENTENCE)
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    score: float
    passage_rank: int
    position: int
    text: str


def _topics(expertise: Sequence[str], language: str) -> str:
    items = list(expertise[:3])
    if len(items) < 2:
        return "".join(items)
    joiner = " y " if language == "es" else " and "
    return ", ".join(items[:-1]) + joiner + items[-1]


def _stable_index(key: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % size


class GroundedProvider:
    name = "grounded"
    # The reply is composed in process, whole, before its first delta: nothing to wait for between
    # deltas, so the chat sends all of a turn's events in one write (`chat/routes.py`).
    composes_at_once = True
    # It answers the message from the passages alone: the turn need not read the conversation's history.
    reads_history = False

    async def stream(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[str]:
        reply, citations, read_words, truncated = self.compose(request)
        generation.model = MODEL
        generation.citations = citations
        generation.usage = Usage(
            input_tokens=len(request.fan_message.split()) + read_words, output_tokens=len(reply.split())
        )
        pieces = _DELTA_END.split(reply)
        for index, piece in enumerate(pieces):
            yield piece if index == len(pieces) - 1 else piece + " "
        generation.finish_reason = "length" if truncated else "stop"

    def compose(self, request: GenerationRequest) -> tuple[str, list[Citation], int, bool]:
        """(reply, citations, words read from passages, truncated?) — the whole answer, decided at once."""
        profile, context = request.profile, request.context
        language = profile.language if profile.language in VOICES else "en"
        voice = VOICES[language]
        limit = max(1, profile.max_response_length)
        opening: list[str] = []
        if request.is_first_turn:
            greeting = context.overrides.greeting or profile.greeting
            opening.append(greeting.strip() if greeting else voice.greeting.format(name=profile.name))

        question = terms(request.fan_message, language)
        blocked = [fold(name) for name in context.competitors if name.strip()]
        candidates: list[Candidate] = []
        read_words = 0
        for rank, passage in enumerate(request.passages[:TOP_PASSAGES]):
            read_words += len(passage.text.split())
            for position, (sentence, heading) in enumerate(sentences(passage.text)):
                folded = fold(sentence)
                # In a sponsor's context a sentence naming a competitor is never repeated.
                if any(name in folded for name in blocked):
                    continue
                found = terms(sentence, language)
                if heading:
                    found |= terms(heading, language)
                if not question or not found:
                    continue
                overlap = len(question & found) / len(question)
                if overlap >= MIN_OVERLAP:
                    candidates.append(Candidate(overlap, rank, position, sentence))
        candidates.sort(key=lambda c: (-c.score, c.passage_rank, c.position))

        if not candidates:
            # A question with content words that nothing answers is "I don't know", never a guess.
            closing = [voice.unknown] if question else [voice.nothing_asked]
            if profile.expertise:
                closing.append(voice.ask_about.format(topics=_topics(profile.expertise, language)))
            reply, truncated = _fit([*opening, *closing], limit)
            return reply, [], read_words, truncated

        chosen = _choose(candidates, request.passages, opening, limit)
        numbers: dict[int, int] = {}
        body: list[str] = []
        for candidate in sorted(chosen, key=lambda c: (c.passage_rank, c.position)):
            number = numbers.setdefault(candidate.passage_rank, len(numbers) + 1)
            body.append(f"{candidate.text} [{number}]")
        citations = [citation_for(n, request.passages[rank]) for rank, n in numbers.items()]
        parts = [*opening, *body]
        phrase = self._catchphrase(request, question, language)
        if phrase and len(" ".join([*parts, phrase])) <= limit:
            parts.append(phrase)
        reply, truncated = _fit(parts, limit)
        return reply, citations, read_words, truncated

    def _catchphrase(self, request: GenerationRequest, question: frozenset[str], language: str) -> str | None:
        """A catchphrase that shares a word with the question, else one picked by the question's hash.

        Only every other question (by hash) gets an unrelated one, so the twin does not repeat itself.
        """
        phrases = [p.strip() for p in request.profile.catchphrases if p.strip()]
        if not phrases:
            return None
        for phrase in phrases:
            if terms(phrase, language) & question:
                return phrase
        key = fold(request.fan_message).strip()
        if _stable_index("use:" + key, 2) == 1:
            return None
        return phrases[_stable_index(key, len(phrases))]

    async def aclose(self) -> None:
        return None


def _choose(
    ranked: Sequence[Candidate], passages: Sequence[Passage], opening: Sequence[str], limit: int
) -> list[Candidate]:
    """The best sentences that fit in `limit` characters with their citation marks."""
    chosen: list[Candidate] = []
    seen: set[str] = set()
    used = len(" ".join(opening))
    for candidate in ranked:
        if len(chosen) >= MAX_SENTENCES:
            break
        key = fold(candidate.text)
        if key in seen:
            continue
        cost = len(candidate.text) + len(" [9]") + (1 if used else 0)
        if used + cost > limit and chosen:
            continue
        chosen.append(candidate)
        seen.add(key)
        used += cost
    return chosen


def _fit(parts: Sequence[str], limit: int) -> tuple[str, bool]:
    """The parts joined, cut at a word boundary with an ellipsis when longer than `limit`."""
    text = " ".join(p for p in parts if p)
    if len(text) <= limit:
        return text, False
    cut = text[: max(0, limit - 1)]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…", True
