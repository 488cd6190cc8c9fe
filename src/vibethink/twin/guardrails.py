"""Guardrails: every decision names its rule and reason. The rules themselves live in this module.

Input checks run on every fan message before anything else, so they are pure functions over text
normalised once (casefolded, accents and common obfuscations undone) against precompiled patterns.
The output guard sits between the model's stream and the fan: it holds back just enough text to
catch a name split across deltas, rewrites what a context forbids and stops at the length limit.
The word lists and phrases are data, in `twin/guardrail_data/`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import enum
import functools
import html
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from vibethink.twin.context import ConversationContext
from vibethink.twin.guardrail_data import injection, lexicons, phrases, topics
from vibethink.twin.profile import PersonalityProfile


class Stage(enum.StrEnum):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


class Action(enum.StrEnum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    REWRITE = "REWRITE"
    TRUNCATE = "TRUNCATE"


@dataclass(frozen=True, slots=True)
class Decision:
    stage: Stage
    rule: str  # stable id, e.g. "input.prompt_injection", "output.competitor_mention"
    action: Action
    reason: str
    excerpt: str = ""

    @property
    def blocks(self) -> bool:
        return self.action is Action.BLOCK

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "rule": self.rule,
            "action": self.action.value,
            "reason": self.reason,
            "excerpt": self.excerpt,
        }


class Rule(enum.StrEnum):
    PROMPT_INJECTION = "input.prompt_injection"
    BANNED_TOPIC = "input.banned_topic"
    CONTENT_RATING = "input.content_rating"
    ABUSE = "input.abuse"
    COMPETITOR_IN_INPUT = "input.competitor_mention"
    COMPETITOR = "output.competitor_mention"
    BANNED_TOPIC_IN_OUTPUT = "output.banned_topic"
    RATING_IN_OUTPUT = "output.content_rating"
    MAX_LENGTH = "output.max_length"


def first_block(decisions: Iterable[Decision]) -> Decision | None:
    return next((d for d in decisions if d.blocks), None)


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------

_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u2060\u2061\u2062\u2063\u2064\ufeff"
)
# Letters from other scripts that look Latin: "Рерsі" must read as "pepsi".
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "α": "a",
    "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "æ": "ae", "œ": "oe", "ß": "ss", "þ": "th",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'", "“": '"', "”": '"', "„": '"',
    "«": '"', "»": '"', "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "…": "...",
    "¡": "", "¿": "",
}  # fmt: skip
_LEET = str.maketrans("013457@$", "oieastas")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")
# Single letters or digits separated by one space or mark: "p e p s i", "p.e.p.s.i", "1-g-n-o-r-e".
_SPACED_RE = re.compile(
    r"(?<![a-z0-9@$])[a-z0-9@$]([ .\-_*+/:,])[a-z0-9@$](?:\1[a-z0-9@$]){1,}(?![a-z0-9@$])"
)
_SPACED_SEPARATORS = str.maketrans("", "", " .-_*+/:,")
# Leetspeak only inside words that hold a letter, so "2-1" and "$100" stay as they are.
_LEET_RE = re.compile(r"(?<![a-z0-9@$])(?=[a-z0-9@$]*[a-z])(?=[a-z0-9@$]*[013457@$])[a-z0-9@$]+")
_LEET_ANY_RE = re.compile(r"[013457@$]")
_INNER_BANG_RE = re.compile(r"(?<=[a-z])[!|](?=[a-z])")
_COMBINING_RE = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_REPEATED_LETTER_RE = re.compile(r"([a-z])\1{2,}")
_REPEATED_MARK_RE = re.compile(r"([^\w\s])\1+")
# Runs of whitespace other than a single space; a single space is already what normalising makes.
_SPACE_RE = re.compile(r"\s{2,}|[^\S ]")


@functools.lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One non-ASCII character as plain lower-case ASCII where it has a Latin reading."""
    if char in _INVISIBLE:
        return ""
    if char in _HOMOGLYPHS:
        return _HOMOGLYPHS[char]
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(_HOMOGLYPHS.get(c, c) for c in stripped)


_RUN_OF_THREE_RE = re.compile(r"([a-z])\1\1")


def _has_run_of_three(text: str) -> bool:
    # One regex scan: measured about three times faster than a substring test per letter present.
    return _RUN_OF_THREE_RE.search(text) is not None


def _lower(text: str) -> str:
    lowered = text.lower()
    # str.lower is fast; a character it would lengthen (rare after folding) falls back to ASCII only.
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


def _fold_match(match: re.Match[str]) -> str:
    return _fold(match.group())


def _leet_match(match: re.Match[str]) -> str:
    return match.group().translate(_LEET)


def _spaced_match(match: re.Match[str]) -> str:
    return match.group().translate(_SPACED_SEPARATORS)


