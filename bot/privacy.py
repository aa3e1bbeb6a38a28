"""Keeping customer data out of places it should not be.

Customers paste card numbers into help-desk chats. Anything Luhn-valid with
13 to 19 digits (spaces or dashes allowed between digit groups) is treated as
a card number and never shown or exported in full. E-mails and phones are
shown partly masked to leads unless they open the full record.
"""

from __future__ import annotations

import re
from typing import Any

# Runs of 13-19 digits, optionally split by single spaces or dashes; bounded so
# longer numbers (references, phones with codes) are not cut into pieces.
# A run after "+" is an international phone number ("+52 1 55 1234 5678"
# passes Luhn one time in ten); nobody writes a card number that way.
_DIGIT_RUN = re.compile(r"(?<![\d+-])(?<!\+ )\d(?:[ -]?\d){12,18}(?![\d-])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
CARD_MASK = "[tarjeta oculta]"


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_cards(text: str, marker: str = CARD_MASK) -> str:
    """Replace card numbers (Luhn-valid 13-19 digit runs) by ``marker``.

    ``marker`` lets file names use a mask that is itself a valid file name.
    """
    if not text:
        return text

    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return marker if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)

    return _DIGIT_RUN.sub(replace, text)


def mask_cards_deep(value: Any) -> Any:
    """``mask_cards`` over every string inside dicts and lists."""
    if isinstance(value, str):
        return mask_cards(value)
    if isinstance(value, list):
        return [mask_cards_deep(v) for v in value]
    if isinstance(value, tuple):
        return tuple(mask_cards_deep(v) for v in value)
    if isinstance(value, dict):
        return {k: mask_cards_deep(v) for k, v in value.items()}
    return value


def mask_email(email: str) -> str:
    """ana.perez@empresa.com -> a•••••z@empresa.com"""
    if not email or "@" not in email:
        return email or ""
    user, domain = email.rsplit("@", 1)
    if len(user) <= 2:
        return f"{user[:1]}•@{domain}"
    return f"{user[0]}{'•' * (len(user) - 2)}{user[-1]}@{domain}"


def mask_phone(phone: str) -> str:
    """+573157778899 -> +57•••••••899 (country code and last three digits stay)."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 6:
        return "•" * len(digits)
    keep_start = 2 if phone.startswith("+") else 0
    head = digits[:keep_start]
    return ("+" if phone.startswith("+") else "") + head + "•" * (len(digits) - keep_start - 3) + digits[-3:]


_PHONE_LIKE = re.compile(r"\+?\d[\d .-]{5,}")


def mask_sender(sender_id: str) -> str:
    """A conversation id fit for a log line: a phone number in it partly masked.

    WhatsApp conversation ids are the customer's number
    («whatsapp:+573157778899» -> «whatsapp:+57•••••••899»); other ids (web
    sessions, Teams users) carry no phone and are kept, so a log still tells
    conversations apart.
    """
    if not sender_id:
        return ""
    prefix, separator, rest = sender_id.partition(":")
    if separator and _PHONE_LIKE.fullmatch(rest.strip()):
        return f"{prefix}:{mask_phone(rest.strip())}"
    return mask_phone(sender_id.strip()) if _PHONE_LIKE.fullmatch(sender_id.strip()) else sender_id


def mask_contacts(text: str) -> str:
    """Cards hidden, e-mails partly masked; for showing free text to a lead."""
    text = mask_cards(text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


# Seven to fifteen digits with a phone's separators (phones, documents, accounts);
# not a part of a decimal (timestamps, IP addresses stay readable).
_LONG_NUMBER = re.compile(r"(?<![\d.])\+?\d(?:[ ()-]?\d){6,14}(?![\d.])")


def mask_for_log(text: str) -> str:
    """Text fit for a log line: cards hidden, e-mails and long numbers (phones) partly masked.

    Logs are read by more people than tickets; masking every long digit run
    also catches numbers the phone rules would not recognise.
    """
    text = mask_contacts(text)
    return _LONG_NUMBER.sub(lambda m: "•" * max(len(m.group(0)) - 3, 0) + m.group(0)[-3:], text)
