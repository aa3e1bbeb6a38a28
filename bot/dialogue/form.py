"""The ticket form, one customer turn at a time.

Rasa runs one form, ``ticket_form``; this module makes it behave like the
catalog's form for whichever request type the conversation is about. Each
turn it checks what the slots already hold (``revalidate``), reads what the
message fills (``extract``, ``corrections`` at the summary, ``received``
for files and channel data), validates it (``validate``) and names the slot
to ask next, or rejects the turn when the message is no answer at all
(cancel, a side question) so Rasa hands it to a rule and comes back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from bot.catalog import Catalog, RequestType
from bot.dialogue import articles
from bot.dialogue.corrections import answer_confirmation, answer_correction_field
from bot.dialogue.extract import SIDE_QUESTION, UNPARSED, Reading, extract_answer, extract_start
from bot.dialogue.ports import AttachmentResolver, Knowledge
from bot.dialogue.received import attachments_in, channel_contacts
from bot.dialogue.revalidate import refusal_says, revalidate
from bot.dialogue.slots import (
    ATTACHMENT,
    AWAITING_CORRECTION,
    CONFIRMATION,
    CONFIRMATION_ID,
    CORRECTION_FIELD,
    DESCRIPTION,
    KB_ANSWER,
    KB_DECLINED,
    ORIGINAL_TEXT,
    PHONE,
    PHONE_CANDIDATES,
    PHONE_COUNTRY,
    REQUEST_TYPE,
    REQUESTED_SLOT,
    empty,
)
from bot.dialogue.turn import Say, Turn
from bot.dialogue.validate import validate

ATTACH_INTENT = "attach"  # sent by channels with a file and no words


@dataclass
class Step:
    """Result of one form turn: slot updates, messages, and what to ask next."""

    updates: dict[str, Any] = field(default_factory=dict)
    says: list[Say] = field(default_factory=list)
    next_slot: Optional[str] = None
    reject: bool = False


def required_slots(slots: Mapping[str, Any], catalog: Catalog) -> list[str]:
    """Slots the current request type needs, in asking order."""
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    if request_type is None:
        return []
    required: list[str] = []
    for spec in request_type.fields:
        if not spec.required:
            continue
        if spec.id == PHONE and slots.get(PHONE_CANDIDATES) and empty(slots.get(PHONE)):
            required.append(PHONE_COUNTRY)
        required.append(spec.id)
        if spec.id == DESCRIPTION and articles.offered(slots):
            required.append(KB_ANSWER)  # articles were offered: «me sirvió» or «sigo» before the contact questions
            if slots.get(KB_ANSWER) == articles.HELPFUL:
                return required  # solved by an article: nothing more to ask, and no ticket
    if slots.get(AWAITING_CORRECTION):
        required.append(CORRECTION_FIELD)
    required.append(CONFIRMATION)
    return required


def next_slot(slots: Mapping[str, Any], catalog: Catalog) -> Optional[str]:
    return next((s for s in required_slots(slots, catalog) if empty(slots.get(s))), None)


def new_confirmation_id() -> str:
    return secrets.token_urlsafe(12)


def _answer(
    turn: Turn, slots: Mapping[str, Any], request_type: RequestType, reading: Reading
) -> Optional[dict[str, Any]]:
    """What an answer to the asked slot fills; None when the message is no answer."""
    requested = slots.get(REQUESTED_SLOT)
    if not requested:
        return {}
    if requested == KB_ANSWER:
        return _answer_offer(turn, slots, request_type, reading)
    if turn.entity(KB_ANSWER) is not None:
        # An offer's button pressed later (never a «sí» to the summary): not understood, the question is asked again.
        return {requested: None, UNPARSED: requested}
    if requested == CONFIRMATION:
        return answer_confirmation(turn, request_type, reading)
    if requested == CORRECTION_FIELD:
        return answer_correction_field(turn, request_type, reading)
    return extract_answer(turn, slots, request_type, reading, requested)


def _answer_offer(
    turn: Turn, slots: Mapping[str, Any], request_type: RequestType, reading: Reading
) -> Optional[dict[str, Any]]:
    """The verdict on the articles offered; anything else goes on with the request.

    A message that is neither «me sirvió» nor «sigo» (the e-mail typed
    straight away) declines the articles and answers the next question.
    """
    verdict = articles.read_verdict(turn)
    if verdict is not None:
        return {KB_ANSWER: verdict}
    ahead = {**slots, KB_ANSWER: articles.DECLINED}
    following = next_slot(ahead, reading.catalog)
    if following is None or following == KB_ANSWER:
        return {KB_ANSWER: articles.DECLINED}
    rest = _answer(turn, {**ahead, REQUESTED_SLOT: following}, request_type, reading)
    return None if rest is None else {**rest, KB_ANSWER: articles.DECLINED}


def _verdict(
    turn: Turn,
    updates: dict[str, Any],
    slots: Mapping[str, Any],
    request_type: RequestType,
    knowledge: Optional[Knowledge],
) -> tuple[dict[str, Any], list[Say]]:
    """Take the offer's verdict out of ``updates`` (it is no catalog value to validate) and record it."""
    verdict = updates.pop(KB_ANSWER, None)
    if verdict is None:
        return {}, []
    articles.record_verdict(knowledge, turn, verdict, slots, request_type.id)
    if verdict == articles.HELPFUL:
        return {KB_ANSWER: verdict}, []
    explicit = articles.read_verdict(turn) == articles.DECLINED
    return {KB_ANSWER: verdict, KB_DECLINED: True}, [Say("utter_kb_continue")] if explicit else []


