"""Webhooks on a real loopback server: each flavour's payload, retries, never blocking, no secrets in logs."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from webhook_server import webhook_server

from optui.alerts.model import Alert
from optui.alerts.webhooks import WebhookDispatcher, WebhookTarget, detect_format, payload
from optui.timeutil import IST, UTC

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 25, 10, 0, 5, tzinfo=IST).astimezone(UTC)
SECRET = "123456:AAE-SECRETTOKEN"


def alert(severity: str = "warning", subject: str = "NIFTY bought") -> Alert:
    return Alert(AT, "premium_flow", severity, subject,
                 "NIFTY: ₹1,250.0 cr of option premium bought in one cycle (threshold ₹1,000.0 cr)",
                 index="NIFTY", value=1250.0, threshold=1000.0, unit="cr")


@pytest.mark.unit
def test_format_detection() -> None:
    assert detect_format(f"https://api.telegram.org/bot{SECRET}/sendMessage") == "telegram"
    assert detect_format("https://hooks.slack.com/services/T0/B0/XYZ") == "slack"
    assert detect_format("https://example.org/hook") == "json"
    assert detect_format("https://example.org/hook", "slack") == "slack"


@pytest.mark.unit
def test_payload_shapes() -> None:
    a = alert()
    assert payload(a, "slack") == {"text": "*optui WARNING* " + a.message + "\n_2026-11-25 10:00:05 IST_"}
    tg = payload(a, "telegram", "-1001234")
    assert tg == {"chat_id": "-1001234", "disable_web_page_preview": True,
                  "text": "optui [WARNING] " + a.message + " · 2026-11-25 10:00:05 IST"}
    js = payload(a, "json")
    assert js["alert"] == {"time": "2026-11-25T04:30:05+00:00", "rule": "premium_flow",
                           "severity": "warning", "subject": "NIFTY bought", "index": "NIFTY",
                           "message": a.message, "value": 1250.0, "threshold": 1000.0, "unit": "cr"}


@pytest.mark.parametrize("fmt", ["json", "slack", "telegram"])
def test_each_flavour_reaches_the_server(fmt: str) -> None:
    answer = {"ok": True, "result": {"message_id": 7}} if fmt == "telegram" else "ok"
    with webhook_server(default=(200, answer, {})) as server:
        path = f"/bot{SECRET}/sendMessage" if fmt == "telegram" else "/hooks/T0/B0/XYZ"
        hooks = WebhookDispatcher([WebhookTarget(server.url(path), fmt, "-1001234")], backoff_s=0.01)
        assert hooks.submit(alert())
        assert hooks.flush(30)
        hooks.close()
        [got] = server.received
    assert got.path == path and got.content_type.startswith("application/json")
    assert got.body == payload(alert(), fmt, "-1001234")
    assert hooks.sent == 1 and hooks.failed == 0


def test_retries_until_delivered_and_gives_up_on_a_client_error() -> None:
    script = [(503, "busy", {}), (429, {"ok": False, "parameters": {"retry_after": 0}}, {}),
              (200, {"ok": True}, {})]
    with webhook_server(script=script) as server:
        hooks = WebhookDispatcher([WebhookTarget(server.url(f"/bot{SECRET}/sendMessage"), "telegram", "1")],
                                  retries=3, backoff_s=0.01)
        hooks.submit(alert())
        assert hooks.flush(30)
        assert len(server.received) == 3 and hooks.sent == 1 and hooks.failed == 0
        server.script[:] = [(400, {"ok": False, "description": "Bad Request: chat not found"}, {})]
        hooks.submit(alert())
        assert hooks.flush(30)
        hooks.close()
        assert len(server.received) == 4 and hooks.failed == 1  # a 400 is not retried
    with webhook_server(default=(200, {"ok": False}, {})) as server:
        hooks = WebhookDispatcher([WebhookTarget(server.url("/botX/sendMessage"), "telegram", "1")],
                                  backoff_s=0.01)
        hooks.submit(alert())
        assert hooks.flush(30)
        hooks.close()
        assert hooks.failed == 1 and hooks.sent == 0  # Telegram's answer must say ok


def test_submitting_never_waits_for_the_server() -> None:
    with webhook_server() as server:
        server.gate.clear()  # the server holds every request until the gate opens
        hooks = WebhookDispatcher([WebhookTarget(server.url("/hook"), "json")], max_queue=1,
                                  backoff_s=0.01)
        assert hooks.submit(alert(subject="a"))
        assert server.arrived.wait(30)  # the first post is in flight, held by the server
        assert hooks.submit(alert(subject="b"))  # queued while the server holds the first
        assert not hooks.submit(alert(subject="c"))  # the queue is full: dropped, not waited for
        assert hooks.dropped == 1 and not server.gate.is_set()
        server.gate.set()
        assert hooks.flush(30)
        hooks.close()
        assert [r.body["alert"]["subject"] for r in server.received] == ["a", "b"]


def test_minimum_severity_filters_posts() -> None:
    with webhook_server() as server:
        hooks = WebhookDispatcher([WebhookTarget(server.url("/hook"), "json", min_severity="warning")])
        assert not hooks.submit(alert("info"))
        assert hooks.submit(alert("critical"))
        assert hooks.flush(30)
        hooks.close()
        assert [r.body["alert"]["severity"] for r in server.received] == ["critical"]


def test_webhook_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with webhook_server(script=[(404, "no such bot", {})], default=(200, {"ok": True}, {})) as server:
        targets = [WebhookTarget(server.url(f"/bot{SECRET}/sendMessage"), "telegram", "1"),
                   WebhookTarget(f"http://127.0.0.1:9/bot{SECRET}/sendMessage", "telegram", "1")]
        hooks = WebhookDispatcher(targets, retries=1, backoff_s=0.01)
        hooks.submit(alert())
        hooks.submit(alert(subject="again"))
        assert hooks.flush(60)
        hooks.close()
        assert hooks.sent == 1 and hooks.failed == 3
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "http://127.0.0.1" in text  # the posts were logged (redacted) ...
    assert "SECRETTOKEN" not in text and "123456" not in text  # ... without the token
    assert "SECRETTOKEN" not in repr(targets[0])
