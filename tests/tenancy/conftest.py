"""Helpers for the tenancy tests: clients from chosen addresses, and the events a tenant recorded."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.factories import ADMIN
from vibethink.core.database import Database


def random_ip() -> str:
    """A private address of its own, so throttling in one test never touches another."""
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@pytest.fixture
def client_at(app: Any) -> Callable[..., Any]:
    """Opens a client whose requests come from `ip` (a fresh random address by default)."""

    @asynccontextmanager
    async def open_client(ip: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(ip or random_ip(), 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return open_client


async def events_of(db: Database, tenant_id: uuid.UUID, event_type: str | None = None) -> list[Any]:
    async with db.transaction(ADMIN) as s:
        rows = await s.execute(
            text(
                "SELECT event_type, actor_user_id, subject_type, subject_id, payload FROM platform_events"
                " WHERE tenant_id = :t AND (CAST(:e AS text) IS NULL OR event_type = :e) ORDER BY occurred_at"
            ),
            {"t": tenant_id, "e": event_type},
        )
        return list(rows.all())


async def audit_of(db: Database, tenant_id: uuid.UUID, action: str) -> list[Any]:
    async with db.transaction(ADMIN) as s:
        rows = await s.execute(
            text(
                "SELECT action, reason, is_admin_context FROM audit_log WHERE tenant_id = :t AND action = :a"
            ),
            {"t": tenant_id, "a": action},
        )
        return list(rows.all())
