"""Brand campaigns: requests, decisions, exclusivity, contract rules, windows, disclosure, tenants apart."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.campaigns.conftest import MadeBrand, days, make_brand, request_campaign, slug_of
from tests.chat.conftest import ChatTwin, make_chat_twin, new_fan
from vibethink.core.database import Database, RlsContext


async def approve(client: httpx.AsyncClient, twin: ChatTwin, campaign_id: str, expected: int = 200) -> dict:  # type: ignore[type-arg]
    response = await client.post(
        f"/api/v1/campaigns/{campaign_id}/approve", json={"note": "Welcome aboard"}, headers=twin.headers
    )
    assert response.status_code == expected, response.text
    return response.json()  # type: ignore[no-any-return]


class TestRequestAndDecision:
    async def test_an_approved_request_opens_a_campaign_deployment_with_its_disclosure(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        coca = await make_brand(db, "Coca-Cola")
        slug = await slug_of(db, talent)
        # The campaign page takes the look of the talent's portal.
        await client.patch(
            f"/api/v1/deployments/{talent.portal}",
            json={"config": {"theme": {"primaryColor": "#aa0000"}}},
            headers=talent.headers,
        )
        requested = await request_campaign(client, coca, slug)
        assert requested["status"] == "REQUESTED"
        assert requested["deployment_id"] is None
        listed = (await client.get("/api/v1/campaigns", headers=talent.headers)).json()
        assert [c["id"] for c in listed["items"]] == [requested["id"]]
        approved = await approve(client, talent, requested["id"])
        assert approved["status"] == "APPROVED"
        assert approved["effective_status"] == "ACTIVE"
        assert approved["disclosure"] == "Paid partnership with Coca-Cola"
        deployment = (
            await client.get(f"/api/v1/deployments/{approved['deployment_id']}", headers=talent.headers)
        ).json()
        assert deployment["type"] == "BRAND_CAMPAIGN"
        assert deployment["config"]["competitors"] == ["Pepsi"]
        assert deployment["config"]["theme"] == {"primaryColor": "#aa0000"}
        assert deployment["public_url"].endswith(f"/{slug}/c/coca-cola-world-cup")
        # The brand follows its request and reads the talent's note.
        mine = (await client.get(f"/api/v1/brand/campaigns/{requested['id']}", headers=coca.headers)).json()
        assert mine["status"] == "APPROVED"
        assert mine["decision_note"] == "Welcome aboard"
        # Fans in the campaign's context get the disclosure in the API and on the page.
        fan = await new_fan(client, approved["deployment_id"])
        reply = (await fan.say(await fan.start(), "Who has sponsored the World Cup?")).json()
        assert reply["disclosure"] == "Paid partnership with Coca-Cola"
        page = await client.get(f"/{slug}/c/coca-cola-world-cup")
        assert "Paid partnership with Coca-Cola" in page.text

    async def test_a_rejected_request_keeps_its_note_and_cannot_be_approved(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        brand = await make_brand(db, "Pepsi")
        requested = await request_campaign(client, brand, await slug_of(db, talent))
        rejected = await client.post(
            f"/api/v1/campaigns/{requested['id']}/reject",
            json={"note": "Not our style"},
            headers=talent.headers,
        )
        assert rejected.json()["status"] == "REJECTED"
        assert rejected.json()["decision_note"] == "Not our style"
        again = await approve(client, talent, requested["id"], expected=409)
        assert again["error"]["code"] == "invalid_transition"

    async def test_a_brand_may_withdraw_only_an_undecided_request(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        brand = await make_brand(db, "Fanta")
        slug = await slug_of(db, talent)
        first = await request_campaign(client, brand, slug)
        withdrawn = await client.post(
            f"/api/v1/brand/campaigns/{first['id']}/withdraw", headers=brand.headers
        )
        assert withdrawn.json()["status"] == "CANCELLED"
        second = await request_campaign(client, brand, slug, campaign_name="Second")
        await approve(client, talent, second["id"])
        late = await client.post(f"/api/v1/brand/campaigns/{second['id']}/withdraw", headers=brand.headers)
        assert late.status_code == 409

    async def test_a_brand_cannot_decide_its_own_request(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        brand = await make_brand(db, "Sprite")
        requested = await request_campaign(client, brand, await slug_of(db, talent))
        response = await client.post(f"/api/v1/campaigns/{requested['id']}/approve", headers=brand.headers)
        assert response.status_code == 404

    async def test_an_unknown_twin_and_a_tenant_without_a_brand_are_refused(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        brand = await make_brand(db, "Nobody")
        missing = await request_campaign(client, brand, "no-such-twin", expected=404)
        assert missing["error"]["field"] == "celebrity_slug"
        refused = await request_campaign(
            client, MadeBrand(talent.tenant.id, talent.celebrity_id, "x", talent.headers), "no-such-twin", 403
        )
        assert refused["error"]["code"] == "not_a_brand"


class TestExclusivity:
    async def test_overlapping_exclusive_campaigns_are_refused_naming_the_conflict(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        coca, pepsi = await make_brand(db, "Coca-Cola"), await make_brand(db, "Pepsi")
        slug = await slug_of(db, talent)
        exclusive = await request_campaign(
            client, coca, slug, is_exclusive=True, campaign_name="Mundial 2026"
        )
        rival = await request_campaign(client, pepsi, slug, starts_at=days(5), ends_at=days(10))
        await approve(client, talent, exclusive["id"])
        conflict = await approve(client, talent, rival["id"], expected=409)
        assert conflict["error"]["code"] == "campaign_conflict"
        assert "Mundial 2026" in conflict["error"]["message"]
        assert conflict["error"]["details"]["conflicting_campaign_id"] == exclusive["id"]
        # A new request is refused up front, without naming another brand's campaign.
        upfront = await request_campaign(
            client, pepsi, slug, expected=409, starts_at=days(2), ends_at=days(3)
        )
        assert "Mundial" not in upfront["error"]["message"]
        assert "Coca" not in upfront["error"]["message"]

    async def test_non_exclusive_campaigns_run_side_by_side(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        coca, nike = await make_brand(db, "Coca-Cola"), await make_brand(db, "Nike", "sportswear")
        slug = await slug_of(db, talent)
        first = await request_campaign(client, coca, slug)
        second = await request_campaign(
            client, nike, slug, category="sportswear", guidelines={"competitors": ["Adidas", "Puma"]}
        )
        third = await request_campaign(client, await make_brand(db, "Fanta"), slug, campaign_name="Fanta fun")
        for campaign in (first, second, third):
            assert (await approve(client, talent, campaign["id"]))["effective_status"] == "ACTIVE"

    async def test_an_exclusive_category_in_the_contract_admits_one_campaign_at_a_time(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await client.put(
            f"/api/v1/celebrities/{talent.celebrity_id}/contract",
            json={
                "starts_on": "2026-01-01",
                "exclusivity_rules": {"exclusiveCategories": ["beverages"], "blockedBrands": ["Red Bull"]},
            },
            headers=talent.headers,
        )
        slug = await slug_of(db, talent)
        first = await request_campaign(client, await make_brand(db, "Coca-Cola"), slug)
        second = await request_campaign(client, await make_brand(db, "Fanta"), slug, campaign_name="Fanta")
        await approve(client, talent, first["id"])
        assert (await approve(client, talent, second["id"], expected=409))["error"][
            "code"
        ] == "campaign_conflict"
        blocked = await request_campaign(client, await make_brand(db, "Red Bull"), slug, category="energy")
        refused = await approve(client, talent, blocked["id"], expected=409)
        assert refused["error"]["code"] == "contract_exclusivity"


class TestWindows:
    async def test_a_campaign_outside_its_window_answers_as_unavailable(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        brand = await make_brand(db, "Coca-Cola")
        slug = await slug_of(db, talent)
        future = await approve(
            client,
            talent,
            (await request_campaign(client, brand, slug, starts_at=days(3), ends_at=days(9)))["id"],
        )
        assert future["effective_status"] == "APPROVED"
        response = await client.post("/api/v1/chat/sessions", json={"deployment_id": future["deployment_id"]})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "twin_unavailable"
        assert (await client.get(f"/{slug}/c/{future['slug']}")).status_code == 404
        # Move the window into the past: the running deployment closes with it.
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            await s.execute(
                text(
                    "UPDATE deployments SET starts_at = now() - interval '10 days',"
                    " ends_at = now() - interval '1 day'"
                    " WHERE id = :id"
                ),
                {"id": future["deployment_id"]},
            )
        from vibethink.chat import twins

        twins.cache.clear()
        late = await client.post("/api/v1/chat/sessions", json={"deployment_id": future["deployment_id"]})
        assert late.json()["error"]["code"] == "twin_unavailable"


class TestTenantsApart:
    async def test_a_brand_sees_only_its_own_requests_and_a_talent_only_its_own(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        other_talent = await make_chat_twin(db)
        coca, nike = await make_brand(db, "Coca-Cola"), await make_brand(db, "Nike", "sportswear")
        mine = await request_campaign(client, coca, await slug_of(db, talent))
        theirs = await request_campaign(client, nike, await slug_of(db, other_talent), category="sportswear")
        coca_list = (await client.get("/api/v1/brand/campaigns", headers=coca.headers)).json()
        assert [c["id"] for c in coca_list["items"]] == [mine["id"]]
        assert (
            await client.get(f"/api/v1/brand/campaigns/{theirs['id']}", headers=coca.headers)
        ).status_code == 404
        talent_list = (await client.get("/api/v1/campaigns", headers=talent.headers)).json()
        assert [c["id"] for c in talent_list["items"]] == [mine["id"]]
        assert (
            await client.get(f"/api/v1/campaigns/{theirs['id']}", headers=talent.headers)
        ).status_code == 404
        assert (
            await client.post(f"/api/v1/campaigns/{theirs['id']}/approve", headers=talent.headers)
        ).status_code == 404


class TestPreview:
    async def test_the_preview_answers_probes_without_leaking_competitors(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        brand = await make_brand(db, "Coca-Cola")
        requested = await request_campaign(client, brand, await slug_of(db, talent))
        response = await client.post(f"/api/v1/campaigns/{requested['id']}/preview", headers=talent.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) >= 6
        assert any("Pepsi" in item["prompt"] for item in body["items"])
        assert body["leaked"] == 0
        assert all(item["reply"] for item in body["items"])
        custom = await client.post(
            f"/api/v1/campaigns/{requested['id']}/preview",
            json={"prompts": ["Which boots did Messi wear in 2022?"]},
            headers=talent.headers,
        )
        assert [i["prompt"] for i in custom.json()["items"]] == ["Which boots did Messi wear in 2022?"]
