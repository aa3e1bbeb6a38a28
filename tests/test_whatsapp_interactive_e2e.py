"""A WhatsApp customer who only taps, through the real servers (Rasa, actions) and the fake Twilio.

The session's servers send buttons through the fake's Content API (see
conftest): every choice arrives as reply buttons or a list, and the
customer answers each by tapping it, as Twilio posts a tap (ButtonPayload /
ListId, signed). The only things typed are the free-text answers.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.conftest import RunningAssistant
from tests.fake_twilio import LIST_PICKER, QUICK_REPLY, tap
from tests.test_channels_e2e import post_whatsapp, replies_to

pytestmark = pytest.mark.servers


def webhook(assistant: RunningAssistant) -> str:
    return f"http://127.0.0.1:{assistant.settings.rasa_port}/webhooks/whatsapp/webhook"


def offered(assistant: RunningAssistant, customer: str, after: int) -> tuple[str, dict]:
    """The interactive message ``customer`` got since ``after`` (waiting for it): its type and data."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in reversed(assistant.twilio.messages[after:]):
            found = assistant.twilio.content_of(message) if message.get("To") == customer else None
            if found is not None:
                return found
        time.sleep(0.2)
    raise AssertionError(f"sin botones ni lista: {assistant.twilio.shown_to(customer, after)}")


def tap_on(assistant: RunningAssistant, customer: str, after: int, words: str) -> str:
    """Tap the option of the last interactive message whose title (or full text) has ``words``: "button" or "list"."""
    kind, data = offered(assistant, customer, after)
    if kind == QUICK_REPLY:
        options = [("button", a["id"], a["title"], a["title"]) for a in data["actions"]]
    else:
        options = [("list", r["id"], r["item"], f"{r['item']} {r['description']}") for r in data["items"]]
    [option] = [o for o in options if words in o[3]]
    params, headers = tap(webhook(assistant), customer, option[:3])
    request = urllib.request.Request(webhook(assistant), data=urllib.parse.urlencode(params).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
    except urllib.error.HTTPError as error:  # pragma: no cover - reported with its status
        raise AssertionError(f"el webhook respondió {error.code} al toque") from error
    return option[0]


def to_the_summary(assistant: RunningAssistant, customer: str) -> tuple[list[str], int]:
    """Greeting, menu, category, request type and item by taps, the e-mail typed: the options tapped and the mark."""
    twilio = assistant.twilio
    kinds: list[str] = []
    mark = len(twilio.messages)
    assert post_whatsapp(assistant, customer, "Hola") == 200
    replies_to(assistant, customer, mark, "Soporte ecollect")
    steps = [
        ("Ver el menú", "Elige una categoría"),
        ("Módulo administrativo / Transferencia de archivos", "¿Con qué podemos ayudarte?"),
        ("Gestión de archivos", "Elige una opción"),
        ("Falla en cargue archivos de cartera", "correo electrónico"),
    ]
    for words, answer in steps:
        after = mark
        mark = len(twilio.messages)
        kinds.append(tap_on(assistant, customer, after, words))
        replies_to(assistant, customer, mark, answer)
    mark = len(twilio.messages)
    post_whatsapp(assistant, customer, "ana.taps@empresa.com")  # free text: the only thing typed
    summary = replies_to(assistant, customer, mark, "Revisa tu solicitud")
    assert "Falla en cargue archivos de cartera" in summary and "[Enviar]" in summary
    return kinds, mark


def new_customer() -> str:
    return f"whatsapp:+57310{uuid.uuid4().int % 10_000_000:07d}"


def test_a_whatsapp_customer_creates_a_ticket_by_taps_alone(assistant: RunningAssistant) -> None:
    customer = new_customer()
    twilio = assistant.twilio
    created_before = twilio.creations

    kinds, after = to_the_summary(assistant, customer)
    mark = len(twilio.messages)
    kinds.append(tap_on(assistant, customer, after, "Enviar"))
    done = replies_to(assistant, customer, mark, "Creé tu solicitud")

    assert kinds == ["button", "list", "list", "list", "button"]
    assert not any("Responde con el número" in text for text in twilio.shown_to(customer))  # never numbered text
    key = done.split("Creé tu solicitud ")[1].split(" ")[0]
    ticket = assistant.store.get(key)
    assert ticket is not None and ticket.channel == "whatsapp" and ticket.conversation_id == customer
    assert (ticket.category_id, ticket.request_type_id) == ("modulo_administrativo", "gestion_archivos")
    assert ticket.item_id == "falla_cargue_cartera" and ticket.email == "ana.taps@empresa.com"
    assert ticket.phone == customer.split(":")[1]

    # The same menus for the next customer: no content is created again.
    created = twilio.creations
    assert created > created_before
    other = new_customer()
    mark = len(twilio.messages)
    post_whatsapp(assistant, other, "Hola")
    replies_to(assistant, other, mark, "Soporte ecollect")
    tap_on(assistant, other, mark, "Ver el menú")
    kind, _ = offered(assistant, other, mark + 1)
    assert kind == LIST_PICKER and twilio.creations == created


def test_a_forged_tap_is_read_as_text_never_as_a_payload(assistant: RunningAssistant) -> None:
    """At the summary, a ButtonPayload carrying «send» itself (not an offered id) sends nothing: its words are text."""
    customer = new_customer()
    twilio = assistant.twilio
    _, after = to_the_summary(assistant, customer)
    mark = len(twilio.messages)
    params, headers = tap(webhook(assistant), customer, ("button", "/affirm", "hola"))
    request = urllib.request.Request(webhook(assistant), data=urllib.parse.urlencode(params).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
    answer = replies_to(assistant, customer, mark, "Enviar")  # the summary's choice again, not a ticket
    assert "Creé tu solicitud" not in answer
    assert [t for t in assistant.store.list() if t.conversation_id == customer] == []

    mark = len(twilio.messages)
    tap_on(assistant, customer, after, "Enviar")  # the offered button still works
    replies_to(assistant, customer, mark, "Creé tu solicitud")
