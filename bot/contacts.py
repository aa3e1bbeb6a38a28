"""Finding e-mail addresses and phone numbers inside free text.

Used by the NLU component (so they show up as entities in every parse) and by
the form when a customer answers with a sentence ("mi cel es el 315 777 8899").
Detection uses phonenumbers' matcher and email-validator; the country of an
ambiguous number is decided later, with the conversation's context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

from bot.text import normalize
from bot.validation import check_email

_EMAIL_STRIP = "<>\"'.,;:()[]{}¡!¿?"
_OLD_MEXICAN_MOBILE = re.compile(r"((?:\+|\b00)52[\s.-]*)1(?=[\s.-]*\d)")


@dataclass(frozen=True)
class Found:
    """A span of the message holding a contact datum."""

    entity: str  # "email" or "phone"
    value: str  # normalised e-mail, or the phone as typed (digits, optional +)
    start: int
    end: int


def find_emails(text: str) -> list[Found]:
    found: list[Found] = []
    position = 0
    for token in text.split():
        start = text.index(token, position)
        position = start + len(token)
        if "@" not in token:
            continue
        stripped = token.strip(_EMAIL_STRIP)
        check = check_email(stripped)
        if check.ok and check.value:
            offset = start + token.index(stripped)
            found.append(Found("email", check.value, offset, offset + len(stripped)))
    return found


def _phone_value(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())
    return ("+" + digits) if raw.strip().startswith("+") else digits


def find_phones(text: str, countries: Sequence[str]) -> list[Found]:
    """Phone numbers valid in at least one supported country, in text order."""
    spans: dict[tuple[int, int], Found] = {}
    blocked = [(f.start, f.end) for f in find_emails(text)]
    # Mexican mobiles are still written "+52 1 55 ...", a prefix the numbering
    # plan dropped in 2019; blank the "1" out (same length, spans unchanged).
    text = _OLD_MEXICAN_MOBILE.sub(lambda m: m.group(1) + " ", text)
    regions: Iterable[str | None] = list(countries) + [None]
    for region in regions:
        for match in PhoneNumberMatcher(text, region or "ZZ", leniency=Leniency.VALID):
            region_code = phonenumbers.region_code_for_number(match.number)
            if region_code not in countries:
                continue
            if any(s <= match.start < e for s, e in blocked):
                continue
            if _inside_ticket_key(text, match.start):
                continue
            spans.setdefault(
                (match.start, match.end),
                Found("phone", _phone_value(match.raw_string), match.start, match.end),
            )
    # Overlapping matches from different regions: keep the longest.
    result: list[Found] = []
    for found in sorted(spans.values(), key=lambda f: (f.start, -(f.end - f.start))):
        if result and found.start < result[-1].end:
            continue
        result.append(found)
    return result


def _inside_ticket_key(text: str, start: int) -> bool:
    """Digits right after a ticket prefix like "ECO-" are a key, not a phone."""
    before = text[max(0, start - 4) : start]
    return before.endswith("-") and before[:-1].isalpha()


def find_contacts(text: str, countries: Sequence[str]) -> list[Found]:
    return sorted(find_emails(text) + find_phones(text, countries), key=lambda f: f.start)


# Words around contact data that say nothing about the customer's problem.
CONTACT_FILLER = frozenset(
    "mi mis es son soy el la los y o de del a al correo mail email e-mail cel celular tel telefono "
    "teléfono numero número whatsapp contacto datos nombre me llamo gracias"
    " hola buenas buenos buen dia dias tardes noches".split()
)


def may_hold_contacts(text: str) -> bool:
    """Whether an e-mail or a phone could be in ``text``: the matchers are skipped when none could."""
    return "@" in text or sum(ch.isdigit() for ch in text) >= 7


def blank_contacts(text: str, found: Sequence[Found]) -> str:
    """``text`` with the ``found`` contact data blanked out."""
    rest = text
    for span in sorted(found, key=lambda f: -f.start):
        rest = rest[: span.start] + " " + rest[span.end :]
    return rest


def words_besides_contacts(text: str, found: Sequence[Found]) -> list[str]:
    """The words of ``text`` that are neither the ``found`` contact data nor the filler around it."""
    words = normalize(blank_contacts(text, found)).split()
    return [w for w in words if w not in CONTACT_FILLER and any(c.isalpha() for c in w)]


def only_contacts(text: str, countries: Sequence[str]) -> bool:
    """The message gives an e-mail or a phone and nothing else ("mi cel es 315 777 8899")."""
    if not may_hold_contacts(text):
        return False  # runs on every message
    found = find_contacts(text, countries)
    return bool(found) and not words_besides_contacts(text, found)
