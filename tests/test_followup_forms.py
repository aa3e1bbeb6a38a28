"""Rasa's own form machinery driving the real action server: the reply and CSAT forms, without a trained model.

The action server runs as the launcher runs it (``python -m bot.action_server``,
its own process, its own stores under a temporary data folder). Rasa's
``FormAction`` for the domain's forms calls it over HTTP exactly as the Rasa
server does, and what the form returns is logged on the tracker the way
Rasa's processor logs it (a form that rejected itself leaves no execution
behind). Rasa's RulePolicy, trained on the project's rules
(tests/rule_policy.py), then says what comes next.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any, Iterator, Optional

import pytest
from rasa.core.actions.action import ActionExecutionRejection, action_for_name_or_text
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    Event,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from actions.adapters import ticket_ref
from bot.rasa_ext import session_carry
from bot.settings import PROJECT_ROOT, Settings, quiet_rasa_env
from bot.thread import CsatBook, TicketThread, Update
from bot.thread.model import COMMENT, DONE, STATUS, TO_CUSTOMER
from bot.tickets import TicketStore
from bot.tickets.model import NewTicket, Ticket
from tests.conftest import free_port
from tests.rule_policy import CSAT, REPLY, Trained, next_action, train_rule_policy

TOKEN = "token-de-acciones-de-prueba"
CONV = "conv-formularios"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_rule_policy(tmp_path_factory.mktemp("reglas"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EndpointConfig, Settings]]:
    data = tmp_path_factory.mktemp("servidor-de-acciones")
    port = free_port()
    # Only what a process needs to run: a session's servers (tests/conftest.py) leave their settings in
    # os.environ, and this action server must not inherit them.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")}
    env = quiet_rasa_env(env)
    env.update({"BOT_DATA_DIR": str(data), "ACTIONS_PORT": str(port), "ACTIONS_TOKEN": TOKEN})
    with open(data / "acciones.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.action_server"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((data / "acciones.log").read_text(encoding="utf-8")[-3000:]) from None
                time.sleep(0.3)
        settings = Settings.from_env({"BOT_DATA_DIR": str(data)})
        yield EndpointConfig(f"http://127.0.0.1:{port}/webhook", token=TOKEN), settings
    finally:
        process.terminate()
        process.wait(timeout=20)


class Desk:
    def __init__(self, settings: Settings) -> None:
        self.store = TicketStore(settings.tickets_db_url, prefix="ECO")
        self.thread = TicketThread(settings.tickets_db_url)
        self.book = CsatBook(settings.tickets_db_url)

    def ticket(self) -> Ticket:
        new = NewTicket(
            category_id="modulo_administrativo",
            category="Módulo",
            request_type_id="gestion_archivos",
            request_type="Gestión de archivos",
            email="ana@empresa.com",
            channel="rest",
            conversation_id=CONV,
        )
        return self.store.create(new, f"formularios-{len(self.store.list()) + 1}")[0]

    def news(self, ticket: Ticket, update: Update) -> int:
        first = self.thread.record(update, ticket_ref(ticket))[0]
        while claimed := self.thread.claim_due(TO_CUSTOMER, "repartidor"):
            for message in claimed:
                assert self.thread.mark_delivered(message, "repartidor", "socket")
        return first.id

    def comments(self, key: str) -> list[str]:
        return [m.body for m in self.thread.messages(key) if m.direction == "desk" and m.kind == COMMENT]


@pytest.fixture
def desk(server: tuple[EndpointConfig, Settings]) -> Desk:
    return Desk(server[1])


def said(text: str, intent: str, message_id: str, entities: Optional[list[dict[str, Any]]] = None) -> UserUttered:
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.95}, "entities": entities or []}
    return UserUttered(text, parse["intent"], entities or [], parse, message_id=message_id, input_channel="rest")


def run_form(form: str, server: tuple[EndpointConfig, Settings], domain: Domain, events: list[Event]) -> list[Event]:
    """The form (or action) run by Rasa, and the events Rasa's processor logs for it."""
    tracker = DialogueStateTracker.from_events(CONV, events, slots=domain.slots)
    action = action_for_name_or_text(form, domain, server[0])
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    try:
        produced = asyncio.run(action.run(CollectingOutputChannel(), nlg, tracker, domain))
    except ActionExecutionRejection:
        return [ActionExecutionRejected(form)]
    if any(isinstance(e, ActionExecutionRejected) for e in produced):
        return list(produced)
    return [ActionExecuted(form), *produced]


