"""The rules of the conversation after the ticket, checked with Rasa's own RulePolicy trained on the project's data.

The RulePolicy (tests/rule_policy.py) is asked what comes next in the
conversations the follow-up worker and the follow-up actions
(actions/followup.py) produce: the worker opening a form, a message
forwarded, a message handed back to the normal flow (the form ended and
rejected in one answer), a side question, a form that ends, a CSAT button
outside the form, a new session that keeps the form.
"""

from __future__ import annotations

from typing import Any

import pytest
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected, ActiveLoop, Event, SessionStarted, SlotSet

from tests.rule_policy import CSAT, LISTEN, RELEASED, REPLY, Trained, next_action, said, train_rule_policy


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_rule_policy(tmp_path_factory.mktemp("reglas"))


def test_the_open_form_reads_the_next_message_and_then_listens(trained: Any) -> None:
    asked = REPLY + said("ya se los mandé", "inform")
    assert next_action(trained, asked) == "reply_form"
    kept = asked + [ActionExecuted("reply_form"), SlotSet("reply_text", None), SlotSet("requested_slot", "reply_text")]
    assert next_action(trained, kept) == LISTEN
    assert next_action(trained, CSAT + said("5", "nlu_fallback")) == "csat_form"


@pytest.mark.parametrize(
    "intent, first, then",
    [
        ("choose_request_type", "action_start_request", "ticket_form"),
        ("greet", "action_greet", LISTEN),
        ("cancel", "action_cancel_request", LISTEN),
        ("check_status", "action_check_status", LISTEN),
        ("rate", "csat_form", LISTEN),
    ],
)
def test_a_released_message_is_handled_as_if_no_form_were_open(
    trained: Any, intent: str, first: str, then: str
) -> None:
    events = REPLY + said("…", intent) + RELEASED
    assert next_action(trained, events) == first
    after = events + [ActionExecuted(first)] + ([ActiveLoop(first)] if first.endswith("_form") else [])
    assert next_action(trained, after) == then


def test_a_side_question_is_answered_and_the_reply_form_comes_back(trained: Any) -> None:
    rejected = REPLY + said("¿cómo va mi caso?", "check_status") + [ActionExecutionRejected("reply_form")]
    assert next_action(trained, rejected) == "action_check_status"
    answered = rejected + [ActionExecuted("action_check_status")]
    assert next_action(trained, answered) == "reply_form"
    resumed = answered + [ActionExecuted("reply_form"), SlotSet("requested_slot", "reply_text")]
    assert next_action(trained, resumed) == LISTEN


@pytest.mark.parametrize("events", [REPLY, CSAT])
def test_when_a_form_ends_the_assistant_waits_for_the_customer(trained: Any, events: list[Event]) -> None:
    form = "reply_form" if events is REPLY else "csat_form"
    ended = events + said("menú", "menu") + [ActionExecuted(form), SlotSet("requested_slot", None), ActiveLoop(None)]
    assert next_action(trained, ended) == LISTEN


def test_a_csat_button_outside_the_form_opens_it_or_ends_at_once(trained: Any) -> None:
    clicked = [ActionExecuted(LISTEN), *said('/rate{"ticket":"ECO-000001","rating":4}', "rate")]
    assert next_action(trained, clicked) == "csat_form"
    asking = clicked + [ActionExecuted("csat_form"), ActiveLoop("csat_form"), SlotSet("requested_slot", "csat_comment")]
    assert next_action(trained, asking) == LISTEN
    refused = clicked + [ActionExecuted("csat_form"), ActiveLoop("csat_form"), SlotSet("requested_slot", None)]
    assert next_action(trained, refused + [ActiveLoop(None)]) == LISTEN


def test_a_new_session_that_kept_the_form_reads_the_answer_in_it(trained: Any) -> None:
    carried = REPLY + [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        SlotSet("reply_ticket", "ECO-000001"),
        ActiveLoop("reply_form"),
        SlotSet("requested_slot", "reply_text"),
        ActionExecuted(LISTEN),
        *said("perdón la demora, aquí está", "nlu_fallback"),
    ]
    assert next_action(trained, carried) == "reply_form"


def test_a_rating_button_inside_the_ticket_form_is_answered_and_the_form_goes_on(trained: Any) -> None:
    in_form = [
        ActionExecuted(LISTEN),
        *said("no me carga el archivo de cartera", "gestion_archivos"),
        ActionExecuted("action_start_request"),
        ActionExecuted("ticket_form"),
        ActiveLoop("ticket_form"),
        SlotSet("requested_slot", "email"),
        ActionExecuted(LISTEN),
        *said('/rate{"ticket":"ECO-000001","rating":3}', "rate"),
        ActionExecutionRejected("ticket_form"),
    ]
    assert next_action(trained, in_form) == "action_csat_rate"
    assert next_action(trained, in_form + [ActionExecuted("action_csat_rate")]) == "ticket_form"
