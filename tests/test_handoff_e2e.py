"""END-TO-END: «quiero hablar con una persona» against the real servers and a model trained with data/nlu/handoff.yml.

These need the retrained model (`make test` trains it); they run through
the REST and WhatsApp channels exactly as customers write. The servers use
the real clock, so the wording of «when» is only checked for the parts that
do not depend on the hour (who, where, the customer's time zone); the hours
themselves are tested at fixed moments in tests/test_hours.py and
tests/test_handoff.py.
"""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from bot.catalog import Catalog
from bot.thread import TicketThread
from bot.thread.model import HANDOFF, TO_DESK
from tests.conftest import RunningAssistant
from tests.test_channels_e2e import post_whatsapp, replies_to

pytestmark = pytest.mark.servers

WHO_AND_WHERE = ("una persona del equipo de soporte", "aquí mismo, en este chat")


def handoff_notes(assistant: RunningAssistant, key: str) -> list[str]:
    thread = TicketThread(assistant.settings.tickets_db_url)
    return [m.body for m in thread.messages(key) if m.direction == TO_DESK and m.kind == HANDOFF]


def parse(assistant: RunningAssistant, text: str) -> str:
    request = urllib.request.Request(
        f"{assistant.base_url}/model/parse?token={assistant.settings.secrets.rasa_api_token}",
        data=json.dumps({"text": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["intent"]["name"])


def test_asking_for_a_person_inside_the_form_keeps_what_was_typed(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("no me carga el archivo de cartera")
    asked = chat.text(chat.say("quiero hablar con una persona"))
    assert all(words in asked for words in WHO_AND_WHERE), chat.dump()
    assert "(hora de Colombia)" in asked  # REST carries no phone: the catalog's first country, named
    assert "correo" in asked.splitlines()[-1], chat.dump()  # the form asks again what it was asking
    summary = chat.text(chat.say("ana.perez@empresa.com"))
    assert "Revisa tu solicitud" in summary and "Falla en cargue archivos de cartera" in summary, chat.dump()
    done = chat.text(chat.say("/affirm"))
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.key in done and "Le pedí a una persona del equipo de soporte" in done, chat.dump()
    (note,) = handoff_notes(assistant, ticket.key)
    assert "Cliente: quiero hablar con una persona" in note and "Cliente: no me carga el archivo de cartera" in note


def test_asking_for_a_person_with_no_ticket_opens_the_handoff_request(
    assistant: RunningAssistant, catalog: Catalog
) -> None:
    chat = assistant.chat()
    opening = chat.text(chat.say("quiero hablar con un asesor"))
    handoff_type = catalog.handoff_request_type
    assert handoff_type is not None and handoff_type.name in opening and all(w in opening for w in WHO_AND_WHERE), (
        chat.dump()
    )
    assert not assistant.store.list(conversation_id=chat.sender)  # nothing created before the customer says so
    chat.say("necesito ayuda con la conciliación de los pagos de ayer, no cuadran los valores")
    chat.say("luis@colegio.edu.co")
    summary = chat.text(chat.say("+57 315 777 8899"))
    assert "Revisa tu solicitud" in summary, chat.dump()
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.request_type_id == handoff_type.id
    (note,) = handoff_notes(assistant, ticket.key)
    assert "Cliente: quiero hablar con un asesor" in note and "luis@colegio.edu.co" not in note


def test_asking_for_a_person_after_a_ticket_flags_that_ticket(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("no me carga el archivo de cartera, mi correo es ana.perez@empresa.com.co")
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    flagged = chat.text(chat.say("necesito hablar con alguien del equipo por favor"))
    assert ticket.key in flagged and all(w in flagged for w in WHO_AND_WHERE), chat.dump()
    assert len(assistant.store.list(conversation_id=chat.sender)) == 1  # no second ticket
    (note,) = handoff_notes(assistant, ticket.key)
    assert "necesito hablar con alguien del equipo" in note


def test_the_assistant_says_plainly_it_is_a_bot(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    answer = chat.text(chat.say("¿eres un robot?"))
    assert "un bot" in answer and "no una persona" in answer and "quiero hablar con una persona" in answer


def test_a_whatsapp_customer_in_mexico_reads_mexican_time(assistant: RunningAssistant) -> None:
    customer = f"whatsapp:+52155{uuid.uuid4().int % 100_000_000:08d}"
    after = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, "quiero hablar con una persona") == 200
    text = replies_to(assistant, customer, after, "(hora de México)")
    assert "una persona del equipo de soporte" in text


@pytest.mark.parametrize(
    "text",
    [
        "me pueden pasar con una persona?",
        "necesito un asesor humano porfavor",
        "ya me canse del bot, quiero hablar con alguien",
        "oye comunicame con un agente",
    ],
)
def test_unseen_ways_of_asking_for_a_person_are_understood(assistant: RunningAssistant, text: str) -> None:
    assert parse(assistant, text) == "human_handoff"


@pytest.mark.parametrize(
    "text",
    [
        "me interesa hablar con ventas sobre el botón de pagos en línea",
        "¿con quién estoy hablando, eres una máquina?",
        "necesito que un técnico me acompañe mientras subo la cartera",
    ],
)
def test_look_alikes_are_not_a_request_for_a_person(assistant: RunningAssistant, text: str) -> None:
    assert parse(assistant, text) != "human_handoff"
