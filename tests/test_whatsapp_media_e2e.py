"""Voice notes and locations on WhatsApp against the real servers (Rasa, actions, the fake Twilio).

Outside a form the voice note is answered with a response added to
domain.yml: this file needs a model trained after that change.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import RunningAssistant
from tests.fake_twilio import TOKEN, Media
from tests.test_channels_e2e import BOT, replies_to

pytestmark = pytest.mark.servers

OGG = b"OggS" + b"\x00" * 600


def post(assistant: RunningAssistant, sender: str, body: str = "", media: tuple[str, ...] = (), **extra: str) -> int:
    """A signed Twilio webhook, with ``extra`` fields (MessageType, Latitude...)."""
    url = f"http://127.0.0.1:{assistant.settings.rasa_port}/webhooks/whatsapp/webhook"
    params = {
        "From": sender,
        "To": BOT,
        "Body": body,
        "ProfileName": "Ana",
        "MessageSid": "SM" + uuid.uuid4().hex,
        "NumMedia": str(len(media)),
        **extra,
    }
    for index, name in enumerate(media):
        params[f"MediaUrl{index}"] = assistant.twilio.media_url(name)
        params[f"MediaContentType{index}"] = assistant.twilio.media[name].content_type
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(params).encode(), headers={"X-Twilio-Signature": signature}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def customer() -> str:
    return f"whatsapp:+57301{uuid.uuid4().int % 10_000_000:07d}"


def test_voice_note_outside_a_form_is_answered_in_spanish(assistant: RunningAssistant) -> None:
    sender = customer()
    assistant.twilio.media["nota-fuera"] = Media(OGG, "audio/ogg")
    mark = len(assistant.twilio.messages)
    assert post(assistant, sender, media=("nota-fuera",), MessageType="audio") == 200
    replies_to(assistant, sender, mark, "Por ahora no puedo escuchar audios; ¿me lo escribes?")


def test_location_is_answered_and_never_read_as_text(assistant: RunningAssistant) -> None:
    sender = customer()
    mark = len(assistant.twilio.messages)
    assert post(assistant, sender, "Oficina", Latitude="4.6768", Longitude="-74.0483", Label="Oficina") == 200
    replies_to(assistant, sender, mark, "Recibí una ubicación")


def test_voice_note_inside_a_form_is_attached_to_the_ticket(assistant: RunningAssistant) -> None:
    sender = customer()
    assistant.twilio.media["nota-dentro"] = Media(OGG, "audio/ogg")
    mark = len(assistant.twilio.messages)
    post(assistant, sender, "¡Hola! El PSE no me deja pagar, sale un error al volver al comercio desde ayer")
    replies_to(assistant, sender, mark, "correo electrónico")

    mark = len(assistant.twilio.messages)
    assert post(assistant, sender, media=("nota-dentro",), MessageType="audio") == 200
    replies_to(assistant, sender, mark, "Recibí tu adjunto")

    mark = len(assistant.twilio.messages)
    post(assistant, sender, "ana@empresa.com")
    replies_to(assistant, sender, mark, "Revisa tu solicitud")

    mark = len(assistant.twilio.messages)
    post(assistant, sender, "1")
    done = replies_to(assistant, sender, mark, "Creé tu solicitud")
    ticket = assistant.store.get(done.split("Creé tu solicitud ")[1].split(" ")[0])
    assert ticket is not None
    assert [a.content_type for a in ticket.attachments] == ["audio/ogg"]
