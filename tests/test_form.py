"""The form logic, turn by turn, without Rasa."""

from __future__ import annotations

from typing import Any

import pytest

from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.dialogue import form, prompts, requests
from bot.dialogue.turn import Turn, turn_mode


def turn(text: str, intent: str = "inform", confidence: float = 0.95, mode: str = "answer", **kw: Any) -> Turn:
    return Turn(text=text, intent=intent, confidence=confidence, mode=mode, sender_id="c1", **kw)


def responses(step: form.Step) -> list[str]:
    return [s.response for s in step.says]


# ------------------------------------------------------------------ required
def test_required_slots_follow_the_catalog_order(catalog: Catalog) -> None:
    assert form.required_slots({"request_type": "gestion_archivos"}, catalog) == ["item", "email", "confirmation"]
    assert form.required_slots({"request_type": "acompanamiento_tecnico"}, catalog) == [
        "description", "email", "phone", "confirmation",
    ]
    # Types whose portal form the guide does not show: e-mail + descripción + teléfono.
    assert form.required_slots({"request_type": "pago_en_linea"}, catalog) == [
        "description", "email", "phone", "confirmation",
    ]
    assert form.required_slots({}, catalog) == []


def test_ambiguous_phone_inserts_the_country_question(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "phone_candidates": {"CO": "+57", "MX": "+52"}}
    assert form.required_slots(slots, catalog) == ["description", "email", "phone_country", "phone", "confirmation"]


# -------------------------------------------------------------- opening turn
def test_opening_message_prefills_everything_it_says(catalog: Catalog) -> None:
    text = "no me carga el archivo de cartera, soy ana.perez@empresa.com.co"
    slots = {"request_type": "gestion_archivos", "original_text": text}
    step = form.step(turn(text, "gestion_archivos", mode="start"), slots, catalog)
    assert step.updates["item"] == "falla_cargue_cartera"
    assert step.updates["email"] == "ana.perez@empresa.com.co"
    assert step.next_slot == "confirmation"


def test_opening_message_with_phone_and_country(catalog: Catalog) -> None:
    text = "desde Colombia: el PSE no me deja pagar la factura, sale error 500, mi cel 3001234567"
    slots = {"request_type": "pago_en_linea", "original_text": text}
    step = form.step(turn(text, "pago_en_linea", mode="start"), slots, catalog)
    assert step.updates["country"] == "CO"
    assert step.updates["phone"] == "+573001234567"  # the country given settles CO vs MX
    assert step.updates["description"] == text
    assert step.next_slot == "email"


def test_short_opening_message_is_not_a_description(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "original_text": "el pse no sirve"}
    step = form.step(turn("el pse no sirve", "pago_en_linea", mode="start"), slots, catalog)
    assert "description" not in step.updates
    assert step.next_slot == "description"


def test_retired_option_in_opening_message_redirects(catalog: Catalog) -> None:
    text = "Gestión de archivos: eliminar registros de cartera de clientes que ya pagaron"
    slots = {"request_type": "gestion_archivos", "original_text": text}
    step = form.step(turn(text, "gestion_archivos", mode="start"), slots, catalog)
    assert step.updates["request_type"] == "acompanamiento_tecnico"
    assert step.updates["redirected_from"] == "eliminacion_actualizacion_cartera"
    assert step.updates["item"] is None
    assert responses(step)[:2] == ["utter_retired_option", "utter_redirect_started"]


# ------------------------------------------------------------------ answers
def test_invalid_email_is_refused_with_the_reason(catalog: Catalog) -> None:
    slots = {"request_type": "gestion_archivos", "item": "falla_cargue_cartera", "requested_slot": "email"}
    step = form.step(turn("ana.perez"), slots, catalog)
    assert step.updates["email"] is None
    assert responses(step) == ["utter_invalid_email_missing_at"]
    assert step.next_slot == "email"


