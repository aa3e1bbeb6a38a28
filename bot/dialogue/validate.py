"""Validating the values a turn brings: each checked as the catalog's field demands, refused with the reason.

A refused value comes back empty, so the form asks it again, with a response
that says what was wrong; a valid one comes back normalised (an E.164 phone,
an option id). Some answers open a choice instead: a phone valid in two
countries asks the country, an e-mail that looks mistyped is shown back.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from bot.catalog import Catalog, Country, RetiredOption
from bot.dialogue.extract import ITEM_OR_RETIRED, UNPARSED
from bot.dialogue.slots import (
    CONFIRMATION,
    CORRECTION_FIELD,
    COUNTRY,
    DESCRIPTION,
    EMAIL,
    EMAIL_QUESTIONED,
    ITEM,
    PHONE,
    PHONE_CANDIDATES,
    PHONE_COUNTRY,
    REDIRECTED_FROM,
    REQUEST_TYPE,
)
from bot.dialogue.turn import Button, Say, payload
from bot.validation import (
    DESCRIPTION_MAX_CHARS,
    check_description,
    check_email,
    check_option,
    check_phone,
    likelier_first,
    suggest_email,
)

Validated = tuple[dict[str, Any], list[Say]]


def valid_candidates(value: Any, catalog: Catalog) -> bool:
    """Country -> E.164 numbers as ``_validate_phone`` stores them: each valid in its country."""
    if not isinstance(value, Mapping) or len(value) < 2:
        return False
    return all(
        isinstance(country, str)
        and isinstance(number, str)
        and country in catalog.country_ids
        and check_phone(number, [country]).e164 == number
        for country, number in value.items()
    )


def _validate_email(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    if value is None:
        return {EMAIL: None}, []
    check = check_email(str(value))
    if check.ok:
        suggestion = suggest_email(check.value or "")
        if suggestion and check.value != slots.get(EMAIL_QUESTIONED):
            # Asked once: the same address again (typed or the button) is accepted as is.
            buttons = (
                Button(
                    catalog.label("email_suggestion_yes").format(email=suggestion), payload("inform", email=suggestion)
                ),
                Button(
                    catalog.label("email_suggestion_no").format(email=check.value), payload("inform", email=check.value)
                ),
            )
            return {EMAIL: None, EMAIL_QUESTIONED: check.value}, [
                Say("utter_email_typo", {"value": check.value, "suggestion": suggestion}, buttons)
            ]
        cleared = {EMAIL_QUESTIONED: None} if slots.get(EMAIL_QUESTIONED) else {}
        return {EMAIL: check.value, **cleared}, []
    return {EMAIL: None}, [Say(f"utter_invalid_email_{check.problem}", {"value": str(value)})]


def _validate_phone(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    if value is None:
        return {PHONE: None}, []
    check = check_phone(str(value), catalog.country_ids, slots.get(COUNTRY))
    if check.ok:
        updates: dict[str, Any] = {PHONE: check.e164, PHONE_CANDIDATES: None}
        if not slots.get(COUNTRY):
            updates[COUNTRY] = check.country
        return updates, []
    if check.ambiguous:
        return {PHONE: None, PHONE_CANDIDATES: check.candidates}, []
    return {PHONE: None, PHONE_CANDIDATES: None}, [Say(f"utter_invalid_phone_{check.problem}", {"value": str(value)})]


def phone_countries(candidates: Mapping[str, str], email: Optional[str], catalog: Catalog) -> list[Country]:
    """The countries a phone is valid in, the one the e-mail's domain names first (asked, never assumed)."""
    known = [c.id for c in catalog.countries if c.id in candidates]
    return [c for c in map(catalog.country, likelier_first(known, email)) if c is not None]


