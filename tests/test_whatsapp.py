"""The WhatsApp (Twilio) channel against a local fake of Twilio's API.

No network and no Rasa model: the webhook runs in a Sanic app with a fake
``on_new_message``, and a fake Twilio API (aiohttp, loopback, own thread)
captures outgoing messages and serves media behind basic auth. A second
fake host stands in for Twilio's media storage, reached by redirect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Optional
from urllib.parse import urlencode

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic
from sanic_testing import TestManager
from twilio.request_validator import RequestValidator

from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.channels.common import MAX_MESSAGE_CHARS, TOO_LONG, DisabledChannel
from bot.channels.whatsapp import CHOICE_HINT, MAX_BODY, WhatsAppConfig, WhatsAppInput, WhatsAppOutput, split_body
from bot.dialogue import form, requests
from bot.dialogue.turn import Turn
from tests.fake_twilio import SID, TOKEN, FakeTwilio, Media, start_fake_twilio

BOT_NUMBER = "whatsapp:+14155238886"
CUSTOMER = "whatsapp:+573001234567"
PUBLIC_URL = "https://soporte.example.com/webhooks/whatsapp/webhook"
WEBHOOK = "/webhooks/whatsapp/webhook"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
BUTTONS = [
    {"title": "Pagos en línea", "payload": '/elegir{"categoria":"pagos"}'},
    {"title": "Gestión de usuarios", "payload": '/elegir{"categoria":"usuarios"}'},
    {"title": "Reportes", "payload": '/elegir{"categoria":"reportes"}'},
]


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    fake, stop = start_fake_twilio()
    try:
        yield fake
    finally:
        stop()


@pytest.fixture
def fake_twilio(twilio: FakeTwilio) -> FakeTwilio:
    twilio.reset()
    return twilio


# ------------------------------------------------------------- the webhook
class FakeRasa:
    """Stands in for Rasa's ``on_new_message``: records, and answers when told to."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        self.messages: list[UserMessage] = []
        self.replies = list(replies)

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        for reply in self.replies:
            await message.output_channel.send_response(message.sender_id, dict(reply))

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


def from_credentials(api_url: str, public_url: str = PUBLIC_URL, content_api_url: str = "") -> WhatsAppInput:
    """The channel as Rasa builds it from credentials.yml (settings from the environment)."""
    credentials = {"account_sid": SID, "auth_token": TOKEN, "whatsapp_number": BOT_NUMBER}
    urls = {"api_url": api_url, "public_url": public_url, "content_api_url": content_api_url}
    built = WhatsAppInput.from_credentials({**credentials, **urls})
    assert isinstance(built, WhatsAppInput)
    return built


def output_to(api_url: str) -> WhatsAppOutput:
    return WhatsAppOutput(WhatsAppConfig(SID, TOKEN, BOT_NUMBER, api_url=api_url))


