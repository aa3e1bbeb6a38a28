"""The follow-up actions (actions/followup.py) as the action server runs them, and what they answer Rasa's forms.

rasa_sdk's Tracker and CollectingDispatcher, the services built as the
action server builds them, over the real stores of tests/followup_desk.py.
The tracker's events end as Rasa sends them to a form's validation: the
customer's message, then the form's own (synthetic) execution.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Optional

import pytest
from rasa.core.actions.action import ActionSessionStart
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, Event, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as act
from actions.adapters import DeskThread, TicketDesk
from bot.catalog import Catalog
from bot.rasa_ext import session_carry
from bot.services import action_services
from bot.settings import PROJECT_ROOT, Settings
from bot.thread.model import COMMENT
from tests.followup_desk import CONV, Desk, make_desk, reply_slots


@pytest.fixture
def desk(tmp_path: Path, catalog: Catalog) -> Desk:
    return make_desk(tmp_path, catalog)


@pytest.fixture
def services(desk: Desk, catalog: Catalog) -> act.Services:
    return act.Services(catalog=catalog, tickets=TicketDesk(desk.store), attachments=desk.files, thread=desk.port)


def form_tracker(
    text: str,
    intent: str,
    form: str,
    slots: dict[str, Any],
    *,
    confidence: float = 0.95,
    entities: Optional[list[dict[str, Any]]] = None,
    handled_by: Optional[str] = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
        "message_id": "m-1",
    }
    events: list[dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest, "input_channel": "rest", "message_id": "m-1"},
    ]
    if handled_by:  # a rule answered the message before the form came back
        events.append({"event": "action", "name": handled_by})
    events += [
        {"event": "slot", "name": "requested_slot", "value": slots.get("requested_slot")},
        {"event": "action", "name": form},
    ]
    return Tracker(
        sender_id=CONV,
        slots=dict(slots),
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": form},
        latest_action_name=form,
    )


def run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {"session_config": {"carry_over_slots_to_new_session": True}}))
    return events, dispatcher.messages


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["event"], e.get("name")) for e in events]


def test_an_answer_is_forwarded_and_the_form_keeps_listening(desk: Desk, services: act.Services) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    events, messages = run(
        act.ValidateReplyForm(services), form_tracker("ya se los mandé", "inform", "reply_form", slots)
    )
    assert events[-2:] == [
        {"event": "slot", "name": "reply_text", "value": None, "timestamp": None},
        {"event": "slot", "name": "requested_slot", "value": "reply_text", "timestamp": None},
    ]
    assert [m["response"] for m in messages] == ["utter_reply_forwarded"]
    assert messages[0]["buttons"] == [{"title": "Nueva solicitud", "payload": "/menu"}]
    assert [m.body for m in desk.for_desk(ticket.key, COMMENT)] == ["ya se los mandé"]


def test_a_message_for_the_normal_flow_ends_the_form_and_rejects_it_in_one_answer(
    desk: Desk, services: act.Services
) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    button = '/choose_request_type{"request_type":"pago_en_linea"}'
    events, messages = run(
        act.ValidateReplyForm(services), form_tracker(button, "choose_request_type", "reply_form", slots)
    )
    assert kinds(events)[-3:] == [
        ("active_loop", None),
        ("slot", "requested_slot"),
        ("action_execution_rejected", "reply_form"),
    ]
    assert messages == [] and desk.for_desk(ticket.key) == []


def test_a_side_question_rejects_the_form_and_the_form_resumes_after_its_rule(
    desk: Desk, services: act.Services
) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    action = act.ValidateReplyForm(services)
    assert run(action, form_tracker("¿eres un bot?", "bot_challenge", "reply_form", slots)) == ([], [])
    resumed = form_tracker("¿eres un bot?", "bot_challenge", "reply_form", slots, handled_by="utter_iamabot")
    events, messages = run(action, resumed)
    assert events[-1] == {"event": "slot", "name": "requested_slot", "value": "reply_text", "timestamp": None}
    assert messages == [] and desk.for_desk(ticket.key) == []


def test_without_a_thread_the_message_goes_to_the_normal_flow(desk: Desk, catalog: Catalog) -> None:
    services = act.Services(catalog=catalog, tickets=TicketDesk(desk.store), attachments=desk.files)
    events, _ = run(act.ValidateReplyForm(services), form_tracker("hola", "greet", "reply_form", {"reply_ticket": "X"}))
    assert kinds(events)[-1] == ("action_execution_rejected", "reply_form")


def test_a_csat_button_rates_and_the_form_asks_for_the_comment(desk: Desk, services: act.Services) -> None:
    ticket = desk.ticket()
    desk.resolve(ticket)
    slots = {"csat_ticket": ticket.key, "requested_slot": "csat_rating"}
    payload = f'/rate{{"ticket":"{ticket.key}","rating":5}}'
    entities = [{"entity": "ticket", "value": ticket.key}, {"entity": "rating", "value": 5}]
    tracker = form_tracker(payload, "rate", "csat_form", slots, confidence=1.0, entities=entities)
    events, messages = run(act.ValidateCsatForm(services), tracker)
    values = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert values["csat_rating"] == 5 and values["requested_slot"] == "csat_comment"
    assert [m["response"] for m in messages] == ["utter_csat_ask_comment"]
    answer = desk.book.get(ticket.key)
    assert answer is not None and answer.rating == 5


def session_events(slots: dict[str, Any], active_loop: Optional[str]) -> list[tuple[str, Optional[str]]]:
    """Rasa's own session start, with bot/rasa_ext/session_carry.py installed, over a tracker in that state."""
    session_carry.install()
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    events: list[Event] = [SlotSet(name, value) for name, value in slots.items()]
    if active_loop:
        events.append(ActiveLoop(active_loop))
    tracker = DialogueStateTracker.from_events(CONV, events, slots=domain.slots)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    started = asyncio.run(ActionSessionStart().run(CollectingOutputChannel(), nlg, tracker, domain))
    return [
        (e.type_name, getattr(e, "key", None) or getattr(e, "name", None) or getattr(e, "action_name", None))
        for e in started
    ]


def test_a_new_session_keeps_the_reply_form_open() -> None:
    slots = {"reply_ticket": "ECO-000001", "reply_since": 7, "requested_slot": "reply_text"}
    events = session_events(slots, "reply_form")
    assert events[0] == ("session_started", None) and events[-1] == ("action", "action_listen")
    assert events[-3:] == [("active_loop", "reply_form"), ("slot", "requested_slot"), ("action", "action_listen")]


def test_a_new_session_drops_the_ticket_form_as_rasa_does() -> None:
    events = session_events({"request_type": "pago_en_linea", "requested_slot": "email"}, "ticket_form")
    assert ("active_loop", "ticket_form") not in events and events[-1] == ("action", "action_listen")


def test_the_action_server_gets_the_help_desk_thread(tmp_path: Path) -> None:
    services = action_services(Settings.from_env({"BOT_DATA_DIR": str(tmp_path)}))
    assert isinstance(services.thread, DeskThread)
    assert services.thread.reply_window.total_seconds() == services.catalog.reply_window_hours * 3600
    assert services.thread.waiting_statuses == services.catalog.waiting_statuses and not services.thread.to_jsm
    names = {type(a).__name__ for a in act.all_actions(services)}
    assert {"ValidateReplyForm", "ValidateCsatForm"} <= names
