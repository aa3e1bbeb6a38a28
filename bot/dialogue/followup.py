"""The conversation after the ticket: what the customer writes while an agent waits for their answer.

When the help desk speaks (bot/dialogue/notices.py), the follow-up worker
opens one of two Rasa forms in the customer's conversation: ``reply_form``
after an agent's comment or a «waiting for you» status, ``csat_form`` with
the satisfaction question. Rasa runs the open form on every message and asks
its validation action (actions/followup.py) what to do; that action calls
``reply_step`` here or ``survey.csat_step``, which answer with a ``Step``:

- ``next_slot`` names the slot the form keeps asking (the loop stays: the
  next message is read here again); None ends the form, and a rule waits for
  the customer.
- ``reject``: a side question (status, «¿eres un bot?», a person). Rasa
  rejects the form, a rule answers, and the form resumes in reply mode.
- ``release``: the message is not for the form («nueva solicitud» with a
  request-type button, a payload of another flow, a ticket no longer
  waiting, anything that is no rating). The action ends the loop and
  rejects its own execution in the same answer, so Rasa predicts again as if
  no form had been open: the normal flow (rules) handles this very message,
  and nothing is forwarded. FollowupAction is not used: a rule's later
  steps would not match after it.

«Nueva solicitud» / «menú» and «cancelar» are answered here (the menu, or
that reply mode ended), since the words may reach the NLU as another intent.
Leaving is remembered (``reply_declined_since``) until the agent speaks again.
A message whose words read confidently as a new request is kept and asked
about with two buttons; what was not passed to the agent (asked about, or the
thread was down) waits in ``reply_pending`` and goes with the next answer.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from bot.catalog import Catalog
from bot.dialogue.extract import ESCAPE_CONFIDENCE, ESCAPE_MAX_WORDS
from bot.dialogue.navigation import OPENING_KEPT, categories_menu, menu_button
from bot.dialogue.notices import (
    CSAT_FORM,
    CSAT_RATING,
    REPLY_FORM,
    REPLY_SINCE,
    REPLY_TEXT,
    REPLY_TICKET,
    REQUESTED_SLOT,
)
from bot.dialogue.ports import AttachmentResolver, DeskTicket, HelpDeskThread, Unavailable
from bot.dialogue.slots import ATTACHMENT, FALLBACK_COUNT, ORIGINAL_TEXT
from bot.dialogue.turn import Button, Say, Turn, payload
from bot.privacy import mask_cards
from bot.text import normalize, word_count
from bot.tickets.model import Attachment

logger = logging.getLogger(__name__)

# Slots of the conversation after the ticket, besides the worker's (notices.py).
REPLY_DECLINED_SINCE = "reply_declined_since"  # the help-desk message after which the customer left reply mode
REPLY_ACKED_SINCE = "reply_acked_since"  # the help-desk message whose answers were acknowledged in full
REPLY_PENDING = "reply_pending"  # messages not passed to the agent yet: asked about, or the thread was down
CSAT_COMMENT = "csat_comment"  # the comment step's requested slot; stays empty (the comment goes to the CSAT book)
CSAT_COMMENT_TICKET = "csat_comment_ticket"  # the ticket just rated, whose comment is awaited
CSAT_REASKED = "csat_reasked"  # the rating was asked again once: the next unclear message leaves

# Side questions answered by their rules while reply mode stays.
SIDE_INTENTS = frozenset({"check_status", "bot_challenge", "human_handoff"})
ANSWER_PAYLOADS = frozenset({"affirm", "deny", "menu", "cancel"})

FOR_TICKET_BUTTON = "Es para {key}"
NEW_REQUEST_BUTTON = "Es una nueva solicitud"
OPEN_REQUEST_BUTTON = "Abrir una solicitud nueva"
NEW_REQUEST_SHORTCUT = "Nueva solicitud"
ONLY_FILES = "(El cliente envió solo adjuntos.)"  # the agent reads it

MAX_PENDING = 5
MAX_FORWARD_CHARS = 10_000  # the channels' own limit: nothing they accept is cut

_MENU_WORDS = frozenset({"menu", "menu principal", "ver el menu", "volver al menu", "inicio"})
_NEW_REQUEST = re.compile(
    r"^(?:(?:es|quiero|hacer|abrir|crear|tengo|una|un|la|el|de|para)\s+)*(?:nueva|otra|nuevo|otro)\s+"
    r"(?:solicitud|consulta|peticion|caso|ticket|requerimiento|cosa|pregunta)(?:\s+por\s+favor)?$"
)


@dataclass
class Step:
    """One turn of the reply or CSAT form: slot updates, messages, and what the form does next (module docstring)."""

    updates: dict[str, Any] = field(default_factory=dict)
    says: list[Say] = field(default_factory=list)
    next_slot: Optional[str] = None
    reject: bool = False
    release: bool = False


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def confident(turn: Turn, intents: frozenset[str]) -> bool:
    """The message is one of ``intents``: a button, or short words the NLU is sure of."""
    if turn.intent not in intents:
        return False
    return turn.is_payload or (turn.confidence >= ESCAPE_CONFIDENCE and word_count(turn.text) <= ESCAPE_MAX_WORDS)


def asks_new_request(turn: Turn) -> bool:
    """«menú», «nueva solicitud», «es otra consulta»…, whatever intent the NLU gave the words."""
    if turn.is_payload:
        return turn.intent == "menu"
    text = normalize(turn.text)
    return text in _MENU_WORDS or bool(_NEW_REQUEST.match(text)) or confident(turn, frozenset({"menu"}))


# ------------------------------------------------------------------ reply mode
def _message_of(turn: Turn) -> dict[str, Any]:
    files = [dict(a) for a in turn.metadata.get("attachments") or () if isinstance(a, Mapping) and a.get("id")]
    source = turn.message_id or hashlib.sha256(f"{turn.sender_id}|{turn.timestamp}|{turn.text}".encode()).hexdigest()
    return {"text": turn.text.strip()[:MAX_FORWARD_CHARS], "attachments": files, "message_id": str(source)[:200]}


def _pending(slots: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages kept for the agent; anything a slot should not hold is dropped."""
    value = slots.get(REPLY_PENDING)
    kept = [dict(m) for m in value if isinstance(m, Mapping)] if isinstance(value, list) else []
    return [m for m in kept if isinstance(m.get("text"), str) and m.get("message_id")][-MAX_PENDING:]