def test_ambiguous_phone_asks_the_country_then_resolves(catalog: Catalog) -> None:
    slots: dict[str, Any] = {
        "request_type": "acompanamiento_tecnico", "description": "necesito apoyo con el cargue",
        "email": "a@b.co", "requested_slot": "phone",
    }
    step = form.step(turn("3001234567"), slots, catalog)
    assert step.updates["phone"] is None
    assert step.updates["phone_candidates"] == {"CO": "+573001234567", "MX": "+523001234567"}
    assert step.next_slot == "phone_country"
    asked = prompts.ask("phone_country", {**slots, **step.updates}, catalog)
    assert [b.payload for b in asked[0].buttons] == ['/inform{"country":"CO"}', '/inform{"country":"MX"}']

    slots = {**slots, **step.updates, "requested_slot": "phone_country"}
    step = form.step(turn("México"), slots, catalog)
    assert step.updates["phone"] == "+523001234567"
    assert step.updates["country"] == "MX"
    assert step.next_slot == "confirmation"


def test_country_not_among_candidates_is_refused(catalog: Catalog) -> None:
    slots = {
        "request_type": "pago_en_linea", "requested_slot": "phone_country",
        "description": "el pse no devuelve al comercio", "email": "a@b.co",
        "phone_candidates": {"CO": "+573001234567", "MX": "+523001234567"},
    }
    step = form.step(turn('/inform{"country":"DO"}', entities=({"entity": "country", "value": "DO"},)), slots, catalog)
    assert responses(step) == ["utter_invalid_phone_country"]
    assert step.next_slot == "phone_country"


def test_item_typed_as_the_retired_option_redirects(catalog: Catalog) -> None:
    slots = {"request_type": "gestion_archivos", "requested_slot": "item"}
    step = form.step(turn("quiero eliminar unos registros", "cambio_registros_cartera", 0.9), slots, catalog)
    assert step.updates["request_type"] == "acompanamiento_tecnico"
    assert step.updates["redirected_from"] == "eliminacion_actualizacion_cartera"
    assert step.next_slot == "description"


def test_item_payload_with_the_retired_option_redirects(catalog: Catalog) -> None:
    slots = {"request_type": "gestion_archivos", "requested_slot": "item"}
    payload = '/inform{"item":"eliminacion_actualizacion_cartera"}'
    entities = ({"entity": "item", "value": "eliminacion_actualizacion_cartera"},)
    step = form.step(turn(payload, entities=entities), slots, catalog)
    assert step.updates["request_type"] == "acompanamiento_tecnico"


def test_cartera_upload_failure_is_not_the_retired_option(catalog: Catalog) -> None:
    slots = {"request_type": "gestion_archivos", "requested_slot": "item"}
    step = form.step(turn("no me carga el archivo de cartera", "gestion_archivos"), slots, catalog)
    assert step.updates == {"item": "falla_cargue_cartera"}


def test_description_too_short_is_asked_again(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "description"}
    step = form.step(turn("no sirve", "pago_en_linea", 0.6), slots, catalog)
    assert step.updates["description"] is None
    assert responses(step) == ["utter_invalid_description_too_short"]


def test_description_that_mentions_contacts_keeps_them(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "description"}
    text = "el botón de pagos queda cargando, escríbanme a luis@banco.com.mx"
    step = form.step(turn(text, "pago_en_linea"), slots, catalog)
    assert step.updates["description"] == text
    assert step.updates["email"] == "luis@banco.com.mx"
    assert step.next_slot == "phone"


def test_phone_volunteered_when_email_is_asked_is_kept(catalog: Catalog) -> None:
    slots = {"request_type": "acompanamiento_tecnico", "description": "necesito apoyo con cargue", "requested_slot": "email"}
    step = form.step(turn("llámenme al 8095551234"), slots, catalog)
    assert step.updates["phone"] == "+18095551234"
    assert step.updates["email"] is None
    assert responses(step) == ["utter_noted_still_missing"]
    assert step.next_slot == "email"


@pytest.mark.parametrize(
    "text, intent, slot",
    [
        ("cancelar", "cancel", "email"),
        ("ya no", "cancel", "description"),
        ("¿qué es el acompañamiento técnico?", "ask_request_type_info", "description"),
        ("ayuda", "help", "phone"),
        ('/choose_request_type{"request_type":"pago_en_linea"}', "choose_request_type", "item"),
    ],
)
def test_non_answers_are_rejected_so_a_rule_can_take_them(catalog: Catalog, text: str, intent: str, slot: str) -> None:
    slots = {"request_type": "gestion_archivos" if slot == "item" else "acompanamiento_tecnico", "requested_slot": slot}
    assert form.step(turn(text, intent), slots, catalog).reject


