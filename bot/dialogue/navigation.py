"""Finding the request type: the guided menu, low-confidence suggestions and
explanations of what each option is for.

Every button and list is built from the catalog; retired options are never
offered.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from bot.catalog import Catalog, Category, RequestType
from bot.dialogue.slots import FALLBACK_COUNT, ORIGINAL_TEXT, REQUEST_TYPE
from bot.dialogue.turn import Button, Say, Turn, payload

MAX_SUGGESTIONS = 3
# A choice button carrying this (entity "opening") keeps the words that led
# to the choice as the request's opening message: nothing said is asked again.
OPENING_KEPT = "kept"
# Below this share of the top candidate's confidence a suggestion is noise.
SUGGESTION_RELATIVE_FLOOR = 0.1


def menu_button(catalog: Catalog) -> Button:
    return Button(catalog.label("menu"), payload("menu"))


def greet(catalog: Catalog) -> list[Say]:
    return [Say("utter_greet", {}, (menu_button(catalog),))]


def categories_menu(catalog: Catalog) -> list[Say]:
    buttons = tuple(Button(c.name, payload("choose_category", category=c.id)) for c in catalog.categories)
    return [Say("utter_menu_categories", {}, buttons)]


def _type_line(request_type: RequestType, catalog: Catalog) -> str:
    badge = f" ({catalog.label('new_badge')})" if request_type.new else ""
    text = f"• {request_type.name}{badge}"
    if request_type.explanation:
        text += f": {request_type.explanation}"
    return text


def resolve_category(turn: Turn, catalog: Catalog) -> Optional[Category]:
    category = catalog.category(turn.entity("category"))
    if category is None and not turn.is_payload:
        matches = catalog.match_categories(turn.text)
        category = matches[0] if len(matches) == 1 else None
    return category


def request_types_menu(category: Category, catalog: Catalog) -> list[Say]:
    buttons = tuple(
        Button(rt.name, payload("choose_request_type", request_type=rt.id)) for rt in category.request_types
    ) + (Button(catalog.label("back"), payload("menu")),)
    options = "\n".join(_type_line(rt, catalog) for rt in category.request_types)
    return [Say("utter_menu_request_types", {"category": category.name, "options": options}, buttons)]


def choose_category(turn: Turn, catalog: Catalog) -> list[Say]:
    category = resolve_category(turn, catalog)
    if category is None:
        return [Say("utter_unknown_category")] + categories_menu(catalog)
    return request_types_menu(category, catalog)


def suggestions(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> tuple[dict[str, Any], list[Say]]:
    """Low confidence: offer the likeliest request types, or the menu on a second miss."""
    misses = int(slots.get(FALLBACK_COUNT) or 0) + 1
    if misses >= 2:
        return {FALLBACK_COUNT: 0}, [Say("utter_fallback_menu")] + categories_menu(catalog)
    ranked: list[tuple[float, RequestType]] = []
    for entry in turn.intent_ranking:
        request_type = catalog.request_type_for_intent(entry.get("name"))
        if request_type is not None:
            ranked.append((float(entry.get("confidence") or 0.0), request_type))
    ranked.sort(key=lambda pair: -pair[0])
    if ranked:
        floor = ranked[0][0] * SUGGESTION_RELATIVE_FLOOR
        ranked = [pair for pair in ranked if pair[0] >= floor]
    top = [rt for _, rt in ranked[:MAX_SUGGESTIONS]]
    if not top:
        return {FALLBACK_COUNT: misses}, [Say("utter_ask_rephrase")] + categories_menu(catalog)
    # The customer's words stay the opening message of whichever type is picked.
    buttons = tuple(
        Button(rt.name, payload("choose_request_type", request_type=rt.id, opening=OPENING_KEPT)) for rt in top
    )
    buttons += (Button(catalog.label("other"), payload("other")),)
    updates = {FALLBACK_COUNT: misses, ORIGINAL_TEXT: None if turn.is_payload else turn.text}
    return updates, [Say("utter_suggest_request_types", {}, buttons)]


def other(catalog: Catalog) -> list[Say]:
    """ "Otra cosa": none of the suggestions fit."""
    return [Say("utter_ask_rephrase", {}, (menu_button(catalog),))]


def explain(turn: Turn, catalog: Catalog) -> list[Say]:
    """Answer "¿qué es ...?" about a request type, category or retired option."""
    value = turn.entity(REQUEST_TYPE)
    retired = catalog.retired_option(value)
    if retired is None and not turn.is_payload:
        matched = catalog.match_retired(turn.text)
        retired = matched[0] if len(matched) == 1 else None
    if retired is not None:
        return [Say("utter_retired_option", {"explanation": retired.explanation})]
    request_type = catalog.request_type(value)
    if request_type is None and not turn.is_payload:
        matches = catalog.match_request_types(turn.text)
        request_type = matches[0] if len(matches) == 1 else None
    if request_type is not None:
        return [
            Say(
                "utter_request_type_info",
                {
                    "request_type": request_type.name,
                    "category": catalog.category_of(request_type).name,
                    "explanation": request_type.explanation,
                },
                # Naming a type is often choosing it: one click opens it.
                (Button(catalog.label("open_request"), payload("choose_request_type", request_type=request_type.id)),),
            )
        ]
    category = resolve_category(turn, catalog)
    if category is not None:
        return request_types_menu(category, catalog)
    return [Say("utter_request_type_info_unknown")] + categories_menu(catalog)


def form_help(slots: Mapping[str, Any], catalog: Catalog) -> list[Say]:
    """Inside a form: what is being asked and how to leave; the form then re-asks."""
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    if request_type is None:
        return [Say("utter_help")]
    return [Say("utter_form_help", {"request_type": request_type.name})]
