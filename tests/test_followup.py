"""Reply mode (bot/dialogue/followup.py): what the customer writes while an agent waits for them.

The decisions run against a real help desk on SQLite (tests/followup_desk.py):
what reaches the ticket is read back from its thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.catalog import Catalog
from bot.dialogue import followup
from bot.dialogue.followup import REPLY_ACKED_SINCE, REPLY_DECLINED_SINCE, REPLY_PENDING, Step
from bot.thread.model import COMMENT, LOCAL
from tests.followup_desk import CONV, OTHER, Desk, make_desk, reply_slots, title_of, turn

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def desk(tmp_path: Path, catalog: Catalog) -> Desk:
    return make_desk(tmp_path, catalog)


def step(desk: Desk, catalog: Catalog, message: Any, slots: dict[str, Any]) -> Step:
    return followup.reply_step(message, slots, desk.port, catalog, desk.files)


def comments(desk: Desk, key: str) -> list[str]:
    return [m.body for m in desk.for_desk(key, COMMENT)]


def test_an_answer_reaches_the_ticket_and_is_acknowledged_once_per_agent_message(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    asked = desk.agent_says(ticket, "¿Nos envías el archivo que falla?", "jsm-comment:1")
    slots = reply_slots(asked)

    first = step(desk, catalog, turn("Sí, es el de cartera de ayer", message_id="m-1"), slots)
    assert first.next_slot == "reply_text" and not first.release and not first.reject
    (said,) = first.says
    assert said.response == "utter_reply_forwarded" and said.kwargs["title"] == title_of(ticket)
    assert [b.payload for b in said.buttons] == ["/menu"]  # a way out, right there
    (sent,) = desk.for_desk(ticket.key, COMMENT)
    assert (sent.body, sent.source, sent.delivery_status) == ("Sí, es el de cartera de ayer", "customer:m-1", LOCAL)
    assert first.updates[REPLY_ACKED_SINCE] == asked.id

    # Another message before the agent answers: a short acknowledgement, never the whole text again.
    second = step(desk, catalog, turn("lo subí a las 10", message_id="m-2"), {**slots, **first.updates})
    assert [s.response for s in second.says] == ["utter_reply_forwarded_again"]
    assert second.says[0].kwargs["key"] == ticket.key
    assert comments(desk, ticket.key) == ["Sí, es el de cartera de ayer", "lo subí a las 10"]

    # The agent speaks again: the next answer is acknowledged in full.
    again = desk.agent_says(ticket, "Gracias, ¿desde qué usuario?", "jsm-comment:2")
    third = step(
        desk, catalog, turn("desde ana.perez", message_id="m-3"), {**slots, **second.updates, **reply_slots(again)}
    )
    assert [s.response for s in third.says] == ["utter_reply_forwarded"]


def test_a_retried_turn_posts_the_message_once(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Cuál es el usuario?", "jsm-comment:1"))
    for _ in range(2):  # Rasa retried the action after a timeout
        step(desk, catalog, turn("ana.perez", message_id="m-7"), slots)
    assert comments(desk, ticket.key) == ["ana.perez"]


def test_files_go_with_the_answer_and_only_this_conversations_own(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "Envíanos la captura", "jsm-comment:1"))
    mine = desk.files.save("captura.png", "image/png", PNG, owner=CONV).as_metadata()
    theirs = desk.files.save("ajeno.png", "image/png", PNG, owner=OTHER).as_metadata()
    result = step(desk, catalog, turn("", "attach", attachments=[mine, theirs]), slots)
    (sent,) = desk.for_desk(ticket.key, COMMENT)
    assert [a.id for a in sent.attachments] == [mine["id"]]
    assert sent.body == followup.ONLY_FILES
    assert "captura.png" in result.says[0].kwargs["files"] and "ajeno" not in result.says[0].kwargs["files"]


def test_card_numbers_are_masked_before_the_help_desk_sees_them(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Con qué tarjeta pagaste?", "jsm-comment:1"))
    step(desk, catalog, turn("con la 4111 1111 1111 1111"), slots)
    (body,) = comments(desk, ticket.key)
    assert "4111 1111 1111 1111" not in body


@pytest.mark.parametrize(
    "words, intent",
    [("nueva solicitud", "nlu_fallback"), ("menú", "menu"), ("es otra consulta", "inform"), ("/menu", "menu")],
)
def test_menu_or_a_new_request_leaves_and_is_remembered(desk: Desk, catalog: Catalog, words: str, intent: str) -> None:
    ticket = desk.ticket()
    asked = desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1")
    slots = reply_slots(asked)
    left = step(desk, catalog, turn(words, intent), slots)
    assert left.next_slot is None and not left.release  # the form ends here, with the menu shown
    assert [s.response for s in left.says] == ["utter_menu_categories"]
    assert left.updates[REPLY_DECLINED_SINCE] == asked.id
    assert comments(desk, ticket.key) == []

    # The form open again for the same agent message (a new session carried it): still not forwarded.
    later = step(desk, catalog, turn("no me carga el PSE", message_id="m-2"), {**slots, **left.updates})
    assert later.release and comments(desk, ticket.key) == []

    # The agent speaks again: answers reach the ticket again.
    newer = desk.agent_says(ticket, "¿Sigues ahí?", "jsm-comment:2")
    back = step(
        desk, catalog, turn("sí, aquí estoy", message_id="m-3"), {**slots, **left.updates, **reply_slots(newer)}
    )
    assert comments(desk, ticket.key) == ["sí, aquí estoy"] and not back.release


def test_cancel_leaves_without_forwarding(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    asked = desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1")
    left = step(desk, catalog, turn("cancelar", "cancel"), reply_slots(asked))
    assert left.next_slot is None and [s.response for s in left.says] == ["utter_reply_left"]
    assert left.says[0].kwargs["key"] == ticket.key and left.updates[REPLY_DECLINED_SINCE] == asked.id
    assert comments(desk, ticket.key) == []


def test_a_button_of_another_flow_goes_to_the_normal_flow(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    asked = desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1")
    button = turn('/choose_request_type{"request_type":"pago_en_linea"}', "choose_request_type")
    released = step(desk, catalog, button, reply_slots(asked))
    assert released.release and released.says == [] and released.updates[REPLY_DECLINED_SINCE] == asked.id
    stale_yes = step(desk, catalog, turn("/affirm", "affirm"), reply_slots(asked))  # nothing kept to confirm
    assert stale_yes.release
    assert comments(desk, ticket.key) == []  # a payload is never text for the agent


def test_words_that_read_as_a_new_request_are_asked_about_and_kept(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    request_type = next(rt for rt in catalog.request_types if rt.id != ticket.request_type_id)
    words = "tampoco me deja pagar con PSE desde ayer"
    asked = step(desk, catalog, turn(words, request_type.intent, 0.93, message_id="m-9"), slots)
    (question,) = asked.says
    assert question.response == "utter_reply_ask_which" and question.kwargs["title"] == title_of(ticket)
    assert [b.title for b in question.buttons] == [f"Es para {ticket.key}", "Es una nueva solicitud"]
    assert question.buttons[0].payload == "/affirm"
    assert question.buttons[1].payload == (
        f'/choose_request_type{{"request_type":"{request_type.id}","opening":"kept"}}'
    )
    assert asked.next_slot == "reply_text" and asked.updates["original_text"] == words
    assert comments(desk, ticket.key) == []

    # «Es para ECO-…»: the kept words reach the agent, with the message's own id.
    kept = {**slots, **asked.updates}
    sent = step(desk, catalog, turn("/affirm", "affirm", message_id="m-10"), kept)
    assert [s.response for s in sent.says] == ["utter_reply_forwarded"] and sent.updates[REPLY_PENDING] is None
    (comment,) = desk.for_desk(ticket.key, COMMENT)
    assert (comment.body, comment.source) == (words, "customer:m-9")


def test_words_that_read_as_the_tickets_own_type_go_to_its_agent(desk: Desk, catalog: Catalog) -> None:
    """«se llama cartera_diciembre.csv» reads as the ticket's own type: about the ticket, not a new request."""
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Cómo se llama el archivo?", "jsm-comment:1"))
    own = catalog.request_type(ticket.request_type_id)
    assert own is not None
    sent = step(desk, catalog, turn("se llama cartera_diciembre.csv", own.intent, 0.95, message_id="m-1"), slots)
    assert [s.response for s in sent.says] == ["utter_reply_forwarded"]
    assert comments(desk, ticket.key) == ["se llama cartera_diciembre.csv"]


