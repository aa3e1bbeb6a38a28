"""Each custom action, run with rasa_sdk's Tracker and CollectingDispatcher.

Actions are built as the action server builds them, with explicit services:
a real ticket store on SQLite and a real attachment store, both in a
temporary folder.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Optional

import pytest
import rasa_sdk
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as act
from actions.adapters import TicketDesk
from bot.action_server import build_app
from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.dialogue import prompts
from bot.tickets import TicketStore


def tracker(
    text: str = "",
    intent: Optional[str] = None,
    confidence: float = 0.95,
    slots: Optional[dict[str, Any]] = None,
    entities: Optional[list[dict[str, Any]]] = None,
    events: Optional[list[dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    ranking: Optional[list[dict[str, Any]]] = None,
    sender: str = "conv-test",
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
        "intent_ranking": ranking or [],
        "message_id": "msg-1",
    }
    if events is None:
        events = [
            {"event": "action", "name": "action_listen"},
            {"event": "user", "text": text, "parse_data": latest, "input_channel": "rest", "timestamp": 1.0},
            {"event": "action", "name": "action_extract_slots"},
        ]
    return Tracker(
        sender_id=sender,
        slots=dict(slots or {}),
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name=events[-1].get("name") if events else None,
    )


def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return events, dispatcher.messages


def slot_sets(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["response"] for m in messages]


@pytest.fixture
def tickets(tmp_path: Path, catalog: Catalog) -> TicketStore:
    return TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}", prefix=catalog.ticket_prefix)


@pytest.fixture
def files(tmp_path: Path, catalog: Catalog) -> AttachmentStore:
    return AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field))


@pytest.fixture
def services(catalog: Catalog, tickets: TicketStore, files: AttachmentStore) -> act.Services:
    """What the action server hands every action: here no JSM and no mail."""
    return act.Services(catalog=catalog, tickets=TicketDesk(tickets), attachments=files)


def form_events(text: str, intent: str, mode: str = "answer") -> list[dict[str, Any]]:
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.95}, "entities": []}
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": parse},
        {"event": "action", "name": "action_extract_slots"},
    ]
    if mode == "start":
        events.append({"event": "action", "name": "action_start_request"})
    events += [{"event": "slot", "name": "requested_slot", "value": None}, {"event": "action", "name": "ticket_form"}]
    return events


def test_validate_ticket_form_fills_and_asks_next(services: act.Services) -> None:
    t = tracker(
        "mi correo es ana@empresa.com", "inform",
        slots={"request_type": "gestion_archivos", "item": "falla_cargue_usuarios", "requested_slot": "email"},
        events=form_events("mi correo es ana@empresa.com", "inform"),
    )
    events, messages = run(act.ValidateTicketForm(services), t)
    slots = slot_sets(events)
    assert len(slots.pop("confirmation_id")) >= 16  # the summary shown names its confirmation
    assert slots == {"email": "ana@empresa.com", "requested_slot": "confirmation"}
    (summary,) = messages  # the next question, sent by the validation itself
    assert summary["response"] == "utter_question_confirmation" and "ana@empresa.com" in summary["summary"]
    assert [b["payload"] for b in summary["buttons"]] == ["/affirm", "/correct", "/cancel"]


def test_validate_ticket_form_rejects_a_cancel(services: act.Services) -> None:
    t = tracker(
        "cancelar", "cancel", slots={"request_type": "gestion_archivos", "requested_slot": "email"},
        events=form_events("cancelar", "cancel"),
    )
    events, messages = run(act.ValidateTicketForm(services), t)
    assert events == [] and messages == []


def test_validate_ticket_form_on_start_reads_the_opening_message(services: act.Services) -> None:
    text = "no me sale el reporte de transacciones"
    t = tracker(
        text, "gestion_archivos",
        slots={"request_type": "gestion_archivos", "original_text": text},
        events=form_events(text, "gestion_archivos", mode="start"),
    )
    events, _ = run(act.ValidateTicketForm(services), t)
    assert slot_sets(events) == {"item": "falla_reporte_transacciones", "requested_slot": "email"}


def test_validation_asks_the_item_with_the_catalog_options(services: act.Services) -> None:
    t = tracker(
        "/choose_request_type", "choose_request_type",
        slots={"request_type": "gestion_archivos"},
        events=form_events("/choose_request_type", "choose_request_type", mode="start"),
    )
    events, messages = run(act.ValidateTicketForm(services), t)
    assert slot_sets(events)["requested_slot"] == "item"
    (question,) = messages
    assert question["response"] == "utter_question_item"
    payloads = [b["payload"] for b in question["buttons"]]
    assert len(payloads) == 4 and all(p.startswith('/inform{"item":') for p in payloads)
    assert not any("eliminacion" in p for p in payloads)


def test_refused_value_comes_with_its_reason_then_the_question_again(services: act.Services) -> None:
    t = tracker(
        "ana.perez", "inform",
        slots={"request_type": "gestion_archivos", "item": "falla_cargue_cartera", "requested_slot": "email"},
        events=form_events("ana.perez", "inform"),
    )
    _, messages = run(act.ValidateTicketForm(services), t)
    assert responses(messages) == ["utter_invalid_email_missing_at", "utter_question_email"]


def test_start_request_sets_the_type_from_the_intent(services: act.Services) -> None:
    events, messages = run(act.ActionStartRequest(services), tracker("el pse no carga", "pago_en_linea"))
    slots = slot_sets(events)
    assert slots["request_type"] == "pago_en_linea" and slots["original_text"] == "el pse no carga"
    assert responses(messages) == ["utter_request_started"]


def test_redirect_retired_explains_and_offers(services: act.Services) -> None:
    text = "necesito borrar facturas de la cartera"
    events, messages = run(act.ActionRedirectRetired(services), tracker(text, "cambio_registros_cartera"))
    assert responses(messages) == ["utter_retired_option", "utter_redirect_offer"]
    assert "cargue de cartera" in messages[0]["explanation"]
    accept = messages[1]["buttons"][0]["payload"]
    assert accept.startswith("/choose_request_type")
    assert json.loads(accept[len("/choose_request_type"):]) == {
        "request_type": "acompanamiento_tecnico", "redirected_from": "eliminacion_actualizacion_cartera",
    }
    assert slot_sets(events)["offered_request_type"] == "acompanamiento_tecnico"


def test_decline_offer_reminds_where_to_do_it(services: act.Services) -> None:
    slots = {"offered_request_type": "acompanamiento_tecnico", "offered_redirect": "eliminacion_actualizacion_cartera"}
    events, messages = run(act.ActionDeclineOffer(services), tracker("no", "deny", slots=slots))
    assert responses(messages) == ["utter_offer_declined"]
    assert "cargue de cartera" in messages[0]["declined"]
    assert slot_sets(events)["offered_request_type"] is None


def test_cancel_request_deactivates_the_form(services: act.Services) -> None:
    events, messages = run(
        act.ActionCancelRequest(services),
        tracker("cancelar", "cancel", slots={"request_type": "pago_en_linea", "email": "a@b.co"}, active_loop="ticket_form"),
    )
    assert responses(messages) == ["utter_request_cancelled"]
    assert any(e["event"] == "active_loop" and e["name"] is None for e in events)
    assert slot_sets(events)["request_type"] is None
    assert "email" not in slot_sets(events)


def test_create_ticket_stores_it_and_tells_the_key(tickets, services: act.Services) -> None:
    slots = {"request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com", "confirmation": "send"}
    events, messages = run(act.ActionCreateTicket(services), tracker("/affirm", "affirm", slots=slots))
    (ticket,) = tickets.list()
    assert ticket.channel == "rest" and ticket.conversation_id == "conv-test"
    assert slot_sets(events)["ticket_key"] == ticket.key
    assert messages[0]["key"] == ticket.key


def test_check_status_for_own_ticket(tickets, services: act.Services) -> None:
    slots = {"request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com", "confirmation": "send"}
    run(act.ActionCreateTicket(services), tracker("/affirm", "affirm", slots=slots))
    _, messages = run(act.ActionCheckStatus(services), tracker("¿cómo va mi solicitud ECO-000001?", "check_status"))
    assert responses(messages) == ["utter_ticket_status"]
    assert messages[0]["key"] == "ECO-000001"


def test_show_menu_and_choose_category(services: act.Services) -> None:
    _, messages = run(act.ActionShowMenu(services), tracker("/menu", "menu"))
    assert len(messages[0]["buttons"]) == 5
    entities = [{"entity": "category", "value": "funcionalidades_ecollect"}]
    _, messages = run(act.ActionChooseCategory(services), tracker("/choose_category", "choose_category", entities=entities))
    (message,) = messages
    assert message["response"] == "utter_menu_request_types"
    assert len(message["buttons"]) == 5  # four types plus "back"
    assert "en el proceso de pago" in message["options"]  # portal descriptions shown


def test_suggestions_offer_the_likeliest_types_plus_other(services: act.Services) -> None:
    ranking = [
        {"name": "pago_en_linea", "confidence": 0.41},
        {"name": "greet", "confidence": 0.2},
        {"name": "nuevo_medio_pago", "confidence": 0.3},
        {"name": "falla_experiencia_usuario", "confidence": 0.2},
        {"name": "multipayment", "confidence": 0.01},
    ]
    events, messages = run(act.ActionSuggestRequestTypes(services), tracker("pagos raros", "nlu_fallback", 0.4, ranking=ranking))
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == [
        '/choose_request_type{"request_type":"pago_en_linea","opening":"kept"}',
        '/choose_request_type{"request_type":"nuevo_medio_pago","opening":"kept"}',
        '/choose_request_type{"request_type":"falla_experiencia_usuario","opening":"kept"}',
        "/other",
    ]
    assert slot_sets(events)["fallback_count"] == 1
    assert slot_sets(events)["original_text"] == "pagos raros"  # the opening message of the chosen type
    # A second miss in a row shows the guided menu instead.
    events, messages = run(act.ActionSuggestRequestTypes(services), tracker("???", "nlu_fallback", 0.2, ranking=ranking, slots={"fallback_count": 1}))
    assert responses(messages) == ["utter_fallback_menu", "utter_menu_categories"]


def test_explain_request_type(services: act.Services) -> None:
    entities = [{"entity": "request_type", "value": "acompanamiento_tecnico"}]
    _, messages = run(act.ActionExplainRequestType(services), tracker("¿qué es el acompañamiento técnico?", "ask_request_type_info", entities=entities))
    assert responses(messages) == ["utter_request_type_info"]
    assert messages[0]["explanation"].startswith("Funciona como un recurso adicional")


def test_greet_other_and_form_help(services: act.Services) -> None:
    _, messages = run(act.ActionGreet(services), tracker("hola", "greet"))
    assert messages[0]["buttons"][0]["payload"] == "/menu"
    _, messages = run(act.ActionOther(services), tracker("/other", "other"))
    assert responses(messages) == ["utter_ask_rephrase"]
    _, messages = run(act.ActionFormHelp(services), tracker("ayuda", "help", slots={"request_type": "capacitaciones"}))
    assert responses(messages) == ["utter_form_help"] and messages[0]["request_type"] == "Capacitaciones"


@pytest.mark.parametrize(
    "slot, slots, response, buttons",
    [
        ("description", {"request_type": "pago_en_linea"}, "utter_question_description", 0),
        ("description", {"request_type": "acompanamiento_tecnico", "redirected_from": "eliminacion_actualizacion_cartera"}, "utter_question_description_redirect", 0),
        ("email", {"request_type": "pago_en_linea"}, "utter_question_email", 0),
        ("phone", {"request_type": "pago_en_linea"}, "utter_question_phone", 0),
        ("phone_country", {"request_type": "pago_en_linea", "phone_candidates": {"MX": "+528291234567", "DO": "+18291234567"}}, "utter_question_phone_country", 2),
        ("correction_field", {"request_type": "gestion_archivos"}, "utter_question_correction_field", 4),
    ],
)
def test_every_form_question(slot: str, slots: dict, response: str, buttons: int, catalog) -> None:
    (question,) = prompts.ask(slot, slots, catalog)
    assert question.response == response
    assert len(question.buttons) == buttons


def test_redirect_description_prompt_comes_from_the_catalog(catalog) -> None:
    slots = {"request_type": "acompanamiento_tecnico", "redirected_from": "eliminacion_actualizacion_cartera"}
    (question,) = prompts.ask("description", slots, catalog)
    assert "registros de cartera" in question.kwargs["prompt"]


# ----------------------------------------------- review of a customer audit
def test_a_problem_told_with_contact_data_keeps_the_data_and_suggests_types(services: act.Services) -> None:
    ranking = [{"name": "inform", "confidence": 0.9}, {"name": "pago_en_linea", "confidence": 0.06}, {"name": "nuevo_medio_pago", "confidence": 0.02}]
    text = "el PSE no sirve desde ayer, correo ana@uni.edu.co tel +57 315 777 8899"
    events, messages = run(act.ActionContactOutsideForm(services), tracker(text, "inform", 0.9, ranking=ranking))
    slots = slot_sets(events)
    assert slots["email"] == "ana@uni.edu.co" and slots["phone"] == "+573157778899" and slots["original_text"] == text
    assert responses(messages) == ["utter_contact_noted", "utter_suggest_request_types"]
    assert messages[1]["buttons"][0]["payload"] == '/choose_request_type{"request_type":"pago_en_linea","opening":"kept"}'


def test_bare_contact_data_is_noted_and_the_need_asked(services: act.Services) -> None:
    events, messages = run(act.ActionContactOutsideForm(services), tracker("mario@negocio.com", "inform", 0.98))
    assert slot_sets(events)["email"] == "mario@negocio.com"
    assert responses(messages) == ["utter_contact_noted", "utter_ask_what_needed"]


def test_redirect_asks_when_the_message_also_names_the_upload_failure(services: act.Services) -> None:
    entities = [{"entity": "item", "value": "falla_cargue_cartera"}]
    text = "el cargue de cartera falla desde ayer, no actualiza los registros"
    events, messages = run(act.ActionRedirectRetired(services), tracker(text, "cambio_registros_cartera", 0.78, entities=entities))
    assert responses(messages) == ["utter_failure_or_retired"]
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads[0] == '/choose_request_type{"request_type":"gestion_archivos","item":"falla_cargue_cartera","opening":"kept"}'
    assert payloads[1] == "/cambio_registros_cartera"
    assert slot_sets(events)["original_text"] == text


def test_an_unsure_reading_of_a_bare_phone_keeps_it_instead_of_guessing_types(services: act.Services) -> None:
    events, messages = run(act.ActionSuggestRequestTypes(services), tracker("cel +52 1 55 1234 5678", "nlu_fallback", 0.4))
    assert slot_sets(events)["phone"] == "+525512345678"
    assert responses(messages) == ["utter_contact_noted", "utter_ask_what_needed"]


def test_cancelling_a_pending_redirect_offer_declines_it(services: act.Services) -> None:
    slots = {"offered_request_type": "acompanamiento_tecnico", "offered_redirect": "eliminacion_actualizacion_cartera"}
    events, messages = run(act.ActionCancelRequest(services), tracker("ya no", "cancel", 0.9, slots=slots))
    assert responses(messages) == ["utter_offer_declined"]
    assert slot_sets(events)["offered_request_type"] is None


@pytest.mark.parametrize("text", ["cartera", "error cartera", "me ayudan con la cartera porfa"])
def test_a_short_cartera_message_without_an_edit_verb_is_asked_about(text: str, services: act.Services) -> None:
    events, messages = run(act.ActionRedirectRetired(services), tracker(text, "cambio_registros_cartera", 0.97))
    assert responses(messages) == ["utter_failure_or_retired"]


# ------------------------------------------ issue 10: values and confirmations
def test_contact_outside_form_refuses_an_invalid_email_sent_in_a_payload(services: act.Services) -> None:
    text = '/inform{"email": "no-es-un-correo"}'
    events, messages = run(act.ActionContactOutsideForm(services), tracker(text, "inform", 1.0, entities=[{"entity": "email", "value": "no-es-un-correo"}]))
    assert "email" not in slot_sets(events)
    assert responses(messages)[0] == "utter_invalid_email_missing_at"


def test_create_ticket_with_an_invalid_value_writes_nothing_and_reopens_the_form(tickets, services: act.Services) -> None:
    slots = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "no-es-un-correo",
        "confirmation": "send", "confirmation_id": "conf-1",
    }
    events, messages = run(act.ActionCreateTicket(services), tracker("sí", "affirm", slots=slots))
    assert tickets.list() == []
    assert responses(messages) == ["utter_ticket_refused_email"] and messages[0]["value"] == "no-es-un-correo"
    assert slot_sets(events)["email"] is None and slot_sets(events)["confirmation"] is None
    assert any(e["event"] == "active_loop" and e["name"] == "ticket_form" for e in events)


def test_create_ticket_twice_for_one_confirmation_creates_one_ticket(tickets, services: act.Services) -> None:
    slots = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com",
        "confirmation": "send", "confirmation_id": "conf-1",
    }
    keys = []
    for message_id, text in (("msg-1", "/affirm"), ("msg-2", "enviar")):
        t = tracker(text, "affirm", slots=slots)
        t.latest_message["message_id"] = message_id
        events, messages = run(act.ActionCreateTicket(services), t)
        assert not any(e["event"] == "active_loop" for e in events)
        keys.append(messages[0]["key"])
    (ticket,) = tickets.list()
    assert keys == [ticket.key, ticket.key]


# ------------------------------------------------- issue 11: the action server
def test_the_action_server_runs_the_instances_it_was_given_behind_its_token(services: act.Services) -> None:
    app = build_app("token-de-pruebas", act.all_actions(services))
    client = app.test_client
    assert client.get("/health")[1].status == 200  # the launcher's readiness probe needs no token
    _, listed = client.get("/actions?token=token-de-pruebas")
    assert sorted(a["name"] for a in listed.json) == sorted(act._registered())
    state = {"sender_id": "c-1", "slots": {}, "latest_message": {"text": "hola", "intent": {"name": "greet"}}, "events": []}
    call = {"next_action": "action_greet", "sender_id": "c-1", "tracker": state, "domain": {}, "version": rasa_sdk.__version__}
    assert client.post("/webhook", json=call)[1].status == 401
    assert client.post("/webhook?token=otro", json=call)[1].status == 401
    _, answered = client.post("/webhook?token=token-de-pruebas", json=call)
    assert answered.status == 200
    assert [r["response"] for r in answered.json["responses"]] == ["utter_greet"]
    _, unknown = client.post("/webhook?token=token-de-pruebas", json={**call, "next_action": "action_inexistente"})
    assert unknown.status == 404 and unknown.json["action_name"] == "action_inexistente"


def test_the_action_server_refuses_an_empty_token(services: act.Services) -> None:
    with pytest.raises(ValueError):
        build_app("", act.all_actions(services))