def test_long_description_mentioning_cancel_is_still_a_description(catalog: Catalog) -> None:
    text = "quiero cancelar la suscripción de débito automático de un cliente porque el cobro salió doble"
    slots = {"request_type": "debito_automatico", "requested_slot": "description"}
    step = form.step(turn(text, "cancel", 0.85), slots, catalog)
    assert not step.reject and step.updates["description"] == text


def test_resumed_turn_reads_nothing(catalog: Catalog) -> None:
    slots = {"request_type": "acompanamiento_tecnico", "requested_slot": "description"}
    step = form.step(turn("¿qué es el acompañamiento técnico?", "ask_request_type_info", mode="resume"), slots, catalog)
    assert step.updates == {} and step.next_slot == "description"


# ---------------------------------------------------- confirmation & fixes
def confirmed_slots(**extra: Any) -> dict[str, Any]:
    return {
        "request_type": "acompanamiento_tecnico", "description": "necesito apoyo con el cargue de cartera",
        "email": "ana@empresa.com", "phone": "+573157778899", "country": "CO",
        "requested_slot": "confirmation", **extra,
    }


def test_affirm_confirms(catalog: Catalog) -> None:
    step = form.step(turn("/affirm", "affirm"), confirmed_slots(), catalog)
    assert step.updates["confirmation"] == "send" and step.next_slot is None


def test_correction_with_the_new_value_changes_one_field(catalog: Catalog) -> None:
    step = form.step(turn("el teléfono está mal, es 3157778800", "correct"), confirmed_slots(), catalog)
    assert step.updates["phone"] == "+573157778800"  # country CO already known
    assert step.updates.get("email", "unchanged") == "unchanged"
    assert step.next_slot == "confirmation"


def test_correction_without_value_asks_that_field_again(catalog: Catalog) -> None:
    step = form.step(turn("quiero cambiar el correo", "correct"), confirmed_slots(), catalog)
    assert step.updates["email"] is None
    assert step.next_slot == "email"


def test_corregir_button_asks_which_field(catalog: Catalog) -> None:
    step = form.step(turn("/correct", "correct"), confirmed_slots(), catalog)
    assert step.next_slot == "correction_field"
    asked = prompts.ask("correction_field", {**confirmed_slots(), **step.updates}, catalog)
    assert '/correct{"field":"phone"}' in [b.payload for b in asked[0].buttons]
    step = form.step(
        turn('/correct{"field":"phone"}', "correct", entities=({"entity": "field", "value": "phone"},)),
        {**confirmed_slots(), **step.updates, "requested_slot": "correction_field"},
        catalog,
    )
    assert step.updates["phone"] is None and step.next_slot == "phone"


def test_unclear_answer_to_the_summary_explains_the_options(catalog: Catalog) -> None:
    step = form.step(turn("mmm", "nlu_fallback", 0.3), confirmed_slots(), catalog)
    assert responses(step) == ["utter_confirmation_help"] and step.next_slot == "confirmation"


def test_summary_lists_every_field_with_catalog_labels(catalog: Catalog) -> None:
    text = prompts.summary(confirmed_slots(), catalog)
    rt = catalog.request_type("acompanamiento_tecnico")
    for spec in rt.fields:
        assert spec.label in text
    assert "+57 315 7778899" in text
    assert catalog.category_of(rt).name in text


@pytest.fixture
def files(tmp_path: Any, catalog: Catalog) -> AttachmentStore:
    """A real attachment store: the form keeps only records it holds for the conversation."""
    return AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field))


def stored_file(files: AttachmentStore, n: int, owner: str = "c1") -> dict[str, Any]:
    """A file conversation ``owner`` sent, as the action layer resolves it from the store."""
    return files.save(f"error{n}.png", "image/png", b"\x89PNG" + bytes([n % 256]) * 1200, owner=owner).as_metadata()


