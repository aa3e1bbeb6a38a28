"""WhatsApp's reply buttons and lists through Twilio's Content API, against the local fake of Twilio.

The fake checks contents as Twilio documents them (limits, Basic auth),
refuses a ContentSid it does not know (21655) and records what the customer
sees. The contents' cache is a real database (SQLite, or PostgreSQL when
TEST_POSTGRES_URL is set), shared by two channels as by two servers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Iterator, Optional

import aiohttp
import pytest

from bot.attachments import AttachmentStore
from bot.catalog import Catalog
from bot.channels.addresses import AddressBook
from bot.channels.http import LoopSession
from bot.channels.whatsapp import WhatsAppConfig, WhatsAppInput
from bot.channels.whatsapp.config import DEFAULT_CONTENT_API_URL
from bot.channels.whatsapp.content import PEER_WAIT, ContentApi, ContentCache, Contents
from bot.channels.whatsapp.interactive import (
    LIST_PICKER,
    QUICK_REPLY,
    Content,
    option_id,
    render,
    shorten,
)
from bot.channels.whatsapp.push import WhatsAppPush
from bot.channels.whatsapp.replies import utf16_units
from bot.dialogue.notices import render as render_notice
from bot.http_retry import RetryPolicy
from bot.settings import Settings
from bot.thread.model import CSAT
from tests.fake_jsm import tickets_db_url  # noqa: F401 (fixture)
from tests.fake_twilio import SID, TOKEN, FakeTwilio, content_problem, start_fake_twilio
from tests.test_push import hours_ago, message
from tests.test_whatsapp import BOT_NUMBER, BUTTONS, CUSTOMER, PUBLIC_URL, FakeRasa, make_app, post, twilio_params

LOG = "bot.channels.whatsapp"


def buttons(count: int, title: str = "Opción número") -> list[dict[str, Any]]:
    return [{"title": f"{title} {n}", "payload": f'/elegir{{"opcion":"o{n}"}}'} for n in range(1, count + 1)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_url(tickets_db_url: str) -> str:  # noqa: F811 - the fixture imported above
    """The tickets database the contents' cache lives in (SQLite, or PostgreSQL with TEST_POSTGRES_URL)."""
    return tickets_db_url


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
    return twilio_server


def config_for(twilio: FakeTwilio) -> WhatsAppConfig:
    return WhatsAppConfig(
        SID, TOKEN, BOT_NUMBER, api_url=twilio.api_url, public_url=PUBLIC_URL, content_api_url=twilio.content_url
    )


def contents_for(twilio: FakeTwilio, url: str, clock: Optional[Clock] = None, peer_wait: float = PEER_WAIT) -> Contents:
    api = ContentApi(config_for(twilio), LoopSession(), RetryPolicy(attempts=2, backoff_base=0.01, max_wait=0.05))
    return Contents(api, ContentCache(url), clock=clock or Clock(), peer_wait=peer_wait)


def channel_for(twilio: FakeTwilio, url: str, tmp_path: Path, catalog: Catalog, **kwargs: Any) -> WhatsAppInput:
    """A server's channel: its own process memory, the shared tickets database."""
    store = AttachmentStore.from_settings(catalog, Settings.from_env({"BOT_DATA_DIR": str(tmp_path)}))
    return WhatsAppInput(config_for(twilio), store, catalog.country_ids, None, contents_for(twilio, url, **kwargs))


@pytest.fixture
def channel(twilio: FakeTwilio, db_url: str, tmp_path: Path, catalog: Catalog) -> WhatsAppInput:
    return channel_for(twilio, db_url, tmp_path, catalog)


def tap(option: tuple[str, str, str], sender: str = CUSTOMER) -> dict[str, str]:
    kind, tapped_id, title = option
    fields = {"ListId": tapped_id, "ListTitle": title} if kind == "list" else {"ButtonPayload": tapped_id}
    if kind != "list":
        fields["ButtonText"] = title
    return twilio_params(title, sender=sender, **fields)


