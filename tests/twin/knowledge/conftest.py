"""Knowledge fixtures: a talent with a twin (API key and principal), and the background indexer."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import (
    COMPLETE_TWIN_CONFIG,
    MadeTenant,
    bearer,
    make_api_key,
    make_celebrity,
    make_tenant,
)
from vibethink.core.database import Database
from vibethink.core.dispatcher import ConsumerRegistry, Dispatcher
from vibethink.tenancy.access import Principal
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.permissions import ALL_SCOPES
from vibethink.twin.knowledge import tasks
from vibethink.twin.knowledge.embeddings import Embedder


def config_in(language: str) -> dict[str, Any]:
    config = copy.deepcopy(COMPLETE_TWIN_CONFIG)
    config["personalityProfile"]["language"] = language
    return config


def owner_of(tenant: MadeTenant) -> Principal:
    return Principal(
        tenant_id=tenant.id,
        tenant_kind=TenantKind.TALENT,
        permissions=ALL_SCOPES,
        via="session",
        role=Role.TALENT_OWNER,
    )


@dataclass
class Twin:
    tenant: MadeTenant
    celebrity_id: uuid.UUID
    headers: dict[str, str]

    @property
    def principal(self) -> Principal:
        return owner_of(self.tenant)

    @property
    def sources_url(self) -> str:
        return f"/api/v1/celebrities/{self.celebrity_id}/knowledge/sources"


async def make_twin(db: Database, *, language: str = "en", scopes: set[str] | None = None) -> Twin:
    suffix = uuid.uuid4().hex[:10]
    tenant = await make_tenant(db, slug=f"kb-{suffix}")
    celebrity_id = await make_celebrity(
        db, tenant, slug=f"kb-twin-{suffix}", twin_config=config_in(language), status="ACTIVE"
    )
    return Twin(tenant, celebrity_id, bearer(await make_api_key(db, tenant, scopes=scopes)))


@pytest.fixture
async def twin(db: Database) -> Twin:
    return await make_twin(db)


@pytest.fixture
async def spanish_twin(db: Database) -> Twin:
    return await make_twin(db, language="es")


@pytest.fixture
async def other_twin(db: Database) -> Twin:
    return await make_twin(db)


async def run_indexer(db: Database, *, embedder: Embedder | None = None) -> int:
    """Delivers every pending event to the knowledge indexer alone; returns how many it handled."""
    registry = ConsumerRegistry()
    tasks.register(registry, embedder=lambda: embedder)
    return await Dispatcher(db, registry, worker_id="knowledge-test").drain()