def test_the_new_request_choice_forwards_nothing_and_keeps_the_files(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    image = desk.files.save("error.png", "image/png", PNG, owner=CONV).as_metadata()
    request_type = next(rt for rt in catalog.request_types if rt.id != ticket.request_type_id)
    asked = step(desk, catalog, turn("no puedo pagar", request_type.intent, 0.9, attachments=[image]), slots)
    choice = turn(asked.says[0].buttons[1].payload, "choose_request_type")
    chosen = step(desk, catalog, choice, {**slots, **asked.updates})
    assert chosen.release and [a["id"] for a in chosen.updates["attachment"]] == [image["id"]]
    assert comments(desk, ticket.key) == []

    # «No» to the question: nothing forwarded either, and the request can still be opened.
    no = step(desk, catalog, turn("no", "deny"), {**slots, **asked.updates})
    assert no.next_slot is None and [s.response for s in no.says] == ["utter_reply_not_forwarded"]
    assert no.says[0].buttons[0].payload == choice.text and comments(desk, ticket.key) == []


def test_side_questions_are_answered_by_their_rules_and_reply_mode_stays(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    assert step(desk, catalog, turn("¿cómo va mi caso?", "check_status"), slots).reject
    assert step(desk, catalog, turn("quiero hablar con una persona", "human_handoff"), slots).reject
    resumed = step(desk, catalog, turn("¿cómo va mi caso?", "check_status", mode="resume"), slots)
    assert (resumed.next_slot, resumed.says, resumed.release) == ("reply_text", [], False)
    assert comments(desk, ticket.key) == []


def test_a_resolved_ticket_no_longer_takes_answers(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    desk.resolve(ticket)
    released = step(desk, catalog, turn("ya lo envié"), slots)
    assert released.release and released.updates["reply_ticket"] is None
    assert comments(desk, ticket.key) == []


def test_another_conversation_never_reaches_the_ticket(desk: Desk, catalog: Catalog) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    # Luis's conversation with slots naming Ana's ticket (restored, tampered): the thread decides, not the slots.
    released = step(desk, catalog, turn("borren todo", sender=OTHER), slots)
    assert released.release and comments(desk, ticket.key) == []
    assert desk.port.forward(ticket.key, OTHER, "hola", (), source="customer:x") is False
    assert comments(desk, ticket.key) == []


def test_with_the_thread_down_the_answer_is_kept_and_goes_with_the_next_one(
    desk: Desk, catalog: Catalog, tmp_path: Path
) -> None:
    ticket = desk.ticket()
    slots = reply_slots(desk.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1"))
    desk.break_thread()
    down = step(desk, catalog, turn("aquí va", message_id="m-1"), slots)
    assert [s.response for s in down.says] == ["utter_reply_unavailable"] and down.next_slot == "reply_text"
    assert [m["text"] for m in down.updates[REPLY_PENDING]] == ["aquí va"]

    # The database is back (a new thread object creates the table); the earlier news went with the table.
    restored = make_desk(tmp_path, catalog)
    asked = restored.agent_says(ticket, "¿Nos envías el archivo?", "jsm-comment:1")
    step(restored, catalog, turn("y esto también", message_id="m-2"), {**reply_slots(asked), **down.updates})
    assert comments(restored, ticket.key) == ["aquí va", "y esto también"]


def test_a_new_session_keeps_an_open_reply_or_csat_form_only() -> None:
    assert followup.carried_loop("reply_form", {"reply_ticket": "ECO-000001"}) == ("reply_form", "reply_text")
    assert followup.carried_loop("reply_form", {"reply_ticket": None}) is None
    assert followup.carried_loop("csat_form", {"requested_slot": "csat_comment"}) == ("csat_form", "csat_comment")
    assert followup.carried_loop("ticket_form", {"requested_slot": "email", "reply_ticket": "ECO-1"}) is None
    assert followup.carried_loop(None, {"reply_ticket": "ECO-000001"}) is None