def test_attachments_from_the_channel_are_kept(catalog: Catalog, files: AttachmentStore) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "description"}
    first = stored_file(files, 1)
    meta = {"attachments": [first]}
    step = form.step(turn("adjunto el pantallazo del error que sale al pagar", metadata=meta), slots, catalog, attachments=files)
    assert step.updates["attachment"] == [first]
    assert step.updates["description"].startswith("adjunto el pantallazo")
    assert "utter_attachment_received" in responses(step)


def test_a_file_alone_answers_nothing_and_the_question_is_asked_again(catalog: Catalog, files: AttachmentStore) -> None:
    first, second = stored_file(files, 1), stored_file(files, 2)
    slots = {"request_type": "pago_en_linea", "requested_slot": "description", "attachment": [first]}
    step = form.step(turn("/attach", "attach", metadata={"attachments": [second]}), slots, catalog, attachments=files)
    assert step.updates == {"attachment": [first, second]}
    assert responses(step) == ["utter_attachment_received"]
    assert step.next_slot == "description"


def test_attachments_beyond_the_limit_are_refused(catalog: Catalog, files: AttachmentStore) -> None:
    limit = catalog.attachment_field.max_files
    slots = {"request_type": "pago_en_linea", "requested_slot": "description", "attachment": [stored_file(files, i) for i in range(limit)]}
    step = form.step(turn("/attach", "attach", metadata={"attachments": [stored_file(files, 99)]}), slots, catalog, attachments=files)
    assert "attachment" not in step.updates or len(step.updates["attachment"]) == limit
    assert responses(step) == ["utter_attachment_limit"]


def test_whatsapp_sender_number_fills_the_phone(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "original_text": "el pse no sirve"}
    step = form.step(turn("el pse no sirve", "pago_en_linea", mode="start", metadata={"sender_phone": "+5215512345678"}), slots, catalog)
    assert step.updates["phone"] == "+525512345678" and step.updates["country"] == "MX"
    assert step.next_slot == "description"  # never asked for the phone


# ------------------------------------------------------------- turn modes
def test_turn_mode_from_events() -> None:
    user = {"event": "user", "text": "x"}
    form_run = {"event": "action", "name": "ticket_form"}
    assert turn_mode([user, {"event": "action", "name": "action_extract_slots"}, form_run]) == "answer"
    assert turn_mode([user, {"event": "action", "name": "action_start_request"}, form_run]) == "start"
    assert turn_mode([user, {"event": "action_execution_rejected"}, {"event": "action", "name": "action_form_help"}, form_run]) == "resume"


# ------------------------------------------------------------- start/cancel
def test_start_from_intent_resets_the_previous_request(catalog: Catalog) -> None:
    updates, says = requests.start_request(
        turn("el pse no funciona", "pago_en_linea", mode="start"),
        {"item": "falla_cargue_cartera", "email": "a@b.co", "confirmation": "send"},
        catalog,
    )
    assert updates["request_type"] == "pago_en_linea"
    assert updates["item"] is None and updates["confirmation"] is None
    assert "email" not in updates  # contact data is kept
    assert updates["original_text"] == "el pse no funciona"
    assert says[0].response == "utter_request_started"


def test_start_from_retired_payload_redirects_directly(catalog: Catalog) -> None:
    entities = ({"entity": "request_type", "value": "eliminacion_actualizacion_cartera"},)
    updates, says = requests.start_request(
        turn('/choose_request_type{"request_type":"eliminacion_actualizacion_cartera"}', "choose_request_type", entities=entities),
        {},
        catalog,
    )
    assert updates["request_type"] == "acompanamiento_tecnico"
    assert updates["redirected_from"] == "eliminacion_actualizacion_cartera"
    assert [s.response for s in says] == ["utter_retired_option", "utter_redirect_started"]


def test_unknown_request_type_payload_shows_the_menu(catalog: Catalog) -> None:
    entities = ({"entity": "request_type", "value": "no_existe"},)
    updates, says = requests.start_request(turn("/choose_request_type", "choose_request_type", entities=entities), {}, catalog)
    assert updates["request_type"] is None
    assert [s.response for s in says] == ["utter_unknown_request_type", "utter_menu_categories"]


