"""END-TO-END: the conversation after the ticket, against the real action, Rasa and web servers.

These need a model trained with this issue's domain, rules and NLU (the
reply and CSAT forms, the ``rate`` intent, data/nlu/followup.yml): run them
after retraining (`make test` trains it).

The help desk's side is played here, the way the follow-up worker does it
(bot/followup): news recorded in the ticket's thread, claimed, worded by
bot/dialogue/notices.py and appended to the customer's Rasa conversation
through its HTTP API, then marked delivered. The tickets live on a channel
no worker sends to, so a running worker never takes these messages: what is
tested is what the customer's next message does.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import pytest

from bot.catalog import Catalog
from bot.dialogue import notices
from bot.thread import CsatBook, TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, CSAT, DONE, STATUS, TO_CUSTOMER
from bot.tickets.model import NewTicket, Ticket
from tests.conftest import Chat, RunningAssistant

pytestmark = pytest.mark.servers

CHANNEL = "prueba-e2e"  # no sender for it: only these tests deliver its messages


def rasa_api(assistant: RunningAssistant, chat: Chat, method: str, path: str = "", body: Any = None) -> Any:
    token = assistant.settings.secrets.rasa_api_token
    url = f"{assistant.base_url}/conversations/{chat.sender}/tracker{path}?token={token}"
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def open_ticket(assistant: RunningAssistant, chat: Chat) -> tuple[Ticket, TicketRef]:
    chat.say("hola")
    new = NewTicket(
        category_id="modulo_administrativo",
        category="Módulo",
        request_type_id="gestion_archivos",
        request_type="Gestión de archivos",
        email="ana@empresa.com",
        description="el archivo de cartera no carga desde ayer",
        channel=CHANNEL,
        conversation_id=chat.sender,
    )
    ticket = assistant.store.create(new, f"e2e-{uuid.uuid4().hex}")[0]
    ref = TicketRef(ticket.key, chat.sender, CHANNEL, ticket.request_type_id, ticket.request_type)
    return ticket, ref


def deliver(assistant: RunningAssistant, chat: Chat, catalog: Catalog) -> list[str]:
    """The worker's job for this conversation: each waiting message recorded in Rasa, then marked delivered."""
    thread = TicketThread(assistant.settings.tickets_db_url)
    kinds = []
    while claimed := thread.claim_due(TO_CUSTOMER, "prueba-e2e", channels=(CHANNEL,), conversation_id=chat.sender):
        for message in claimed:
            notice = notices.render(message, catalog.waiting_statuses)
            loop = (rasa_api(assistant, chat, "GET").get("active_loop") or {}).get("name")
            events = notices.tracker_events(message, notice, loop, catalog.waiting_statuses)
            rasa_api(assistant, chat, "POST", "/events", events)
            assert thread.mark_delivered(message, "prueba-e2e", "prueba")
            kinds.append(message.kind)
    return kinds


def agent_says(assistant: RunningAssistant, chat: Chat, ref: TicketRef, catalog: Catalog, body: str) -> None:
    thread = TicketThread(assistant.settings.tickets_db_url)
    thread.record(Update(ref.key, f"jsm-comment:{uuid.uuid4().hex}", COMMENT, body, author="Laura"), ref)
    assert deliver(assistant, chat, catalog) == [COMMENT]


def answers(assistant: RunningAssistant, key: str) -> list[str]:
    thread = TicketThread(assistant.settings.tickets_db_url)
    return [m.body for m in thread.messages(key) if m.direction == "desk" and m.kind == COMMENT]


def test_answers_reach_the_ticket_until_the_customer_asks_for_something_else(
    assistant: RunningAssistant, catalog: Catalog
) -> None:
    chat = assistant.chat()
    ticket, ref = open_ticket(assistant, chat)
    agent_says(assistant, chat, ref, catalog, "¿Nos envías el nombre del archivo que falla?")

    first = chat.text(chat.say("se llama cartera_diciembre.csv"))
    assert f"Le pasé tu mensaje a quien atiende {ref.title}" in first, chat.dump()
    again = chat.text(chat.say("lo subí a las 10 de la mañana"))
    assert "También se lo pasé" in again and "Le pasé tu mensaje" not in again, chat.dump()
    assert answers(assistant, ticket.key) == ["se llama cartera_diciembre.csv", "lo subí a las 10 de la mañana"]

    menu = chat.text(chat.say("nueva solicitud"))
    assert "¿Sobre qué quieres contactarnos?" in menu, chat.dump()
    opened = chat.text(chat.say("no me carga el archivo de cartera"))
    assert "correo" in opened and "Le pasé" not in opened, chat.dump()
    assert len(answers(assistant, ticket.key)) == 2


