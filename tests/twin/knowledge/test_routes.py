"""The knowledge API over HTTP with API keys: every format, progress, replace, delete, re-index, 404s."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tests.factories import ADMIN, make_celebrity
from tests.twin.knowledge.conftest import Twin, make_twin, run_indexer
from tests.twin.knowledge.documents import SPANISH_GOALS, pdf_with_text
from vibethink.core.database import Database
from vibethink.core.dispatcher import ConsumerRegistry, Dispatcher
from vibethink.core.models import PlatformEvent
from vibethink.tenancy.models import Role
from vibethink.tenancy.permissions import ROLE_PERMISSIONS, Permission
from vibethink.twin.knowledge import tasks

LONG_TEXT = "\n\n".join(
    f"Section {n}. "
    + " ".join(f"Sentence {n}-{m} recalls match day {m} at the old stadium." for m in range(12))
    for n in range(200)
)


async def add(client: httpx.AsyncClient, twin: Twin, **body: Any) -> httpx.Response:
    return await client.post(
        twin.sources_url, json={"kind": "TEXT", "title": "Notes", **body}, headers=twin.headers
    )


async def search(client: httpx.AsyncClient, twin: Twin, q: str) -> list[str]:
    response = await client.get(
        f"/api/v1/celebrities/{twin.celebrity_id}/knowledge/search", params={"q": q}, headers=twin.headers
    )
    assert response.status_code == 200, response.text
    return [p["title"] for p in response.json()]


async def events(db: Database, twin: Twin) -> list[PlatformEvent]:
    async with db.transaction(ADMIN) as session:
        query = (
            select(PlatformEvent)
            .where(
                PlatformEvent.tenant_id == twin.tenant.id,
                PlatformEvent.event_type == "KNOWLEDGE_SOURCE_CHANGED",
            )
            .order_by(PlatformEvent.occurred_at)
        )
        return list((await session.scalars(query)).all())


class TestAddingSources:
    async def test_a_small_text_is_ready_at_once_and_announced(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        response = await add(
            client,
            twin,
            content="Ganó la Copa en 1986.",
            url="https://example.com/copa",
            lastUpdated="2026-01-02T03:04:05Z",
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "READY"
        assert body["chunk_count"] == body["indexed_chunks"] == 1
        assert body["progress"] == 1.0
        assert body["url"] == "https://example.com/copa"
        assert body["last_updated_at"].startswith("2026-01-02T03:04:05")
        [event] = await events(db, twin)
        assert event.payload["action"] == "added"
        assert event.payload["source_id"] == body["id"]
        assert await search(client, twin, "Copa") == ["Notes"]

    @pytest.mark.parametrize(
        ("kind", "content", "query"),
        [
            ("MARKDOWN", "# Career\n\nHe **scored** in [the final](https://x.example).", "scored final"),
            (
                "HTML",
                "<nav>menu</nav><h1>Career</h1><p>He scored in the final.</p><script>x</script>",
                "final",
            ),
            ("QA", [{"question": "Favourite club?", "answer": "River Plate"}], "club"),
            (
                "LOREBOOK",
                {"entries": [{"keys": ["River"], "content": "His first club, in Buenos Aires."}]},
                "river",
            ),
        ],
    )
    async def test_every_json_kind_is_searchable(
        self, client: httpx.AsyncClient, twin: Twin, kind: str, content: Any, query: str
    ) -> None:
        response = await add(client, twin, kind=kind, content=content, title=f"{kind} source")
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "READY"
        assert await search(client, twin, query) == [f"{kind} source"]

    async def test_a_pdf_upload_is_read_and_named_after_its_file(
        self, client: httpx.AsyncClient, twin: Twin
    ) -> None:
        files = {"file": ("biografia.pdf", pdf_with_text("Campeon del mundo en Qatar"), "application/pdf")}
        response = await client.post(
            twin.sources_url, files=files, data={"url": "https://example.com/bio.pdf"}, headers=twin.headers
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["kind"], body["title"], body["file_name"]) == ("PDF", "biografia.pdf", "biografia.pdf")
        assert await search(client, twin, "Qatar") == ["biografia.pdf"]

    async def test_a_lorebook_file_needs_its_kind(self, client: httpx.AsyncClient, twin: Twin) -> None:
        book = json.dumps({"entries": [{"keys": ["Boca"], "content": "Rival of River."}]}).encode()
        files = {"file": ("book.json", book, "application/json")}
        missing = await client.post(twin.sources_url, files=files, headers=twin.headers)
        assert missing.status_code == 422
        assert missing.json()["error"]["field"] == "kind"
        given = await client.post(
            twin.sources_url, files=files, data={"kind": "LOREBOOK", "title": "Lore"}, headers=twin.headers
        )
        assert given.status_code == 201, given.text
        assert await search(client, twin, "rival") == ["Lore"]

    @pytest.mark.parametrize(
        ("request_kwargs", "code", "field"),
        [
            (
                {"files": {"file": ("bad.pdf", b"%PDF-1.7 broken", "application/pdf")}},
                "unreadable_document",
                None,
            ),
            ({"json": {"kind": "TEXT", "title": "Empty", "content": "  \n "}}, "empty_document", None),
            (
                {"json": {"kind": "TEXT", "title": "Big", "content": "a" * 2_000_001}},
                "document_too_large",
                None,
            ),
            ({"json": {"kind": "PDF", "title": "Inline", "content": "%PDF-1.4"}}, "invalid_input", "file"),
            ({"json": {"kind": "VIDEO", "title": "x", "content": "x"}}, "invalid_input", "kind"),
            ({"json": {"kind": "TEXT", "title": "", "content": "x"}}, "invalid_input", "title"),
            (
                {"json": {"kind": "TEXT", "title": "x", "content": "x", "url": "ftp://x"}},
                "invalid_input",
                "url",
            ),
            (
                {"json": {"kind": "QA", "title": "x", "content": [{"question": "q"}]}},
                "invalid_input",
                "content.0",
            ),
            (
                {"content": b"{not json", "headers": {"content-type": "application/json"}},
                "invalid_json",
                None,
            ),
            (
                {"data": {"title": "no file"}, "files": {"other": ("x.txt", b"x", "text/plain")}},
                "invalid_input",
                "file",
            ),
            (
                {"content": b"hello", "headers": {"content-type": "text/plain"}},
                "unsupported_media_type",
                None,
            ),
        ],
        ids=[
            "corrupt-pdf",
            "empty",
            "too-large",
            "pdf-as-json",
            "kind",
            "title",
            "url",
            "qa",
            "json",
            "no-file",
            "media",
        ],
    )
    async def test_bad_input_is_refused_and_nothing_is_written(
        self,
        client: httpx.AsyncClient,
        db: Database,
        twin: Twin,
        request_kwargs: dict[str, Any],
        code: str,
        field: str | None,
    ) -> None:
        headers = {**twin.headers, **request_kwargs.pop("headers", {})}
        response = await client.post(twin.sources_url, headers=headers, **request_kwargs)
        assert response.status_code in (415, 422), response.text
        error = response.json()["error"]
        assert error["code"] == code
        if field is not None:
            assert error["field"] == field
        listed = await client.get(twin.sources_url, headers=twin.headers)
        assert listed.json()["items"] == []
        assert await events(db, twin) == []


class TestReadingSources:
    async def test_sources_are_listed_newest_first_in_cursor_pages(
        self, client: httpx.AsyncClient, twin: Twin
    ) -> None:
        for n in range(5):
            assert (
                await add(client, twin, title=f"Note {n}", content=f"Fact number {n}.")
            ).status_code == 201
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(twin.sources_url, params=params, headers=twin.headers)).json()
            assert len(page["items"]) <= 2
            seen += [item["title"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"Note {n}" for n in reversed(range(5))]
        ready = await client.get(twin.sources_url, params={"status": "PENDING"}, headers=twin.headers)
        assert ready.json()["items"] == []
        bad = await client.get(twin.sources_url, params={"cursor": "nonsense"}, headers=twin.headers)
        assert bad.status_code == 422

    async def test_one_source_is_read_by_id(self, client: httpx.AsyncClient, twin: Twin) -> None:
        created = (await add(client, twin, content="Short fact.")).json()
        response = await client.get(f"{twin.sources_url}/{created['id']}", headers=twin.headers)
        assert response.status_code == 200
        assert response.json() == created


class TestChangingSources:
    async def test_replace_indexes_the_new_content_only(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        created = (await add(client, twin, title="Club", content="He played for Barcelona.")).json()
        response = await client.put(
            f"{twin.sources_url}/{created['id']}",
            json={"kind": "MARKDOWN", "title": "Club history", "content": "## Now\n\nHe plays for Miami."},
            headers=twin.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["id"], body["kind"], body["title"], body["status"]) == (
            created["id"], "MARKDOWN", "Club history", "READY",
        )  # fmt: skip
        assert await search(client, twin, "Barcelona") == []
        assert await search(client, twin, "Miami") == ["Club history"]
        assert [e.payload["action"] for e in await events(db, twin)] == ["added", "replaced"]

    async def test_a_refused_replacement_keeps_the_old_content(
        self, client: httpx.AsyncClient, twin: Twin
    ) -> None:
        created = (await add(client, twin, title="Club", content="He played for Barcelona.")).json()
        response = await client.put(
            f"{twin.sources_url}/{created['id']}",
            json={"kind": "TEXT", "title": "x", "content": ""},
            headers=twin.headers,
        )
        assert response.status_code == 422
        assert await search(client, twin, "Barcelona") == ["Club"]

    async def test_delete_removes_the_source_and_its_chunks(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        created = (await add(client, twin, title="Gone", content="A fact about Napoli.")).json()
        response = await client.delete(f"{twin.sources_url}/{created['id']}", headers=twin.headers)
        assert response.status_code == 204
        assert (
            await client.get(f"{twin.sources_url}/{created['id']}", headers=twin.headers)
        ).status_code == 404
        assert await search(client, twin, "Napoli") == []
        async with db.transaction(ADMIN) as session:
            left = await session.scalar(
                text("SELECT count(*) FROM knowledge_chunks WHERE source_id = :s"),
                {"s": uuid.UUID(created["id"])},
            )
        assert left == 0
        assert [e.payload["action"] for e in await events(db, twin)] == ["added", "deleted"]
        again = await client.delete(f"{twin.sources_url}/{created['id']}", headers=twin.headers)
        assert again.status_code == 404


class TestBackgroundIndexing:
    async def test_a_large_source_is_indexed_in_batches_with_progress(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        await run_indexer(db)  # earlier tests' events out of the way
        created = (await add(client, twin, title="Season", content=LONG_TEXT)).json()
        assert created["status"] == "PENDING"
        assert created["chunk_count"] > 64 * 2
        assert (created["indexed_chunks"], created["progress"]) == (0, 0.0)
        assert await search(client, twin, "stadium") == []

        registry = ConsumerRegistry()
        tasks.register(registry, embedder=lambda: None)
        dispatcher = Dispatcher(db, registry, worker_id="progress-test")
        seen: list[tuple[str, int]] = []
        url = f"{twin.sources_url}/{created['id']}"
        while await dispatcher.run_once():
            body = (await client.get(url, headers=twin.headers)).json()
            seen.append((body["status"], body["indexed_chunks"]))
        assert seen[0] == ("INDEXING", 64)
        assert ("INDEXING", 128) in seen
        final = (await client.get(url, headers=twin.headers)).json()
        assert (final["status"], final["indexed_chunks"], final["progress"]) == (
            "READY",
            created["chunk_count"],
            1.0,
        )
        assert final["indexed_at"] is not None
        assert await search(client, twin, "stadium") == ["Season"] * 5

    async def test_reindex_indexes_every_source_again_in_the_twins_language(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        await add(client, twin, title="Goles", content=SPANISH_GOALS)
        await add(client, twin, title="Season", content=LONG_TEXT)
        await run_indexer(db)
        # English stemming does not know that "goles" is "gol".
        assert await search(client, twin, "goles") == []
        async with db.transaction(ADMIN) as session:
            await session.execute(
                text(
                    "UPDATE celebrities SET twin_config ="
                    " jsonb_set(twin_config, '{personalityProfile,language}', '\"es\"') WHERE id = :id"
                ),
                {"id": twin.celebrity_id},
            )
        response = await client.post(
            f"/api/v1/celebrities/{twin.celebrity_id}/knowledge/reindex", headers=twin.headers
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["sources"] == 2
        assert body["ready"] == 1  # the small one, at once; the large one in the background
        listed = (await client.get(twin.sources_url, headers=twin.headers)).json()["items"]
        assert {(s["title"], s["status"]) for s in listed} == {("Goles", "READY"), ("Season", "PENDING")}
        await run_indexer(db)
        listed = (await client.get(twin.sources_url, headers=twin.headers)).json()["items"]
        assert {s["status"] for s in listed} == {"READY"}
        assert await search(client, twin, "goles") == ["Goles"]
        assert body["chunks"] == sum(s["chunk_count"] for s in listed)

    async def test_stale_batches_of_a_replaced_source_are_skipped(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        created = (await add(client, twin, title="Season", content=LONG_TEXT)).json()
        url = f"{twin.sources_url}/{created['id']}"
        replaced = await client.put(
            url, json={"kind": "TEXT", "title": "Short", "content": "Only this."}, headers=twin.headers
        )
        assert replaced.json()["status"] == "READY"
        await run_indexer(db)
        final = (await client.get(url, headers=twin.headers)).json()
        assert (final["status"], final["chunk_count"], final["indexed_chunks"]) == ("READY", 1, 1)


class TestAccess:
    async def test_another_tenant_gets_404_on_every_route(
        self, client: httpx.AsyncClient, twin: Twin, other_twin: Twin
    ) -> None:
        source = (await add(client, twin, content="Private fact.")).json()
        base = f"/api/v1/celebrities/{twin.celebrity_id}/knowledge"
        source_url = f"{base}/sources/{source['id']}"
        body = {"kind": "TEXT", "title": "x", "content": "y"}
        attempts = [
            ("POST", f"{base}/sources", body),
            ("GET", f"{base}/sources", None),
            ("GET", source_url, None),
            ("PUT", source_url, body),
            ("DELETE", source_url, None),
            ("POST", f"{base}/reindex", None),
            ("GET", f"{base}/search?q=private", None),
        ]
        for method, url, json_body in attempts:
            response = await client.request(method, url, json=json_body, headers=other_twin.headers)
            assert response.status_code == 404, (method, url, response.text)
            assert response.json()["error"]["code"] == "not_found"
        # Its own twin, with the first tenant's source id: still 404.
        foreign = f"{other_twin.sources_url}/{source['id']}"
        for method in ("GET", "PUT", "DELETE"):
            response = await client.request(
                method, foreign, json=body if method == "PUT" else None, headers=other_twin.headers
            )
            assert response.status_code == 404
        assert (await client.get(source_url, headers=twin.headers)).json()["title"] == "Notes"

    async def test_an_unknown_celebrity_is_404(self, client: httpx.AsyncClient, twin: Twin) -> None:
        response = await client.get(
            f"/api/v1/celebrities/{uuid.uuid4()}/knowledge/sources", headers=twin.headers
        )
        assert response.status_code == 404

    async def test_a_read_only_key_cannot_write(self, client: httpx.AsyncClient, db: Database) -> None:
        reader = await make_twin(
            db, scopes={Permission.KNOWLEDGE_READ.value, Permission.CELEBRITIES_READ.value}
        )
        assert (await client.get(reader.sources_url, headers=reader.headers)).status_code == 200
        response = await add(client, reader, content="x")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "missing_scope"

    def test_owners_and_managers_write_and_brand_managers_do_not_read(self) -> None:
        for role in (Role.TALENT_OWNER, Role.TALENT_MANAGER, Role.PLATFORM_ADMIN):
            assert {Permission.KNOWLEDGE_READ, Permission.KNOWLEDGE_WRITE} <= ROLE_PERMISSIONS[role]
        assert Permission.KNOWLEDGE_READ not in ROLE_PERMISSIONS[Role.BRAND_MANAGER]
        assert Permission.KNOWLEDGE_WRITE not in ROLE_PERMISSIONS[Role.BRAND_MANAGER]

    async def test_an_archived_twin_takes_no_new_knowledge(
        self, client: httpx.AsyncClient, db: Database, twin: Twin
    ) -> None:
        archived = await make_celebrity(
            db, twin.tenant, slug=f"arch-{uuid.uuid4().hex[:8]}", status="ARCHIVED"
        )
        response = await client.post(
            f"/api/v1/celebrities/{archived}/knowledge/sources",
            json={"kind": "TEXT", "title": "x", "content": "y"},
            headers=twin.headers,
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "celebrity_archived"


async def test_the_openapi_document_describes_the_knowledge_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    sources = paths["/api/v1/celebrities/{celebrity_id}/knowledge/sources"]
    assert set(sources["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"get", "put", "delete"} <= set(
        paths["/api/v1/celebrities/{celebrity_id}/knowledge/sources/{source_id}"]
    )
    assert "post" in paths["/api/v1/celebrities/{celebrity_id}/knowledge/reindex"]
    assert "get" in paths["/api/v1/celebrities/{celebrity_id}/knowledge/search"]