# ------------------------------------------------------------------ rendering
@pytest.mark.parametrize("count, kind", [(2, QUICK_REPLY), (3, QUICK_REPLY), (7, LIST_PICKER), (12, None)])
def test_options_render_as_buttons_list_or_numbered_text(
    channel: WhatsAppInput, twilio: FakeTwilio, count: int, kind: Optional[str]
) -> None:
    rasa = FakeRasa({"text": "¿Qué necesitas?", "buttons": buttons(count)})
    post(make_app(channel, rasa), twilio_params("Hola"))

    [sent] = twilio.messages
    if kind is None:
        assert "ContentSid" not in sent and twilio.content_requests == []
        assert "12. Opción número 12" in sent["Body"] and "Responde con el número" in sent["Body"]
        return
    assert "Body" not in sent and sent["ContentSid"] in twilio.contents
    shown_kind, data = twilio.content_of(sent) or ("", {})
    assert shown_kind == kind and data["body"] == "¿Qué necesitas?"
    options = twilio.options_to(CUSTOMER)
    assert [title for _, _, title in options] == [f"Opción número {n}" for n in range(1, count + 1)]
    assert twilio.accepted()[0]["shown"].startswith("¿Qué necesitas?")


def test_long_catalog_names_are_cut_at_a_word_and_stay_visible_in_full(catalog: Catalog) -> None:
    """Every menu the dialogue sends, with the catalog's longest names, is valid for Twilio and loses nothing."""
    menus: list[list[str]] = [[c.name for c in catalog.categories]]
    for category in catalog.categories:
        menus.append([rt.name for rt in category.request_types] + [catalog.label("back")])
        for request_type in category.request_types:
            for field in request_type.fields:
                if getattr(field, "options", None):
                    menus.append([o.name for o in field.options])
    retired = catalog.retired[0]
    menus.append(["Falla en cargue archivos de cartera", catalog.label("retired_choice").format(name=retired.name)])
    longest = max((title for menu in menus for title in menu), key=len)
    assert longest.startswith("Solicitud eliminación") and len(longest) > 72

    for menu in menus:
        rendered = render("Elige una opción:", [{"title": t, "payload": f"/p{i}"} for i, t in enumerate(menu)])
        assert rendered.content is not None, menu
        assert content_problem(rendered.content.definition()) is None
        data = next(iter(rendered.content.types.values()))
        shown = [data["body"]] + [
            f"{o.get('title') or o.get('item')} {o.get('description', '')}"
            for o in data.get("actions") or data["items"]
        ]
        for title in menu:
            assert any(title in part for part in shown), (title, shown)
    assert shorten("Mis credenciales de ingreso al módulo no funcionan", 24) == "Mis credenciales…"
    assert shorten("Solicitud eliminación y/o actualización registros de cartera", 24) == "Solicitud eliminación…"


def test_titles_that_would_read_the_same_are_numbered() -> None:
    rendered = render(
        "¿Cuál?",
        [
            {"title": "Falla en cargue archivos de usuarios", "payload": "/a"},
            {"title": "Falla en cargue archivos de cartera", "payload": "/b"},
        ],
    )
    assert rendered.content is not None
    titles = [a["title"] for a in rendered.content.types[QUICK_REPLY]["actions"]]
    assert titles == ["1. Falla en cargue…", "2. Falla en cargue…"]
    body = rendered.content.types[QUICK_REPLY]["body"]
    assert "1. Falla en cargue archivos de usuarios\n2. Falla en cargue archivos de cartera" in body


def test_a_body_over_1024_goes_first_as_text_and_the_rest_with_the_buttons(
    channel: WhatsAppInput, twilio: FakeTwilio
) -> None:
    paragraphs = [f"Párrafo {n}: " + "detalle del resumen " * 20 for n in range(8)]
    text = "\n\n".join(paragraphs)
    assert utf16_units(text) > 2 * 1024
    rasa = FakeRasa({"text": text, "buttons": BUTTONS})
    post(make_app(channel, rasa), twilio_params("Hola"))

    *leads, last = twilio.messages
    assert leads and all("Body" in m and utf16_units(m["Body"]) <= 1024 for m in leads)
    kind, data = twilio.content_of(last) or ("", {})
    assert kind == QUICK_REPLY and utf16_units(data["body"]) <= 1024
    assert " ".join(" ".join([*(m["Body"] for m in leads), data["body"]]).split()) == " ".join(text.split())