def step(
    turn: Turn,
    slots: Mapping[str, Any],
    catalog: Catalog,
    candidates: Optional[Mapping[str, Any]] = None,
    attachments: Optional[AttachmentResolver] = None,
    knowledge: Optional[Knowledge] = None,
) -> Step:
    """Run the form for one turn.

    What the slots already hold is checked first (``revalidate``): a value
    refused now is dropped, so the form asks it again, and the reason is told
    right before that question. ``attachments`` is the store attachment
    records are checked against (none survive without it). ``knowledge``:
    the articles offered after the description and answering direct
    questions (bot/dialogue/articles.py); None offers nothing. Blocking.
    """
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    if request_type is None:
        return Step(next_slot=None)
    received = slots
    fixes, refused = revalidate(slots, catalog, attachments, turn.sender_id)
    slots = {**slots, **fixes}
    if turn.mode == "start":
        text = slots.get(ORIGINAL_TEXT) or ("" if turn.is_payload else turn.text)
        updates = extract_start(turn, slots, request_type, Reading(str(text or ""), catalog))
    elif turn.mode == "answer" and turn.intent == ATTACH_INTENT:
        updates = {}  # a file alone answers nothing; the pending question is asked again
    elif turn.mode == "answer":
        answer = _answer(turn, slots, request_type, Reading(turn.text.strip(), catalog))
        if knowledge is not None and articles.asks_article(turn, answer, slots.get(REQUESTED_SLOT)):
            answered = articles.answer_in_form(turn, request_type, knowledge)
            if answered:  # a question, answered: nothing filled, the pending question is asked again
                # The asked slot set (to the None it holds) tells Rasa the message was read: no rejection.
                requested = str(slots.get(REQUESTED_SLOT))  # asks_article: a slot was asked
                return Step({**fixes, requested: None}, answered, requested)
        if answer is None:
            return Step(reject=True)
        if SIDE_QUESTION in answer:  # about the process: answered, and the pending question is asked again
            requested = str(slots.get(REQUESTED_SLOT))  # only a datum question reads asides
            return Step({**fixes, requested: None}, [Say(str(answer[SIDE_QUESTION]))], requested)
        updates = answer
    else:
        updates = {}
    kb_updates, says = _verdict(turn, updates, slots, request_type, knowledge)
    if turn.mode != "resume":
        for key, value in channel_contacts(turn, slots).items():
            updates.setdefault(key, value)
        files, attachment_says = attachments_in(turn, slots, catalog)
        if files is not None:
            updates[ATTACHMENT] = files
        says.extend(attachment_says)
    # Values Rasa passes as candidates (prefilled before activation) are only
    # validated here when they differ from what the slot held: the slot's own
    # value was just checked by ``revalidate``.
    for key, value in (candidates or {}).items():
        if key not in updates and value != received.get(key):
            updates[key] = value
    validated, messages = validate(updates, slots, catalog)
    summarised = {spec.id for spec in request_type.fields}
    if any(r.field in summarised for r in refused) and {**slots, **validated}.get(CONFIRMATION) is not None:
        # A «sí» to a summary that showed a value refused now confirmed another
        # request: the summary is shown again once the value is asked.
        validated[CONFIRMATION] = None
    validated.update(kb_updates)
    merged = {**slots, **validated}
    if knowledge is not None and articles.may_offer(merged, request_type):
        offer = articles.offer_in_form(turn, merged, request_type, knowledge)
        validated.update(offer)
        merged.update(offer)
    upcoming = next_slot(merged, catalog)
    stale = [
        say
        for r in refused
        if r.field == upcoming and r.field not in updates
        for say in refusal_says(r, merged, catalog)
    ]
    result = {**fixes, **validated}
    if upcoming == CONFIRMATION:
        result[CONFIRMATION_ID] = new_confirmation_id()  # a new (or changed) summary: a new confirmation
    return Step(result, says + messages + stale, upcoming)
