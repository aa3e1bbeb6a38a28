"""How the intake form went in one conversation: questions asked and answered, refusals, effort, understanding.

Leads ask where customers give up and why (issue 15). The answers are in the
events the assistant writes: the form's ``requested_slot`` says which
question was asked, the field slots carry the valid answers, the
``utter_invalid_*`` responses name the refusal and its reason, the
``confirmation`` slot the «sí» to the summary, ``ticket_key`` the ticket.
``IntakeTracker`` reads them in order, once per conversation, when the review
index refreshes it; the pages then only add up rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from bot.dialogue.slots import (
    ATTACHMENT,
    CONFIRMATION,
    CONFIRMED,
    CORRECTION_FIELD,
    COUNTRY,
    DESCRIPTION,
    EMAIL,
    ITEM,
    KB_ANSWER,
    PHONE,
    PHONE_COUNTRY,
    REQUEST_TYPE,
    REQUESTED_SLOT,
    TICKET_KEY,
    empty,
)
from bot.privacy import mask_for_log
from bot.review.metrics_model import SUMMARY as SUMMARY_STEP
from bot.validation import country_of_e164

# The catalog's field slots (a valid value set for one is an answer) and the form's own questions.
FIELD_SLOTS = (ITEM, DESCRIPTION, EMAIL, PHONE, ATTACHMENT)
QUESTIONS = (ITEM, DESCRIPTION, KB_ANSWER, EMAIL, PHONE, PHONE_COUNTRY, ATTACHMENT)  # the funnel's order
# Requested slots that are not questions of the form: the summary and the field to correct.
NOT_QUESTIONS = frozenset({CONFIRMATION, CORRECTION_FIELD})
MISSED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
# A customer turn whose intent the NLU chose with less than this is «baja confianza»: above the
# FallbackClassifier's 0.5 (below it the turn is a fallback already) the model still hesitated.
UNSURE_BELOW = 0.7
SUGGESTIONS_ACTION = "action_suggest_request_types"
HANDOFF_ACTION = "action_human_handoff"
OTHER_PICK = "otra"  # «Otra cosa» among the suggestions
WIDGET_GREETING = "/greet"  # sent by the web chat when it opens: no effort of the customer
EXAMPLE_CHARS = 200
WHATSAPP_PREFIX = "whatsapp:"

# Refusals the dialogue words with ``utter_invalid_<question>_<reason>`` (or ``utter_invalid_<question>``),
# or ``utter_ticket_refused_<field>`` when a confirmed request fails validation on its way to a ticket.
REFUSED_AT_SUBMIT = "al_enviar"
NOT_UNDERSTOOD = "no_entendida"
_INVALID_PREFIX = "utter_invalid_"
_SUBMIT_PREFIX = "utter_ticket_refused_"
_QUESTION_OF_UTTER = {"phone_country": PHONE_COUNTRY, "item": ITEM, "email": EMAIL, "phone": PHONE}
_UNDERSTOOD_UTTER = "utter_answer_not_understood"


def iso_week(moment: datetime, zone: ZoneInfo) -> str:
    """«2026-W48»: the ISO week of ``moment`` on the team's clock."""
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def refusal_of(utter: str) -> Optional[tuple[str, str]]:
    """(question, reason) a refusal response names, None for any other response."""
    if utter.startswith(_SUBMIT_PREFIX):
        question = utter[len(_SUBMIT_PREFIX) :]
        return (PHONE_COUNTRY if question == COUNTRY else question), REFUSED_AT_SUBMIT
    if not utter.startswith(_INVALID_PREFIX):
        return None
    rest = utter[len(_INVALID_PREFIX) :]
    if rest in _QUESTION_OF_UTTER:
        return _QUESTION_OF_UTTER[rest], "invalid"
    for question in (EMAIL, PHONE, DESCRIPTION):
        if rest.startswith(question + "_"):
            return question, rest[len(question) + 1 :]
    return None  # utter_invalid_correction_field: the summary's menu, not a question


@dataclass
class RequestFacts:
    """One request type reached in the conversation (reached again later: the same facts, merged)."""

    request_type: str
    asked: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    last_question: Optional[str] = None
    summary: bool = False
    confirmed: bool = False
    ticket: bool = False


@dataclass
class Refusal:
    request_type: Optional[str]
    question: str
    reason: str
    text: str  # the customer's refused answer, masked
    at: Optional[datetime]


@dataclass
class TurnCounts:
    """Customer turns of one ISO week: understood, low confidence, fallback (they add up to ``turns``)."""

    turns: int = 0
    understood: int = 0
    low_confidence: int = 0
    fallback: int = 0


@dataclass
class IntakeFacts:
    requests: dict[str, RequestFacts] = field(default_factory=dict)  # by request type, in order reached
    refusals: list[Refusal] = field(default_factory=list)
    picks: list[str] = field(default_factory=list)  # request types picked among suggestions ("otra": none)
    weeks: dict[str, TurnCounts] = field(default_factory=dict)
    country: Optional[str] = None
    handoff: bool = False
    ticket_type: Optional[str] = None  # the request type of the first ticket
    ticket_turns: Optional[int] = None  # customer messages up to the first ticket
    ticket_seconds: Optional[float] = None  # from the first customer message to the first ticket
    repeated_before_ticket: bool = False  # a question asked in two turns before the first ticket (or so far)


