"""The help desk's news pushed to WhatsApp and Teams outside a Rasa turn, against local fakes of Twilio and Microsoft.

The fakes behave as the services document: Twilio accepts free text outside
WhatsApp's 24-hour window and then fails the message with 63016, checks
``ContentSid``/``ContentVariables`` like Twilio; the Bot Connector wants the
bot's token and a conversation the bot is in. The address book is a real
SQLite database written by the real channels' webhooks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional, TypeVar

import pytest
import yaml

from bot.attachments import AttachmentStore
from bot.catalog import Catalog
from bot.channels.addresses import Address, AddressBook
from bot.channels.common import CREDENTIALS_FILE
from bot.channels.http import LoopSession
from bot.channels.push import PushFailed
from bot.channels.teams import BotConnector, ConversationReference, TeamsConfig, TeamsInput
from bot.channels.teams.push import NO_REFERENCE, TeamsPush
from bot.channels.whatsapp import WhatsAppConfig, WhatsAppInput
from bot.channels.whatsapp.push import NO_TEMPLATE, WhatsAppPush
from bot.dialogue.notices import Notice, render
from bot.settings import SettingError, Settings
from bot.settings.followup import TEAMS_VARIABLES, WHATSAPP_VARIABLES, FollowupSettings
from bot.thread import ThreadMessage
from bot.thread.model import COMMENT, CSAT, TO_CUSTOMER
from tests.fake_jsm import tickets_db_url  # noqa: F401 (fixture)
from tests.fake_twilio import SID, TOKEN, FakeTwilio, start_fake_twilio
from tests.test_teams import (
    TENANT,
    FakeMicrosoft,
    SigningKey,
    activity_for,
    credentials,
    harness_for,
    make_key,
    token_for,
)
from tests.test_whatsapp import BOT_NUMBER, CUSTOMER, PUBLIC_URL, FakeRasa, make_app, post, twilio_params

TEMPLATE_SID = "HX" + "ab12" * 8
TEAMS_CUSTOMER = "teams:29:user-1"
T = TypeVar("T")


def message(
    kind: str = COMMENT, conversation_id: str = CUSTOMER, channel: str = "whatsapp", **fields: Any
) -> ThreadMessage:
    values: dict[str, Any] = {
        "id": 7,
        "ticket_key": "ECO-000123",
        "title": "ECO-000123 · Falla en cargue archivos de cartera",
        "direction": TO_CUSTOMER,
        "kind": kind,
        "source": "jsm-comment:10042",
        "body": "¿Nos envías el archivo que falla?",
        "conversation_id": conversation_id,
        "channel": channel,
        "created_at": datetime.now(timezone.utc),
        "author": "Laura (soporte)",
    }
    values.update(fields)
    return ThreadMessage(**values)


def run(push: Any, action: Callable[[], Awaitable[T]]) -> T:
    """One event loop per call, like the worker's rounds; the push's session closed after it."""

    async def main() -> T:
        try:
            return await action()
        finally:
            await push.close()

    return asyncio.run(main())


def wait_for(check: Callable[[], Optional[T]], seconds: float = 30.0) -> T:
    """The channels note addresses in the background: wait until the note is there."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, "nothing noted in time"
            return found
        time.sleep(0.02)


def with_reference(address: Optional[Address]) -> Optional[Address]:
    return address if address is not None and address.reference is not None else None


@pytest.fixture
def book(tickets_db_url: str) -> AddressBook:  # noqa: F811 - the fixture imported above
    """In SQLite, or in PostgreSQL when TEST_POSTGRES_URL is set."""
    return AddressBook(tickets_db_url)


# =================================================================== WhatsApp
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
    twilio_server.enforce_window = True  # WhatsApp's rule, as Twilio reports it
    return twilio_server


def whatsapp_push(twilio: FakeTwilio, book: AddressBook, content_sid: str = TEMPLATE_SID) -> WhatsAppPush:
    async def no_wait(_: float) -> None:
        return None

    config = WhatsAppConfig(SID, TOKEN, BOT_NUMBER, api_url=twilio.api_url)
    return WhatsAppPush(config, book, content_sid, status_waits=(0.0, 0.0), sleep=no_wait)


