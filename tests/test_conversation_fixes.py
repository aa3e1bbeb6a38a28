"""Issue 16, item 3: the conversations that went wrong for reasons that are not the classifier.

Each test is one customer talking to the real servers over REST (the session
``assistant`` fixture), checking what the customer reads and what lands in
the ticket store.
"""

from __future__ import annotations

import pytest

from tests.conftest import Chat, RunningAssistant

pytestmark = pytest.mark.servers

ASK_DESCRIPTION = "Cuéntame con detalle"
SUMMARY = "Revisa tu solicitud"
ANYTHING_ELSE = "¿Hay algo más en lo que te pueda ayudar?"


def tickets_of(assistant: RunningAssistant, chat: Chat):
    return assistant.store.list(conversation_id=chat.sender)


def to_the_description(chat: Chat) -> None:
    """«Pago en línea» opened with its button: the form asks the description."""
    asked = chat.text(chat.say('/choose_request_type{"request_type":"pago_en_linea"}'))
    assert ASK_DESCRIPTION in asked, chat.dump()


def to_the_summary(chat: Chat) -> str:
    to_the_description(chat)
    chat.say("el botón de PSE se queda cargando y el cliente no vuelve al comercio")
    chat.say("ana@empresa.com")
    summary = chat.text(chat.say("+57 315 777 8899"))
    assert SUMMARY in summary, chat.dump()
    return summary


