"""Talent API: celebrities, their twin configuration and their contract."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.talent import service
from vibethink.talent.models import Celebrity, EntityStatus
from vibethink.talent.schemas import (
    CelebrityCreate,
    CelebrityRead,
    CelebrityUpdate,
    ContractRead,
    ContractUpdate,
    TwinConfigRead,
)
from vibethink.tenancy.access import DbSession, Principal, require
from vibethink.tenancy.permissions import Permission

router = APIRouter(tags=["talent"])

CelebrityReader = Annotated[Principal, Depends(require(Permission.CELEBRITIES_READ))]
CelebrityWriter = Annotated[Principal, Depends(require(Permission.CELEBRITIES_WRITE))]
ContractReader = Annotated[Principal, Depends(require(Permission.CONTRACTS_READ))]
ContractWriter = Annotated[Principal, Depends(require(Permission.CONTRACTS_WRITE))]
TwinConfigBody = Annotated[
    dict[str, Any],
    Body(description="The whole twin configuration, validated against the active twin_config schema."),
]


def _twin_config(celebrity: Celebrity) -> TwinConfigRead:
    return TwinConfigRead(
        celebrity_id=celebrity.id,
        twin_config=celebrity.twin_config,
        twin_config_version=celebrity.twin_config_version,
        updated_at=celebrity.updated_at,
    )


@router.post("/celebrities", status_code=201)
async def create_celebrity(
    body: CelebrityCreate, principal: CelebrityWriter, session: DbSession
) -> CelebrityRead:
    celebrity = await service.create(session, principal, body)
    return CelebrityRead.model_validate(celebrity)


@router.get("/celebrities")
async def list_celebrities(
    principal: CelebrityReader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = service.DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: Annotated[
        EntityStatus | None, Query(description="ARCHIVED ones are listed only when asked.")
    ] = None,
) -> Page[CelebrityRead]:
    found = await service.page(session, principal, status=status, limit=limit, cursor=cursor)
    return Page[CelebrityRead](
        items=[CelebrityRead.model_validate(c) for c in found.items], next_cursor=found.next_cursor
    )


@router.get("/celebrities/{celebrity_id}")
async def get_celebrity(
    celebrity_id: uuid.UUID, principal: CelebrityReader, session: DbSession
) -> CelebrityRead:
    return CelebrityRead.model_validate(await service.get(session, principal, celebrity_id))


@router.patch("/celebrities/{celebrity_id}")
async def update_celebrity(
    celebrity_id: uuid.UUID, body: CelebrityUpdate, principal: CelebrityWriter, session: DbSession
) -> CelebrityRead:
    return CelebrityRead.model_validate(await service.update(session, principal, celebrity_id, body))


@router.post("/celebrities/{celebrity_id}/archive")
async def archive_celebrity(
    celebrity_id: uuid.UUID, principal: CelebrityWriter, session: DbSession
) -> CelebrityRead:
    return CelebrityRead.model_validate(await service.archive(session, principal, celebrity_id))


@router.get("/celebrities/{celebrity_id}/twin-config")
async def get_twin_config(
    celebrity_id: uuid.UUID, principal: CelebrityReader, session: DbSession
) -> TwinConfigRead:
    return _twin_config(await service.get(session, principal, celebrity_id))


@router.put("/celebrities/{celebrity_id}/twin-config")
async def put_twin_config(
    celebrity_id: uuid.UUID, body: TwinConfigBody, principal: CelebrityWriter, session: DbSession
) -> TwinConfigRead:
    return _twin_config(await service.replace_twin_config(session, principal, celebrity_id, body))


@router.get("/celebrities/{celebrity_id}/contract")
async def get_contract(
    celebrity_id: uuid.UUID, principal: ContractReader, session: DbSession
) -> ContractRead:
    return service.contract_read(await service.contract(session, principal, celebrity_id))


@router.put("/celebrities/{celebrity_id}/contract")
async def put_contract(
    celebrity_id: uuid.UUID, body: ContractUpdate, principal: ContractWriter, session: DbSession
) -> ContractRead:
    return service.contract_read(await service.put_contract(session, principal, celebrity_id, body))
