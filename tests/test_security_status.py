"""Ticket data goes only to its owner (issue 10): status questions from other conversations.

A real ticket store (SQLite) and a real SMTP server on 127.0.0.1 (aiosmtpd,
tests/smtp_server.py); JSM is the local fake.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from functools import lru_cache
from typing import Iterator, Optional
from zoneinfo import ZoneInfo

import pytest
import yaml

from actions import actions as act
from actions.adapters import LiveJsm, Postbox, TicketDesk
from bot.catalog import Catalog
from bot.dialogue import status as dialogue
from bot.dialogue.turn import Say, Turn
from bot.mail import Limit, Mail, MailError, Postman, Quota
from bot.settings.mail import MailConfigError, MailSettings
from bot.privacy import mask_email
from bot.settings import PROJECT_ROOT
from bot.tickets import TicketStore
from bot.tickets.jsm_client import JsmClient
from bot.tickets.model import Ticket
from tests.conftest import free_port
from tests.fake_jsm import FakeJsmServer, Scripted, jsm_env, jsm_server, tickets_db_url  # noqa: F401 (fixtures)
from tests.smtp_server import PASSWORD, SENDER, USER, SmtpServer, smtp_server, smtp_tls_server  # noqa: F401 (fixtures)
from tests.test_actions import files, responses, run, services, tickets, tracker  # noqa: F401 (fixtures)
from tests.test_jsm import client, delivered_ticket
from tests.test_tickets import new_ticket

VICTIM = "victima@empresa.co"
VICTIM_ID, VICTIM_CHANNEL = "whatsapp:+573001112233", "whatsapp"
ATTACKER_ID, ATTACKER_CHANNEL = "web:sesion-del-atacante", "socketio"
MAILED = "Por seguridad solo muestro aquí las solicitudes creadas en esta conversación. Si {key} existe, envié su estado al correo con el que se creó."
PRIVATE = (
    "Por seguridad solo muestro aquí las solicitudes creadas en esta conversación. "
    "Si {key} es tuya, consúltala desde la conversación en la que la creaste o con la mesa de ayuda."
)


@lru_cache(maxsize=1)
def texts() -> dict[str, str]:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return {name: variants[0].get("text", "") for name, variants in domain["responses"].items()}


def shown(says: list[Say]) -> str:
    """What the customer reads: the domain's texts with the values filled in."""
    return "\n".join(texts()[s.response].format(**s.kwargs) for s in says)


def status(
    turn: Turn,
    slots: dict,
    catalog: Catalog,
    store: TicketStore,
    live: Optional[JsmClient] = None,
    postman: Optional[Postman] = None,
) -> list[Say]:
    """The dialogue's status answer, with the store, JSM and the mail threads handed in as the action server does."""
    return dialogue.status(
        turn,
        slots,
        catalog,
        TicketDesk(store),
        live=LiveJsm(live) if live is not None else None,
        postman=Postbox(postman) if postman is not None else None,
    )


def attacker(text: str) -> Turn:
    return Turn(text=text, sender_id=ATTACKER_ID, channel=ATTACKER_CHANNEL)


def victim_ticket(store: TicketStore, **overrides: str) -> Ticket:
    values = {**dict(conversation_id=VICTIM_ID, channel=VICTIM_CHANNEL, email=VICTIM, phone="+573001112233"), **overrides}
    ticket, _ = store.create(new_ticket(**values), f"k-{len(store.list())}")
    return ticket


@pytest.fixture
def postman(smtp_server: SmtpServer) -> Iterator[Postman]:
    sender = Postman(smtp_server.settings())
    yield sender
    sender.close()


def mails_after(postman: Postman, server: SmtpServer) -> list:
    """Every mail the jobs posted so far delivered (they are all done when this returns)."""
    assert postman.join(timeout=20)
    return list(server.received)


# ------------------------------------------------------------------ the chat answer
def test_another_conversation_gets_one_answer_whether_the_key_exists_or_not(
    catalog: Catalog, store: TicketStore, postman: Postman, smtp_server: SmtpServer
) -> None:
    ticket = victim_ticket(store)
    existing = status(attacker(f"¿cómo va la solicitud {ticket.key}?"), {}, catalog, store, live=None, postman=postman)
    missing = status(attacker("¿cómo va la solicitud ECO-000777?"), {}, catalog, store, live=None, postman=postman)

    assert [s.response for s in existing] == [s.response for s in missing] == ["utter_ticket_status_mailed"]
    said = shown(existing)
    assert said == MAILED.format(key=ticket.key)
    assert said.replace(ticket.key, "ECO-?") == shown(missing).replace("ECO-000777", "ECO-?")
    for secret in (ticket.status_label, ticket.request_type, VICTIM, "Última actualización"):
        assert secret not in said

    (mail,) = mails_after(postman, smtp_server)  # none for the key that does not exist
    assert mail.rcpt_tos == [VICTIM] and mail.mail_from == SENDER
    assert mail.subject == f"Estado de tu solicitud {ticket.key} · Soporte ecollect"
    local = ticket.updated_at.astimezone(ZoneInfo("America/Bogota")).strftime("%d/%m/%Y %H:%M")
    assert f"Tipo de solicitud: {ticket.request_type}" in mail.text
    assert f"Estado: {ticket.status_label}" in mail.text
    assert f"Última actualización: {local} (hora de Colombia)" in mail.text
    for private in (ticket.description, ticket.original_text, ticket.phone):
        assert private not in mail.text


