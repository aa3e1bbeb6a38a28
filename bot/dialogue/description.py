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

from bot.contacts import Found, find_contacts
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
_TRAILING = re.compile(r"[\s,;:-]+$")


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
    if not text or ("@" not in text and sum(ch.isdigit() for ch in text) < 7):
        return text
    own = [f for f in find_contacts(text, countries) if _is_own(f, email, phone)]
    if not own:
        return text
    rest = text
    for found in sorted(own, key=lambda f: -f.start):
        before = _LEAD_IN.sub("", rest[: found.start])
        rest = before + rest[found.end :]
    rest = _TRAILING.sub("", rest).strip()
    rest = re.sub(r"\s+([,.;])", r"\1", rest)
    return rest if word_count(rest) >= max(min_words, 1) else text
