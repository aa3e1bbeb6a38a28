"""Direct questions outside the form, answered from the knowledge base, and the customer's verdict on them.

«¿Cómo …?», «¿qué es …?», «¿dónde …?» reach the assistant as whatever the
NLU reads (a request type, a catalog question, low confidence). When an
article clears the threshold it is the answer, with «Sí, esto me sirvió» /
«No, sigo con la solicitud»: «me sirvió» ends there, with no ticket;
«sigo» opens the request the NLU read (``OFFERED_TYPE``), or shows the menu.
Otherwise the path behaves as it did before the knowledge base.
The retired-option redirect never comes here: its intent has its own rule.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from bot.catalog import Catalog, RequestType
from bot.dialogue import articles
from bot.dialogue.navigation import categories_menu, explain
from bot.dialogue.ports import Knowledge
from bot.dialogue.prompts import type_path
from bot.dialogue.requests import reset_request
from bot.dialogue.slots import (
    FALLBACK_COUNT,
    KB_ARTICLES,
    KB_DECLINED,
    KB_OFFERED,
    KB_RESOLVED,
    OFFERED_REDIRECT,
    OFFERED_TYPE,
    ORIGINAL_TEXT,
    REQUEST_TYPE,
)
from bot.dialogue.turn import Say, Turn

Outcome = tuple[dict[str, Any], list[Say]]

UNKNOWN_INFO = "utter_request_type_info_unknown"  # navigation.explain found nothing in the catalog


def answer_question(
    turn: Turn, catalog: Catalog, knowledge: Optional[Knowledge], request_type: Optional[RequestType] = None
) -> Optional[Outcome]:
    """The articles answering a direct question, with the two buttons; None when it is no question or none fits.

    ``request_type``: what the NLU read in the question, opened by «sigo».
    """
    if knowledge is None or turn.is_payload or not articles.is_direct_question(turn.text):
        return None
    type_id = request_type.id if request_type else None
    found = [m.article for m in articles.search(knowledge, turn.text, type_id)]
    if not found:
        return None
    shown = articles.show(knowledge, turn, articles.ANSWERED, found, type_id)
    updates = {
        KB_OFFERED: [a["id"] for a in shown],
        KB_ARTICLES: shown,
        OFFERED_TYPE: type_id,
        OFFERED_REDIRECT: None,
        ORIGINAL_TEXT: turn.text,
        FALLBACK_COUNT: 0,
    }
    return updates, [Say("utter_kb_answer", {"articles": articles.article_lines(shown)}, articles.buttons())]


def answered(updates: Mapping[str, Any]) -> bool:
    """The action answered a question instead of starting a request: the customer is waited for."""
    return bool(updates.get(KB_OFFERED)) and not updates.get(REQUEST_TYPE)


def pending(slots: Mapping[str, Any]) -> bool:
    """Articles shown outside a form await the customer's verdict."""
    return bool(articles.offered(slots)) and not slots.get(REQUEST_TYPE)


def resolved() -> Outcome:
    """«Me sirvió»: the request ends as solved by an article, with no ticket."""
    updates = {**reset_request(), ORIGINAL_TEXT: None, KB_RESOLVED: True}
    return updates, [Say("utter_kb_resolved")]


def verdict(
    turn: Turn,
    slots: Mapping[str, Any],
    catalog: Catalog,
    knowledge: Optional[Knowledge],
    given: Optional[str] = None,
) -> Optional[Outcome]:
    """The customer's verdict on articles shown outside a form; None when none are pending or it is no verdict.

    ``given``: what the path already means («no» is a decline); otherwise
    read from the button or the words.
    """
    if not pending(slots):
        return None
    choice = given or articles.read_verdict(turn)
    if choice not in (articles.HELPFUL, articles.DECLINED):
        return None
    request_type = catalog.request_type(slots.get(OFFERED_TYPE))
    articles.record_verdict(knowledge, turn, choice, slots, request_type.id if request_type else None)
    if choice == articles.HELPFUL:
        return resolved()
    if request_type is None:
        updates = {**reset_request(keep_attachments=True), ORIGINAL_TEXT: None, KB_DECLINED: True}
        return updates, [Say("utter_kb_declined")] + categories_menu(catalog)
    updates = {
        **reset_request(keep_attachments=True),
        FALLBACK_COUNT: 0,
        REQUEST_TYPE: request_type.id,
        ORIGINAL_TEXT: slots.get(ORIGINAL_TEXT),
        KB_ARTICLES: slots.get(KB_ARTICLES),  # listed in the ticket for the agent
        KB_DECLINED: True,
    }
    return updates, [Say("utter_request_started", {"request_type": type_path(request_type, catalog)})]


def opens_request(updates: Mapping[str, Any]) -> bool:
    """«Sigo» opened the request the question was about: the ticket form asks what it needs."""
    return bool(updates.get(REQUEST_TYPE)) and bool(updates.get(KB_DECLINED))


def explain_or_answer(
    turn: Turn, slots: Mapping[str, Any], catalog: Catalog, knowledge: Optional[Knowledge], form_active: bool
) -> Outcome:
    """«¿Qué es …?»: the catalog's explanation; what the catalog does not know, the knowledge base answers.

    Inside the form the articles come without buttons: the form asks its
    pending question right after.
    """
    says = explain(turn, catalog)
    if not says or says[0].response != UNKNOWN_INFO or knowledge is None:
        return {}, says
    if form_active:
        request_type = catalog.request_type(slots.get(REQUEST_TYPE))
        if request_type is not None and articles.is_direct_question(turn.text):
            in_form = articles.answer_in_form(turn, request_type, knowledge)
            if in_form:
                return {}, in_form
        return {}, says
    return answer_question(turn, catalog, knowledge) or ({}, says)
