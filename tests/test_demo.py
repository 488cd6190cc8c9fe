"""The demo data loads completely, validates, and loading it again changes nothing."""

from __future__ import annotations

import jsonschema
from sqlalchemy import text

from tests.factories import ADMIN
from vibethink import demo


async def _counts(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    tables = ("tenants", "users", "memberships", "celebrities", "contracts", "brands", "platform_events")
    async with db.transaction(ADMIN) as s:
        return {t: (await s.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in tables}


class TestDemoLoad:
    async def test_loading_twice_changes_nothing(self, db, test_settings):
        first = await demo.load(test_settings, db=db)
        after_first = await _counts(db)
        second = await demo.load(test_settings, db=db)
        assert await _counts(db) == after_first
        assert second.created == []
        assert set(second.portals) == {t.slug for t in demo.TALENTS}
        assert str(second.portals["andres-cantor"]) in second.describe("http://127.0.0.1:8000")
        assert first.created or after_first["celebrities"] >= 3

    async def test_every_demo_twin_config_is_complete_under_the_active_schema(self, db, test_settings):
        await demo.load(test_settings, db=db)
        async with db.transaction(ADMIN) as s:
            schema = (
                await s.execute(
                    text("SELECT schema FROM jsonb_schemas WHERE schema_name='twin_config' AND is_active")
                )
            ).scalar_one()
            configs = (
                await s.execute(
                    text("SELECT slug, twin_config, status FROM celebrities WHERE slug = ANY(:s)"),
                    {"s": [t.slug for t in demo.TALENTS]},
                )
            ).all()
        assert len(configs) == 3
        for slug, config, status in configs:
            jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
                config
            )
            assert status == "ACTIVE", slug

    async def test_there_is_one_demo_user_per_role(self, db, test_settings):
        await demo.load(test_settings, db=db)
        async with db.transaction(ADMIN) as s:
            roles = set(
                (
                    await s.execute(
                        text(
                            "SELECT m.role::text FROM memberships m JOIN users u ON u.id = m.user_id"
                            " WHERE u.email LIKE '%.test'"
                        )
                    )
                ).scalars()
            )
        assert roles == {"PLATFORM_ADMIN", "TALENT_OWNER", "TALENT_MANAGER", "BRAND_MANAGER"}

    async def test_every_demo_twin_has_knowledge_ready_to_answer_from(self, db, test_settings):
        await demo.load(test_settings, db=db)
        async with db.transaction(ADMIN) as s:
            rows = (
                await s.execute(
                    text(
                        "SELECT c.slug, k.status::text, k.chunk_count FROM knowledge_sources k"
                        " JOIN celebrities c ON c.tenant_id = k.tenant_id AND c.id = k.celebrity_id"
                        " WHERE c.slug = ANY(:s)"
                    ),
                    {"s": [t.slug for t in demo.TALENTS]},
                )
            ).all()
        assert sorted(r.slug for r in rows) == sorted(t.slug for t in demo.TALENTS)
        assert all(r.status == "READY" and r.chunk_count >= 1 for r in rows), rows
