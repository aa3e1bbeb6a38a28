"""The follow-up worker's customer delivery: the real thread in SQLite, fake Twilio, fake Rasa API.

Each help-desk message reaches the customer once and in order per ticket,
even with two workers claiming from the same database; it is then recorded
in the Rasa conversation (so the next message is read as an answer), and
only then marked. Failures are retried or recorded with their reason.

The Rasa API here is a local stand-in built from Rasa's own event schema and
tracker (tests/fake_rasa_api.py); appending to a real Rasa server is left
to the tests of the whole assistant.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.channels.addresses import AddressBook
from bot.channels.rasa_conversation import ConversationError, RasaConversations
from bot.dialogue.notices import REPLY_FORM, render, tracker_events
from bot.followup.customer_delivery import CustomerDelivery
from bot.followup.senders import customer_delivery
from bot.settings import Settings
from bot.settings.followup import FollowupSettings
from bot.thread import ThreadMessage, TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, DELIVERED, FAILED, PENDING, STATUS
from tests.conftest import free_port
from tests.fake_jsm import tickets_db_url  # noqa: F401 (fixture)
from tests.fake_rasa_api import FakeRasaApi, reset, start_fake_rasa_api
from tests.fake_twilio import FakeTwilio, start_fake_twilio
from tests.test_push import TEMPLATE_SID, hours_ago, message, whatsapp_push
from tests.test_whatsapp import CUSTOMER

WAITING = ("Esperando por el cliente",)
OTHER_CUSTOMER = "whatsapp:+5215512345678"


def ref(key: str = "ECO-000123", conversation_id: str = CUSTOMER, channel: str = "whatsapp") -> TicketRef:
    return TicketRef(key, conversation_id, channel, "gestion_archivos", "Falla en cargue archivos de cartera")


def comment(thread: TicketThread, ticket: TicketRef, number: int, body: str) -> ThreadMessage:
    [recorded] = thread.record(Update(ticket.key, f"jsm-comment:{number}", COMMENT, body, author="Laura"), ticket)
    return recorded


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[FakeTwilio]:
    fake, stop = start_fake_twilio()
    try:
        yield fake
    finally:
        stop()


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.reset()
    twilio_server.enforce_window = True
    return twilio_server


@pytest.fixture(scope="module")
def rasa_server() -> Iterator[FakeRasaApi]:
    fake, stop = start_fake_rasa_api()
    try:
        yield fake
    finally:
        stop()


@pytest.fixture
def rasa_api(rasa_server: FakeRasaApi) -> FakeRasaApi:
    return reset(rasa_server)


@pytest.fixture
def url(tickets_db_url: str) -> str:  # noqa: F811 - the fixture imported above
    """SQLite, or a fresh PostgreSQL database when TEST_POSTGRES_URL is set (claiming differs per backend)."""
    return tickets_db_url


@pytest.fixture
def thread(url: str) -> TicketThread:
    return TicketThread(url)


@pytest.fixture
def book(url: str, twilio: FakeTwilio) -> AddressBook:
    addresses = AddressBook(url)
    for customer in (CUSTOMER, OTHER_CUSTOMER):  # both wrote an hour ago: WhatsApp takes text
        addresses.seen(customer, "whatsapp", at=hours_ago(1))
        twilio.customer_wrote(customer)
    return addresses


def worker(
    thread: TicketThread,
    twilio: FakeTwilio,
    book: AddressBook,
    rasa_api: FakeRasaApi,
    content_sid: str = "",
    **settings: Any,
) -> CustomerDelivery:
    """A worker for WhatsApp; without a template unless ``content_sid`` is given."""
    pace = FollowupSettings(**{"retry_base_seconds": 0.0, **settings})
    conversations = RasaConversations(rasa_api.url, rasa_api.token)
    senders = {"whatsapp": whatsapp_push(twilio, book, content_sid)}
    return CustomerDelivery(thread, senders, conversations, WAITING, settings=pace)


def rounds(thread: TicketThread, *workers: CustomerDelivery, limit: int = 30, close: bool = True) -> None:
    """Each worker on its own thread, claiming round after round until nothing waits (or ``limit`` rounds)."""

    def waiting() -> bool:
        return bool([m for m in thread.undelivered() if m.delivery_status != FAILED])

    def work(number: int, delivery: CustomerDelivery) -> None:
        for _ in range(limit):
            delivery.run_once(f"worker-{number}")
            if not waiting():
                return

    threads = [threading.Thread(target=work, args=(n, w)) for n, w in enumerate(workers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        if close:
            for w in workers:
                w.close()


def bot_texts(rasa_api: FakeRasaApi, conversation_id: str) -> list[str]:
    return [e["text"] for e in rasa_api.events_of(conversation_id) if e["event"] == "bot"]


# ------------------------------------------------------------------ in order
def test_two_comments_reach_the_customer_once_and_in_order_with_two_workers_racing(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    first = comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    second = comment(thread, ref(), 2, "Gracias, ya lo estamos revisando.")
    other = comment(thread, ref("ECO-000124", OTHER_CUSTOMER), 3, "¿Desde qué fecha pasa?")

    rounds(thread, worker(thread, twilio, book, rasa_api), worker(thread, twilio, book, rasa_api))

    to_customer = [m["body"] for m in twilio.accepted() if m["to"] == CUSTOMER]
    assert to_customer == [render(first).text, render(second).text]
    assert [m["body"] for m in twilio.accepted() if m["to"] == OTHER_CUSTOMER] == [render(other).text]
    stored = thread.messages("ECO-000123")
    assert [(m.delivery_status, m.via, m.attempts) for m in stored] == [(DELIVERED, "text", 1)] * 2
    assert bot_texts(rasa_api, CUSTOMER) == to_customer  # the conversation shows them once, in order


def test_a_delivered_comment_opens_the_reply_loop_in_the_conversation(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    sent = comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    rounds(thread, worker(thread, twilio, book, rasa_api))

    [(conversation, events)] = rasa_api.appended()
    assert conversation == CUSTOMER
    assert events == tracker_events(sent, render(sent, WAITING), None, WAITING)
    tracker = rasa_api.trackers[CUSTOMER]
    assert tracker.active_loop is not None and tracker.active_loop.name == REPLY_FORM
    assert events[0]["metadata"]["followup"] == {"ticket": "ECO-000123", "kind": COMMENT, "message_id": sent.id}


def test_a_form_in_progress_keeps_its_loop(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    conversations = RasaConversations(rasa_api.url, rasa_api.token)

    async def start_form() -> None:
        await conversations.append(CUSTOMER, [{"event": "active_loop", "name": "ticket_form"}])
        await conversations.close()

    asyncio.run(start_form())
    comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    rounds(thread, worker(thread, twilio, book, rasa_api))

    events = rasa_api.appended()[-1][1]
    assert not [e for e in events if e["event"] == "active_loop"]
    assert rasa_api.trackers[CUSTOMER].active_loop.name == "ticket_form"


# ------------------------------------------------------------------ failures
def test_the_rest_channel_cannot_be_pushed_to_and_says_so(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    comment(thread, ref(conversation_id="integracion-erp-1", channel="rest"), 1, "¿Nos envías el archivo?")
    rounds(thread, worker(thread, twilio, book, rasa_api))

    [stored] = thread.messages("ECO-000123")
    assert stored.delivery_status == FAILED
    assert stored.last_error is not None and "REST" in stored.last_error and "no permite" in stored.last_error
    assert twilio.messages == [] and rasa_api.requests == []


def test_web_messages_are_left_to_the_web_relay(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    comment(thread, ref(conversation_id="web:sesion-1", channel="socketio"), 1, "Hola")
    delivery = worker(thread, twilio, book, rasa_api)
    assert delivery.run_once("worker-0") == 0
    delivery.close()
    [stored] = thread.messages("ECO-000123")
    assert (stored.delivery_status, stored.attempts) == (PENDING, 0)
    with pytest.raises(ValueError):
        CustomerDelivery(thread, {"socketio": whatsapp_push(twilio, book)}, RasaConversations("", ""), WAITING)


def test_outside_the_window_without_a_template_the_message_fails_with_the_reason(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(40))
    comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    rounds(thread, worker(thread, twilio, book, rasa_api))

    [stored] = thread.messages("ECO-000123")
    assert stored.delivery_status == FAILED and "WHATSAPP_NOTIFY_CONTENT_SID" in (stored.last_error or "")
    assert twilio.messages == [] and rasa_api.appended() == []


def test_outside_the_window_the_template_is_recorded_as_such(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(40))
    status = thread.record(Update("ECO-000123", "jsm-status:1", STATUS, "Esperando por el cliente"), ref())[0]
    rounds(thread, worker(thread, twilio, book, rasa_api, content_sid=TEMPLATE_SID))

    [stored] = thread.messages("ECO-000123")
    assert (stored.delivery_status, stored.via) == (DELIVERED, "template")
    assert twilio.templates() == [(TEMPLATE_SID, render(status, WAITING).template_variables)]
    assert rasa_api.trackers[CUSTOMER].active_loop.name == REPLY_FORM


def test_a_temporary_failure_is_retried_and_then_delivered_once(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    twilio.script = [(503, {}, {"code": 20500, "message": "Service Unavailable", "status": 503})] * 3
    delivery = worker(thread, twilio, book, rasa_api, retry_base_seconds=3600.0)

    assert delivery.run_once("worker-0") == 1
    [waiting] = thread.messages("ECO-000123")
    assert (waiting.delivery_status, waiting.attempts) == (PENDING, 1)
    assert "503" in (waiting.last_error or "") and waiting.next_attempt_at is not None
    assert delivery.run_once("worker-0") == 0  # not due before its backoff
    assert thread.requeue([waiting.id]) == 1  # (what the backoff's end does)

    rounds(thread, delivery)
    [stored] = thread.messages("ECO-000123")
    assert (stored.delivery_status, stored.attempts) == (DELIVERED, 2)
    assert len(twilio.accepted()) == 1 and len(rasa_api.appended()) == 1


def test_temporary_failures_end_as_failed_after_the_last_attempt(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    twilio.script = [(503, {}, {"code": 20500, "message": "Service Unavailable", "status": 503})] * 6
    rounds(thread, worker(thread, twilio, book, rasa_api, max_attempts=2))

    [stored] = thread.messages("ECO-000123")
    assert (stored.delivery_status, stored.attempts) == (FAILED, 2)
    assert "sin éxito tras 2 intentos" in (stored.last_error or "")


def test_rasa_down_never_makes_the_customer_get_the_message_twice(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi
) -> None:
    """While Rasa is down or failing, the message waits unsent: its answer could not be read in the conversation."""
    sent = comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    nowhere = RasaConversations(f"http://127.0.0.1:{free_port()}", "token")
    down = CustomerDelivery(thread, {"whatsapp": whatsapp_push(twilio, book, "")}, nowhere, WAITING)
    assert down.run_once("worker-0") == 1
    down.close()
    [waiting] = thread.messages("ECO-000123")
    assert (waiting.delivery_status, waiting.attempts) == (PENDING, 1)
    assert "Rasa" in (waiting.last_error or "") and twilio.messages == []

    assert thread.requeue([waiting.id]) == 1  # (what the backoff's end does)
    rasa_api.fail_next = [500]  # up, but failing on its side (its tracker store, say)
    failing = worker(thread, twilio, book, rasa_api, retry_base_seconds=3600.0)
    assert failing.run_once("worker-0") == 1
    failing.close()
    [waiting] = thread.messages("ECO-000123")
    assert (waiting.delivery_status, waiting.attempts) == (PENDING, 2) and twilio.messages == []

    assert thread.requeue([waiting.id]) == 1
    rounds(thread, worker(thread, twilio, book, rasa_api))
    [stored] = thread.messages("ECO-000123")
    assert (stored.delivery_status, stored.attempts) == (DELIVERED, 3)
    assert [m["body"] for m in twilio.accepted()] == [render(sent, WAITING).text]
    assert bot_texts(rasa_api, CUSTOMER) == [render(sent, WAITING).text]  # and the conversation shows it


def test_a_conversation_rasa_will_not_keep_still_gets_the_message_once(
    thread: TicketThread, twilio: FakeTwilio, book: AddressBook, rasa_api: FakeRasaApi, caplog: pytest.LogCaptureFixture
) -> None:
    comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    refusing = RasaConversations(rasa_api.url, "otro-token")  # Rasa answers 401: waiting would not change it
    delivery = CustomerDelivery(thread, {"whatsapp": whatsapp_push(twilio, book, "")}, refusing, WAITING)

    with caplog.at_level(logging.ERROR, logger="bot.followup.customer_delivery"):
        rounds(thread, delivery, close=False)
        assert delivery.run_once("worker-0") == 0
        delivery.close()
    [stored] = thread.messages("ECO-000123")
    assert stored.delivery_status == DELIVERED
    assert len(twilio.accepted()) == 1
    assert any("not recorded in the conversation" in r.getMessage() for r in caplog.records)


def test_a_worker_without_the_channels_secrets_keeps_the_messages_with_the_reason(
    thread: TicketThread, twilio: FakeTwilio, tmp_path: Path, url: str
) -> None:
    settings = Settings.from_env({"BOT_DATA_DIR": str(tmp_path), "TICKETS_DB_URL": url, "RASA_PORT": str(free_port())})
    comment(thread, ref(), 1, "¿Nos envías el archivo que falla?")
    comment(thread, ref("ECO-000125", "teams:29:user-1", "teams"), 2, "¿Nos envías el archivo?")
    delivery = customer_delivery(settings, WAITING)
    try:
        assert delivery.run_once("worker-0") == 2
    finally:
        delivery.close()
    whatsapp, teams = thread.messages("ECO-000123")[0], thread.messages("ECO-000125")[0]
    assert whatsapp.delivery_status == PENDING and "TWILIO_ACCOUNT_SID" in (whatsapp.last_error or "")
    assert teams.delivery_status == PENDING and "TEAMS_APP_ID" in (teams.last_error or "")
    assert twilio.messages == []


# --------------------------------------------------------- the Rasa client
def test_the_rasa_client_needs_the_right_token(rasa_api: FakeRasaApi) -> None:
    wrong = RasaConversations(rasa_api.url, "otro-token")

    async def call() -> None:
        try:
            await wrong.active_loop(CUSTOMER)
        finally:
            await wrong.close()

    with pytest.raises(ConversationError, match="401"):
        asyncio.run(call())
    assert "otro-token" not in str(rasa_api.trackers)  # nothing was created for it
    assert rasa_api.trackers == {}


def test_conversation_ids_travel_unchanged_or_not_at_all(rasa_api: FakeRasaApi) -> None:
    client = RasaConversations(rasa_api.url, rasa_api.token)
    sent = message()

    async def calls() -> None:
        try:
            await client.append(CUSTOMER, tracker_events(sent, render(sent), None))
            assert await client.active_loop(CUSTOMER) == REPLY_FORM
            with pytest.raises(ConversationError):
                await client.append("web:a/../b?token=x", [{"event": "bot", "text": "hola"}])
        finally:
            await client.close()

    asyncio.run(calls())
    assert list(rasa_api.trackers) == [CUSTOMER]  # "whatsapp:+57…" exactly, as Rasa keys it
    assert [path for _, path, _ in rasa_api.requests if "/b" in path] == []


def test_an_event_rasa_would_refuse_is_an_error(rasa_api: FakeRasaApi) -> None:
    client = RasaConversations(rasa_api.url, rasa_api.token)

    async def call() -> None:
        try:
            await client.append(CUSTOMER, [{"event": "slot", "value": "sin nombre"}])
        finally:
            await client.close()

    with pytest.raises(ConversationError, match="400"):
        asyncio.run(call())