@pytest.fixture
def channel(fake_twilio: FakeTwilio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WhatsAppInput:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(WhatsAppOutput, "backoff_base", 0.01)
    return from_credentials(fake_twilio.api_url, content_api_url=fake_twilio.content_url)


def make_app(channel: Any, rasa: FakeRasa, agent: Any = None) -> Sanic:
    app = Sanic(f"whatsapp_test_{uuid.uuid4().hex[:10]}")
    app.blueprint(channel.blueprint(rasa), url_prefix="/webhooks/whatsapp")
    if agent is not None:
        app.ctx.agent = agent
    TestManager(app)
    return app


def twilio_params(
    body: str = "", sender: str = CUSTOMER, media: Optional[list[tuple[str, str]]] = None, **extra: str
) -> dict[str, str]:
    """The fields Twilio posts for a WhatsApp message (blank ones included, as Twilio does)."""
    params = {
        "SmsMessageSid": "SM" + uuid.uuid4().hex,
        "NumMedia": str(len(media or [])),
        "ProfileName": "Ana Pérez",
        "WaId": sender.split("+")[-1],
        "Body": body,
        "To": BOT_NUMBER,
        "From": sender,
        "AccountSid": SID,
        "ApiVersion": "2010-04-01",
    }
    params["MessageSid"] = params["SmsMessageSid"]
    for index, (url, content_type) in enumerate(media or []):
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = content_type
    params.update(extra)
    return params


def post(
    app: Sanic,
    params: dict[str, str],
    signature: Optional[str] = "sign",
    url: str = PUBLIC_URL,
    token: str = TOKEN,
    headers: Optional[dict[str, str]] = None,
) -> Any:
    """POST like Twilio does; ``signature="sign"`` signs ``params`` for ``url`` with ``token``."""
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if signature == "sign":
        signature = RequestValidator(token).compute_signature(url, params)
    if signature:
        all_headers["X-Twilio-Signature"] = signature
    _, response = app.test_client.post(WEBHOOK, content=urlencode(params).encode("utf-8"), headers=all_headers)
    return response


def small_store(root: Path, catalog: Catalog, max_bytes: int) -> AttachmentStore:
    spec = dataclasses.replace(catalog.attachment_field, max_bytes=max_bytes)
    return AttachmentStore(root / "adjuntos", AttachmentPolicy(spec))


def with_store(api_url: str, store: AttachmentStore, catalog: Catalog) -> WhatsAppInput:
    config = WhatsAppConfig(SID, TOKEN, BOT_NUMBER, api_url=api_url, public_url=PUBLIC_URL)
    return WhatsAppInput(config, store, catalog.country_ids)


# ------------------------------------------------------------ signatures
def test_unsigned_request_is_refused_and_nothing_is_delivered(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    rasa = FakeRasa({"text": "no debería salir"})
    response = post(make_app(channel, rasa), twilio_params("Hola"), signature=None)
    assert response.status == 403
    assert rasa.messages == [] and fake_twilio.messages == []


@pytest.mark.parametrize(
    "signing",
    [
        pytest.param({"token": "otro-token"}, id="other-auth-token"),
        pytest.param({"url": "https://otro.example.com/webhooks/whatsapp/webhook"}, id="other-url"),
        pytest.param({"signature": "bm90LWEtc2lnbmF0dXJl"}, id="garbage"),
    ],
)
def test_wrongly_signed_request_is_refused(
    channel: WhatsAppInput, fake_twilio: FakeTwilio, signing: dict[str, str]
) -> None:
    rasa = FakeRasa({"text": "no debería salir"})
    response = post(make_app(channel, rasa), twilio_params("Hola"), **signing)
    assert response.status == 403
    assert rasa.messages == [] and fake_twilio.messages == []


def test_tampered_body_is_refused(channel: WhatsAppInput) -> None:
    rasa = FakeRasa()
    params = twilio_params("Hola")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL, params)
    response = post(make_app(channel, rasa), {**params, "Body": "Adiós"}, signature=signature)
    assert response.status == 403
    assert rasa.messages == []


def test_without_public_url_the_request_url_is_what_twilio_signed(
    fake_twilio: FakeTwilio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    direct = from_credentials(fake_twilio.api_url, public_url="")
    rasa = FakeRasa()
    app = make_app(direct, rasa)
    host = {"Host": "bot.interno:5005"}
    assert post(app, twilio_params("Hola"), url=f"http://bot.interno:5005{WEBHOOK}", headers=host).status == 200
    # Signed for the public URL but seen under another one (a proxy, no WHATSAPP_PUBLIC_URL).
    assert post(app, twilio_params("Hola otra vez"), url=PUBLIC_URL, headers=host).status == 403
    assert rasa.texts == ["Hola"]


# -------------------------------------------------------- incoming text
def test_spanish_text_arrives_intact_and_twilio_gets_empty_twiml(channel: WhatsAppInput) -> None:
    rasa = FakeRasa()
    params = twilio_params("¡Hola! ¿Me ayudan con un pago? 🙏 Ñandú, acción")
    response = post(make_app(channel, rasa), params)

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Response" in response.text and "<Message" not in response.text
    [message] = rasa.messages
    assert message.text == "¡Hola! ¿Me ayudan con un pago? 🙏 Ñandú, acción"
    assert message.sender_id == CUSTOMER
    assert message.input_channel == "whatsapp"
    assert message.metadata["profile_name"] == "Ana Pérez"
    assert message.metadata["message_sid"] == params["MessageSid"]
    assert isinstance(message.output_channel, WhatsAppOutput)


@pytest.mark.parametrize(
    "sender, expected",
    [
        ("whatsapp:+573001234567", "+573001234567"),  # Colombia
        ("whatsapp:+5215512345678", "+525512345678"),  # Mexico, old mobile "1"
        ("whatsapp:+18095551234", "+18095551234"),  # Dominican Republic
    ],
)
def test_sender_phone_is_e164_for_served_countries(channel: WhatsAppInput, sender: str, expected: str) -> None:
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("Hola", sender=sender))
    [message] = rasa.messages
    assert message.sender_id == sender
    assert message.metadata["sender_phone"] == expected


def test_sender_from_an_unserved_country_has_no_phone(channel: WhatsAppInput) -> None:
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("Hola", sender="whatsapp:+34612345678"))
    [message] = rasa.messages
    assert message.text == "Hola"
    assert "sender_phone" not in message.metadata


