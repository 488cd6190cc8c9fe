"""Platform admins act in another tenant only explicitly, with a reason, and every visit is audited."""

from __future__ import annotations

from tests.factories import make_tenant, make_user
from tests.tenancy.conftest import audit_of
from tests.tenancy.test_routes import log_in


async def _admin(db, unique: str):  # type: ignore[no-untyped-def]
    platform = await make_tenant(db, slug=f"plat-{unique}", kind="PLATFORM")
    return await make_user(db, email=f"admin.{unique}@example.com", tenant=platform, role="PLATFORM_ADMIN")


class TestAdminContextThroughHeaders:
    async def test_an_admin_acts_in_another_tenant_with_a_reason_and_is_audited(self, client_at, db, unique):
        admin = await _admin(db, unique)
        talent = await make_tenant(db, slug=f"visited-{unique}")
        async with client_at() as http:
            await log_in(http, admin)
            response = await http.get(
                "/api/v1/tenants/current",
                headers={"X-Tenant": talent.slug, "X-Admin-Reason": "support ticket 4711"},
            )
        assert response.status_code == 200, response.text
        assert response.json()["slug"] == talent.slug
        visits = await audit_of(db, talent.id, "ADMIN_CONTEXT_ENTERED")
        assert [(v.reason, v.is_admin_context) for v in visits] == [("support ticket 4711", True)]

    async def test_without_a_reason_the_admin_is_refused(self, client_at, db, unique):
        admin = await _admin(db, unique)
        talent = await make_tenant(db, slug=f"noreason-{unique}")
        async with client_at() as http:
            await log_in(http, admin)
            response = await http.get("/api/v1/tenants/current", headers={"X-Tenant": talent.slug})
        assert response.status_code == 403
        assert await audit_of(db, talent.id, "ADMIN_CONTEXT_ENTERED") == []

    async def test_a_malformed_tenant_reference_is_not_found_not_an_error(self, client_at, db, unique):
        admin = await _admin(db, unique)
        async with client_at() as http:
            await log_in(http, admin)
            for ref in ("bad\x00slug", "UPPER", "x" * 300, "../etc"):
                response = await http.get(
                    "/api/v1/tenants/current", headers={"X-Tenant": ref, "X-Admin-Reason": "check"}
                )
                assert response.status_code == 404, (ref, response.text)

    async def test_a_non_admin_naming_a_tenant_they_do_not_belong_to_gets_404(self, client_at, db, unique):
        home = await make_tenant(db, slug=f"home-{unique}")
        other = await make_tenant(db, slug=f"other-{unique}")
        user = await make_user(db, email=f"member.{unique}@example.com", tenant=home)
        async with client_at() as http:
            await log_in(http, user)
            response = await http.get(
                "/api/v1/tenants/current", headers={"X-Tenant": other.slug, "X-Admin-Reason": "curious"}
            )
        assert response.status_code == 404
        assert await audit_of(db, other.id, "ADMIN_CONTEXT_ENTERED") == []
