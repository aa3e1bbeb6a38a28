"""Buttons as WhatsApp's own tappable replies (Twilio's Content API types), within WhatsApp's limits.

Up to 3 options become reply buttons (``twilio/quick-reply``), 4 to 10 a
list (``twilio/list-picker``); more, or buttons that open a web page, stay
the numbered text customers type back. WhatsApp cuts nothing itself: it
refuses a title one character too long, so titles are shortened here, at a
word boundary with «…», and the full text stays visible (the list item's
description, or the message body listing the options). Each option gets a
short id made of its position and a digest of its payload: the payload
itself may be long, and a tap's id is only ever mapped back to a payload
this conversation was offered (``payload_for``), never trusted as one.

Pure: no I/O, so the renderer is tested on its own and shared by the
conversation's replies and the follow-up worker's notices.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from bot.channels.whatsapp.replies import button_payload, button_title, numbered_choices, split_body, utf16_units
from bot.privacy import mask_for_log

QUICK_REPLY = "twilio/quick-reply"
LIST_PICKER = "twilio/list-picker"
LANGUAGE = "es"
# WhatsApp's in-session limits, as Twilio documents them for each type.
MAX_BODY = 1024
MAX_QUICK_REPLIES = 3
MAX_LIST_ITEMS = 10
MAX_ACTION_TITLE = 20
MAX_ITEM = 24
MAX_DESCRIPTION = 72
MAX_LIST_BUTTON = 20
MAX_ID = 200
LIST_BUTTON = "Ver opciones"
DEFAULT_BODY = "Elige una opción:"
ELLIPSIS = "…"
# Button types that are not a reply (they open a page or call): WhatsApp's reply buttons cannot carry them.
NOT_REPLIES = frozenset({"web_url", "url", "phone_number", "call"})
# Words a cut title must not end on: «Mis credenciales de…» says less than «Mis credenciales…».
_DANGLING = frozenset("de del la el los las y o u e y/o en a al con para por sin sobre - / · : ,".split())


def option_id(index: int, payload: str) -> str:
    """Stable for the same option at the same place, so the same buttons make the same content."""
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
    return f"{index}-{digest}"


def offered_ids(buttons: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Option id -> payload, for the buttons of one message."""
    return {
        option_id(index, button_payload(dict(button))): button_payload(dict(button))
        for index, button in enumerate(buttons, start=1)
    }


def payload_for(tap_id: str, offers: Iterable[Sequence[Mapping[str, Any]]]) -> Optional[str]:
    """The payload a tapped id stands for, among the buttons this conversation was offered (latest first)."""
    if not tap_id or len(tap_id) > MAX_ID:
        return None
    for buttons in offers:
        payload = offered_ids(buttons).get(tap_id)
        if payload is not None:
            return payload
    return None


def shorten(title: str, limit: int) -> str:
    """``title`` within ``limit`` UTF-16 units, cut after a whole word that carries meaning, with «…»."""
    title = " ".join(title.split())
    if utf16_units(title) <= limit:
        return title
    room = limit - utf16_units(ELLIPSIS)
    kept: list[str] = []
    for word in title.split(" "):
        if utf16_units(" ".join([*kept, word])) > room:
            break
        kept.append(word)
    while len(kept) > 1 and kept[-1].lower().strip(",.;:") in _DANGLING:
        kept.pop()
    cut = " ".join(kept).rstrip(" ,.;:-/(·")
    if not cut:  # one word longer than the limit: cut inside it
        for char in title:
            if utf16_units(cut + char) > room:
                break
            cut += char
    return cut + ELLIPSIS


@dataclass(frozen=True)
class Content:
    """One Content API resource: its types, and the key that names it in the cache (its canonical JSON)."""

    types: dict[str, Any]

    @property
    def kind(self) -> str:
        return next(iter(self.types))

    @property
    def canonical(self) -> str:
        return json.dumps({"language": LANGUAGE, "types": self.types}, sort_keys=True, ensure_ascii=False)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical.encode("utf-8")).hexdigest()

    def definition(self) -> dict[str, Any]:
        """The Content API's create request."""
        short = "botones" if self.kind == QUICK_REPLY else "lista"
        return {"friendly_name": f"ecollect_{short}_{self.key[:16]}", "language": LANGUAGE, "types": self.types}


@dataclass(frozen=True)
class Rendered:
    """A message with buttons as WhatsApp shows it.

    ``lead``: plain texts sent first (a body over WhatsApp's 1024 limit);
    ``content``: the interactive message, None for the numbered text;
    ``fallback``: the numbered text for what the interactive message
    carried, sent when it cannot go.
    """

    fallback: str
    content: Optional[Content] = None
    lead: tuple[str, ...] = field(default_factory=tuple)