# --------------------------------------------- an opening that only names the type
def test_an_opening_that_only_names_the_type_asks_what_the_problem_is(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    opening = "tengo un inconveniente con la conexión a nuestro sistema contable"
    first = chat.text(chat.say(opening))
    assert "integración con ERP" in first, chat.dump()
    assert ASK_DESCRIPTION in first, chat.dump()  # the opening says what, not what happens
    told = "cuando sincronizamos los pagos del día el ERP responde error 401 desde el lunes"
    chat.say(told)
    chat.say("ana@empresa.com")
    assert SUMMARY in chat.text(chat.say("+57 315 777 8899")), chat.dump()
    chat.say("/affirm")
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.description == told
    assert ticket.original_text == opening  # the opening is still kept as the customer's first words


def test_an_opening_that_tells_the_problem_is_still_the_description(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    opening = "el ERP no recibe los pagos del día, sale error 401 al sincronizar desde el lunes"
    first = chat.text(chat.say(opening))
    assert ASK_DESCRIPTION not in first and "correo" in first, chat.dump()


# ------------------------------------------------------- a card number in the message
def test_a_card_number_does_not_push_a_missing_payment_to_multipayment(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    replies = chat.say("pagaron con la tarjeta 5500 0000 0000 0004 y no aparece")
    text = chat.text(replies)
    assert "→ Multipayment" not in text, chat.dump()  # never opened as pagos mixtos
    opened = "→ Inconsistencia en un pago" in text
    suggested = chat.payloads(replies)[:1] == [
        '/choose_request_type{"request_type":"inconsistencia_pago","opening":"kept"}'
    ]
    assert opened or suggested, chat.dump()  # opened, or the first suggestion


# ---------------------------------------------------------------------- gibberish
@pytest.mark.parametrize("gibberish", ["asdf qwer", "sdfsdf sdf", "xyz", "jkjkjk"])
def test_gibberish_is_not_read_as_yes_or_no(assistant: RunningAssistant, gibberish: str) -> None:
    chat = assistant.chat()
    replies = chat.say(gibberish)
    text = chat.text(replies)
    assert ANYTHING_ELSE not in text, chat.dump()
    assert "/menu" in chat.payloads(replies) or "menú" in text, chat.dump()


def test_gibberish_at_the_summary_sends_nothing(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    to_the_summary(chat)
    again = chat.text(chat.say("sdfsdf sdf"))
    assert tickets_of(assistant, chat) == [], chat.dump()
    assert "Sí, enviar" in again or "enviar" in again.lower(), chat.dump()
    chat.say("sí")
    assert len(tickets_of(assistant, chat)) == 1, chat.dump()


# ------------------------------------------------ the phone's likelier country first
@pytest.mark.parametrize(
    "email, first, second",
    [("ana@empresa.com.mx", "MX", "CO"), ("ana@empresa.com.co", "CO", "MX")],
)
def test_the_country_of_the_email_is_offered_first_for_an_ambiguous_phone(
    assistant: RunningAssistant, email: str, first: str, second: str
) -> None:
    chat = assistant.chat()
    to_the_description(chat)
    chat.say("el botón de PSE se queda cargando y el cliente no vuelve al comercio")
    chat.say(email)
    replies = chat.say("3001234567")
    assert chat.payloads(replies) == [f'/inform{{"country":"{first}"}}', f'/inform{{"country":"{second}"}}'], (
        chat.dump()
    )
    names = {"MX": "México", "CO": "Colombia"}
    assert f"{names[first]} y {names[second]}" in chat.text(replies)  # still asked, the likelier first


# ----------------------------------------------------- «nada» at the correction menu
def test_nothing_to_correct_goes_back_to_the_summary(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    to_the_summary(chat)
    assert "¿Qué dato quieres corregir?" in chat.text(chat.say("/correct")), chat.dump()
    back = chat.text(chat.say("nada, así está bien"))
    assert SUMMARY in back and "No reconocí" not in back, chat.dump()
    chat.say("/affirm")
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.email == "ana@empresa.com"


# ------------------------------------------------------------ a greeting asking help
@pytest.mark.parametrize("greeting", ["hola, necesito ayuda por favor", "hola necesito ayuda con algo"])
def test_a_greeting_asking_for_help_gets_the_menu(assistant: RunningAssistant, greeting: str) -> None:
    chat = assistant.chat()
    replies = chat.say(greeting)
    text = chat.text(replies)
    assert "No estoy seguro de haber entendido" not in text, chat.dump()
    payloads = chat.payloads(replies)
    # The menu: its button after a greeting, or its categories after a call for help.
    assert "/menu" in payloads or sum(p.startswith("/choose_category") for p in payloads) == 5, chat.dump()


# ------------------------------------------------ a side question at the description
@pytest.mark.parametrize(
    "question, answer",
    [("¿cuánto tarda la respuesta?", "horario"), ("¿para qué necesitas eso?", "equipo de soporte")],
)
def test_a_side_question_at_the_description_is_answered_not_stored(
    assistant: RunningAssistant, question: str, answer: str
) -> None:
    chat = assistant.chat()
    to_the_description(chat)
    replied = chat.text(chat.say(question))
    assert answer in replied and ASK_DESCRIPTION in replied, chat.dump()
    told = "el botón de PSE se queda cargando y el cliente no vuelve al comercio"
    chat.say(told)
    chat.say("ana@empresa.com")
    chat.say("+57 315 777 8899")
    chat.say("/affirm")
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.description == told


def test_a_question_about_the_problem_is_the_description(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    to_the_description(chat)
    question = "¿por qué no me aparece el pago que hizo el cliente ayer por PSE?"
    asked = chat.text(chat.say(question))
    assert "correo" in asked, chat.dump()
    chat.say("ana@empresa.com")
    chat.say("+57 315 777 8899")
    chat.say("/affirm")
    (ticket,) = tickets_of(assistant, chat)
    assert ticket.description == question


# -------------------------------------------------- contact data inside the description
def test_contact_data_in_the_description_fills_the_fields_and_leaves_the_text(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    to_the_description(chat)
    told = "el botón de PSE se queda cargando y el cliente no vuelve al comercio"
    country = chat.say(f"{told}, mi correo es ana@empresa.com.mx y mi cel 3001234567")
    assert chat.payloads(country)[0] == '/inform{"country":"MX"}', chat.dump()  # e-mail and phone taken, never asked
    summary = chat.text(chat.say("México"))
    assert SUMMARY in summary and f"Descripción: {told}\n" in summary, chat.dump()
    chat.say("/affirm")
    (ticket,) = tickets_of(assistant, chat)
    assert (ticket.description, ticket.email, ticket.phone) == (told, "ana@empresa.com.mx", "+523001234567")
    assert "3001234567" in (ticket.original_text or "") or ticket.original_text is None
