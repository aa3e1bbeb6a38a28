"""Channels against the real servers: WhatsApp through Rasa to a ticket, Teams off.

The session's servers run with WhatsApp enabled against a local fake of
Twilio (see conftest) and without Teams secrets, as a deployer without an
Azure bot would run them.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import RunningAssistant
from tests.fake_twilio import TOKEN, Media
from tests.hostile import HOSTILE_MESSAGES

pytestmark = pytest.mark.servers

BOT = "whatsapp:+14155238886"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300


def post_whatsapp(assistant: RunningAssistant, sender: str, body: str = "", media: list[str] = ()) -> int:
    url = f"http://127.0.0.1:{assistant.settings.rasa_port}/webhooks/whatsapp/webhook"
    params = {
        "From": sender, "To": BOT, "Body": body, "ProfileName": "Ana",
        "MessageSid": "SM" + uuid.uuid4().hex, "NumMedia": str(len(media)),
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
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def replies_to(assistant: RunningAssistant, customer: str, after: int, containing: str) -> str:
    """What ``customer`` saw since message ``after`` (texts, and reply buttons or lists), once it has the words."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        bodies = assistant.twilio.shown_to(customer, after)
        if any(containing in b for b in bodies):
            return "\n".join(bodies)
        time.sleep(0.2)
    raise AssertionError(f"sin respuesta con «{containing}»: {assistant.twilio.shown_to(customer, after)}")


def test_whatsapp_customer_gets_a_ticket_with_media_and_a_typed_choice(assistant: RunningAssistant) -> None:
    customer = f"whatsapp:+57300{uuid.uuid4().int % 10_000_000:07d}"
    e164 = customer.split(":")[1]
    assistant.twilio.media["pantallazo"] = Media(PNG, "image/png")

    mark = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, "¡Hola! El PSE no me deja pagar, sale un error al volver al comercio desde ayer") == 200
    first = replies_to(assistant, customer, mark, "correo electrónico")
    assert "¿A nombre de qué correo" in first  # Spanish punctuation intact both ways
    assert "teléfono" not in first  # the sender's number is the phone: never asked

    mark = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, media=["pantallazo"]) == 200
    replies_to(assistant, customer, mark, "Recibí tu adjunto")

    mark = len(assistant.twilio.messages)
    post_whatsapp(assistant, customer, "ana@empresa.com")
    summary = replies_to(assistant, customer, mark, "Revisa tu solicitud")
    assert "[Enviar]\n[Corregir]\n[Cancelar]" in summary  # WhatsApp's reply buttons (Content API)
    assert "+57 300" in summary  # the WhatsApp number, shown for confirmation

    mark = len(assistant.twilio.messages)
    post_whatsapp(assistant, customer, "1")  # typed, not tapped: still mapped to the first button's payload
    done = replies_to(assistant, customer, mark, "Creé tu solicitud")
    key = done.split("Creé tu solicitud ")[1].split(" ")[0]
    ticket = assistant.store.get(key)
    assert ticket is not None and ticket.channel == "whatsapp"
    assert ticket.conversation_id == customer and ticket.phone == e164
    assert [a.content_type for a in ticket.attachments] == ["image/png"]


def test_hostile_whatsapp_messages_get_an_answer_never_a_5xx_or_a_ticket(assistant: RunningAssistant) -> None:
    customer = f"whatsapp:+52155{uuid.uuid4().int % 100_000_000:08d}"
    for message in HOSTILE_MESSAGES:
        assert post_whatsapp(assistant, customer, message) == 200, message[:40]
    mark = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, "b" * 12_000) == 200
    replies_to(assistant, customer, mark, "demasiado largo")
    mark = len(assistant.twilio.messages)
    post_whatsapp(assistant, customer, "cancelar")
    post_whatsapp(assistant, customer, "hola")
    replies_to(assistant, customer, mark, "Soporte ecollect")
    assert [t for t in assistant.store.list() if t.conversation_id == customer] == []


def test_unsigned_whatsapp_requests_are_refused(assistant: RunningAssistant) -> None:
    url = f"http://127.0.0.1:{assistant.settings.rasa_port}/webhooks/whatsapp/webhook"
    data = urllib.parse.urlencode({"From": "whatsapp:+573001112233", "Body": "hola"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30)
    assert refused.value.code == 403


def test_teams_without_secrets_is_off_and_the_rest_runs(assistant: RunningAssistant) -> None:
    url = f"http://127.0.0.1:{assistant.settings.rasa_port}/webhooks/teams/webhook"
    with pytest.raises(urllib.error.HTTPError) as off:
        urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=30)
    assert off.value.code == 503
    log = (assistant.settings.data_dir / "servers.log").read_text(encoding="utf-8", errors="replace")
    assert log.count("Canal Microsoft Teams desactivado") == 1
    rest = assistant.chat().say("hola")
    assert rest and "Soporte ecollect" in rest[0]["text"]