def hours_ago(hours: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(hours=hours)


def test_inside_the_window_the_notice_goes_as_text(twilio: FakeTwilio, book: AddressBook) -> None:
    twilio.customer_wrote(CUSTOMER)
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(2))
    push = whatsapp_push(twilio, book)
    notice = render(message())

    assert run(push, lambda: push.send(CUSTOMER, notice)) == "text"
    [sent] = twilio.accepted()
    assert sent["to"] == CUSTOMER and sent["from"] == BOT_NUMBER
    assert sent["body"] == notice.text and "Laura (soporte) escribió" in sent["body"]
    assert sent["content_sid"] is None and sent["status"] == "delivered"


def test_buttons_become_numbered_choices_the_channel_reads_back(twilio: FakeTwilio, book: AddressBook) -> None:
    twilio.customer_wrote(CUSTOMER)
    book.seen(CUSTOMER, "whatsapp")
    push = whatsapp_push(twilio, book)
    notice = render(message(kind=CSAT, body=""))

    assert run(push, lambda: push.send(CUSTOMER, notice)) == "text"
    [sent] = twilio.accepted()
    assert "1. 1 · Muy mala" in sent["body"] and "5. 5 · Excelente" in sent["body"]
    assert "Responde con el número" in sent["body"]


def test_outside_the_window_the_approved_template_goes_with_the_notice_variables(
    twilio: FakeTwilio, book: AddressBook
) -> None:
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(30))
    push = whatsapp_push(twilio, book)
    notice = render(message())

    assert run(push, lambda: push.send(CUSTOMER, notice)) == "template"
    assert twilio.templates() == [
        (
            TEMPLATE_SID,
            {"1": "ECO-000123 · Falla en cargue archivos de cartera", "2": "¿Nos envías el archivo que falla?"},
        )
    ]
    [request] = twilio.messages
    assert "Body" not in request  # a template goes without free text (Twilio: «remove Body»)


def test_the_safety_margin_closes_the_window_early(twilio: FakeTwilio, book: AddressBook) -> None:
    twilio.customer_wrote(CUSTOMER, at=time.time() - 23.5 * 3600)  # WhatsApp would still take text...
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(23.5))
    push = whatsapp_push(twilio, book)

    assert run(push, lambda: push.send(CUSTOMER, render(message()))) == "template"  # ...but it may be too late


def test_a_customer_never_noted_gets_the_template(twilio: FakeTwilio, book: AddressBook) -> None:
    push = whatsapp_push(twilio, book)
    assert run(push, lambda: push.send(CUSTOMER, render(message()))) == "template"


def test_outside_the_window_without_a_template_nothing_is_sent_and_the_reason_is_clear(
    twilio: FakeTwilio, book: AddressBook
) -> None:
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(30))
    push = whatsapp_push(twilio, book, content_sid="")

    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(CUSTOMER, render(message())))
    assert failed.value.reason == NO_TEMPLATE and not failed.value.temporary
    assert "WHATSAPP_NOTIFY_CONTENT_SID" in failed.value.reason and "24 horas" in failed.value.reason
    assert twilio.messages == []


@pytest.mark.parametrize("answer", ["status", "request"])
def test_63016_to_free_text_sends_the_template(twilio: FakeTwilio, book: AddressBook, answer: str) -> None:
    """Our record says the customer wrote an hour ago; WhatsApp's window says otherwise."""
    twilio.window_answer = answer
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(1))
    push = whatsapp_push(twilio, book)
    notice = render(message())

    assert run(push, lambda: push.send(CUSTOMER, notice)) == "template"
    assert [m.get("Body") for m in twilio.messages] == [notice.text, None]
    assert twilio.templates() == [(TEMPLATE_SID, notice.template_variables)]
    if answer == "status":  # Twilio took the text, then failed it with 63016 on the message
        assert [m["error_code"] for m in twilio.accepted()] == [63016, None]


