"""A local fake of the Stripe API: real HTTP on 127.0.0.1, form-encoded requests, JSON answers.

It answers what the platform calls (Checkout Sessions, billing portal sessions, subscriptions,
refunds, transfers, charges with their balance transaction) and replays the first answer for a
repeated `Idempotency-Key`, as Stripe does. Every request is recorded for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Call:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None
    authorization: str | None


@dataclass
class FakeStripe:
    calls: list[Call] = field(default_factory=list)
    charge_fees: dict[str, int] = field(default_factory=dict)
    invoice_charges: dict[str, str] = field(default_factory=dict)
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls_to(self, method: str, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(prefix)]

    def answer(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def new(prefix: str) -> str:
            return f"{prefix}_test_{uuid.uuid4().hex[:14]}"

        if method == "POST" and path == "/v1/checkout/sessions":
            session_id = new("cs")
            metadata = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
            return 200, {
                "id": session_id,
                "object": "checkout.session",
                "mode": form.get("mode"),
                "url": f"{self.url}/c/pay/{session_id}",
                "metadata": metadata,
                "client_reference_id": form.get("client_reference_id"),
            }
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return 200, {"id": new("bps"), "object": "billing_portal.session", "url": f"{self.url}/p/session"}
        if path.startswith("/v1/subscriptions/"):
            sub_id = path.rsplit("/", 1)[1]
            return 200, {
                "id": sub_id,
                "object": "subscription",
                "cancel_at_period_end": form.get("cancel_at_period_end") == "true",
                "items": {
                    "object": "list",
                    "data": [{"id": "si_test_1", "price": {"product": "prod_test_1"}}],
                },
            }
        if method == "POST" and path == "/v1/refunds":
            return 200, {
                "id": new("re"),
                "object": "refund",
                "charge": form.get("charge"),
                "amount": form.get("amount"),
            }
        if method == "POST" and path == "/v1/transfers":
            return 200, {"id": new("tr"), "object": "transfer", "amount": int(form["amount"])}
        if method == "GET" and path.startswith("/v1/charges/"):
            charge_id = path.rsplit("/", 1)[1]
            fee = self.charge_fees.get(charge_id, 0)
            return 200, {
                "id": charge_id,
                "object": "charge",
                "balance_transaction": {"id": new("txn"), "object": "balance_transaction", "fee": fee},
            }
        if method == "GET" and path.startswith("/v1/invoices/"):
            invoice_id = path.rsplit("/", 1)[1]
            charge = self.invoice_charges.get(invoice_id)
            payments = [{"payment": {"type": "charge", "charge": charge}}] if charge else []
            return 200, {
                "id": invoice_id,
                "object": "invoice",
                "payments": {"object": "list", "data": payments},
            }
        if method == "GET" and path.startswith("/v1/payment_intents/"):
            return 200, {
                "id": path.rsplit("/", 1)[1],
                "object": "payment_intent",
                "latest_charge": "ch_test_pi",
            }
        return 404, {"error": {"type": "invalid_request_error", "message": f"No route {method} {path}"}}


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            parts = urlsplit(self.path)
            form = dict(parse_qsl(raw or parts.query, keep_blank_values=True))
            key = self.headers.get("idempotency-key")
            fake.calls.append(Call(method, parts.path, form, key, self.headers.get("authorization")))
            if key and key in fake.replies:
                status, body = fake.replies[key]
            else:
                status, body = fake.answer(method, parts.path, form)
                if key:
                    fake.replies[key] = (status, body)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


@contextmanager
def running_fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
