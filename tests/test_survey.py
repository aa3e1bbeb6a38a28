"""The satisfaction survey in the chat (bot/dialogue/survey.py), against a real CSAT book and thread on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from bot.catalog import Catalog
from bot.dialogue import survey
from bot.dialogue.followup import CSAT_COMMENT_TICKET, Step
from bot.thread.model import CSAT
from bot.tickets.model import Ticket
from tests.followup_desk import CONV, OTHER, Desk, make_desk, title_of, turn


@pytest.fixture
def desk(tmp_path: Path, catalog: Catalog) -> Desk:
    return make_desk(tmp_path, catalog)


def asked(desk: Desk, conversation_id: str = CONV) -> tuple[Ticket, dict[str, Any]]:
    """A resolved ticket whose satisfaction question reached the customer, and the slots the worker set."""
    ticket = desk.ticket(conversation_id)
    desk.resolve(ticket)
    return ticket, {"csat_ticket": ticket.key, "requested_slot": "csat_rating"}


def step(desk: Desk, catalog: Catalog, message: Any, slots: dict[str, Any]) -> Step:
    return survey.csat_step(message, slots, desk.port, catalog)


def button(ticket_key: Any, rating: Any) -> Any:
    payload = f'/rate{{"ticket":"{ticket_key}","rating":{rating}}}'
    entities = [{"entity": "ticket", "value": ticket_key}, {"entity": "rating", "value": rating}]
    return turn(payload, "rate", 1.0, entities=entities)


def notes(desk: Desk, key: str) -> list[str]:
    return [m.body for m in desk.for_desk(key, CSAT)]


def rating_of(desk: Desk, key: str) -> tuple[Optional[int], Optional[str]]:
    answer = desk.book.get(key)
    assert answer is not None
    return answer.rating, answer.comment


@pytest.mark.parametrize(
    "words, rating",
    [
        ("5", 5), ("le doy un 4", 4), ("4/5", 4), ("3 de 5", 3), ("⭐⭐⭐", 3), ("excelente", 5),
        ("Excelente, gracias", 5), ("muy buena", 5), ("buena", 4), ("regular", 3), ("más o menos", 3),
        ("mala", 2), ("muy mala", 1),
        ("pésima", 1), ("no fue buena", 2), ("no me pareció muy buena", 2), ("cuatro", 4),
    ],
)  # fmt: skip
def test_a_rating_in_the_customers_words(words: str, rating: int) -> None:
    assert survey.rating_in(words) == rating


@pytest.mark.parametrize(
    "words", ["10", "4 y 5", "gracias", "ok", "", "el agente me explicó todo y quedó funcionando bien el cargue de hoy"]
)
def test_no_rating_where_there_is_none(words: str) -> None:
    assert survey.rating_in(words) is None


def test_a_button_rates_the_ticket_and_asks_why(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    rated = step(desk, catalog, button(ticket.key, 4), slots)
    assert rating_of(desk, ticket.key) == (4, None)
    (question,) = rated.says
    assert question.response == "utter_csat_ask_comment" and question.kwargs["rating"] == 4
    assert [b.payload for b in question.buttons] == ["/deny"]
    assert rated.next_slot == "csat_comment" and rated.updates[CSAT_COMMENT_TICKET] == ticket.key
    assert notes(desk, ticket.key) == ["Encuesta de satisfacción: el cliente calificó la atención con 4 de 5 (buena)."]


@pytest.mark.parametrize("words, rating", [("5", 5), ("mala", 2)])
def test_a_typed_rating_rates_the_ticket_asked(desk: Desk, catalog: Catalog, words: str, rating: int) -> None:
    ticket, slots = asked(desk)
    rated = step(desk, catalog, turn(words), slots)
    assert rating_of(desk, ticket.key) == (rating, None) and rated.next_slot == "csat_comment"
    # Without the worker's slot (a new session, a lost event), the open question is found in the book.
    second, _ = asked(desk)
    step(desk, catalog, turn("excelente"), {"requested_slot": "csat_rating"})
    assert rating_of(desk, second.key) == (5, None)


def test_the_comment_is_kept_and_copied_for_the_agents(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    rated = step(desk, catalog, button(ticket.key, 2), slots)
    after = {**slots, **rated.updates, "requested_slot": rated.next_slot}
    done = step(desk, catalog, turn("tardaron tres días en responder"), after)
    assert rating_of(desk, ticket.key) == (2, "tardaron tres días en responder")
    assert [s.response for s in done.says] == ["utter_csat_comment_saved"] and done.next_slot is None
    assert done.updates[CSAT_COMMENT_TICKET] is None
    assert (
        notes(desk, ticket.key)[-1]
        == "Comentario del cliente en la encuesta de satisfacción: tardaron tres días en responder"
    )


@pytest.mark.parametrize("message", [turn("no"), turn("no gracias", "deny"), turn("/deny", "deny", 1.0)])
def test_no_comment_ends_the_survey(desk: Desk, catalog: Catalog, message: Any) -> None:
    ticket, slots = asked(desk)
    rated = step(desk, catalog, button(ticket.key, 5), slots)
    done = step(desk, catalog, message, {**slots, **rated.updates, "requested_slot": rated.next_slot})
    assert [s.response for s in done.says] == ["utter_csat_thanks"] and done.next_slot is None
    assert rating_of(desk, ticket.key) == (5, None)


def test_a_forged_button_for_another_conversations_ticket_rates_nothing(desk: Desk, catalog: Catalog) -> None:
    theirs, _ = asked(desk, OTHER)
    mine, slots = asked(desk)
    refused = step(desk, catalog, button(theirs.key, 1), slots)
    assert [s.response for s in refused.says] == ["utter_csat_not_pending"] and refused.next_slot is None
    assert rating_of(desk, theirs.key) == (None, None) and notes(desk, theirs.key) == []
    forged = [("ECO-999999", 5), (mine.key, 9), (mine.key, True), (["ECO-000001"], 3), (mine.key, "5; drop")]
    forged += [(mine.key, "9" * 5000), ("ECO-" + "1" * 5000, 5), ({"$ne": ""}, 5), (mine.key, float("nan"))]
    for key, rating in forged:
        result = step(desk, catalog, button(key, rating), slots)
        assert [s.response for s in result.says] == ["utter_csat_not_pending"]
    assert rating_of(desk, mine.key) == (None, None)


def test_a_ticket_is_rated_once(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    step(desk, catalog, button(ticket.key, 5), slots)
    again = step(desk, catalog, button(ticket.key, 1), slots)
    assert [s.response for s in again.says] == ["utter_csat_not_pending"]
    assert rating_of(desk, ticket.key) == (5, None) and len(notes(desk, ticket.key)) == 1


def test_what_is_clearly_no_rating_leaves_the_survey_for_the_normal_flow(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    long_text = "ahora tengo otro problema: el botón de pagos en línea no aparece en el portal de mis clientes"
    for message in (turn(long_text), turn("hola", "greet"), turn("/menu", "menu", 1.0), turn("nueva solicitud")):
        left = step(desk, catalog, message, slots)
        assert left.release and left.says == [], message.text
    assert rating_of(desk, ticket.key) == (None, None)


def test_an_unclear_short_answer_is_asked_again_once(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    again = step(desk, catalog, turn("ok", "affirm"), slots)
    (question,) = again.says
    assert question.response == "utter_csat_ask_again" and question.kwargs["title"] == title_of(ticket)
    assert [b.payload for b in question.buttons][0] == f'/rate{{"ticket":"{ticket.key}","rating":1}}'
    assert again.next_slot == "csat_rating"
    assert step(desk, catalog, turn("ok", "affirm"), {**slots, **again.updates}).release


def test_declining_the_survey(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    done = step(desk, catalog, turn("no quiero", "deny"), slots)
    assert [s.response for s in done.says] == ["utter_csat_skipped"] and done.next_slot is None
    assert rating_of(desk, ticket.key) == (None, None)


def test_with_the_book_down_the_customer_is_told_and_asked_again(desk: Desk, catalog: Catalog) -> None:
    ticket, slots = asked(desk)
    assert rating_of(desk, ticket.key) == (None, None)  # the book is open (its schema is made on first use)
    desk.break_thread("ticket_thread", "csat_answers")
    down = step(desk, catalog, button(ticket.key, 4), slots)
    assert [s.response for s in down.says] == ["utter_csat_unavailable"] and down.next_slot == "csat_rating"


def test_a_button_pressed_inside_a_new_request_rates_at_once_without_asking_why(desk: Desk, catalog: Catalog) -> None:
    ticket, _ = asked(desk)
    rated = survey.rate_in_form(button(ticket.key, 3), desk.port, catalog)
    assert [s.response for s in rated.says] == ["utter_csat_rated"] and rated.next_slot is None
    assert rating_of(desk, ticket.key) == (3, None) and len(notes(desk, ticket.key)) == 1
    again = survey.rate_in_form(button(ticket.key, 1), desk.port, catalog)
    assert [s.response for s in again.says] == ["utter_csat_not_pending"] and rating_of(desk, ticket.key) == (3, None)