def texts(events: list[Event]) -> str:
    return "\n".join(e.text or "" for e in events if isinstance(e, BotUttered))


def loop_of(events: list[Event], domain: Domain) -> Optional[str]:
    return DialogueStateTracker.from_events(CONV, events, slots=domain.slots).active_loop_name


def replying(desk: Desk, ticket: Ticket) -> list[Event]:
    since = desk.news(ticket, Update(ticket.key, f"c-{ticket.key}", COMMENT, "¿Nos envías el archivo?"))
    return [e if not (hasattr(e, "key") and e.key == "reply_since") else type(e)("reply_since", since) for e in REPLY]


def with_ticket(events: list[Event], ticket: Ticket) -> list[Event]:
    return [
        type(e)(e.key, ticket.key) if getattr(e, "key", "") in ("reply_ticket", "csat_ticket") else e for e in events
    ]


def test_a_forwarded_answer_keeps_the_form_and_a_button_of_another_flow_leaves_it(
    server: Any, trained: Any, desk: Desk
) -> None:
    _, domain = trained
    ticket = desk.ticket()
    opened = with_ticket(replying(desk, ticket), ticket)
    answer = opened + [said("se llama cartera.csv", "inform", "m-1")]
    forwarded = answer + run_form("reply_form", server, domain, answer)
    assert "Le pasé tu mensaje a quien atiende" in texts(forwarded) and desk.comments(ticket.key) == [
        "se llama cartera.csv"
    ]
    assert loop_of(forwarded, domain) == "reply_form" and next_action(trained, forwarded) == "action_listen"

    button = forwarded + [
        ActionExecuted("action_listen"),
        said('/choose_request_type{"request_type":"pago_en_linea"}', "choose_request_type", "m-2"),
    ]
    released = button + run_form("reply_form", server, domain, button)
    assert loop_of(released, domain) is None and texts(released) == texts(forwarded)
    assert next_action(trained, released) == "action_start_request"
    assert desk.comments(ticket.key) == ["se llama cartera.csv"]


def test_a_side_question_comes_back_to_the_form_and_nueva_solicitud_ends_it(
    server: Any, trained: Any, desk: Desk
) -> None:
    _, domain = trained
    ticket = desk.ticket()
    question = with_ticket(replying(desk, ticket), ticket) + [said("¿cómo va mi caso?", "check_status", "m-1")]
    rejected = question + run_form("reply_form", server, domain, question)
    assert next_action(trained, rejected) == "action_check_status"
    answered = rejected + [ActionExecuted("action_check_status")]
    assert next_action(trained, answered) == "reply_form"
    resumed = answered + run_form("reply_form", server, domain, answered)
    assert loop_of(resumed, domain) == "reply_form" and next_action(trained, resumed) == "action_listen"

    leaving = resumed + [ActionExecuted("action_listen"), said("nueva solicitud", "nlu_fallback", "m-2")]
    left = leaving + run_form("reply_form", server, domain, leaving)
    assert "¿Sobre qué quieres contactarnos?" in texts(left) and loop_of(left, domain) is None
    assert next_action(trained, left) == "action_listen" and desk.comments(ticket.key) == []


def test_the_survey_rates_takes_a_comment_and_ends(server: Any, trained: Any, desk: Desk) -> None:
    _, domain = trained
    ticket = desk.ticket()
    desk.news(ticket, Update(ticket.key, f"s-{ticket.key}", STATUS, "Resuelta", status_category=DONE))
    rating = with_ticket(CSAT, ticket) + [said("4", "nlu_fallback", "m-1")]
    rated = rating + run_form("csat_form", server, domain, rating)
    assert "¿Quieres contarnos por qué?" in texts(rated) and next_action(trained, rated) == "action_listen"
    comment = rated + [ActionExecuted("action_listen"), said("resolvieron rápido", "inform", "m-2")]
    done = comment + run_form("csat_form", server, domain, comment)
    assert loop_of(done, domain) is None and next_action(trained, done) == "action_listen"
    answer = desk.book.get(ticket.key)
    assert answer is not None and (answer.rating, answer.comment) == (4, "resolvieron rápido")


