"""Webhook deliveries, signed as Standard Webhooks defines, retried with
exponential backoff, every attempt logged on the job.

Each delivery is a POST of the event (JSON) with ``webhook-id`` (the same
on every retry, for the receiver to drop duplicates), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature``: ``v1,`` + base64
of HMAC-SHA256 over ``id.timestamp.body`` with the configured ``whsec_``
secret (the ``standardwebhooks`` package's signer, the spec's reference
implementation). A 2xx answer delivers it; anything else, or no answer,
is retried after ``base × 2^(attempt−1)`` seconds until
XRDID_WEBHOOK_MAX_ATTEMPTS are spent.

Deliveries come from the store's outbox (queued in the transaction that
finishes the job), so they survive restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import anyio.to_thread
import httpcore
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.store.base import Delivery, DeliveryAttempt, ServiceStore
from app.webhooks.policy import CallbackPolicy, GuardedBackend

__all__ = ["WebhookDispatcher", "retry_delay_s", "signed_headers"]

logger = logging.getLogger(__name__)

# Deliveries in flight at once; receivers are few (one LIMS), so a handful.
_CONCURRENT = 8
# A delay beyond this is no better than this (and keeps the tail bounded).
_MAX_DELAY_S = 3600.0
_POLL_S = 0.5
_USER_AGENT = "xrdid-webhooks/1"


def retry_delay_s(attempt: int, base_s: float) -> float:
    """Seconds before retrying after failed attempt number ``attempt`` (1-based)."""
    return float(min(base_s * 2.0 ** (attempt - 1), _MAX_DELAY_S))


def signed_headers(signer: Webhook, message_id: str, at: float, body: bytes) -> dict[str, str]:
    timestamp = datetime.fromtimestamp(int(at), UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signer.sign(message_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
    }


class WebhookDispatcher:
    """Delivers due webhook messages until stopped."""

    def __init__(self, store: ServiceStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        secret = settings.webhook_secret
        self.signer = Webhook(secret.get_secret_value()) if secret else None
        self.policy = CallbackPolicy(settings.webhook_allowed_hosts)
        self.owner = "webhooks-" + uuid.uuid4().hex
        self.wakeup = asyncio.Event()
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=GuardedBackend(self.policy), retries=0, max_connections=_CONCURRENT
        )

    async def run(self) -> None:
        while True:
            try:
                due = await anyio.to_thread.run_sync(self._claim)
                if due:
                    await asyncio.gather(*(self.deliver(d) for d in due))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook delivery loop failed; retrying")
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=_POLL_S)
            except TimeoutError:
                pass

    def _claim(self) -> list[Delivery]:
        # The lease outlasts one attempt (timeout plus slack), so only a dead
        # process's claims are taken over.
        lease_s = 3 * self.settings.webhook_timeout_s + 5.0
        return self.store.claim_deliveries(
            self.owner, time.time(), lease_s=lease_s, limit=_CONCURRENT
        )

    async def deliver(self, delivery: Delivery) -> None:
        started = time.time()
        status_code: int | None = None
        error: str | None = None
        if self.signer is None:
            error = "no webhook secret is configured (XRDID_WEBHOOK_SECRET)"
        else:
            headers = signed_headers(self.signer, delivery.id, started, delivery.payload)
            timeout = self.settings.webhook_timeout_s
            try:
                async with self._pool.stream(
                    "POST",
                    delivery.url,
                    headers=list(headers.items()),
                    content=delivery.payload,
                    extensions={
                        "timeout": {
                            "connect": timeout,
                            "read": timeout,
                            "write": timeout,
                            "pool": timeout,
                        }
                    },
                ) as response:
                    status_code = response.status  # the body is not read: it is not ours
                if not 200 <= status_code < 300:
                    error = f"the receiver answered HTTP {status_code}"
            except httpcore.TimeoutException:
                error = f"no answer within {timeout:g} s"
            except httpcore.ConnectError as exc:
                error = f"could not connect: {exc}"
            except (
                httpcore.NetworkError,
                httpcore.ProtocolError,
                httpcore.UnsupportedProtocol,
            ) as exc:
                error = f"{type(exc).__name__}: {exc}"
        delivered = error is None
        attempt = len(delivery.attempts) + 1
        next_at = None
        if not delivered and attempt < self.settings.webhook_max_attempts:
            next_at = time.time() + retry_delay_s(attempt, self.settings.webhook_retry_base_s)
        record = DeliveryAttempt(started, status_code, error, (time.time() - started) * 1000.0)
        await anyio.to_thread.run_sync(
            lambda: self.store.record_attempt(
                delivery.id, record, delivered=delivered, next_attempt_at=next_at
            )
        )
        if delivered:
            logger.info(
                "webhook %s (%s) delivered to %s", delivery.id, delivery.event_type, delivery.url
            )
        elif next_at is None:
            logger.warning(
                "webhook %s to %s failed for good after %d attempts: %s",
                delivery.id, delivery.url, attempt, error,
            )  # fmt: skip
        else:
            logger.info(
                "webhook %s to %s failed (attempt %d: %s); retrying in %.1f s",
                delivery.id, delivery.url, attempt, error, next_at - time.time(),
            )  # fmt: skip

    async def close(self) -> None:
        await self._pool.aclose()
