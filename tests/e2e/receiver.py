"""A real webhook receiver on 127.0.0.1 that verifies every delivery twice:
with the ``standardwebhooks`` package (the spec's reference verifier) and
by the spec written out here (HMAC-SHA256 over ``id.timestamp.body``,
base64, ``v1,`` prefix), so a bug shared by signer and library cannot pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def spec_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_by_library: bool
    verified_by_spec: bool
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class WebhookReceiver:
    """Answers 500 to the first ``fail_first`` deliveries, then 204."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.record(self, headers, body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/xrdid"

    def record(self, handler: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        try:
            Webhook(self.secret).verify(body, headers)
            by_library = True
        except WebhookVerificationError:
            by_library = False
        expected = spec_signature(
            self.secret, headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""), body
        )
        by_spec = any(
            hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split()
        )
        with self._lock:
            status = 500 if len(self.received) < self.fail_first else 204
            self.received.append(Received(headers, body, by_library, by_spec, status))
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