def _validate_phone_country(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    stored: Any = slots.get(PHONE_CANDIDATES)
    candidates: Mapping[str, str] = stored if valid_candidates(stored, catalog) else {}
    country = str(value).upper() if value else None
    if country and country in candidates:
        return {PHONE: candidates[country], COUNTRY: country, PHONE_CANDIDATES: None, PHONE_COUNTRY: None}, []
    names = " o ".join(c.name for c in phone_countries(candidates, slots.get(EMAIL), catalog))
    return {PHONE_COUNTRY: None}, [Say("utter_invalid_phone_country", {"countries": names})]


def _validate_item(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    spec = request_type.field(ITEM) if request_type else None
    if value is None or spec is None:
        return {ITEM: None}, []
    retired = catalog.retired_option(str(value))
    if retired is not None:
        return redirect_retired(retired, catalog)
    check = check_option(str(value), spec)
    if check.ok:
        return {ITEM: check.value}, []
    return {ITEM: None}, [Say("utter_invalid_item", {"value": str(value), "label": spec.label})]


def redirect_retired(retired: RetiredOption, catalog: Catalog) -> Validated:
    """Switch the request to the retired option's redirect target, saying why."""
    target = catalog.request_type(retired.redirect.request_type_id)
    assert target is not None  # guaranteed by the catalog's own validation
    category = catalog.category_of(target)
    return (
        {ITEM: None, REQUEST_TYPE: target.id, REDIRECTED_FROM: retired.id},
        [
            Say("utter_retired_option", {"explanation": retired.explanation}),
            Say("utter_redirect_started", {"category": category.name, "request_type": target.name}),
        ],
    )


def _ask_item_or_retired(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    """Both buttons answer the ítem question: the active option, or the retired one (redirected)."""
    item_id, retired = value
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    spec = request_type.field(retired.field_id) if request_type else None
    option = spec.option(item_id) if spec else None
    if option is None:
        return {}, []
    buttons = (
        Button(option.name, payload("inform", **{retired.field_id: option.id})),
        Button(
            catalog.label("retired_choice").format(name=retired.name),
            payload("inform", **{retired.field_id: retired.id}),
        ),
    )
    return {retired.field_id: None}, [
        Say("utter_item_or_retired", {"item": option.name, "retired": retired.name}, buttons)
    ]


def _validate_description(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    spec = request_type.field(DESCRIPTION) if request_type else None
    if value is None or spec is None:
        return {DESCRIPTION: None}, []
    check = check_description(str(value), spec)
    if check.ok:
        return {DESCRIPTION: check.value}, []
    return {DESCRIPTION: None}, [
        Say(
            f"utter_invalid_description_{check.problem}",
            {"min_words": spec.min_words, "max_chars": DESCRIPTION_MAX_CHARS},
        )
    ]


def _validate_country(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    country = catalog.country(str(value).upper()) if value else None
    return ({COUNTRY: country.id}, []) if country else ({}, [])


_VALIDATORS: dict[str, Callable[[Any, Mapping[str, Any], Catalog], Validated]] = {
    # Order matters: the country decides ambiguous phones, the ítem may switch
    # the request type and so change which other fields apply.
    COUNTRY: _validate_country,
    ITEM_OR_RETIRED: _ask_item_or_retired,
    ITEM: _validate_item,
    PHONE_COUNTRY: _validate_phone_country,
    PHONE: _validate_phone,
    EMAIL: _validate_email,
    DESCRIPTION: _validate_description,
}

_UNPARSED_SAYS = {
    CONFIRMATION: "utter_confirmation_help",
    CORRECTION_FIELD: "utter_invalid_correction_field",
}


def validate(updates: Mapping[str, Any], slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    """Validate candidate slot values; refused ones come back empty, with a reason."""
    pending = dict(updates)
    unparsed = pending.pop(UNPARSED, None)
    merged = dict(slots)
    result: dict[str, Any] = {}
    says: list[Say] = []
    ordered = [k for k in _VALIDATORS if k in pending] + [k for k in pending if k not in _VALIDATORS]
    for key in ordered:
        validator = _VALIDATORS.get(key)
        if pending[key] is None and key == unparsed:
            changes: dict[str, Any] = {key: None}
            noted = [k for k in pending if k not in (key, COUNTRY) and pending[k] is not None]
            if noted:
                messages = [Say("utter_noted_still_missing")]
            else:
                messages = [Say(_UNPARSED_SAYS.get(key, "utter_answer_not_understood"))]
        elif validator is None:
            changes, messages = {key: pending[key]}, []
        else:
            changes, messages = validator(pending[key], merged, catalog)
        result.update(changes)
        merged.update(changes)
        says.extend(messages)
    return result, says
