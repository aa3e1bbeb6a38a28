"""The description as the agent reads it: contact data that went to its own fields taken out.

Customers write «el botón de pagos queda cargando, escríbanme a
luis@banco.com.mx» when the description is asked. The form fills the e-mail
and the phone from it (bot/dialogue/extract.py) and keeps the customer's
words in the slot; the summary and the ticket show the description without
the address or number that are now fields of their own, and without the
words that only introduced them («mi correo es», «llámenme al»). Contact
data that is not the request's own (a client's address the customer is
reporting) stays, and so does the whole text when too little would be left.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from bot.contacts import Found, find_contacts, may_hold_contacts
from bot.text import word_count

# The words that introduce a contact datum, right before it (matched on the text as written).
_LEAD_IN = re.compile(
    r"(?:[\s,;.]*\b(?:y|o)\b)?[\s,;.:-]*(?:"
    r"(?:(?:mi|el|nuestro|su)\s+)?(?:correo(?:\s+electr[oó]nico)?|e-?mail|mail|cel(?:ular)?|tel(?:[eé]fono)?|"
    r"n[uú]mero(?:\s+de\s+(?:tel[eé]fono|celular|contacto))?|whats?app|contacto)"
    r"(?:\s+(?:es|son|de\s+contacto))?(?:\s+(?:el|al))?"
    r"|(?:escr[ií]b[ae]nme|escr[ií]beme|ll[aá]m[ae]nme|ll[aá]mame|cont[aá]ct[ae]nme|cont[aá]ctame|"
    r"me\s+pueden\s+(?:escribir|llamar|contactar)|soy)"
    r"(?:\s+(?:a|al|en))?(?:\s+(?:mi\s+)?(?:correo|cel(?:ular)?|tel[eé]fono|n[uú]mero))?"
    r")?[\s:]*$",
    re.IGNORECASE,
)
# A lead-in is never longer than this; looking further back only gives the regex more to try.
_LEAD_IN_WINDOW = 60
# What may follow a datum that is taken out: the end of a clause («…, escríbanme a ana@x.com.» / end of text).
_CLAUSE_END = re.compile(r"^[>)\]\"»']*\s*(?:[.,;!?\n]|$)")
_CLAUSE_START = re.compile(r"(?:^|[.,;:!?\n])\s*$")
_OPENERS = re.compile(r"[<(\[\"«']*$")
_JOINED = re.compile(r"^[\s,;.:-]*(?:[,;.:-]|\b(?:y|o)\b)", re.IGNORECASE)


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _is_own(found: Found, email: Optional[str], phone: Optional[str]) -> bool:
    if found.entity == "email":
        return bool(email) and found.value.lower() == str(email).lower()
    typed, stored = _digits(found.value), _digits(phone or "")
    return bool(typed) and bool(stored) and stored.endswith(typed)


def shown_description(
    text: Optional[str], email: Optional[str], phone: Optional[str], countries: Sequence[str], min_words: int = 1
) -> Optional[str]:
    """``text`` without the request's own e-mail and phone and their lead-in words.

    ``text`` itself when fewer than ``min_words`` words would be left.
    """
    if not text or not may_hold_contacts(text):
        return text
    own = [f for f in find_contacts(text, countries) if _is_own(f, email, phone)]
    if not own:
        return text
    rest = text
    for found in sorted(own, key=lambda f: -f.start):
        cut = _cut_from(rest, found)
        if cut is not None:
            rest = rest[:cut] + _CLOSERS.sub("", rest[found.end :], count=1)
    rest = rest.rstrip(" \t\r\n,;:-").lstrip(" \t\r\n,;:.-").strip()  # str methods: linear on «,,,,…»
    rest = re.sub(r"\s+([,.;])", r"\1", rest)
    return rest if word_count(rest) >= max(min_words, 1) else text


_CLOSERS = re.compile(r"^[>)\]\"»']*")


def _cut_from(text: str, found: Found) -> Optional[int]:
    """Where the datum's clause starts, when the datum stands in a clause of its own; else None (it stays).

    «el botón falla, escríbanme a ana@x.com» loses «, escríbanme a ana@x.com»;
    «cambiar el correo de pedro@x.com a ana@x.com» and «no llegan a mi correo
    ana@x.com desde el lunes» keep it: the address is what the sentence is about.
    """
    if not _CLAUSE_END.match(text[found.end :]):
        return None
    window = max(0, found.start - _LEAD_IN_WINDOW)
    before = _OPENERS.sub("", text[window : found.start])
    lead_in = _LEAD_IN.search(before)
    start = window + (lead_in.start() if lead_in else len(before))
    if _CLAUSE_START.search(text[:start]) or _JOINED.match(text[start : found.start]):
        return start
    return None
