"""Chat fixtures: a talent with a twin, its deployments and knowledge, fans with tokens, fake models."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.factories import (
    COMPLETE_TWIN_CONFIG,
    MadeTenant,
    bearer,
    make_api_key,
    make_celebrity,
    make_tenant,
)
from tests.twin.fakes import FakeModelServer

from vibethink.app import create_app
from vibethink.chat import twins
from vibethink.core.database import Database, RlsContext
from vibethink.core.settings import Settings
from vibethink.deployments import service as deployments
from vibethink.deployments.models import DeploymentType
from vibethink.tenancy.access import Principal
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.permissions import ALL_SCOPES
from vibethink.twin.knowledge import service as knowledge

KNOWLEDGE = (
    "Messi won the World Cup in Qatar in 2022 after a final against France decided on penalties. "
    "He wore Adidas boots in that final, and Pepsi once filmed an advert with him. "
    "Puma signed Pelé in 1970 and Puma boots were on his feet in Mexico."
)


def twin_config(*, language: str = "en", provider: dict[str, Any] | None = None) -> dict[str, Any]:
    config = copy.deepcopy(COMPLETE_TWIN_CONFIG)
    config["personalityProfile"].update(
        {"language": language, "catchphrases": ["What a goal!"], "greeting": "Hello, football friend!"}
    )
    if provider is not None:
        config["model"] = provider
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
class ChatTwin:
    tenant: MadeTenant
    celebrity_id: uuid.UUID
    headers: dict[str, str]
    deployments: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def portal(self) -> uuid.UUID:
        return self.deployments["portal"]


async def add_deployment(
    db: Database,
    twin: ChatTwin,
    name: str,
    *,
    type: DeploymentType = DeploymentType.VIBETHINK_PORTAL,
    config: dict[str, Any] | None = None,
) -> uuid.UUID:
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as session:
        deployment = await deployments.create(
            session, owner_of(twin.tenant), twin.celebrity_id, type=type, name=name, config=config
        )
    twin.deployments[name] = deployment.id
    return deployment.id


async def add_knowledge(
    db: Database, twin: ChatTwin, content: str = KNOWLEDGE, *, title: str = "Football"
) -> None:
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as session:
        await knowledge.add_source(
            session,
            owner_of(twin.tenant),
            twin.celebrity_id,
            kind="TEXT",
            title=title,
            content=content,
            url="https://example.org/football",
            inline=True,
        )


async def make_chat_twin(
    db: Database,
    *,
    language: str = "en",
    provider: dict[str, Any] | None = None,
    knowledge_text: str | None = KNOWLEDGE,
) -> ChatTwin:
    suffix = uuid.uuid4().hex[:10]
    tenant = await make_tenant(db, slug=f"chat-{suffix}")
    celebrity_id = await make_celebrity(
        db,
        tenant,
        slug=f"chat-twin-{suffix}",
        name="Leo Voice",
        twin_config=twin_config(language=language, provider=provider),
        status="ACTIVE",
    )
    twin = ChatTwin(tenant, celebrity_id, bearer(await make_api_key(db, tenant)))
    await add_deployment(db, twin, "portal")
    if knowledge_text:
        await add_knowledge(db, twin, knowledge_text)
    return twin


@pytest.fixture
async def chat_twin(db: Database) -> ChatTwin:
    return await make_chat_twin(db)


@pytest.fixture
async def other_chat_twin(db: Database) -> ChatTwin:
    return await make_chat_twin(db)


@pytest.fixture(autouse=True)
def fresh_twin_cache() -> Iterator[None]:
    twins.cache.clear()
    yield
    twins.cache.clear()


@dataclass
class FanClient:
    """A fan of one deployment: its token's headers and helpers for the chat API."""

    http: httpx.AsyncClient
    deployment_id: uuid.UUID
    token: str
    fan_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Fan-Token": self.token}

    async def start(self) -> uuid.UUID:
        response = await self.http.post(
            "/api/v1/chat/conversations",
            json={"deployment_id": str(self.deployment_id)},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])

    async def say(self, conversation_id: uuid.UUID, content: str, **extra: Any) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/chat/conversations/{conversation_id}/messages",
            json={"content": content, "stream": False, **extra},
            headers=self.headers,
        )

    async def stream(self, conversation_id: uuid.UUID, content: str) -> list[tuple[str | None, Any]]:
        """The reply's server-sent events as (event name, parsed data)."""
        response = await self.http.post(
            f"/api/v1/chat/conversations/{conversation_id}/messages",
            json={"content": content},
            headers={**self.headers, "Accept": "text/event-stream"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.text)


def parse_sse(body: str) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        raw = "\n".join(data)
        events.append((name, raw if raw == "[DONE]" else json.loads(raw)))
    return events


async def new_fan(http: httpx.AsyncClient, deployment_id: uuid.UUID) -> FanClient:
    response = await http.post("/api/v1/chat/sessions", json={"deployment_id": str(deployment_id)})
    assert response.status_code == 201, response.text
    body = response.json()
    return FanClient(http, deployment_id, body["token"], body["fan_key"])


@pytest.fixture
async def fan(client: httpx.AsyncClient, chat_twin: ChatTwin) -> FanClient:
    return await new_fan(client, chat_twin.portal)


def app_with(db: Database, settings: Settings, **changes: Any) -> FastAPI:
    return create_app(settings.model_copy(update=changes), db=db)


@pytest.fixture
async def client_for(db: Database, test_settings: Settings) -> AsyncIterator[Any]:
    """Makes clients of apps whose settings differ from the suite's (limits, providers, timeouts)."""
    opened: list[httpx.AsyncClient] = []

    def make(**changes: Any) -> httpx.AsyncClient:
        app = app_with(db, test_settings, **changes)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50001)), base_url="http://testserver"
        )
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture(scope="session")
def fake_model_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_model(fake_model_server: FakeModelServer) -> Iterator[FakeModelServer]:
    fake_model_server.reset()
    yield fake_model_server
    fake_model_server.reset()
