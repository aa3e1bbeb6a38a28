"""Rasa custom actions: thin adapters from the tracker to ``bot.dialogue``.

Each action builds a ``Turn`` from the tracker, calls one function of the bot
package, sends its messages and returns its slot updates. No decision is made
here, so the logic is tested without an action server.
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Mapping, Text, Tuple

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.attachments import AttachmentStore
from bot.catalog import get_catalog
from bot.dialogue import form, navigation, prompts, requests, status, submit
from bot.dialogue.turn import Say, Turn
from bot.tickets import TicketStore

FORM_NAME = "ticket_form"


@lru_cache(maxsize=1)
def ticket_store() -> TicketStore:
    return TicketStore.from_settings()


@lru_cache(maxsize=1)
def attachment_store() -> AttachmentStore:
    return AttachmentStore.from_settings()


def turn_of(tracker: Tracker) -> Turn:
    """The latest turn, with attachment references resolved against the store.

    Only this conversation's files resolve: an id seen elsewhere (another
    customer's upload) is dropped like a forged one.
    """
    turn = Turn.from_tracker(tracker.sender_id, tracker.latest_message or {}, tracker.events or [])
    references = turn.metadata.get("attachments")
    if not references:
        return turn
    metadata = {**turn.metadata, "attachments": attachment_store().resolve(references, owner=tracker.sender_id)}
    return dataclasses.replace(turn, metadata=metadata)


def say(dispatcher: CollectingDispatcher, says: Iterable[Say]) -> None:
    for message in says:
        buttons = [{"title": b.title, "payload": b.payload} for b in message.buttons]
        dispatcher.utter_message(response=message.response, buttons=buttons or None, **message.kwargs)


def slot_events(updates: Mapping[str, Any]) -> List[EventType]:
    return [SlotSet(key, value) for key, value in updates.items()]


class ValidateTicketForm(FormValidationAction):
    """Runs ``bot.dialogue.form.step``: extraction, validation and the next question.

    The question is sent here too, so a form turn costs Rasa one call to the
    action server (there are no ``action_ask_*`` actions).
    """

    def name(self) -> Text:
        return f"validate_{FORM_NAME}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        catalog = get_catalog()
        step = form.step(turn_of(tracker), tracker.slots, catalog, tracker.slots_to_validate(), attachment_store())
        if step.reject:
            return []  # not an answer: Rasa rejects the form and a rule takes the turn
        say(dispatcher, prompts.step_messages(step, tracker.slots, catalog))
        return slot_events(step.updates) + [SlotSet("requested_slot", step.next_slot)]


Outcome = Tuple[Mapping[str, Any], List[Say]]


class DialogueAction(Action, ABC):
    """An action whose whole behaviour is one ``bot.dialogue`` call.

    Subclasses name the action and implement ``respond``; running it sends the
    messages and returns the slot updates.
    """

    action_name = ""

    def name(self) -> Text:
        return self.action_name

    @abstractmethod
    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        """Slot updates and messages for this turn."""

    def extra_events(self, tracker: Tracker) -> List[EventType]:
        return []

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        updates, says = self.respond(turn_of(tracker), tracker)
        say(dispatcher, says)
        return slot_events(updates) + self.extra_events(tracker)


class ActionStartRequest(DialogueAction):
    action_name = "action_start_request"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.start_request(turn, tracker.slots, get_catalog())


class ActionRedirectRetired(DialogueAction):
    action_name = "action_redirect_retired"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.offer_redirect(turn, get_catalog())


class ActionDeclineOffer(DialogueAction):
    action_name = "action_decline_offer"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.decline_offer(tracker.slots, get_catalog())


def _form_active(tracker: Tracker) -> bool:
    return (tracker.active_loop or {}).get("name") == FORM_NAME


class ActionCancelRequest(DialogueAction):
    action_name = "action_cancel_request"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.cancel(tracker.slots, _form_active(tracker), get_catalog())

    def extra_events(self, tracker: Tracker) -> List[EventType]:
        return [ActiveLoop(None)] if _form_active(tracker) else []


class ActionCreateTicket(DialogueAction):
    action_name = "action_create_ticket"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return submit.submit(tracker.slots, turn, get_catalog(), ticket_store(), attachment_store())

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        updates, says = self.respond(turn_of(tracker), tracker)
        say(dispatcher, says)
        # A refused ticket sends the request back to the form, which asks the refused field.
        return slot_events(updates) + ([ActiveLoop(FORM_NAME)] if submit.reopens_form(updates) else [])


class ActionCheckStatus(DialogueAction):
    action_name = "action_check_status"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return status.status_lookup(turn, tracker.slots, get_catalog(), ticket_store())

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        # The status may come live from JSM (seconds): off the event loop, so
        # other customers' actions are not held up meanwhile. Status mails go
        # on the mail threads (bot.mail.Postman), never delaying the answer.
        updates, says = await asyncio.get_running_loop().run_in_executor(None, self.respond, turn_of(tracker), tracker)
        say(dispatcher, says)
        return slot_events(updates)


class ActionGreet(DialogueAction):
    action_name = "action_greet"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.greet(get_catalog())


class ActionShowMenu(DialogueAction):
    action_name = "action_show_menu"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {"fallback_count": 0}, navigation.categories_menu(get_catalog())


class ActionChooseCategory(DialogueAction):
    action_name = "action_choose_category"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.choose_category(turn, get_catalog())


class ActionSuggestRequestTypes(DialogueAction):
    action_name = "action_suggest_request_types"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.low_confidence(turn, tracker.slots, get_catalog())


class ActionOther(DialogueAction):
    action_name = "action_other"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.other(get_catalog())


class ActionExplainRequestType(DialogueAction):
    action_name = "action_explain_request_type"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.explain(turn, get_catalog())


class ActionFormHelp(DialogueAction):
    action_name = "action_form_help"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.form_help(tracker.slots, get_catalog())


class ActionContactOutsideForm(DialogueAction):
    """Data given with no request open. An e-mail here is contact data, never
    proof that a ticket is the customer's (see bot.dialogue.status)."""

    action_name = "action_contact_outside_form"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.contact_outside_form(turn, tracker.slots, get_catalog())


class ActionReceiveAttachment(DialogueAction):
    action_name = "action_receive_attachment"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.receive_attachment(turn, tracker.slots, get_catalog())


def _registered() -> Dict[str, type]:
    """Every action class by name; used by tests to check the domain lists them all."""
    found: Dict[str, type] = {}
    pending: list[type] = [Action]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if cls.__module__ == __name__ and cls is not DialogueAction:
                found[cls().name()] = cls
    return found
