"""Every value validated however it arrives, and one confirmation = one ticket (issue 10).

Slots are filled by the form, but also outside it (a payload sent with no
request open), by channels, and restored from the tracker store; the form
checks them all again on every turn, and ``build_ticket`` refuses a ticket
with any invalid one. A ticket's idempotency key names the confirmation, so
a «sí» repeated after a lost reply finds the ticket already created.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from actions.adapters import TicketDesk
from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.dialogue import form, prompts, requests, submit
from bot.dialogue.turn import Turn
from bot.tickets import TicketStore
from tests.conftest import Chat, RunningAssistant

SENDER = "conv-sec"
# A record a hostile payload or a tampered tracker could put in the attachment slot.
FORGED = {"id": "A" * 24, "name": "passwd", "content_type": "text/plain", "size": 10, "path": "/etc/passwd"}


def turn(text: str, intent: str = "inform", mode: str = "answer", sender: str = SENDER, **kw: Any) -> Turn:
    return Turn(text=text, intent=intent, confidence=0.95, mode=mode, sender_id=sender, channel="rest", **kw)


def payload_turn(intent: str, **entities: Any) -> Turn:
    text = f"/{intent}{json.dumps(entities, ensure_ascii=False)}"
    return turn(text, intent, entities=tuple({"entity": k, "value": v} for k, v in entities.items()))


def responses(says: list) -> list[str]:
    return [s.response for s in says]


@pytest.fixture
def files(tmp_path: Path, catalog: Catalog) -> AttachmentStore:
    return AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field))


def screenshot(files: AttachmentStore, owner: str = SENDER) -> dict[str, Any]:
    return files.save("error.png", "image/png", b"\x89PNG" + b"0" * 500, owner=owner).as_metadata()


# ------------------------------------------------ 1. outside the form
def test_an_email_in_a_payload_with_no_request_open_is_refused_not_kept(catalog: Catalog) -> None:
    updates, says = requests.contact_outside_form(payload_turn("inform", email="no-es-un-correo"), {}, catalog)
    assert "email" not in updates
    assert responses(says) == ["utter_invalid_email_missing_at", "utter_ask_what_needed"]
    assert says[0].kwargs == {"value": "no-es-un-correo"}


def test_a_valid_email_in_a_payload_is_kept_normalised(catalog: Catalog) -> None:
    updates, says = requests.contact_outside_form(payload_turn("inform", email="Ana@Empresa.COM"), {}, catalog)
    assert updates["email"] == "Ana@empresa.com"
    assert responses(says) == ["utter_contact_noted", "utter_ask_what_needed"]


@pytest.mark.parametrize(
    "value, kept, response",
    [
        ("+1 212 555 0000", None, "utter_invalid_phone_unsupported_country"),
        ("12", None, "utter_invalid_phone_too_short"),
        ({"$ne": 1}, None, "utter_invalid_phone_invalid"),
        ("+57 315 777 8899", "+573157778899", "utter_contact_noted"),
    ],
)
def test_a_phone_in_a_payload_with_no_request_open_is_checked(catalog: Catalog, value: Any, kept: Any, response: str) -> None:
    updates, says = requests.contact_outside_form(payload_turn("inform", phone=value), {}, catalog)
    assert updates.get("phone") == kept
    assert responses(says)[0] == response


def test_a_hostile_value_is_quoted_back_short_and_on_one_line(catalog: Catalog) -> None:
    _, says = requests.contact_outside_form(payload_turn("inform", email="x" * 5000 + "\x1b[31m\nrojo"), {}, catalog)
    quoted = says[0].kwargs["value"]
    assert len(quoted) <= 60 and "\n" not in quoted and "\x1b" not in quoted


# --------------------------------------------- 1. stored values, in the form
def test_an_invalid_email_stored_before_the_request_is_dropped_and_asked_with_its_refusal(catalog: Catalog) -> None:
    text = "no me carga el archivo de cartera"
    slots = {"request_type": "gestion_archivos", "original_text": text, "email": "no-es-un-correo"}
    # Rasa passes the pre-filled value as a candidate when the form activates.
    step = form.step(turn(text, "gestion_archivos", mode="start"), slots, catalog, {"email": "no-es-un-correo"})
    assert step.updates["item"] == "falla_cargue_cartera"
    assert step.updates["email"] is None and step.next_slot == "email"
    says = prompts.step_messages(step, slots, catalog)
    assert responses(says) == ["utter_invalid_email_missing_at", "utter_question_email"]
    assert says[0].kwargs["value"] == "no-es-un-correo"


def test_an_email_in_the_opening_message_replaces_an_invalid_stored_one(catalog: Catalog) -> None:
    text = "no me carga el archivo de cartera, soy ana@empresa.com"
    slots = {"request_type": "gestion_archivos", "original_text": text, "email": "no-es-un-correo"}
    step = form.step(turn(text, "gestion_archivos", mode="start"), slots, catalog)
    assert step.updates["email"] == "ana@empresa.com" and step.next_slot == "confirmation"
    assert responses(step.says) == []


@pytest.mark.parametrize(
    "stored, dropped, next_slot, refusal",
    [
        ({"phone": "+12125550000"}, "phone", "phone", "utter_invalid_phone_unsupported_country"),
        ({"phone": "no es un número"}, "phone", "phone", "utter_invalid_phone_empty"),
        ({"phone": ["+573157778899"]}, "phone", "phone", "utter_invalid_phone_invalid"),
        ({"email": "ana@@empresa.com"}, "email", "email", "utter_invalid_email_invalid"),
        ({"description": "no sirve"}, "description", "description", "utter_invalid_description_too_short"),
        ({"description": "el pse no sirve " * 400}, "description", "description", "utter_invalid_description_too_long"),
    ],
)
def test_invalid_values_restored_from_the_tracker_are_asked_again(
    catalog: Catalog, stored: dict, dropped: str, next_slot: str, refusal: str
) -> None:
    slots = {
        "request_type": "pago_en_linea", "description": "el pse no devuelve al comercio desde ayer",
        "email": "ana@empresa.com", "phone": "+573157778899", "requested_slot": "confirmation", **stored,
    }
    step = form.step(turn("¿qué es esto?", "ask_request_type_info", mode="resume"), slots, catalog)
    assert step.updates[dropped] is None and step.next_slot == next_slot
    assert responses(prompts.step_messages(step, slots, catalog))[0] == refusal


@pytest.mark.parametrize("item", ["eliminacion_actualizacion_cartera", "../../etc/passwd", "Falla en cargue"])
def test_an_item_that_is_not_an_active_option_id_is_asked_again(catalog: Catalog, item: str) -> None:
    slots = {"request_type": "gestion_archivos", "item": item, "email": "ana@empresa.com", "requested_slot": "confirmation"}
    step = form.step(turn("/affirm", "affirm"), slots, catalog)
    assert step.updates["item"] is None and step.next_slot == "item"
    assert step.updates.get("confirmation") is None  # the «sí» confirmed a summary with a refused value
    says = prompts.step_messages(step, slots, catalog)
    assert responses(says) == ["utter_invalid_item", "utter_question_item"]
    # Once the ítem is answered, the summary is shown again before anything is sent.
    answered = form.step(turn('/inform{"item":"falla_cargue_cartera"}', entities=({"entity": "item", "value": "falla_cargue_cartera"},)), {**slots, **step.updates, "requested_slot": "item"}, catalog)
    assert answered.next_slot == "confirmation"


def test_a_refused_value_the_summary_does_not_show_leaves_the_yes_standing(catalog: Catalog, store: TicketStore) -> None:
    """A stored phone of another country, kept from earlier, is not a field of this type: dropped quietly."""
    slots = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com",
        "phone": "+12125550000", "requested_slot": "confirmation",
    }
    step = form.step(turn("/affirm", "affirm"), slots, catalog)
    assert step.updates["phone"] is None and step.updates["confirmation"] == "send" and step.next_slot is None
    _, says = submit.submit({**slots, **step.updates}, turn("/affirm", "affirm"), catalog, TicketDesk(store))
    assert responses(says) == ["utter_ticket_created"] and store.list()[0].phone is None


def test_slots_of_the_wrong_kind_are_emptied_not_crashed_on(catalog: Catalog) -> None:
    slots = {
        "request_type": "pago_en_linea", "requested_slot": "email", "email_questioned": ["x"],
        "original_text": {"a": 1}, "confirmation": "yes please", "redirected_from": "no_existe",
    }
    step = form.step(turn("sí", "affirm"), slots, catalog)
    assert step.updates["email_questioned"] is None and step.updates["original_text"] is None
    assert step.updates["confirmation"] is None and step.updates["redirected_from"] is None
    assert step.next_slot == "description"


def test_valid_stored_values_are_normalised_and_unknown_countries_dropped(catalog: Catalog) -> None:
    slots = {
        "request_type": "pago_en_linea", "email": "Ana@Empresa.COM", "phone": "315 777 8899", "country": "co",
        "description": "el   pse no devuelve al comercio", "requested_slot": "confirmation",
    }
    step = form.step(turn("x", "nlu_fallback", mode="resume"), slots, catalog)
    assert step.updates["email"] == "Ana@empresa.com" and step.updates["country"] == "CO"
    assert step.updates["phone"] == "+573157778899"
    assert step.updates["description"] == "el pse no devuelve al comercio"
    unknown = form.step(turn("x", "nlu_fallback", mode="resume"), {**slots, "phone": "+573157778899", "country": "ZZ"}, catalog)
    assert unknown.updates["country"] is None and unknown.next_slot == "confirmation"
    assert responses(unknown.says) == []  # the country is never asked itself


def test_a_tampered_phone_candidate_never_becomes_the_phone(catalog: Catalog) -> None:
    slots = {
        "request_type": "pago_en_linea", "description": "el pse no devuelve al comercio", "email": "a@b.co",
        "phone_candidates": {"CO": "/etc/passwd", "MX": "+523001234567"}, "requested_slot": "phone_country",
    }
    step = form.step(turn("Colombia"), slots, catalog)
    assert step.updates.get("phone") != "/etc/passwd"
    assert step.updates["phone_candidates"] is None and step.next_slot == "phone"


def test_attachment_records_come_only_from_the_store(catalog: Catalog, files: AttachmentStore) -> None:
    mine = screenshot(files)
    theirs = screenshot(files, owner="otra-conversacion")
    forged_path = {**mine, "path": "/etc/passwd"}
    slots = {"request_type": "pago_en_linea", "requested_slot": "description", "attachment": [FORGED, theirs, forged_path]}
    step = form.step(turn("/attach", "attach"), slots, catalog, attachments=files)
    # Unknown and foreign ids are dropped; a known id gets the store's own record back.
    assert step.updates["attachment"] == [mine]
    summary = prompts.summary({**slots, **step.updates}, catalog)
    assert "passwd" not in summary and "error.png" in summary


def test_attachment_slot_that_is_not_a_list_is_emptied(catalog: Catalog, files: AttachmentStore) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "description", "attachment": "/etc/passwd"}
    step = form.step(turn("/attach", "attach"), slots, catalog, attachments=files)
    assert step.updates["attachment"] is None


def test_without_an_attachment_store_no_record_is_vouched_for(catalog: Catalog, files: AttachmentStore) -> None:
    """The dialogue reads no environment: a caller that hands it no store gets no attachment kept."""
    slots = {"request_type": "pago_en_linea", "requested_slot": "description", "attachment": [screenshot(files)]}
    step = form.step(turn("/attach", "attach"), slots, catalog)
    assert step.updates["attachment"] is None
    refusal = submit.build_ticket(confirmed(attachment=slots["attachment"]), turn("sí", "affirm"), catalog)
    assert isinstance(refusal, submit.Refusal) and refusal.refused.field == "attachment"


# ------------------------------------------ 2. build_ticket, last line of defence
def confirmed(**extra: Any) -> dict[str, Any]:
    return {
        "request_type": "acompanamiento_tecnico", "description": "necesito apoyo con el cargue de cartera",
        "email": "ana@empresa.com", "phone": "+573157778899", "country": "CO",
        "confirmation": "send", "confirmation_id": "conf-1", **extra,
    }


@pytest.mark.parametrize(
    "bad, response, asked",
    [
        ({"email": "no-es-un-correo"}, "utter_ticket_refused_email", "email"),
        ({"email": 42}, "utter_ticket_refused_email", "email"),
        ({"phone": "+12125550000"}, "utter_ticket_refused_phone", "phone"),
        ({"phone": "+57 315'; DROP TABLE tickets; --"}, "utter_ticket_refused_phone", "phone"),
        ({"country": "US"}, "utter_ticket_refused_country", "confirmation"),
        ({"description": "hola"}, "utter_ticket_refused_description", "description"),
        ({"description": "necesito apoyo con el cargue " * 300}, "utter_ticket_refused_description", "description"),
        ({"attachment": [FORGED]}, "utter_ticket_refused_attachment", "confirmation"),
        ({"request_type": "gestion_archivos", "item": "eliminacion_actualizacion_cartera"}, "utter_ticket_refused_item", "item"),
        ({"request_type": "gestion_archivos", "item": "no_existe"}, "utter_ticket_refused_item", "item"),
    ],
)
def test_a_ticket_with_an_invalid_value_is_refused_and_the_form_asks_again(
    catalog: Catalog, store: TicketStore, files: AttachmentStore, bad: dict, response: str, asked: str
) -> None:
    slots = confirmed(**bad)
    refusal = submit.build_ticket(slots, turn("/affirm", "affirm"), catalog, files)
    assert isinstance(refusal, submit.Refusal)
    updates, says = submit.submit(slots, turn("/affirm", "affirm", message_id="m-1"), catalog, TicketDesk(store), files)
    assert store.list() == []  # nothing written
    assert responses(says) == [response]
    assert submit.reopens_form(updates)
    assert updates["confirmation"] is None
    # The reopened form (Rasa runs it right after, as a resumed turn) asks the refused field.
    after = {**slots, **updates}
    step = form.step(turn("/affirm", "affirm", mode="resume"), after, catalog, attachments=files)
    assert step.next_slot == asked


def test_the_refusal_quotes_the_refused_email(catalog: Catalog, store: TicketStore, files: AttachmentStore) -> None:
    updates, says = submit.submit(confirmed(email="no-es-un-correo"), turn("sí", "affirm"), catalog, TicketDesk(store), files)
    assert says[0].kwargs == {"value": "no-es-un-correo"}
    assert updates["email"] is None


def test_a_valid_ticket_is_created_and_does_not_reopen_the_form(catalog: Catalog, store: TicketStore, files: AttachmentStore) -> None:
    updates, says = submit.submit(confirmed(), turn("sí", "affirm"), catalog, TicketDesk(store), files)
    assert responses(says) == ["utter_ticket_created"] and not submit.reopens_form(updates)


def test_the_ticket_carries_the_stores_record_never_a_claimed_path(
    catalog: Catalog, store: TicketStore, files: AttachmentStore
) -> None:
    mine = screenshot(files)
    slots = confirmed(attachment=[{**mine, "path": "/etc/passwd", "size": 1}])
    ticket = submit.build_ticket(slots, turn("sí", "affirm"), catalog, files)
    assert not isinstance(ticket, submit.Refusal) and ticket is not None
    (attached,) = ticket.attachments
    assert attached.path == mine["path"] and attached.size == mine["size"]


# -------------------------------------------- 3. one confirmation, one ticket
def summary_shown(catalog: Catalog) -> dict[str, Any]:
    """The slots once the form has shown the summary and the customer said «sí»."""
    slots = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com",
        "requested_slot": "email",
    }
    shown = form.step(turn("ana@empresa.com"), slots, catalog)
    assert shown.next_slot == "confirmation" and shown.updates["confirmation_id"]
    slots = {**slots, **shown.updates, "requested_slot": "confirmation"}
    confirmed_step = form.step(turn("/affirm", "affirm"), slots, catalog)
    assert confirmed_step.next_slot is None and "confirmation_id" not in confirmed_step.updates
    return {**slots, **confirmed_step.updates}


def test_a_repeated_yes_after_a_lost_reply_returns_the_same_ticket(catalog: Catalog, store: TicketStore) -> None:
    slots = summary_shown(catalog)
    _, first = submit.submit(slots, turn("/affirm", "affirm", message_id="m-1", timestamp=1.0), catalog, TicketDesk(store))
    # The reply was lost: the slots were never reset, and the customer says «sí» again.
    _, again = submit.submit(slots, turn("enviar", "affirm", message_id="m-2", timestamp=9.0), catalog, TicketDesk(store))
    (ticket,) = store.list(conversation_id=SENDER)
    assert responses(first) == responses(again) == ["utter_ticket_created"]
    assert first[0].kwargs["key"] == again[0].kwargs["key"] == ticket.key


def test_a_correction_after_the_summary_is_a_new_confirmation(catalog: Catalog, store: TicketStore) -> None:
    slots = summary_shown(catalog)
    _, first = submit.submit(slots, turn("/affirm", "affirm", message_id="m-1"), catalog, TicketDesk(store))
    corrected = form.step(turn("el correo está mal, es luis@empresa.com", "correct"), {**slots, "confirmation": None, "requested_slot": "confirmation"}, catalog)
    assert corrected.next_slot == "confirmation"
    assert corrected.updates["confirmation_id"] != slots["confirmation_id"]
    _, second = submit.submit({**slots, **corrected.updates, "confirmation": "send"}, turn("sí", "affirm", message_id="m-3"), catalog, TicketDesk(store))
    assert second[0].kwargs["key"] != first[0].kwargs["key"]
    assert second[0].kwargs["email"] == "luis@empresa.com"


def test_the_confirmation_is_cleared_only_with_the_request(catalog: Catalog, store: TicketStore) -> None:
    slots = summary_shown(catalog)
    updates, _ = submit.submit(slots, turn("sí", "affirm"), catalog, TicketDesk(store))
    assert updates["confirmation_id"] is None
    assert requests.reset_request()["confirmation_id"] is None


def test_idempotency_keys_fit_the_column_whatever_the_conversation_id() -> None:
    long_sender = "teams:" + "x" * 400
    key = submit.idempotency_key(turn("sí", "affirm", sender=long_sender, message_id="m"), "conf-1")
    assert len(key) <= 255
    assert key == submit.idempotency_key(turn("enviar", "affirm", sender=long_sender, message_id="m-2"), "conf-1")
    assert key != submit.idempotency_key(turn("sí", "affirm", sender=long_sender, message_id="m"), "conf-2")


# ------------------------------------------------------ end to end (servers)
def _tracker_api(assistant: RunningAssistant, chat: Chat, method: str, path: str = "", body: Any = None) -> Any:
    url = f"{assistant.base_url}/conversations/{chat.sender}/tracker{path}?token=token-de-pruebas"
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# What the tracker holds after ``action_create_ticket`` ran but its events never arrived.
CREATION_WITHOUT_EVENTS = [{"event": "action", "name": "action_create_ticket"}, {"event": "action", "name": "action_listen"}]


def _restore(assistant: RunningAssistant, chat: Chat, slots: dict[str, Any], then: list[dict[str, Any]] | None = None) -> None:
    """Append slot events to the conversation, as a tracker store restored with them would hold."""
    events = [{"event": "slot", "name": k, "value": v} for k, v in slots.items()] + (then or [])
    _tracker_api(assistant, chat, "POST", "/events", events)


@pytest.mark.servers
def test_e2e_an_invalid_email_sent_in_a_payload_never_reaches_a_ticket(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    refused = chat.text(chat.say('/inform{"email": "no-es-un-correo"}'))
    assert "no-es-un-correo" in refused and "le falta la @" in refused, chat.dump()
    opened = chat.text(chat.say("no me carga el archivo de cartera"))
    assert "Revisa tu solicitud" not in opened and "correo electrónico" in opened, chat.dump()
    summary = chat.text(chat.say("ana@empresa.com"))
    assert "Revisa tu solicitud" in summary and "no-es-un-correo" not in summary, chat.dump()
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.email == "ana@empresa.com"


@pytest.mark.servers
def test_e2e_values_restored_from_the_tracker_are_checked_again(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("hola")
    _restore(assistant, chat, {"email": "no-es-un-correo", "attachment": [FORGED]})
    opened = chat.text(chat.say("no me carga el archivo de cartera"))
    assert "«no-es-un-correo»" in opened and "Revisa tu solicitud" not in opened, chat.dump()
    summary = chat.text(chat.say("ana@empresa.com"))
    assert "Revisa tu solicitud" in summary and "passwd" not in summary, chat.dump()
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.email == "ana@empresa.com" and ticket.attachments == ()


@pytest.mark.servers
def test_e2e_a_yes_repeated_after_a_lost_reply_finds_the_same_ticket(assistant: RunningAssistant) -> None:
    """Needs a model trained with the ``confirmation_id`` slot."""
    chat = assistant.chat()
    summary = chat.text(chat.say("no me carga el archivo de cartera, soy ana@empresa.com"))
    assert "Revisa tu solicitud" in summary, chat.dump()
    at_summary = _tracker_api(assistant, chat, "GET")["slots"]
    assert at_summary.get("confirmation_id"), "el modelo no tiene el slot confirmation_id: reentrena"
    created = chat.text(chat.say("/affirm"))
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.key in created, chat.dump()
    # The ticket committed but its reply (and slot events) were lost: the
    # slots are as the «sí» left them, and the last action was the creation.
    lost = {k: v for k, v in at_summary.items() if k not in ("session_started_metadata",)}
    _restore(
        assistant, chat, {**lost, "confirmation": "send", "requested_slot": None, "ticket_key": None},
        then=CREATION_WITHOUT_EVENTS,
    )
    again = chat.text(chat.say("sí"))
    assert ticket.key in again, chat.dump()
    assert [t.key for t in assistant.store.list(conversation_id=chat.sender)] == [ticket.key]


@pytest.mark.servers
def test_e2e_a_ticket_refused_at_creation_goes_back_to_the_form(assistant: RunningAssistant) -> None:
    """Needs a model trained with the ``utter_ticket_refused_*`` responses."""
    chat = assistant.chat()
    summary = chat.text(chat.say("no me carga el archivo de cartera, soy ana@empresa.com"))
    assert "Revisa tu solicitud" in summary, chat.dump()
    # Slots changed behind the form's back (a tampered or restored tracker), then «sí» to the retry.
    _restore(
        assistant, chat,
        {"email": "no-es-un-correo", "confirmation": "send", "requested_slot": None},
        then=[{"event": "active_loop", "name": None}, *CREATION_WITHOUT_EVENTS],
    )
    refused = chat.text(chat.say("sí"))
    state = _tracker_api(assistant, chat, "GET")
    assert state["active_loop"].get("name") == "ticket_form" and state["slots"]["requested_slot"] == "email", chat.dump()
    assert "No pude crear la solicitud" in refused and "«no-es-un-correo»" in refused, chat.dump()
    assert "correo electrónico" in refused, chat.dump()  # the form asks it again
    assert assistant.store.list(conversation_id=chat.sender) == []
    back = chat.text(chat.say("ana@empresa.com"))
    assert "Revisa tu solicitud" in back, chat.dump()
    chat.say("/affirm")
    (ticket,) = assistant.store.list(conversation_id=chat.sender)
    assert ticket.email == "ana@empresa.com"
