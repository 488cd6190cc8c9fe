"""Twin API: Character Card V2 export and import."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from vibethink.tenancy.access import DbSession, Principal, require
from vibethink.tenancy.permissions import Permission
from vibethink.twin import cards

router = APIRouter(tags=["twin"])

CelebrityReader = Annotated[Principal, Depends(require(Permission.CELEBRITIES_READ))]
CelebrityWriter = Annotated[Principal, Depends(require(Permission.CELEBRITIES_WRITE))]


class CardWarningRead(BaseModel):
    field: str
    rule: str
    reason: str


class CardImportRead(BaseModel):
    celebrity_id: uuid.UUID
    twin_config_version: int | None
    lorebook_source_id: uuid.UUID | None
    # What was not taken as given: quarantined text, guardrails a card may not loosen.
    warnings: list[CardWarningRead]
    card: dict[str, Any]


@router.get("/celebrities/{celebrity_id}/card")
async def export_card(
    celebrity_id: uuid.UUID, principal: CelebrityReader, session: DbSession
) -> dict[str, Any]:
    """The twin as a Character Card V2 (`chara_card_v2`) document."""
    return await cards.export_card(session, principal, celebrity_id)


@router.post("/celebrities/{celebrity_id}/card")
async def import_card(
    celebrity_id: uuid.UUID, body: cards.CharacterCardV2, principal: CelebrityWriter, session: DbSession
) -> CardImportRead:
    """Maps a Character Card V2 onto the twin; card text is untrusted and cannot loosen guardrails."""
    done = await cards.import_card(session, principal, celebrity_id, body)
    return CardImportRead(
        celebrity_id=done.celebrity.id,
        twin_config_version=done.celebrity.twin_config_version,
        lorebook_source_id=done.lorebook_source_id,
        warnings=[CardWarningRead(**w.as_json()) for w in done.warnings],
        card=cards.card_of(done.celebrity),
    )
