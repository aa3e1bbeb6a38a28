"""Whole conversations against the real servers over the REST channel.

The action server and the Rasa server are started once (see conftest) exactly
as `make run` starts them; each test is one customer, and checks both what
the customer reads and what lands in the ticket store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import Chat, RunningAssistant

pytestmark = pytest.mark.servers

CLOSING = "El equipo de soporte te indicará cómo realizar el proceso."


def tickets_of(assistant: RunningAssistant, chat: Chat):
    return assistant.store.list(conversation_id=chat.sender)


def confirm(chat: Chat) -> str:
    return chat.text(chat.say("/affirm"))


def test_free_text_gestion_de_archivos_with_email_given(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    replies = chat.say("no me carga el archivo de cartera, mi correo es ana.perez@empresa.com.co")
    text = chat.text(replies)
    # Nothing already said is asked again: straight to the summary.
    assert "Revisa tu solicitud" in text, chat.dump()
    assert "Falla en cargue archivos de cartera" in text
    assert chat.payloads(replies)[-3:] == ["/affirm", "/correct", "/cancel"]
    done = confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.key in done
    assert (ticket.request_type, ticket.item) == ("Gestión de archivos", "Falla en cargue archivos de cartera")
    assert ticket.email == "ana.perez@empresa.com.co" and ticket.channel == "rest"
    assert ticket.original_text.startswith("no me carga el archivo de cartera")


@pytest.mark.parametrize(
    "opening, request_type",
    [
        ("el pse no me deja pagar, se queda cargando y no vuelve al comercio", "Pago en línea"),
        ("filezilla no conecta al sftp, dice connection timed out", "No tengo acceso al SFTP"),
        ("quiero contratar el servicio de débito automático para mi empresa", "Adquirir un nuevo servicio(s)"),
        ("necesitamos una capacitación sobre cómo generar los reportes del módulo", "Capacitaciones"),
        ("en el celular la página de pago sale desordenada y no se ve el botón de pagar", "Falla en experiencia de usuario"),
    ],
)
def test_a_ticket_for_each_category_in_free_text(assistant: RunningAssistant, opening: str, request_type: str) -> None:
    chat = assistant.chat()
    chat.say(opening)
    chat.say("luis@colegio.edu.co")
    last = chat.say("+57 315 777 8899")
    if "Cuéntame con detalle" in chat.text(chat.transcript[0][1]):
        last = chat.say("el problema empezó ayer en la tarde y afecta a todos nuestros clientes")
    assert "Revisa tu solicitud" in chat.text(last), chat.dump()
    confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.request_type == request_type, chat.dump()
    assert ticket.phone == "+573157778899"
    assert ticket.description


def test_guided_menu_to_a_ticket(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    greeting = chat.say("hola")
    assert "/menu" in chat.payloads(greeting)
    categories = chat.say("/menu")
    assert len(chat.payloads(categories)) == 5
    types = chat.say('/choose_category{"category":"modulo_administrativo"}')
    assert "Error al momento de utilizar la opción de cargar o descargar archivos" in chat.text(types)
    items = chat.say('/choose_request_type{"request_type":"gestion_archivos"}')
    item_payloads = chat.payloads(items)
    assert len(item_payloads) == 4 and not any("eliminacion" in p for p in item_payloads)
    chat.say('/inform{"item":"falla_reporte_transacciones"}')
    chat.say("soporte@empresa.com")
    confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.item == "Falla en el reporte de transacciones"
    assert ticket.original_text is None  # buttons only: no words of the customer to keep


def test_retired_option_in_words_is_redirected_and_ticket_created(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    offer = chat.say("necesito eliminar unos registros de la cartera porque esos clientes ya pagaron")
    text = chat.text(offer)
    assert "fue eliminada" in text and "cargue de cartera" in text and "Módulo Administrativo" in text
    assert "Acompañamiento técnico" in text
    chat.say("sí")  # description = their first words; e-mail asked next
    chat.say("ana@empresa.com")
    phone = chat.say("3001234567")
    assert ["/inform{\"country\":\"CO\"}", "/inform{\"country\":\"MX\"}"] == chat.payloads(phone), chat.dump()
    summary = chat.say("Colombia")
    assert "+57 300 1234567" in chat.text(summary)
    done = confirm(chat)
    assert done.rstrip().endswith(CLOSING)
    (ticket,) = tickets_of(assistant, chat)
    assert (ticket.category, ticket.request_type) == ("Formación e información", "Acompañamiento técnico")
    assert ticket.redirected_from == "eliminacion_actualizacion_cartera"
    assert ticket.phone == "+573001234567"
    assert "ya pagaron" in ticket.description


def test_retired_option_typed_as_the_item(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type":"gestion_archivos"}')
    switched = chat.text(chat.say("eliminar registros de cartera"))
    assert "fue eliminada" in switched and "Acompañamiento técnico" in switched
    chat.say("hay tres obligaciones que ya no existen y debo quitarlas de la cartera")
    chat.say("ana@empresa.com")
    chat.say("+52 55 1234 5678")
    assert CLOSING in confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.request_type == "Acompañamiento técnico" and ticket.item is None


def test_retired_option_sent_as_payload(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    replies = chat.text(chat.say('/choose_request_type{"request_type":"eliminacion_actualizacion_cartera"}'))
    assert "fue eliminada" in replies and "Acompañamiento técnico" in replies
    item = chat.text(chat.say('/inform{"item":"eliminacion_actualizacion_cartera"}'))
    assert "registros de cartera" in item  # still asking the description, nothing offered


def test_cartera_upload_failure_is_not_redirected(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    text = chat.text(chat.say("el plano de cartera no sube, sale error al cargarlo"))
    assert "fue eliminada" not in text
    assert "Gestión de archivos" in text, chat.dump()


def test_correction_changes_one_field_and_returns_to_the_summary(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type":"inconsistencia_pago"}')
    chat.say("el cliente pagó por PSE y el pago aparece rechazado en ecollect pero aprobado en el banco")
    chat.say("ana@empresa.com")
    chat.say("+57 315 777 8899")
    fixed = chat.text(chat.say("el teléfono está mal, es 3157778800"))
    assert "Revisa tu solicitud" in fixed and "+57 315 7778800" in fixed, chat.dump()
    assert "ana@empresa.com" in fixed
    confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.phone == "+573157778800"


def test_cancel_creates_nothing(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("no puedo entrar al módulo, se queda la pantalla en blanco")
    chat.say("ana@empresa.com")
    cancelled = chat.text(chat.say("cancelar"))
    assert "No se creó ningún ticket" in cancelled, chat.dump()
    assert tickets_of(assistant, chat) == []
    # The form really stopped: the next message is not taken as a form answer.
    assert "nada que cancelar" in chat.text(chat.say("cancelar"))


def test_side_question_is_answered_and_the_form_resumes(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type":"acompanamiento_tecnico"}')
    answer = chat.text(chat.say("¿qué es el acompañamiento técnico?"))
    assert "Funciona como un recurso adicional" in answer
    assert "Cuéntame con detalle" in answer  # the pending question is asked again
    chat.say("necesito apoyo para configurar las referencias del servicio nuevo")
    chat.say("ana@empresa.com")
    chat.say("809-555-1234")
    confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.description == "necesito apoyo para configurar las referencias del servicio nuevo"
    assert ticket.phone == "+18095551234"


def test_invalid_values_are_refused_with_the_reason(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type":"pago_presencial"}')
    assert "al menos" in chat.text(chat.say("no sirve"))
    chat.say("el corresponsal bancario no reporta los pagos de ayer en la tarde")
    assert "le falta la @" in chat.text(chat.say("ana.empresa.com"))
    chat.say("ana@empresa.com")
    assert "demasiado corto" in chat.text(chat.say("12345"))


def test_status_of_my_ticket(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("no me genera el archivo de pagos, soy tesoreria@empresa.com")
    confirm(chat)
    (ticket,) = tickets_of(assistant, chat)
    status = chat.text(chat.say(f"¿cómo va mi solicitud {ticket.key}?"))
    assert ticket.key in status and "Abierta" in status, chat.dump()
    stranger = assistant.chat()
    refused = stranger.text(stranger.say(f"estado de la solicitud {ticket.key}"))
    assert "Por seguridad solo muestro aquí" in refused and "Abierta" not in refused, stranger.dump()
    unknown = stranger.text(stranger.say("estado de la solicitud ECO-999999"))
    assert unknown == refused.replace(ticket.key, "ECO-999999"), stranger.dump()  # keys are sequential: no hint


def test_tickets_cli_lists_what_the_conversations_created(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("no me carga el plano de usuarios, mi correo es rrhh@empresa.com")
    confirm(chat)
    env = {**os.environ, "BOT_DATA_DIR": str(assistant.settings.data_dir), "TICKETS_DB_URL": assistant.settings.tickets_db_url}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "tickets", "list", "--json"], capture_output=True, text=True, check=True, env=env
    ).stdout
    mine = [t for t in json.loads(out) if t["conversation_id"] == chat.sender]
    assert len(mine) == 1 and mine[0]["item"] == "Falla en cargue archivos de usuarios"
