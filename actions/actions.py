"""Rasa custom actions: thin adapters from the tracker to ``bot.dialogue``.

Each action builds a ``Turn`` from the tracker, calls one function of the
dialogue with the services it needs, sends its messages and returns its slot
updates. No decision is made here, so the logic is tested without an action
server.

The actions are built once, when the action server starts
(``bot/action_server.py``), with the process's ``Services``, and registered
as instances; rasa_sdk's scan of the package is not used (it would build
them without their services).
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.catalog import Catalog
from bot.dialogue import answers, articles, form, navigation, prompts, requests, status, submit
from bot.dialogue.ports import (
    AttachmentResolver,
    HandoffDesk,
    HelpDeskThread,
    Knowledge,
    LiveStatus,
    StatusMailer,
    TicketRepository,
)
from bot.dialogue.slots import FALLBACK_COUNT, REQUESTED_SLOT
from bot.dialogue.turn import Say, Turn

FORM_NAME = "ticket_form"


@dataclass(frozen=True)
class Services:
    """What the actions hand to the dialogue, built once per process when the action server starts.

    ``live`` is None unless JSM is the help desk; ``postman`` is None when mail is off.
    """

    catalog: Catalog
    tickets: TicketRepository
    attachments: AttachmentResolver
    live: Optional[LiveStatus] = None
    postman: Optional[StatusMailer] = None
    handoff: Optional[HandoffDesk] = None  # «quiero hablar con una persona»: the tickets to flag
    thread: Optional[HelpDeskThread] = None  # after the ticket: answers to the agent, CSAT (actions/followup.py)
    kb: Optional[Knowledge] = None  # the knowledge base's articles and their records (bot/dialogue/articles.py)


def turn_of(tracker: Tracker, attachments: AttachmentResolver) -> Turn:
    """The latest turn, with attachment references resolved against the store.

    Only this conversation's files resolve: an id seen elsewhere (another
    customer's upload) is dropped like a forged one.
    """
    turn = Turn.from_tracker(tracker.sender_id, tracker.latest_message or {}, tracker.events or [])
    references = turn.metadata.get("attachments")
    if not references:
        return turn
    metadata = {**turn.metadata, "attachments": attachments.resolve(references, owner=tracker.sender_id)}
    return dataclasses.replace(turn, metadata=metadata)


def say(dispatcher: CollectingDispatcher, says: Iterable[Say]) -> None:
    for message in says:
        buttons = [{"title": b.title, "payload": b.payload} for b in message.buttons]
        dispatcher.utter_message(response=message.response, buttons=buttons or None, **message.kwargs)


def slot_events(updates: Mapping[str, Any]) -> List[EventType]:
    return [SlotSet(key, value) for key, value in updates.items()]


class ServedAction(Action):
    """An action of this project: named by ``action_name``, built with the process's services."""

    action_name = ""

    def __init__(self, services: Services) -> None:
        self.services = services

    def name(self) -> Text:
        return self.action_name


class ValidateTicketForm(ServedAction):
    """The whole ticket form, run by ``bot.dialogue.form.step``: extraction, validation and the next question.

    A plain ``Action`` answering Rasa's form (``rasa/core/actions/forms.py``),
    which calls ``validate_ticket_form`` on every form turn and reads what it
    returns. The contract, in one place:

    - What Rasa sends: the tracker's events up to a synthetic
      ``ActionExecuted(ticket_form)``, then ``SlotSet`` candidates (slots
      filled before activation, or by ``action_extract_slots`` since the user
      message). ``Turn.from_tracker`` reads from those events whether the
      message opened the request (``action_start_request`` ran after it),
      answers the form's question, or was already handled by a rule before
      the form resumed (``bot.dialogue.turn.turn_mode``).
    - No events: the message is no answer (cancel, a side question). Having
      extracted and validated nothing for the requested slot, Rasa rejects
      the form for this turn (``ActionExecutionRejection``) and the policies
      pick a rule; the form runs again afterwards, as a resumed turn.
    - Otherwise: a ``SlotSet`` for every slot filled, normalised or emptied,
      plus ``SlotSet("requested_slot", next)``. Rasa asks nothing itself
      (there are no ``utter_ask_*`` responses nor ``action_ask_*`` actions):
      the question is among this action's messages, so a form turn costs one
      call to the action server. ``requested_slot`` None ends the form and
      the rules create the ticket.

    Rasa SDK's ``FormValidationAction`` hooks (``required_slots``,
    ``validate_<slot>``) are deliberately not used: the catalog decides the
    slots per request type and the form reads the whole message at once.
    """

    action_name = f"validate_{FORM_NAME}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        catalog, files, kb = self.services.catalog, self.services.attachments, self.services.kb
        turn, candidates = turn_of(tracker, files), tracker.slots_to_validate()
        # The knowledge base may take seconds (JSM): off the event loop, as the status lookup.
        step = await asyncio.get_running_loop().run_in_executor(
            None, form.step, turn, tracker.slots, catalog, candidates, files, kb
        )
        if step.reject:
            return []  # not an answer: Rasa rejects the form and a rule takes the turn
        say(dispatcher, prompts.step_messages(step, tracker.slots, catalog))
        return slot_events(step.updates) + [SlotSet(REQUESTED_SLOT, step.next_slot)]