def test_accepting_the_redirect_offer_keeps_the_original_words(catalog: Catalog) -> None:
    text = "necesito eliminar unos registros de la cartera porque ya pagaron"
    offer, says = requests.offer_redirect(turn(text, "cambio_registros_cartera"), catalog)
    assert [s.response for s in says] == ["utter_retired_option", "utter_redirect_offer"]
    updates, says = requests.start_request(turn("sí", "affirm", mode="start"), offer, catalog)
    assert updates["request_type"] == "acompanamiento_tecnico"
    assert updates["redirected_from"] == "eliminacion_actualizacion_cartera"
    assert updates["original_text"] == text


def test_cancel_outside_a_form_says_there_is_nothing(catalog: Catalog) -> None:
    _, says = requests.cancel({}, form_active=False, catalog=catalog)
    assert says[0].response == "utter_nothing_to_cancel"


# ----------------------------------------------- review of a customer audit
def test_cartera_named_while_the_nlu_reads_the_retired_option_asks_which(catalog: Catalog) -> None:
    slots = {"request_type": "gestion_archivos", "requested_slot": "item"}
    step = form.step(turn("es el de cartera", "cambio_registros_cartera", 0.8), slots, catalog)
    assert responses(step) == ["utter_item_or_retired"] and step.updates.get("request_type") is None
    payloads = [b.payload for b in step.says[0].buttons]
    assert payloads == ['/inform{"item":"falla_cargue_cartera"}', '/inform{"item":"eliminacion_actualizacion_cartera"}']
    # Only that choice is shown: the ítem question would compete with it.
    assert prompts.step_messages(step, slots, catalog) == step.says


def test_item_correction_naming_cartera_asks_rather_than_redirects(catalog: Catalog) -> None:
    slots = {**confirmed_slots(), "request_type": "gestion_archivos", "item": "falla_cargue_usuarios"}
    step = form.step(turn("el ítem está mal, es el de cartera", "cambio_registros_cartera", 0.7), slots, catalog)
    assert responses(step) == ["utter_item_or_retired"]
    assert step.updates.get("request_type") is None and step.next_slot == "item"


def test_a_new_description_in_the_correction_replaces_it(catalog: Catalog) -> None:
    text = "la descripción está mal, es: el débito automático cobró dos veces al usuario 7788 el 5 de noviembre"
    step = form.step(turn(text, "correct"), confirmed_slots(), catalog)
    assert step.updates["description"] == "el débito automático cobró dos veces al usuario 7788 el 5 de noviembre"
    assert step.next_slot == "confirmation"


def test_the_correction_menu_goes_back_to_the_summary(catalog: Catalog) -> None:
    slots = confirmed_slots(awaiting_correction=True, requested_slot="correction_field")
    asked = prompts.ask("correction_field", slots, catalog)
    assert asked[0].buttons[-1].payload == "/affirm"
    step = form.step(turn("/affirm", "affirm", 1.0), slots, catalog)
    assert step.updates["awaiting_correction"] is False and step.next_slot == "confirmation"


def test_contact_data_alone_at_the_description_question_is_noted(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "description", "country": "CO"}
    step = form.step(turn("luis@a.com", "inform"), slots, catalog)
    assert step.updates["email"] == "luis@a.com" and step.updates["description"] is None
    assert responses(step) == ["utter_noted_still_missing"] and step.next_slot == "description"


def test_a_likely_typo_in_a_known_provider_is_shown_back_and_accepted_if_repeated(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "email"}
    step = form.step(turn("ana@hotmail.con"), slots, catalog)
    assert step.updates["email"] is None and responses(step) == ["utter_email_typo"]
    assert step.says[0].kwargs == {"value": "ana@hotmail.con", "suggestion": "ana@hotmail.com"}
    assert [b.payload for b in step.says[0].buttons] == ['/inform{"email":"ana@hotmail.com"}', '/inform{"email":"ana@hotmail.con"}']
    assert prompts.step_messages(step, slots, catalog) == step.says  # the choice is the question
    asked = {**slots, **step.updates}
    fixed = form.step(turn('/inform{"email":"ana@hotmail.com"}', entities=({"entity": "email", "value": "ana@hotmail.com"},)), asked, catalog)
    assert fixed.updates["email"] == "ana@hotmail.com"
    insisted = form.step(turn("ana@hotmail.con"), asked, catalog)
    assert insisted.updates["email"] == "ana@hotmail.con" and insisted.updates["email_questioned"] is None