def test_63016_without_a_template_is_a_permanent_failure(twilio: FakeTwilio, book: AddressBook) -> None:
    book.seen(CUSTOMER, "whatsapp", at=hours_ago(1))
    push = whatsapp_push(twilio, book, content_sid="")
    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(CUSTOMER, render(message())))
    assert failed.value.reason == NO_TEMPLATE and not failed.value.temporary


def test_throttled_by_twilio_then_accepted_is_delivered_once(twilio: FakeTwilio, book: AddressBook) -> None:
    twilio.customer_wrote(CUSTOMER)
    book.seen(CUSTOMER, "whatsapp")
    twilio.script = [(429, {"Retry-After": "1"}, {"code": 20429, "message": "Too Many Requests", "status": 429})]
    push = whatsapp_push(twilio, book)

    assert run(push, lambda: push.send(CUSTOMER, render(message()))) == "text"
    assert len(twilio.messages) == 2  # the throttled request and its retry
    assert len(twilio.accepted()) == 1


def test_twilio_down_is_a_temporary_failure(twilio: FakeTwilio, book: AddressBook) -> None:
    twilio.customer_wrote(CUSTOMER)
    book.seen(CUSTOMER, "whatsapp")
    twilio.script = [(503, {}, {"code": 20500, "message": "Service Unavailable", "status": 503})] * 3
    push = whatsapp_push(twilio, book)

    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(CUSTOMER, render(message())))
    assert failed.value.temporary and "503" in failed.value.reason
    assert twilio.accepted() == []


def test_a_template_sid_twilio_does_not_know_is_refused_for_good(twilio: FakeTwilio, book: AddressBook) -> None:
    push = whatsapp_push(twilio, book, content_sid="HX-no-es-un-sid")
    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(CUSTOMER, render(message())))
    assert not failed.value.temporary and "21655" in failed.value.reason
    assert twilio.accepted() == []


def test_the_template_sid_is_checked_when_the_settings_are_read() -> None:
    with pytest.raises(SettingError, match="WHATSAPP_NOTIFY_CONTENT_SID"):
        FollowupSettings.from_env({"WHATSAPP_NOTIFY_CONTENT_SID": "plantilla-de-avisos"})
    assert FollowupSettings.from_env({"WHATSAPP_NOTIFY_CONTENT_SID": TEMPLATE_SID}).whatsapp_content_sid == TEMPLATE_SID


def test_a_conversation_of_another_channel_is_never_written_to_on_whatsapp(
    twilio: FakeTwilio, book: AddressBook
) -> None:
    push = whatsapp_push(twilio, book)
    for conversation in ("teams:29:user-1", "+573001234567", "web:abc"):
        notice = render(message(conversation_id=conversation))
        with pytest.raises(PushFailed) as failed:
            run(push, lambda: push.send(conversation, notice))  # noqa: B023 - run() calls it at once
        assert not failed.value.temporary
    assert twilio.messages == []


def test_the_worker_reads_the_variables_credentials_yml_gives_the_channels() -> None:
    """The worker is not built from credentials.yml: its two lists must name the same variables."""
    listed = yaml.safe_load(CREDENTIALS_FILE.read_text(encoding="utf-8"))
    assert listed["bot.channels.whatsapp.WhatsAppInput"] == {k: f"${{{v}}}" for k, v in WHATSAPP_VARIABLES.items()}
    assert listed["bot.channels.teams.TeamsInput"] == {k: f"${{{v}}}" for k, v in TEAMS_VARIABLES.items()}


# ------------------------------------------------------- the inbound webhook
def whatsapp_channel(twilio: FakeTwilio, tmp_path: Path, catalog: Catalog, book: AddressBook) -> WhatsAppInput:
    config = WhatsAppConfig(SID, TOKEN, BOT_NUMBER, api_url=twilio.api_url, public_url=PUBLIC_URL)
    store = AttachmentStore.from_settings(catalog, _settings(tmp_path))
    return WhatsAppInput(config, store, catalog.country_ids, book)


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"BOT_DATA_DIR": str(tmp_path)})


