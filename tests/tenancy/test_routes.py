"""The tenancy API: sessions, throttling, keys, members, tenants; another tenant's objects are 404."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import text

from tests.factories import ADMIN, PASSWORD, MadeUser, bearer, make_api_key, make_tenant, make_user
from tests.tenancy.conftest import audit_of, events_of

STRONG = "a long enough passphrase"


async def log_in(http, user: MadeUser, *, tenant: str | None = None) -> dict:
    response = await http.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert response.status_code == 200, response.text
    if tenant:
        http.cookies.set("vt_tenant", tenant)
    return response.json()


async def make_user_for_login(db, unique: str) -> MadeUser:
    tenant = await make_tenant(db, slug=f"l-{unique}")
    return await make_user(db, email=f"login.{unique}@example.com", tenant=tenant)


def error_code(response) -> str:
    return response.json()["error"]["code"]


class TestSignUpAndSessions:
    async def test_signing_up_creates_a_tenant_and_signs_in(self, client_at, db, unique):
        async with client_at() as http:
            response = await http.post(
                "/api/v1/auth/signup",
                json={
                    "email": f"new.{unique}@example.com",
                    "password": STRONG,
                    "tenant_name": f"Nova {unique}",
                },
            )
            assert response.status_code == 201, response.text
            body = response.json()
            assert body["user"]["email"] == f"new.{unique}@example.com"
            assert [(m["slug"], m["role"]) for m in body["memberships"]] == [
                (f"nova-{unique}", "TALENT_OWNER")
            ]
            me = await http.get("/api/v1/auth/me")
        assert me.status_code == 200
        assert me.json()["role"] == "TALENT_OWNER"
        assert "password" not in response.text

    async def test_the_session_cookie_is_http_only_and_same_site(self, client_at, db, unique):
        user = await make_user_for_login(db, unique)
        async with client_at() as http:
            response = await http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("vt_session=")
        assert "httponly" in cookie
        assert "samesite=lax" in cookie

    async def test_a_wrong_password_is_401_invalid_credentials(self, client_at, db, unique):
        user = await make_user_for_login(db, unique)
        async with client_at() as http:
            response = await http.post("/api/v1/auth/login", json={"email": user.email, "password": "nope"})
        assert response.status_code == 401
        assert error_code(response) == "invalid_credentials"
        assert "vt_session" not in response.headers.get("set-cookie", "")

    async def test_too_many_failures_for_an_account_are_429_with_retry_after(
        self, client_at, db, test_settings, unique
    ):
        user = await make_user_for_login(db, unique)
        for _ in range(test_settings.login_max_failures_per_account):
            async with client_at() as http:
                response = await http.post(
                    "/api/v1/auth/login", json={"email": user.email, "password": "nope"}
                )
            assert response.status_code == 401
        async with client_at() as http:
            response = await http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 429
        assert error_code(response) == "rate_limited"
        assert 0 < int(response.headers["retry-after"]) <= test_settings.login_window_seconds

    async def test_too_many_failures_from_one_address_are_429(self, client_at, db, test_settings, unique):
        user = await make_user_for_login(db, unique)
        async with client_at() as http:
            for n in range(test_settings.login_max_failures_per_ip):
                response = await http.post(
                    "/api/v1/auth/login", json={"email": f"spray{n}.{unique}@example.com", "password": "nope"}
                )
                assert response.status_code == 401
            response = await http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
            assert response.status_code == 429
            assert "retry-after" in response.headers
        async with client_at() as elsewhere:
            await log_in(elsewhere, user)

    async def test_bad_input_is_422_naming_the_field(self, client_at, db, unique):
        async with client_at() as http:
            missing = await http.post("/api/v1/auth/signup", json={"email": f"x.{unique}@example.com"})
            short = await http.post(
                "/api/v1/auth/signup",
                json={"email": f"x.{unique}@example.com", "password": "short", "tenant_name": "X"},
            )
            reserved = await http.post(
                "/api/v1/auth/signup",
                json={
                    "email": f"x.{unique}@example.com",
                    "password": STRONG,
                    "tenant_name": "X",
                    "tenant_slug": "admin",
                },
            )
            not_json = await http.post(
                "/api/v1/auth/login", content=b"\xff\xfe", headers={"content-type": "application/json"}
            )
        assert (missing.status_code, missing.json()["error"]["field"]) == (422, "password")
        assert (short.status_code, short.json()["error"]["field"]) == (422, "password")
        assert (reserved.status_code, reserved.json()["error"]["field"]) == (422, "tenant_slug")
        assert not_json.status_code == 422

    async def test_an_expired_session_is_401_session_expired(self, client_at, db, unique):
        user = await make_user_for_login(db, unique)
        async with client_at() as http:
            await log_in(http, user)
            async with db.transaction(ADMIN) as s:
                await s.execute(
                    text(
                        "UPDATE auth_sessions SET expires_at = now() - interval '1 second' WHERE user_id = :u"
                    ),
                    {"u": user.id},
                )
            response = await http.get("/api/v1/tenants/current")
        assert response.status_code == 401
        assert error_code(response) == "session_expired"

    async def test_a_cookie_older_than_the_session_lifetime_is_401_session_expired(
        self, client_at, test_settings, unique
    ):
        class LongAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - test_settings.session_max_age_seconds - 60

        old = URLSafeTimedSerializer(test_settings.secret_key, salt="vibethink.session", signer=LongAgo)
        cookie = old.dumps({"sid": str(uuid.uuid4()), "uid": str(uuid.uuid4())})
        async with client_at() as http:
            http.cookies.set(test_settings.session_cookie_name, cookie)
            response = await http.get("/api/v1/auth/me")
        assert response.status_code == 401
        assert error_code(response) == "session_expired"

    async def test_logging_out_ends_the_session_on_the_server(self, client_at, db, test_settings, unique):
        user = await make_user_for_login(db, unique)
        async with client_at() as http:
            await log_in(http, user)
            cookie = http.cookies[test_settings.session_cookie_name]
            response = await http.post("/api/v1/auth/logout")
            assert response.status_code == 204
        async with client_at() as replay:
            replay.cookies.set(test_settings.session_cookie_name, cookie)
            response = await replay.get("/api/v1/auth/me")
        assert response.status_code == 401
        assert error_code(response) == "not_authenticated"


class TestApiKeys:
    async def test_a_revoked_key_is_401(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"rk-{unique}")
        key = await make_api_key(db, tenant, revoked=True)
        response = await client.get("/api/v1/tenants/current", headers=bearer(key))
        assert response.status_code == 401
        assert error_code(response) == "invalid_api_key"

    async def test_a_key_revoked_through_the_api_stops_working_at_once(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"rv-{unique}")
        admin_key = await make_api_key(db, tenant)
        created = await client.post(
            "/api/v1/api-keys",
            json={"name": "short-lived", "scopes": ["tenant:read"]},
            headers=bearer(admin_key),
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert (await client.get("/api/v1/tenants/current", headers=bearer(key))).status_code == 200
        revoked = await client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=bearer(admin_key))
        assert revoked.status_code == 204
        response = await client.get("/api/v1/tenants/current", headers=bearer(key))
        assert response.status_code == 401
        assert [e.event_type for e in await events_of(db, tenant.id)] == [
            "API_KEY_CREATED",
            "API_KEY_REVOKED",
        ]

    async def test_an_expired_key_is_401(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"ek-{unique}")
        admin_key = await make_api_key(db, tenant)
        created = await client.post(
            "/api/v1/api-keys",
            json={
                "name": "soon",
                "scopes": ["tenant:read"],
                "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            },
            headers=bearer(admin_key),
        )
        assert created.status_code == 201, created.text
        async with db.transaction(ADMIN) as s:
            await s.execute(
                text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
                {"id": created.json()["id"]},
            )
        response = await client.get("/api/v1/tenants/current", headers=bearer(created.json()["key"]))
        assert response.status_code == 401
        assert error_code(response) == "invalid_api_key"

    async def test_a_key_without_the_scope_is_403_missing_scope(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"ms-{unique}")
        key = await make_api_key(db, tenant, scopes={"tenant:read"})
        response = await client.get("/api/v1/members", headers=bearer(key))
        assert response.status_code == 403
        assert error_code(response) == "missing_scope"

    async def test_a_key_cannot_create_a_key_with_more_scopes_than_its_own(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"more-{unique}")
        key = await make_api_key(db, tenant, scopes={"api_keys:write"})
        response = await client.post(
            "/api/v1/api-keys", json={"name": "wider", "scopes": ["members:write"]}, headers=bearer(key)
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "scopes"

    async def test_the_key_is_shown_once_and_never_listed(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"once-{unique}")
        admin_key = await make_api_key(db, tenant)
        created = await client.post(
            "/api/v1/api-keys", json={"name": "listed", "scopes": ["tenant:read"]}, headers=bearer(admin_key)
        )
        plaintext = created.json()["key"]
        listed = await client.get("/api/v1/api-keys", headers=bearer(admin_key))
        assert listed.status_code == 200
        assert plaintext not in listed.text
        assert plaintext.split("_")[-1] not in listed.text
        assert "secret_hash" not in listed.text
        assert "key" not in listed.json()["items"][0]
        async with db.transaction(ADMIN) as s:
            hashes = (
                (
                    await s.execute(
                        text("SELECT secret_hash FROM api_keys WHERE tenant_id = :t"), {"t": tenant.id}
                    )
                )
                .scalars()
                .all()
            )
        assert all(h not in listed.text for h in hashes)

    async def test_keys_are_listed_a_page_at_a_time(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"pk-{unique}")
        for _ in range(3):
            await make_api_key(db, tenant)
        key = await make_api_key(db, tenant)
        first = await client.get("/api/v1/api-keys?limit=3", headers=bearer(key))
        second = await client.get(
            f"/api/v1/api-keys?limit=3&cursor={first.json()['next_cursor']}", headers=bearer(key)
        )
        ids = [k["id"] for k in first.json()["items"] + second.json()["items"]]
        assert len(ids) == len(set(ids)) == 4
        assert second.json()["next_cursor"] is None
        bad = await client.get("/api/v1/api-keys?cursor=not-a-cursor", headers=bearer(key))
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "cursor")

    async def test_another_tenants_keys_and_members_are_404(self, client, db, unique):
        mine = await make_tenant(db, slug=f"a-{unique}")
        theirs = await make_tenant(db, slug=f"b-{unique}")
        my_key = await make_api_key(db, mine)
        their_key = await make_api_key(db, theirs)
        their_member = await make_user(
            db, email=f"b.{unique}@example.com", tenant=theirs, role="TALENT_MANAGER"
        )
        their_keys = await client.get("/api/v1/api-keys", headers=bearer(their_key))
        their_key_id = their_keys.json()["items"][0]["id"]
        responses = [
            await client.delete(f"/api/v1/api-keys/{their_key_id}", headers=bearer(my_key)),
            await client.delete(f"/api/v1/members/{their_member.id}", headers=bearer(my_key)),
            await client.patch(
                f"/api/v1/members/{their_member.id}", json={"role": "TALENT_OWNER"}, headers=bearer(my_key)
            ),
        ]
        assert [r.status_code for r in responses] == [404, 404, 404]
        assert all(error_code(r) == "not_found" for r in responses)
        mine_listed = await client.get("/api/v1/members", headers=bearer(my_key))
        assert str(their_member.id) not in mine_listed.text
        assert (await client.get("/api/v1/api-keys", headers=bearer(their_key))).json()["items"][0][
            "revoked_at"
        ] is None


class TestMembers:
    async def test_an_invitation_works_end_to_end(self, client_at, db, test_settings, unique):
        tenant = await make_tenant(db, slug=f"inv-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        async with client_at() as http:
            await log_in(http, owner)
            invited = await http.post(
                "/api/v1/members",
                json={
                    "email": f"Guest.{unique}@example.com",
                    "role": "TALENT_MANAGER",
                    "display_name": "Guest",
                },
            )
            assert invited.status_code == 201, invited.text
            body = invited.json()
            assert body["member"]["is_pending"] is True
            url = body["invite_url"]
            assert url.startswith(f"{test_settings.public_url}/signup?invite=")
            listed = await http.get("/api/v1/members")
            assert url.split("=", 1)[1] not in listed.text
        token = url.split("invite=", 1)[1]
        async with client_at() as guest:
            accepted = await guest.post("/api/v1/auth/signup", json={"invite": token, "password": STRONG})
            assert accepted.status_code == 201, accepted.text
            assert [m["slug"] for m in accepted.json()["memberships"]] == [tenant.slug]
            assert (await guest.get("/api/v1/members")).status_code == 200
        async with client_at() as again:
            reused = await again.post("/api/v1/auth/signup", json={"invite": token, "password": STRONG})
            assert reused.status_code == 422
            assert error_code(reused) == "invalid_invitation"
            await log_in(again, MadeUser(uuid.uuid4(), f"guest.{unique}@example.com", STRONG))
        kinds = sorted(e.event_type for e in await events_of(db, tenant.id))
        assert kinds == ["ROLE_ASSIGNED", "USER_CREATED"]

    async def test_the_last_owner_cannot_be_demoted_or_removed(self, client_at, db, unique):
        tenant = await make_tenant(db, slug=f"lo-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        async with client_at() as http:
            await log_in(http, owner)
            demoted = await http.patch(f"/api/v1/members/{owner.id}", json={"role": "TALENT_MANAGER"})
            removed = await http.delete(f"/api/v1/members/{owner.id}")
        assert (demoted.status_code, error_code(demoted)) == (409, "last_owner")
        assert (removed.status_code, error_code(removed)) == (409, "last_owner")

    async def test_a_role_above_the_callers_own_is_refused(self, client_at, db, unique):
        tenant = await make_tenant(db, slug=f"up-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        manager = await make_user(db, email=f"mgr.{unique}@example.com", tenant=tenant, role="TALENT_MANAGER")
        async with client_at() as http:
            await log_in(http, owner)
            to_admin = await http.patch(f"/api/v1/members/{manager.id}", json={"role": "PLATFORM_ADMIN"})
            invite_admin = await http.post(
                "/api/v1/members", json={"email": f"x.{unique}@example.com", "role": "PLATFORM_ADMIN"}
            )
            bogus = await http.patch(f"/api/v1/members/{manager.id}", json={"role": "EMPEROR"})
        assert to_admin.status_code == 403
        assert invite_admin.status_code == 403
        assert (bogus.status_code, bogus.json()["error"]["field"]) == (422, "role")
        async with client_at() as http:
            await log_in(http, manager)
            self_promotion = await http.patch(f"/api/v1/members/{manager.id}", json={"role": "TALENT_OWNER"})
        assert self_promotion.status_code == 403

    async def test_every_member_write_records_its_event(self, client_at, db, unique):
        tenant = await make_tenant(db, slug=f"ev-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        known = await make_user(db, email=f"known.{unique}@example.com")
        async with client_at() as http:
            await log_in(http, owner)
            assert (
                await http.post("/api/v1/members", json={"email": known.email, "role": "TALENT_MANAGER"})
            ).status_code == 201
            assert (
                await http.patch(f"/api/v1/members/{known.id}", json={"role": "TALENT_OWNER"})
            ).status_code == 200
            assert (await http.delete(f"/api/v1/members/{known.id}")).status_code == 204
            assert (await http.patch("/api/v1/tenants/current", json={"name": "Renamed"})).status_code == 200
        events = await events_of(db, tenant.id)
        assert [e.event_type for e in events] == [
            "ROLE_ASSIGNED",
            "ROLE_ASSIGNED",
            "USER_DEACTIVATED",
            "CONFIGURATION_CHANGE",
        ]
        assert all(e.actor_user_id == owner.id for e in events)

    async def test_members_are_listed_a_page_at_a_time(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"ml-{unique}")
        for n in range(3):
            await make_user(db, email=f"m{n}.{unique}@example.com", tenant=tenant, role="TALENT_MANAGER")
        key = await make_api_key(db, tenant)
        first = await client.get("/api/v1/members?limit=2", headers=bearer(key))
        assert first.status_code == 200
        second = await client.get(
            f"/api/v1/members?limit=2&cursor={first.json()['next_cursor']}", headers=bearer(key)
        )
        emails = [m["email"] for m in first.json()["items"] + second.json()["items"]]
        assert sorted(emails) == sorted(f"m{n}.{unique}@example.com" for n in range(3))
        too_big = await client.get("/api/v1/members?limit=1000", headers=bearer(key))
        assert (too_big.status_code, too_big.json()["error"]["field"]) == (422, "limit")


class TestTenants:
    async def test_the_current_tenant_can_be_read_and_renamed(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"cur-{unique}")
        key = await make_api_key(db, tenant)
        read = await client.get("/api/v1/tenants/current", headers=bearer(key))
        assert read.json()["slug"] == tenant.slug
        renamed = await client.patch(
            "/api/v1/tenants/current", json={"name": "  New   Name "}, headers=bearer(key)
        )
        assert renamed.json()["name"] == "New Name"
        tier = await client.patch("/api/v1/tenants/current", json={"tier": "ENTERPRISE"}, headers=bearer(key))
        assert tier.status_code == 403
        unknown = await client.patch("/api/v1/tenants/current", json={"slug": "other"}, headers=bearer(key))
        assert unknown.status_code == 422

    async def test_only_platform_admins_list_every_tenant_and_it_is_audited(self, client_at, db, unique):
        platform = await make_tenant(db, slug=f"plat-{unique}", kind="PLATFORM")
        admin = await make_user(
            db, email=f"admin.{unique}@example.com", tenant=platform, role="PLATFORM_ADMIN"
        )
        talent = await make_tenant(db, slug=f"tal-{unique}")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=talent)
        async with client_at() as http:
            await log_in(http, owner)
            refused = await http.get("/api/v1/tenants", params={"reason": "curious"})
        assert (refused.status_code, error_code(refused)) == (403, "permission_denied")
        async with client_at() as http:
            await log_in(http, admin)
            no_reason = await http.get("/api/v1/tenants")
            slugs: list[str] = []
            cursor = None
            while True:
                params = {"reason": "monthly review", "limit": 100, **({"cursor": cursor} if cursor else {})}
                page = await http.get("/api/v1/tenants", params=params)
                assert page.status_code == 200, page.text
                slugs += [t["slug"] for t in page.json()["items"]]
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break
        assert (no_reason.status_code, no_reason.json()["error"]["field"]) == (422, "reason")
        assert {platform.slug, talent.slug} <= set(slugs)
        entries = await audit_of(db, platform.id, "TENANTS_LISTED")
        assert entries
        assert all(e.reason == "monthly review" and e.is_admin_context for e in entries)

    async def test_a_platform_admin_onboards_a_tenant_with_its_owner(self, client_at, db, unique):
        platform = await make_tenant(db, slug=f"pl-{unique}", kind="PLATFORM")
        admin = await make_user(
            db, email=f"admin.{unique}@example.com", tenant=platform, role="PLATFORM_ADMIN"
        )
        async with client_at() as http:
            await log_in(http, admin)
            created = await http.post(
                "/api/v1/tenants",
                json={
                    "kind": "BRAND",
                    "slug": f"brand-{unique}",
                    "name": "Fizzy",
                    "owner_email": f"boss.{unique}@example.com",
                },
            )
            assert created.status_code == 201, created.text
            taken = await http.post(
                "/api/v1/tenants",
                json={
                    "kind": "BRAND",
                    "slug": f"brand-{unique}",
                    "name": "Again",
                    "owner_email": f"boss2.{unique}@example.com",
                },
            )
            reserved = await http.post(
                "/api/v1/tenants",
                json={
                    "kind": "TALENT",
                    "slug": "metrics",
                    "name": "M",
                    "owner_email": f"m.{unique}@example.com",
                },
            )
        body = created.json()
        assert body["owner"]["member"]["role"] == "BRAND_MANAGER"
        assert body["owner"]["invite_url"]
        assert (taken.status_code, taken.json()["error"]["field"]) == (409, "slug")
        assert (reserved.status_code, reserved.json()["error"]["field"]) == (422, "slug")
        new_id = uuid.UUID(body["tenant"]["id"])
        assert sorted(e.event_type for e in await events_of(db, new_id)) == [
            "ROLE_ASSIGNED",
            "TENANT_CREATED",
        ]

    async def test_a_tenant_member_cannot_create_tenants(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"nc-{unique}")
        key = await make_api_key(db, tenant)
        response = await client.post(
            "/api/v1/tenants",
            json={
                "kind": "TALENT",
                "slug": f"x-{unique}",
                "name": "X",
                "owner_email": f"x.{unique}@example.com",
            },
            headers=bearer(key),
        )
        assert response.status_code == 403


class TestHostileInput:
    async def test_no_input_makes_the_server_fail(self, client, db, unique):
        tenant = await make_tenant(db, slug=f"hostile-{unique}")
        key = await make_api_key(db, tenant)
        headers = {**bearer(key), "content-type": "application/json"}
        hostile = ["\x00", "a\x00b@example.com", "\ud800", "x" * 5000, "", " ", "é@é", "<script>"]
        statuses: list[tuple[int, str, str]] = []
        for value in hostile:
            bodies = [
                ("POST", "/api/v1/auth/login", {"email": value, "password": value}),
                ("POST", "/api/v1/auth/signup", {"email": value, "password": STRONG, "tenant_name": value}),
                (
                    "POST",
                    "/api/v1/auth/signup",
                    {"email": "a@example.com", "password": value, "tenant_name": "A"},
                ),
                ("POST", "/api/v1/auth/signup", {"invite": value, "password": STRONG}),
                (
                    "POST",
                    "/api/v1/members",
                    {"email": value, "role": "TALENT_MANAGER", "display_name": value},
                ),
                ("PATCH", "/api/v1/tenants/current", {"name": value}),
                ("POST", "/api/v1/api-keys", {"name": value, "scopes": [value]}),
                ("POST", "/api/v1/api-keys", {"name": "ok", "scopes": ["tenant:read"], "expires_at": value}),
            ]
            for method, path, body in bodies:
                # Escaped JSON, so lone surrogates reach the server as a client could send them.
                response = await client.request(method, path, content=json.dumps(body), headers=headers)
                statuses.append((response.status_code, path, repr(value)[:12]))
            quoted = quote(value.encode("utf-8", "surrogatepass"))
            for path in (f"/api/v1/members?cursor={quoted}", f"/api/v1/tenants?reason={quoted}"):
                response = await client.get(path, headers=bearer(key))
                statuses.append((response.status_code, path[:24], repr(value)[:12]))
            response = await client.get(f"/signup?invite={quoted}")
            statuses.append((response.status_code, "/signup", repr(value)[:12]))
        assert [s for s in statuses if s[0] >= 500] == []
