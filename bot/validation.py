"""Validation of what customers type into ticket fields.

Each check returns a result with either the normalised value or a ``problem``
code; the dialogue turns the code into a Spanish message (``utter_invalid_*``
responses in domain.yml), so the reason for a refusal is always specific.
E-mail and phone rules come from email-validator and phonenumbers rather than
hand-written patterns: both track real-world numbering and address rules.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Optional, Sequence

import phonenumbers
from email_validator import EmailNotValidError
from email_validator import validate_email as _validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat

from bot.catalog import FieldSpec, best_matches
from bot.text import clean_text, normalize, word_count


@dataclass(frozen=True)
class Check:
    """Outcome of validating one value."""

    value: Optional[str] = None
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def shown_value(value: object, limit: int = 60) -> str:
    """A refused value as a refusal quotes it back: one short line, no control characters.

    Refused values are often hostile (thousands of characters, markup, a
    list in a payload); the customer only needs to recognise what was refused.
    """
    text = " ".join(clean_text(str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------- e-mail
def check_email(text: Optional[str]) -> Check:
    candidate = (text or "").strip().strip("<>\"'.,;:()[]")
    if not candidate:
        return Check(problem="empty")
    if "@" not in candidate:
        return Check(problem="missing_at")
    try:
        result = _validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return Check(problem="invalid")
    return Check(value=result.normalized)


# Mailbox providers customers in CO, MX and DO use most; a domain one typo away
# from one of them is almost always that typo ("gmial.com", "hotmail.con").
COMMON_EMAIL_DOMAINS = (
    "gmail.com",
    "hotmail.com",
    "hotmail.es",
    "outlook.com",
    "outlook.es",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.es",
    "yahoo.com.mx",
    "icloud.com",
    "prodigy.net.mx",
    "protonmail.com",
)
_TLD_TYPOS = {".con": ".com", ".cmo": ".com", ".ocm": ".com", ".comm": ".com", ".vom": ".com", ".xom": ".com"}


def suggest_email(address: str) -> Optional[str]:
    """The address with its likely typo fixed, or None when it looks as meant.

    Only well-known providers and impossible endings are corrected: company
    domains are the customer's own and are never second-guessed.
    """
    local, _, domain = address.rpartition("@")
    domain = domain.lower()
    if not local or not domain or domain in COMMON_EMAIL_DOMAINS:
        return None
    fixed = domain
    for typo, right in _TLD_TYPOS.items():
        if fixed.endswith(typo):
            fixed = fixed[: -len(typo)] + right
    close = difflib.get_close_matches(fixed, COMMON_EMAIL_DOMAINS, n=1, cutoff=0.85)
    if close:
        fixed = close[0]
    return f"{local}@{fixed}" if fixed != domain else None


# ----------------------------------------------------------------------- phone
@dataclass(frozen=True)
class PhoneCheck:
    """A phone number resolved to E.164, ambiguous between countries, or refused.

    ``candidates`` maps country id -> E.164 when the national number is valid
    in more than one supported country and nothing in the conversation says
    which one: the dialogue must ask, never guess.
    """

    e164: Optional[str] = None
    country: Optional[str] = None
    candidates: dict[str, str] = field(default_factory=dict)
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.e164 is not None

    @property
    def ambiguous(self) -> bool:
        return self.e164 is None and len(self.candidates) > 1


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse(raw: str, region: Optional[str]) -> Optional[phonenumbers.PhoneNumber]:
    try:
        return phonenumbers.parse(raw, region)
    except NumberParseException:
        return None


def check_phone(
    raw: Optional[str],
    countries: Sequence[str],
    known_country: Optional[str] = None,
) -> PhoneCheck:
    """Resolve ``raw`` to E.164 within ``countries``.

    A number written with its international prefix is unambiguous. A national
    number is tried in each supported country; when it is valid in several,
    ``known_country`` (from the conversation) decides, otherwise the result is
    ambiguous.
    """
    text = (raw or "").strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return PhoneCheck(problem="empty")

    international = text.startswith("+") or text.startswith("00")
    if international:
        if text.startswith("00"):
            digits = digits[2:]
        digits = _drop_mexican_mobile_one(digits)
        number = _parse("+" + digits, None)
        if number is None or not phonenumbers.is_valid_number(number):
            return PhoneCheck(problem=_length_problem(digits))
        region = phonenumbers.region_code_for_number(number)
        if region not in countries:
            return PhoneCheck(problem="unsupported_country")
        return PhoneCheck(e164=_e164(number), country=region)

    candidates: dict[str, str] = {}
    for region in countries:
        number = _parse(digits, region)
        if number is not None and phonenumbers.is_valid_number_for_region(number, region):
            candidates[region] = _e164(number)
    # Country code typed without "+" (e.g. 573157778899).
    number = _parse("+" + _drop_mexican_mobile_one(digits), None)
    if number is not None and phonenumbers.is_valid_number(number):
        found = phonenumbers.region_code_for_number(number)
        if found and found in countries:
            candidates.setdefault(found, _e164(number))

    if not candidates:
        return PhoneCheck(problem=_length_problem(digits))
    if len(candidates) == 1:
        ((region, e164),) = candidates.items()
        return PhoneCheck(e164=e164, country=region)
    if known_country in candidates:
        return PhoneCheck(e164=candidates[known_country], country=known_country)
    return PhoneCheck(candidates=candidates)


def _drop_mexican_mobile_one(digits: str) -> str:
    """+52 1 XX XXXX XXXX -> +52 XX XXXX XXXX.

    Mexico dropped the "1" mobile prefix in 2019, but customers still write it
    and WhatsApp still reports many Mexican senders as +521...; phonenumbers
    rightly calls those invalid, so the prefix is removed before parsing.
    """
    if len(digits) == 13 and digits.startswith("521"):
        return "52" + digits[3:]
    return digits


def _length_problem(digits: str) -> str:
    if len(digits) < 7:
        return "too_short"
    if len(digits) > 13:
        return "too_long"
    return "invalid"


def country_of_e164(e164: Optional[str]) -> Optional[str]:
    number = _parse(e164 or "", None)
    if number is None:
        return None
    return phonenumbers.region_code_for_number(number)


def likelier_first(countries: Sequence[str], email: Optional[str]) -> list[str]:
    """``countries`` with the one the e-mail's domain names («ana@empresa.com.mx» → MX) first.

    A phone valid in two countries is still asked about; the country the
    customer's own address points to is only the likelier answer, offered
    first. Addresses under «.com», «.net»… name no country: the order stays.
    """
    domain = (email or "").rpartition("@")[2].strip().rstrip(".").lower()
    top_level = domain.rpartition(".")[2].upper() if "." in domain else ""
    if top_level not in countries:
        return list(countries)
    return [top_level] + [c for c in countries if c != top_level]


def format_phone(e164: Optional[str]) -> str:
    """Human-friendly international format for summaries."""
    number = _parse(e164 or "", None)
    if number is None:
        return e164 or ""
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


# ----------------------------------------------------------------- description
# Longest description a ticket takes. The catalog sets the minimum; the
# maximum is the help desk's: JSM's text fields stop at 32 767 characters and
# the summary repeats the description, so a log pasted whole belongs in an
# attachment instead.
DESCRIPTION_MAX_CHARS = 5000


def check_description(text: Optional[str], spec: FieldSpec) -> Check:
    value = " ".join((text or "").split())
    if not value:
        return Check(problem="empty")
    if len(value) > DESCRIPTION_MAX_CHARS:
        return Check(problem="too_long")
    if word_count(value) < spec.min_words or len(value) < spec.min_chars:
        return Check(problem="too_short")
    if len(set(normalize(value).split())) < min(spec.min_words, 3):
        # "ayuda ayuda ayuda ayuda" is long enough but says nothing.
        return Check(problem="too_short")
    return Check(value=value)


# ---------------------------------------------------------------------- option
def check_option(value: Optional[str], spec: FieldSpec) -> Check:
    """Accept an option by id, by exact name, or by unambiguous alias."""
    if not value:
        return Check(problem="empty")
    by_id = spec.option(value)
    if by_id is not None:
        return Check(value=by_id.id)
    matches = best_matches(value, spec.options)
    if len(matches) == 1:
        return Check(value=matches[0].id)
    return Check(problem="ambiguous" if matches else "unknown")
