"""Deployments: the public lookup a fan's request starts from, and creation for a tenant's twin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core import outbox
from vibethink.core.errors import AlreadyExists, InvalidInput
from vibethink.core.models import new_id
from vibethink.deployments.models import Deployment, DeploymentStatus, DeploymentType
from vibethink.talent import service as talent_service
from vibethink.talent.models import EntityStatus
from vibethink.talent.schema_registry import check_storable
from vibethink.tenancy.access import Principal

PUBLIC_LOOKUP_SQL = text(
    "SELECT tenant_id, deployment_id, celebrity_id, type, status, config, starts_at, ends_at,"
    " celebrity_name, celebrity_status, twin_config FROM chat_public_deployment(:id)"
)


@dataclass(frozen=True, slots=True)
class PublicDeployment:
    """What a fan's request may know about a deployment before any tenant context is set."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    celebrity_id: uuid.UUID
    type: DeploymentType
    status: DeploymentStatus
    config: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    celebrity_name: str
    celebrity_status: EntityStatus
    twin_config: dict[str, Any]

    def is_live(self, now: datetime) -> bool:
        """Open to fans: active, its twin active, and inside its window when it has one."""
        return (
            self.status is DeploymentStatus.ACTIVE
            and self.celebrity_status is EntityStatus.ACTIVE
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


async def public_lookup(session: AsyncSession, deployment_id: uuid.UUID) -> PublicDeployment | None:
    """The deployment and its twin by id alone (a SECURITY DEFINER lookup); None when there is none."""
    row = (await session.execute(PUBLIC_LOOKUP_SQL, {"id": deployment_id})).first()
    if row is None:
        return None
    return PublicDeployment(
        tenant_id=row.tenant_id,
        id=row.deployment_id,
        celebrity_id=row.celebrity_id,
        type=DeploymentType(row.type),
        status=DeploymentStatus(row.status),
        config=dict(row.config or {}),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        celebrity_name=row.celebrity_name,
        celebrity_status=EntityStatus(row.celebrity_status),
        twin_config=dict(row.twin_config or {}),
    )


async def create(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    *,
    type: DeploymentType,
    name: str,
    config: dict[str, Any] | None = None,
    status: DeploymentStatus = DeploymentStatus.ACTIVE,
    custom_domain: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Deployment:
    """A new deployment of the tenant's twin; another tenant's celebrity is a 404."""
    celebrity = await talent_service.get(session, principal, celebrity_id)
    if not name.strip() or len(name) > 200:
        raise InvalidInput("The name must have 1 to 200 characters.", field="name")
    document = dict(config or {})
    check_storable(document, column="config")
    deployment = Deployment(
        tenant_id=principal.tenant_id,
        id=new_id(),
        celebrity_id=celebrity.id,
        type=type,
        name=name.strip(),
        config=document,
        status=status,
        custom_domain=custom_domain,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(deployment)
    try:
        await session.flush()
    except IntegrityError as exc:
        if "custom_domain" in str(exc.orig):
            raise AlreadyExists("That custom domain is already in use.", field="custom_domain") from exc
        raise
    await outbox.emit(
        session,
        "DEPLOYMENT_CREATED",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="deployment",
        subject_id=deployment.id,
        payload={"celebrity_id": str(celebrity.id), "type": type.value, "status": status.value},
    )
    return deployment
