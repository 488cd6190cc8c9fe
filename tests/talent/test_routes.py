"""The talent API: celebrities, twin configuration and contracts, over HTTP with API keys."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.factories import COMPLETE_TWIN_CONFIG, make_celebrity
from tests.talent.conftest import Talent, change, events_of, make_talent
from vibethink.core.database import Database


def celebrity_body(unique: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Andrés Cantor", "slug": f"andres-{unique}", "type": "SPORTS_COMMENTATOR", **extra}


def config_with(path: str, value: Any = None, *, remove: bool = False) -> dict[str, Any]:
    config = copy.deepcopy(COMPLETE_TWIN_CONFIG)
    *parents, leaf = path.split(".")
    target = config
    for part in parents:
        target = target[part]
    if remove:
        del target[leaf]
    else:
        target[leaf] = value
    return config


async def create(client: httpx.AsyncClient, talent: Talent, unique: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/celebrities", json=celebrity_body(unique, **extra), headers=talent.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestCreatingCelebrities:
    async def test_a_celebrity_without_a_config_starts_pending_setup(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique, bio="La voz del gol")
        assert created["status"] == "PENDING_SETUP"
        assert created["slug"] == f"andres-{unique}"
        assert created["twin_config_version"] is None
        config = await client.get(f"/api/v1/celebrities/{created['id']}/twin-config", headers=talent.headers)
        assert config.json()["twin_config"] == {}
        events = await events_of(db, talent.tenant.id, "CELEBRITY_CREATED")
        assert [e.subject_id for e in events] == [created["id"]]
        assert events[0].payload["slug"] == f"andres-{unique}"
        assert events[0].actor_role == "API_KEY"
        assert events[0].payload["actor_api_key_id"]

    async def test_a_celebrity_with_a_complete_config_is_active_at_version_one(
        self, client: httpx.AsyncClient, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        assert created["status"] == "ACTIVE"
        assert created["twin_config_version"] == 1

    async def test_an_invalid_config_is_refused_naming_the_field_and_nothing_is_written(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        response = await client.post(
            "/api/v1/celebrities",
            json=celebrity_body(unique, twin_config=config_with("guardrails.maxResponseLength", 50)),
            headers=talent.headers,
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "schema_violation"
        assert error["field"] == "twin_config.guardrails.maxResponseLength"
        listed = await client.get("/api/v1/celebrities", headers=talent.headers)
        assert listed.json()["items"] == []
        assert await events_of(db, talent.tenant.id) == []

    @pytest.mark.parametrize(
        ("slug", "reason"),
        [
            ("ab", "too short"),
            ("x" * 65, "too long"),
            ("Andres", "upper case"),
            ("andrés", "not ascii"),
            ("-andres", "leading hyphen"),
            ("andres--cantor", "double hyphen"),
            ("andres_cantor", "underscore"),
            ("admin", "reserved"),
            ("studio", "reserved"),
        ],
    )
    async def test_a_bad_slug_is_refused(
        self, client: httpx.AsyncClient, talent: Talent, slug: str, reason: str
    ) -> None:
        body = {"name": "X", "slug": slug, "type": "ATHLETE"}
        response = await client.post("/api/v1/celebrities", json=body, headers=talent.headers)
        assert response.status_code == 422, reason
        assert response.json()["error"]["field"] == "slug"

    async def test_a_taken_slug_is_a_conflict_even_across_tenants(
        self, client: httpx.AsyncClient, talent: Talent, other_talent: Talent, unique: str
    ) -> None:
        await create(client, other_talent, unique)
        response = await client.post(
            "/api/v1/celebrities", json=celebrity_body(unique), headers=talent.headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "already_exists"
        assert response.json()["error"]["field"] == "slug"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"slug": "no-name-here", "type": "ATHLETE"}, "name"),
            ({"name": "X", "type": "ATHLETE"}, "slug"),
            ({"name": "X", "slug": "no-type-here"}, "type"),
            ({"name": "X", "slug": "bad-type-here", "type": "ASTRONAUT"}, "type"),
            ({"name": "", "slug": "empty-name-here", "type": "ATHLETE"}, "name"),
            ({"name": "Nul\x00", "slug": "nul-name-here", "type": "ATHLETE"}, "name"),
            ({"name": "X", "slug": "extra-field-here", "type": "ATHLETE", "status": "ACTIVE"}, "status"),
            ({"name": "X", "slug": "config-list-here", "type": "ATHLETE", "twin_config": []}, "twin_config"),
        ],
    )
    async def test_bad_input_is_refused_naming_the_field(
        self, client: httpx.AsyncClient, talent: Talent, body: dict[str, Any], field: str
    ) -> None:
        response = await client.post("/api/v1/celebrities", json=body, headers=talent.headers)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == field

    async def test_a_key_without_the_write_scope_cannot_create(
        self, client: httpx.AsyncClient, db: Database, unique: str
    ) -> None:
        reader = await make_talent(db, unique, scopes={"celebrities:read"})
        response = await client.post(
            "/api/v1/celebrities", json=celebrity_body(unique), headers=reader.headers
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "missing_scope"

    async def test_no_credentials_is_unauthenticated(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/celebrities")
        assert response.status_code == 401


class TestListingCelebrities:
    async def test_pages_never_repeat_or_skip_a_celebrity(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        made = {str(await make_celebrity(db, talent.tenant, slug=f"page-{unique}-{i}")) for i in range(23)}
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 5}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/api/v1/celebrities", params=params, headers=talent.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 5
            seen += [item["id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 5
        assert len(seen) == len(set(seen)) == 23
        assert set(seen) == made

    async def test_the_default_page_is_fifty_newest_first(
        self, client: httpx.AsyncClient, talent: Talent, unique: str
    ) -> None:
        first = await create(client, talent, f"{unique}-1")
        second = await create(client, talent, f"{unique}-2")
        page = (await client.get("/api/v1/celebrities", headers=talent.headers)).json()
        assert [item["id"] for item in page["items"]] == [second["id"], first["id"]]
        assert page["next_cursor"] is None

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "many"}])
    async def test_a_limit_outside_one_to_a_hundred_is_refused(
        self, client: httpx.AsyncClient, talent: Talent, params: dict[str, Any]
    ) -> None:
        response = await client.get("/api/v1/celebrities", params=params, headers=talent.headers)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "limit"

    async def test_a_forged_cursor_is_refused(self, client: httpx.AsyncClient, talent: Talent) -> None:
        response = await client.get(
            "/api/v1/celebrities", params={"cursor": "bm9wZQ"}, headers=talent.headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "cursor"

    async def test_archived_celebrities_are_listed_only_when_asked(
        self, client: httpx.AsyncClient, talent: Talent, unique: str
    ) -> None:
        kept = await create(client, talent, f"{unique}-kept")
        gone = await create(client, talent, f"{unique}-gone")
        archived = await client.post(f"/api/v1/celebrities/{gone['id']}/archive", headers=talent.headers)
        assert archived.status_code == 200
        default = (await client.get("/api/v1/celebrities", headers=talent.headers)).json()
        assert [i["id"] for i in default["items"]] == [kept["id"]]
        only_archived = (
            await client.get("/api/v1/celebrities", params={"status": "ARCHIVED"}, headers=talent.headers)
        ).json()
        assert [i["id"] for i in only_archived["items"]] == [gone["id"]]
        pending = (
            await client.get(
                "/api/v1/celebrities", params={"status": "PENDING_SETUP"}, headers=talent.headers
            )
        ).json()
        assert [i["id"] for i in pending["items"]] == [kept["id"]]


class TestUpdatingCelebrities:
    async def test_profile_changes_are_saved_and_announced(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        response = await client.patch(
            f"/api/v1/celebrities/{created['id']}",
            json={"name": "Andrés Cantor Jr.", "bio": "Goooool", "type": "ENTERTAINER"},
            headers=talent.headers,
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["name"], updated["bio"], updated["type"]) == (
            "Andrés Cantor Jr.",
            "Goooool",
            "ENTERTAINER",
        )
        assert updated["updated_at"] >= created["updated_at"]
        changes = await events_of(db, talent.tenant.id, "CONFIGURATION_CHANGE")
        assert change(changes[-1]) == {"change": "celebrity", "fields": ["name", "bio", "type"]}

    async def test_activation_needs_a_complete_twin_config(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        url = f"/api/v1/celebrities/{created['id']}"
        refused = await client.patch(url, json={"status": "ACTIVE"}, headers=talent.headers)
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "incomplete_twin_config"
        assert error["field"] == "twin_config.personalityProfile"
        assert "twin_config.voiceCloneId" in error["message"]
        assert "twin_config.visualAvatarId" in error["message"]

        put = await client.put(f"{url}/twin-config", json=COMPLETE_TWIN_CONFIG, headers=talent.headers)
        assert put.status_code == 200, put.text
        accepted = await client.patch(url, json={"status": "ACTIVE"}, headers=talent.headers)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "ACTIVE"
        changes = await events_of(db, talent.tenant.id, "CONFIGURATION_CHANGE")
        assert changes[-1].payload["status"] == {"from": "PENDING_SETUP", "to": "ACTIVE"}

    @pytest.mark.parametrize(
        ("path", "allowed"),
        [
            (["INACTIVE", "ACTIVE"], True),
            (["SUSPENDED", "ACTIVE"], True),
            (["INACTIVE", "SUSPENDED", "INACTIVE"], True),
            (["PENDING_SETUP"], False),
        ],
    )
    async def test_status_moves_along_the_lifecycle(
        self, client: httpx.AsyncClient, talent: Talent, unique: str, path: list[str], allowed: bool
    ) -> None:
        created = await create(client, talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        url = f"/api/v1/celebrities/{created['id']}"
        for status in path[:-1]:
            assert (
                await client.patch(url, json={"status": status}, headers=talent.headers)
            ).status_code == 200
        last = await client.patch(url, json={"status": path[-1]}, headers=talent.headers)
        if allowed:
            assert last.status_code == 200
            assert last.json()["status"] == path[-1]
        else:
            assert last.status_code == 409
            assert last.json()["error"]["code"] == "invalid_transition"

    async def test_a_pending_celebrity_cannot_be_made_inactive(
        self, client: httpx.AsyncClient, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        response = await client.patch(
            f"/api/v1/celebrities/{created['id']}", json={"status": "INACTIVE"}, headers=talent.headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["field"] == "status"

    async def test_archiving_is_terminal_and_announced_once(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        url = f"/api/v1/celebrities/{created['id']}"
        archived = await client.post(f"{url}/archive", headers=talent.headers)
        assert archived.status_code == 200
        assert archived.json()["status"] == "ARCHIVED"
        assert archived.json()["archived_at"] is not None
        again = await client.post(f"{url}/archive", headers=talent.headers)
        assert again.json()["archived_at"] == archived.json()["archived_at"]
        events = await events_of(db, talent.tenant.id, "CELEBRITY_ARCHIVED")
        assert [(e.subject_id, e.payload["from_status"]) for e in events] == [(created["id"], "ACTIVE")]

        for request in (
            client.patch(url, json={"status": "ACTIVE"}, headers=talent.headers),
            client.patch(url, json={"name": "Back"}, headers=talent.headers),
            client.put(f"{url}/twin-config", json=COMPLETE_TWIN_CONFIG, headers=talent.headers),
            client.put(f"{url}/contract", json={"starts_on": "2026-01-01"}, headers=talent.headers),
        ):
            response = await request
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "celebrity_archived"
        assert (await client.get(url, headers=talent.headers)).json()["status"] == "ARCHIVED"

    async def test_archiving_through_a_status_change_is_the_same_as_archive(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        response = await client.patch(
            f"/api/v1/celebrities/{created['id']}", json={"status": "ARCHIVED"}, headers=talent.headers
        )
        assert response.status_code == 200
        assert response.json()["archived_at"] is not None
        assert len(await events_of(db, talent.tenant.id, "CELEBRITY_ARCHIVED")) == 1


class TestTwinConfig:
    async def test_a_new_config_is_stored_with_its_version_and_a_diff_of_keys(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique, twin_config=config_with("guardrails", remove=True))
        url = f"/api/v1/celebrities/{created['id']}/twin-config"
        new = config_with("personalityProfile.tone", "excited")
        del new["knowledgeBase"]
        response = await client.put(url, json=new, headers=talent.headers)
        assert response.status_code == 200, response.text
        assert response.json()["twin_config"] == new
        assert response.json()["twin_config_version"] == 1
        assert (await client.get(url, headers=talent.headers)).json()["twin_config"] == new
        announced = change((await events_of(db, talent.tenant.id, "CONFIGURATION_CHANGE"))[-1])
        assert announced == {
            "change": "twin_config",
            "version": 1,
            "previous_version": 1,
            "added": ["guardrails"],
            "removed": ["knowledgeBase"],
            "changed": ["personalityProfile"],
        }
        assert "excited" not in str(announced)

    async def test_writing_the_same_config_again_announces_nothing(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        url = f"/api/v1/celebrities/{created['id']}/twin-config"
        assert (await client.put(url, json=COMPLETE_TWIN_CONFIG, headers=talent.headers)).status_code == 200
        assert await events_of(db, talent.tenant.id, "CONFIGURATION_CHANGE") == []

    @pytest.mark.parametrize(
        "missing",
        [
            "voiceCloneId",
            "visualAvatarId",
            "personalityProfile",
            "personalityProfile.tone",
            "personalityProfile.language",
        ],
    )
    async def test_each_missing_required_field_is_a_422_naming_it(
        self, client: httpx.AsyncClient, talent: Talent, unique: str, missing: str
    ) -> None:
        created = await create(client, talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        response = await client.put(
            f"/api/v1/celebrities/{created['id']}/twin-config",
            json=config_with(missing, remove=True),
            headers=talent.headers,
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == f"twin_config.{missing}"

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            ("voiceCloneId", ""),
            ("visualAvatarId", ""),
            ("voiceCloneId", None),
            ("guardrails.maxResponseLength", 99),
            ("guardrails.maxResponseLength", "long"),
            ("guardrails.contentRating", "X"),
            ("personalityProfile.tone", 3),
            ("knowledgeBase.lastUpdated", "last tuesday"),
            ("personalityProfile.language", "en\x00"),
        ],
    )
    async def test_each_constraint_is_a_422_naming_the_field(
        self, client: httpx.AsyncClient, talent: Talent, unique: str, path: str, value: Any
    ) -> None:
        created = await create(client, talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        response = await client.put(
            f"/api/v1/celebrities/{created['id']}/twin-config",
            json=config_with(path, value),
            headers=talent.headers,
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == f"twin_config.{path}"

    async def test_a_number_json_cannot_carry_is_refused_not_a_server_error(
        self, client: httpx.AsyncClient, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        raw = json.dumps(config_with("knowledgeBase.sources", [1.5])).replace("1.5", "NaN")
        response = await client.put(
            f"/api/v1/celebrities/{created['id']}/twin-config",
            content=raw,
            headers={**talent.headers, "content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "twin_config.knowledgeBase.sources.0"

    async def test_a_body_that_is_not_an_object_is_refused(
        self, client: httpx.AsyncClient, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        response = await client.put(
            f"/api/v1/celebrities/{created['id']}/twin-config", json=["voiceCloneId"], headers=talent.headers
        )
        assert response.status_code == 422


class TestContracts:
    async def test_a_new_contract_takes_the_default_shares(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        url = f"/api/v1/celebrities/{created['id']}/contract"
        assert (await client.get(url, headers=talent.headers)).status_code == 404
        response = await client.put(url, json={"starts_on": "2026-01-01"}, headers=talent.headers)
        assert response.status_code == 200, response.text
        contract = response.json()
        assert contract["revenue_shares_bp"] == {
            "SUBSCRIPTION": 7000,
            "TRANSACTION_FEE": 7000,
            "CAMPAIGN_FEE": 8000,
            "CPM": 8000,
            "CPC": 8000,
        }
        assert contract["platform_only_revenue_types"] == ["SETUP_FEE", "PLATFORM_FEE"]
        assert contract["exclusivity_rules"] == {"exclusiveCategories": [], "blockedBrands": []}
        assert (await client.get(url, headers=talent.headers)).json() == contract
        updated = await events_of(db, talent.tenant.id, "CONTRACT_UPDATED")
        assert updated[-1].payload["created"] is True
        assert updated[-1].subject_id == contract["id"]

    async def test_changing_shares_and_exclusivity_updates_the_same_contract(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        created = await create(client, talent, unique)
        url = f"/api/v1/celebrities/{created['id']}/contract"
        first = (await client.put(url, json={"starts_on": "2026-01-01"}, headers=talent.headers)).json()
        body = {
            "starts_on": "2026-01-01",
            "ends_on": "2027-12-31",
            "revenue_shares_bp": {"SUBSCRIPTION": 7500, "CPM": 0},
            "exclusivity_rules": {"exclusiveCategories": ["soft drinks"], "blockedBrands": ["Pepsi"]},
        }
        response = await client.put(url, json=body, headers=talent.headers)
        assert response.status_code == 200, response.text
        second = response.json()
        assert second["id"] == first["id"]
        assert second["revenue_shares_bp"]["SUBSCRIPTION"] == 7500
        assert second["revenue_shares_bp"]["CPM"] == 0
        assert second["revenue_shares_bp"]["CPC"] == 8000
        assert second["exclusivity_rules"] == body["exclusivity_rules"]
        assert second["ends_on"] == "2027-12-31"
        payload = (await events_of(db, talent.tenant.id, "CONTRACT_UPDATED"))[-1].payload
        assert payload["created"] is False
        assert payload["fields"] == ["revenue_shares_bp", "exclusivity_rules", "ends_on"]
        assert payload["revenue_shares_bp"] == {
            "SUBSCRIPTION": {"from": 7000, "to": 7500},
            "CPM": {"from": 8000, "to": 0},
        }
        contract_change = change((await events_of(db, talent.tenant.id, "CONFIGURATION_CHANGE"))[-1])
        assert contract_change == {
            "change": "contract",
            "contract_id": first["id"],
            "fields": payload["fields"],
        }

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"starts_on": "2026-06-01", "ends_on": "2026-06-01"}, "ends_on"),
            ({"starts_on": "2026-06-01", "ends_on": "2025-01-01"}, "ends_on"),
            ({}, "starts_on"),
            ({"starts_on": "yesterday"}, "starts_on"),
            ({"starts_on": "2026-01-01", "revenue_shares_bp": {"CPM": 10001}}, "revenue_shares_bp.CPM"),
            ({"starts_on": "2026-01-01", "revenue_shares_bp": {"CPC": -1}}, "revenue_shares_bp.CPC"),
            ({"starts_on": "2026-01-01", "revenue_shares_bp": {"CPC": 70.5}}, "revenue_shares_bp.CPC"),
            ({"starts_on": "2026-01-01", "revenue_shares_bp": {"CPC": "7000"}}, "revenue_shares_bp.CPC"),
            (
                {"starts_on": "2026-01-01", "revenue_shares_bp": {"SETUP_FEE": 0}},
                "revenue_shares_bp.SETUP_FEE",
            ),
            (
                {"starts_on": "2026-01-01", "revenue_shares_bp": {"PLATFORM_FEE": 100}},
                "revenue_shares_bp.PLATFORM_FEE",
            ),
            ({"starts_on": "2026-01-01", "revenue_shares_bp": {"TIPS": 100}}, "revenue_shares_bp.TIPS"),
            (
                {"starts_on": "2026-01-01", "exclusivity_rules": {"blockedBrands": "Pepsi"}},
                "exclusivity_rules.blockedBrands",
            ),
            (
                {"starts_on": "2026-01-01", "exclusivity_rules": {"competitors": []}},
                "exclusivity_rules.competitors",
            ),
        ],
    )
    async def test_bad_terms_are_refused_naming_the_field(
        self, client: httpx.AsyncClient, talent: Talent, unique: str, body: dict[str, Any], field: str
    ) -> None:
        created = await create(client, talent, unique)
        response = await client.put(
            f"/api/v1/celebrities/{created['id']}/contract", json=body, headers=talent.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field

    async def test_contracts_need_the_contract_scopes(
        self, client: httpx.AsyncClient, db: Database, unique: str
    ) -> None:
        limited = await make_talent(db, unique, scopes={"celebrities:read", "celebrities:write"})
        created = await create(client, limited, unique)
        url = f"/api/v1/celebrities/{created['id']}/contract"
        assert (await client.get(url, headers=limited.headers)).status_code == 403
        put = await client.put(url, json={"starts_on": "2026-01-01"}, headers=limited.headers)
        assert put.status_code == 403


class TestAnotherTenantsCelebrity:
    async def test_every_route_answers_404_and_changes_nothing(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, other_talent: Talent, unique: str
    ) -> None:
        theirs = await create(client, other_talent, unique, twin_config=COMPLETE_TWIN_CONFIG)
        url = f"/api/v1/celebrities/{theirs['id']}"
        await client.put(f"{url}/contract", json={"starts_on": "2026-01-01"}, headers=other_talent.headers)
        before = await events_of(db, other_talent.tenant.id)
        attempts = [
            client.get(url, headers=talent.headers),
            client.patch(url, json={"name": "Hijacked"}, headers=talent.headers),
            client.patch(url, json={"status": "SUSPENDED"}, headers=talent.headers),
            client.post(f"{url}/archive", headers=talent.headers),
            client.get(f"{url}/twin-config", headers=talent.headers),
            client.put(f"{url}/twin-config", json=COMPLETE_TWIN_CONFIG, headers=talent.headers),
            client.get(f"{url}/contract", headers=talent.headers),
            client.put(f"{url}/contract", json={"starts_on": "2026-02-01"}, headers=talent.headers),
        ]
        for attempt in attempts:
            response = await attempt
            assert response.status_code == 404, response.request.url
            assert response.json()["error"]["code"] == "not_found"
        unchanged = (await client.get(url, headers=other_talent.headers)).json()
        assert unchanged == theirs
        assert len(await events_of(db, other_talent.tenant.id)) == len(before)
        assert await events_of(db, talent.tenant.id) == []
        listed = (await client.get("/api/v1/celebrities", headers=talent.headers)).json()
        assert listed["items"] == []

    async def test_an_unknown_id_is_404_too(self, client: httpx.AsyncClient, talent: Talent) -> None:
        response = await client.get(f"/api/v1/celebrities/{uuid.uuid4()}", headers=talent.headers)
        assert response.status_code == 404


async def test_the_openapi_document_describes_every_talent_route(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/api/v1/celebrities"]) == {"get", "post"}
    assert set(paths["/api/v1/celebrities/{celebrity_id}"]) == {"get", "patch"}
    assert set(paths["/api/v1/celebrities/{celebrity_id}/archive"]) == {"post"}
    assert set(paths["/api/v1/celebrities/{celebrity_id}/twin-config"]) == {"get", "put"}
    assert set(paths["/api/v1/celebrities/{celebrity_id}/contract"]) == {"get", "put"}
