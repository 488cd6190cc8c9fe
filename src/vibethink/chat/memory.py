"""Fan memory: facts a fan shares about themself (name, team, goal), kept per fan per twin.

Extraction is deterministic (Spanish and English patterns), runs on every accepted fan message, and
the upsert rides in the turn's one write; the fan can list and delete what is kept.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat.models import FanMemory
from vibethink.core.errors import NotFound

MAX_VALUE: Final = 120
KINDS: Final = ("name", "team", "goal")
LABELS: Final = {"name": "Name", "team": "Favourite team", "goal": "Goal"}

_WORD = r"[^\W\d_][^\W\d_'’.-]*"
# Words that end a name or a team: "me llamo Ana y soy de Lima" keeps "Ana".
_STOP = {
    "and", "but", "from", "i", "im", "so", "because", "since", "who", "the", "a",
    "y", "e", "pero", "de", "desde", "soy", "que", "porque", "tengo", "vivo", "con", "and,",
}  # fmt: skip
_TEAM_STOP = _STOP - {"de", "the"}

_NAME_PATTERNS: Final = [
    re.compile(
        rf"\b(?:my name is|my name's|i am called|i'm called|call me)\s+({_WORD}(?:\s+{_WORD}){{0,2}})", re.I
    ),
    re.compile(rf"\b(?:me llamo|mi nombre es|ll[aá]mame|me dicen)\s+({_WORD}(?:\s+{_WORD}){{0,2}})", re.I),
]  # fmt: skip
_TEAM_PATTERNS: Final = [
    re.compile(
        r"\b(?:i support|i root for|i cheer for|i'm a (?:huge |big )?fan of|i am a (?:huge |big )?fan of"
        r"|my (?:favou?rite )?team is)\s+(?:the\s+)?([^.,;!?\n]{2,60})",
        re.I,
    ),
    re.compile(
        r"\b(?:soy hincha (?:de|del)|soy (?:muy )?fan(?:[aá]tico)? (?:de|del)|soy aficionado (?:de|del|al)"
        r"|mi equipo(?: favorito)? es|apoyo al|soy del)\s+(?:el\s+|la\s+|los\s+)?([^.,;!?\n]{2,60})",
        re.I,
    ),
]
_GOAL_PATTERNS: Final = [
    re.compile(
        r"\b(?:my goal is|my dream is|i want to become|i'm training (?:for|to)|i am training (?:for|to)"
        r"|i dream of)\s+(?:to\s+)?([^.;!?\n]{3,120})",
        re.I,
    ),
    re.compile(
        r"\b(?:mi meta es|mi objetivo es|mi sue[ñn]o es|quiero llegar a ser|quiero ser|estoy entrenando para)"
        r"\s+([^.;!?\n]{3,120})",
        re.I,
    ),
]


@dataclass(frozen=True, slots=True)
class Fact:
    kind: str
    value: str


def _trim_words(phrase: str, stop: set[str], limit: int) -> str:
    kept: list[str] = []
    for word in phrase.split():
        if word.casefold().strip(",") in stop and kept:
            break
        kept.append(word.strip(","))
        if len(kept) == limit:
            break
    return " ".join(kept).strip(" '’\"-")


def _name(text: str) -> str | None:
    for pattern in _NAME_PATTERNS:
        match = pattern.search(text)
        if match:
            name = _trim_words(match.group(1), _STOP, 3)
            if name and name.casefold() not in _STOP:
                return " ".join(w[:1].upper() + w[1:] for w in name.split())
    return None


def _team(text: str) -> str | None:
    for pattern in _TEAM_PATTERNS:
        match = pattern.search(text)
        if match:
            team = _trim_words(match.group(1), _TEAM_STOP, 4)
            if team:
                return team[:1].upper() + team[1:]
    return None


def _goal(text: str) -> str | None:
    for pattern in _GOAL_PATTERNS:
        match = pattern.search(text)
        if match:
            goal = " ".join(match.group(1).split()).strip(" ,")
            if len(goal) >= 3:
                return goal[:MAX_VALUE]
    return None


def extract(text: str) -> list[Fact]:
    """The facts `text` states about the fan, at most one per kind."""
    found: list[Fact] = []
    for kind, reader in (("name", _name), ("team", _team), ("goal", _goal)):
        value = reader(text)
        if value:
            found.append(Fact(kind, value[:MAX_VALUE]))
    return found


def describe(kind: str, value: str) -> str:
    """A memory as the twin's prompt shows it."""
    return f"{LABELS.get(kind, kind.title())}: {value}"


async def listed(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, fan_key: str
) -> list[FanMemory]:
    query = (
        select(FanMemory)
        .where(
            FanMemory.tenant_id == tenant_id,
            FanMemory.celebrity_id == celebrity_id,
            FanMemory.fan_key == fan_key,
        )
        .order_by(FanMemory.kind)
    )
    return list((await session.scalars(query)).all())


async def forget(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    fan_key: str,
    memory_id: uuid.UUID | None = None,
) -> int:
    """Deletes one of the fan's memories (404 when it is not theirs) or, without an id, all of them."""
    query = delete(FanMemory).where(
        FanMemory.tenant_id == tenant_id,
        FanMemory.celebrity_id == celebrity_id,
        FanMemory.fan_key == fan_key,
    )
    if memory_id is not None:
        query = query.where(FanMemory.id == memory_id)
    result = await session.execute(query)
    removed = int(getattr(result, "rowcount", 0) or 0)
    if memory_id is not None and removed == 0:
        raise NotFound("No such memory.")
    return removed