def test_a_signed_whatsapp_message_notes_when_the_customer_wrote(
    twilio: FakeTwilio, tmp_path: Path, catalog: Catalog, book: AddressBook
) -> None:
    rasa = FakeRasa()
    app = make_app(whatsapp_channel(twilio, tmp_path, catalog, book), rasa)
    assert post(app, twilio_params("Hola"), signature=None).status == 403
    assert post(app, twilio_params("Hola")).status == 200

    noted: Address = wait_for(lambda: book.get(CUSTOMER))
    assert noted.channel == "whatsapp" and noted.reference is None
    assert abs((datetime.now(timezone.utc) - noted.last_inbound_at).total_seconds()) < 60
    assert rasa.texts == ["Hola"]


def test_a_database_failure_never_costs_the_customer_their_message(
    twilio: FakeTwilio, tmp_path: Path, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    broken = AddressBook(f"sqlite:///{tmp_path}")  # a directory: SQLite cannot open it
    rasa = FakeRasa({"text": "¡Hola! ¿En qué te ayudo?"})
    app = make_app(whatsapp_channel(twilio, tmp_path, catalog, broken), rasa)
    twilio.enforce_window = False

    with caplog.at_level(logging.ERROR, logger="bot.channels.addresses"):
        assert post(app, twilio_params("Hola")).status == 200
        wait_for(lambda: [r for r in caplog.records if "Address book" in r.getMessage()])
    assert rasa.texts == ["Hola"]
    assert twilio.bodies() == ["¡Hola! ¿En qué te ayudo?"]


# ====================================================================== Teams
@pytest.fixture(scope="module")
def key() -> SigningKey:
    return make_key("key-1")


@pytest.fixture
def microsoft(key: SigningKey) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft([key.jwk]) as fake:
        yield fake


def teams_push(microsoft: FakeMicrosoft, book: AddressBook) -> TeamsPush:
    async def no_wait(_: float) -> None:
        return None

    connector = BotConnector(TeamsConfig.from_credentials(credentials(microsoft)), LoopSession())
    connector.sleep = no_wait
    return TeamsPush(connector, book)


def teams_channel(microsoft: FakeMicrosoft, tmp_path: Path, catalog: Catalog, book: AddressBook) -> Any:
    config = TeamsConfig.from_credentials(credentials(microsoft))
    store = AttachmentStore.from_settings(catalog, _settings(tmp_path))
    return harness_for(TeamsInput(config, store, book), microsoft)


def test_a_proactive_message_reaches_the_customers_own_1_1_chat(
    microsoft: FakeMicrosoft, key: SigningKey, tmp_path: Path, catalog: Catalog, book: AddressBook
) -> None:
    harness = teams_channel(microsoft, tmp_path, catalog, book)
    assert harness.post(activity_for(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    noted = wait_for(lambda: with_reference(book.get(TEAMS_CUSTOMER)))
    assert noted.reference is not None and noted.reference.conversation_id == "a:conv;1"

    microsoft.conversations = {"a:conv;1"}  # the Bot Connector knows only the conversations the bot is in
    push = teams_push(microsoft, book)
    notice = render(message(conversation_id=TEAMS_CUSTOMER, channel="teams"))
    assert run(push, lambda: push.send(TEAMS_CUSTOMER, notice)) == "proactive"

    [sent] = microsoft.activities
    assert sent["_conversation"] == "a:conv;1"
    assert sent["_authorization"] in {f"Bearer {t}" for t in microsoft.issued_tokens()}
    assert "replyToId" not in sent  # a message of its own, not a reply
    assert sent["from"] == {"id": "28:bot-1", "name": "Soporte ecollect"}
    assert sent["recipient"] == {"id": "29:user-1", "name": "Ana Pérez"}
    assert sent["conversation"] == {"id": "a:conv;1", "tenantId": TENANT}
    assert "Laura (soporte) escribió" in sent["text"] and sent["textFormat"] == "markdown"


def test_csat_buttons_go_as_the_adaptive_card_the_teams_output_builds(
    microsoft: FakeMicrosoft, book: AddressBook
) -> None:
    reference = ConversationReference.from_activity(activity_for(microsoft.base))
    book.seen(TEAMS_CUSTOMER, "teams", reference)
    push = teams_push(microsoft, book)
    notice = render(message(kind=CSAT, body="", conversation_id=TEAMS_CUSTOMER, channel="teams"))

    assert run(push, lambda: push.send(TEAMS_CUSTOMER, notice)) == "proactive"
    [sent] = microsoft.activities
    [card] = sent["attachments"]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert len(notice.buttons) == 5  # the ratings 1 to 5: five buttons, no list
    payloads = [a["data"]["msteams"]["value"]["payload"] for a in card["content"]["actions"]]
    assert payloads == [b.payload for b in notice.buttons]
    assert sent["conversation"] == {"id": "a:conv;1", "tenantId": TENANT}  # still a proactive message
    assert all(f"{n}. " in sent["summary"] for n in range(1, 6))  # clients without cards see the options


def test_a_group_chat_never_becomes_where_the_customers_news_go(
    microsoft: FakeMicrosoft, key: SigningKey, tmp_path: Path, catalog: Catalog, book: AddressBook
) -> None:
    harness = teams_channel(microsoft, tmp_path, catalog, book)
    group = {"id": "19:grupo@thread.v2", "conversationType": "groupChat", "tenantId": TENANT}
    assert (
        harness.post(activity_for(microsoft.base, conversation=group), token=token_for(key, microsoft.base)).status
        == 200
    )
    noted: Address = wait_for(lambda: book.get(TEAMS_CUSTOMER))
    assert noted.reference is None

    push = teams_push(microsoft, book)
    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(TEAMS_CUSTOMER, render(message(conversation_id=TEAMS_CUSTOMER, channel="teams"))))
    assert failed.value.reason == NO_REFERENCE and not failed.value.temporary
    assert microsoft.paths("/v3/") == []


def test_without_a_stored_reference_the_failure_says_why(microsoft: FakeMicrosoft, book: AddressBook) -> None:
    push = teams_push(microsoft, book)
    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(TEAMS_CUSTOMER, render(message(conversation_id=TEAMS_CUSTOMER, channel="teams"))))
    assert failed.value.reason == NO_REFERENCE and "1:1" in failed.value.reason
    assert microsoft.requests == []


def test_a_stored_reference_to_a_host_off_the_allow_list_never_gets_the_token(
    microsoft: FakeMicrosoft, book: AddressBook
) -> None:
    book.seen(TEAMS_CUSTOMER, "teams", ConversationReference.from_activity(activity_for("https://evil.example")))
    push = teams_push(microsoft, book)
    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(TEAMS_CUSTOMER, render(message(conversation_id=TEAMS_CUSTOMER, channel="teams"))))
    assert not failed.value.temporary and "evil.example" in failed.value.reason
    assert microsoft.token_calls == [] and microsoft.activities == []