def test_a_rating_button_outside_the_form_opens_it(server: Any, trained: Any, desk: Desk) -> None:
    _, domain = trained
    ticket = desk.ticket()
    desk.news(ticket, Update(ticket.key, f"s-{ticket.key}", STATUS, "Resuelta", status_category=DONE))
    entities = [{"entity": "ticket", "value": ticket.key}, {"entity": "rating", "value": 5}]
    clicked = [ActionExecuted("action_listen"), said(f'/rate{{"ticket":"{ticket.key}"}}', "rate", "m-1", entities)]
    assert next_action(trained, clicked) == "csat_form"
    opened = clicked + run_form("csat_form", server, domain, clicked)
    assert loop_of(opened, domain) == "csat_form" and "¿Quieres contarnos por qué?" in texts(opened)
    assert next_action(trained, opened) == "action_listen"
    assert [e for e in opened if isinstance(e, ActiveLoop)][0].name == "csat_form"


def test_a_new_session_keeps_the_reply_form_open(server: Any, trained: Any, desk: Desk) -> None:
    _, domain = trained
    ticket = desk.ticket()
    opened = with_ticket(replying(desk, ticket), ticket)
    session_carry.install()  # as in every Rasa process (bot/rasa_ext/installer.py)
    start = action_for_name_or_text("action_session_start", domain, server[0])
    tracker = DialogueStateTracker.from_events(CONV, opened, slots=domain.slots)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    started = asyncio.run(start.run(CollectingOutputChannel(), nlg, tracker, domain))
    session = opened + [ActionExecuted("action_session_start"), *started]
    assert loop_of(session, domain) == "reply_form"
    answer = session + [said("perdón la demora: aquí está", "nlu_fallback", "m-1")]
    assert next_action(trained, answer) == "reply_form"
    forwarded = answer + run_form("reply_form", server, domain, answer)
    assert desk.comments(ticket.key) == ["perdón la demora: aquí está"] and "Le pasé" in texts(forwarded)


def test_a_rating_button_inside_the_ticket_form_rates_and_the_form_goes_on(
    server: Any, trained: Any, desk: Desk
) -> None:
    _, domain = trained
    ticket = desk.ticket()
    desk.news(ticket, Update(ticket.key, f"s-{ticket.key}", STATUS, "Resuelta", status_category=DONE))
    entities = [{"entity": "ticket", "value": ticket.key}, {"entity": "rating", "value": 3}]
    in_form = [
        ActionExecuted("action_listen"),
        said("no me carga el archivo de cartera", "gestion_archivos", "m-0"),
        ActionExecuted("action_start_request"),
        SlotSet("request_type", "gestion_archivos"),
        ActionExecuted("ticket_form"),
        ActiveLoop("ticket_form"),
        SlotSet("item", "falla_cargue_cartera"),
        SlotSet("requested_slot", "email"),
        ActionExecuted("action_listen"),
        said(f'/rate{{"ticket":"{ticket.key}","rating":3}}', "rate", "m-1", entities),
    ]
    rejected = in_form + run_form("ticket_form", server, domain, in_form)
    assert next_action(trained, rejected) == "action_csat_rate"
    rated = rejected + run_form("action_csat_rate", server, domain, rejected)
    assert "Sigamos con tu solicitud" in texts(rated)
    answer = desk.book.get(ticket.key)
    assert answer is not None and answer.rating == 3
    assert next_action(trained, rated) == "ticket_form"
    resumed = rated + run_form("ticket_form", server, domain, rated)
    assert "correo electrónico" in texts(resumed).splitlines()[-1] and loop_of(resumed, domain) == "ticket_form"
    assert next_action(trained, resumed) == "action_listen"
