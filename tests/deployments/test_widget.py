"""The widget's sessions: allowed origins, identity verification, short tokens bound to their origin."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import pytest

from tests.chat.conftest import ChatTwin, parse_sse
from tests.deployments.conftest import create

SITE = "https://andrescantor.example.com"


async def widget(client: httpx.AsyncClient, twin: ChatTwin, **body: Any) -> dict[str, Any]:
    body.setdefault("allowed_origins", [SITE, "*.fans.example.org"])
    return await create(client, twin, **body)


async def session(
    client: httpx.AsyncClient, key: str, origin: str | None = SITE, **body: Any
) -> httpx.Response:
    headers = {"Origin": origin} if origin else {}
    return await client.post("/api/v1/widget/sessions", json={"deployment_key": key, **body}, headers=headers)


def flip_last(signature: str) -> str:
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")


def sign(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


class TestOrigins:
    @pytest.mark.parametrize("origin", [SITE, "https://shop.fans.example.org"])
    async def test_an_allowed_origin_gets_a_short_token_and_cors(
        self, client: httpx.AsyncClient, talent: ChatTwin, origin: str
    ) -> None:
        created = await widget(client, talent)
        response = await session(client, created["widget_key"], origin)
        assert response.status_code == 201, response.text
        assert response.headers["access-control-allow-origin"] == origin
        body = response.json()
        assert body["frame_url"].endswith(f"/widget/frame/{created['widget_key']}")
        assert body["verified_user"] is False
        from datetime import UTC, datetime

        lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
        assert 0 < lifetime.total_seconds() <= 15 * 60
        assert "vtid_" not in response.text

    @pytest.mark.parametrize(
        "origin", ["https://evil.example.com", "http://andrescantor.example.com", None, "null"]
    )
    async def test_any_other_origin_is_refused_without_cors(
        self, client: httpx.AsyncClient, talent: ChatTwin, origin: str | None
    ) -> None:
        created = await widget(client, talent)
        response = await session(client, created["widget_key"], origin)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in response.headers

    async def test_an_unknown_key_is_a_404(self, client: httpx.AsyncClient) -> None:
        assert (await session(client, "vtw_" + "0" * 32)).status_code == 404

    async def test_a_switched_off_deployment_opens_no_session(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        await client.post(f"/api/v1/deployments/{created['id']}/deactivate", headers=talent.headers)
        response = await session(client, created["widget_key"])
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "twin_unavailable"

    async def test_preflight_is_answered_for_the_widget_and_chat_apis(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options(
            "/api/v1/chat/conversations",
            headers={
                "Origin": SITE,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-fan-token",
            },
        )
        assert response.status_code == 204
        assert "X-Fan-Token" in response.headers["access-control-allow-headers"]


class TestTokensAreBoundToTheirOrigin:
    async def test_the_host_page_chats_and_streams_with_its_token(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        token = (await session(client, created["widget_key"])).json()["token"]
        headers = {"X-Fan-Token": token, "Origin": SITE}
        started = await client.post(
            "/api/v1/chat/conversations", json={"deployment_id": created["id"]}, headers=headers
        )
        assert started.status_code == 201, started.text
        assert started.headers["access-control-allow-origin"] == SITE
        reply = await client.post(
            f"/api/v1/chat/conversations/{started.json()['id']}/messages",
            json={"content": "Who won the World Cup in 2022?"},
            headers={**headers, "Accept": "text/event-stream"},
        )
        events = parse_sse(reply.text)
        assert [e for e, _ in events if e == "delta"]
        assert events[-2][0] == "done"

    async def test_the_platforms_own_iframe_may_use_it(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        token = (await session(client, created["widget_key"])).json()["token"]
        response = await client.post(
            "/api/v1/chat/conversations",
            json={"deployment_id": created["id"]},
            headers={"X-Fan-Token": token, "Origin": "http://testserver"},
        )
        assert response.status_code == 201

    async def test_another_site_cannot_use_a_stolen_token(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        token = (await session(client, created["widget_key"])).json()["token"]
        response = await client.post(
            "/api/v1/chat/conversations",
            json={"deployment_id": created["id"]},
            headers={"X-Fan-Token": token, "Origin": "https://evil.example.com"},
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in response.headers

    async def test_a_token_is_refreshed_for_the_same_fan_and_dies_with_its_origin(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        first = (await session(client, created["widget_key"])).json()
        renewed = await client.post("/api/v1/widget/sessions/refresh", json={"token": first["token"]})
        assert renewed.status_code == 201, renewed.text
        assert renewed.json()["fan_key"] == first["fan_key"]
        await client.patch(
            f"/api/v1/deployments/{created['id']}",
            json={"allowed_origins": ["https://other.example.com"]},
            headers=talent.headers,
        )
        from vibethink.deployments import resolver

        resolver.cache.clear()  # no listener in this test process: the notification is not heard
        refused = await client.post("/api/v1/widget/sessions/refresh", json={"token": first["token"]})
        assert refused.status_code == 403


class TestIdentityVerification:
    async def _secret(self, client: httpx.AsyncClient, twin: ChatTwin, deployment: dict[str, Any]) -> str:
        response = await client.post(
            f"/api/v1/deployments/{deployment['id']}/identity-secret", headers=twin.headers
        )
        secret: str = response.json()["secret"]
        return secret

    async def test_a_signed_user_is_verified_with_a_stable_fan_key(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent, require_identity=True)
        secret = await self._secret(client, talent, created)
        first = await session(
            client, created["widget_key"], user_id="user-42", user_signature=sign(secret, "user-42")
        )
        again = await session(
            client, created["widget_key"], user_id="user-42", user_signature=sign(secret, "user-42")
        )
        assert first.status_code == 201, first.text
        assert first.json()["verified_user"] is True
        assert first.json()["fan_key"] == again.json()["fan_key"]
        assert first.json()["fan_key"].startswith("site:")
        assert "user-42" not in first.json()["fan_key"]

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda s: {"user_id": "user-43", "user_signature": sign(s, "user-42")},
            lambda s: {"user_id": "user-42", "user_signature": flip_last(sign(s, "user-42"))},
            lambda s: {"user_id": "user-42", "user_signature": sign("vtid_other", "user-42")},
            lambda s: {"user_id": "user-42"},
        ],
    )
    async def test_a_tampered_signature_is_refused(
        self, client: httpx.AsyncClient, talent: ChatTwin, tamper: Any
    ) -> None:
        created = await widget(client, talent)
        secret = await self._secret(client, talent, created)
        response = await session(client, created["widget_key"], **tamper(secret))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "identity_invalid"

    async def test_when_enforced_an_unsigned_visitor_is_refused(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent, require_identity=True)
        await self._secret(client, talent, created)
        response = await session(client, created["widget_key"])
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "identity_required"

    async def test_a_rotated_secret_invalidates_old_signatures(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        old = await self._secret(client, talent, created)
        await self._secret(client, talent, created)
        from vibethink.deployments import resolver

        resolver.cache.clear()
        response = await session(client, created["widget_key"], user_id="u", user_signature=sign(old, "u"))
        assert response.status_code == 403


class TestFrame:
    async def test_the_iframe_may_be_framed_only_by_the_allowed_origins(
        self, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        created = await widget(client, talent)
        response = await client.get(f"/widget/frame/{created['widget_key']}")
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == (
            "frame-ancestors 'self' https://andrescantor.example.com http://*.fans.example.org https://*.fans.example.org"
        )
        assert "x-frame-options" not in response.headers
        assert "data-vt-chat" in response.text

    async def test_an_unknown_key_frames_nothing(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/widget/frame/vtw_nothing")
        assert response.status_code == 404
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"

    async def test_the_script_is_small_and_served_as_javascript(self, client: httpx.AsyncClient) -> None:
        import gzip

        response = await client.get("/widget.js")
        assert response.headers["content-type"].startswith("application/javascript")
        assert len(gzip.compress(response.content)) <= 15 * 1024
        assert b"data-deployment-key" in response.content
