"""Coca-Cola and Nike campaigns approved for one twin run at once, each context keeping its rules."""

from __future__ import annotations

import httpx

from tests.campaigns.conftest import make_brand, request_campaign, slug_of
from tests.chat.conftest import ChatTwin, add_knowledge, new_fan
from tests.chat.test_campaigns import EXTRA_KNOWLEDGE, _named, prompts
from vibethink.core.database import Database


class TestSideBySide:
    async def test_200_turns_each_keep_coca_cola_and_nike_guidelines_apart(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await add_knowledge(db, talent, EXTRA_KNOWLEDGE, title="Football advertising")
        slug = await slug_of(db, talent)
        coca, nike = await make_brand(db, "Coca-Cola"), await make_brand(db, "Nike", "sportswear")
        rules = {
            "coca": (coca, "beverages", ["Pepsi"], ("pepsi",)),
            "nike": (nike, "sportswear", ["Adidas", "Puma"], ("adidas", "puma")),
        }
        fans = {}
        for name, (brand, category, rivals, _) in rules.items():
            requested = await request_campaign(
                client, brand, slug, category=category, guidelines={"competitors": rivals}
            )
            approved = await client.post(
                f"/api/v1/campaigns/{requested['id']}/approve", headers=talent.headers
            )
            assert approved.status_code == 200, approved.text
            fan = await new_fan(client, approved.json()["deployment_id"])
            fans[name] = (fan, await fan.start())
        for prompt in prompts(200):
            for name, (fan, conversation) in fans.items():
                body = (await fan.say(conversation, prompt)).json()
                assert _named(body["content"], rules[name][3]) == [], (name, prompt, body["content"])
                assert body["disclosure"] == f"Paid partnership with {rules[name][0].name}"
