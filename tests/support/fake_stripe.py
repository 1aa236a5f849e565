"""A fake of the one Stripe API call ProductStudio makes, and Stripe's webhook signing.

`FakeStripe` is a real HTTP server on 127.0.0.1 serving `POST /v1/checkout/sessions` as
Stripe does: it checks the secret key, decodes the form-encoded body (Stripe's
`line_items[0][price_data][currency]=usd` style), and answers a Checkout session object
with a `cs_test_...` id and a payment page URL. `refuse_next()` makes the next call fail
as Stripe does. Every other path answers Stripe's 404.

    with FakeStripe() as fake:
        settings.STRIPE_API_BASE = fake.base_url
        settings.STRIPE_SECRET_KEY = fake.api_key
        ...
        fake.created[0]["request"]["line_items"][0]["price_data"]["unit_amount"]  # "1200"

`checkout_event()` builds a webhook event about a session; `sign()` signs a payload the way
Stripe signs deliveries (`Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's bracketed form fields as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


class FakeStripe:
    def __init__(self, api_key: str = "sk_test_fake") -> None:
        self.api_key = api_key
        # Each session created: Stripe's answer, with the decoded request under "request".
        self.created: list[dict[str, Any]] = []
        self.calls = 0
        self._refusals: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                status, answer = fake._answer(self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(7))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse_next(
        self, status: int = 400, message: str = "Invalid currency: xyz", kind: str = ""
    ) -> None:
        """The next call answers `status` with Stripe's error body."""
        kind = kind or ("invalid_request_error" if status < 500 else "api_error")
        with self._lock:
            self._refusals.append((status, {"error": {"type": kind, "message": message}}))

    def _answer(self, path: str, headers: Any, body: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls += 1
            if self._refusals:
                return self._refusals.pop(0)
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, _error("Invalid API Key provided.")
        if path.split("?")[0] != "/v1/checkout/sessions":
            return 404, _error(f"Unrecognized request URL (POST: {path}).")
        request = decode_form(body)
        for required in ("mode", "line_items", "success_url"):
            if required not in request:
                return 400, _error(f"Missing required param: {required}.")
        line = request["line_items"][0]
        amount = int(line["price_data"]["unit_amount"]) * int(line.get("quantity", 1))
        session_id = "cs_test_" + secrets.token_hex(16)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": request["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": line["price_data"]["currency"],
            "client_reference_id": request.get("client_reference_id"),
            "customer_email": request.get("customer_email"),
            "metadata": request.get("metadata", {}),
            "success_url": request["success_url"],
            "cancel_url": request.get("cancel_url"),
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "livemode": False,
            "created": int(time.time()),
        }
        with self._lock:
            self.created.append({**session, "request": request})
        return 200, session


def _error(message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message}}


def checkout_event(
    session_id: str,
    *,
    type: str = "checkout.session.completed",
    payment_status: str = "paid",
    event_id: str = "",
    amount_total: int | None = None,
) -> dict[str, Any]:
    """A webhook event about a Checkout session, shaped as Stripe sends it."""
    return {
        "id": event_id or "evt_test_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "livemode": False,
        "type": type,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "expired" if type.endswith("expired") else "complete",
                "payment_status": payment_status,
                "amount_total": amount_total,
            }
        },
    }


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send with `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