def normalise(text: str, *, join_spaced: bool = True) -> str:
    """The text as the rules read it: lower-case ASCII words, obfuscations undone, single spaces.

    `join_spaced=False` keeps "p e p s i" apart, for patterns that allow separators themselves and
    must not see a neighbouring one-letter word ("y", "a") glued on.
    """
    if not text.isascii():
        # Whole-string NFKD and mark removal run in C; what is left over is folded a character at a time.
        text = _COMBINING_RE.sub("", unicodedata.normalize("NFKD", text))
        if not text.isascii():
            text = _NON_ASCII_RE.sub(_fold_match, text)
    text = _lower(text)
    if join_spaced:
        text = _SPACED_RE.sub(_spaced_match, text)
    if _LEET_ANY_RE.search(text):
        text = _LEET_RE.sub(_leet_match, text)
    if "!" in text or "|" in text:
        text = _INNER_BANG_RE.sub("i", text)
    if _has_run_of_three(text):
        text = _REPEATED_LETTER_RE.sub(r"\1", text)
    text = _REPEATED_MARK_RE.sub(r"\1", text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class NormalisedText:
    """Normalised text and, for each of its characters, the index of the original one it came from."""

    text: str
    origin: tuple[int, ...]


def _mapped_sub(
    pattern: re.Pattern[str],
    text: str,
    origin: list[int],
    replace: Callable[[re.Match[str]], tuple[str, list[int]]],
) -> tuple[str, list[int]]:
    parts: list[str] = []
    mapping: list[int] = []
    last = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        new, offsets = replace(match)
        if new == match.group():
            continue
        parts.append(text[last:start])
        mapping.extend(origin[last:start])
        parts.append(new)
        mapping.extend(origin[start + o] for o in offsets)
        last = end
    if last == 0 and not parts:
        return text, origin
    parts.append(text[last:])
    mapping.extend(origin[last:])
    return "".join(parts), mapping


def _mapped_fold(match: re.Match[str]) -> tuple[str, list[int]]:
    folded = _fold(match.group())
    return folded, [0] * len(folded)


def _mapped_same_length(
    fn: Callable[[re.Match[str]], str],
) -> Callable[[re.Match[str]], tuple[str, list[int]]]:
    def replace(match: re.Match[str]) -> tuple[str, list[int]]:
        new = fn(match)
        return new, list(range(len(new)))

    return replace


def _mapped_spaced(match: re.Match[str]) -> tuple[str, list[int]]:
    kept = [(i, c) for i, c in enumerate(match.group()) if c not in " .-_*+/:,"]
    return "".join(c for _, c in kept), [i for i, _ in kept]


def _mapped_first(match: re.Match[str]) -> tuple[str, list[int]]:
    return match.group(1), [0]


def _mapped_space(match: re.Match[str]) -> tuple[str, list[int]]:
    return " ", [0]


_MAPPED_LEET = _mapped_same_length(_leet_match)
_MAPPED_BANG = _mapped_same_length(lambda m: "i")


def normalise_mapped(text: str, *, join_spaced: bool = True) -> NormalisedText:
    """`normalise`, keeping where each character came from, so a match can be rewritten in place."""
    origin = list(range(len(text)))
    if not text.isascii():
        text, origin = _mapped_sub(_NON_ASCII_RE, text, origin, _mapped_fold)
    text = _lower(text)
    if join_spaced:
        text, origin = _mapped_sub(_SPACED_RE, text, origin, _mapped_spaced)
    if _LEET_ANY_RE.search(text):
        text, origin = _mapped_sub(_LEET_RE, text, origin, _MAPPED_LEET)
    if "!" in text or "|" in text:
        text, origin = _mapped_sub(_INNER_BANG_RE, text, origin, _MAPPED_BANG)
    if _has_run_of_three(text):
        text, origin = _mapped_sub(_REPEATED_LETTER_RE, text, origin, _mapped_first)
    text, origin = _mapped_sub(_REPEATED_MARK_RE, text, origin, _mapped_first)
    text, origin = _mapped_sub(_SPACE_RE, text, origin, _mapped_space)
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return NormalisedText(text[start:end], tuple(origin[start:end]))


_WORD_RE = re.compile(r"[a-z0-9]+")


def _words(normalised: str) -> set[str]:
    """The distinct words of a normalised text ("pepsi's" gives "pepsi" and "s")."""
    return set(_WORD_RE.findall(normalised))


# --------------------------------------------------------------------------------------------------
# Word variants: simple plural and stem forms, English and Spanish
# --------------------------------------------------------------------------------------------------


def _variants(word: str) -> set[str]:
    """The forms of one normalised word that should match it ("apuestas" -> "apuesta", "apuesto"…)."""
    forms = {word}
    if len(word) < 3 or not word.isalpha():
        return forms
    stems = {word}
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stems.add(word[: -len(suffix)] + ("y" if suffix == "ies" else ""))
    if word.endswith("ing") and len(word) >= 7:
        root = word[:-3]
        if root[-1] == root[-2]:
            root = root[:-1]
        if len(root) >= 4:
            stems.update({root, root + "e"})
    if word.endswith("ed") and len(word) >= 5:
        stems.update({word[:-2], word[:-1]})
    if word.endswith("ics"):
        stems.add(word[:-1])
    for stem in list(stems):
        if len(stem) < 4:
            # Short roots ("bet") take plurals only: "beta" or "better" must not match.
            forms.update({stem, stem + "s"})
            continue
        forms.update({stem, stem + "s", stem + "es"})
        if stem.endswith("y") and stem[-2:-1] not in "aeiou":
            forms.add(stem[:-1] + "ies")
        if stem.endswith("o"):
            forms.update({stem[:-1] + "a", stem[:-1] + "as", stem + "s"})
        if stem.endswith("z"):
            forms.add(stem[:-1] + "ces")
        if stem.endswith("cion"):
            forms.add(stem + "es")
        if stem.endswith("ic"):
            forms.update(
                {
                    stem + "al",
                    stem + "ian",
                    stem + "ians",
                    stem + "s",
                    stem + "a",
                    stem + "as",
                    stem + "o",
                    stem + "os",
                }
            )
        if stem[-1] not in "aeiouy" and len(stem) >= 5:
            forms.update({stem + "ing", stem + "ed", stem + "er", stem + "ers"})
        if stem.endswith("e"):
            forms.update({stem[:-1] + "ing", stem + "d", stem + "r", stem + "rs"})
    return {f for f in forms if len(f) >= 3}


def _phrase_pattern(phrase: str) -> str:
    words = phrase.split()
    parts = [
        "(?:" + "|".join(sorted(map(re.escape, _variants(w)), key=len, reverse=True)) + ")" for w in words
    ]
    return r"\b" + r"[\s\-]?".join(parts) + r"\b"


# --------------------------------------------------------------------------------------------------
# Banned topics
# --------------------------------------------------------------------------------------------------

_FAMILY_INDEX: dict[str, tuple[str, ...]] = {}
for _family in topics.TOPIC_FAMILIES:
    for _member in _family:
        for _form in _variants(_member) if " " not in _member else {_member}:
            _FAMILY_INDEX.setdefault(_form, _family)


@dataclass(frozen=True, slots=True)
class _TopicMatcher:
    words: dict[str, str]  # normalised word form -> the topic as the talent wrote it
    phrases: re.Pattern[str] | None  # one group per multi-word term
    phrase_topics: tuple[str, ...]
    phrase_starts: frozenset[str]  # first words of the phrases: no phrase can match without one

    def find(self, normalised: str, words: set[str] | None = None) -> tuple[str, str] | None:
        """(topic, what matched) for the first banned topic in the text, or None."""
        if not self.words and self.phrases is None:
            return None
        found = words if words is not None else _words(normalised)
        hits = self.words.keys() & found  # a set intersection in C, not a loop over the text's words
        if hits:
            word = min(hits)
            return self.words[word], word
        if self.phrases is not None and not self.phrase_starts.isdisjoint(found):
            match = self.phrases.search(normalised)
            if match and match.lastindex:
                return self.phrase_topics[match.lastindex - 1], match.group()
        return None


@functools.lru_cache(maxsize=1024)
def _topic_matcher(banned_topics: tuple[str, ...]) -> _TopicMatcher:
    words: dict[str, str] = {}
    phrases: dict[str, str] = {}
    for topic in banned_topics:
        key = normalise(topic)
        if not key:
            continue
        terms = {key}
        for form in _variants(key) if " " not in key else {key}:
            terms.update(_FAMILY_INDEX.get(form, ()))
        for term in sorted(terms):
            term = term.replace("-", " ")
            if " " in term:
                phrases.setdefault(term, topic)
            else:
                for form in _variants(term):
                    words.setdefault(form, topic)
    if not phrases:
        return _TopicMatcher(words, None, (), frozenset())
    pattern = re.compile("|".join(f"({_phrase_pattern(p)})" for p in phrases))
    starts = frozenset(form for p in phrases for form in _variants(p.split()[0]))
    return _TopicMatcher(words, pattern, tuple(phrases.values()), starts)


# --------------------------------------------------------------------------------------------------
# Content rating
# --------------------------------------------------------------------------------------------------

_RATING_NAMES = {
    lexicons.G: "G",
    lexicons.PG: "PG",
    lexicons.PG13: "PG-13",
    lexicons.R: "R",
    lexicons.NEVER: "any",
}


def _rating_words() -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for (category, level), words in lexicons.RATING_WORDS.items():
        for word in words:
            for form in (word, word + "s") if not word.endswith("s") else (word,):
                if form not in table or table[form][1] < level:
                    table[form] = (category, level)
    return table


_RATING_WORDS = _rating_words()
_RATING_PHRASES = tuple(
    (category, level, frozenset(triggers.split()), re.compile(pattern))
    for category, level, triggers, pattern in lexicons.RATING_PHRASES
)


# Every phrase's trigger words: a text with none of them needs no phrase looked at.
_RATING_TRIGGERS = frozenset().union(*(triggers for _, _, triggers, _ in _RATING_PHRASES))


def rating_level(rating: str) -> int:
    return lexicons.RATING_LEVELS.get(rating.strip().upper(), lexicons.PG)


def _rating_hits(normalised: str, words: set[str]) -> list[tuple[str, int, str]]:
    """(category, level, term) for every rated term in the text."""
    hits = [(*_RATING_WORDS[w], w) for w in sorted(_RATING_WORDS.keys() & words)]
    if _RATING_TRIGGERS.isdisjoint(words):
        return hits
    for category, level, triggers, pattern in _RATING_PHRASES:
        if triggers.isdisjoint(words):
            continue
        match = pattern.search(normalised)
        if match:
            hits.append((category, level, match.group()))
    return hits


def _worst_above(hits: list[tuple[str, int, str]], allowed: int) -> tuple[str, int, str] | None:
    above = [h for h in hits if h[1] > allowed]
    return max(above, key=lambda h: h[1]) if above else None


# --------------------------------------------------------------------------------------------------
# Abuse
# --------------------------------------------------------------------------------------------------

_INSULT_ALTERNATION = "|".join(sorted(map(re.escape, set(lexicons.INSULTS)), key=len, reverse=True))
_INSULT_FILLERS = (
    r"(?:(?:a|an|so|such|the|most|biggest|total|complete|absolute|real|fucking|fuckin|damn|stupid|little|big"
    r"|fat"
    r"|useless|un|una|muy|tan|el|la|mas|puto|puta|pinche|maldito|maldita|gran|grandisimo|grandisima|completo"
    r"|completa|total|autentico|autentica|pedazo de|just|nothing but|only|such an?|un poco|bastante) ){0,3}"
)
_DIRECTED_INSULT_RE = re.compile(
    r"\b(?:you are|you're|youre|ur|u r|r u|eres|sos|tu eres|vos sos|pedazo de|que eres) "
    + _INSULT_FILLERS
    + rf"(?:{_INSULT_ALTERNATION})\b"
    + r"|\b(?:you|u) (?:fucking |fuckin |stupid |little |big |fat |absolute |complete |useless |pinche"
    + r" |puto )?"
    + rf"(?:{_INSULT_ALTERNATION})\b"
    + rf"|\b(?:{_INSULT_ALTERNATION}) (?:bot|ai|chatbot|machine|robot|twin|maquina|ia|clone|clon)\b"
)
_OTHER_INSULT_RE = re.compile(
    r"\b(?:is|are|was|were|es|son|era|eran|fue|fueron|what an?|que|vaya|menudo|menuda) "
    + _INSULT_FILLERS
    + rf"(?:{_INSULT_ALTERNATION})\b"
)
_DIRECT_ABUSE_RE = re.compile(lexicons.DIRECT_ABUSE)
_THREAT_RE = re.compile(lexicons.THREATS)
_SLURS = frozenset(lexicons.SLURS)
_INSULTS = frozenset(lexicons.INSULTS)


# --------------------------------------------------------------------------------------------------
# Prompt injection
# --------------------------------------------------------------------------------------------------

_Pattern = tuple[str, frozenset[str], re.Pattern[str]]
_INJECTION: tuple[_Pattern, ...] = tuple(
    (kind, frozenset(triggers.split()), re.compile(pattern)) for kind, triggers, pattern in injection.PATTERNS
)
_INJECTION_CORE: tuple[_Pattern, ...] = tuple(
    (kind, frozenset(triggers.split()), re.compile(pattern))
    for kind, triggers, pattern in injection.CORE_PATTERNS
)
_CORE_TRIGGERS = frozenset().union(*(triggers for _, triggers, _ in _INJECTION_CORE))
_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")
_CORE_TRIGGERS_ROT13 = frozenset(t.translate(_ROT13) for t in _CORE_TRIGGERS)
_CORE_TRIGGERS_BACKWARDS = frozenset(t[::-1] for t in _CORE_TRIGGERS)
_MARKS = "<[{#"
# Instructions with the spaces taken out ("ignoreallpreviousinstructions", or spaced letters joined).
_COMPACT_RE = re.compile(
    r"(?:ignor|disregard|forget|olvid|omit|bypass|overrid)\w{0,40}?(?:instruction|instruccion|rules|reglas"
    r"|prompt"
    r"|guidelines|directriz|directrices)|systemprompt|promptdelsistema|developermode|modedesarrollador"
    r"|modode(?:sarrollador|sarollador)|doanythingnow|jailbr(?:eak|oken)|youarenow(?:dan|an?(?:unrestricted"
    r"|unfiltered|evil))"
    r"|actas(?:dan|an?(?:unrestricted|unfiltered|evil))|revealyour|showmeyour(?:prompt|instructions)"
)
_LONG_RUN_RE = re.compile(r"[a-z]{18,}")
_BASE64_RE = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX_RE = re.compile(r"(?:(?:0x|\\x)?[0-9a-fA-F]{2}[\s,:]?){8,}")
_LONG_TOKEN_RE = re.compile(r"[^\s]{16}")
_SPACED_HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2}[\s,:]){7}")
_PERCENT_RE = re.compile(r"(?:%[0-9a-fA-F]{2}){4,}")
_UNICODE_ESCAPE_RE = re.compile(r"(?:\\u[0-9a-fA-F]{4}){4,}")