Outcome = Tuple[Mapping[str, Any], List[Say]]


class DialogueAction(ServedAction, ABC):
    """An action whose whole behaviour is one ``bot.dialogue`` call.

    Subclasses name the action and implement ``respond``; running it sends the
    messages and returns the slot updates. ``blocking``: ``respond`` may wait
    on a service (the knowledge base), so it runs on a worker thread.
    """

    blocking = False

    @abstractmethod
    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        """Slot updates and messages for this turn."""

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        return []

    async def outcome(self, tracker: Tracker) -> Outcome:
        turn = turn_of(tracker, self.services.attachments)
        if self.blocking and self.services.kb is not None:
            return await asyncio.get_running_loop().run_in_executor(None, self.respond, turn, tracker)
        return self.respond(turn, tracker)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        updates, says = await self.outcome(tracker)
        say(dispatcher, says)
        return slot_events(updates) + self.extra_events(tracker, updates)


class ActionStartRequest(DialogueAction):
    action_name = "action_start_request"
    blocking = True

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        catalog = self.services.catalog
        if turn.intent != "affirm":  # «sí» accepts an offer; words asking how or what are a question
            found = answers.answer_question(
                turn, catalog, self.services.kb, catalog.request_type_for_intent(turn.intent)
            )
            if found is not None:
                return found
        return requests.start_request(turn, tracker.slots, catalog)

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        # A question answered with articles opens no form: the rule's next step is skipped, the customer is waited for.
        return [FollowupAction("action_listen")] if answers.answered(updates) else []


class ActionRedirectRetired(DialogueAction):
    action_name = "action_redirect_retired"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.offer_redirect(turn, self.services.catalog)


def _opened(updates: Mapping[str, Any]) -> List[EventType]:
    """«No, sigo con la solicitud» to articles: the request the question was about opens its form."""
    return [ActiveLoop(FORM_NAME)] if answers.opens_request(updates) else []


class ActionDeclineOffer(DialogueAction):
    action_name = "action_decline_offer"
    blocking = True

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        unclear = requests.not_a_yes_or_no(turn, tracker.slots, s.catalog)  # «asdf» read as «no»
        declined = unclear or answers.verdict(turn, tracker.slots, s.catalog, s.kb, articles.DECLINED)
        return declined or requests.decline_offer(tracker.slots, s.catalog)

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        return _opened(updates)


class ActionKbFeedback(DialogueAction):
    """«Sí» (or a verdict button) outside a form: «me sirvió» to articles shown, else «¿algo más?»."""

    action_name = "action_kb_feedback"
    blocking = True

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        unclear = requests.not_a_yes_or_no(turn, tracker.slots, s.catalog)  # «xyz» read as «sí»
        given = articles.read_verdict(turn) or articles.HELPFUL  # a plain «sí» to articles: they helped
        found = unclear or answers.verdict(turn, tracker.slots, s.catalog, s.kb, given)
        return found or ({}, [Say("utter_anything_else")])

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        return _opened(updates)


def _form_active(tracker: Tracker) -> bool:
    return (tracker.active_loop or {}).get("name") == FORM_NAME


class ActionCancelRequest(DialogueAction):
    action_name = "action_cancel_request"
    blocking = True

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        # «Sigo con la solicitud» reads as «cancel» to the NLU: after articles it means go on.
        declined = None if _form_active(tracker) else answers.verdict(turn, tracker.slots, s.catalog, s.kb)
        return declined or requests.cancel(tracker.slots, _form_active(tracker), s.catalog)

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        return [ActiveLoop(None)] if _form_active(tracker) else _opened(updates)


