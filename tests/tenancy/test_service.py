"""Tenancy rules against the real database: accounts, sign-in throttling, members, API keys."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.factories import ADMIN, PASSWORD, MadeTenant, make_tenant, make_user
from tests.tenancy.conftest import events_of, random_ip
from vibethink.core.database import Database, RlsContext
from vibethink.core.errors import (
    AlreadyExists,
    InvalidCredentials,
    InvalidInput,
    InvalidInvitation,
    LastOwner,
    NotFound,
    PermissionDenied,
    TooManyRequests,
)
from vibethink.core.settings import Settings
from vibethink.tenancy import service
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.service import Operator

STRONG = "a long enough passphrase"


def owner_of(tenant: MadeTenant, user_id: uuid.UUID | None, role: Role = Role.TALENT_OWNER) -> Operator:
    return Operator(tenant_id=tenant.id, user_id=user_id, role=role)


def scoped(tenant: MadeTenant, user_id: uuid.UUID | None = None) -> RlsContext:
    return RlsContext(tenant_id=tenant.id, user_id=user_id, role="TALENT_OWNER")


async def sign_in(db: Database, settings: Settings, email: str, password: str, ip: str) -> None:
    """One sign-in at a boundary that keeps the recorded attempt even when it fails, like the routes."""
    async with db.sessions() as session, session.begin():
        try:
            await service.authenticate(session, email=email, password=password, ip=ip, settings=settings)
        except InvalidCredentials:
            await session.commit()
            raise


class TestSignUp:
    async def test_sign_up_creates_an_owner_with_a_tenant_and_announces_it(self, db, unique):
        async with db.transaction(RlsContext()) as s:
            result = await service.sign_up(
                s,
                email=f"  Lucia.{unique}@Example.com ",
                password=STRONG,
                display_name="Lucía Pérez",
                tenant_name=f"Lucía Pérez {unique}",
            )
        assert result.user.email == f"lucia.{unique}@example.com"
        assert result.user.password_hash
        assert result.user.password_hash.startswith("$argon2")
        events = await events_of(db, result.tenant_id)
        assert sorted(e.event_type for e in events) == ["ROLE_ASSIGNED", "TENANT_CREATED", "USER_CREATED"]
        assert next(e for e in events if e.event_type == "ROLE_ASSIGNED").payload["role"] == "TALENT_OWNER"
        assert all("password" not in str(e.payload) for e in events)
        async with db.transaction(ADMIN) as s:
            slug = await s.scalar(text("SELECT slug FROM tenants WHERE id = :t"), {"t": result.tenant_id})
        assert slug == f"lucia-perez-{unique}"

    async def test_a_brand_sign_up_makes_a_brand_manager(self, db, unique):
        async with db.transaction(RlsContext()) as s:
            result = await service.sign_up(
                s,
                email=f"brand.{unique}@example.com",
                password=STRONG,
                tenant_name="Fizz",
                tenant_slug=f"fizz-{unique}",
                tenant_kind=TenantKind.BRAND,
            )
            memberships = await service.memberships_of(s, result.user.id)
        assert [(m.kind, m.role) for m in memberships] == [(TenantKind.BRAND, Role.BRAND_MANAGER)]

    async def test_a_password_shorter_than_twelve_characters_is_refused(self, db, unique):
        with pytest.raises(InvalidInput) as caught:
            async with db.transaction(RlsContext()) as s:
                await service.sign_up(
                    s, email=f"short.{unique}@example.com", password="elevenchars", tenant_name="Short"
                )
        assert caught.value.field == "password"

    @pytest.mark.parametrize(
        "slug",
        [
            "api",
            "admin",
            "studio",
            "brand",
            "static",
            "docs",
            "login",
            "signup",
            "logout",
            "healthz",
            "readyz",
            "metrics",
            "widget.js",
        ],
    )
    async def test_a_reserved_slug_is_refused(self, db, unique, slug):
        with pytest.raises(InvalidInput) as caught:
            async with db.transaction(RlsContext()) as s:
                await service.sign_up(
                    s, email=f"r.{unique}@example.com", password=STRONG, tenant_name="R", tenant_slug=slug
                )
        assert caught.value.field == "tenant_slug"

    @pytest.mark.parametrize(
        "slug", ["ab", "Upper-case", "with space", "-leading", "trailing-", "x" * 65, "ñandú"]
    )
    async def test_a_badly_shaped_slug_is_refused(self, db, unique, slug):
        with pytest.raises(InvalidInput):
            async with db.transaction(RlsContext()) as s:
                await service.sign_up(
                    s, email=f"b.{unique}@example.com", password=STRONG, tenant_name="B", tenant_slug=slug
                )

    async def test_an_email_already_registered_is_a_conflict(self, db, unique):
        await make_user(db, email=f"taken.{unique}@example.com")
        with pytest.raises(AlreadyExists) as caught:
            async with db.transaction(RlsContext()) as s:
                await service.sign_up(
                    s, email=f"TAKEN.{unique}@example.com", password=STRONG, tenant_name=f"T {unique}"
                )
        assert caught.value.field == "email"

    async def test_a_slug_already_taken_is_a_conflict(self, db, unique):
        await make_tenant(db, slug=f"taken-{unique}")
        with pytest.raises(AlreadyExists) as caught:
            async with db.transaction(RlsContext()) as s:
                await service.sign_up(
                    s,
                    email=f"slug.{unique}@example.com",
                    password=STRONG,
                    tenant_name="Taken",
                    tenant_slug=f"taken-{unique}",
                )
        assert caught.value.field == "tenant_slug"


class TestAuthenticate:
    async def test_the_right_password_signs_in_and_records_the_time(self, db, test_settings, unique):
        user = await make_user(db, email=f"in.{unique}@example.com")
        async with db.transaction(RlsContext()) as s:
            signed_in = await service.authenticate(
                s, email=f"IN.{unique}@example.com", password=PASSWORD, ip=random_ip(), settings=test_settings
            )
            assert signed_in.id == user.id
            assert signed_in.last_login_at is not None

    async def test_a_wrong_password_is_refused_and_counted(self, db, test_settings, unique):
        user = await make_user(db, email=f"wrong.{unique}@example.com")
        with pytest.raises(InvalidCredentials):
            await sign_in(db, test_settings, user.email, "not the password", random_ip())
        async with db.transaction(RlsContext()) as s:
            failures = await s.scalar(
                text("SELECT count(*) FROM login_attempts WHERE account_hash = :a AND NOT succeeded"),
                {"a": service.account_hash(test_settings.secret_key, user.email)},
            )
        assert failures == 1

    async def test_an_unknown_email_is_refused_like_a_wrong_password(self, db, test_settings, unique):
        with pytest.raises(InvalidCredentials):
            await sign_in(db, test_settings, f"nobody.{unique}@example.com", PASSWORD, random_ip())

    async def test_an_invited_account_without_a_password_cannot_sign_in(self, db, test_settings, unique):
        tenant = await make_tenant(db, slug=f"inv-{unique}")
        owner = await make_user(db, email=f"o.{unique}@example.com", tenant=tenant)
        async with db.transaction(scoped(tenant, owner.id)) as s:
            await service.invite_member(
                s, owner_of(tenant, owner.id), f"p.{unique}@example.com", role=Role.TALENT_MANAGER
            )
        with pytest.raises(InvalidCredentials):
            await sign_in(db, test_settings, f"p.{unique}@example.com", "", random_ip())

    async def test_an_account_is_locked_after_too_many_failures(self, db, test_settings, unique):
        user = await make_user(db, email=f"lock.{unique}@example.com")
        for _ in range(test_settings.login_max_failures_per_account):
            with pytest.raises(InvalidCredentials):
                await sign_in(db, test_settings, user.email, "guess", random_ip())
        with pytest.raises(TooManyRequests) as caught:
            await sign_in(db, test_settings, user.email, PASSWORD, random_ip())
        assert 0 < caught.value.retry_after_seconds <= test_settings.login_window_seconds
        assert caught.value.headers["Retry-After"] == str(caught.value.retry_after_seconds)

    async def test_a_success_clears_the_account_count(self, db, test_settings, unique):
        user = await make_user(db, email=f"clear.{unique}@example.com")
        for _ in range(test_settings.login_max_failures_per_account - 1):
            with pytest.raises(InvalidCredentials):
                await sign_in(db, test_settings, user.email, "guess", random_ip())
        await sign_in(db, test_settings, user.email, PASSWORD, random_ip())
        with pytest.raises(InvalidCredentials):
            await sign_in(db, test_settings, user.email, "guess", random_ip())
        await sign_in(db, test_settings, user.email, PASSWORD, random_ip())

    async def test_an_address_is_locked_after_too_many_failures_across_accounts(
        self, db, test_settings, unique
    ):
        ip = random_ip()
        for n in range(test_settings.login_max_failures_per_ip):
            with pytest.raises(InvalidCredentials):
                await sign_in(db, test_settings, f"spray{n}.{unique}@example.com", "guess", ip)
        user = await make_user(db, email=f"victim.{unique}@example.com")
        with pytest.raises(TooManyRequests):
            await sign_in(db, test_settings, user.email, PASSWORD, ip)
        await sign_in(db, test_settings, user.email, PASSWORD, random_ip())


class TestSessions:
    async def test_a_revoked_session_is_marked_on_the_server(self, db, test_settings, unique):
        user = await make_user(db, email=f"sess.{unique}@example.com")
        async with db.transaction(RlsContext(user_id=user.id)) as s:
            signed_in = await service.get_user(s, user.id)
            new = await service.create_session(s, signed_in, settings=test_settings, user_agent="pytest")
        async with db.transaction(RlsContext(user_id=user.id)) as s:
            await service.revoke_session(s, user.id, new.session_id)
        async with db.transaction(RlsContext(user_id=user.id)) as s:
            revoked_at = await s.scalar(
                text("SELECT revoked_at FROM auth_sessions WHERE id = :id"), {"id": new.session_id}
            )
        assert revoked_at is not None


class TestMembers:
    async def test_inviting_an_existing_account_adds_it_without_an_invitation(self, db, unique):
        tenant = await make_tenant(db, slug=f"m-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        known = await make_user(db, email=f"known.{unique}@example.com")
        async with db.transaction(scoped(tenant, owner.id)) as s:
            invited = await service.invite_member(
                s, owner_of(tenant, owner.id), known.email.upper(), role=Role.TALENT_MANAGER
            )
        assert invited.invitation_token is None
        assert invited.member.user_id == known.id
        assert not invited.member.is_pending
        [event] = await events_of(db, tenant.id, "ROLE_ASSIGNED")
        assert event.payload == {"role": "TALENT_MANAGER", "previous_role": None, "invited": True}

    async def test_inviting_an_unknown_email_reserves_an_account_with_a_hashed_token(self, db, unique):
        tenant = await make_tenant(db, slug=f"n-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        async with db.transaction(scoped(tenant, owner.id)) as s:
            invited = await service.invite_member(
                s, owner_of(tenant, owner.id), f"new.{unique}@example.com", role=Role.TALENT_MANAGER
            )
        assert invited.invitation_token
        assert invited.member.is_pending
        async with db.transaction(ADMIN) as s:
            stored = await s.scalar(
                text("SELECT token_hash FROM invitations WHERE user_id = :u"), {"u": invited.member.user_id}
            )
        assert stored == hashlib.sha256(invited.invitation_token.encode()).hexdigest()
        assert invited.invitation_token not in str(await events_of(db, tenant.id))

    async def test_accepting_an_invitation_sets_the_password_once(self, db, test_settings, unique):
        tenant = await make_tenant(db, slug=f"acc-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        email = f"guest.{unique}@example.com"
        async with db.transaction(scoped(tenant, owner.id)) as s:
            invited = await service.invite_member(
                s, owner_of(tenant, owner.id), email, role=Role.TALENT_MANAGER
            )
        token = invited.invitation_token
        assert token is not None
        async with db.transaction(RlsContext()) as s:
            view = await service.describe_invitation(s, token)
        assert view.email == email
        async with db.transaction(RlsContext()) as s:
            result = await service.sign_up(
                s, email=None, password=STRONG, display_name="Guest", invitation_token=token
            )
        assert result.tenant_id == tenant.id
        [created] = await events_of(db, tenant.id, "USER_CREATED")
        assert created.payload["via"] == "invitation"
        await sign_in(db, test_settings, email, STRONG, random_ip())
        with pytest.raises(InvalidInvitation):
            async with db.transaction(RlsContext()) as s:
                await service.sign_up(s, email=None, password=STRONG, invitation_token=token)

    async def test_an_expired_or_forged_invitation_is_refused(self, db, unique):
        tenant = await make_tenant(db, slug=f"exp-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        async with db.transaction(scoped(tenant, owner.id)) as s:
            invited = await service.invite_member(
                s, owner_of(tenant, owner.id), f"late.{unique}@example.com", role=Role.TALENT_MANAGER
            )
        async with db.transaction(ADMIN) as s:
            await s.execute(
                text("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE user_id = :u"),
                {"u": invited.member.user_id},
            )
        for token in (invited.invitation_token, "forged-token"):
            with pytest.raises(InvalidInvitation):
                async with db.transaction(RlsContext()) as s:
                    await service.sign_up(s, email=None, password=STRONG, invitation_token=token)

    async def test_a_member_already_in_the_tenant_cannot_be_invited_twice(self, db, unique):
        tenant = await make_tenant(db, slug=f"twice-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        with pytest.raises(AlreadyExists):
            async with db.transaction(scoped(tenant, owner.id)) as s:
                await service.invite_member(
                    s, owner_of(tenant, owner.id), owner.email, role=Role.TALENT_OWNER
                )

    async def test_an_owner_cannot_grant_a_role_above_their_own(self, db, unique):
        tenant = await make_tenant(db, slug=f"esc-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        manager = await make_user(db, email=f"mgr.{unique}@example.com", tenant=tenant, role="TALENT_MANAGER")
        with pytest.raises(PermissionDenied):
            async with db.transaction(scoped(tenant, owner.id)) as s:
                await service.change_role(s, owner_of(tenant, owner.id), manager.id, role=Role.PLATFORM_ADMIN)
        with pytest.raises(PermissionDenied):
            async with db.transaction(scoped(tenant, manager.id)) as s:
                await service.change_role(
                    s, owner_of(tenant, manager.id, Role.TALENT_MANAGER), manager.id, role=Role.TALENT_OWNER
                )

    async def test_a_role_that_does_not_fit_the_tenant_kind_is_refused(self, db, unique):
        tenant = await make_tenant(db, slug=f"kind-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        admin = Operator(tenant_id=tenant.id, user_id=None, role=Role.PLATFORM_ADMIN)
        with pytest.raises(InvalidInput) as caught:
            async with db.transaction(scoped(tenant, owner.id)) as s:
                await service.change_role(s, admin, owner.id, role=Role.BRAND_MANAGER)
        assert caught.value.field == "role"

    async def test_the_last_owner_can_be_neither_demoted_nor_removed(self, db, unique):
        tenant = await make_tenant(db, slug=f"last-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        actor = owner_of(tenant, owner.id)
        with pytest.raises(LastOwner):
            async with db.transaction(scoped(tenant, owner.id)) as s:
                await service.change_role(s, actor, owner.id, role=Role.TALENT_MANAGER)
        with pytest.raises(LastOwner):
            async with db.transaction(scoped(tenant, owner.id)) as s:
                await service.remove_member(s, actor, owner.id)

    async def test_with_a_second_owner_the_first_may_step_down(self, db, unique):
        tenant = await make_tenant(db, slug=f"two-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        await make_user(db, email=f"owner2.{unique}@example.com", tenant=tenant)
        async with db.transaction(scoped(tenant, owner.id)) as s:
            member = await service.change_role(
                s, owner_of(tenant, owner.id), owner.id, role=Role.TALENT_MANAGER
            )
        assert member.role is Role.TALENT_MANAGER
        [event] = await events_of(db, tenant.id, "ROLE_ASSIGNED")
        assert event.payload["previous_role"] == "TALENT_OWNER"

    async def test_removing_a_member_announces_the_deactivation(self, db, unique):
        tenant = await make_tenant(db, slug=f"rm-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        manager = await make_user(db, email=f"mgr.{unique}@example.com", tenant=tenant, role="TALENT_MANAGER")
        async with db.transaction(scoped(tenant, owner.id)) as s:
            await service.remove_member(s, owner_of(tenant, owner.id), manager.id)
            members, _ = await service.list_members(s, owner_of(tenant, owner.id))
        assert [m.user_id for m in members] == [owner.id]
        [event] = await events_of(db, tenant.id, "USER_DEACTIVATED")
        assert event.subject_id == str(manager.id)

    async def test_a_member_of_another_tenant_is_not_found(self, db, unique):
        mine = await make_tenant(db, slug=f"mine-{unique}")
        theirs = await make_tenant(db, slug=f"theirs-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=mine)
        stranger = await make_user(
            db, email=f"str.{unique}@example.com", tenant=theirs, role="TALENT_MANAGER"
        )
        with pytest.raises(NotFound):
            async with db.transaction(scoped(mine, owner.id)) as s:
                await service.remove_member(s, owner_of(mine, owner.id), stranger.id)

    async def test_members_are_listed_a_page_at_a_time(self, db, unique):
        tenant = await make_tenant(db, slug=f"page-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        for n in range(4):
            await make_user(db, email=f"m{n}.{unique}@example.com", tenant=tenant, role="TALENT_MANAGER")
        seen: list[uuid.UUID] = []
        cursor = None
        async with db.transaction(scoped(tenant, owner.id)) as s:
            while True:
                page, cursor = await service.list_members(
                    s, owner_of(tenant, owner.id), cursor=cursor, limit=2
                )
                seen += [m.user_id for m in page]
                if cursor is None:
                    break
        assert len(seen) == len(set(seen)) == 5


class TestApiKeys:
    async def test_a_new_key_is_shown_once_and_only_its_hash_is_stored(self, db, unique):
        tenant = await make_tenant(db, slug=f"key-{unique}")
        async with db.transaction(scoped(tenant)) as s:
            created = await service.create_api_key(
                s, owner_of(tenant, None), name="CI", scopes=["celebrities:read"]
            )
        assert created.plaintext.startswith("vt_live_")
        async with db.transaction(ADMIN) as s:
            stored = (
                await s.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": created.key.id})
            ).one()
        assert stored.secret_hash == hashlib.sha256(created.plaintext.encode()).hexdigest()
        assert created.plaintext not in str(tuple(stored))
        [event] = await events_of(db, tenant.id, "API_KEY_CREATED")
        assert created.plaintext not in str(event.payload)
        assert stored.secret_hash not in str(event.payload)

    async def test_scopes_outside_the_catalog_or_the_creators_rights_are_refused(self, db, unique):
        tenant = await make_tenant(db, slug=f"sc-{unique}")
        manager = Operator(
            tenant_id=tenant.id,
            user_id=None,
            role=Role.TALENT_MANAGER,
            permissions=frozenset({"members:read"}),
        )
        for actor, scopes in (
            (owner_of(tenant, None), ["root"]),
            (manager, ["members:write"]),
            (owner_of(tenant, None), []),
        ):
            with pytest.raises(InvalidInput) as caught:
                async with db.transaction(scoped(tenant)) as s:
                    await service.create_api_key(s, actor, name="bad", scopes=scopes)
            assert caught.value.field == "scopes"

    async def test_an_expiry_in_the_past_is_refused(self, db, unique):
        tenant = await make_tenant(db, slug=f"past-{unique}")
        with pytest.raises(InvalidInput) as caught:
            async with db.transaction(scoped(tenant)) as s:
                await service.create_api_key(
                    s,
                    owner_of(tenant, None),
                    name="old",
                    scopes=["tenant:read"],
                    expires_at=datetime.now(UTC) - timedelta(minutes=1),
                )
        assert caught.value.field == "expires_at"

    async def test_listing_keys_never_shows_a_secret_or_hash(self, db, unique):
        tenant = await make_tenant(db, slug=f"list-{unique}")
        async with db.transaction(scoped(tenant)) as s:
            created = await service.create_api_key(
                s, owner_of(tenant, None), name="one", scopes=["tenant:read"]
            )
            keys, _ = await service.list_api_keys(s, owner_of(tenant, None))
        assert [k.id for k in keys] == [created.key.id]
        assert not hasattr(keys[0], "secret_hash")
        assert created.plaintext not in repr(keys)

    async def test_revoking_a_key_marks_it_and_announces_it_once(self, db, unique):
        tenant = await make_tenant(db, slug=f"rev-{unique}")
        actor = owner_of(tenant, None)
        async with db.transaction(scoped(tenant)) as s:
            created = await service.create_api_key(s, actor, name="gone", scopes=["tenant:read"])
        async with db.transaction(scoped(tenant)) as s:
            revoked = await service.revoke_api_key(s, actor, created.key.id)
            again = await service.revoke_api_key(s, actor, created.key.id)
        assert revoked.revoked_at is not None
        assert again.revoked_at == revoked.revoked_at
        assert len(await events_of(db, tenant.id, "API_KEY_REVOKED")) == 1

    async def test_a_key_of_another_tenant_cannot_be_revoked(self, db, unique):
        mine = await make_tenant(db, slug=f"k1-{unique}")
        theirs = await make_tenant(db, slug=f"k2-{unique}")
        async with db.transaction(scoped(theirs)) as s:
            created = await service.create_api_key(
                s, owner_of(theirs, None), name="x", scopes=["tenant:read"]
            )
        with pytest.raises(NotFound):
            async with db.transaction(scoped(mine)) as s:
                await service.revoke_api_key(s, owner_of(mine, None), created.key.id)