def test_an_email_typed_in_the_chat_is_not_proof_of_identity(
    catalog: Catalog, store: TicketStore, postman: Postman, smtp_server: SmtpServer
) -> None:
    ticket = victim_ticket(store)
    mine, _ = store.create(new_ticket(conversation_id=ATTACKER_ID, channel=ATTACKER_CHANNEL, email="yo@otra.co"), "k-mine")

    listed = status(attacker(f"¿cómo van mis solicitudes? {VICTIM}"), {"email": VICTIM}, catalog, store, live=None, postman=postman)
    assert [s.response for s in listed] == ["utter_ticket_status", "utter_ticket_list_mailed"]
    assert listed[0].kwargs["key"] == mine.key  # only this conversation's tickets are shown
    assert ticket.key not in shown(listed)
    with_key = status(attacker(f"estado de {ticket.key}, soy {VICTIM}"), {"email": VICTIM}, catalog, store, live=None, postman=postman)
    assert shown(with_key) == MAILED.format(key=ticket.key)

    mails = {m.subject: m for m in mails_after(postman, smtp_server)}
    assert set(mails) == {"Tus solicitudes · Soporte ecollect", f"Estado de tu solicitud {ticket.key} · Soporte ecollect"}
    assert all(m.rcpt_tos == [VICTIM] for m in mails.values())
    listing = mails["Tus solicitudes · Soporte ecollect"].text
    assert f"- {ticket.key} · {ticket.request_type} · {ticket.status_label}" in listing
    for other in (mine.key, ticket.description, ticket.phone, "yo@otra.co"):
        assert other not in listing


def test_a_list_for_an_address_without_tickets_mails_nobody(
    catalog: Catalog, store: TicketStore, postman: Postman, smtp_server: SmtpServer
) -> None:
    victim_ticket(store)
    says = status(attacker("mis solicitudes, soy cualquiera@empresa.co"), {}, catalog, store, live=None, postman=postman)
    assert [s.response for s in says] == ["utter_ticket_list_mailed"]
    assert mails_after(postman, smtp_server) == []  # the chat is no mail relay to arbitrary addresses


def test_only_the_conversation_that_created_a_ticket_sees_it_in_the_chat(
    catalog: Catalog, store: TicketStore, postman: Postman, smtp_server: SmtpServer
) -> None:
    ticket = victim_ticket(store)
    owner = Turn(text=f"¿cómo va {ticket.key}?", sender_id=VICTIM_ID, channel=VICTIM_CHANNEL)
    (own,) = status(owner, {}, catalog, store, live=None, postman=postman)
    assert own.response == "utter_ticket_status" and own.kwargs["status"] == ticket.status_label
    listed = status(Turn(text="¿cómo van mis solicitudes?", sender_id=VICTIM_ID, channel=VICTIM_CHANNEL), {}, catalog, store, live=None, postman=postman)
    assert [s.kwargs["key"] for s in listed] == [ticket.key]

    # The same id from another channel, or from no known channel, is not the owner.
    for channel in ("rest", ""):
        says = status(Turn(text=owner.text, sender_id=VICTIM_ID, channel=channel), {}, catalog, store, live=None, postman=postman)
        assert shown(says) == MAILED.format(key=ticket.key)
    # An empty conversation id never lists anyone's tickets.
    (ask,) = status(Turn(text="¿cómo van mis solicitudes?", sender_id="", channel="rest"), {}, catalog, store, live=None, postman=postman)
    assert ask.response == "utter_ask_ticket_key"
    assert len(mails_after(postman, smtp_server)) == 1  # the owner's own questions mail nothing


