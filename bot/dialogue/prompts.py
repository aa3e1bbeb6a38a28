"""What the form says when it asks for a slot, including the summary.

Button titles and field labels come from the catalog; the sentences around
them are domain responses (``utter_question_*``), so wording lives in one
place. They are deliberately not named ``utter_ask_<slot>``: the validation
action asks the next question itself (one call to the action server per
turn instead of two), and Rasa's form would otherwise ask it a second time.
"""

from __future__ import annotations

from typing import Any, Mapping

from bot.catalog import Catalog, RequestType
from bot.dialogue.articles import offer_question
from bot.dialogue.description import shown_description
from bot.dialogue.form import Step
from bot.dialogue.slots import (
    CONFIRMATION,
    CORRECTION_FIELD,
    DESCRIPTION,
    EMAIL,
    ITEM,
    KB_ANSWER,
    PHONE,
    PHONE_CANDIDATES,
    PHONE_COUNTRY,
    REDIRECTED_FROM,
    REQUEST_TYPE,
)
from bot.dialogue.turn import Button, Say, payload
from bot.dialogue.validate import phone_countries
from bot.validation import format_phone


def type_path(request_type: RequestType, catalog: Catalog) -> str:
    """ "Categoría → Tipo", how the portal names a request type in context."""
    return f"{catalog.category_of(request_type).name} → {request_type.name}"


def _attachment_names(value: Any, catalog: Catalog) -> str:
    names = [str(a.get("name")) for a in value or () if isinstance(a, Mapping)]
    return ", ".join(names) if names else catalog.label("none")


def summary(slots: Mapping[str, Any], catalog: Catalog) -> str:
    """Every field of the request with its value, one per line."""
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    if request_type is None:
        return ""
    lines = [f"• {catalog.label('request_type')}: {type_path(request_type, catalog)}"]
    for spec in request_type.fields:
        value = slots.get(spec.id)
        if spec.kind == "option":
            option = spec.option(value)
            shown = option.name if option else catalog.label("none")
        elif spec.kind == "phone":
            shown = format_phone(value) if value else catalog.label("none")
        elif spec.kind == "attachment":
            shown = _attachment_names(value, catalog)
        elif spec.id == DESCRIPTION and value:
            # As the ticket will have it: the request's own e-mail and phone are shown as fields.
            countries = catalog.country_ids
            shown = shown_description(str(value), slots.get(EMAIL), slots.get(PHONE), countries, spec.min_words) or ""
        else:
            shown = str(value) if value else catalog.label("none")
        lines.append(f"• {spec.label}: {shown}")
    return "\n".join(lines)


def ask(slot: str, slots: Mapping[str, Any], catalog: Catalog) -> list[Say]:
    """The question for ``slot`` in the current request."""
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    if request_type is None:
        return []
    spec = request_type.field(slot)
    if slot == ITEM and spec is not None:
        buttons = tuple(Button(o.name, payload("inform", item=o.id)) for o in spec.options)
        return [Say("utter_question_item", {"label": spec.label}, buttons)]
    if slot == DESCRIPTION:
        retired = catalog.retired_option(slots.get(REDIRECTED_FROM))
        if retired is not None:
            return [Say("utter_question_description_redirect", {"prompt": retired.redirect.description_prompt})]
        return [Say("utter_question_description", {"request_type": request_type.name})]
    if slot == KB_ANSWER:
        return offer_question(slots)
    if slot == EMAIL and spec is not None:
        return [Say("utter_question_email", {"label": spec.label})]
    if slot == PHONE:
        return [Say("utter_question_phone")]
    if slot == PHONE_COUNTRY:
        candidates: Mapping[str, str] = slots.get(PHONE_CANDIDATES) or {}
        countries = phone_countries(candidates, slots.get(EMAIL), catalog)
        buttons = tuple(Button(c.name, payload("inform", country=c.id)) for c in countries)
        return [
            Say(
                "utter_question_phone_country",
                {"countries": " y ".join(c.name for c in countries)},
                buttons,
            )
        ]
    if slot == CONFIRMATION:
        buttons = (
            Button(catalog.label("send"), payload("affirm")),
            Button(catalog.label("correct"), payload("correct")),
            Button(catalog.label("cancel"), payload("cancel")),
        )
        return [Say("utter_question_confirmation", {"summary": summary(slots, catalog)}, buttons)]
    if slot == CORRECTION_FIELD:
        buttons = tuple(
            Button(f.short_label if f.kind == "email" else f.label, payload("correct", field=f.id))
            for f in request_type.fields
        ) + (Button(catalog.label("back_to_summary"), payload("affirm")),)
        return [Say("utter_question_correction_field", {}, buttons)]
    return []


def step_messages(step: Step, slots: Mapping[str, Any], catalog: Catalog) -> list[Say]:
    """A form turn's messages, then the question for the slot it needs next.

    A message that brings its own buttons (a choice validation had to offer)
    is the question of this turn; the slot's usual one would compete with it.
    """
    if step.reject:
        return []
    if step.next_slot is None or any(say.buttons for say in step.says):
        return list(step.says)
    return list(step.says) + ask(step.next_slot, {**slots, **step.updates}, catalog)