def _declined(slots: Mapping[str, Any], target: DeskTicket) -> bool:
    return target.since > 0 and _int(slots.get(REPLY_DECLINED_SINCE)) >= target.since


def _leave(slots: Mapping[str, Any], says: list[Say], **updates: Any) -> Step:
    """Reply mode ends here, remembered until the agent's next message; nothing is forwarded."""
    declined = {REPLY_DECLINED_SINCE: _int(slots.get(REPLY_SINCE)) or None, REPLY_PENDING: None}
    return Step({**declined, **updates}, says, None)


def _release(slots: Mapping[str, Any], catalog: Catalog, turn: Turn, declined: bool = True) -> Step:
    """The normal flow handles this message; files kept for the agent go with a new request."""
    updates: dict[str, Any] = {REPLY_PENDING: None}
    if declined:
        updates[REPLY_DECLINED_SINCE] = _int(slots.get(REPLY_SINCE)) or None
    kept = [a for m in _pending(slots) for a in m.get("attachments") or ()]
    if turn.intent == "choose_request_type" and kept:
        current = list(slots.get(ATTACHMENT) or [])
        known = {a.get("id") for a in current if isinstance(a, Mapping)}
        fresh = [a for a in kept if isinstance(a, Mapping) and a.get("id") not in known]
        updates[ATTACHMENT] = (current + fresh)[: catalog.attachment_field.max_files]
    return Step(updates, [], None, release=True)