def test_with_mail_off_the_answer_is_neutral_and_the_same_for_every_key(catalog: Catalog, store: TicketStore) -> None:
    ticket = victim_ticket(store)
    existing = status(attacker(f"¿cómo va {ticket.key}?"), {}, catalog, store, live=None, postman=None)
    missing = status(attacker("¿cómo va ECO-000777?"), {}, catalog, store, live=None, postman=None)
    assert [s.response for s in existing] == [s.response for s in missing] == ["utter_ticket_status_private"]
    assert shown(existing) == PRIVATE.format(key=ticket.key)
    assert shown(missing) == PRIVATE.format(key="ECO-000777")
    listed = status(attacker(f"mis solicitudes, soy {VICTIM}"), {}, catalog, store, live=None, postman=None)
    assert [s.response for s in listed] == ["utter_ticket_list_private"] and VICTIM not in shown(listed)


def test_the_mail_tells_the_time_in_the_tickets_country(
    catalog: Catalog, store: TicketStore, postman: Postman, smtp_server: SmtpServer
) -> None:
    ticket = victim_ticket(store, phone="+525512345678")
    status(attacker(f"estado {ticket.key}"), {"country": "CO"}, catalog, store, live=None, postman=postman)
    (mail,) = mails_after(postman, smtp_server)
    local = ticket.updated_at.astimezone(ZoneInfo("America/Mexico_City")).strftime("%d/%m/%Y %H:%M")
    assert f"Última actualización: {local} (hora de México)" in mail.text