def _printable(text: str) -> bool:
    if not text:
        return False
    good = sum(1 for c in text if c.isprintable() or c in "\n\t")
    return good / len(text) > 0.9 and sum(c.isalpha() for c in text) >= len(text) * 0.5


def _decoded_payloads(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) for each base64, hex, percent or escape-encoded run in the raw message."""
    found: list[tuple[str, str]] = []
    has_long_token = _LONG_TOKEN_RE.search(text) is not None
    for match in _BASE64_RE.finditer(text) if has_long_token else ():
        candidate = match.group()
        if candidate.isalpha() and (candidate.islower() or candidate.isupper()):
            continue
        try:
            raw = base64.b64decode(
                candidate.replace("-", "+").replace("_", "/") + "=" * (-len(candidate) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("utf-8", errors="replace")
        if _printable(decoded):
            found.append(("base64", decoded))
    for match in _HEX_RE.finditer(text) if has_long_token or _SPACED_HEX_RE.search(text) else ():
        digits = re.sub(r"0x|\\x|[\s,:]", "", match.group())
        try:
            decoded = bytes.fromhex(digits[: len(digits) // 2 * 2]).decode("utf-8", errors="replace")
        except ValueError:
            continue
        if _printable(decoded):
            found.append(("hex", decoded))
    # Escapes are decoded in place: they often hide one word of an otherwise plain sentence.
    if "%" in text and _PERCENT_RE.search(text):
        found.append(("url encoding", _PERCENT_RE.sub(lambda m: unquote(m.group()), text)))
    if "\\u" in text and _UNICODE_ESCAPE_RE.search(text):
        decoded = _UNICODE_ESCAPE_RE.sub(lambda m: codecs.decode(m.group(), "unicode_escape"), text)
        found.append(("unicode escapes", decoded))
    if "&#" in text:
        unescaped = html.unescape(text)
        if unescaped != text:
            found.append(("html entities", unescaped))
    return found


def _search(patterns: Sequence[_Pattern], normalised: str, words: set[str]) -> tuple[str, str] | None:
    present = words.union(c for c in _MARKS if c in normalised)
    for kind, triggers, pattern in patterns:
        if triggers.isdisjoint(present):
            continue
        match = pattern.search(normalised)
        if match:
            return kind, match.group()
    return None


def _injection(text: str, normalised: str, words: set[str]) -> tuple[str, str] | None:
    """(kind, what matched) for the first injection or jailbreak pattern found, or None."""
    found = _search(_INJECTION, normalised, words)
    if found:
        return found
    for run in _LONG_RUN_RE.findall(normalised):
        match = _COMPACT_RE.search(run)
        if match:
            return "instruction hidden in run-together words", match.group()
    for encoding, decoded in _decoded_payloads(text):
        inner = normalise(decoded)
        inner_words = _words(inner)
        found = _search(_INJECTION, inner, inner_words) or _search(_INJECTION_CORE, inner, inner_words)
        if found:
            return f"{found[0]}, {encoding}-encoded", found[1]
    # Text read through rot13 or backwards: worth a look only if a trigger word appears that way.
    if not _CORE_TRIGGERS_ROT13.isdisjoint(words):
        found = _search(_INJECTION_CORE, normalised.translate(_ROT13), {w.translate(_ROT13) for w in words})
        if found:
            return f"{found[0]}, rot13", found[1]
    if not _CORE_TRIGGERS_BACKWARDS.isdisjoint(words):
        found = _search(_INJECTION_CORE, normalised[::-1], {w[::-1] for w in words})
        if found:
            return f"{found[0]}, written backwards", found[1]
    return None


# --------------------------------------------------------------------------------------------------
# Competitors
# --------------------------------------------------------------------------------------------------

_GUIDELINE_TRIGGER_RE = re.compile(
    r"\b(?:avoid|don'?t|do not|never|no|not|without|exclude|excluding|refrain from|evita[rn]?|evite|nunca|sin"
    r"|no)\b"
    r".{0,40}?\b(?:mention\w*|nam(?:e|ing)|say(?:ing)?|referenc\w*|talk\w* about|promot\w*|endors\w*|cit\w*"
    r"|mencion\w*|nombr\w*|habl\w* de|cita[rn]?|promocion\w*|decir)\b|\bcompetitors?\b|\bcompetidor(?:es)?\b"
    r"|\bcompetencia\b|\brivals?\b|\brival(?:es)?\b",
    re.IGNORECASE,
)
_GUIDELINE_SPLIT_RE = re.compile(r"\s*(?:,|;|/|\bor\b|\band\b|\bo\b|\by\b|\bni\b|&|\+)\s*", re.IGNORECASE)
_GUIDELINE_INTRODUCER_RE = re.compile(
    r"\b(?:such as|like|including|e\.g\.|for example|for instance|tales como|como|por ejemplo|incluyendo)\b",
    re.IGNORECASE,
)
_GUIDELINE_NOISE_RE = re.compile(
    r"\b(?:etc\.?|e\.g\.?|i\.e\.?|ej\.?|p\. ?ej\.?|such as|like|including|incl\.?|como|por ejemplo"
    r"|for example"
    r"|the|el|la|los|las|any|other|otras?|otros?|brands?|marcas?|competitors?|competidor(?:es)?|competencia"
    r"|rivals?|rivales|mentioning|mention|mencionar|a|an|products?|productos?)\b",
    re.IGNORECASE,
)


def competitors_from_guidelines(guidelines: Iterable[str]) -> tuple[str, ...]:
    """Brand names a campaign's guidelines tell the twin not to mention.

    "Avoid mentioning competitors (Pepsi, etc.)" gives ("Pepsi",); "Avoid mentioning Adidas, Puma" gives
    ("Adidas", "Puma"). Only capitalised names count, so "avoid mentioning politics" names nobody.
    """
    names: dict[str, str] = {}
    for guideline in guidelines:
        trigger = _GUIDELINE_TRIGGER_RE.search(guideline)
        if not trigger:
            continue
        inside = re.findall(r"\(([^)]*)\)", guideline)
        rest = " , ".join(inside) if inside else guideline[trigger.end() :]
        rest = re.sub(r"[\"“”«»]", " ", rest)
        for piece in _GUIDELINE_SPLIT_RE.split(rest):
            piece = _GUIDELINE_INTRODUCER_RE.split(piece)[-1]
            candidate = _GUIDELINE_NOISE_RE.sub(" ", piece)
            candidate = re.sub(r"[.:!?()\[\]]+", " ", candidate)
            candidate = " ".join(candidate.split())
            if not candidate or len(candidate.split()) > 4:
                continue
            if not (candidate[0].isupper() or candidate[0].isdigit()):
                continue
            names.setdefault(normalise(candidate), candidate)
    return tuple(names.values())


# A letter of a name also matches the marks that stand in for it when they were not undone as leetspeak.
_LETTER_CLASS = {
    "a": "[a4@]", "b": "[b8]", "e": "[e3]", "g": "[g9]", "i": "[il1!|]", "l": "[li1|]", "o": "[o0]",
    "s": "[s5$]", "t": "[t7]",
}  # fmt: skip


def _name_pattern(name: str) -> str | None:
    words = re.findall(r"[a-z0-9]+", normalise(name, join_spaced=False))
    if not words:
        return None
    joiner = r"[\W_]{0,3}"
    parts = [r"[\W_]{0,2}".join(_LETTER_CLASS.get(c, re.escape(c)) for c in word) for word in words]
    return r"(?<![a-z0-9@$])" + joiner.join(parts) + r"(?![a-z0-9@$])"


@dataclass(frozen=True, slots=True)
class _CompetitorMatcher:
    pattern: re.Pattern[str] | None
    names: tuple[str, ...]
    reach: int  # the longest stretch of normalised text a mention can span

    def spans(self, normalised: str) -> list[tuple[int, int, str]]:
        if self.pattern is None:
            return []
        found = []
        for match in self.pattern.finditer(normalised):
            name = next(self.names[i] for i, g in enumerate(match.groups()) if g is not None)
            found.append((match.start(), match.end(), name))
        return found


@functools.lru_cache(maxsize=1024)
def _competitor_matcher(names: tuple[str, ...]) -> _CompetitorMatcher:
    kept: list[str] = []
    patterns: list[str] = []
    for name in names:
        pattern = _name_pattern(name)
        if pattern is not None and name not in kept:
            kept.append(name)
            patterns.append(f"({pattern})")
    if not patterns:
        return _CompetitorMatcher(None, (), 0)
    longest = max(len(normalise(n)) for n in kept)
    return _CompetitorMatcher(re.compile("|".join(patterns)), tuple(kept), longest * 3 + 8)


def context_competitors(context: ConversationContext) -> tuple[str, ...]:
    """The names this context must never say: the campaign's list plus those its guidelines name."""
    return _context_competitors(tuple(context.competitors), tuple(context.guidelines), context.brand_name)