def test_company_domains_are_never_second_guessed(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "email"}
    step = form.step(turn("tesoreria@colegio.edu.co"), slots, catalog)
    assert step.updates == {"email": "tesoreria@colegio.edu.co"} and step.says == []


def test_a_clearly_different_request_type_while_a_datum_is_asked_restarts(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "email"}
    step = form.step(turn("perdón, en realidad es que no tengo acceso al SFTP", "sin_acceso_sftp", 0.93), slots, catalog)
    assert step.reject  # a rule starts the other request
    unsure = form.step(turn("perdón, en realidad es otra cosa", "sin_acceso_sftp", 0.4), slots, catalog)
    assert not unsure.reject and responses(unsure) == ["utter_invalid_email_missing_at"]


def test_a_long_explanation_instead_of_the_email_is_kept_as_the_description(catalog: Catalog) -> None:
    slots = {"request_type": "capacitaciones", "requested_slot": "email"}
    text = "somos 5 personas nuevas en tesorería y necesitamos aprender a usar el módulo"
    step = form.step(turn(text, "capacitaciones", 0.7), slots, catalog)
    assert step.updates["description"] == text and step.updates["email"] is None
    assert responses(step) == ["utter_noted_still_missing"] and step.next_slot == "email"


def test_sí_to_the_email_suggestion_takes_it_and_no_keeps_what_was_written(catalog: Catalog) -> None:
    slots = {"request_type": "pago_en_linea", "requested_slot": "email", "email_questioned": "pedro@yaho.com"}
    assert form.step(turn("sí", "affirm", 0.9), slots, catalog).updates["email"] == "pedro@yahoo.com"
    assert form.step(turn("no", "deny", 0.9), slots, catalog).updates["email"] == "pedro@yaho.com"


def test_saying_it_was_another_type_restarts_even_at_the_description(catalog: Catalog) -> None:
    slots = {"request_type": "inconsistencia_pago", "requested_slot": "description"}
    assert form.step(turn("perdón, en realidad es que no tengo acceso al SFTP", "sin_acceso_sftp", 0.9), slots, catalog).reject
    plain = form.step(turn("el pago no aparece en el SFTP del banco desde ayer", "sin_acceso_sftp", 0.9), slots, catalog)
    assert not plain.reject and plain.updates["description"].startswith("el pago no aparece")


def test_more_detail_at_the_email_question_is_added_not_lost(catalog: Catalog) -> None:
    more = "además probamos desde otro computador y en otro navegador y sigue igual"
    slots = {"request_type": "falla_ingreso_modulo", "requested_slot": "email", "description": "el módulo no carga desde esta mañana"}
    step = form.step(turn(more, "falla_ingreso_modulo", 0.6), slots, catalog)
    assert step.updates["description"].startswith("el módulo no carga desde esta mañana") and step.updates["description"].endswith(more)
    no_field = {"request_type": "gestion_archivos", "requested_slot": "email", "item": "falla_cargue_usuarios", "original_text": "falla el cargue de usuarios"}
    step = form.step(turn(more, "gestion_archivos", 0.6), no_field, catalog)
    assert step.updates["original_text"] == f"falla el cargue de usuarios\n{more}"


def test_a_phone_typed_with_spaces_at_the_description_question_is_noted_not_taken_as_the_description(catalog: Catalog) -> None:
    slots = {"request_type": "acompanamiento_tecnico", "requested_slot": "description", "country": "CO"}
    step = form.step(turn("mi cel es 315 777 8899"), slots, catalog)
    assert step.updates["phone"] == "+573157778899" and step.updates["description"] is None
    assert responses(step) == ["utter_noted_still_missing"]
