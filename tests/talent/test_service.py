"""Talent service rules, called directly with a principal inside one RLS-scoped transaction."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select, text

from tests.factories import ADMIN, COMPLETE_TWIN_CONFIG, MadeTenant, make_celebrity, make_tenant
from tests.talent.conftest import events_of
from vibethink.core.database import Database, RlsContext
from vibethink.core.errors import AlreadyExists, InvalidTransition, NotFound, SchemaViolation
from vibethink.talent import service
from vibethink.talent.models import Celebrity, CelebrityType, Contract, EntityStatus
from vibethink.talent.schemas import CelebrityCreate, CelebrityUpdate, ContractUpdate
from vibethink.tenancy.access import Principal
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.permissions import ALL_SCOPES


def owner_of(tenant: MadeTenant) -> Principal:
    return Principal(
        tenant_id=tenant.id,
        tenant_kind=TenantKind.TALENT,
        permissions=ALL_SCOPES,
        via="session",
        user_id=None,
        role=Role.TALENT_OWNER,
    )


@pytest.fixture
async def tenant(db: Database, unique: str) -> MadeTenant:
    return await make_tenant(db, slug=f"svc-{unique}")


def new(slug: str, **extra: object) -> CelebrityCreate:
    return CelebrityCreate.model_validate({"name": "Test Talent", "slug": slug, "type": "COACH", **extra})


class TestCreate:
    async def test_a_failed_transaction_leaves_neither_celebrity_nor_event(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        principal = owner_of(tenant)

        class Abort(Exception):
            pass

        async def create_then_fail() -> None:
            async with db.transaction(principal.rls()) as session:
                await service.create(session, principal, new(f"gone-{unique}"))
                raise Abort

        with pytest.raises(Abort):
            await create_then_fail()
        async with db.transaction(principal.rls()) as session:
            assert (await service.page(session, principal)).items == []
        assert await events_of(db, tenant.id) == []

    async def test_an_invalid_config_raises_before_anything_is_written(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            with pytest.raises(SchemaViolation):
                await service.create(
                    session, principal, new(f"bad-{unique}", twin_config={"voiceCloneId": ""})
                )
            assert (await session.scalars(select(Celebrity.id))).all() == []

    async def test_a_slug_held_by_another_tenant_is_already_taken(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        other = await make_tenant(db, slug=f"svc-other-{unique}")
        await make_celebrity(db, other, slug=f"taken-{unique}")
        principal = owner_of(tenant)
        with pytest.raises(AlreadyExists) as caught:
            async with db.transaction(principal.rls()) as session:
                await service.create(session, principal, new(f"taken-{unique}"))
        assert caught.value.field == "slug"

    async def test_the_actor_is_recorded_on_the_event(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            created = await service.create(session, principal, new(f"actor-{unique}"))
        [event] = await events_of(db, tenant.id, "CELEBRITY_CREATED")
        assert (event.subject_type, event.subject_id, event.actor_role) == (
            "celebrity",
            str(created.id),
            "TALENT_OWNER",
        )
        assert event.payload == {
            "slug": f"actor-{unique}",
            "name": "Test Talent",
            "type": "COACH",
            "status": "PENDING_SETUP",
            "twin_config_version": None,
        }


class TestPaging:
    async def test_celebrities_created_in_one_transaction_still_page_without_gaps(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            made = [
                (await service.create(session, principal, new(f"same-{unique}-{i}"))).id for i in range(12)
            ]
        seen: list[uuid.UUID] = []
        cursor: str | None = None
        async with db.transaction(principal.rls()) as session:
            while True:
                found = await service.page(session, principal, limit=5, cursor=cursor)
                seen += [c.id for c in found.items]
                cursor = found.next_cursor
                if cursor is None:
                    break
        assert sorted(seen) == sorted(made)
        assert len(seen) == len(set(seen))
        # All share the transaction's timestamp, so the id alone orders them.
        assert seen == sorted(made, reverse=True)

    async def test_a_limit_is_clamped_to_a_hundred(self, db: Database, tenant: MadeTenant) -> None:
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            assert (await service.page(session, principal, limit=10_000)).next_cursor is None


class TestLifecycle:
    @pytest.mark.parametrize(
        ("start", "target"),
        [
            (EntityStatus.PENDING_SETUP, EntityStatus.INACTIVE),
            (EntityStatus.ACTIVE, EntityStatus.PENDING_SETUP),
            (EntityStatus.SUSPENDED, EntityStatus.PENDING_SETUP),
            (EntityStatus.INACTIVE, EntityStatus.PENDING_SETUP),
        ],
    )
    async def test_moves_outside_the_lifecycle_are_refused(
        self, db: Database, tenant: MadeTenant, unique: str, start: EntityStatus, target: EntityStatus
    ) -> None:
        celebrity_id = await make_celebrity(db, tenant, slug=f"life-{unique}", status=start.value)
        principal = owner_of(tenant)
        with pytest.raises(InvalidTransition):
            async with db.transaction(principal.rls()) as session:
                await service.update(session, principal, celebrity_id, CelebrityUpdate(status=target))

    async def test_activation_stamps_the_schema_version_it_was_checked_against(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        celebrity_id = await make_celebrity(db, tenant, slug=f"stamp-{unique}")
        async with db.transaction(ADMIN) as session:
            await session.execute(
                text("UPDATE celebrities SET twin_config_version = NULL WHERE id = :id"), {"id": celebrity_id}
            )
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            active = await service.update(
                session, principal, celebrity_id, CelebrityUpdate(status=EntityStatus.ACTIVE)
            )
        assert active.status is EntityStatus.ACTIVE
        assert active.twin_config_version == 1

    async def test_an_update_that_changes_nothing_announces_nothing(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        celebrity_id = await make_celebrity(db, tenant, slug=f"same-{unique}", name="Same")
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            await service.update(
                session, principal, celebrity_id, CelebrityUpdate(name="Same", type=CelebrityType.ATHLETE)
            )
        assert await events_of(db, tenant.id) == []

    async def test_another_tenants_celebrity_is_not_found(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        other = await make_tenant(db, slug=f"svc-far-{unique}")
        theirs = await make_celebrity(db, other, slug=f"far-{unique}")
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            with pytest.raises(NotFound):
                await service.get(session, principal, theirs)
            with pytest.raises(NotFound):
                await service.archive(session, principal, theirs)


class TestContract:
    async def test_a_contract_row_with_unknown_stored_keys_still_reads(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        celebrity_id = await make_celebrity(
            db, tenant, slug=f"legacy-{unique}", twin_config=COMPLETE_TWIN_CONFIG
        )
        async with db.transaction(ADMIN) as session:
            session.add(
                Contract(
                    tenant_id=tenant.id,
                    id=uuid.uuid4(),
                    celebrity_id=celebrity_id,
                    revenue_shares_bp={"SUBSCRIPTION": 6000, "LEGACY": 1},
                    exclusivity_rules={"blockedBrands": ["Pepsi"], "note": "x"},
                    starts_on=date(2025, 1, 1),
                )
            )
        principal = owner_of(tenant)
        async with db.transaction(principal.rls()) as session:
            read = service.contract_read(await service.contract(session, principal, celebrity_id))
        assert read.revenue_shares_bp.SUBSCRIPTION == 6000
        assert read.revenue_shares_bp.CPC == 8000
        assert read.exclusivity_rules.blockedBrands == ["Pepsi"]

    async def test_writing_the_same_terms_again_announces_nothing(
        self, db: Database, tenant: MadeTenant, unique: str
    ) -> None:
        celebrity_id = await make_celebrity(db, tenant, slug=f"terms-{unique}")
        principal = owner_of(tenant)
        terms = ContractUpdate(starts_on=date(2026, 1, 1))
        for _ in range(2):
            async with db.transaction(principal.rls()) as session:
                await service.put_contract(session, principal, celebrity_id, terms)
        assert len(await events_of(db, tenant.id, "CONTRACT_UPDATED")) == 1


class TestTenantScope:
    """Reads name their tenant as well as running under its policy: whatever the context, a principal
    of tenant A never reads tenant B's celebrities."""

    @pytest.fixture
    async def two(self, db: Database, unique: str) -> tuple[MadeTenant, MadeTenant, uuid.UUID, uuid.UUID]:
        first = await make_tenant(db, slug=f"scope-a-{unique}")
        second = await make_tenant(db, slug=f"scope-b-{unique}")
        mine = await make_celebrity(db, first, slug=f"scope-a-{unique}")
        theirs = await make_celebrity(db, second, slug=f"scope-b-{unique}")
        return first, second, mine, theirs

    async def test_under_the_tenants_own_context(
        self, db: Database, two: tuple[MadeTenant, MadeTenant, uuid.UUID, uuid.UUID]
    ) -> None:
        first, _, mine, theirs = two
        principal = owner_of(first)
        async with db.transaction(principal.rls()) as session:
            assert [c.id for c in (await service.page(session, principal)).items] == [mine]
            assert (await service.get(session, principal, mine)).id == mine
            with pytest.raises(NotFound):
                await service.get(session, principal, theirs)

    @pytest.mark.parametrize("context", ["admin", "other tenant", "none"])
    async def test_under_any_other_context(
        self, db: Database, two: tuple[MadeTenant, MadeTenant, uuid.UUID, uuid.UUID], context: str
    ) -> None:
        first, second, mine, theirs = two
        principal = owner_of(first)
        rls = {"admin": ADMIN, "other tenant": owner_of(second).rls(), "none": RlsContext()}[context]
        async with db.transaction(rls) as session:
            listed = [c.id for c in (await service.page(session, principal)).items]
            # The admin context's policy lets every row through: only the named tenant keeps B's
            # celebrity out. Under B's own context, or none, the policy and the name leave nothing.
            assert listed == ([mine] if context == "admin" else [])
            with pytest.raises(NotFound):
                await service.get(session, principal, theirs)
