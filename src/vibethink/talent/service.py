"""Talent rules: celebrities, their twin configuration and their contract.

Every function takes the request's session and the acting principal, writes its platform event in
the same transaction, and never commits. RLS filters by tenant; queries still name the tenant so
PostgreSQL uses the `tenant_id`-led indexes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat import twins
from vibethink.core import outbox
from vibethink.core.errors import AlreadyExists, Conflict, InvalidTransition, NotFound
from vibethink.core.models import new_id
from vibethink.core.pagination import newest_first
from vibethink.talent import schema_registry
from vibethink.talent.models import Celebrity, Contract, EntityStatus
from vibethink.talent.schemas import (
    CelebrityCreate,
    CelebrityUpdate,
    ContractRead,
    ContractUpdate,
    ExclusivityRules,
    RevenueShares,
)

if TYPE_CHECKING:
    from vibethink.tenancy.access import Principal

TWIN_CONFIG: Final = schema_registry.TWIN_CONFIG
DEFAULT_PAGE: Final = 50

LISTED_STATUSES = tuple(s for s in EntityStatus if s is not EntityStatus.ARCHIVED)
# ARCHIVED is reached only through `archive` and never left; PENDING_SETUP is only a starting point.
TRANSITIONS: Final[Mapping[EntityStatus, frozenset[EntityStatus]]] = {
    EntityStatus.PENDING_SETUP: frozenset({EntityStatus.ACTIVE, EntityStatus.SUSPENDED}),
    EntityStatus.ACTIVE: frozenset({EntityStatus.INACTIVE, EntityStatus.SUSPENDED}),
    EntityStatus.INACTIVE: frozenset({EntityStatus.ACTIVE, EntityStatus.SUSPENDED}),
    EntityStatus.SUSPENDED: frozenset({EntityStatus.ACTIVE, EntityStatus.INACTIVE}),
    EntityStatus.ARCHIVED: frozenset(),
}


class IncompleteTwinConfig(Conflict):
    code = "incomplete_twin_config"
    default_message = "The twin configuration is not complete for the active schema."


class CelebrityArchived(Conflict):
    code = "celebrity_archived"
    default_message = "The celebrity is archived and can no longer be changed."


@dataclass(frozen=True, slots=True)
class CelebrityPage:
    items: list[Celebrity]
    next_cursor: str | None


async def _emit(
    session: AsyncSession,
    principal: Principal,
    event_type: str,
    *,
    subject_type: str,
    subject_id: uuid.UUID,
    payload: dict[str, Any],
) -> None:
    if principal.api_key_id is not None:
        payload = {**payload, "actor_api_key_id": str(principal.api_key_id)}
    if subject_type == "celebrity":
        # Chat keeps deployed twins per process; a changed celebrity or twin config is re-read.
        twins.forget_celebrity(subject_id)
    await outbox.emit(
        session,
        event_type,
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
    )


async def create(session: AsyncSession, principal: Principal, data: CelebrityCreate) -> Celebrity:
    """A new celebrity: ACTIVE with a valid twin config, else PENDING_SETUP with an empty one."""
    version: int | None = None
    status = EntityStatus.PENDING_SETUP
    if data.twin_config is not None:
        schema = await schema_registry.validate(session, TWIN_CONFIG, data.twin_config, column="twin_config")
        version, status = schema.version, EntityStatus.ACTIVE
    celebrity = Celebrity(
        tenant_id=principal.tenant_id,
        id=new_id(),
        slug=data.slug,
        name=data.name,
        type=data.type,
        bio=data.bio,
        status=status,
        twin_config=data.twin_config if data.twin_config is not None else {},
        twin_config_version=version,
    )
    session.add(celebrity)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Slugs are global portal paths; RLS hides other tenants' rows, so the constraint decides.
        if "uq_celebrities_slug" in str(exc.orig):
            raise AlreadyExists(f"The slug '{data.slug}' is already taken.", field="slug") from exc
        raise
    await session.refresh(celebrity, ["created_at", "updated_at"])
    await _emit(
        session,
        principal,
        "CELEBRITY_CREATED",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload={
            "slug": celebrity.slug,
            "name": celebrity.name,
            "type": celebrity.type.value,
            "status": celebrity.status.value,
            "twin_config_version": version,
        },
    )
    return celebrity


async def get(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, *, for_update: bool = False
) -> Celebrity:
    """The tenant's celebrity; another tenant's is indistinguishable from a missing one (404)."""
    query = select(Celebrity).where(Celebrity.tenant_id == principal.tenant_id, Celebrity.id == celebrity_id)
    if for_update:
        query = query.with_for_update()
    celebrity = await session.scalar(query)
    if celebrity is None:
        raise NotFound("No such celebrity.")
    return celebrity


async def _writable(session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID) -> Celebrity:
    celebrity = await get(session, principal, celebrity_id, for_update=True)
    if celebrity.status is EntityStatus.ARCHIVED:
        raise CelebrityArchived()
    return celebrity


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    status: EntityStatus | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> CelebrityPage:
    """Newest first over (created_at, id); archived celebrities only when `status=ARCHIVED` is asked."""
    query = select(Celebrity).where(Celebrity.tenant_id == principal.tenant_id)
    if status is None:
        # `IN`, not `<>`: under RLS a non-leakproof operator loses its statistics and the planner
        # abandons the ordered tenant index for a sort of every row (bench/RESULTS.md).
        query = query.where(Celebrity.status.in_(LISTED_STATUSES))
    else:
        query = query.where(Celebrity.status == status)
    items, next_cursor = await newest_first(
        session, query, created_at=Celebrity.created_at, row_id=Celebrity.id, cursor=cursor, limit=limit
    )
    return CelebrityPage(items=items, next_cursor=next_cursor)


async def update(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, data: CelebrityUpdate
) -> Celebrity:
    """Changes name, bio, type and status; a change to ARCHIVED is the same as `archive`."""
    if data.status is EntityStatus.ARCHIVED:
        if data.model_copy(update={"status": None}).model_dump(exclude_none=True):
            raise InvalidTransition("Archive a celebrity on its own, without other changes.", field="status")
        return await archive(session, principal, celebrity_id)
    celebrity = await _writable(session, principal, celebrity_id)
    changed: list[str] = []
    for name in ("name", "bio", "type"):
        value = getattr(data, name)
        if value is not None and value != getattr(celebrity, name):
            setattr(celebrity, name, value)
            changed.append(name)
    payload: dict[str, Any] = {"change": "celebrity", "fields": changed}
    if data.status is not None and data.status is not celebrity.status:
        version = await _check_transition(session, celebrity, data.status)
        payload["status"] = {"from": celebrity.status.value, "to": data.status.value}
        celebrity.status = data.status
        if version is not None and version != celebrity.twin_config_version:
            celebrity.twin_config_version = version
        changed.append("status")
    if not changed:
        return celebrity
    await session.flush()
    await session.refresh(celebrity, ["updated_at"])
    await _emit(
        session,
        principal,
        "CONFIGURATION_CHANGE",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload=payload,
    )
    return celebrity


async def _check_transition(session: AsyncSession, celebrity: Celebrity, target: EntityStatus) -> int | None:
    """Refuses a move the lifecycle does not allow; ACTIVE needs a config complete for the active schema.

    Returns the active schema version the config was checked against, when it was.
    """
    if target not in TRANSITIONS[celebrity.status]:
        raise InvalidTransition(
            f"A celebrity cannot go from {celebrity.status.value} to {target.value}.", field="status"
        )
    if target is not EntityStatus.ACTIVE:
        return None
    schema = await schema_registry.active_schema(session, TWIN_CONFIG)
    found = schema_registry.problems(schema, celebrity.twin_config, column="twin_config")
    if found:
        fields = ", ".join(p.field for p in found[:10])
        raise IncompleteTwinConfig(
            f"The twin configuration must be complete before the celebrity can be ACTIVE; fix: {fields}.",
            field=found[0].field,
            details={
                "schema": TWIN_CONFIG,
                "version": schema.version,
                "errors": [{"field": p.field, "message": p.message} for p in found[:20]],
            },
        )
    return schema.version


async def archive(session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID) -> Celebrity:
    """ARCHIVED is terminal: hidden from lists, kept for history. Archiving twice changes nothing."""
    celebrity = await get(session, principal, celebrity_id, for_update=True)
    if celebrity.status is EntityStatus.ARCHIVED:
        return celebrity
    previous = celebrity.status
    celebrity.status = EntityStatus.ARCHIVED
    celebrity.archived_at = func.now()
    await session.flush()
    await session.refresh(celebrity, ["archived_at", "updated_at"])
    await _emit(
        session,
        principal,
        "CELEBRITY_ARCHIVED",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload={"slug": celebrity.slug, "from_status": previous.value},
    )
    return celebrity


async def replace_twin_config(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, config: dict[str, Any]
) -> Celebrity:
    """Replaces the whole twin config, validated against the active schema version."""
    celebrity = await _writable(session, principal, celebrity_id)
    schema = await schema_registry.validate(session, TWIN_CONFIG, config, column="twin_config")
    previous = celebrity.twin_config
    added = sorted(set(config) - set(previous))
    removed = sorted(set(previous) - set(config))
    modified = sorted(key for key in set(config) & set(previous) if config[key] != previous[key])
    if not (added or removed or modified) and celebrity.twin_config_version == schema.version:
        return celebrity
    payload = {
        "change": "twin_config",
        "version": schema.version,
        "previous_version": celebrity.twin_config_version,
        # Key names only: values may hold provider identifiers the event consumers need not see.
        "added": added,
        "removed": removed,
        "changed": modified,
    }
    celebrity.twin_config = dict(config)
    celebrity.twin_config_version = schema.version
    await session.flush()
    await session.refresh(celebrity, ["updated_at"])
    await _emit(
        session,
        principal,
        "CONFIGURATION_CHANGE",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload=payload,
    )
    return celebrity


async def current_contract(
    session: AsyncSession, principal: Principal, celebrity: Celebrity
) -> Contract | None:
    return await session.scalar(
        select(Contract)
        .where(Contract.tenant_id == principal.tenant_id, Contract.celebrity_id == celebrity.id)
        .order_by(Contract.starts_on.desc(), Contract.created_at.desc())
        .limit(1)
    )


async def contract(session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID) -> Contract:
    celebrity = await get(session, principal, celebrity_id)
    found = await current_contract(session, principal, celebrity)
    if found is None:
        raise NotFound("This celebrity has no contract yet.")
    return found


async def put_contract(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, data: ContractUpdate
) -> Contract:
    """Creates or replaces the celebrity's contract; the celebrity row lock serializes concurrent writes."""
    celebrity = await _writable(session, principal, celebrity_id)
    existing = await current_contract(session, principal, celebrity)
    shares = data.revenue_shares_bp.model_dump()
    rules = data.exclusivity_rules.model_dump()
    if existing is None:
        target = Contract(tenant_id=principal.tenant_id, id=new_id(), celebrity_id=celebrity.id)
        session.add(target)
        before: dict[str, Any] = {}
    else:
        target = existing
        before = {
            "revenue_shares_bp": dict(existing.revenue_shares_bp),
            "exclusivity_rules": dict(existing.exclusivity_rules),
            "starts_on": existing.starts_on,
            "ends_on": existing.ends_on,
        }
    after: dict[str, Any] = {
        "revenue_shares_bp": shares,
        "exclusivity_rules": rules,
        "starts_on": data.starts_on,
        "ends_on": data.ends_on,
    }
    changed = [key for key in after if existing is None or before[key] != after[key]]
    if not changed:
        return target
    target.revenue_shares_bp = shares
    target.exclusivity_rules = rules
    target.starts_on = data.starts_on
    target.ends_on = data.ends_on
    await session.flush()
    await session.refresh(target, ["created_at", "updated_at"])
    share_changes = {
        kind: {"from": before.get("revenue_shares_bp", {}).get(kind), "to": bp}
        for kind, bp in shares.items()
        if before.get("revenue_shares_bp", {}).get(kind) != bp
    }
    payload: dict[str, Any] = {
        "celebrity_id": str(celebrity.id),
        "created": existing is None,
        "fields": changed,
        "revenue_shares_bp": share_changes,
        "starts_on": data.starts_on.isoformat(),
        "ends_on": data.ends_on.isoformat() if data.ends_on else None,
    }
    await _emit(
        session, principal, "CONTRACT_UPDATED", subject_type="contract", subject_id=target.id, payload=payload
    )
    await _emit(
        session,
        principal,
        "CONFIGURATION_CHANGE",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload={"change": "contract", "contract_id": str(target.id), "fields": changed},
    )
    return target