def test_link_buttons_are_not_replies_and_go_as_numbered_text(channel: WhatsAppInput, twilio: FakeTwilio) -> None:
    links = [{"title": "Portal", "type": "web_url", "url": "https://soporte.example.com"}, BUTTONS[0]]
    post(make_app(channel, FakeRasa({"text": "Mira:", "buttons": links})), twilio_params("Hola"))
    [sent] = twilio.messages
    assert "1. Portal" in sent["Body"] and twilio.content_requests == []


def test_option_ids_are_short_stable_and_not_the_payload() -> None:
    payload = '/inform{"description":"' + "x" * 5000 + '"}'
    assert option_id(1, payload) == option_id(1, payload) != option_id(2, payload)
    assert len(option_id(10, payload)) <= 200 and "inform" not in option_id(1, payload)


# ----------------------------------------------------------------------- taps
@pytest.mark.parametrize("count", [3, 7])
def test_a_tap_returns_the_exact_payload(channel: WhatsAppInput, twilio: FakeTwilio, count: int) -> None:
    offered = buttons(count)
    rasa = FakeRasa({"text": "Elige:", "buttons": offered})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    options = twilio.options_to(CUSTOMER)
    assert options[0][0] == ("button" if count == 3 else "list")
    rasa.replies = []
    post(app, tap(options[count - 1]))
    assert rasa.texts == ["Hola", offered[count - 1]["payload"]]