def _new_request_type(turn: Turn, catalog: Catalog) -> Optional[str]:
    """The request type (or retired option) the words confidently ask for: then it is unclear who they are for."""
    if turn.confidence < ESCAPE_CONFIDENCE:
        return None
    request_type = catalog.request_type_for_intent(turn.intent)
    if request_type is not None:
        return request_type.id
    retired = catalog.retired_for_intent(turn.intent)
    return retired.id if retired is not None else None


def reply_step(
    turn: Turn,
    slots: Mapping[str, Any],
    thread: HelpDeskThread,
    catalog: Catalog,
    files: Optional[AttachmentResolver] = None,
) -> Step:
    """The customer wrote while an agent waits for them: forward, ask, or leave (module docstring).

    Which ticket waits is asked of the thread each turn (the slots only say
    what the worker delivered): a ticket resolved, answered long ago or left
    by the customer since the agent's message releases the message to the
    normal flow. ``files`` re-reads kept attachments as this conversation's.
    """
    key = str(slots.get(REPLY_TICKET) or "")
    if turn.mode != "resume":
        if turn.is_payload and turn.intent not in ANSWER_PAYLOADS:
            return _release(slots, catalog, turn)
        if asks_new_request(turn):
            return _leave(slots, categories_menu(catalog), **{FALLBACK_COUNT: 0})
        if confident(turn, frozenset({"cancel"})):
            return _leave(slots, [Say("utter_reply_left", {"key": key or "tu solicitud"})])
    pending = _pending(slots)
    try:
        target = thread.reply_target(turn.sender_id)
    except Unavailable:
        if turn.mode == "resume":
            return Step({}, [], REPLY_TEXT)
        kept = pending + ([] if turn.is_payload else [_message_of(turn)])
        return Step({REPLY_PENDING: kept[-MAX_PENDING:]}, [_unavailable(key)], REPLY_TEXT)
    if target is None or _declined(slots, target):
        gone = {REPLY_TICKET: None} if target is None else {}
        if turn.mode == "resume":
            return Step({**gone, REPLY_PENDING: None}, [], None)
        step = _release(slots, catalog, turn, declined=False)
        return Step({**step.updates, **gone}, [], None, release=True)
    if turn.mode == "resume":
        return Step({}, [], REPLY_TEXT)
    if confident(turn, SIDE_INTENTS):
        return Step(reject=True)
    if pending and confident(turn, frozenset({"affirm"})):
        return _forward(pending, target, turn, slots, thread, catalog, files)
    if pending and confident(turn, frozenset({"deny"})):
        return _not_forwarded(pending, target, slots, catalog)
    if turn.is_payload:  # «sí» / «no» with nothing kept: a stale button of another flow
        return _release(slots, catalog, turn)
    message = _message_of(turn)
    new_type = _new_request_type(turn, catalog)
    if new_type is not None and new_type != target.request_type_id:  # its own type: about this ticket
        return _ask_which(target, pending + [{**message, "request_type": new_type}])
    return _forward(pending + [message], target, turn, slots, thread, catalog, files)


def _unavailable(title: str) -> Say:
    return Say("utter_reply_unavailable", {"title": title or "tu solicitud"})


