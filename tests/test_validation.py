"""Field validation, table-driven: e-mails, CO/MX/DO phones, descriptions, ítems."""

from __future__ import annotations

import pytest

from bot.catalog import Catalog
from bot.contacts import find_contacts, only_contacts
from bot.text import clean_text
from bot.validation import (
    DESCRIPTION_MAX_CHARS,
    check_description,
    check_email,
    check_option,
    check_phone,
    format_phone,
    shown_value,
)

COUNTRIES = ["CO", "MX", "DO"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ana.perez@empresa.com.co", "ana.perez@empresa.com.co"),
        ("  Soporte@Ecollect.COM ", "Soporte@ecollect.com"),
        ("<luis@banco.com.mx>", "luis@banco.com.mx"),
        ("maria+tickets@correo.do", "maria+tickets@correo.do"),
    ],
)
def test_valid_emails_are_normalised(raw: str, expected: str) -> None:
    assert check_email(raw).value == expected


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("", "empty"),
        ("ana.perez", "missing_at"),
        ("3157778899", "missing_at"),
        ("ana@", "invalid"),
        ("ana@empresa", "invalid"),
        ("ana@@empresa.com", "invalid"),
        ("ana perez@empresa.com", "invalid"),
        ("@empresa.com", "invalid"),
    ],
)
def test_invalid_emails_say_why(raw: str, problem: str) -> None:
    check = check_email(raw)
    assert not check.ok and check.problem == problem


@pytest.mark.parametrize(
    "raw, e164, country",
    [
        ("+57 315 777 8899", "+573157778899", "CO"),
        ("573157778899", "+573157778899", "CO"),
        ("0057 315 777 8899", "+573157778899", "CO"),
        ("601 555 1234", "+576015551234", "CO"),  # Bogotá landline, 10 digits since 2021
        ("55 1234 5678", "+525512345678", "MX"),  # CDMX
        ("+52 1 55 1234 5678", "+525512345678", "MX"),
        ("809-555-1234", "+18095551234", "DO"),
        ("+1 849 555 1234", "+18495551234", "DO"),
    ],
)
def test_phones_resolve_to_e164(raw: str, e164: str, country: str) -> None:
    check = check_phone(raw, COUNTRIES)
    assert (check.e164, check.country) == (e164, country)


@pytest.mark.parametrize(
    "raw, candidates",
    [
        ("3001234567", {"CO": "+573001234567", "MX": "+523001234567"}),
        ("315 777 8899", {"CO": "+573157778899", "MX": "+523157778899"}),
        ("829 123 4567", {"MX": "+528291234567", "DO": "+18291234567"}),
    ],
)
def test_national_numbers_valid_in_two_countries_are_never_guessed(raw: str, candidates: dict) -> None:
    check = check_phone(raw, COUNTRIES)
    assert check.ambiguous and check.e164 is None
    assert check.candidates == candidates


def test_known_country_resolves_an_ambiguous_number() -> None:
    assert check_phone("3001234567", COUNTRIES, known_country="CO").e164 == "+573001234567"
    assert check_phone("3001234567", COUNTRIES, known_country="MX").e164 == "+523001234567"
    # A known country where the number is not valid does not force it.
    assert check_phone("3001234567", COUNTRIES, known_country="DO").ambiguous


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("", "empty"),
        ("no tengo", "empty"),
        ("12345", "too_short"),
        ("31577788991234567", "too_long"),
        ("+1 212 555 1234", "unsupported_country"),  # New York
        ("+34 612 345 678", "unsupported_country"),  # Spain
        ("1111111111", "invalid"),
    ],
)
def test_invalid_phones_say_why(raw: str, problem: str) -> None:
    check = check_phone(raw, COUNTRIES)
    assert not check.ok and not check.ambiguous and check.problem == problem


def test_phone_formatting_for_summaries() -> None:
    assert format_phone("+573157778899") == "+57 315 7778899"


