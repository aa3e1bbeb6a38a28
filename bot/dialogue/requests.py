"""Starting, redirecting and cancelling a request.

A request starts from a request-type intent (free text), a menu or suggestion
button (payload), or a "sí" to an offer. A retired option never starts its own
request: the customer is told why and sent to the redirect target.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from bot.catalog import Catalog, RetiredOption
from bot.dialogue.form import REQUEST_SLOTS, redirect_retired
from bot.dialogue.navigation import categories_menu
from bot.dialogue.prompts import payload, type_path
from bot.dialogue.turn import Button, Say, Turn

# Slots that remember an offer until the customer answers it.
OFFERED_TYPE = "offered_request_type"
OFFERED_REDIRECT = "offered_redirect"

Outcome = tuple[dict[str, Any], list[Say]]


def reset_request(keep_attachments: bool = False) -> dict[str, Any]:
    """Empty every per-request slot; contact data (e-mail, phone, country) stays.

    Files sent before the request started belong to it, so starting a request
    keeps them; creating or cancelling one clears them.
    """
    updates: dict[str, Any] = {slot: None for slot in REQUEST_SLOTS if not (keep_attachments and slot == "attachment")}
    updates.update(
        {
            "request_type": None,
            "requested_slot": None,
            OFFERED_TYPE: None,
            OFFERED_REDIRECT: None,
        }
    )
    return updates


def start_request(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    """Set the request type this turn asks for and clear the previous request.

    The type comes from a button payload, a "sí" to a pending offer, or the
    request-type intent of free text, in that order.
    """
    offered_type = catalog.request_type(slots.get(OFFERED_TYPE))
    offered_redirect = catalog.retired_option(slots.get(OFFERED_REDIRECT))
    # A request-type entity is a choice only when a button sent it.
    requested = turn.entity("request_type") if turn.is_payload else None
    redirect_from: Optional[RetiredOption] = None
    if requested is not None:
        retired = catalog.retired_option(requested)
        if retired is not None:
            # A retired option picked directly: explain, then open its target.
            updates = {**reset_request(keep_attachments=True), "original_text": None, "fallback_count": 0}
            changes, says = redirect_retired(retired, catalog)
            return {**updates, **changes}, says
        request_type = catalog.request_type(requested)
        redirect_from = catalog.retired_option(turn.entity("redirected_from"))
    elif turn.intent == "affirm" and offered_type is not None:
        request_type, redirect_from = offered_type, offered_redirect
    else:
        request_type = catalog.request_type_for_intent(turn.intent)

    accepted_offer = request_type is not None and request_type == offered_type
    updates = reset_request(keep_attachments=True)
    updates["fallback_count"] = 0
    if accepted_offer:
        # The words that led to the offer are the request's opening message.
        updates["original_text"] = slots.get("original_text")
    else:
        updates["original_text"] = None if turn.is_payload else turn.text
    if request_type is None:
        updates["original_text"] = None
        return updates, [Say("utter_unknown_request_type")] + categories_menu(catalog)

    updates["request_type"] = request_type.id
    if redirect_from is not None and redirect_from.redirect.request_type_id == request_type.id:
        updates["redirected_from"] = redirect_from.id
        category = catalog.category_of(request_type)
        return updates, [
            Say("utter_redirect_started", {"category": category.name, "request_type": request_type.name})
        ]
    return updates, [Say("utter_request_started", {"request_type": type_path(request_type, catalog)})]


def offer_redirect(turn: Turn, catalog: Catalog) -> Outcome:
    """A customer asked for a retired option in their own words: explain and offer."""
    retired: Optional[RetiredOption] = catalog.retired_for_intent(turn.intent)
    if retired is None:
        matches = catalog.match_retired(turn.text)
        retired = matches[0] if matches else None
    if retired is None:
        return {}, [Say("utter_unknown_request_type")] + categories_menu(catalog)
    target = catalog.request_type(retired.redirect.request_type_id)
    assert target is not None  # guaranteed by the catalog's own validation
    category = catalog.category_of(target)
    offer = retired.redirect.offer.format(category=category.name, request_type=target.name)
    buttons = (
        Button(
            catalog.label("redirect_accept"),
            payload("choose_request_type", request_type=target.id, redirected_from=retired.id),
        ),
        Button(catalog.label("redirect_decline"), payload("deny")),
    )
    updates = {
        OFFERED_TYPE: target.id,
        OFFERED_REDIRECT: retired.id,
        "original_text": None if turn.is_payload else turn.text,
    }
    return updates, [
        Say("utter_retired_option", {"explanation": retired.explanation}),
        Say("utter_redirect_offer", {"offer": offer}, buttons),
    ]


def decline_offer(slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    retired = catalog.retired_option(slots.get(OFFERED_REDIRECT))
    updates = {OFFERED_TYPE: None, OFFERED_REDIRECT: None, "original_text": None}
    if retired is None:
        return updates, [Say("utter_anything_else")]
    return updates, [Say("utter_offer_declined", {"declined": retired.redirect.declined})]


def cancel(slots: Mapping[str, Any], form_active: bool, catalog: Catalog) -> Outcome:
    request_type = catalog.request_type(slots.get("request_type"))
    updates = reset_request()
    updates["original_text"] = None
    if form_active and request_type is not None:
        return updates, [Say("utter_request_cancelled", {"request_type": request_type.name})]
    return updates, [Say("utter_nothing_to_cancel")]


def receive_attachment(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    """A file sent outside a form: kept for the request the customer opens next."""
    from bot.dialogue.form import attachments_in

    attachments, says = attachments_in(turn, slots, catalog)
    if attachments is None:
        return {}, [Say("utter_attachment_missing")]
    return {"attachment": attachments}, says + [Say("utter_attachment_kept")]