def _forward(
    messages: list[dict[str, Any]],
    target: DeskTicket,
    turn: Turn,
    slots: Mapping[str, Any],
    thread: HelpDeskThread,
    catalog: Catalog,
    files: Optional[AttachmentResolver],
) -> Step:
    """Each message becomes a public comment of the ticket; the customer hears it once per agent message."""
    names: list[str] = []
    sent = 0
    try:
        for message in messages:
            records = files.resolve(message.get("attachments") or [], owner=turn.sender_id) if files else []
            attachments = tuple(Attachment.from_dict(r) for r in records)
            text = mask_cards(str(message.get("text") or ""))
            if text or attachments:
                source = f"customer:{message['message_id']}"
                if not thread.forward(target.key, turn.sender_id, text or ONLY_FILES, attachments, source=source):
                    logger.warning("reply target %s is not this conversation's: message not forwarded", target.key)
                    return _release(slots, catalog, turn, declined=False)
                names += [a.name for a in attachments]
            sent += 1
    except Unavailable as exc:
        logger.error("no se pudo pasar el mensaje del cliente a %s: %s", target.key, exc)
        return Step({REPLY_PENDING: messages[sent:][-MAX_PENDING:]}, [_unavailable(target.title)], REPLY_TEXT)
    updates = {
        REPLY_TICKET: target.key,
        REPLY_SINCE: target.since,
        REPLY_ACKED_SINCE: target.since,
        REPLY_PENDING: None,
    }
    if not names and not any(m.get("text") for m in messages):
        return Step(updates, [Say("utter_attachment_missing")] if turn.intent == "attach" else [], REPLY_TEXT)
    included = f" Incluí: {', '.join(names)}." if names else ""
    if _int(slots.get(REPLY_ACKED_SINCE)) == target.since:
        return Step(updates, [Say("utter_reply_forwarded_again", {"key": target.key, "files": included})], REPLY_TEXT)
    shortcut = (Button(NEW_REQUEST_SHORTCUT, payload("menu")),)
    return Step(
        updates, [Say("utter_reply_forwarded", {"title": target.title, "files": included}, shortcut)], REPLY_TEXT
    )


def _ask_which(target: DeskTicket, messages: list[dict[str, Any]]) -> Step:
    """The words read like a new request: kept, and the customer chooses."""
    new_type = messages[-1]["request_type"]
    buttons = (
        Button(FOR_TICKET_BUTTON.format(key=target.key), payload("affirm")),
        Button(NEW_REQUEST_BUTTON, payload("choose_request_type", request_type=new_type, opening=OPENING_KEPT)),
    )
    opening = "\n".join(m["text"] for m in messages if m.get("text")) or None
    updates = {REPLY_PENDING: messages[-MAX_PENDING:], ORIGINAL_TEXT: opening}
    return Step(updates, [Say("utter_reply_ask_which", {"title": target.title}, buttons)], REPLY_TEXT)


def _not_forwarded(
    pending: list[dict[str, Any]], target: DeskTicket, slots: Mapping[str, Any], catalog: Catalog
) -> Step:
    """«No» to «¿es para ECO-…?»: nothing is forwarded, and the kept words may open a request."""
    new_type = next((m["request_type"] for m in reversed(pending) if m.get("request_type")), None)
    buttons: tuple[Button, ...] = (menu_button(catalog),)
    if new_type:
        opening = payload("choose_request_type", request_type=new_type, opening=OPENING_KEPT)
        buttons = (Button(OPEN_REQUEST_BUTTON, opening),) + buttons
    return _leave(slots, [Say("utter_reply_not_forwarded", {"key": target.key}, buttons)])


# -------------------------------------------------------------- a new session
def carried_loop(active_loop: Optional[str], slots: Mapping[str, Any]) -> Optional[tuple[str, str]]:
    """The reply or CSAT form (and its requested slot) a new session keeps.

    Rasa starts a new session when the customer's last message is older
    than the domain's session expiration (60 minutes), and a new session has
    no form. Agents answer hours later: without this, the customer's answer
    would open a request instead of reaching the agent. The ticket form is
    not carried (an idle form is dropped, as before).
    """
    requested = slots.get(REQUESTED_SLOT)
    if active_loop == REPLY_FORM and slots.get(REPLY_TICKET):
        return REPLY_FORM, REPLY_TEXT
    if active_loop == CSAT_FORM and requested in (CSAT_RATING, CSAT_COMMENT):
        return CSAT_FORM, str(requested)
    return None
