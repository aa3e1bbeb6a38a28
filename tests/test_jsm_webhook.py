"""JSM's webhook: signed as Jira Cloud signs it, replay-safe, only agents' public news, through the real web server.

The fake JSM (tests/fake_jsm.py) shapes and signs deliveries like Jira
Cloud's admin webhooks: ``X-Hub-Signature: sha256=<HMAC-SHA256 of the raw
body>``, ``X-Atlassian-Webhook-Identifier``, a ``timestamp`` in the body.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sanic_testing import TestManager

from bot.settings import Settings
from bot.thread.model import COMMENT, CSAT, STATUS
from bot.tickets.followup_factory import build_jsm_webhook
from bot.tickets.jsm_webhook import (
    DeliveryLog,
    JsmWebhook,
    WebhookRefused,
    parse,
    signature_of,
    signature_valid,
)
from bot.web.app import create_app
from tests import fake_jsm, jsm_desk
from tests.conftest import free_port
from tests.fake_jsm import AGENT, Scripted
from tests.jsm_desk import Desk, kinds

# Fixtures, found by name in this module.
jsm_env, jsm_server, tickets_db_url, desk = (
    fake_jsm.jsm_env,
    fake_jsm.jsm_server,
    fake_jsm.tickets_db_url,
    jsm_desk.desk,
)

SECRET = "It0eYQs8R4pZ2mK9vB1nX7cW"  # the shape of a secret Jira generates
_names = itertools.count()


def signed(body: bytes, identifier: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature": signature_of(secret, body),
        "X-Atlassian-Webhook-Identifier": identifier or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


def raw(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode("utf-8")


@pytest.fixture
def webhook(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> JsmWebhook:
    monkeypatch.setenv("JSM_WEBHOOK_SECRET", SECRET)
    built = build_jsm_webhook(Settings.from_env(), desk.store)
    assert built is not None
    return built


# ---------------------------------------------------------------------- signature
def test_the_signature_is_hmac_sha256_of_the_raw_body_as_jira_sends_it() -> None:
    body = b'{"webhookEvent":"comment_created"}'
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature_of(SECRET, body) == expected
    assert signature_valid(SECRET, body, expected)
    assert signature_valid(SECRET, body, expected.upper().replace("SHA256=", "sha256="))
    assert not signature_valid(SECRET, body + b" ", expected)  # any change to the body
    assert not signature_valid("otro-secreto", body, expected)
    assert not signature_valid(SECRET, body, None) and not signature_valid(SECRET, body, "")
    assert not signature_valid(SECRET, body, "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest())
    assert not signature_valid(SECRET, body, expected.removeprefix("sha256="))
    assert not signature_valid(SECRET, body, "sha256=ñ" + expected[8:])
    assert not signature_valid("", body, "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest())


# ------------------------------------------------------------------------ handling
def test_an_agents_public_comment_is_recorded_once_and_a_replay_records_nothing(
    desk: Desk, webhook: JsmWebhook
) -> None:
    ticket, jsm_key = desk.delivered()
    body = raw(desk.fake.agent_comment(jsm_key, "¿Nos envías el archivo que falla?"))
    headers = signed(body)
    assert webhook.handle(body, headers) == 1
    assert webhook.handle(body, headers) == 0  # the same delivery again (a retry, or a replay)
    assert webhook.handle(body, signed(body)) == 0  # a new delivery id, the same comment: still once
    assert kinds(desk.thread, ticket.key) == [(COMMENT, "¿Nos envías el archivo que falla?")]
    (message,) = desk.thread.messages(ticket.key)
    assert message.author == "Laura Gómez" and message.source.startswith("jsm-comment:")


def test_internal_comments_and_non_news_events_are_never_recorded(desk: Desk, webhook: JsmWebhook) -> None:
    ticket, jsm_key = desk.delivered()
    internal = raw(desk.fake.agent_comment(jsm_key, "Nota interna: el cliente debe 3 facturas", public=False))
    assert webhook.handle(internal, signed(internal)) == 0
    public = desk.fake.agent_comment(jsm_key, "Visible solo para un rol")
    public["comment"]["visibility"] = {"type": "role", "value": "Administrators"}
    restricted = raw(public)
    assert webhook.handle(restricted, signed(restricted)) == 0
    missing_flag = desk.fake.agent_comment(jsm_key, "Sin jsdPublic")
    del missing_flag["comment"]["jsdPublic"]
    assert webhook.handle(raw(missing_flag), signed(raw(missing_flag))) == 0
    other = raw({"timestamp": int(time.time() * 1000), "webhookEvent": "jira:issue_deleted", "issue": {"key": jsm_key}})
    assert webhook.handle(other, signed(other)) == 0
    assert desk.thread.messages(ticket.key) == []


def test_requests_the_assistant_did_not_create_cost_nothing(desk: Desk, webhook: JsmWebhook) -> None:
    desk.delivered()
    other = "MDA-77"  # raised by someone else in the portal: JSM would not even tell us its reporter
    event = desk.fake.agent_comment(desk.fake.project_key + "-1", "ajeno")
    event["issue"]["key"] = other
    calls = len(desk.fake.calls)
    assert webhook.handle(raw(event), signed(raw(event))) == 0
    assert len(desk.fake.calls) == calls


def test_the_customers_own_comments_and_ours_are_not_echoed(desk: Desk, webhook: JsmWebhook) -> None:
    ticket, jsm_key = desk.delivered()
    portal = raw(desk.fake.customer_comment(jsm_key, "Lo subo por el portal"))
    assert webhook.handle(portal, signed(portal)) == 0
    ours = desk.fake._add_comment(jsm_key, "Respuesta del cliente por el chat (WhatsApp): ya lo envié", True)
    echoed = raw(desk.fake.comment_event(jsm_key, ours))
    assert webhook.handle(echoed, signed(echoed)) == 0
    by_integration = desk.fake._add_comment(jsm_key, "Publicado por la integración", True, AGENT)
    event = desk.fake.comment_event(jsm_key, by_integration)
    event["comment"]["author"].pop("emailAddress", None)  # Jira often hides e-mails: the accountId decides
    assert webhook.handle(raw(event), signed(raw(event))) == 0
    assert desk.thread.messages(ticket.key) == []
    assert len(desk.fake.called("GET", "/rest/api/3/myself")) == 1


def test_a_status_change_is_recorded_once_by_webhook_and_poll(desk: Desk, webhook: JsmWebhook) -> None:
    ticket, jsm_key = desk.delivered()
    moved = raw(desk.fake.transition(jsm_key, "En curso"))
    assert webhook.handle(moved, signed(moved)) == 1
    assert desk.poller().poll_once() == 0  # the poll sees the same change
    stored = desk.store.get(ticket.key)
    assert stored is not None and stored.jsm_status == "En curso"
    desk.fake.transition(jsm_key, "Resuelta", "done")  # the poll sees it first this time
    assert desk.poller().poll_once() == 2  # the status and the satisfaction question
    late = raw(desk.fake.events[-1])
    assert webhook.handle(late, signed(late)) == 0
    assert kinds(desk.thread, ticket.key) == [
        (STATUS, "En curso"),
        (STATUS, "Resuelta"),
        (CSAT, ticket.key + " · " + ticket.request_type),
    ]
    assert [m.status_category for m in desk.thread.messages(ticket.key)][:2] == ["indeterminate", "done"]


def test_the_same_comment_via_webhook_and_poll_is_recorded_once(desk: Desk, webhook: JsmWebhook) -> None:
    ticket, jsm_key = desk.delivered()
    desk.fake.agent_comment(jsm_key, "Primero llega el poll")
    first = desk.fake.events[-1]
    assert desk.poller().poll_once() == 1
    assert webhook.handle(raw(first), signed(raw(first))) == 0
    body = raw(desk.fake.agent_comment(jsm_key, "Ahora el webhook primero"))
    assert webhook.handle(body, signed(body)) == 1
    assert desk.poller().poll_once() == 0
    assert [b for _, b in kinds(desk.thread, ticket.key)] == ["Primero llega el poll", "Ahora el webhook primero"]


def test_stale_or_malformed_deliveries_are_refused(desk: Desk, webhook: JsmWebhook) -> None:
    _, jsm_key = desk.delivered()
    event = desk.fake.agent_comment(jsm_key, "viejo")
    for moment in (datetime.now(timezone.utc) - timedelta(days=2), datetime.now(timezone.utc) + timedelta(hours=1)):
        event["timestamp"] = int(moment.timestamp() * 1000)
        with pytest.raises(WebhookRefused) as stale:
            webhook.handle(raw(event), signed(raw(event)))
        assert stale.value.status == 400 and "plazo" in str(stale.value)
    cases = [
        b"no es json",
        b"[1, 2]",
        raw({"timestamp": "ayer", "webhookEvent": "comment_created"}),
        raw(
            {
                "timestamp": int(time.time() * 1000),
                "webhookEvent": "comment_created",
                "issue": {"key": jsm_key},
                "comment": {"jsdPublic": True, "body": "sin id"},
            }
        ),
        raw({"timestamp": int(time.time() * 1000), "webhookEvent": "comment_created", "issue": {}}),
        b"\xff\xfe",
        b"[" * 100_000 + b"]" * 100_000,
    ]
    for body in cases:
        with pytest.raises(WebhookRefused) as malformed:
            webhook.handle(body, signed(body))
        assert malformed.value.status == 400
    fresh = raw(desk.fake.agent_comment(jsm_key, "sin identificador"))
    with pytest.raises(WebhookRefused) as anonymous:
        webhook.handle(fresh, {"X-Hub-Signature": signature_of(SECRET, fresh)})
    assert anonymous.value.status == 400
    for headers in ({}, signed(fresh, secret="otro"), {**signed(fresh), "X-Hub-Signature": "sha256=00"}):
        with pytest.raises(WebhookRefused) as unsigned:
            webhook.handle(fresh, headers)
        assert unsigned.value.status == 401


def test_parse_reads_the_news_of_each_event() -> None:
    now = int(time.time() * 1000)
    commented = {
        "timestamp": now,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_commented",
        "issue": {"key": "MDA-7", "fields": {"reporter": {"accountId": "qm:1"}}},
        "comment": {
            "id": 55,
            "jsdPublic": True,
            "author": {"accountId": "x"},
            "body": {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Hola"}]}]},
        },
    }
    (news,) = parse(commented)
    assert (news.update.source, news.update.body, news.reporter) == ("jsm-comment:55", "Hola", "qm:1")
    assert (
        parse(
            {
                "timestamp": now,
                "webhookEvent": "jira:issue_updated",
                "issue": {"key": "MDA-7"},
                "changelog": {"items": [{"field": "assignee", "toString": "Laura"}]},
            }
        )
        == []
    )


def test_unreachable_database_or_jsm_answers_503_and_jira_retries(desk: Desk, webhook: JsmWebhook) -> None:
    ticket, jsm_key = desk.delivered()
    body = raw(desk.fake.agent_comment(jsm_key, "¿Seguimos?"))
    headers = signed(body)
    desk.fake.script("GET", "/rest/api/3/myself", Scripted(503, {"errorMessages": ["Service unavailable"]}))
    with pytest.raises(WebhookRefused) as unavailable:
        webhook.handle(body, headers)
    assert unavailable.value.status == 503
    assert webhook.handle(body, headers) == 1  # Jira's retry of the same delivery is handled, not taken for a replay
    down = JsmWebhook(
        SECRET, DeliveryLog(f"postgresql://eco:eco@127.0.0.1:{free_port()}/nada"), webhook.recorder, webhook.people
    )
    with pytest.raises(WebhookRefused) as no_database:
        down.handle(body, signed(body))
    assert no_database.value.status == 503
    assert len(desk.thread.messages(ticket.key)) == 1


# ---------------------------------------------------------------- the web server
def web_app(name: str) -> Any:
    app = create_app(Settings.from_env(), name=f"{name}_{next(_names)}")
    TestManager(app)
    return app


def test_route_is_off_without_a_secret(desk: Desk) -> None:
    _, jsm_key = desk.delivered()
    body = raw(desk.fake.agent_comment(jsm_key, "hola"))
    _, response = web_app("jsm_off").test_client.post("/webhooks/jsm", content=body, headers=signed(body))
    assert response.status == 404


def test_route_answers_what_jira_acts_on(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSM_WEBHOOK_SECRET", SECRET)
    ticket, jsm_key = desk.delivered()
    client = web_app("jsm_on").test_client
    body = raw(desk.fake.agent_comment(jsm_key, "¿Nos confirmas el correo?"))
    headers = signed(body)
    _, bad = client.post("/webhooks/jsm", content=body, headers={**headers, "X-Hub-Signature": signature_of("x", body)})
    assert bad.status == 401 and bad.json == {"error": "firma ausente o inválida"}
    _, missing = client.post("/webhooks/jsm", content=body, headers={"Content-Type": "application/json"})
    assert missing.status == 401
    _, ok = client.post("/webhooks/jsm", content=body, headers=headers)
    assert ok.status == 200 and ok.json == {"registrado": 1}
    _, again = client.post("/webhooks/jsm", content=body, headers=headers)
    assert again.status == 200 and again.json == {"registrado": 0}
    junk = b"{" * 10
    _, malformed = client.post("/webhooks/jsm", content=junk, headers=signed(junk))
    assert malformed.status == 400
    huge = b" " * (1024 * 1024 + 1)
    _, too_big = client.post("/webhooks/jsm", content=huge, headers=signed(huge))
    assert too_big.status == 413
    _, wrong_method = client.get("/webhooks/jsm")
    assert wrong_method.status == 405
    assert len(desk.thread.messages(ticket.key)) == 1


def test_the_real_web_server_records_what_jsm_posts(desk: Desk, jsm_env: dict[str, str], tmp_path: Path) -> None:
    ticket, jsm_key = desk.delivered()
    port = free_port()
    env = {**os.environ, **jsm_env, "JSM_WEBHOOK_SECRET": SECRET, "WEB_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "web"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "web.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/salud", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("el servidor web no arrancó:\n" + (tmp_path / "web.log").read_text())
                time.sleep(0.3)
        url = f"http://127.0.0.1:{port}/webhooks/jsm"
        event = desk.fake.agent_comment(jsm_key, "Ya quedó corregido, ¿puedes probar?")
        status, answer, identifier = desk.fake.send_webhook(url, event, SECRET)
        assert (status, answer) == (200, {"registrado": 1})
        assert desk.fake.send_webhook(url, event, SECRET, identifier=identifier)[:2] == (200, {"registrado": 0})
        assert desk.fake.send_webhook(url, event, "otro-secreto")[0] == 401
        assert desk.fake.send_webhook(url, event, None)[0] == 401
        moved = desk.fake.transition(jsm_key, "Esperando por el cliente")
        assert desk.fake.send_webhook(url, moved, SECRET)[:2] == (200, {"registrado": 1})
    finally:
        server.terminate()
        server.wait(20)
    assert kinds(desk.thread, ticket.key) == [
        (COMMENT, "Ya quedó corregido, ¿puedes probar?"),
        (STATUS, "Esperando por el cliente"),
    ]