# ------------------------------------------------------------------ mail bombing
def test_status_mails_are_limited_per_ticket_and_per_address(
    catalog: Catalog, store: TicketStore, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.mail")
    now = [1000.0]
    # One asking chat here: its own cap (bot.mail.Postman.per_requester) is tested apart.
    postman = Postman(smtp_server.settings(), Quota(clock=lambda: now[0]), per_requester=Limit(100, 3600))
    try:
        ticket = victim_ticket(store)
        ask = lambda key: shown(status(attacker(f"estado {key}"), {}, catalog, store, live=None, postman=postman))  # noqa: E731
        answers = {ask(ticket.key) for _ in range(4)}
        assert answers == {MAILED.format(key=ticket.key)}  # a throttled request reads the same
        assert len(mails_after(postman, smtp_server)) == 1
        assert f"mail to {mask_email(VICTIM)} about {ticket.key} not sent: quota reached" in caplog.text

        now[0] += 601  # ten minutes later, one more
        ask(ticket.key)
        assert len(mails_after(postman, smtp_server)) == 2

        # Other tickets of the same address: five mails an hour in all.
        for other in [victim_ticket(store) for _ in range(4)]:
            ask(other.key)
        status(attacker(f"mis solicitudes {VICTIM}"), {}, catalog, store, live=None, postman=postman)
        assert len(mails_after(postman, smtp_server)) == 5
        assert VICTIM not in caplog.text
    finally:
        postman.close()


# ------------------------------------------------------------------ SMTP trouble
def test_smtp_down_keeps_the_neutral_answer_and_logs_the_masked_address(
    catalog: Catalog, store: TicketStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.mail")
    postman = Postman(MailSettings(host="127.0.0.1", port=free_port(), sender=SENDER, starttls=False, timeout=2))
    try:
        ticket = victim_ticket(store)
        says = status(attacker(f"¿cómo va {ticket.key}?"), {}, catalog, store, live=None, postman=postman)
        assert shown(says) == MAILED.format(key=ticket.key)
        assert postman.join(timeout=20)
    finally:
        postman.close()
    assert f"mail to {mask_email(VICTIM)} about {ticket.key} not sent: ConnectionRefusedError" in caplog.text
    assert VICTIM not in caplog.text


def test_the_action_answers_a_stranger_even_with_the_smtp_server_down(
    tickets: TicketStore, services: act.Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.mail")
    victim_ticket(tickets)
    postman = Postman(MailSettings(host="127.0.0.1", port=free_port(), sender=SENDER, starttls=False, timeout=2))
    action = act.ActionCheckStatus(dataclasses.replace(services, postman=Postbox(postman)))
    try:
        events, messages = run(action, tracker("¿cómo va ECO-000001?", "check_status", sender="c-extraño"))
        assert responses(messages) == ["utter_ticket_status_mailed"] and messages[0]["key"] == "ECO-000001"
        assert events == []
        assert postman.join(timeout=20)
    finally:
        postman.close()
    assert f"mail to {mask_email(VICTIM)} about ECO-000001 not sent" in caplog.text


def test_starttls_and_login_by_default(
    catalog: Catalog, store: TicketStore, smtp_tls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_tls_server.port), "SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD, "SMTP_FROM": SENDER}
    settings = MailSettings.from_env(env)
    assert settings is not None and settings.starttls and not settings.ssl
    postman = Postman(settings)
    try:
        ticket = victim_ticket(store)
        status(attacker(f"estado {ticket.key}"), {}, catalog, store, live=None, postman=postman)
        (mail,) = mails_after(postman, smtp_tls_server)
    finally:
        postman.close()
    assert mail.tls and mail.authenticated_as == USER and mail.rcpt_tos == [VICTIM]


def test_a_server_without_starttls_gets_no_mail_in_clear_text(
    catalog: Catalog, store: TicketStore, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.mail")
    postman = Postman(smtp_server.settings(starttls=True))
    try:
        ticket = victim_ticket(store)
        status(attacker(f"estado {ticket.key}"), {}, catalog, store, live=None, postman=postman)
        assert mails_after(postman, smtp_server) == []
    finally:
        postman.close()
    assert "SMTPNotSupportedError" in caplog.text


def test_mail_settings_from_the_environment() -> None:
    assert MailSettings.from_env({}) is None and MailSettings.from_env({"SMTP_HOST": " "}) is None
    settings = MailSettings.from_env({"SMTP_HOST": "smtp.ejemplo.co", "SMTP_USER": "bot@ejemplo.co", "SMTP_PASSWORD": "x"})
    assert settings == MailSettings(host="smtp.ejemplo.co", sender="bot@ejemplo.co", port=587, user="bot@ejemplo.co", password="x")
    implicit = MailSettings.from_env({"SMTP_HOST": "smtp.ejemplo.co", "SMTP_FROM": "a@ejemplo.co", "SMTP_SSL": "true", "SMTP_PORT": "465"})
    assert implicit is not None and implicit.ssl and not implicit.starttls and implicit.port == 465
    for broken, variable in (({"SMTP_PORT": "veinticinco"}, "SMTP_PORT"), ({"SMTP_FROM": ""}, "SMTP_FROM"),
                             ({"SMTP_STARTTLS": "quizás"}, "SMTP_STARTTLS"), ({"SMTP_FROM": "a@b.co\r\nBcc: c@d.co"}, "SMTP_FROM")):
        with pytest.raises(MailConfigError, match=variable):
            MailSettings.from_env({"SMTP_HOST": "smtp.ejemplo.co", "SMTP_USER": "usuario", "SMTP_FROM": "a@b.co", **broken})


def test_a_recipient_cannot_smuggle_headers_or_more_addresses() -> None:
    for hostile in ("a@b.co\r\nBcc: c@d.co", "a@b.co, c@d.co", "<a@b.co>", "a@@b.co", "sin-arroba"):
        with pytest.raises(MailError):
            Mail(to=hostile, subject="x", text="x")


# ------------------------------------------------------------------ no unlocking by e-mail
def test_an_email_after_a_status_question_unlocks_nothing(tickets: TicketStore, services: act.Services) -> None:
    assert services.postman is None  # mail off
    ticket = victim_ticket(tickets)
    _, asked = run(act.ActionCheckStatus(services), tracker(f"¿cómo va {ticket.key}?", "check_status", sender="c-extraño"))
    assert responses(asked) == ["utter_ticket_status_private"]
    # Old conversations may still carry the slot the e-mail proof used.
    events, messages = run(
        act.ActionContactOutsideForm(services), tracker(VICTIM, "inform", slots={"status_key": ticket.key}, sender="c-extraño")
    )
    assert "utter_ticket_status" not in responses(messages) and responses(messages)[0] == "utter_contact_noted"
    assert all(ticket.status_label not in str(m) for m in messages)


# ------------------------------------------------------------------ JSM stays off the chat's path
def test_the_jsm_lookup_for_someone_elses_ticket_happens_in_the_mail_job(
    jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, store: TicketStore, postman: Postman, smtp_server: SmtpServer
) -> None:
    ticket, jsm_key = delivered_ticket(store, jsm_server, conversation_id=VICTIM_ID, channel=VICTIM_CHANNEL, email=VICTIM)
    jsm_server.fake.set_status(jsm_key, "En curso", datetime(2024, 5, 3, 15, 42, tzinfo=ZoneInfo("UTC")))
    jsm_server.fake.script("GET", "/rest/servicedeskapi/request/{key}", Scripted(after=True, delay=6.0))

    started = time.monotonic()
    existing = status(attacker(f"estado de {ticket.key}"), {}, catalog, store, live=client(timeout=10), postman=postman)
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"the chat waited {elapsed:.2f} s: JSM was called on its path"
    missing = status(attacker("estado de ECO-000777"), {}, catalog, store, live=client(timeout=5), postman=postman)
    assert shown(existing).replace(ticket.key, "ECO-?") == shown(missing).replace("ECO-000777", "ECO-?")

    (mail,) = mails_after(postman, smtp_server)
    assert "Estado: En curso" in mail.text and f"Registrada en la mesa de ayuda como: {jsm_key}" in mail.text
    assert "Última actualización: 03/05/2024 10:42 (hora de Colombia)" in mail.text
