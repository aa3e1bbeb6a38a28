"""After the ticket: agents' news recorded once (JSM polling, the embedded desk's CLI) and the customer's
replies and notes delivered to JSM, against the local fake of JSM.

The tickets database is SQLite, or PostgreSQL when TEST_POSTGRES_URL is set
(``tickets_db_url`` in tests/fake_jsm.py): claiming and uniqueness differ.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.attachments import AttachmentStore
from bot.catalog import Catalog
from bot.settings import Settings
from bot.settings.tickets import OutboxSettings
from bot.thread import TicketThread, Update
from bot.thread.model import COMMENT, CSAT, DELIVERED, FAILED, HANDOFF, LOCAL, PENDING, STATUS, TO_DESK
from bot.tickets import TicketStore
from bot.tickets.desk_delivery import HUMAN_CONTACT_LABEL, DeskDelivery
from bot.tickets.followup_factory import build_jsm_followup
from bot.tickets.model import Attachment
from bot.tickets.updates import ticket_ref
from tests import fake_jsm, jsm_desk
from tests.fake_jsm import AGENT, Scripted
from tests.jsm_desk import Desk, kinds
from tests.test_tickets import new_ticket

# Fixtures, found by name in this module.
jsm_env, jsm_server, tickets_db_url, desk = (
    fake_jsm.jsm_env,
    fake_jsm.jsm_server,
    fake_jsm.tickets_db_url,
    jsm_desk.desk,
)

REQUEST = "/rest/servicedeskapi/request"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# ------------------------------------------------------------------ recording news
def test_news_is_resolved_by_jsm_key_and_recorded_once(desk: Desk) -> None:
    ticket, jsm_key = desk.delivered()
    comment = Update(
        ticket=jsm_key.lower(),
        source="jsm-comment:900",
        kind=COMMENT,
        body="¿Nos envías el archivo?",
        author="Laura Gómez",
    )
    (message,) = desk.recorder.record(comment)
    assert (message.ticket_key, message.title, message.channel) == (ticket.key, ticket_ref(ticket).title, "whatsapp")
    assert message.conversation_id == ticket.conversation_id and message.delivery_status == PENDING
    assert desk.recorder.record(comment) == []  # the same news again: nothing new
    # News from JSM never names our key; unknown keys and junk are ignored.
    assert desk.recorder.record(Update(ticket=ticket.key, source="jsm-comment:901", kind=COMMENT, body="x")) == []
    assert desk.recorder.record(Update(ticket="MDA-999", source="jsm-comment:902", kind=COMMENT, body="x")) == []
    assert desk.recorder.record(Update(ticket="'; drop", source="local:1", kind=COMMENT, body="x")) == []
    assert kinds(desk.thread, ticket.key) == [(COMMENT, "¿Nos envías el archivo?")]


def test_a_status_keeps_the_jsm_status_current_and_a_late_older_one_is_history(desk: Desk) -> None:
    ticket, jsm_key = desk.delivered()
    moved = datetime(2030, 1, 2, 15, 0, tzinfo=timezone.utc)
    news = Update(
        ticket=jsm_key,
        source="jsm-status:1",
        kind=STATUS,
        body="En curso",
        happened_at=moved,
        status_category="indeterminate",
    )
    assert len(desk.recorder.record(news)) == 1
    stored = desk.store.get(ticket.key)
    assert stored is not None and (stored.jsm_status, stored.jsm_status_at) == ("En curso", moved)
    late = Update(
        ticket=jsm_key,
        source="jsm-status:0",
        kind=STATUS,
        body="Esperando por el cliente",
        happened_at=moved - timedelta(minutes=3),
    )
    assert desk.recorder.record(late) == []  # a replayed or late webhook does not move the customer back
    resolved = Update(
        ticket=jsm_key,
        source="jsm-status:2",
        kind=STATUS,
        body="Resuelta",
        happened_at=moved + timedelta(hours=1),
        status_category="done",
    )
    assert [m.kind for m in desk.recorder.record(resolved)] == [STATUS, CSAT]
    stored = desk.store.get(ticket.key)
    assert stored is not None and stored.jsm_status == "Resuelta"


# ------------------------------------------------------------------------ polling
def test_poller_records_agents_public_comments_and_the_status_change_never_echoes(desk: Desk) -> None:
    ticket, jsm_key = desk.delivered()
    poller = desk.poller()
    assert poller.poll_once() == 0  # the status it was created with is not news
    desk.fake.agent_comment(jsm_key, "Hola Ana, ¿nos envías el archivo que falla? Tarjeta 4111 1111 1111 1111")
    desk.fake.agent_comment(jsm_key, "Nota interna: revisar el servidor SFTP", public=False)
    desk.fake.customer_comment(jsm_key, "Lo adjunto desde el portal")
    desk.fake._add_comment(jsm_key, "Respuesta del cliente por el chat (WhatsApp): ya va", True)  # ours
    desk.fake.transition(jsm_key, "Esperando por el cliente")
    assert poller.poll_once() == 2
    (comment, status) = desk.thread.messages(ticket.key)
    assert comment.kind == COMMENT and comment.author == "Laura Gómez"
    assert "4111 1111 1111 1111" not in comment.body and comment.body.startswith("Hola Ana")
    assert (status.kind, status.body, status.status_category) == (STATUS, "Esperando por el cliente", "indeterminate")
    stored = desk.store.get(ticket.key)
    assert stored is not None and stored.jsm_status == "Esperando por el cliente"
    # Internal comments are not even read: the poll asks JSM for public ones only.
    asked = desk.fake.called("GET", f"/request/{jsm_key}/comment")
    assert asked and all(c[2].get("public") == "true" and c[2].get("internal") == "false" for c in asked)
    assert poller.poll_once() == 0  # nothing new: nothing twice
    assert len(desk.fake.called("GET", "/rest/api/3/myself")) == 1  # who we are is asked once


def test_polling_keeps_to_its_budget_and_goes_around_the_requests(desk: Desk) -> None:
    tickets = [desk.delivered(conversation_id=f"whatsapp:+57300000000{n}") for n in range(3)]
    for _, jsm_key in tickets:
        desk.fake.agent_comment(jsm_key, f"Respuesta para {jsm_key}")
    poller = desk.poller(max_requests=3)
    seen = []
    for _ in range(3):
        before = len(desk.fake.calls)
        assert poller.poll_once() == 1
        assert len(desk.fake.calls) - before <= 4  # comments, its reporter, status (+ who we are, once)
        seen += [m.ticket_key for t, _ in tickets for m in desk.thread.messages(t.key)]
    assert {t.key for t, _ in tickets} <= set(seen)


def test_jsm_failing_is_logged_once_per_round_and_never_stops_polling(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    (first, first_jsm), (second, second_jsm) = desk.delivered(), desk.delivered(conversation_id="whatsapp:+57302")
    desk.fake.agent_comment(first_jsm, "Primera respuesta")
    desk.fake.agent_comment(second_jsm, "Segunda respuesta")
    comments = f"{REQUEST}/{{key}}/comment"
    desk.fake.script("GET", comments, Scripted(400, {"errorMessage": "Bad request"}))
    poller = desk.poller()
    with caplog.at_level(logging.WARNING, logger="bot.tickets.jsm_poll"):
        assert poller.poll_once() == 1  # the other request still polled
    assert len([r for r in caplog.records if "JSM polling" in r.getMessage()]) == 1
    desk.server.down()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.tickets.jsm_poll"):
        assert poller.poll_once() == 0
    assert len([r for r in caplog.records if "JSM polling" in r.getMessage()]) == 1
    desk.server.up()
    assert poller.poll_once() + poller.poll_once() == 1  # the one the error skipped, on its next turn
    assert {m.body for t in (first, second) for m in desk.thread.messages(t.key)} == {
        "Primera respuesta",
        "Segunda respuesta",
    }


def test_requests_resolved_long_ago_are_no_longer_read(desk: Desk) -> None:
    ticket, jsm_key = desk.delivered()
    long_ago = datetime.now(timezone.utc) - timedelta(days=30)
    desk.recorder.record(
        Update(
            ticket=jsm_key,
            source="jsm-status:1",
            kind=STATUS,
            body="Resuelta",
            happened_at=long_ago,
            status_category="done",
        )
    )
    desk.fake.agent_comment(jsm_key, "Un mes después")
    before = len(desk.fake.calls)
    assert desk.poller().poll_once() == 0
    assert len(desk.fake.calls) == before


# ------------------------------------------------------------------ desk delivery
def attachments_store(desk: Desk, catalog: Catalog) -> AttachmentStore:
    return AttachmentStore.from_settings(catalog, desk.settings)


def delivery(desk: Desk, catalog: Catalog, timeout: float = 5.0, **settings: float) -> DeskDelivery:
    outbox = OutboxSettings(retry_base_seconds=settings.get("base", 30.0), retry_max_seconds=3600.0)
    return DeskDelivery(
        desk.thread, desk.client(timeout=timeout), attachments_store(desk, catalog), tickets=desk.store, settings=outbox
    )


def test_customer_reply_with_its_file_becomes_a_public_comment(desk: Desk, catalog: Catalog) -> None:
    ticket, jsm_key = desk.delivered()
    files = attachments_store(desk, catalog)
    stored = files.save("error.png", "image/png", PNG, owner=ticket.conversation_id)
    foreign = files.save("ajeno.png", "image/png", PNG, owner="whatsapp:+570000000")
    desk.thread.from_customer(
        ticket_ref(ticket),
        "Aquí va la captura, tarjeta 4111111111111111",
        source="wa:SM1",
        to_jsm=True,
        attachments=[Attachment.from_dict(stored.as_metadata()), Attachment.from_dict(foreign.as_metadata())],
    )
    assert delivery(desk, catalog).run_once("w1") == 1
    (comment,) = desk.fake.comments[jsm_key]
    assert comment["public"] and comment["author"]["accountId"] == AGENT
    assert comment["body"].startswith("Respuesta del cliente por el chat (WhatsApp): Aquí va la captura")
    assert "4111111111111111" not in comment["body"]
    assert "«ajeno.png» ya no estaba disponible" in comment["body"]  # another conversation's file never goes
    (uploaded,) = desk.fake.attachments[jsm_key]
    assert (uploaded["filename"], uploaded["data"], uploaded["public"]) == ("error.png", PNG, True)
    (sent,) = desk.thread.messages(ticket.key)
    assert (sent.delivery_status, sent.via) == (DELIVERED, "jsm")
    # Our own comment, seen by the poll afterwards, is not news for the customer.
    assert desk.poller().poll_once() == 0


def test_handoff_is_an_internal_note_with_the_human_contact_label(desk: Desk, catalog: Catalog) -> None:
    ticket, jsm_key = desk.delivered()
    desk.thread.note_for_desk(
        ticket_ref(ticket),
        HANDOFF,
        "El cliente pidió hablar con una persona.\n\nTranscripción…",
        source="handoff:1",
        to_jsm=True,
    )
    desk.thread.note_for_desk(
        ticket_ref(ticket), CSAT, "Calificación: 5/5. Comentario: muy bien", source="csat:1", to_jsm=True
    )
    sender = delivery(desk, catalog)
    assert sender.run_once("w1") == 1  # in order per ticket: the CSAT note after the handoff
    assert sender.run_once("w1") == 1
    notes = desk.fake.comments[jsm_key]
    assert [c["public"] for c in notes] == [False, False]
    assert notes[0]["body"].startswith("El cliente pidió hablar con una persona.")
    assert notes[1]["body"].startswith("Calificación: 5/5")
    assert desk.fake.labels[jsm_key] == [HUMAN_CONTACT_LABEL]
    assert [m.delivery_status for m in desk.thread.messages(ticket.key)] == [DELIVERED, DELIVERED]


@pytest.mark.parametrize("status, headers", [(503, {}), (429, {"Retry-After": "120"})])
def test_jsm_unavailable_is_retried_later_with_backoff(
    desk: Desk, catalog: Catalog, status: int, headers: dict[str, str]
) -> None:
    ticket, jsm_key = desk.delivered()
    desk.thread.from_customer(ticket_ref(ticket), "ya lo envié", source="wa:SM2", to_jsm=True)
    desk.fake.script("POST", f"{REQUEST}/{{key}}/comment", Scripted(status, {"errorMessage": "Try later"}, headers))
    started = datetime.now(timezone.utc)
    assert delivery(desk, catalog).run_once("w1") == 1
    (waiting,) = desk.thread.messages(ticket.key)
    assert waiting.delivery_status == PENDING and str(status) in (waiting.last_error or "")
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at - started >= timedelta(seconds=20 if status == 503 else 119)
    assert desk.fake.comments.get(jsm_key) is None
    assert delivery(desk, catalog).run_once("w1") == 0  # not due yet
    desk.thread.requeue([waiting.id])
    assert delivery(desk, catalog).run_once("w1") == 1
    assert [m.delivery_status for m in desk.thread.messages(ticket.key)] == [DELIVERED]
    assert len(desk.fake.comments[jsm_key]) == 1


def test_when_jsm_fails_the_rest_of_the_round_waits_instead_of_timing_out_too(desk: Desk, catalog: Catalog) -> None:
    (first, _), (second, _) = desk.delivered(), desk.delivered(conversation_id="whatsapp:+57309")
    desk.thread.from_customer(ticket_ref(first), "uno", source="wa:SM6", to_jsm=True)
    desk.thread.from_customer(ticket_ref(second), "dos", source="wa:SM7", to_jsm=True)
    desk.fake.script("POST", f"{REQUEST}/{{key}}/comment", Scripted(502, {"errorMessage": "Bad gateway"}))
    assert delivery(desk, catalog).run_once("w1") == 2
    assert len(desk.fake.called("POST", "/comment")) == 1
    (tried,), (waited,) = desk.thread.messages(first.key), desk.thread.messages(second.key)
    assert tried.delivery_status == waited.delivery_status == PENDING
    assert "502" in (tried.last_error or "") and "no se intentó" in (waited.last_error or "")


def test_a_comment_jsm_refuses_is_failed_with_its_reason(desk: Desk, catalog: Catalog) -> None:
    ticket, _ = desk.delivered()
    desk.thread.from_customer(ticket_ref(ticket), "hola", source="wa:SM3", to_jsm=True)
    desk.fake.script("POST", f"{REQUEST}/{{key}}/comment", Scripted(400, {"errorMessage": "The comment is too long."}))
    delivery(desk, catalog).run_once("w1")
    (failed,) = desk.thread.messages(ticket.key)
    assert failed.delivery_status == FAILED
    assert "JSM rechazó la solicitud (400)" in (failed.last_error or "") and "too long" in (failed.last_error or "")


def test_a_lost_answer_does_not_post_the_reply_twice(desk: Desk, catalog: Catalog) -> None:
    ticket, jsm_key = desk.delivered()
    desk.thread.from_customer(ticket_ref(ticket), "¿ya lo revisaron?", source="wa:SM4", to_jsm=True)
    desk.fake.script("POST", f"{REQUEST}/{{key}}/comment", Scripted(201, after=True, delay=6.0))
    delivery(desk, catalog, timeout=1.0).run_once("w1")  # JSM posts it, the answer is lost to the timeout
    desk.thread.requeue([m.id for m in desk.thread.messages(ticket.key)])
    delivery(desk, catalog).run_once("w1")
    assert len(desk.fake.comments[jsm_key]) == 1
    assert [m.delivery_status for m in desk.thread.messages(ticket.key)] == [DELIVERED]


def test_a_reply_waits_until_its_ticket_is_in_jsm(desk: Desk, catalog: Catalog) -> None:
    ticket, _ = desk.store.create(new_ticket(conversation_id="c-nuevo"), "k-nuevo")
    desk.thread.from_customer(ticket_ref(ticket), "más datos", source="wa:SM5", to_jsm=True)
    delivery(desk, catalog).run_once("w1")
    (waiting,) = desk.thread.messages(ticket.key)
    assert waiting.delivery_status == PENDING and "aún no se entregó a JSM" in (waiting.last_error or "")


def test_followup_is_built_only_for_jsm_with_its_poll_interval(
    desk: Desk, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = attachments_store(desk, catalog)
    followup = build_jsm_followup(desk.settings, desk.store, desk.thread, files)
    assert followup is not None and followup.poller is not None and followup.poll_seconds == 120
    ticket, jsm_key = desk.delivered()
    desk.thread.from_customer(ticket_ref(ticket), "¿me ayudan?", source="wa:SM8", to_jsm=True)
    desk.fake.agent_comment(jsm_key, "hola")
    assert followup.desk.run_once("w") == 1 and followup.poller.poll_once() == 1
    assert [m.delivery_status for m in desk.thread.messages(ticket.key) if m.direction == TO_DESK] == [DELIVERED]
    monkeypatch.setenv("JSM_POLL_SECONDS", "0")
    off = build_jsm_followup(Settings.from_env(), desk.store, desk.thread, files)
    assert off is not None and off.poller is None and off.poll_seconds == 0
    monkeypatch.setenv("TICKETS_BACKEND", "local")
    assert build_jsm_followup(Settings.from_env(), desk.store, desk.thread, files) is None
    monkeypatch.setenv("JSM_POLL_SECONDS", "dos minutos")
    with pytest.raises(SystemExit, match="JSM_POLL_SECONDS"):
        Settings.from_env()


# ------------------------------------------------------------------ CLI (embedded)
def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


def test_cli_is_the_agent_side_of_the_embedded_desk(tmp_path: Path, tickets_db_url: str) -> None:
    env = {"BOT_DATA_DIR": str(tmp_path), "TICKETS_DB_URL": tickets_db_url, "TICKETS_BACKEND": "local"}
    store = TicketStore(tickets_db_url)
    ticket, _ = store.create(new_ticket(conversation_id="web:conv-1", channel="socketio"), "k1")
    replied = run_cli("tickets", "reply", ticket.key.lower(), "¿Nos envías el archivo?", "--autor", "Laura", env=env)
    assert replied.returncode == 0, replied.stderr
    assert ticket.key in replied.stdout and "cola" in replied.stdout
    waiting = run_cli("tickets", "status", ticket.key, "Esperando por el cliente", env=env)
    assert waiting.returncode == 0, waiting.stderr
    resolved = run_cli("tickets", "status", ticket.key, "Cerrada", env=env)  # a known resolved name
    assert resolved.returncode == 0 and "encuesta" in resolved.stdout
    again = run_cli("tickets", "status", ticket.key, "Cerrada", env=env)
    assert again.returncode == 0 and "nada nuevo" in again.stdout
    stored = store.get(ticket.key)
    assert stored is not None and stored.status == "Cerrada" and stored.status_label == "Cerrada"
    thread = TicketThread(tickets_db_url).messages(ticket.key)
    assert [(m.kind, m.body, m.author, m.status_category) for m in thread] == [
        (COMMENT, "¿Nos envías el archivo?", "Laura", None),
        (STATUS, "Esperando por el cliente", None, "indeterminate"),
        (STATUS, "Cerrada", None, "done"),
        (CSAT, thread[-1].title, None, None),
    ]
    assert all(m.source.startswith(("local:", "status#", "csat:")) for m in thread)
    TicketThread(tickets_db_url).from_customer(ticket_ref(ticket), "ya lo mandé", source="web:1")
    shown = run_cli("tickets", "thread", ticket.key, "--json", env=env)
    rows = json.loads(shown.stdout)
    assert [(r["direction"], r["kind"], r["delivery_status"]) for r in rows][-1] == (TO_DESK, COMMENT, LOCAL)
    assert rows[0]["delivery_label"] == "pendiente" and rows[0]["created_at"].startswith("20")
    text = run_cli("tickets", "thread", ticket.key, env=env)
    assert "Laura: ¿Nos envías el archivo?" in text.stdout and "solo local" in text.stdout


def test_cli_explains_unknown_keys_and_refuses_when_jsm_is_the_desk(tmp_path: Path, tickets_db_url: str) -> None:
    env = {"BOT_DATA_DIR": str(tmp_path), "TICKETS_DB_URL": tickets_db_url, "TICKETS_BACKEND": "local"}
    for args in (("reply", "ECO-999999", "hola"), ("status", "ECO-999999", "Resuelta"), ("thread", "ECO-999999")):
        unknown = run_cli("tickets", *args, env=env)
        assert unknown.returncode == 1 and "No existe el ticket ECO-999999" in unknown.stderr
    ticket, _ = TicketStore(tickets_db_url).create(new_ticket(), "k1")
    jsm = run_cli("tickets", "reply", ticket.key, "hola", env={**env, "TICKETS_BACKEND": "jsm"})
    assert jsm.returncode == 2 and "responden" in jsm.stderr and "JSM" in jsm.stderr
    assert TicketThread(tickets_db_url).messages(ticket.key) == []