@pytest.mark.parametrize(
    "text, ok",
    [
        ("no carga", False),
        ("ayuda ayuda ayuda ayuda ayuda", False),
        ("el PSE no devuelve al comercio después de pagar", True),
        ("Necesito eliminar 3 registros de cartera duplicados", True),
    ],
)
def test_descriptions_too_short_to_act_on_are_refused(catalog: Catalog, text: str, ok: bool) -> None:
    spec = catalog.request_type("acompanamiento_tecnico").field("description")
    check = check_description(text, spec)
    assert check.ok is ok
    if not ok:
        assert check.problem == "too_short"


@pytest.mark.parametrize(
    "text, option",
    [
        ("falla_cargue_cartera", "falla_cargue_cartera"),
        ("Falla en cargue archivos de usuarios", "falla_cargue_usuarios"),
        ("el de cartera", "falla_cargue_cartera"),
        ("REPORTE DE TRANSACCIONES", "falla_reporte_transacciones"),
        ("generacion de pagos", "falla_generacion_pagos"),
    ],
)
def test_items_are_matched_by_id_name_or_alias(catalog: Catalog, text: str, option: str) -> None:
    spec = catalog.request_type("gestion_archivos").field("item")
    assert check_option(text, spec).value == option


def test_unknown_item_is_refused(catalog: Catalog) -> None:
    spec = catalog.request_type("gestion_archivos").field("item")
    assert check_option("la impresora", spec).problem == "unknown"


@pytest.mark.parametrize(
    "text, found",
    [
        (
            "hola soy ana.perez@empresa.com.co, mi cel es 315 777 8899",
            [("email", "ana.perez@empresa.com.co"), ("phone", "3157778899")],
        ),
        ("mi numero +52 55 1234 5678", [("phone", "+525512345678")]),
        ("cel +52 1 55 1234 5678 gracias", [("phone", "+525512345678")]),  # pre-2019 mobile prefix
        ("llamame al 809-555-1234.", [("phone", "8095551234")]),
        ("como va ECO-000123", []),
        ("tarjeta 4111 1111 1111 1111", []),
        ("escribe a ventas@ecollect.com", [("email", "ventas@ecollect.com")]),
    ],
)
def test_contacts_are_found_in_free_text(text: str, found: list) -> None:
    assert [(f.entity, f.value) for f in find_contacts(text, COUNTRIES)] == found


def test_clean_text_removes_controls_but_keeps_lines_and_emoji() -> None:
    assert clean_text("\x00a\x07b\x1b[0mc\n\td 🙂") == "ab[0mc\n\td 🙂"
    assert clean_text(None) == ""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jorge@colegio.edu.co", True),
        ("mi correo es ana@x.com", True),
        ("cel +52 1 55 1234 5678", True),
        ("mi cel es 315 777 8899 gracias", True),
        ("el PSE no sirve, correo a@b.co", False),
        ("el teléfono está mal, es 3157778899", False),
        ("ECO-000001", False),
        ("hola", False),
    ],
)
def test_messages_made_only_of_contact_data(text: str, expected: bool) -> None:
    assert only_contacts(text, COUNTRIES) is expected


def test_a_description_longer_than_a_ticket_takes_is_refused(catalog: Catalog) -> None:
    spec = catalog.request_type("pago_en_linea").field("description")
    words = " ".join(f"palabra{n}" for n in range(2000))
    assert len(words) > DESCRIPTION_MAX_CHARS
    assert check_description(words, spec).problem == "too_long"
    assert check_description(words[:DESCRIPTION_MAX_CHARS].rsplit(" ", 1)[0], spec).ok


def test_refused_values_are_quoted_short_and_on_one_line() -> None:
    assert shown_value("no-es-un-correo") == "no-es-un-correo"
    quoted = shown_value("a" * 500 + "\x00\x1b[31m\nb")
    assert len(quoted) == 60 and quoted.endswith("…") and "\x1b" not in quoted and "\n" not in quoted
    assert shown_value({"$ne": 1}) == "{'$ne': 1}"