def test_words_that_read_as_a_new_request_are_asked_about(assistant: RunningAssistant, catalog: Catalog) -> None:
    chat = assistant.chat()
    ticket, ref = open_ticket(assistant, chat)
    agent_says(assistant, chat, ref, catalog, "¿Puedes probar de nuevo?")
    words = "el pse no me deja pagar, sale un error al volver al comercio"
    replies = chat.say(words)
    assert "¿Este mensaje es para quien atiende" in chat.text(replies), chat.dump()
    assert Chat.payloads(replies)[0] == "/affirm" and answers(assistant, ticket.key) == []
    sent = chat.text(chat.say("/affirm"))
    assert "Le pasé tu mensaje" in sent and answers(assistant, ticket.key) == [words], chat.dump()


def test_an_answer_hours_later_still_reaches_the_agent(assistant: RunningAssistant, catalog: Catalog) -> None:
    chat = assistant.chat()
    ticket, ref = open_ticket(assistant, chat)
    # The customer's last message was two hours ago: Rasa starts a new session with the next one.
    old = {"text": "gracias", "intent": {"name": "thanks", "confidence": 1.0}, "entities": []}
    rasa_api(assistant, chat, "POST", "/events", [{"event": "user", "text": "gracias", "parse_data": old,
                                                   "timestamp": time.time() - 7200}])  # fmt: skip
    agent_says(assistant, chat, ref, catalog, "¿Sigues teniendo el problema?")
    reply = chat.text(chat.say("sí, sigue igual que ayer"))
    assert "Le pasé tu mensaje" in reply and answers(assistant, ticket.key) == ["sí, sigue igual que ayer"], chat.dump()


def test_the_satisfaction_question_is_answered_in_the_chat(assistant: RunningAssistant, catalog: Catalog) -> None:
    chat = assistant.chat()
    ticket, ref = open_ticket(assistant, chat)
    thread = TicketThread(assistant.settings.tickets_db_url)
    thread.record(Update(ref.key, "jsm-status:1", STATUS, "Resuelta", status_category=DONE), ref)
    assert deliver(assistant, chat, catalog) == [STATUS, CSAT]

    asked = chat.text(chat.say("4"))
    assert "¿Quieres contarnos por qué?" in asked, chat.dump()
    done = chat.text(chat.say("resolvieron rápido"))
    assert "Gracias por contarnos" in done, chat.dump()
    answer = CsatBook(assistant.settings.tickets_db_url).get(ticket.key)
    assert answer is not None and (answer.rating, answer.comment) == (4, "resolvieron rápido")
    notes = [m.body for m in thread.messages(ticket.key) if m.direction == "desk" and m.kind == CSAT]
    assert len(notes) == 2 and "4 de 5" in notes[0]
    after = chat.text(chat.say("hola"))
    assert "Soporte ecollect" in after, chat.dump()  # the survey is over: the normal flow again


def test_a_forged_rating_button_from_another_conversation_rates_nothing(
    assistant: RunningAssistant, catalog: Catalog
) -> None:
    owner = assistant.chat()
    ticket, ref = open_ticket(assistant, owner)
    TicketThread(assistant.settings.tickets_db_url).record(
        Update(ref.key, "jsm-status:1", STATUS, "Resuelta", status_category=DONE), ref
    )
    deliver(assistant, owner, catalog)
    intruder = assistant.chat()
    refused = intruder.text(intruder.say(f'/rate{{"ticket":"{ticket.key}","rating":1}}'))
    assert "No tengo una encuesta pendiente" in refused, intruder.dump()
    answer = CsatBook(assistant.settings.tickets_db_url).get(ticket.key)
    assert answer is not None and answer.rating is None
    # The owner's buttons still work.
    rated = owner.text(owner.say(f'/rate{{"ticket":"{ticket.key}","rating":5}}'))
    assert "¿Quieres contarnos por qué?" in rated, owner.dump()