def test_typed_number_and_words_still_work_for_interactive_messages(channel: WhatsAppInput, twilio: FakeTwilio) -> None:
    rasa = FakeRasa({"text": "¿Sobre qué es tu solicitud?", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    assert twilio.messages[-1].get("ContentSid")
    post(app, twilio_params("2"))
    post(app, twilio_params("la de reportes"))
    assert rasa.texts == ["Hola", BUTTONS[1]["payload"], BUTTONS[2]["payload"]]


def test_a_forged_button_payload_is_never_used_as_a_payload(
    channel: WhatsAppInput,
    twilio: FakeTwilio,
    db_url: str,
    tmp_path: Path,
    catalog: Catalog,
) -> None:
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    rasa.replies = []
    # A payload typed into the webhook, and the id of an option offered to somebody else.
    post(app, twilio_params("hola", ButtonPayload='/affirm{"ticket":"ECO-000001"}', ButtonText="hola"))
    other = twilio_params("Hola", sender="whatsapp:+573009998877")
    post(make_app(channel, FakeRasa({"text": "Otra:", "buttons": buttons(2)})), other)
    foreign = twilio.options_to("whatsapp:+573009998877")[0]
    post(app, tap(("button", foreign[1], "nada que ver")))
    assert rasa.texts == ["Hola", "hola", "nada que ver"]


# ---------------------------------------------------------------- contents
def test_the_same_buttons_twice_create_one_content(channel: WhatsAppInput, twilio: FakeTwilio) -> None:
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    post(app, twilio_params("otra vez"))
    assert twilio.creations == 1 and len(twilio.content_requests) == 1
    assert twilio.messages[0]["ContentSid"] == twilio.messages[1]["ContentSid"]
    assert twilio.content_auth == [aiohttp.BasicAuth(SID, TOKEN).encode()]
    definition = twilio.content_requests[0]
    assert definition["language"] == "es" and definition["friendly_name"].startswith("ecollect_botones_")


def test_two_servers_sharing_the_database_create_one_content(
    twilio: FakeTwilio,
    db_url: str,
    tmp_path: Path,
    catalog: Catalog,
) -> None:
    first = channel_for(twilio, db_url, tmp_path / "a", catalog)
    second = channel_for(twilio, db_url, tmp_path / "b", catalog)
    post(make_app(first, FakeRasa({"text": "Elige:", "buttons": BUTTONS})), twilio_params("Hola"))
    post(
        make_app(second, FakeRasa({"text": "Elige:", "buttons": BUTTONS})),
        twilio_params("Hola", sender="whatsapp:+573001112233"),
    )
    assert twilio.creations == 1
    assert twilio.messages[0]["ContentSid"] == twilio.messages[1]["ContentSid"]


def test_two_servers_racing_for_a_new_content_create_it_once(
    twilio: FakeTwilio,
    db_url: str,
) -> None:
    twilio.content_delay = 0.5
    content = render("¿Seguimos?", buttons(2)).content
    assert content is not None
    # the loser waits for the winner's row: a loaded machine may need more than the production 3 s
    first, second = contents_for(twilio, db_url, peer_wait=30), contents_for(twilio, db_url, peer_wait=30)

    async def race() -> list[Optional[str]]:
        try:
            return list(await asyncio.gather(first.sid_for(content), second.sid_for(content)))
        finally:
            await first.close()
            await second.close()

    sids = asyncio.run(race())
    assert twilio.creations == 1 and len(twilio.content_requests) == 1
    assert sids[0] == sids[1] and sids[0] in twilio.contents


def test_content_api_down_sends_numbered_text_logs_once_and_retries_after_the_cool_down(
    twilio: FakeTwilio,
    db_url: str,
    tmp_path: Path,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    channel = channel_for(twilio, db_url, tmp_path, catalog, clock=clock)
    twilio.content_outage = (503, {}, {"code": 20500, "message": "Internal Server Error", "status": 503})
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    with caplog.at_level(logging.INFO, logger=LOG):
        post(app, twilio_params("Hola"))
        post(app, twilio_params("otra vez"))
        assert [m.get("ContentSid") for m in twilio.messages] == [None, None]
        assert all("1. Pagos en línea" in body for body in twilio.bodies())
        assert len(twilio.content_requests) == 2  # the first message's two attempts; none for the second
        failures = [r for r in caplog.records if "API de contenidos de Twilio falló" in r.getMessage()]
        assert len(failures) == 1 and failures[0].levelno == logging.ERROR and "HTTP 503" in failures[0].getMessage()

        twilio.content_outage = None
        clock.now += 601
        post(app, twilio_params("y ahora"))
    assert twilio.messages[-1].get("ContentSid") in twilio.contents
    assert any("responde de nuevo" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"Retry-After": "0"}, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        (500, {}, {"code": 20500, "message": "Internal Server Error", "status": 500}),
    ],
)
def test_a_throttled_or_failed_create_is_retried(
    channel: WhatsAppInput, twilio: FakeTwilio, answer: tuple[int, dict[str, str], dict[str, Any]]
) -> None:
    twilio.content_script.append(answer)
    post(make_app(channel, FakeRasa({"text": "Elige:", "buttons": BUTTONS})), twilio_params("Hola"))
    assert len(twilio.content_requests) == 2 and twilio.creations == 1
    assert twilio.messages[-1]["ContentSid"] in twilio.contents


@pytest.mark.parametrize(
    "answer",
    [
        (201, {}, {"sid": "no-es-un-sid"}),
        (400, {}, {"code": 20001, "message": "Invalid content", "status": 400}),
        (401, {}, {"code": 20003, "message": "Authenticate", "status": 401}),
    ],
)
def test_a_refused_or_bad_answer_sends_numbered_text(
    channel: WhatsAppInput, twilio: FakeTwilio, caplog: pytest.LogCaptureFixture, answer: Any
) -> None:
    twilio.content_script.append(answer)
    with caplog.at_level(logging.ERROR, logger=LOG):
        post(make_app(channel, FakeRasa({"text": "Elige:", "buttons": BUTTONS})), twilio_params("Hola"))
    [sent] = twilio.messages
    assert "ContentSid" not in sent and "1. Pagos en línea" in sent["Body"]
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_a_content_twilio_no_longer_knows_falls_back_to_text_then_is_created_again(
    channel: WhatsAppInput, twilio: FakeTwilio
) -> None:
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    twilio.contents.clear()  # deleted in Twilio's console
    post(app, twilio_params("otra vez"))
    refused, fallback = twilio.messages[1:3]
    assert refused.get("ContentSid") and "1. Pagos en línea" in fallback["Body"]
    post(app, twilio_params("y otra"))
    assert twilio.messages[-1]["ContentSid"] in twilio.contents and len(twilio.content_requests) == 2


def test_interactive_messages_can_be_switched_off_and_the_api_url_has_a_default(tmp_path: Path) -> None:
    base = {"account_sid": SID, "auth_token": TOKEN, "whatsapp_number": BOT_NUMBER}
    config = WhatsAppConfig.from_credentials({**base, "content_api_url": "", "interactive": ""})
    assert config.content_api_url == DEFAULT_CONTENT_API_URL and config.interactive
    assert WhatsAppConfig.from_credentials({**base, "content_api_url": "http://x/"}).content_api_url == "http://x"
    off = WhatsAppConfig.from_credentials({**base, "interactive": "false"})
    assert not off.interactive and Contents.from_config(off, f"sqlite:///{tmp_path / 't.db'}") is None


# ---------------------------------------------------------------------- push
def push_for(twilio: FakeTwilio, url: str) -> WhatsAppPush:
    async def no_wait(_: float) -> None:
        return None

    config = config_for(twilio)
    return WhatsAppPush(
        config,
        AddressBook(url),
        "HX" + "ab12" * 8,
        status_waits=(0.0,),
        sleep=no_wait,
        contents=contents_for(twilio, url),
    )


def send(push: WhatsAppPush, notice: Any) -> str:
    async def main() -> str:
        try:
            return await push.send(CUSTOMER, notice)
        finally:
            await push.close()

    return asyncio.run(main())


def test_a_notice_inside_the_window_goes_as_a_list_and_outside_as_the_template(
    twilio: FakeTwilio,
    db_url: str,
) -> None:
    twilio.enforce_window = True
    twilio.customer_wrote(CUSTOMER)
    push = push_for(twilio, db_url)
    push.addresses.seen(CUSTOMER, "whatsapp", at=hours_ago(2))
    notice = render_notice(message(kind=CSAT, body=""))

    assert send(push, notice) == "text"
    lead, sent = twilio.accepted()
    # The ticket's line goes as plain text; the list's content carries only the question, so one content
    # serves every ticket and Twilio's content library keeps nothing of the customer's.
    assert "ECO-000123" in lead["body"] and not lead["content_sid"]
    assert sent["status"] == "delivered" and "Body" not in twilio.messages[1]
    assert "ECO-" not in json.dumps(twilio.contents[sent["content_sid"]])
    assert [title for _, _, title in twilio.options_to(CUSTOMER)] == [
        "1 · Muy mala",
        "2 · Mala",
        "3 · Regular",
        "4 · Buena",
        "5 · Excelente",
    ]

    twilio.reset()
    twilio.enforce_window = True
    push = push_for(twilio, db_url)
    push.addresses.seen(CUSTOMER, "whatsapp", at=hours_ago(30))
    assert send(push, notice) == "template"
    assert [m["content_sid"] for m in twilio.accepted()] == ["HX" + "ab12" * 8]


def test_a_notice_whose_window_closed_early_gets_the_template_not_the_list(
    twilio: FakeTwilio,
    db_url: str,
) -> None:
    twilio.enforce_window = True  # WhatsApp saw no message from the customer...
    push = push_for(twilio, db_url)
    push.addresses.seen(CUSTOMER, "whatsapp", at=hours_ago(2))  # ...though our record says two hours ago
    assert send(push, render_notice(message(kind=CSAT, body=""))) == "template"
    statuses = [(m["content_sid"] in twilio.contents, m["status"]) for m in twilio.accepted()]
    # The ticket's line (plain text, sent before the list) is refused with 63016; the list never goes.
    assert statuses == [(False, "failed"), (False, "delivered")]


def test_a_notice_whose_content_twilio_refuses_goes_as_numbered_text(twilio: FakeTwilio, db_url: str) -> None:
    twilio.customer_wrote(CUSTOMER)
    notice = render_notice(message(kind=CSAT, body=""))
    first = push_for(twilio, db_url)
    first.addresses.seen(CUSTOMER, "whatsapp", at=hours_ago(1))
    assert send(first, notice) == "text"
    twilio.contents.clear()  # deleted in Twilio's console; the cache still has its SID

    assert send(push_for(twilio, db_url), notice) == "text"
    lead, refused, fallback = twilio.messages[2:]  # the first notice was its ticket line and its list
    assert "ECO-000123" in lead["Body"] and refused.get("ContentSid") and "1. 1 · Muy mala" in fallback["Body"]


def test_credentials_build_the_channel_with_its_contents_unless_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    base = {"account_sid": SID, "auth_token": TOKEN, "whatsapp_number": BOT_NUMBER}
    built = WhatsAppInput.from_credentials({**base, "content_api_url": "", "interactive": ""})
    assert isinstance(built, WhatsAppInput) and built.contents is not None
    assert built.get_output_channel().contents is built.contents
    off = WhatsAppInput.from_credentials({**base, "interactive": "no"})
    assert isinstance(off, WhatsAppInput) and off.contents is None


def test_unique_content_keys_follow_the_canonical_json() -> None:
    one = Content({QUICK_REPLY: {"body": "a", "actions": [{"id": "1-x", "title": "A"}]}})
    same = Content({QUICK_REPLY: {"actions": [{"title": "A", "id": "1-x"}], "body": "a"}})
    assert one.key == same.key and len(one.key) == 64
    assert Content({QUICK_REPLY: {"body": "b", "actions": [{"id": "1-x", "title": "A"}]}}).key != one.key


SUMMARY_BUTTONS = [{"title": "Enviar", "payload": "/affirm"}, {"title": "Corregir", "payload": "/correct"}]


def test_a_summary_goes_as_text_and_only_its_question_becomes_a_shared_content() -> None:
    """Twilio keeps contents for good: the customer's e-mail, phone and description never go into one."""
    summary = (
        "Revisa tu solicitud antes de enviarla:\n• Tipo de solicitud: Pago en línea\n"
        "• Descripción: el pago de la factura 55 no aparece\n• Correo: ana@empresa.com\n"
        "• Teléfono: +57 315 777 8899\n¿La envío?"
    )
    rendered = render(summary, SUMMARY_BUTTONS)
    assert rendered.content is not None
    assert rendered.lead == (summary.rsplit("\n", 1)[0],)
    body = rendered.content.types["twilio/quick-reply"]["body"]
    assert body == "¿La envío?"
    other = render(summary.replace("ana@empresa.com", "luis@otra.co"), SUMMARY_BUTTONS)
    assert other.content is not None and other.content.key == rendered.content.key  # one content for every summary


def test_a_question_that_itself_carries_personal_data_goes_as_numbered_text() -> None:
    rendered = render("¿Tu correo es ana@empresa.com?", SUMMARY_BUTTONS)
    assert rendered.content is None and "1. Enviar" in rendered.fallback
    keyed = render("⭐ ECO-000123 · Pago en línea\n¿Cómo calificas la atención?", SUMMARY_BUTTONS)
    assert keyed.content is not None and "ECO-" not in json.dumps(keyed.content.types)


def test_a_menu_without_personal_data_stays_one_message() -> None:
    menu = "Módulo administrativo. ¿Con qué podemos ayudarte?\n• Gestión de archivos\n• Solicitud usuario"
    rendered = render(menu, SUMMARY_BUTTONS)
    assert rendered.lead == () and rendered.content is not None
    assert rendered.content.types["twilio/quick-reply"]["body"] == menu