def test_a_redelivered_message_is_handled_once(channel: WhatsAppInput) -> None:
    rasa = FakeRasa()
    app = make_app(channel, rasa)
    params = twilio_params("Necesito ayuda")
    assert post(app, params).status == 200
    assert post(app, params).status == 200
    assert rasa.texts == ["Necesito ayuda"]


# ------------------------------------------------------------- outgoing
def test_reply_has_from_to_and_body_with_spanish_punctuation(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    rasa = FakeRasa({"text": "¡Claro! ¿Cuál es el número de la transacción? Está en «Mis pagos»."})
    post(make_app(channel, rasa), twilio_params("Hola"))

    [sent] = fake_twilio.messages
    assert sent == {
        "From": BOT_NUMBER,
        "To": CUSTOMER,
        "Body": "¡Claro! ¿Cuál es el número de la transacción? Está en «Mis pagos».",
    }
    assert fake_twilio.message_auth == [aiohttp.BasicAuth(SID, TOKEN).encode()]


def test_image_is_sent_as_media_url(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    rasa = FakeRasa({"text": "Así se ve:", "image": "https://example.com/paso1.png"})
    post(make_app(channel, rasa), twilio_params("¿Dónde está el botón?"))
    assert [m.get("Body") for m in fake_twilio.messages] == ["Así se ve:", None]
    assert fake_twilio.messages[1]["MediaUrl"] == "https://example.com/paso1.png"


def test_long_body_is_split_on_paragraphs(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    paragraphs = [f"Párrafo {n}: " + "ñ" * 700 for n in range(4)]
    rasa = FakeRasa({"text": "\n\n".join(paragraphs)})
    post(make_app(channel, rasa), twilio_params("Hola"))

    bodies = fake_twilio.bodies()
    assert len(bodies) == 2
    assert all(len(body) <= MAX_BODY for body in bodies)
    assert bodies == ["\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]


def test_replies_of_a_turn_share_one_connection_to_twilio(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    """One HTTP session per event loop: no new connection (and TLS handshake) for every message."""
    rasa = FakeRasa({"text": "Primera respuesta."}, {"text": "Segunda respuesta."}, {"text": "Tercera respuesta."})
    post(make_app(channel, rasa), twilio_params("Hola"))
    assert fake_twilio.bodies() == ["Primera respuesta.", "Segunda respuesta.", "Tercera respuesta."]
    assert len(set(fake_twilio.message_peers)) == 1


def test_split_body_never_exceeds_the_limit_even_without_paragraphs() -> None:
    text = " ".join(["palabra"] * 600) + "\n" + "x" * 2000
    parts = split_body(text)
    assert all(len(part) <= MAX_BODY for part in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_429_then_201_is_retried_after_retry_after(fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WhatsAppOutput, "backoff_base", 0.01)
    fake_twilio.script.append(
        (429, {"Retry-After": "1"}, {"code": 20429, "message": "Too Many Requests", "status": 429})
    )
    output = output_to(fake_twilio.api_url)

    started = time.monotonic()
    asyncio.run(output.send_text_message(CUSTOMER, "¡Listo!"))

    assert time.monotonic() - started >= 0.9  # waited as Twilio asked, not the 0.01 s backoff
    assert fake_twilio.bodies() == ["¡Listo!", "¡Listo!"]  # the 429 attempt and the retry
    assert fake_twilio.script == []


def test_persistent_failure_is_logged_with_twilio_code(
    fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(WhatsAppOutput, "backoff_base", 0.01)
    error = {"code": 20500, "message": "Internal Server Error", "status": 500}
    fake_twilio.script.extend([(500, {}, error)] * WhatsAppOutput.max_attempts)
    output = output_to(fake_twilio.api_url)

    with caplog.at_level(logging.ERROR, logger="bot.channels.whatsapp"):
        asyncio.run(output.send_text_message(CUSTOMER, "Hola"))

    assert len(fake_twilio.messages) == WhatsAppOutput.max_attempts
    assert any("20500" in r.getMessage() and "Internal Server Error" in r.getMessage() for r in caplog.records)


def test_client_error_is_not_retried(fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture) -> None:
    fake_twilio.script.append((400, {}, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}))
    output = output_to(fake_twilio.api_url)
    with caplog.at_level(logging.ERROR, logger="bot.channels.whatsapp"):
        asyncio.run(output.send_text_message("whatsapp:+57", "Hola"))
    assert len(fake_twilio.messages) == 1
    assert any("21211" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------- buttons
def test_buttons_become_a_numbered_list_and_a_number_selects_the_payload(
    fake_twilio: FakeTwilio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With interactive messages off (WHATSAPP_INTERACTIVE=false) buttons are the numbered text they always were."""
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    credentials = {"account_sid": SID, "auth_token": TOKEN, "whatsapp_number": BOT_NUMBER, "interactive": "false"}
    channel = WhatsAppInput.from_credentials(
        {**credentials, "api_url": fake_twilio.api_url, "public_url": PUBLIC_URL, "content_api_url": "x"}
    )
    rasa = FakeRasa()
    app = make_app(channel, rasa)
    rasa.replies = [{"text": "¿Sobre qué es tu solicitud?", "buttons": BUTTONS}]
    post(app, twilio_params("Hola"))

    [sent] = fake_twilio.bodies()
    assert sent == (
        f"¿Sobre qué es tu solicitud?\n\n1. Pagos en línea\n2. Gestión de usuarios\n3. Reportes\n\n{CHOICE_HINT}"
    )
    assert CHOICE_HINT == "Responde con el número o el nombre de la opción."
    assert fake_twilio.content_requests == []

    rasa.replies = [{"text": "¿Qué reporte?", "buttons": BUTTONS}]
    post(app, twilio_params("2"))
    post(app, twilio_params("la 3"))
    rasa.replies = []
    post(app, twilio_params("gestion de USUARIOS"))
    assert rasa.texts == ["Hola", BUTTONS[1]["payload"], BUTTONS[2]["payload"], BUTTONS[1]["payload"]]


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("1", 0),
        ("opción 2", 1),
        ("Opcion 2", 1),
        ("la 2", 1),
        ("la tercera", 2),
        ("pagos en linea", 0),
        ("PAGOS", 0),
        ("la de reportes", 2),
        ("Gestión de usuarios", 1),
    ],
)
def test_typed_choices_map_to_the_payload(channel: WhatsAppInput, reply: str, expected: int) -> None:
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    post(app, twilio_params(reply))
    assert rasa.texts[-1] == BUTTONS[expected]["payload"]


@pytest.mark.parametrize("reply", ["7", "de", "quiero hablar con un asesor", "usuarios y reportes"])
def test_replies_that_match_no_single_option_pass_unchanged(channel: WhatsAppInput, reply: str) -> None:
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    post(app, twilio_params(reply))
    assert rasa.texts[-1] == reply


def test_numbers_are_not_translated_when_the_last_message_had_no_buttons(channel: WhatsAppInput) -> None:
    rasa = FakeRasa({"text": "Elige:", "buttons": BUTTONS})
    app = make_app(channel, rasa)
    post(app, twilio_params("Hola"))
    rasa.replies = [{"text": "¿Cuántas transacciones fallaron?"}]
    post(app, twilio_params("1"))  # answers the buttons
    post(app, twilio_params("2"))  # answers the question: a number, not a choice
    assert rasa.texts == ["Hola", BUTTONS[0]["payload"], "2"]


def _agent_with(sender: str, *events: Any) -> Any:
    store = InMemoryTrackerStore(Domain.empty())
    asyncio.run(store.save(DialogueStateTracker.from_events(sender, list(events))))
    return SimpleNamespace(tracker_store=store)


def test_buttons_are_read_from_the_shared_tracker_store(channel: WhatsAppInput) -> None:
    """Another server sent the buttons: this process never did, the tracker knows."""
    agent = _agent_with(
        CUSTOMER,
        UserUttered("hola"),
        BotUttered("¿Sobre qué es tu solicitud?", data={"buttons": BUTTONS}),
    )
    rasa = FakeRasa()
    post(make_app(channel, rasa, agent=agent), twilio_params("2"))
    assert rasa.texts == [BUTTONS[1]["payload"]]


def test_tracker_without_buttons_in_the_last_bot_message_leaves_text_alone(channel: WhatsAppInput) -> None:
    agent = _agent_with(
        CUSTOMER,
        BotUttered("Elige:", data={"buttons": BUTTONS}),
        UserUttered("1"),
        BotUttered("¿Cuántas transacciones fallaron?", data={}),
    )
    rasa = FakeRasa()
    post(make_app(channel, rasa, agent=agent), twilio_params("2"))
    assert rasa.texts == ["2"]


# ----------------------------------------------------------------- media
def test_media_only_message_is_stored_and_sent_as_attach(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    fake_twilio.media["captura"] = Media(PNG, "image/png")
    rasa = FakeRasa()
    params = twilio_params("", media=[(fake_twilio.media_url("captura"), "image/png")])
    assert post(make_app(channel, rasa), params).status == 200  # blank Body is part of the signature

    [message] = rasa.messages
    assert message.text == "/attach"
    [attachment] = message.metadata["attachments"]
    assert set(attachment) == {"id", "name", "content_type", "size"}
    assert attachment["content_type"] == "image/png" and attachment["size"] == len(PNG)
    assert attachment["name"].endswith(".png")
    stored = channel.attachment_store.get(attachment["id"])
    assert stored is not None and Path(stored.path).read_bytes() == PNG
    assert fake_twilio.messages == []  # nothing to refuse


def test_media_with_text_keeps_the_text(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    fake_twilio.media["recibo"] = Media(b"%PDF-1.4 recibo", "application/pdf", mode="no-length")
    rasa = FakeRasa()
    media = [(fake_twilio.media_url("recibo"), "application/pdf")]
    post(make_app(channel, rasa), twilio_params("Adjunto el recibo del pago", media=media))
    [message] = rasa.messages
    assert message.text == "Adjunto el recibo del pago"
    [attachment] = message.metadata["attachments"]
    assert attachment["content_type"] == "application/pdf"


def test_redirected_media_is_fetched_without_leaking_credentials(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media["foto"] = Media(PNG, "image/jpeg", mode="redirect")
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("", media=[(fake_twilio.media_url("foto"), "image/jpeg")]))
    assert fake_twilio.media_hits == ["foto"]
    assert fake_twilio.storage_auth == [None]
    [message] = rasa.messages
    assert message.metadata["attachments"][0]["name"].endswith(".jpg")


def test_disallowed_type_is_refused_in_spanish_and_not_downloaded(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media["programa"] = Media(b"MZ" + b"\x00" * 100, "application/x-msdownload")
    rasa = FakeRasa()
    media = [(fake_twilio.media_url("programa"), "application/x-msdownload")]
    post(make_app(channel, rasa), twilio_params("Les explico por audio", media=media))

    [refusal] = fake_twilio.messages
    assert refusal["To"] == CUSTOMER
    assert refusal["Body"].startswith("No puedo recibir archivos de tipo")
    assert "PDF" in refusal["Body"]
    assert fake_twilio.media_hits == []
    [message] = rasa.messages  # the words still reach the assistant
    assert message.text == "Les explico por audio"
    assert "attachments" not in message.metadata


def test_too_large_file_is_refused_with_its_size(fake_twilio: FakeTwilio, tmp_path: Path, catalog: Catalog) -> None:
    store = small_store(tmp_path, catalog, max_bytes=1024)
    small = with_store(fake_twilio.api_url, store, catalog)
    fake_twilio.media["grande"] = Media(b"\xff" * 4096, "image/png")
    rasa = FakeRasa()
    params = twilio_params("", media=[(fake_twilio.media_url("grande"), "image/png")])
    post(make_app(small, rasa), params)

    name = f"adjunto-{params['MessageSid'][-6:].lower()}.png"  # WhatsApp sends no file name
    assert fake_twilio.bodies() == [f"El archivo «{name}» pesa 4 KB; el máximo es 1 KB."]
    assert fake_twilio.messages[0]["To"] == CUSTOMER
    assert rasa.messages == []  # nothing left to process
    assert not (tmp_path / "adjuntos").exists() or not any((tmp_path / "adjuntos").iterdir())


def test_endless_download_stops_at_the_limit(fake_twilio: FakeTwilio, tmp_path: Path, catalog: Catalog) -> None:
    store = small_store(tmp_path, catalog, max_bytes=100 * 1024)
    small = with_store(fake_twilio.api_url, store, catalog)
    fake_twilio.media["video"] = Media(b"", "image/png", mode="endless")
    rasa = FakeRasa()
    post(make_app(small, rasa), twilio_params("Va el archivo", media=[(fake_twilio.media_url("video"), "image/png")]))

    [refusal] = fake_twilio.bodies()
    assert "supera el máximo de 100 KB" in refusal
    assert rasa.texts == ["Va el archivo"]
    assert fake_twilio.stream_done.wait(10)
    assert fake_twilio.stream_sent < 64 * 1024 * 1024  # the channel hung up long before the end


def test_unreachable_media_gets_a_spanish_apology(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("", media=[(fake_twilio.media_url("no-existe"), "image/png")]))
    [apology] = fake_twilio.bodies()
    assert apology == "No pude recibir tu archivo. Por favor, envíalo de nuevo."
    assert rasa.messages == []


# ------------------------------------- voice notes, locations, contacts, stickers
OGG = b"OggS" + b"\x00" * 300


def test_voice_note_is_stored_and_reaches_rasa_as_attach_not_as_text(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media["nota"] = Media(OGG, "audio/ogg")
    rasa = FakeRasa()
    post(
        make_app(channel, rasa),
        twilio_params("", media=[(fake_twilio.media_url("nota"), "audio/ogg")], MessageType="audio"),
    )
    [message] = rasa.messages
    assert message.text == "/attach"
    [reference] = message.metadata["attachments"]
    assert reference["content_type"] == "audio/ogg" and reference["size"] == len(OGG)
    assert fake_twilio.bodies() == []


def _dialogue_turn(channel: WhatsAppInput, message: UserMessage) -> Turn:
    """The turn the action server builds: references resolved through the store, for this sender only."""
    resolved = channel.attachment_store.resolve(message.metadata["attachments"], owner=message.sender_id)
    return Turn(
        text="/attach",
        intent="attach",
        confidence=1.0,
        mode="answer",
        sender_id=message.sender_id,
        metadata={"attachments": resolved},
    )


def test_voice_note_outside_a_form_gets_the_spanish_answer_and_is_not_kept(
    channel: WhatsAppInput, fake_twilio: FakeTwilio, catalog: Catalog
) -> None:
    fake_twilio.media["nota"] = Media(OGG, "audio/ogg")
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("", media=[(fake_twilio.media_url("nota"), "audio/ogg")]))
    [message] = rasa.messages
    updates, says = requests.receive_attachment(_dialogue_turn(channel, message), {}, catalog)
    assert updates == {} and [s.response for s in says] == ["utter_audio_not_heard"]
    texts = [r["text"] for r in Domain.load("domain.yml").responses["utter_audio_not_heard"]]
    assert texts == ["Por ahora no puedo escuchar audios; ¿me lo escribes?"]


def test_video_outside_a_form_gets_its_own_answer(
    channel: WhatsAppInput, fake_twilio: FakeTwilio, catalog: Catalog
) -> None:
    fake_twilio.media["video"] = Media(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4")
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("", media=[(fake_twilio.media_url("video"), "video/mp4")]))
    [message] = rasa.messages
    updates, says = requests.receive_attachment(_dialogue_turn(channel, message), {}, catalog)
    assert updates == {} and [s.response for s in says] == ["utter_video_not_seen"]


def test_a_document_outside_a_form_is_still_kept_for_the_next_request(
    channel: WhatsAppInput, fake_twilio: FakeTwilio, catalog: Catalog
) -> None:
    fake_twilio.media["recibo"] = Media(b"%PDF-1.4 recibo", "application/pdf")
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("", media=[(fake_twilio.media_url("recibo"), "application/pdf")]))
    [message] = rasa.messages
    updates, says = requests.receive_attachment(_dialogue_turn(channel, message), {}, catalog)
    assert len(updates["attachment"]) == 1 and [s.response for s in says][-1] == "utter_attachment_kept"


def test_voice_note_inside_a_form_becomes_an_attachment_of_the_ticket(
    channel: WhatsAppInput, fake_twilio: FakeTwilio, catalog: Catalog
) -> None:
    fake_twilio.media["nota"] = Media(OGG, "audio/ogg")
    rasa = FakeRasa()
    post(
        make_app(channel, rasa),
        twilio_params("", media=[(fake_twilio.media_url("nota"), "audio/ogg")], MessageType="audio"),
    )
    [message] = rasa.messages
    slots = {"request_type": "pago_en_linea", "requested_slot": "description"}
    step = form.step(_dialogue_turn(channel, message), slots, catalog, attachments=channel.attachment_store)
    [kept] = step.updates["attachment"]
    assert kept["content_type"] == "audio/ogg" and kept["size"] == len(OGG)
    assert [s.response for s in step.says] == ["utter_attachment_received"]
    assert step.next_slot == "description"  # the pending question is asked again


def test_voice_note_over_the_size_limit_is_refused_with_its_size(
    fake_twilio: FakeTwilio, tmp_path: Path, catalog: Catalog
) -> None:
    small = with_store(fake_twilio.api_url, small_store(tmp_path, catalog, max_bytes=1024), catalog)
    fake_twilio.media["larga"] = Media(b"OggS" + b"\x00" * 4092, "audio/ogg")
    rasa = FakeRasa()
    post(make_app(small, rasa), twilio_params("", media=[(fake_twilio.media_url("larga"), "audio/ogg")]))
    [refusal] = fake_twilio.bodies()
    assert "pesa 4 KB; el máximo es 1 KB" in refusal
    assert rasa.messages == []


def test_location_gets_the_spanish_answer_and_never_reaches_the_nlu(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    rasa = FakeRasa()
    params = twilio_params(
        "Calle 93 #11-26, Bogotá",
        Latitude="4.6768",
        Longitude="-74.0483",
        Address="Calle 93 #11-26, Bogotá",
        Label="Oficina",
    )
    assert post(make_app(channel, rasa), params).status == 200
    assert rasa.messages == []
    assert fake_twilio.bodies() == [
        "Recibí una ubicación, pero por aquí solo atiendo solicitudes de ecollect: cuéntame qué necesitas por escrito."
    ]
    assert fake_twilio.messages[0]["To"] == CUSTOMER


def test_contact_card_gets_the_spanish_answer_and_is_not_downloaded(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media["contacto"] = Media(b"BEGIN:VCARD\r\nFN:Luis\r\nEND:VCARD\r\n", "text/vcard")
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("", media=[(fake_twilio.media_url("contacto"), "text/vcard")]))
    assert rasa.messages == [] and fake_twilio.media_hits == []
    [answer] = fake_twilio.bodies()
    assert answer.startswith("Recibí una tarjeta de contacto, pero no puedo leerla.")


def test_sticker_gets_the_spanish_answer_but_a_webp_document_is_kept(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media["sticker"] = Media(b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 100, "image/webp")
    rasa = FakeRasa()
    app = make_app(channel, rasa)
    post(app, twilio_params("", media=[(fake_twilio.media_url("sticker"), "image/webp")], MessageType="sticker"))
    assert rasa.messages == [] and fake_twilio.media_hits == []
    assert fake_twilio.bodies() == ["Por ahora no puedo ver stickers; cuéntame por escrito qué necesitas."]

    post(app, twilio_params("", media=[(fake_twilio.media_url("sticker"), "image/webp")], MessageType="document"))
    [message] = rasa.messages
    assert message.text == "/attach" and message.metadata["attachments"][0]["content_type"] == "image/webp"


def test_sticker_with_words_answers_and_passes_the_words(channel: WhatsAppInput, fake_twilio: FakeTwilio) -> None:
    rasa = FakeRasa()
    post(make_app(channel, rasa), twilio_params("el pse no sirve", media=[(fake_twilio.media_url("x"), "image/webp")]))
    assert rasa.texts == ["el pse no sirve"] and "attachments" not in rasa.messages[0].metadata
    assert len(fake_twilio.bodies()) == 1


# ------------------------------------------------------ slow turns, config
def test_a_slow_turn_is_answered_at_once_and_finishes_in_background(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    """Twilio gives up after 15 s; the webhook answers first and the reply still goes out.

    The turn finishes only once the webhook has answered, so the figure does
    not hang on how loaded the machine is.
    """
    channel.answer_within = 0.2

    class SlowRasa(FakeRasa):
        def __init__(self, *replies: dict[str, Any]) -> None:
            super().__init__(*replies)
            self.release = asyncio.Event()

        async def __call__(self, message: UserMessage) -> None:
            await self.release.wait()
            await super().__call__(message)

    rasa = SlowRasa({"text": "¡Ya quedó!"})
    app = make_app(channel, rasa)
    params = twilio_params("Hola")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL, params)

    async def scenario() -> tuple[int, float, list[str]]:
        started = time.monotonic()
        _, response = await asyncio.wait_for(
            app.asgi_client.post(
                WEBHOOK,
                content=urlencode(params).encode("utf-8"),
                headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
            ),
            timeout=10,  # the webhook waiting for the turn would never answer
        )
        elapsed = time.monotonic() - started
        sent_before = fake_twilio.bodies()
        rasa.release.set()
        await asyncio.gather(*list(channel._tasks))
        return response.status, elapsed, sent_before

    status, elapsed, sent_before = asyncio.run(scenario())
    assert status == 200 and elapsed < 5 and sent_before == []
    assert rasa.texts == ["Hola"]
    assert fake_twilio.bodies() == ["¡Ya quedó!"]


def test_control_characters_are_removed_before_rasa_reads_the_text(channel: WhatsAppInput) -> None:
    rasa = FakeRasa()
    assert post(make_app(channel, rasa), twilio_params("\x00hola\x1b[31m rojo\nsegunda línea")).status == 200
    assert rasa.texts == ["hola[31m rojo\nsegunda línea"]


def test_a_message_over_the_limit_is_refused_in_spanish_and_not_processed(
    channel: WhatsAppInput, fake_twilio: FakeTwilio
) -> None:
    rasa = FakeRasa()
    assert post(make_app(channel, rasa), twilio_params("a" * (MAX_MESSAGE_CHARS + 1))).status == 200
    assert rasa.messages == []
    assert fake_twilio.bodies() == [TOO_LONG]


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe\xfd", b"Body=%FF%FE&From=whatsapp%3A%2B573001112233", b"&&&===", b"Body=" + b"a" * 20_000],
)
def test_malformed_bodies_get_a_4xx_never_a_5xx(channel: WhatsAppInput, raw: bytes) -> None:
    rasa = FakeRasa()
    _, response = make_app(channel, rasa).test_client.post(
        WEBHOOK, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
    )
    assert 400 <= response.status < 500
    assert rasa.messages == []


def test_health_endpoint(channel: WhatsAppInput) -> None:
    _, response = make_app(channel, FakeRasa()).test_client.get("/webhooks/whatsapp/")
    assert response.status == 200 and response.json == {"status": "ok"}


@pytest.mark.parametrize(
    "credentials",
    [
        None,
        {"account_sid": "", "auth_token": "", "whatsapp_number": "", "api_url": "", "public_url": ""},
        {"account_sid": SID, "auth_token": TOKEN, "whatsapp_number": "  "},
    ],
)
def test_missing_credentials_give_a_disabled_channel_answering_503(credentials: Optional[dict[str, str]]) -> None:
    disabled = WhatsAppInput.from_credentials(credentials)
    assert isinstance(disabled, DisabledChannel)
    assert disabled.name() == "whatsapp" and "whatsapp_number" in disabled.missing
    rasa = FakeRasa()
    app = make_app(disabled, rasa)
    response = post(app, twilio_params("Hola"))
    assert response.status == 503
    assert rasa.messages == []


def test_credentials_build_the_channel_with_defaults() -> None:
    channel = WhatsAppInput.from_credentials(
        {"account_sid": SID, "auth_token": TOKEN, "whatsapp_number": "+14155238886", "api_url": "", "public_url": ""}
    )
    assert isinstance(channel, WhatsAppInput)
    assert channel.name() == "whatsapp"
    assert channel.api_url == "https://api.twilio.com"
    assert channel.public_url is None
    assert channel.get_output_channel().whatsapp_number == "whatsapp:+14155238886"
    assert (
        channel.get_output_channel().messages_url == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    )