def contract_read(found: Contract) -> ContractRead:
    """The stored contract in its API shape; unknown stored keys are ignored rather than failing reads."""
    shares = {k: v for k, v in found.revenue_shares_bp.items() if k in RevenueShares.model_fields}
    rules = {k: v for k, v in found.exclusivity_rules.items() if k in ExclusivityRules.model_fields}
    return ContractRead(
        id=found.id,
        celebrity_id=found.celebrity_id,
        revenue_shares_bp=RevenueShares.model_validate(shares),
        exclusivity_rules=ExclusivityRules.model_validate(rules),
        starts_on=found.starts_on,
        ends_on=found.ends_on,
        created_at=found.created_at,
        updated_at=found.updated_at,
    )


async def revenue_shares(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID
) -> dict[str, int]:
    """The celebrity's share in basis points per revenue type: the contract's, else the defaults."""
    stored = await session.scalar(
        select(Contract.revenue_shares_bp)
        .where(Contract.tenant_id == tenant_id, Contract.celebrity_id == celebrity_id)
        .order_by(Contract.starts_on.desc(), Contract.created_at.desc())
        .limit(1)
    )
    shares = RevenueShares().model_dump()
    if stored:
        shares.update({k: int(v) for k, v in stored.items() if k in shares})
    return shares
