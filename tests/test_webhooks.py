"""Webhooks: the callback policy (SSRF), the signature, the backoff, and
the dispatcher delivering from a real store to a real receiver."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.store.base import FileOutcome, NewJob
from app.store.sqlite import SqliteServiceStore
from app.webhooks.dispatcher import WebhookDispatcher, retry_delay_s, signed_headers
from app.webhooks.policy import CallbackPolicy, CallbackRefusedError
from tests.e2e.receiver import WebhookReceiver, spec_signature

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.0.1", "169.254.169.254", "100.64.0.1",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"],
)  # fmt: skip
def test_private_addresses_are_refused_unless_listed(address: str) -> None:
    with pytest.raises(CallbackRefusedError):
        CallbackPolicy([]).check_address("hooks.example.org", address)
    if address not in ("0.0.0.0", "224.0.0.1"):
        CallbackPolicy(["hooks.example.org"]).check_address("hooks.example.org", address)


def test_public_addresses_pass_and_the_allow_list_binds() -> None:
    CallbackPolicy([]).check_address("example.org", "93.184.215.14")
    listed = CallbackPolicy(["lims.lab.org", "*.hooks.lab.org"])
    assert listed.check_url("https://lims.lab.org/x") == "lims.lab.org"
    assert listed.check_url("https://a.b.hooks.lab.org/x") == "a.b.hooks.lab.org"
    for url in ("https://hooks.lab.org/x", "https://lims.lab.org.evil.test/", "https://x.org/"):
        with pytest.raises(CallbackRefusedError, match="not allowed"):
            listed.check_url(url)


def test_localhost_resolves_to_a_refused_address() -> None:
    with pytest.raises(CallbackRefusedError, match="loopback"):
        asyncio.run(CallbackPolicy([]).check("http://localhost:8080/hook"))


def test_signature_is_the_specs() -> None:
    body = b'{"type":"job.completed"}'
    headers = signed_headers(Webhook(SECRET), "msg_1", 1_700_000_000.9, body)
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == spec_signature(SECRET, "msg_1", "1700000000", body)


def test_backoff_doubles_and_is_capped() -> None:
    assert [retry_delay_s(n, 5.0) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert retry_delay_s(40, 5.0) == 3600.0


def finished_job(store: SqliteServiceStore, url: str) -> None:
    store.create_job(
        NewJob("job1", time.time(), {}, [("a.xy", b"1 2")], callback_url=url), max_queued_files=9
    )
    store.claim_files("w", time.time(), lease_s=30, limit=1, max_attempts=2, retention_s=60)
    store.complete_files(
        "w", "job1", [FileOutcome(0, result={"ok": True})], time.time(), retention_s=60
    )


async def deliver_all(dispatcher: WebhookDispatcher, rounds: int) -> None:
    for _ in range(rounds):
        for delivery in dispatcher._claim():
            await dispatcher.deliver(delivery)
        await asyncio.sleep(0.06)
    await dispatcher.close()


def test_dispatcher_retries_until_the_receiver_takes_it(tmp_path: Path) -> None:
    store = SqliteServiceStore(tmp_path / "service.sqlite")
    settings = Settings(
        webhook_secret=SECRET,
        webhook_allowed_hosts="127.0.0.1",
        webhook_retry_base_s=0.02,
        webhook_max_attempts=5,
    )
    with WebhookReceiver(SECRET, fail_first=3) as receiver:
        finished_job(store, receiver.url)
        asyncio.run(deliver_all(WebhookDispatcher(store, settings), rounds=12))
    (delivery,) = store.deliveries("job1")
    assert delivery.status == "delivered"
    assert [a.status_code for a in delivery.attempts] == [500, 500, 500, 204]
    assert [r.answered for r in receiver.received] == [500, 500, 500, 204]
    assert all(r.verified_by_library and r.verified_by_spec for r in receiver.received)
    assert json.loads(receiver.received[0].body)["data"]["job_id"] == "job1"
    store.close()


def test_dispatcher_never_connects_to_a_refused_address(tmp_path: Path) -> None:
    """The job was accepted under another allow-list (or the name now
    resolves elsewhere): the delivery is checked again at connect time."""
    store = SqliteServiceStore(tmp_path / "service.sqlite")
    settings = Settings(webhook_secret=SECRET, webhook_max_attempts=1)
    with WebhookReceiver(SECRET) as receiver:
        finished_job(store, receiver.url)
        asyncio.run(deliver_all(WebhookDispatcher(store, settings), rounds=1))
    assert receiver.received == []
    (delivery,) = store.deliveries("job1")
    assert delivery.status == "failed" and "loopback" in (delivery.attempts[0].error or "")
    store.close()