class IntakeTracker:
    """Reads a conversation's events in order (``summarize`` feeds it) into ``IntakeFacts``."""

    def __init__(self, sender_id: str, zone: ZoneInfo) -> None:
        self.sender_id = sender_id
        self.zone = zone
        self.facts = IntakeFacts()
        self._slots: dict[str, Any] = {}
        self._current: Optional[RequestFacts] = None
        self._requested: Optional[str] = None
        self._messages = 0  # customer messages, clicks included
        self._first_message: Optional[datetime] = None
        self._last_text = ""
        self._asked_in_turn: dict[str, set[int]] = {}
        self._suggested = False

    # ------------------------------------------------------------- events
    def user(self, text: str, intent: Optional[str], confidence: Any, when: Optional[datetime]) -> None:
        if text != WIDGET_GREETING:
            self._messages += 1
            if when is not None and self._first_message is None:
                self._first_message = when
        self._last_text = text
        if self._suggested:
            self._suggested = False
            self._picked(text)
        if text.startswith("/") or when is None:
            return
        counts = self.facts.weeks.setdefault(iso_week(when, self.zone), TurnCounts())
        counts.turns += 1
        if intent in MISSED_INTENTS:
            counts.fallback += 1
        elif float(confidence or 0) < UNSURE_BELOW:
            counts.low_confidence += 1
        else:
            counts.understood += 1

    def slot(self, name: Optional[str], value: Any, when: Optional[datetime]) -> None:
        if name is None:
            return
        self._slots[name] = value
        current = self._current
        if name == REQUEST_TYPE:
            if not empty(value):
                self._start(str(value))
        elif name == REQUESTED_SLOT:
            self._requested = None if empty(value) else str(value)
            if current is not None and self._requested is not None:
                self._ask(current, self._requested)
        elif name == TICKET_KEY and not empty(value):
            self._ticket(when)
        elif name == CONFIRMATION and value == CONFIRMED and current is not None:
            current.confirmed = True
        elif current is not None and name in FIELD_SLOTS and not empty(value):
            current.answered.add(name)
            if name == PHONE and PHONE_COUNTRY in current.asked:
                current.answered.add(PHONE_COUNTRY)
        elif current is not None and name == KB_ANSWER and not empty(value):
            current.answered.add(KB_ANSWER)

    def bot(self, utter: Optional[str], when: Optional[datetime]) -> None:
        if not utter:
            return
        if utter == "utter_question_confirmation" and self._current is not None:
            self._current.summary = True
        refused = refusal_of(utter)
        if refused is None and utter == _UNDERSTOOD_UTTER and self._requested not in (None, *NOT_QUESTIONS):
            refused = (str(self._requested), NOT_UNDERSTOOD)
        if refused is not None:
            text = mask_for_log(" ".join(self._last_text.split()))[:EXAMPLE_CHARS]
            request_type = self._current.request_type if self._current else None
            self.facts.refusals.append(Refusal(request_type, refused[0], refused[1], text, when))

    def action(self, name: Optional[str]) -> None:
        if name == SUGGESTIONS_ACTION:
            self._suggested = True
        elif name == HANDOFF_ACTION:
            self.facts.handoff = True

    def finish(self) -> IntakeFacts:
        facts = self.facts
        facts.country = self._country()
        if facts.ticket_type is None:
            facts.repeated_before_ticket = self._repeated()
        return facts

    # ------------------------------------------------------------ helpers
    def _start(self, request_type: str) -> None:
        if self._current is not None and self._current.request_type == request_type:
            return
        facts = self.facts.requests.setdefault(request_type, RequestFacts(request_type))
        # Kept from before (contact data, the opening message's words) counts as answered.
        facts.answered.update(name for name in FIELD_SLOTS if not empty(self._slots.get(name)))
        self._current = facts

    def _ask(self, current: RequestFacts, requested: str) -> None:
        if requested == CONFIRMATION:
            current.summary = True
            # The summary is the last step asked until a question comes again (a correction): a customer who leaves
            # at the summary stopped there, not at the question before it.
            current.last_question = SUMMARY_STEP
            return
        if requested in NOT_QUESTIONS:
            return
        current.asked.add(requested)
        current.last_question = requested
        self._asked_in_turn.setdefault(requested, set()).add(self._messages)

    def _ticket(self, when: Optional[datetime]) -> None:
        if self._current is not None:
            self._current.ticket = True
        facts = self.facts
        if facts.ticket_type is not None:
            return
        facts.ticket_type = self._current.request_type if self._current else None
        facts.ticket_turns = self._messages
        if when is not None and self._first_message is not None:
            facts.ticket_seconds = max(0.0, (when - self._first_message).total_seconds())
        facts.repeated_before_ticket = self._repeated()

    def _repeated(self) -> bool:
        return any(len(turns) > 1 for turns in self._asked_in_turn.values())

    def _picked(self, text: str) -> None:
        if text.startswith("/other"):
            self.facts.picks.append(OTHER_PICK)
            return
        if not text.startswith("/choose_request_type"):
            return  # typed words: no button picked
        try:
            entities = json.loads(text[len("/choose_request_type") :] or "{}")
        except ValueError:
            return
        picked = entities.get("request_type") if isinstance(entities, dict) else None
        if isinstance(picked, str) and picked:
            self.facts.picks.append(picked[:100])

    def _country(self) -> Optional[str]:
        """The country the customer said, else their phone's, else their WhatsApp number's."""
        said = self._slots.get(COUNTRY)
        if isinstance(said, str) and said.strip():
            return said.strip().upper()[:8]
        for number in (self._slots.get(PHONE), self._whatsapp_number()):
            if isinstance(number, str) and number:
                found = country_of_e164(number)
                if found:
                    return found
        return None

    def _whatsapp_number(self) -> Optional[str]:
        if self.sender_id.startswith(WHATSAPP_PREFIX):
            return self.sender_id[len(WHATSAPP_PREFIX) :].strip()
        return None
