"""The knowledge base in whole conversations, against the real servers over the REST channel.

The articles are the shipped ones (``kb/``); what the customer reads, the
tickets created and the deflection records are all checked.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from bot.kb.deflections import DeflectionLog
from bot.review.analysis import DEFLECTED, OUTCOME_LABELS, summarize
from tests.conftest import Chat, RunningAssistant

pytestmark = pytest.mark.servers

NEED = "necesito apoyo para configurar las referencias del servicio nuevo"
HELPFUL = '/affirm{"kb_answer":"helpful"}'
DECLINED = '/deny{"kb_answer":"declined"}'
OFFER = "Antes de seguir, estos artículos de ayuda podrían resolverlo"
QUESTION = "¿dónde descargo el reporte de transacciones?"


def tracker(assistant: RunningAssistant, conversation_id: str) -> dict[str, Any]:
    token = assistant.settings.secrets.rasa_api_token
    url = f"{assistant.base_url}/conversations/{conversation_id}/tracker?include_events=ALL&token={token}"
    with urllib.request.urlopen(url, timeout=30) as reply:
        return dict(json.loads(reply.read()))


def slot_sets(assistant: RunningAssistant, chat: Chat, name: str) -> list[Any]:
    events = tracker(assistant, chat.sender)["events"]
    return [e.get("value") for e in events if e.get("event") == "slot" and e.get("name") == name]


def events(assistant: RunningAssistant, chat: Chat) -> list[str]:
    return [e.event for e in DeflectionLog(assistant.settings.tickets_db_url).events(chat.sender)]


def offered(assistant: RunningAssistant, chat: Chat) -> list[dict[str, Any]]:
    chat.say('/choose_request_type{"request_type":"acompanamiento_tecnico"}')
    return chat.say(NEED)


def test_articles_are_offered_after_the_description(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    replies = offered(assistant, chat)
    text = chat.text(replies)
    assert OFFER in text, chat.dump()
    assert "Opciones de Formación e información" in text
    assert f"http://localhost:{assistant.settings.web_port}/ayuda/v/" in text  # a link that counts the view
    assert chat.payloads(replies) == [HELPFUL, DECLINED]
    assert "correo" not in text  # the contact questions come after
    assert events(assistant, chat) == ["offered"]
    # The link goes through the web server, which counts the view and shows the article.
    link = re.search(r"http://localhost:\d+/ayuda/v/\S+", text).group(0).replace("localhost", "127.0.0.1")
    with urllib.request.urlopen(link, timeout=30) as page:
        assert "/ayuda/articulos/" in page.geturl() and page.status == 200
    assert events(assistant, chat) == ["offered", "viewed"]


def test_me_sirvio_creates_no_ticket_and_sets_kb_resolved(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    offered(assistant, chat)
    closing = chat.text(chat.say("me sirvió"))
    assert "Qué bueno que te sirvió" in closing, chat.dump()
    assert assistant.store.list(conversation_id=chat.sender) == []
    assert True in slot_sets(assistant, chat, "kb_resolved")
    assert events(assistant, chat) == ["offered", "helpful"]
    # What the review app reads from the same events: «Resuelta con un artículo», not abandoned nor a ticket.
    summary = summarize(chat.sender, tracker(assistant, chat.sender)["events"])
    assert summary.outcome == DEFLECTED and OUTCOME_LABELS[summary.outcome] == "Resuelta con un artículo"
    # The request is over: a new message is no form answer.
    assert "nada que cancelar" in chat.text(chat.say("cancelar"))


def test_sigo_goes_on_to_a_ticket_that_lists_the_articles_and_no_second_offer(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    offered(assistant, chat)
    going_on = chat.text(chat.say(DECLINED))
    assert "sigamos con tu solicitud" in going_on and "correo electrónico" in going_on, chat.dump()
    chat.say("ana@empresa.com")
    chat.say("809-555-1234")
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.description == NEED
    assert ticket.articles_shown.startswith("Artículos mostrados al cliente antes de crear la solicitud:")
    assert "Opciones de Formación e información: http://localhost:" in ticket.articles_shown
    assert "/ayuda/articulos/formacion-e-informacion" in ticket.articles_shown
    # A second request in the same conversation: declined once, no articles again.
    chat.say('/choose_request_type{"request_type":"capacitaciones"}')
    second = chat.text(chat.say("necesitamos una capacitación sobre cómo generar los reportes del módulo"))
    assert OFFER not in second and "Revisa tu solicitud" in second, chat.dump()  # contact data kept: the summary
    assert events(assistant, chat) == ["offered", "declined"]


def test_a_question_inside_the_form_is_answered_and_the_form_resumes(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type":"pago_en_linea"}')
    asked = chat.text(chat.say("el pse no me deja pagar, se queda cargando y no vuelve al comercio"))
    assert "correo electrónico" in asked, chat.dump()
    answer = chat.text(chat.say(QUESTION))
    assert "Gestión de archivos del Módulo administrativo" in answer, chat.dump()
    assert "correo electrónico" in answer  # the pending question, asked again
    chat.say("ana@empresa.com")
    chat.say("+57 315 777 8899")
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.request_type == "Pago en línea"  # the question did not switch the request
    assert ticket.description == "el pse no me deja pagar, se queda cargando y no vuelve al comercio"
    assert ticket.articles_shown is None  # answered a question, offered nothing for this request
    assert events(assistant, chat) == ["answered"]


def test_a_question_outside_the_form_is_answered_with_the_two_buttons(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    replies = chat.say(QUESTION)
    text = chat.text(replies)
    assert "Gestión de archivos del Módulo administrativo" in text, chat.dump()
    assert chat.payloads(replies) == [HELPFUL, DECLINED]
    assert "ítem" not in text  # no request opened yet
    closing = chat.text(chat.say(HELPFUL))
    assert "Qué bueno que te sirvió" in closing, chat.dump()
    assert events(assistant, chat) == ["answered", "helpful"]
    assert assistant.store.list(conversation_id=chat.sender) == []


def test_sigo_after_a_question_opens_the_request_it_was_about(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say(QUESTION)
    opened = chat.text(chat.say("no, sigo con la solicitud"))
    assert "Gestión de archivos" in opened and "ítem" in opened, chat.dump()
    chat.say("Falla en el reporte de transacciones")
    chat.say("ana@empresa.com")
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.item == "Falla en el reporte de transacciones"
    assert "Gestión de archivos del Módulo administrativo" in (ticket.articles_shown or "")
    assert events(assistant, chat) == ["answered", "declined"]
