"""Deployments API: create, configure, schedule, switch, archive, secrets, domains; tenants apart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from tests.chat.conftest import ChatTwin
from tests.deployments.conftest import VerificationServer, create, domain
from vibethink.core.database import Database, RlsContext
from vibethink.core.periodic import PeriodicRunner
from vibethink.core.settings import Settings
from vibethink.deployments import service
from vibethink.deployments import tasks as deployment_tasks


def soon(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


class TestCreate:
    async def test_a_widget_deployment_gets_its_keys_embed_code_and_event(
        self, client: httpx.AsyncClient, talent: ChatTwin, db: Database
    ) -> None:
        body = await create(
            client,
            talent,
            config={"theme": {"mode": "dark", "primaryColor": "#112233", "position": "bottom-left"}},
            allowed_origins=["https://andrescantor.com", "*.fans.example.com"],
        )
        assert body["status"] == body["effective_status"] == "ACTIVE"
        assert body["widget_key"].startswith("vtw_")
        assert body["analytics_key"].startswith("vta_")
        assert body["allowed_origins"] == ["https://andrescantor.com", "*.fans.example.com"]
        assert 'data-deployment-key="' + body["widget_key"] + '"' in body["embed_code"]
        assert 'data-position="bottom-left"' in body["embed_code"]
        assert 'data-theme="dark"' in body["embed_code"]
        assert body["has_identity_secret"] is False
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            events = (
                (
                    await s.execute(
                        text("SELECT event_type FROM platform_events WHERE subject_id = :id"),
                        {"id": body["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert events == ["DEPLOYMENT_CREATED"]

    @pytest.mark.parametrize(
        ("config", "field"),
        [
            ({"theme": {"primaryColor": "red; background: url(x)"}}, "config.theme.primaryColor"),
            ({"theme": {"position": "middle"}}, "config.theme.position"),
            ({"branding": {"logoUrl": "javascript:alert(1)"}}, "config.branding.logoUrl"),
            ({"premiumContent": [{"title": "x", "tier": "VIP"}]}, "config.premiumContent.0.body"),
            ({"overrides": {"tone": 3}}, "config.overrides.tone"),
        ],
    )
    async def test_a_config_is_validated_against_the_deployment_config_schema(
        self, client: httpx.AsyncClient, talent: ChatTwin, config: dict[str, object], field: str
    ) -> None:
        body = await create(client, talent, expected=422, config=config)
        assert body["error"]["code"] == "schema_violation"
        assert body["error"]["field"] == field

    async def test_bad_origins_are_refused_with_the_field(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        body = await create(client, talent, expected=422, allowed_origins=["https://ok.com", "*"])
        assert body["error"]["field"] == "allowed_origins.1"

    async def test_a_future_start_is_scheduled(self, client: httpx.AsyncClient, talent: ChatTwin) -> None:
        body = await create(client, talent, starts_at=soon(60), ends_at=soon(120))
        assert body["status"] == body["effective_status"] == "SCHEDULED"


class TestLifecycle:
    async def test_schedule_activate_deactivate_archive(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await create(client, talent)
        path = f"/api/v1/deployments/{created['id']}"
        scheduled = await client.post(
            f"{path}/schedule", json={"starts_at": soon(30), "ends_at": soon(90)}, headers=talent.headers
        )
        assert scheduled.json()["status"] == "SCHEDULED"
        activated = (await client.post(f"{path}/activate", headers=talent.headers)).json()
        assert activated["status"] == activated["effective_status"] == "ACTIVE"
        assert datetime.fromisoformat(activated["starts_at"]) <= datetime.now(UTC)
        deactivated = (await client.post(f"{path}/deactivate", headers=talent.headers)).json()
        assert deactivated["status"] == "INACTIVE"
        archived = (await client.post(f"{path}/archive", headers=talent.headers)).json()
        assert archived["status"] == "ARCHIVED"
        assert archived["archived_at"]
        refused = await client.patch(path, json={"name": "again"}, headers=talent.headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "deployment_archived"
        listed = (await client.get("/api/v1/deployments", headers=talent.headers)).json()
        assert created["id"] not in [d["id"] for d in listed["items"]]

    async def test_a_finished_window_cannot_be_switched_on(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await create(client, talent, starts_at=soon(-120), ends_at=soon(-60))
        assert created["effective_status"] == "INACTIVE"
        response = await client.post(f"/api/v1/deployments/{created['id']}/activate", headers=talent.headers)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "window_ended"

    async def test_the_sweep_moves_due_deployments_by_the_clock_with_events(
        self, client: httpx.AsyncClient, talent: ChatTwin, db: Database, test_settings: Settings
    ) -> None:
        starting = await create(client, talent, name="starting", starts_at=soon(30))
        ending = await create(client, talent, name="ending")
        async with db.transaction(RlsContext(is_admin=True)) as s:
            await s.execute(
                text("UPDATE deployments SET starts_at = now() - interval '1 minute' WHERE id = :id"),
                {"id": starting["id"]},
            )
            await s.execute(
                text("UPDATE deployments SET ends_at = now() - interval '1 second' WHERE id = :id"),
                {"id": ending["id"]},
            )
        # The background runner's job moves them (several runners: the row locks move each once).
        runner = PeriodicRunner(db, deployment_tasks.periodic_jobs(test_settings))
        run = await runner.run_job(runner.jobs[0])
        assert run.ok, run.summary
        assert int(run.summary.split()[0]) >= 2
        async with db.transaction(RlsContext()) as s:
            assert await service.advance_schedules(s) == 0  # nothing left to move: no duplicate events
        for deployment, status in ((starting, "ACTIVE"), (ending, "INACTIVE")):
            got = (await client.get(f"/api/v1/deployments/{deployment['id']}", headers=talent.headers)).json()
            assert got["status"] == status
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            reasons = (
                (
                    await s.execute(
                        text(
                            "SELECT payload->>'reason' FROM platform_events"
                            " WHERE event_type = 'DEPLOYMENT_STATUS_CHANGED' AND subject_id IN (:a, :b)"
                        ),
                        {"a": starting["id"], "b": ending["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert reasons == ["schedule", "schedule"]

    async def test_config_updates_replace_the_document_and_name_changed_fields(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await create(client, talent, config={"branding": {"greeting": "Hi"}})
        response = await client.patch(
            f"/api/v1/deployments/{created['id']}",
            json={"config": {"overrides": {"tone": "formal"}}, "require_identity": True},
            headers=talent.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["config"] == {"overrides": {"tone": "formal"}}
        assert response.json()["require_identity"] is True


class TestIdentitySecret:
    async def test_the_secret_is_shown_once_and_rotation_replaces_it(
        self, client: httpx.AsyncClient, talent: ChatTwin, test_settings: Settings
    ) -> None:
        created = await create(client, talent)
        path = f"/api/v1/deployments/{created['id']}"
        first = (await client.post(f"{path}/identity-secret", headers=talent.headers)).json()["secret"]
        second = (await client.post(f"{path}/identity-secret", headers=talent.headers)).json()["secret"]
        assert first.startswith("vtid_")
        assert first != second
        read = await client.get(path, headers=talent.headers)
        assert read.json()["has_identity_secret"] is True
        assert first not in read.text
        assert second not in read.text


class TestCustomDomains:
    async def test_a_white_label_domain_is_switched_on_only_after_its_token_is_found(
        self,
        client_for: object,
        talent: ChatTwin,
        verification_server: VerificationServer,
    ) -> None:
        http: httpx.AsyncClient = client_for(domain_verification_url=verification_server.url_template)  # type: ignore[operator]
        name = domain()
        created = await create(http, talent, type="WHITE_LABEL", name="Own site", custom_domain=name)
        assert created["status"] == "INACTIVE"
        assert created["domain"]["verified"] is False
        path = f"/api/v1/deployments/{created['id']}"
        refused = await http.post(f"{path}/activate", headers=talent.headers)
        assert refused.json()["error"]["code"] == "domain_not_verified"
        failed = await http.post(f"{path}/domain/verify", headers=talent.headers)
        assert failed.status_code == 409
        assert failed.json()["error"]["code"] == "domain_verification_failed"
        verification_server.tokens[name] = "vtv_wrong"
        assert (await http.post(f"{path}/domain/verify", headers=talent.headers)).status_code == 409
        verification_server.tokens[name] = created["domain"]["token"]
        verified = await http.post(f"{path}/domain/verify", headers=talent.headers)
        assert verified.status_code == 200, verified.text
        assert verified.json()["domain"]["verified"] is True
        active = (await http.post(f"{path}/activate", headers=talent.headers)).json()
        assert active["status"] == "ACTIVE"
        assert active["public_url"] == f"https://{name}/"

    async def test_a_domain_belongs_to_one_deployment_and_only_white_labels_have_one(
        self, client: httpx.AsyncClient, talent: ChatTwin, other_talent: ChatTwin
    ) -> None:
        name = domain()
        await create(client, talent, type="WHITE_LABEL", custom_domain=name)
        taken = await create(client, other_talent, expected=409, type="WHITE_LABEL", custom_domain=name)
        assert taken["error"]["code"] == "already_exists"
        wrong = await create(client, talent, expected=422, type="EMBEDDED_WIDGET", custom_domain=domain())
        assert wrong["error"]["field"] == "custom_domain"

    @pytest.mark.parametrize("bad", ["127.0.0.1", "http://x.com", "localhost", "x.com/path", "a..com"])
    async def test_a_custom_domain_must_be_a_domain_name(
        self, client: httpx.AsyncClient, talent: ChatTwin, bad: str
    ) -> None:
        body = await create(client, talent, expected=422, type="WHITE_LABEL", custom_domain=bad)
        assert body["error"]["field"] == "custom_domain"


class TestTenantsStayApart:
    async def test_a_talent_never_sees_or_changes_another_talents_deployments(
        self, client: httpx.AsyncClient, talent: ChatTwin, other_talent: ChatTwin
    ) -> None:
        theirs = await create(client, other_talent)
        path = f"/api/v1/deployments/{theirs['id']}"
        for method, suffix in (
            ("GET", ""),
            ("PATCH", ""),
            ("POST", "/archive"),
            ("POST", "/identity-secret"),
        ):
            response = await client.request(
                method,
                path + suffix,
                headers=talent.headers,
                json={"name": "x"} if method == "PATCH" else None,
            )
            assert response.status_code == 404, (method, suffix, response.text)
        listed = (await client.get("/api/v1/deployments", headers=talent.headers)).json()
        assert theirs["id"] not in [d["id"] for d in listed["items"]]
        mine = await client.post(
            f"/api/v1/celebrities/{other_talent.celebrity_id}/deployments",
            json={"type": "EMBEDDED_WIDGET", "name": "x"},
            headers=talent.headers,
        )
        assert mine.status_code == 404

    async def test_the_list_is_cursor_paginated(self, client: httpx.AsyncClient, talent: ChatTwin) -> None:
        for i in range(3):
            await create(client, talent, name=f"w{i}")
        seen: list[str] = []
        cursor = None
        while True:
            params = {
                "limit": 2,
                "celebrity_id": str(talent.celebrity_id),
                **({"cursor": cursor} if cursor else {}),
            }
            page = (await client.get("/api/v1/deployments", params=params, headers=talent.headers)).json()
            seen += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 4  # three widgets and the portal

    async def test_stats_start_at_zero(self, client: httpx.AsyncClient, talent: ChatTwin) -> None:
        created = await create(client, talent)
        stats = (
            await client.get(f"/api/v1/deployments/{created['id']}/stats", headers=talent.headers)
        ).json()
        assert stats["interactions"] == stats["unique_fans"] == stats["conversions"] == 0
        assert (
            await client.get(f"/api/v1/deployments/{uuid.uuid4()}/stats", headers=talent.headers)
        ).status_code == 404