class ActionCreateTicket(DialogueAction):
    action_name = "action_create_ticket"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        return submit.submit(tracker.slots, turn, s.catalog, s.tickets, s.attachments, s.handoff, tracker.events or [])

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        # A refused ticket sends the request back to the form, which asks the refused field.
        return [ActiveLoop(FORM_NAME)] if submit.reopens_form(updates) else []


class ActionCheckStatus(DialogueAction):
    action_name = "action_check_status"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        return status.status_lookup(turn, tracker.slots, s.catalog, s.tickets, s.live, s.postman)

    async def outcome(self, tracker: Tracker) -> Outcome:
        # The status may come live from JSM (seconds): off the event loop, so
        # other customers' actions are not held up meanwhile. Status mails go
        # on the mail threads (the postman), never delaying the answer.
        turn = turn_of(tracker, self.services.attachments)
        return await asyncio.get_running_loop().run_in_executor(None, self.respond, turn, tracker)


class ActionGreet(DialogueAction):
    action_name = "action_greet"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.greet(self.services.catalog)


class ActionShowMenu(DialogueAction):
    action_name = "action_show_menu"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {FALLBACK_COUNT: 0}, navigation.categories_menu(self.services.catalog)


class ActionChooseCategory(DialogueAction):
    action_name = "action_choose_category"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.choose_category(turn, self.services.catalog)


class ActionSuggestRequestTypes(DialogueAction):
    action_name = "action_suggest_request_types"
    blocking = True

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s, slots = self.services, tracker.slots
        # «me sirvió» after articles, or a question the NLU could not place: the base before the suggestions.
        found = answers.verdict(turn, slots, s.catalog, s.kb) or answers.answer_question(turn, s.catalog, s.kb)
        return found or requests.low_confidence(turn, slots, s.catalog)

    def extra_events(self, tracker: Tracker, updates: Mapping[str, Any]) -> List[EventType]:
        return _opened(updates)


class ActionOther(DialogueAction):
    action_name = "action_other"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.other(self.services.catalog)


class ActionExplainRequestType(DialogueAction):
    action_name = "action_explain_request_type"
    blocking = True

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        s = self.services
        return answers.explain_or_answer(turn, tracker.slots, s.catalog, s.kb, _form_active(tracker))


class ActionFormHelp(DialogueAction):
    action_name = "action_form_help"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return {}, navigation.form_help(tracker.slots, self.services.catalog)


class ActionContactOutsideForm(DialogueAction):
    """Data given with no request open. An e-mail here is contact data, never
    proof that a ticket is the customer's (see bot.dialogue.status)."""

    action_name = "action_contact_outside_form"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.contact_outside_form(turn, tracker.slots, self.services.catalog)


class ActionReceiveAttachment(DialogueAction):
    action_name = "action_receive_attachment"

    def respond(self, turn: Turn, tracker: Tracker) -> Outcome:
        return requests.receive_attachment(turn, tracker.slots, self.services.catalog)


# The follow-up actions build on ServedAction and turn_of above, so they are imported after them.
from actions.followup import (  # noqa: E402  # import cycle
    ActionRateInForm,
    ValidateCsatForm,
    ValidateReplyForm,
)
from actions.handoff import ActionHumanHandoff  # noqa: E402  # import cycle, likewise

# Every action the domain declares (tests/test_consistency.py checks both lists agree).
ACTIONS: tuple[type[ServedAction], ...] = (
    ValidateTicketForm,
    ActionStartRequest,
    ActionRedirectRetired,
    ActionDeclineOffer,
    ActionKbFeedback,
    ActionCancelRequest,
    ActionCreateTicket,
    ActionCheckStatus,
    ActionGreet,
    ActionShowMenu,
    ActionChooseCategory,
    ActionSuggestRequestTypes,
    ActionOther,
    ActionExplainRequestType,
    ActionFormHelp,
    ActionContactOutsideForm,
    ActionReceiveAttachment,
    ActionHumanHandoff,
    ValidateReplyForm,
    ValidateCsatForm,
    ActionRateInForm,
)


def all_actions(services: Services) -> list[ServedAction]:
    """One instance of every action, sharing the process's services."""
    return [cls(services) for cls in ACTIONS]


def _registered() -> Dict[str, type]:
    """Every action class by name; used by tests to check the domain lists them all."""
    return {cls.action_name: cls for cls in ACTIONS}