@functools.lru_cache(maxsize=1024)
def _context_competitors(
    competitors: tuple[str, ...], guidelines: tuple[str, ...], brand_name: str | None
) -> tuple[str, ...]:
    # Guidelines change only when a campaign is edited: parse them once, not on every turn.
    names = [*competitors, *competitors_from_guidelines(guidelines)]
    own = normalise(brand_name) if brand_name else None
    seen: dict[str, str] = {}
    for name in names:
        key = normalise(name)
        if key and key != own:
            seen.setdefault(key, name)
    return tuple(seen.values())


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _excerpt(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_input(text: str, profile: PersonalityProfile, context: ConversationContext) -> list[Decision]:
    """Every input rule that matched the fan's message: BLOCK decisions, or ALLOW ones that leave a note."""
    normalised = normalise(text)
    words = _words(normalised)
    decisions: list[Decision] = []

    found = _injection(text, normalised, words)
    if found:
        kind, matched = found
        decisions.append(
            Decision(
                Stage.INPUT,
                Rule.PROMPT_INJECTION,
                Action.BLOCK,
                f"{kind}: '{_excerpt(matched)}'",
                _excerpt(matched),
            )
        )

    topic = _topic_matcher(profile.banned_topics).find(normalised, words)
    if topic:
        name, matched = topic
        decisions.append(
            Decision(
                Stage.INPUT,
                Rule.BANNED_TOPIC,
                Action.BLOCK,
                f"banned topic '{name}' (matched '{matched}')",
                matched,
            )
        )

    allowed = rating_level(profile.content_rating)
    hits = _rating_hits(normalised, words)
    if hits:
        worst = _worst_above(hits, allowed)
        if worst:
            category, level, term = worst
            decisions.append(
                Decision(
                    Stage.INPUT,
                    Rule.CONTENT_RATING,
                    Action.BLOCK,
                    f"{category} above {profile.content_rating} (rated {_RATING_NAMES[level]}): '{term}'",
                    term,
                )
            )
        else:
            category, level, term = max(hits, key=lambda h: h[1])
            decisions.append(
                Decision(
                    Stage.INPUT,
                    Rule.CONTENT_RATING,
                    Action.ALLOW,
                    f"{category} within {profile.content_rating}: '{term}'",
                    term,
                )
            )

    abuse = _abuse(normalised, words)
    if abuse:
        action, reason, matched = abuse
        decisions.append(Decision(Stage.INPUT, Rule.ABUSE, action, f"{reason}: '{matched}'", matched))

    names = context_competitors(context)
    if names:
        spans = _competitor_matcher(names).spans(normalise(text, join_spaced=False))
        if spans:
            decisions.append(
                Decision(
                    Stage.INPUT,
                    Rule.COMPETITOR_IN_INPUT,
                    Action.ALLOW,
                    f"the fan named a competitor of the brand: {spans[0][2]}",
                    spans[0][2],
                )
            )
    return decisions


def _abuse(normalised: str, words: set[str]) -> tuple[Action, str, str] | None:
    slur = next((w for w in words if w in _SLURS), None)
    if slur:
        return Action.BLOCK, "hateful slur", slur
    insults = not _INSULTS.isdisjoint(words)
    for pattern, reason, worth in (
        (_THREAT_RE, "threat", not lexicons.THREAT_TRIGGERS.isdisjoint(words)),
        (_DIRECT_ABUSE_RE, "abuse aimed at the twin", not lexicons.DIRECT_ABUSE_TRIGGERS.isdisjoint(words)),
        (_DIRECTED_INSULT_RE, "insult aimed at the twin", insults),
    ):
        match = pattern.search(normalised) if worth else None
        if match:
            return Action.BLOCK, reason, match.group()
    match = _OTHER_INSULT_RE.search(normalised) if insults else None
    if match:
        return Action.ALLOW, "insult aimed at someone else", match.group()
    return None


# --------------------------------------------------------------------------------------------------
# Output guard
# --------------------------------------------------------------------------------------------------

_SENTENCE_END_RE = re.compile(r"(?<![\s.!?…])(?<!\b[A-Za-z])[.!?…]+[\"')\]»”’]*(?=\s)|\n")
_MARK_RE = re.compile(r"[.!?…\n]")
_CLOSED_RE = re.compile(r"(?:[.!?…][\"')\]»”’]*|\n)\s*$")
_MAX_HELD = 160  # a sentence longer than this is released in pieces, word by word
_MIN_TAIL = 24


def _sentence_verdict(
    sentence: str, banned_topics: tuple[str, ...], rating: str
) -> tuple[str, str, str] | None:
    """(rule, reason, what matched) when a piece of a reply touches a banned topic or goes past the
    rating, else None: a function of the text and the rules alone."""
    normalised = normalise(sentence)
    if not normalised:
        return None
    words = _words(normalised)
    topic = _topic_matcher(banned_topics).find(normalised, words)
    if topic:
        return Rule.BANNED_TOPIC_IN_OUTPUT, f"banned topic '{topic[0]}' (matched '{topic[1]}')", topic[1]
    worst = _worst_above(_rating_hits(normalised, words), rating_level(rating))
    if worst:
        category, level, term = worst
        return (
            Rule.RATING_IN_OUTPUT,
            f"{category} above {rating} (rated {_RATING_NAMES[level]}): '{term}'",
            term,
        )
    return None


# A twin says the same sentences again: a grounded reply is built from the twin's passages, the same
# for every fan who asks about them. Verdicts on pieces up to a paragraph long are kept (bounded).
_REMEMBERED_PIECE = 600
_remembered_verdict = functools.lru_cache(maxsize=8192)(_sentence_verdict)


class OutputGuard:
    """Filters the model's stream for one turn: `feed` each delta, emit what it returns, then `finish`.

    A sentence is released once it is complete (and a few words of the next have arrived), so a
    sentence that touches a banned topic or goes past the rating can be replaced whole; a
    competitor's name is rewritten in place. Nothing past `max_response_length` is ever emitted.
    """

    def __init__(self, profile: PersonalityProfile, context: ConversationContext) -> None:
        self.decisions: list[Decision] = []
        self.stopped = False
        self._language = profile.language if profile.language in phrases.NEUTRAL_SENTENCE else "en"
        self._brand_phrase = phrases.NEUTRAL_BRAND.get(profile.language, phrases.NEUTRAL_BRAND["en"])
        self._limit = max(1, profile.max_response_length)
        self._rating = profile.content_rating
        self._banned = profile.banned_topics
        self._competitors = _competitor_matcher(context_competitors(context))
        self._tail = max(_MIN_TAIL, self._competitors.reach) if self._competitors.pattern is not None else 0
        self._pending = ""
        self._sentence_end: int | None = None
        self._scanned = 0
        self._emitted = 0
        self._sentence_open = False
        self._replaced_sentence = False
        self._named: set[str] = set()
        self._finished = False

    @property
    def emitted_length(self) -> int:
        return self._emitted

    def feed(self, delta: str) -> str:
        """The part of the stream so far that is safe to show the fan now (possibly empty)."""
        if self.stopped or self._finished or not delta:
            return ""
        self._pending += delta
        if not self._worth_trying():
            return ""
        return self._release(final=False)

    def finish(self) -> str:
        """The rest of the held text, checked; call once the model's stream has ended."""
        if self.stopped or self._finished:
            return ""
        self._finished = True
        return self._release(final=True)

    def _worth_trying(self) -> bool:
        pending = len(self._pending)
        if self._emitted + pending > self._limit or pending > _MAX_HELD + self._tail:
            return True
        if self._sentence_end is None:
            # Only the text that arrived since the last look (and a few marks before it) is scanned.
            start = max(0, self._scanned - 16)
            window = self._pending[start:]
            self._scanned = pending
            if _MARK_RE.search(window) is None:
                return False
            match = _SENTENCE_END_RE.search(self._pending, start)
            self._sentence_end = match.end() if match else None
        return self._sentence_end is not None and self._sentence_end <= pending - self._tail

    def _release(self, *, final: bool) -> str:
        mapped: NormalisedText | None = None
        spans: list[tuple[int, int, str]] = []
        if self._competitors.pattern is None:
            # No names to catch: no need to know where each normalised character came from.
            cut = len(self._pending) if final else self._cut_plain()
        elif self._competitors.pattern.search(normalise(self._pending, join_spaced=False)) is None:
            # No name in the held text (the usual case): cut as in a portal, keeping enough text behind
            # the cut to finish a name whose first letters are there.
            cut = len(self._pending) if final else self._cut_plain(tail=self._tail)
        else:
            mapped = normalise_mapped(self._pending, join_spaced=False)
            spans = self._competitors.spans(mapped.text)
            cut = len(self._pending) if final else self._cut(mapped, spans)
        if cut <= 0:
            return ""
        piece = self._pending[:cut]
        self._pending = self._pending[cut:]
        self._sentence_end, self._scanned = None, 0
        if mapped is not None and spans:
            piece = self._rewrite_competitors(piece, mapped, spans, cut)
        piece = self._check_sentences(piece)
        return self._within_limit(piece)

    def _cut_plain(self, *, tail: int = 0) -> int:
        ends = [match.end() for match in _SENTENCE_END_RE.finditer(self._pending)]
        over_limit = self._emitted + len(self._pending) > self._limit
        if not ends and (len(self._pending) > _MAX_HELD or over_limit):
            # A phrase the rating or topic rules know may span a few words: keep them together.
            boundary = self._pending.rfind(" ", 0, len(self._pending) - max(tail, _MIN_TAIL))
            ends = [boundary] if boundary > 0 else []
        for cut in reversed(ends):
            if not tail or len(normalise(self._pending[cut:], join_spaced=False)) >= tail:
                return cut
        return 0

    def _cut(self, mapped: NormalisedText, spans: list[tuple[int, int, str]]) -> int:
        """Where to split the held text: the last sentence end (or, for a long sentence, the last word
        boundary) that leaves enough normalised text behind to complete a name split across deltas."""
        text, origin = mapped.text, mapped.origin
        limit_norm = len(text) - self._tail
        if limit_norm <= 0:
            return 0
        safe_orig = origin[limit_norm]
        for start, end, _ in spans:
            if start < limit_norm <= end:
                safe_orig = min(safe_orig, origin[start])
        cut = 0
        for match in _SENTENCE_END_RE.finditer(self._pending, 0, safe_orig):
            cut = match.end()
        over_limit = self._emitted + len(self._pending) > self._limit
        if cut == 0 and (safe_orig > _MAX_HELD or over_limit):
            cut = self._pending.rfind(" ", 0, safe_orig)
        if cut <= 0:
            return 0
        for start, end, _ in spans:
            if origin[start] < cut <= origin[end - 1]:
                cut = origin[start]
        return cut

    def _rewrite_competitors(
        self, piece: str, mapped: NormalisedText, spans: list[tuple[int, int, str]], cut: int
    ) -> str:
        parts: list[str] = []
        last = 0
        for start, end, name in spans:
            begin, stop = mapped.origin[start], mapped.origin[end - 1] + 1
            if stop > cut:
                break
            parts.append(piece[last:begin])
            replacement = self._brand_phrase
            before = piece[:begin].rstrip().rstrip("¡¿\"'(«“‘").rstrip()
            at_start = not before and not self._sentence_open
            if piece[begin].isupper() and (at_start or before.endswith((".", "!", "?", "\n"))):
                replacement = replacement[0].upper() + replacement[1:]
            parts.append(replacement)
            last = stop
            if name not in self._named:
                self._named.add(name)
                self.decisions.append(
                    Decision(
                        Stage.OUTPUT,
                        Rule.COMPETITOR,
                        Action.REWRITE,
                        f"competitor named in a brand context: {name}",
                        name,
                    )
                )
        if not parts:
            return piece
        parts.append(piece[last:])
        return "".join(parts)

    def _check_sentences(self, piece: str) -> str:
        if self._sentence_problem(piece) is None:
            self._sentence_open = bool(piece.strip()) and _CLOSED_RE.search(piece) is None
            return piece
        out: list[str] = []
        start = 0
        ends = [m.end() for m in _SENTENCE_END_RE.finditer(piece)]
        if not ends or ends[-1] < len(piece):
            ends.append(len(piece))
        first = True
        for end in ends:
            sentence = piece[start:end]
            start = end
            if not sentence:
                continue
            problem = self._sentence_problem(sentence)
            if problem is None:
                out.append(sentence)
            else:
                rule, reason, matched = problem
                if first and self._sentence_open:
                    # Part of this sentence is already on the fan's screen: end the answer here.
                    self.decisions.append(Decision(Stage.OUTPUT, rule, Action.BLOCK, reason, matched))
                    self.stopped = True
                    self._pending = ""
                    return "".join(out) + phrases.ELLIPSIS
                self.decisions.append(Decision(Stage.OUTPUT, rule, Action.REWRITE, reason, matched))
                if not self._replaced_sentence:
                    self._replaced_sentence = True
                    lead = sentence[: len(sentence) - len(sentence.lstrip())]
                    trail = sentence[len(sentence.rstrip()) :]
                    out.append(lead + phrases.NEUTRAL_SENTENCE[self._language] + trail)
            first = False
        self._sentence_open = bool(piece.strip()) and _CLOSED_RE.search(piece) is None
        return "".join(out)

    def _sentence_problem(self, sentence: str) -> tuple[str, str, str] | None:
        if len(sentence) > _REMEMBERED_PIECE:
            return _sentence_verdict(sentence, self._banned, self._rating)
        return _remembered_verdict(sentence, self._banned, self._rating)

    def _within_limit(self, piece: str) -> str:
        if self.stopped and not piece:
            return ""
        if self._emitted + len(piece) <= self._limit:
            self._emitted += len(piece)
            return piece
        room = self._limit - self._emitted - len(phrases.ELLIPSIS)
        text = ""
        if room > 0:
            window = piece[: room + 1]
            boundary = max(window.rfind(" "), window.rfind("\n"))
            if boundary > 0:
                text = piece[:boundary].rstrip(" ,;:-–—(\n")
            elif boundary < 0 and not self._emitted:
                # One word longer than the whole limit: cut it rather than say nothing.
                text = piece[:room]
        if text or self._emitted:
            text += phrases.ELLIPSIS
        if self._emitted + len(text) > self._limit:
            text = ""
        self._emitted += len(text)
        self.stopped = True
        self._pending = ""
        self.decisions.append(
            Decision(
                Stage.OUTPUT,
                Rule.MAX_LENGTH,
                Action.TRUNCATE,
                f"answer cut at the twin's maximum length of {self._limit} characters",
            )
        )
        return text


# --------------------------------------------------------------------------------------------------
# Refusal
# --------------------------------------------------------------------------------------------------


def refusal(profile: PersonalityProfile, decisions: Sequence[Decision]) -> str:
    """A polite, in-character reply for a blocked turn, in the twin's language.

    It never repeats the fan's words and never names the rule; which variant is used depends on the
    rule and what matched, so repeated attempts do not get a canned echo.
    """
    language = profile.language if profile.language in phrases.REFUSALS else "en"
    table = phrases.REFUSALS[language]
    decision = first_block(decisions) or (decisions[0] if decisions else None)
    key = "default"
    if decision is not None:
        key = (
            decision.rule
            if decision.rule in table
            else ("output" if decision.stage is Stage.OUTPUT else "default")
        )
    variants = table[key]
    seed = zlib.crc32(f"{key}|{decision.reason if decision else ''}|{profile.name}".encode())
    topic_words = [t for t in profile.expertise if t.strip()]
    with_topic, general = phrases.SUGGESTIONS.get(language, phrases.SUGGESTIONS["en"])
    suggestion = with_topic.format(topic=topic_words[seed % len(topic_words)]) if topic_words else general
    return variants[seed % len(variants)].format(suggestion=suggestion).strip()
