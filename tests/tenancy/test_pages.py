"""Sign-in, sign-up, studio and sign-out pages: cookies, CSRF, inline errors, throttling."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.factories import ADMIN, PASSWORD, make_tenant, make_user
from vibethink.tenancy import service
from vibethink.tenancy.models import Role
from vibethink.tenancy.service import Operator

STRONG = "a long enough passphrase"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


async def sign_in_form(http, email: str, password: str, **extra: str):
    page = await http.get("/login")
    return await http.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text), **extra}
    )


class TestLoginPage:
    async def test_the_login_page_is_labelled_and_carries_a_csrf_token(self, client_at):
        async with client_at() as http:
            page = await http.get("/login")
        assert page.status_code == 200
        assert '<label for="email">' in page.text
        assert '<label for="password">' in page.text
        assert 'autocomplete="current-password"' in page.text
        assert csrf_of(page.text)
        assert "vt_csrf=" in page.headers["set-cookie"]
        assert "httponly" in page.headers["set-cookie"].lower()

    async def test_signing_in_lands_on_the_studio_listing_the_memberships(self, client_at, db, unique):
        tenant = await make_tenant(db, slug=f"pg-{unique}", name="Andrés Cantor")
        user = await make_user(db, email=f"page.{unique}@example.com", tenant=tenant)
        async with client_at() as http:
            response = await sign_in_form(http, user.email, PASSWORD)
            assert response.status_code == 303
            assert response.headers["location"] == "/studio"
            cookie = response.headers["set-cookie"].lower()
            assert "vt_session=" in cookie
            assert "httponly" in cookie
            assert "samesite=lax" in cookie
            studio = await http.get("/studio")
        assert studio.status_code == 200
        assert "Andrés Cantor" in studio.text
        assert f"/studio/{tenant.slug}" in studio.text

    async def test_a_wrong_password_is_shown_inline_and_accessibly(self, client_at, db, unique):
        user = await make_user(db, email=f"inline.{unique}@example.com")
        async with client_at() as http:
            response = await sign_in_form(http, user.email, "not it")
        assert response.status_code == 401
        assert 'role="alert"' in response.text
        assert 'aria-invalid="true"' in response.text
        assert "The e-mail or password is not correct." in response.text
        assert f'value="{user.email}"' in response.text

    async def test_a_post_without_a_csrf_token_is_403(self, client_at, db, unique):
        user = await make_user(db, email=f"csrf.{unique}@example.com")
        async with client_at() as http:
            await http.get("/login")
            missing = await http.post("/login", data={"email": user.email, "password": PASSWORD})
            forged = await http.post(
                "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "made-up"}
            )
        async with client_at() as fresh:
            no_cookie = await fresh.post(
                "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "made-up"}
            )
        for response in (missing, forged, no_cookie):
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "csrf_failed"

    async def test_page_sign_in_is_rate_limited_too(self, client_at, db, test_settings, unique):
        user = await make_user(db, email=f"pl.{unique}@example.com")
        for _ in range(test_settings.login_max_failures_per_account):
            async with client_at() as http:
                assert (await sign_in_form(http, user.email, "guess")).status_code == 401
        async with client_at() as http:
            response = await sign_in_form(http, user.email, PASSWORD)
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in response.text

    async def test_only_same_site_destinations_are_followed_after_sign_in(self, client_at, db, unique):
        user = await make_user(
            db, email=f"next.{unique}@example.com", tenant=await make_tenant(db, slug=f"nx-{unique}")
        )
        async with client_at() as http:
            response = await sign_in_form(http, user.email, PASSWORD, next="//evil.example/steal")
        assert response.headers["location"] == "/studio"


class TestSignUpPage:
    async def test_signing_up_through_the_form_opens_the_studio(self, client_at, db, unique):
        async with client_at() as http:
            page = await http.get("/signup")
            response = await http.post(
                "/signup",
                data={
                    "csrf_token": csrf_of(page.text),
                    "email": f"form.{unique}@example.com",
                    "password": STRONG,
                    "tenant_name": f"Brand {unique}",
                    "tenant_kind": "BRAND",
                },
            )
            assert response.status_code == 303, response.text
            studio = await http.get("/studio")
        assert f"brand-{unique}" in studio.text
        assert "Brand manager" in studio.text

    async def test_a_short_password_is_explained_next_to_its_field(self, client_at, unique):
        async with client_at() as http:
            page = await http.get("/signup")
            response = await http.post(
                "/signup",
                data={
                    "csrf_token": csrf_of(page.text),
                    "email": f"s.{unique}@example.com",
                    "password": "short",
                    "tenant_name": "Shorty",
                },
            )
        assert response.status_code == 422
        assert 'id="password-error"' in response.text
        assert 'aria-describedby="password-hint password-error"' in response.text
        assert f'value="s.{unique}@example.com"' in response.text
        assert 'value="short"' not in response.text

    async def test_a_taken_address_is_explained_and_nothing_is_kept(self, client_at, db, unique):
        await make_tenant(db, slug=f"taken-{unique}")
        async with client_at() as http:
            page = await http.get("/signup")
            response = await http.post(
                "/signup",
                data={
                    "csrf_token": csrf_of(page.text),
                    "email": f"t.{unique}@example.com",
                    "password": STRONG,
                    "tenant_name": "Taken",
                    "tenant_slug": f"taken-{unique}",
                },
            )
        assert response.status_code == 409
        assert 'id="tenant_slug-error"' in response.text
        async with db.transaction(ADMIN) as s:
            kept = await s.scalar(
                text("SELECT count(*) FROM users WHERE email = :e"), {"e": f"t.{unique}@example.com"}
            )
        assert kept == 0

    async def test_an_invitation_link_lets_the_invitee_set_a_password(self, client_at, db, unique):
        tenant = await make_tenant(db, slug=f"ip-{unique}", name="Marcus Reed")
        owner = await make_user(db, email=f"owner.{unique}@example.com", tenant=tenant)
        async with db.transaction(service.RlsContext(tenant_id=tenant.id, user_id=owner.id)) as s:
            invited = await service.invite_member(
                s,
                Operator(tenant.id, owner.id, Role.TALENT_OWNER),
                f"inv.{unique}@example.com",
                role=Role.TALENT_MANAGER,
            )
        async with client_at() as http:
            page = await http.get(f"/signup?invite={invited.invitation_token}")
            assert page.status_code == 200
            assert "Join Marcus Reed" in page.text
            assert f"inv.{unique}@example.com" in page.text
            response = await http.post(
                "/signup",
                data={
                    "csrf_token": csrf_of(page.text),
                    "invite": invited.invitation_token,
                    "password": STRONG,
                    "display_name": "Invitee",
                },
            )
            assert response.status_code == 303, response.text
            studio = await http.get("/studio")
        assert "Marcus Reed" in studio.text
        assert "Welcome, Invitee" in studio.text

    async def test_an_unusable_invitation_link_explains_itself(self, client_at):
        async with client_at() as http:
            page = await http.get("/signup?invite=not-a-real-token")
        assert page.status_code == 422
        assert "not valid" in page.text


class TestStudioAndLogout:
    async def test_the_studio_sends_signed_out_visitors_to_sign_in(self, client_at):
        async with client_at() as http:
            response = await http.get("/studio")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/studio"

    async def test_choosing_a_tenant_remembers_it_and_opens_its_dashboard(self, client_at, db, unique):
        talent = await make_tenant(db, slug=f"t1-{unique}")
        brand = await make_tenant(db, slug=f"b1-{unique}", kind="BRAND")
        user = await make_user(db, email=f"two.{unique}@example.com", tenant=talent)
        async with db.transaction(ADMIN) as s:
            await s.execute(
                text("INSERT INTO memberships (tenant_id, user_id, role) VALUES (:t, :u, 'BRAND_MANAGER')"),
                {"t": brand.id, "u": user.id},
            )
        async with client_at() as http:
            await sign_in_form(http, user.email, PASSWORD)
            studio = await http.get("/studio")
            token = csrf_of(studio.text)
            chosen = await http.post("/studio/tenant", data={"csrf_token": token, "tenant": brand.slug})
            assert chosen.status_code == 303
            assert chosen.headers["location"] == f"/brand/{brand.slug}"
            assert f"vt_tenant={brand.slug}" in chosen.headers["set-cookie"]
            me = await http.get("/api/v1/auth/me")
            assert me.json()["tenant_id"] == str(brand.id)
            stranger = await http.post("/studio/tenant", data={"csrf_token": token, "tenant": "someone-else"})
            no_token = await http.post("/studio/tenant", data={"tenant": talent.slug})
        assert stranger.status_code == 404
        assert no_token.status_code == 403

    async def test_signing_out_needs_the_csrf_token_and_ends_the_session(
        self, client_at, db, test_settings, unique
    ):
        user = await make_user(
            db, email=f"out.{unique}@example.com", tenant=await make_tenant(db, slug=f"o-{unique}")
        )
        async with client_at() as http:
            await sign_in_form(http, user.email, PASSWORD)
            cookie = http.cookies[test_settings.session_cookie_name]
            refused = await http.post("/logout")
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "csrf_failed"
            studio = await http.get("/studio")
            response = await http.post("/logout", data={"csrf_token": csrf_of(studio.text)})
            assert response.status_code == 303
            assert response.headers["location"] == "/login?signed_out=1"
        async with client_at() as replay:
            replay.cookies.set(test_settings.session_cookie_name, cookie)
            after = await replay.get("/studio")
        assert after.status_code == 303
