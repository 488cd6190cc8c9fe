"""Stripe: Checkout, portal, refunds and transfers against a local fake Stripe API; webhooks signed
by the real `stripe` library, applied once per event id and in any order."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import text

from tests.billing.conftest import Talent, admin_client, create_tier, make_deployment
from tests.billing.fake_stripe import FakeStripe, running_fake_stripe
from tests.billing.test_routes import _signed_in_fan
from tests.factories import ADMIN
from vibethink.app import create_app
from vibethink.core.database import Database
from vibethink.core.settings import Settings

SECRET = "whsec_test_secret_for_the_fake"
HOOK = "/api/v1/billing/webhooks/stripe"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with running_fake_stripe() as server:
        yield server


@pytest.fixture(scope="module")
def stripe_app(test_settings: Settings, db: Database, fake: FakeStripe) -> Any:
    settings = test_settings.model_copy(
        update={
            "payment_provider": "stripe",
            "stripe_api_key": "sk_test_fake",
            "stripe_webhook_secret": SECRET,
            "stripe_api_base": fake.url,
        }
    )
    return create_app(settings, db=db)


@pytest.fixture
async def http(stripe_app: Any) -> Any:
    transport = httpx.ASGITransport(app=stripe_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def signed(event: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return payload.encode(), {"Stripe-Signature": header, "content-type": "application/json"}


def event(kind: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": created or int(time.time()),
        "data": {"object": obj},
    }


async def send(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    payload, headers = signed(body)
    return await http.post(HOOK, content=payload, headers=headers)


async def _count(db: Database, sql: str, **params: Any) -> int:
    async with db.transaction(ADMIN) as s:
        return int((await s.execute(text(sql), params)).scalar_one())


class Subscribed:
    def __init__(self, talent: Talent, subscription: dict[str, Any], fan: httpx.AsyncClient) -> None:
        self.talent = talent
        self.subscription = subscription
        self.fan = fan

    @property
    def metadata(self) -> dict[str, str]:
        return {
            "tenant_id": str(self.talent.tenant.id),
            "subscription_id": self.subscription["id"],
            "celebrity_id": str(self.talent.celebrity_id),
            "kind": "subscription",
        }

    def invoice(
        self, charge: str, *, amount: int = 1_000, period: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        start, end = period or (int(time.time()), int(time.time()) + 30 * 86_400)
        return {
            "id": f"in_{uuid.uuid4().hex[:12]}",
            "object": "invoice",
            "customer": "cus_test_1",
            "amount_paid": amount,
            "currency": "usd",
            "parent": {"subscription_details": {"subscription": "sub_test_1", "metadata": self.metadata}},
            "payments": {"data": [{"payment": {"charge": charge}}]},
            "lines": {"data": [{"period": {"start": start, "end": end}}]},
        }


@pytest.fixture
async def subscribed(
    stripe_app: Any, http: httpx.AsyncClient, db: Database, talent: Talent, unique: str
) -> Any:
    await create_tier(http, talent, "PREMIUM", 1_000, 200)
    await create_tier(http, talent, "VIP", 3_000, None)
    portal = await make_deployment(db, talent.tenant.id, talent.celebrity_id)
    fan = await _signed_in_fan(stripe_app, db, portal, unique)
    response = await fan.post("/api/v1/fan/subscriptions", json={"tier_code": "PREMIUM"})
    assert response.status_code == 201, response.text
    yield Subscribed(talent, response.json()["subscription"], fan), response.json()
    await fan.aclose()


class TestCheckoutAndPortal:
    async def test_subscribing_opens_a_checkout_session_with_an_idempotency_key(
        self, subscribed: Any, fake: FakeStripe
    ) -> None:
        sub, body = subscribed
        assert body["subscription"]["status"] == "INCOMPLETE"
        assert body["checkout_url"].startswith(fake.url)
        [call] = [
            c
            for c in fake.calls_to("POST", "/v1/checkout/sessions")
            if c.form.get("client_reference_id") == sub.subscription["id"]
        ]
        assert call.idempotency_key == f"subscription-checkout-{sub.subscription['id']}"
        assert call.form["mode"] == "subscription"
        assert call.form["line_items[0][price_data][unit_amount]"] == "1000"
        assert call.form["subscription_data[metadata][tenant_id]"] == str(sub.talent.tenant.id)
        assert call.authorization == "Bearer sk_test_fake"

    async def test_the_fan_gets_a_customer_portal_link_once_stripe_knows_the_customer(
        self, http: httpx.AsyncClient, subscribed: Any, fake: FakeStripe
    ) -> None:
        sub, _ = subscribed
        before = await sub.fan.get("/api/v1/fan/billing-portal")
        assert before.status_code == 422
        assert (await send(http, event("invoice.paid", sub.invoice("ch_portal")))).status_code == 200
        portal = await sub.fan.get("/api/v1/fan/billing-portal")
        assert portal.status_code == 200, portal.text
        assert portal.json()["url"].startswith(fake.url)
        assert fake.calls_to("POST", "/v1/billing_portal/sessions")[-1].form["customer"] == "cus_test_1"


class TestWebhooks:
    async def test_a_bad_signature_is_refused_and_records_nothing(
        self, http: httpx.AsyncClient, db: Database, subscribed: Any
    ) -> None:
        sub, _ = subscribed
        body = event("invoice.paid", sub.invoice("ch_forged"))
        payload, headers = signed(body, secret="whsec_not_ours")
        response = await http.post(HOOK, content=payload, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_signature"
        unsigned = await http.post(HOOK, content=payload, headers={"content-type": "application/json"})
        assert unsigned.status_code == 400
        assert await _count(db, "SELECT count(*) FROM payment_events WHERE event_id = :e", e=body["id"]) == 0
        assert (
            await _count(
                db, "SELECT count(*) FROM revenue_transactions WHERE external_ref = 'stripe:charge:ch_forged'"
            )
            == 0
        )

    async def test_a_paid_invoice_activates_and_posts_net_of_stripes_fee_once(
        self, http: httpx.AsyncClient, db: Database, subscribed: Any, fake: FakeStripe
    ) -> None:
        sub, _ = subscribed
        charge = f"ch_{uuid.uuid4().hex[:10]}"
        fake.charge_fees[charge] = 59
        paid = event("invoice.paid", sub.invoice(charge))
        first = await send(http, paid)
        assert first.json() == {"status": "applied"}
        again = await send(http, paid)
        assert again.json() == {"status": "duplicate"}
        applied = await _count(
            db,
            "SELECT count(*) FROM platform_events"
            " WHERE event_type = 'PAYMENT_EVENT_APPLIED' AND subject_id = :e",
            e=paid["id"],
        )
        assert applied == 1
        rows = (
            await http.get(
                f"/api/v1/celebrities/{sub.talent.celebrity_id}/revenue-transactions",
                headers=sub.talent.headers,
            )
        ).json()["items"]
        assert [
            (
                r["gross_cents"],
                r["fee_cents"],
                r["net_cents"],
                r["celebrity_share_cents"],
                r["platform_share_cents"],
            )
            for r in rows
        ] == [(1_000, 59, 941, 659, 282)]
        usage = (await sub.fan.get("/api/v1/fan/usage")).json()
        assert (usage["tier"], usage["quota"]) == ("PREMIUM", 200)
        current = (await sub.fan.get("/api/v1/fan/subscription")).json()
        assert current["status"] == "ACTIVE"

    async def test_subscription_updates_out_of_order_keep_the_newest_state(
        self, http: httpx.AsyncClient, subscribed: Any
    ) -> None:
        sub, _ = subscribed
        now = int(time.time())
        newer = event(
            "customer.subscription.updated",
            {
                "id": "sub_test_1",
                "object": "subscription",
                "status": "active",
                "cancel_at_period_end": True,
                "metadata": sub.metadata,
            },
            created=now,
        )
        older = event(
            "customer.subscription.updated",
            {
                "id": "sub_test_1",
                "object": "subscription",
                "status": "active",
                "cancel_at_period_end": False,
                "metadata": sub.metadata,
            },
            created=now - 60,
        )
        assert (await send(http, newer)).json() == {"status": "applied"}
        assert (await send(http, older)).json() == {"status": "applied"}
        current = (await sub.fan.get("/api/v1/fan/subscription")).json()
        assert current["cancel_at_period_end"] is True
        deleted = event(
            "customer.subscription.deleted",
            {
                "id": "sub_test_1",
                "object": "subscription",
                "status": "canceled",
                "metadata": sub.metadata,
                "ended_at": now + 5,
            },
            created=now + 5,
        )
        await send(http, deleted)
        assert (await sub.fan.get("/api/v1/fan/subscription")).status_code == 404
        usage = (await sub.fan.get("/api/v1/fan/usage")).json()
        assert usage["tier"] != "PREMIUM"

    async def test_a_refund_before_its_payment_is_retried_and_partial_refunds_in_any_order_end_right(
        self, http: httpx.AsyncClient, db: Database, subscribed: Any, fake: FakeStripe
    ) -> None:
        sub, _ = subscribed
        charge = f"ch_{uuid.uuid4().hex[:10]}"
        fake.charge_fees[charge] = 59
        early = event(
            "charge.refunded",
            {"id": charge, "object": "charge", "amount_refunded": 300, "metadata": sub.metadata},
        )
        refused = await send(http, early)
        assert refused.status_code == 503
        assert await _count(db, "SELECT count(*) FROM payment_events WHERE event_id = :e", e=early["id"]) == 0
        await send(http, event("invoice.paid", sub.invoice(charge)))
        later = event("charge.refunded", {"id": charge, "object": "charge", "amount_refunded": 1_000})
        assert (await send(http, later)).json() == {"status": "applied"}
        assert (await send(http, early)).json() == {"status": "applied"}  # the retried, older total
        rows = (
            await http.get(
                f"/api/v1/celebrities/{sub.talent.celebrity_id}/revenue-transactions",
                headers=sub.talent.headers,
            )
        ).json()["items"]
        assert sum(r["gross_cents"] for r in rows) == 0
        assert sum(r["fee_cents"] for r in rows) == 0
        assert sum(r["celebrity_share_cents"] for r in rows) == 0
        assert sum(r["platform_share_cents"] for r in rows) == 0

    async def test_a_dispute_reverses_and_a_won_dispute_restores(
        self, http: httpx.AsyncClient, subscribed: Any
    ) -> None:
        sub, _ = subscribed
        charge = f"ch_{uuid.uuid4().hex[:10]}"
        await send(http, event("invoice.paid", sub.invoice(charge)))
        dispute = {"id": f"dp_{uuid.uuid4().hex[:8]}", "object": "dispute", "charge": charge, "amount": 1_000}
        won = event("charge.dispute.closed", {**dispute, "status": "won"})
        assert (await send(http, won)).status_code == 503  # its opening is not known yet
        assert (
            await send(http, event("charge.dispute.created", {**dispute, "status": "needs_response"}))
        ).json() == {"status": "applied"}
        assert (await send(http, won)).json() == {"status": "applied"}
        rows = (
            await http.get(
                f"/api/v1/celebrities/{sub.talent.celebrity_id}/revenue-transactions",
                headers=sub.talent.headers,
            )
        ).json()["items"]
        assert sorted(r["gross_cents"] for r in rows) == [-1_000, 1_000, 1_000]
        assert sum(r["celebrity_share_cents"] for r in rows) == 700
        month = time.strftime("%Y-%m", time.gmtime())
        statement = await http.get(
            f"/api/v1/celebrities/{sub.talent.celebrity_id}/statements/{month}",
            headers=sub.talent.headers,
        )
        assert statement.json()["is_balanced"] is True

    async def test_a_refund_through_the_api_asks_stripe_with_an_idempotency_key(
        self, http: httpx.AsyncClient, subscribed: Any, fake: FakeStripe
    ) -> None:
        sub, _ = subscribed
        charge = f"ch_{uuid.uuid4().hex[:10]}"
        await send(http, event("invoice.paid", sub.invoice(charge)))
        [row] = (
            await http.get(
                f"/api/v1/celebrities/{sub.talent.celebrity_id}/revenue-transactions",
                headers=sub.talent.headers,
            )
        ).json()["items"]
        response = await http.post(
            f"/api/v1/revenue-transactions/{row['id']}/refund",
            headers=sub.talent.headers,
            json={"amount_cents": 400},
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "requested"
        call = fake.calls_to("POST", "/v1/refunds")[-1]
        assert (call.form["charge"], call.form["amount"]) == (charge, "400")
        assert call.idempotency_key == f"refund-{row['id']}-400"

    async def test_an_invoice_without_inline_payments_is_asked_for_its_charge(
        self, http: httpx.AsyncClient, subscribed: Any, fake: FakeStripe
    ) -> None:
        sub, _ = subscribed
        charge = f"ch_{uuid.uuid4().hex[:10]}"
        fake.charge_fees[charge] = 61
        invoice = sub.invoice(charge)
        del invoice["payments"]
        fake.invoice_charges[invoice["id"]] = charge
        assert (await send(http, event("invoice.paid", invoice))).json() == {"status": "applied"}
        [call] = fake.calls_to("GET", f"/v1/invoices/{invoice['id']}")
        assert call.form == {"expand[0]": "payments"}
        [row] = (
            await http.get(
                f"/api/v1/celebrities/{sub.talent.celebrity_id}/revenue-transactions",
                headers=sub.talent.headers,
            )
        ).json()["items"]
        assert (row["fee_cents"], row["net_cents"]) == (61, 939)


class TestConnectPayouts:
    async def test_a_payout_batch_transfers_to_the_connected_account_once(
        self,
        stripe_app: Any,
        http: httpx.AsyncClient,
        db: Database,
        subscribed: Any,
        fake: FakeStripe,
        unique: str,
    ) -> None:
        sub, _ = subscribed
        await send(http, event("invoice.paid", sub.invoice(f"ch_{uuid.uuid4().hex[:10]}")))
        settings = await http.put(
            f"/api/v1/celebrities/{sub.talent.celebrity_id}/payout-settings",
            headers=sub.talent.headers,
            json={"method": "STRIPE_CONNECT", "stripe_account_id": "acct_test123"},
        )
        assert settings.status_code == 200, settings.text
        admin = await admin_client(stripe_app, db, unique)
        try:
            month = time.strftime("%Y-%m", time.gmtime())
            batch = await admin.post("/api/v1/billing/payout-batches", json={"month": month})
            assert batch.status_code == 201, batch.text
            mine = [p for p in batch.json() if p["celebrity_id"] == str(sub.talent.celebrity_id)]
            assert [(p["amount_cents"], p["status"], p["method"]) for p in mine] == [
                (700, "PAID", "STRIPE_CONNECT")
            ]
            again = await admin.post("/api/v1/billing/payout-batches", json={"month": month})
            assert [p for p in again.json() if p["celebrity_id"] == str(sub.talent.celebrity_id)] == []
        finally:
            await admin.aclose()
        transfers = [
            c for c in fake.calls_to("POST", "/v1/transfers") if c.form["destination"] == "acct_test123"
        ]
        assert [(c.form["amount"], c.idempotency_key) for c in transfers] == [
            ("700", f"payout-{mine[0]['id']}")
        ]