def test_a_conversation_the_bot_left_is_a_permanent_failure(microsoft: FakeMicrosoft, book: AddressBook) -> None:
    book.seen(TEAMS_CUSTOMER, "teams", ConversationReference.from_activity(activity_for(microsoft.base)))
    microsoft.conversations = set()  # the customer removed the bot
    push = teams_push(microsoft, book)
    with pytest.raises(PushFailed) as failed:
        run(push, lambda: push.send(TEAMS_CUSTOMER, render(message(conversation_id=TEAMS_CUSTOMER, channel="teams"))))
    assert not failed.value.temporary and "404" in failed.value.reason


def test_teams_throttling_then_accepted_is_delivered_once(microsoft: FakeMicrosoft, book: AddressBook) -> None:
    book.seen(TEAMS_CUSTOMER, "teams", ConversationReference.from_activity(activity_for(microsoft.base)))
    microsoft.send_statuses = [(429, {"Retry-After": "1"})]
    push = teams_push(microsoft, book)
    notice: Notice = render(message(conversation_id=TEAMS_CUSTOMER, channel="teams"))
    assert run(push, lambda: push.send(TEAMS_CUSTOMER, notice)) == "proactive"
    assert len(microsoft.activities) == 2  # the throttled one (recorded by the fake) and the accepted one