def _replies_only(buttons: Sequence[Mapping[str, Any]]) -> bool:
    return all(str(b.get("type") or "").lower() not in NOT_REPLIES and not b.get("url") for b in buttons)


def _titles(buttons: Sequence[Dict[str, Any]], limit: int) -> list[str]:
    """Shortened titles; numbered when two would read the same (WhatsApp wants them distinct)."""
    fulls = [" ".join(button_title(b).split()) or str(i) for i, b in enumerate(buttons, start=1)]
    titles = [shorten(full, limit) for full in fulls]
    if len({t.casefold() for t in titles}) < len(titles):
        titles = [shorten(f"{i}. {full}", limit) for i, full in enumerate(fulls, start=1)]
    return titles


def _listing(text: str, fulls: Sequence[str], shown_in_full: Sequence[bool]) -> str:
    """The options in full, when one is cut where the customer sees it and the text does not already say it."""
    if all(shown_in_full) or all(full in text for full in fulls):
        return ""
    return "\n".join(f"{i}. {full}" for i, full in enumerate(fulls, start=1))


# A help-desk key such as ECO-000123: it names one customer's ticket.
_TICKET_KEY = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d+\b")


def carries_personal_data(text: str) -> bool:
    """An e-mail, a phone or other long number, a card or a ticket key: never part of a shared content."""
    return mask_for_log(text) != text or bool(_TICKET_KEY.search(text))


def _body_parts(text: str, listing: str) -> Optional[tuple[tuple[str, ...], str, str]]:
    """(lead texts, interactive body, the text part the body carries); None for the numbered text.

    None when the listing alone is too long, or when the question itself carries the customer's data.
    """
    block = f"\n\n{listing}" if listing else ""
    if utf16_units(block) >= MAX_BODY - 40:
        return None
    if carries_personal_data(text):
        # A content is kept in Twilio's library for good: the part with the customer's data (a summary with the
        # e-mail, phone and description; a ticket's key) goes first as plain text and only the question closing
        # the message becomes the content, which then serves every conversation.
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        lead, last = split_body("\n".join(lines[:-1]), MAX_BODY), lines[-1]
        if carries_personal_data(last):
            return None
    else:
        parts = split_body(text, MAX_BODY) or [DEFAULT_BODY]
        lead, last = parts[:-1], parts[-1]
    if utf16_units(last + block) > MAX_BODY:
        pieces = split_body(last, MAX_BODY - utf16_units(block))
        lead, last = lead + pieces[:-1], pieces[-1]
    return tuple(lead), last + block, last


def render(text: str, buttons: Sequence[Dict[str, Any]]) -> Rendered:
    """How a message with ``buttons`` goes to WhatsApp: reply buttons, a list, or numbered text."""
    numbered = numbered_choices(text, buttons)
    count = len(buttons)
    if not 1 <= count <= MAX_LIST_ITEMS or not _replies_only(buttons):
        return Rendered(numbered)
    fulls = [" ".join(button_title(b).split()) for b in buttons]
    ids = [option_id(i, button_payload(b)) for i, b in enumerate(buttons, start=1)]
    if count <= MAX_QUICK_REPLIES:
        titles = _titles(buttons, MAX_ACTION_TITLE)
        parts = _body_parts(text, _listing(text, fulls, [t == f for t, f in zip(titles, fulls, strict=True)]))
        if parts is None:
            return Rendered(numbered)
        lead, body, carried = parts
        actions = [{"id": i, "title": t} for i, t in zip(ids, titles, strict=True)]
        types: dict[str, Any] = {QUICK_REPLY: {"body": body, "actions": actions}}
    else:
        items = _titles(buttons, MAX_ITEM)
        descriptions = [
            full if (item != full and utf16_units(full) <= MAX_DESCRIPTION) else shorten(full, MAX_DESCRIPTION)
            for item, full in zip(items, fulls, strict=True)
        ]
        descriptions = [
            d if d != item else f"Opción {n}" for n, (d, item) in enumerate(zip(descriptions, items, strict=True), 1)
        ]
        in_full = [item == f or d == f for item, d, f in zip(items, descriptions, fulls, strict=True)]
        parts = _body_parts(text, _listing(text, fulls, in_full))
        if parts is None:
            return Rendered(numbered)
        lead, body, carried = parts
        rows = [{"id": i, "item": t, "description": d} for i, t, d in zip(ids, items, descriptions, strict=True)]
        types = {LIST_PICKER: {"body": body, "button": LIST_BUTTON, "items": rows}}
    return Rendered(numbered_choices(carried, buttons), Content(types), lead)
