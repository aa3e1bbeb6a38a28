"""Values already in the slots, checked again on every turn as if just typed.

Slots are filled by the form, but also before it (contact data given with no
request open, a channel's metadata) and restored from the tracker store,
which outlives any one version of these rules; none of it is trusted. The
form drops what fails and asks it again; ``submit`` refuses a ticket with any
of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from bot.catalog import Catalog, RequestType
from bot.dialogue.ports import AttachmentResolver
from bot.dialogue.slots import (
    ATTACHMENT,
    CONFIRMATION,
    CONFIRMED,
    COUNTRY,
    DESCRIPTION,
    EMAIL,
    EMAIL_QUESTIONED,
    ITEM,
    ORIGINAL_TEXT,
    PHONE,
    PHONE_CANDIDATES,
    REDIRECTED_FROM,
    REQUEST_TYPE,
    empty,
)
from bot.dialogue.turn import Say
from bot.dialogue.validate import valid_candidates
from bot.validation import (
    DESCRIPTION_MAX_CHARS,
    Check,
    PhoneCheck,
    check_description,
    check_email,
    check_phone,
    shown_value,
)

logger = logging.getLogger(__name__)

# Slots checked again on every turn, in the order their refusals are told
# when the request type does not order them (country: never asked itself).
CHECKED = (ITEM, DESCRIPTION, EMAIL, PHONE, ATTACHMENT, COUNTRY)


@dataclass(frozen=True)
class Refused:
    """A stored value that fails the checks a typed one passes: its slot, how it reads, why."""

    field: str
    value: str  # quoted for the customer (``shown_value``)
    problem: str


class _Review:
    """The fixes and refusals of one ``revalidate`` call."""

    def __init__(self) -> None:
        self.fixes: dict[str, Any] = {}
        self.refused: list[Refused] = []

    def drop(self, slot: str, value: Any, problem: str, **also: Any) -> None:
        self.fixes.update({slot: None, **also})
        self.refused.append(Refused(slot, shown_value(value), problem))


def revalidate(
    slots: Mapping[str, Any],
    catalog: Catalog,
    attachments: Optional[AttachmentResolver],
    owner: str,
) -> tuple[dict[str, Any], list[Refused]]:
    """Every request value already in the slots, checked again as if just typed.

    A valid value comes back normalised when it was not; an invalid one comes
    back empty, with the reason. Attachment records are looked up again by id
    in ``attachments`` (the store): only its own records of ``owner``'s files
    stay, and with no store (None) no record can be vouched for, so none does.
    """
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    review = _Review()
    _contacts(slots, catalog, review)
    _request_values(slots, request_type, review)
    _attachments(slots.get(ATTACHMENT), attachments, owner, review)
    fixes = review.fixes

    redirected = slots.get(REDIRECTED_FROM)
    if redirected is not None:
        retired = catalog.retired_option(redirected) if isinstance(redirected, str) else None
        if retired is None or request_type is None or retired.redirect.request_type_id != request_type.id:
            fixes[REDIRECTED_FROM] = None
    if slots.get(CONFIRMATION) not in (None, CONFIRMED):
        fixes[CONFIRMATION] = None
    # Read as text by the form: anything else was never written by it.
    for text_slot in (ORIGINAL_TEXT, EMAIL_QUESTIONED):
        if slots.get(text_slot) is not None and not isinstance(slots.get(text_slot), str):
            fixes[text_slot] = None

    order = [f.id for f in request_type.fields] if request_type else []
    order += [f for f in CHECKED if f not in order]
    review.refused.sort(key=lambda r: order.index(r.field))
    return fixes, review.refused


def _contacts(slots: Mapping[str, Any], catalog: Catalog, review: _Review) -> None:
    fixes = review.fixes
    country = slots.get(COUNTRY)
    if not empty(country):
        known = catalog.country(country.upper()) if isinstance(country, str) else None
        if known is None:
            review.drop(COUNTRY, country, "unknown")
        elif known.id != country:
            fixes[COUNTRY] = known.id

    email = slots.get(EMAIL)
    if not empty(email):
        check = check_email(email) if isinstance(email, str) else Check(problem="invalid")
        if not check.ok:
            review.drop(EMAIL, email, check.problem or "invalid")
        elif check.value != email:
            fixes[EMAIL] = check.value

    phone = slots.get(PHONE)
    if not empty(phone):
        known_country = fixes.get(COUNTRY, slots.get(COUNTRY))
        phone_check = (
            check_phone(phone, catalog.country_ids, known_country)
            if isinstance(phone, str)
            else PhoneCheck(problem="invalid")
        )
        if phone_check.ok:
            if phone_check.e164 != phone:
                fixes[PHONE] = phone_check.e164
        elif phone_check.ambiguous:
            fixes.update({PHONE: None, PHONE_CANDIDATES: phone_check.candidates})  # the country is asked
        else:
            review.drop(PHONE, phone, phone_check.problem or "invalid", **{PHONE_CANDIDATES: None})
    if PHONE_CANDIDATES not in fixes and slots.get(PHONE_CANDIDATES) is not None:
        if not valid_candidates(slots.get(PHONE_CANDIDATES), catalog):
            fixes[PHONE_CANDIDATES] = None


def _request_values(slots: Mapping[str, Any], request_type: Optional[RequestType], review: _Review) -> None:
    item = slots.get(ITEM)
    item_spec = request_type.field(ITEM) if request_type else None
    if not empty(item):
        if item_spec is None:
            review.fixes[ITEM] = None  # left from another request type: never part of this ticket
        elif not isinstance(item, str) or item_spec.option(item) is None:
            review.drop(ITEM, item, "unknown")

    description = slots.get(DESCRIPTION)
    description_spec = request_type.field(DESCRIPTION) if request_type else None
    if not empty(description) and description_spec is not None:
        check = (
            check_description(description, description_spec) if isinstance(description, str) else Check(problem="empty")
        )
        if not check.ok:
            review.drop(DESCRIPTION, description, check.problem or "empty")
        elif check.value != description:
            review.fixes[DESCRIPTION] = check.value


def _attachments(records: Any, attachments: Optional[AttachmentResolver], owner: str, review: _Review) -> None:
    if empty(records):
        return
    listed = list(records) if isinstance(records, (list, tuple)) else None
    resolved = attachments.resolve(listed, owner=owner) if listed and attachments is not None else []
    if listed is not None and resolved == listed:
        return
    review.fixes[ATTACHMENT] = resolved or None
    kept = {r["id"] for r in resolved}
    lost = [
        r for r in (listed if listed is not None else [records]) if not (isinstance(r, Mapping) and r.get("id") in kept)
    ]
    if lost:
        names = [str(r.get("name") or "adjunto") if isinstance(r, Mapping) else "adjunto" for r in lost]
        review.refused.append(Refused(ATTACHMENT, shown_value(", ".join(names)), "not_found"))
        logger.warning("dropped %d attachment record(s) the store does not hold for this conversation", len(lost))


def refusal_says(refused: Refused, slots: Mapping[str, Any], catalog: Catalog) -> list[Say]:
    """The form's usual refusal for a stored value, told again when its question comes."""
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    spec = request_type.field(refused.field) if request_type else None
    if refused.field in (EMAIL, PHONE):
        return [Say(f"utter_invalid_{refused.field}_{refused.problem}", {"value": refused.value})]
    if refused.field == ITEM and spec is not None:
        return [Say("utter_invalid_item", {"value": refused.value, "label": spec.label})]
    if refused.field == DESCRIPTION and spec is not None:
        return [
            Say(
                f"utter_invalid_description_{refused.problem}",
                {"min_words": spec.min_words, "max_chars": DESCRIPTION_MAX_CHARS},
            )
        ]
    return []
