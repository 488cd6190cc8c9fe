"""The JSON-schema registry: validation naming the field, add, activate, and the batched backfill."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text, update

from tests.factories import ADMIN, COMPLETE_TWIN_CONFIG, make_celebrity, make_tenant
from tests.talent.conftest import events_of
from vibethink.core.database import Database
from vibethink.core.errors import InvalidInput, NotFound, SchemaViolation
from vibethink.talent import schema_registry
from vibethink.talent.models import Celebrity, JsonbSchema
from vibethink.tenancy.models import Tenant, TenantKind

V2_DEFAULTS = {"emotionalRange": {"min": 3, "max": 8}}


def without(path: str) -> dict[str, Any]:
    config = copy.deepcopy(COMPLETE_TWIN_CONFIG)
    *parents, leaf = path.split(".")
    target = config
    for part in parents:
        target = target[part]
    del target[leaf]
    return config


def with_value(path: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(COMPLETE_TWIN_CONFIG)
    *parents, leaf = path.split(".")
    target = config
    for part in parents:
        target = target[part]
    target[leaf] = value
    return config


async def validate(db: Database, document: Any) -> schema_registry.CompiledSchema:
    async with db.transaction(ADMIN) as session:
        return await schema_registry.validate(session, "twin_config", document, column="twin_config")


class TestValidationAgainstTheActiveVersion:
    async def test_a_complete_config_matches_version_one(self, db: Database) -> None:
        schema = await validate(db, COMPLETE_TWIN_CONFIG)
        assert schema.version == 1

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
    async def test_each_missing_required_field_is_named(self, db: Database, missing: str) -> None:
        with pytest.raises(SchemaViolation) as caught:
            await validate(db, without(missing))
        assert caught.value.field == f"twin_config.{missing}"
        assert caught.value.status_code == 422
        assert f"twin_config.{missing} is required" in caught.value.message

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            ("voiceCloneId", ""),
            ("visualAvatarId", ""),
            ("voiceCloneId", 42),
            ("personalityProfile", "cheerful"),
            ("personalityProfile.tone", ["warm"]),
            ("guardrails.maxResponseLength", 99),
            ("guardrails.maxResponseLength", 250.5),
            ("guardrails.maxResponseLength", "500"),
            ("guardrails.contentRating", "NC-17"),
            ("guardrails.bannedTopics", "politics"),
            ("knowledgeBase.lastUpdated", "yesterday"),
            ("knowledgeBase.lastUpdated", "2026-13-45T99:00:00Z"),
            ("knowledgeBase.sources", {"url": "x"}),
        ],
    )
    async def test_each_constraint_is_enforced_and_named(self, db: Database, path: str, value: Any) -> None:
        with pytest.raises(SchemaViolation) as caught:
            await validate(db, with_value(path, value))
        assert caught.value.field == f"twin_config.{path}"
        assert caught.value.message.startswith(f"twin_config.{path}: ")

    async def test_an_array_item_of_the_wrong_type_is_named_by_its_index(self, db: Database) -> None:
        with pytest.raises(SchemaViolation) as caught:
            await validate(db, with_value("personalityProfile.expertise", ["football", 7]))
        assert caught.value.field == "twin_config.personalityProfile.expertise.1"

    async def test_a_document_that_is_not_an_object_is_refused_at_the_column(self, db: Database) -> None:
        with pytest.raises(SchemaViolation) as caught:
            await validate(db, ["voiceCloneId"])
        assert caught.value.field == "twin_config"

    async def test_every_problem_is_listed_in_the_details(self, db: Database) -> None:
        with pytest.raises(SchemaViolation) as caught:
            await validate(db, {"guardrails": {"maxResponseLength": 1}})
        fields = [e["field"] for e in caught.value.details["errors"]]
        assert fields == [
            "twin_config.guardrails.maxResponseLength",
            "twin_config.personalityProfile",
            "twin_config.visualAvatarId",
            "twin_config.voiceCloneId",
        ]
        assert caught.value.details["version"] == 1

    async def test_a_nul_character_is_refused_before_it_reaches_postgresql(self, db: Database) -> None:
        with pytest.raises(InvalidInput) as caught:
            await validate(db, with_value("personalityProfile.tone", "warm\x00"))
        assert caught.value.field == "twin_config.personalityProfile.tone"

    async def test_a_document_nested_too_deep_is_refused(self, db: Database) -> None:
        nested: list[Any] = []
        for _ in range(40):
            nested = [nested]
        with pytest.raises(InvalidInput) as caught:
            await validate(db, with_value("knowledgeBase.sources", nested))
        assert caught.value.field.startswith("twin_config.knowledgeBase.sources.0.0")

    async def test_an_oversized_document_is_refused(self, db: Database) -> None:
        with pytest.raises(InvalidInput) as caught:
            await validate(db, with_value("knowledgeBase.sources", ["x" * 1000] * 300))
        assert caught.value.field == "twin_config"


class TestMergingDefaults:
    def test_defaults_fill_only_what_is_missing(self) -> None:
        merged = schema_registry.merge_missing(
            {"emotionalRange": {"min": 5}, "voiceCloneId": "v"}, {"emotionalRange": {"min": 3, "max": 8}}
        )
        assert merged == {"emotionalRange": {"min": 5, "max": 8}, "voiceCloneId": "v"}

    def test_a_value_of_another_shape_is_never_replaced(self) -> None:
        merged = schema_registry.merge_missing({"emotionalRange": "calm"}, V2_DEFAULTS)
        assert merged == {"emotionalRange": "calm"}

    def test_the_builtin_v2_is_a_superset_of_v1_with_its_defaults(self) -> None:
        v2 = schema_registry.builtin_schema("twin_config", "v2")
        assert schema_registry.defaults_from_annotations(v2) == V2_DEFAULTS
        assert v2["required"] == ["voiceCloneId", "visualAvatarId", "personalityProfile"]
        assert v2["properties"]["emotionalRange"]["properties"]["min"] == {
            "type": "integer",
            "minimum": 0,
            "maximum": 10,
        }
        assert {"knowledgeBase", "guardrails"} <= set(v2["properties"])

    def test_an_unknown_builtin_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            schema_registry.builtin_schema("twin_config", "v9")


async def add(db: Database, name: str, schema: Any, defaults: Any = None) -> schema_registry.SchemaVersion:
    async with schema_registry.admin_session(db.owner_engine) as session:
        return await schema_registry.add(session, name, schema, defaults=defaults)


async def activate(db: Database, name: str, version: int) -> schema_registry.SchemaVersion:
    async with schema_registry.admin_session(db.owner_engine) as session:
        return await schema_registry.activate(session, name, version)


async def active_versions(db: Database, name: str) -> list[int]:
    async with schema_registry.admin_session(db.owner_engine) as session:
        rows = await session.scalars(
            select(JsonbSchema.version).where(JsonbSchema.schema_name == name, JsonbSchema.is_active)
        )
        return list(rows.all())


class TestAddingVersions:
    async def test_a_new_version_is_numbered_next_and_starts_inactive(self, private_db: Database) -> None:
        first = await add(private_db, "fan_profile", {"type": "object"})
        second = await add(private_db, "fan_profile", {"type": "object", "required": ["theme"]})
        assert (first.version, second.version) == (1, 2)
        assert not first.is_active
        assert not second.is_active
        assert await active_versions(private_db, "fan_profile") == []

    @pytest.mark.parametrize(
        ("schema", "field"),
        [
            ({"type": "nonsense"}, "schema.type"),
            ({"properties": {"a": {"minLength": -1}}}, "schema.properties.a.minLength"),
            ([], "schema"),
            ({"$schema": "http://json-schema.org/draft-07/schema#"}, "schema.$schema"),
            ({"$ref": "https://example.com/remote.json"}, "schema.$ref"),
        ],
    )
    async def test_a_document_that_is_not_a_valid_json_schema_is_refused(
        self, private_db: Database, schema: Any, field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await add(private_db, "twin_config", schema)
        assert caught.value.status_code == 422
        assert caught.value.field == field

    async def test_defaults_must_match_the_schema_they_belong_to(self, private_db: Database) -> None:
        v2 = schema_registry.builtin_schema("twin_config", "v2")
        with pytest.raises(SchemaViolation) as caught:
            await add(private_db, "twin_config", v2, {"emotionalRange": {"min": 11, "max": 8}})
        assert caught.value.field == "defaults.emotionalRange.min"

    async def test_a_bad_name_is_refused(self, private_db: Database) -> None:
        with pytest.raises(InvalidInput) as caught:
            await add(private_db, "Twin Config!", {"type": "object"})
        assert caught.value.field == "name"


class TestActivation:
    async def test_activation_flips_the_one_active_version_and_announces_it(
        self, private_db: Database
    ) -> None:
        added = await add(private_db, "conversation_context", {"type": "object"})
        later = await add(
            private_db, "conversation_context", {"type": "object", "required": ["deploymentId"]}
        )
        await activate(private_db, "conversation_context", added.version)
        activated = await activate(private_db, "conversation_context", later.version)
        assert activated.is_active
        assert activated.activated_at is not None
        assert await active_versions(private_db, "conversation_context") == [later.version]

        async with schema_registry.admin_session(private_db.owner_engine) as session:
            platform = await session.scalar(select(Tenant.id).where(Tenant.kind == TenantKind.PLATFORM))
        assert platform is not None
        changes = [
            e.payload
            for e in await events_of(private_db, platform, "CONFIGURATION_CHANGE")
            if e.payload.get("schema") == "conversation_context"
        ]
        assert changes[-1] == {
            "change": "schema_activated",
            "schema": "conversation_context",
            "from_version": added.version,
            "to_version": later.version,
        }

    async def test_activating_the_active_version_again_changes_nothing(self, private_db: Database) -> None:
        added = await add(private_db, "brand_guidelines", {"type": "object"})
        await activate(private_db, "brand_guidelines", added.version)
        again = await activate(private_db, "brand_guidelines", added.version)
        assert again.is_active
        assert await active_versions(private_db, "brand_guidelines") == [added.version]

    async def test_an_unknown_version_is_not_found(self, private_db: Database) -> None:
        with pytest.raises(NotFound):
            await activate(private_db, "twin_config", 99)

    async def test_a_version_activated_elsewhere_is_picked_up_on_the_next_write(
        self, private_db: Database
    ) -> None:
        added = await add(private_db, "widget_theme", {"type": "object", "required": ["color"]})
        stricter = await add(private_db, "widget_theme", {"type": "object", "required": ["color", "font"]})
        await activate(private_db, "widget_theme", added.version)
        async with private_db.transaction(ADMIN) as session:
            assert (await schema_registry.validate(session, "widget_theme", {"color": "red"})).version == 1
        # Another process flips the flag directly; this process's cache must not hide it.
        async with schema_registry.admin_session(private_db.owner_engine) as session:
            await session.execute(
                update(JsonbSchema).where(JsonbSchema.schema_name == "widget_theme").values(is_active=False)
            )
            await session.execute(
                update(JsonbSchema)
                .where(JsonbSchema.schema_name == "widget_theme", JsonbSchema.version == stricter.version)
                .values(is_active=True)
            )
        async with private_db.transaction(ADMIN) as session:
            with pytest.raises(SchemaViolation) as caught:
                await schema_registry.validate(session, "widget_theme", {"color": "red"})
        assert caught.value.field == "widget_theme.font"


async def seed_celebrities(db: Database, tenant_ids: list[uuid.UUID], per_tenant: int) -> None:
    """Many celebrities in one statement per tenant, with complete v1 configs."""
    async with db.transaction(ADMIN) as session:
        for tenant_id in tenant_ids:
            await session.execute(
                text(
                    "INSERT INTO celebrities (tenant_id, id, slug, name, type, status, twin_config,"
                    " twin_config_version)"
                    " SELECT :t, gen_random_uuid(), 'seed-' || replace(gen_random_uuid()::text, '-', ''),"
                    " 'Seeded ' || n, 'ATHLETE', 'ACTIVE', CAST(:c AS jsonb), 1"
                    " FROM generate_series(1, :n) AS n"
                ),
                {"t": tenant_id, "c": json.dumps(COMPLETE_TWIN_CONFIG), "n": per_tenant},
            )


class TestVersionTwoRollout:
    async def test_v2_is_added_activated_and_backfilled_in_batches_without_overwriting_talent_data(
        self, private_db: Database
    ) -> None:
        tenants = [
            await make_tenant(private_db, slug=f"backfill-{i}-{uuid.uuid4().hex[:6]}") for i in range(3)
        ]
        await seed_celebrities(private_db, [t.id for t in tenants], 400)
        own_range = with_value("emotionalRange", {"min": 1, "max": 2})
        partial_range = with_value("emotionalRange", {"min": 6})
        kept = await make_celebrity(
            private_db, tenants[0], slug=f"kept-{uuid.uuid4().hex[:8]}", twin_config=own_range
        )
        partial = await make_celebrity(
            private_db, tenants[1], slug=f"partial-{uuid.uuid4().hex[:8]}", twin_config=partial_range
        )
        pending = await make_celebrity(
            private_db, tenants[2], slug=f"pending-{uuid.uuid4().hex[:8]}", twin_config={}
        )

        v2 = await add(private_db, "twin_config", schema_registry.builtin_schema("twin_config", "v2"))
        assert v2.defaults == V2_DEFAULTS
        await activate(private_db, "twin_config", v2.version)

        seen: list[tuple[int, int]] = []
        report = await schema_registry.backfill(
            private_db.owner_engine, "twin_config", progress=lambda done, total: seen.append((done, total))
        )
        assert seen == [(0, 1203), (500, 1203), (1000, 1203), (1203, 1203)]
        assert (report.version, report.total, report.scanned, report.batches) == (v2.version, 1203, 1203, 3)
        assert report.updated == 1203  # the one with its own range keeps it, and is stamped v2
        assert report.not_matching == 1  # the PENDING_SETUP one: defaults filled in, still incomplete
        assert report.tenants == {t.id for t in tenants}

        async with private_db.transaction(ADMIN) as session:
            configs = {
                row.id: (row.twin_config, row.twin_config_version)
                for row in (
                    await session.execute(
                        select(Celebrity.id, Celebrity.twin_config, Celebrity.twin_config_version)
                    )
                ).all()
            }
        assert configs[kept] == (own_range, v2.version)
        assert configs[partial][0]["emotionalRange"] == {"min": 6, "max": 8}
        assert configs[pending] == ({"emotionalRange": {"min": 3, "max": 8}}, 1)
        seeded = [c for key, c in configs.items() if key not in (kept, partial, pending)]
        assert all(c == ({**COMPLETE_TWIN_CONFIG, **V2_DEFAULTS}, v2.version) for c in seeded)

        events = await events_of(private_db, tenants[0].id, "CONFIGURATION_CHANGE")
        backfilled = {
            i for e in events if e.payload["change"] == "schema_backfill" for i in e.payload["celebrity_ids"]
        }
        assert len(backfilled) == 401
        assert str(kept) in backfilled

        again = await schema_registry.backfill(private_db.owner_engine, "twin_config")
        assert (again.scanned, again.updated) == (1203, 0)

        async with private_db.transaction(ADMIN) as session:
            with pytest.raises(SchemaViolation) as caught:
                await schema_registry.validate(
                    session, "twin_config", with_value("emotionalRange", {"min": 11}), column="twin_config"
                )
        assert caught.value.field == "twin_config.emotionalRange.min"

    async def test_an_interrupted_backfill_resumes_where_rows_still_need_it(
        self, private_db: Database
    ) -> None:
        tenant = await make_tenant(private_db, slug=f"resume-{uuid.uuid4().hex[:8]}")
        await seed_celebrities(private_db, [tenant.id], 30)
        added = await add(
            private_db,
            "twin_config",
            {**schema_registry.builtin_schema("twin_config", "v2"), "title": "v3 with a calmer default"},
            {"emotionalRange": {"min": 2, "max": 4}, "guardrails": {"contentRating": "G"}},
        )

        class Stop(Exception):
            pass

        def stop_after_first_batch(done: int, total: int) -> None:
            if done >= 100:
                raise Stop

        with pytest.raises(Stop):
            await schema_registry.backfill(
                private_db.owner_engine,
                version=added.version,
                batch_size=100,
                progress=stop_after_first_batch,
            )
        finished = await schema_registry.backfill(
            private_db.owner_engine, version=added.version, batch_size=100
        )
        # Exactly the first batch was committed before the stop; the rerun did all the others, once.
        assert finished.updated == finished.scanned - 100
        assert (await schema_registry.backfill(private_db.owner_engine, version=added.version)).updated == 0
        async with private_db.transaction(ADMIN) as session:
            rows = (
                (await session.execute(select(Celebrity.twin_config).where(Celebrity.tenant_id == tenant.id)))
                .scalars()
                .all()
            )
        assert len(rows) == 30
        # The missing range arrives; the talent's own content rating (PG) is not replaced by the default G.
        assert all(r["emotionalRange"] == {"min": 2, "max": 4} for r in rows)
        assert all(r["guardrails"]["contentRating"] == "PG" for r in rows)

    async def test_only_twin_config_can_be_backfilled(self, private_db: Database) -> None:
        with pytest.raises(InvalidInput) as caught:
            await schema_registry.backfill(private_db.owner_engine, "fan_profile")
        assert caught.value.field == "name"
