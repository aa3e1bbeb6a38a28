"""Rasa SDK adapter of «quiero hablar con una persona»: bot/dialogue/handoff.py decides, this runs it.

The action answers at any point: inside the ticket form a rule runs it and
resumes the form; outside, when it opens the catalog's handoff request (or
finds a request in course with its form closed), it activates the ticket
form itself, so the form asks what the request needs. ``clock`` is the
action's «now» (business hours are worded from it); tests pass a fixed one.

Registered in ``actions.actions.ACTIONS``, which imports this module at its
end: import ``actions.actions`` first (the action server and the composition
root do), as for actions/followup.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, List, Mapping

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType

from actions.actions import FORM_NAME, DialogueAction, Outcome, Services
from bot.dialogue import handoff
from bot.dialogue.turn import Turn
from bot.hours import utc_now


class ActionHumanHandoff(DialogueAction):
    """«Quiero hablar con una persona / con un asesor / con alguien», at any point of the conversation."""

    action_name = "action_human_handoff"

    def __init__(self, services: Services, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(services)
        self.clock = clock

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        return handoff.ask_for_person(turn, tracker.slots, tracker.events or [], s.catalog, s.handoff, self.clock())

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        # A handoff request opened, or the request in course outside its form: the form asks what it needs.
        form_active = (tracker.active_loop or {}).get("name") == FORM_NAME
        return [ActiveLoop(FORM_NAME)] if handoff.opens_form(updates) and not form_active else []
