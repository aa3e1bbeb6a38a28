"""Rasa SDK adapters of the conversation after the ticket: the reply and CSAT forms, a rating inside the
ticket form, and the session start that keeps an open reply or CSAT form.

The decisions are in bot/dialogue/followup.py (reply mode) and
bot/dialogue/survey.py (CSAT); these actions turn their ``Step`` into the
events Rasa's form machinery reads (rasa/core/actions/forms.py):

- a step that keeps the form: the slot updates, ``SlotSet(<idle slot>,
  None)`` (the requested slot stays empty, and a validated slot tells Rasa
  the message was read), and ``SlotSet("requested_slot", next)``; next None
  ends the form and a rule waits for the customer;
- ``reject``: no events, so Rasa rejects the form and a rule answers;
- ``release``: the slot updates, ``ActiveLoop(None)`` and the form's own
  ``ActionExecutionRejected``. Rasa keeps the events but logs no execution
  of the form, so it predicts again from the customer's message with no
  form open: the normal flow handles it.

The thread is read and written on the database (blocking): off the event
loop, as the status lookup does. These classes are registered in
``actions.actions.ACTIONS``, which imports this module at its end: import
``actions.actions`` first (the action server and the composition root do).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import List

from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecutionRejected, ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.actions import ServedAction, say, slot_events, turn_of
from bot.dialogue import followup, survey
from bot.dialogue.followup import CSAT_COMMENT, Step
from bot.dialogue.notices import CSAT_FORM, REPLY_FORM, REPLY_TEXT
from bot.dialogue.slots import REQUESTED_SLOT
from bot.dialogue.turn import Say, Turn


class FollowupFormValidation(ServedAction, ABC):
    """The validation action of one of the follow-up forms (module docstring)."""

    form_name = ""
    idle_slot = ""  # the form's requested slot that the answers never fill

    @abstractmethod
    def step(self, turn: Turn, tracker: Tracker) -> Step:
        """This turn's decision, from bot.dialogue."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        turn = turn_of(tracker, self.services.attachments)
        step = await asyncio.get_running_loop().run_in_executor(None, self.step, turn, tracker)
        if step.reject:
            return []
        say(dispatcher, step.says)
        events = slot_events(step.updates)
        if step.release:
            return events + [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None), ActionExecutionRejected(self.form_name)]
        return events + [SlotSet(self.idle_slot, None), SlotSet(REQUESTED_SLOT, step.next_slot)]


class ValidateReplyForm(FollowupFormValidation):
    """While an agent waits for the customer: their messages go to the ticket (bot/dialogue/followup.py)."""

    action_name = f"validate_{REPLY_FORM}"
    form_name = REPLY_FORM
    idle_slot = REPLY_TEXT

    def step(self, turn: Turn, tracker: Tracker) -> Step:
        s = self.services
        if s.thread is None:  # no help desk thread in this process: nothing can be forwarded
            return Step(release=True)
        return followup.reply_step(turn, tracker.slots, s.thread, s.catalog, s.attachments)


class ValidateCsatForm(FollowupFormValidation):
    """The satisfaction question: a rating, then an optional comment (bot/dialogue/survey.py)."""

    action_name = f"validate_{CSAT_FORM}"
    form_name = CSAT_FORM
    idle_slot = CSAT_COMMENT

    def step(self, turn: Turn, tracker: Tracker) -> Step:
        s = self.services
        if s.thread is None:
            return Step(release=True)
        return survey.csat_step(turn, tracker.slots, s.thread, s.catalog)


class ActionRateInForm(ServedAction):
    """A CSAT button of an earlier ticket pressed inside the ticket form: rated at once; its rule resumes the form."""

    action_name = "action_csat_rate"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        s = self.services
        if s.thread is None:
            say(dispatcher, [Say("utter_csat_unavailable")])
            return []
        turn = turn_of(tracker, s.attachments)
        step = await asyncio.get_running_loop().run_in_executor(None, survey.rate_in_form, turn, s.thread, s.catalog)
        say(dispatcher, step.says)
        return slot_events(step.updates)
