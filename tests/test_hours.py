"""Business hours per country and national holidays (bot/hours.py), at fixed moments, worded in local time.

The hours are the real catalog's (lunes a viernes 8:00–18:00 in each
country); the holidays are the ``holidays`` package's own data, named in
Spanish. Every moment is given in UTC, so the local time shown is the
module's conversion, not the test's.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml

from bot.catalog import CATALOG_PATH, Catalog, CatalogError, parse_catalog
from bot.catalog.model import Country
from bot.hours import availability, closed_notice, reply_time, schedule, when


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def country(catalog: Catalog, country_id: str) -> Country:
    found = catalog.country(country_id)
    assert found is not None and found.hours is not None
    return found


# Bogotá is UTC-5, Ciudad de México UTC-6 (no summer time since 2022), Santo Domingo UTC-4.
@pytest.mark.parametrize(
    "country_id, moment, local",
    [
        ("CO", utc(2026, 12, 7, 15, 0), "10:00"),  # lunes 10:00 en Bogotá
        ("MX", utc(2026, 11, 11, 15, 0), "9:00"),  # miércoles 9:00 en CDMX
        ("DO", utc(2026, 12, 23, 21, 59), "17:59"),  # miércoles 17:59 en Santo Domingo
    ],
)
def test_a_weekday_within_hours_is_open_until_the_local_closing(
    catalog: Catalog, country_id: str, moment: datetime, local: str
) -> None:
    place = country(catalog, country_id)
    available = availability(place, moment)
    assert available.open_now and available.next_opening is None
    assert f"{available.now.hour}:{available.now.minute:02d}" == local
    assert when(available) == f"hoy hasta las 18:00 (hora de {place.name})"
    assert reply_time(available) == f"Estamos en horario de atención: hoy hasta las 18:00 (hora de {place.name})."


def test_after_hours_on_a_weekday_opens_tomorrow_at_eight_local(catalog: Catalog) -> None:
    # Tuesday 2026-12-01, 23:30 UTC = 18:30 in Bogotá (closed), 17:30 in CDMX (open), 19:30 in Santo Domingo.
    moment = utc(2026, 12, 1, 23, 30)
    bogota = availability(country(catalog, "CO"), moment)
    assert not bogota.open_now
    assert reply_time(bogota) == "Te responderán a partir de mañana a las 8:00 (hora de Colombia)."
    assert closed_notice(bogota) == (
        "Ahora estamos fuera del horario de atención del equipo de soporte "
        "(lunes a viernes de 8:00 a 18:00, hora de Colombia)."
    )
    mexico = availability(country(catalog, "MX"), moment)
    assert mexico.open_now and when(mexico) == "hoy hasta las 18:00 (hora de México)"
    santo_domingo = availability(country(catalog, "DO"), moment)
    assert not santo_domingo.open_now
    assert when(santo_domingo) == "a partir de mañana a las 8:00 (hora de República Dominicana)"


def test_before_opening_the_same_day_says_today(catalog: Catalog) -> None:
    available = availability(country(catalog, "MX"), utc(2026, 11, 11, 12, 0))  # 6:00 in CDMX
    assert when(available) == "a partir de hoy a las 8:00 (hora de México)"


@pytest.mark.parametrize(
    "country_id, moment",
    [
        ("CO", utc(2026, 12, 5, 15, 0)),  # sábado
        ("MX", utc(2026, 12, 5, 20, 0)),  # sábado 14:00 en CDMX
        ("DO", utc(2026, 12, 4, 23, 0)),  # viernes 19:00 en Santo Domingo
    ],
)
def test_a_weekend_opens_on_monday_at_eight(catalog: Catalog, country_id: str, moment: datetime) -> None:
    place = country(catalog, country_id)
    available = availability(place, moment)
    assert not available.open_now and available.holidays == ()
    assert (
        available.next_opening is not None and available.next_opening.strftime("%Y-%m-%d %H:%M") == "2026-12-07 08:00"
    )
    assert reply_time(available) == f"Te responderán a partir del lunes 8:00 (hora de {place.name})."


def test_on_sunday_monday_is_tomorrow(catalog: Catalog) -> None:
    available = availability(country(catalog, "MX"), utc(2026, 12, 6, 20, 0))  # domingo 14:00 en CDMX
    assert reply_time(available) == "Te responderán a partir de mañana a las 8:00 (hora de México)."


def test_the_saturday_night_in_utc_is_still_friday_evening_in_mexico(catalog: Catalog) -> None:
    available = availability(country(catalog, "MX"), utc(2026, 12, 5, 1, 0))  # viernes 19:00 en CDMX
    assert available.now.strftime("%A %H:%M") == "Friday 19:00"
    assert when(available) == "a partir del lunes 8:00 (hora de México)"


@pytest.mark.parametrize(
    "country_id, moment, holiday, reopening, next_words",
    [
        # Martes 8 de diciembre de 2026, La Inmaculada Concepción, 10:00 en Bogotá.
        (
            "CO",
            utc(2026, 12, 8, 15, 0),
            "Hoy es festivo en Colombia (La Inmaculada Concepción).",
            "2026-12-09",
            "a partir de mañana a las 8:00 (hora de Colombia)",
        ),
        # Lunes 16 de noviembre de 2026, Día de la Revolución (tercer lunes), 10:00 en CDMX.
        (
            "MX",
            utc(2026, 11, 16, 16, 0),
            "Hoy es festivo en México (Día de la Revolución).",
            "2026-11-17",
            "a partir de mañana a las 8:00 (hora de México)",
        ),
        # Viernes 25 de diciembre de 2026, Navidad, 11:00 en Santo Domingo: reabre el lunes.
        (
            "DO",
            utc(2026, 12, 25, 15, 0),
            "Hoy es festivo en República Dominicana (Día de Navidad).",
            "2026-12-28",
            "a partir del lunes 8:00 (hora de República Dominicana)",
        ),
    ],
)
def test_a_national_holiday_on_a_weekday_is_closed_and_named(
    catalog: Catalog, country_id: str, moment: datetime, holiday: str, reopening: str, next_words: str
) -> None:
    available = availability(country(catalog, country_id), moment)
    assert not available.open_now
    assert available.next_opening is not None and available.next_opening.date().isoformat() == reopening
    assert closed_notice(available).endswith(holiday)
    assert when(available) == next_words


def test_the_eve_of_a_holiday_names_tomorrow_and_skips_it(catalog: Catalog) -> None:
    available = availability(country(catalog, "CO"), utc(2026, 12, 8, 0, 30))  # lunes 7, 19:30 en Bogotá
    assert closed_notice(available).endswith("Mañana es festivo en Colombia (La Inmaculada Concepción).")
    assert reply_time(available) == "Te responderán a partir del miércoles 8:00 (hora de Colombia)."


def test_a_holiday_after_a_weekend_is_named_with_its_date(catalog: Catalog) -> None:
    available = availability(country(catalog, "MX"), utc(2026, 11, 14, 0, 30))  # viernes 13, 18:30 en CDMX
    assert "El lunes 16 de noviembre es festivo en México (Día de la Revolución)." in closed_notice(available)
    assert when(available) == "a partir del martes 8:00 (hora de México)"


def test_a_holiday_moved_to_monday_is_named_without_the_package_mark(catalog: Catalog) -> None:
    # Colombia moves Reyes to Monday 12 January 2027 («(observado)» in the package): no mark for the customer.
    available = availability(country(catalog, "CO"), utc(2027, 1, 11, 15, 0))
    assert not available.open_now
    text = closed_notice(available)
    assert "Hoy es festivo en Colombia (Día de los Reyes Magos)." in text and "observado" not in text


def test_the_same_moment_differs_by_country_on_a_holiday_of_one_only(catalog: Catalog) -> None:
    moment = utc(2026, 11, 16, 16, 0)  # lunes 16 de noviembre: festivo en México y en Colombia, no en RD
    assert not availability(country(catalog, "MX"), moment).open_now
    assert not availability(country(catalog, "CO"), moment).open_now
    assert availability(country(catalog, "DO"), moment).open_now


def test_a_naive_moment_is_taken_as_utc(catalog: Catalog) -> None:
    assert availability(country(catalog, "CO"), datetime(2026, 12, 7, 15, 0)).now.hour == 10


# ----------------------------------------------------------- catalog data
def _raw() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def _catalog_with(hours: dict) -> Catalog:
    data = _raw()
    data["countries"][0]["business_hours"] = hours
    return parse_catalog(data)


def test_hours_are_read_from_ranges_lists_and_unquoted_times() -> None:
    catalog = _catalog_with(
        {
            "holidays": "CO",
            "open": [
                {"days": "Lunes a Viernes", "from": "7:30", "to": "12:00"},
                {"days": ["lunes", "miercoles"], "from": 840, "to": "17:00"},  # YAML reads an unquoted 14:00 as 840
                {"days": "sábado", "from": "09:00", "to": "13:00"},
            ],
        }
    )
    hours = catalog.countries[0].hours
    assert hours is not None
    assert schedule(hours) == (
        "lunes y miércoles de 7:30 a 12:00 y de 14:00 a 17:00; martes, jueves y viernes de 7:30 a 12:00; "
        "sábado de 9:00 a 13:00"
    )
    # Monday 12:30 in Bogotá: closed at noon, open again at 14:00 the same day.
    between = availability(catalog.countries[0], utc(2026, 12, 7, 17, 30))
    assert when(between) == "a partir de hoy a las 14:00 (hora de Colombia)"


@pytest.mark.parametrize(
    "hours, problem",
    [
        ({"open": [{"days": "lunes a festivo", "from": "8:00", "to": "18:00"}]}, "no es un día"),
        ({"open": [{"days": "viernes a lunes", "from": "8:00", "to": "18:00"}]}, "termina antes de empezar"),
        ({"open": [{"days": "lunes", "from": "18:00", "to": "8:00"}]}, "cierra antes de abrir"),
        ({"open": [{"days": "lunes", "from": "25:00", "to": "26:00"}]}, "no es una hora del día"),
        ({"open": [{"days": "lunes", "from": "8h", "to": "18:00"}]}, "no es una hora HH:MM"),
        ({"holidays": "CO"}, "no dice qué días abre"),
        ({"holidays": "XX", "open": [{"days": "lunes", "from": "8:00", "to": "18:00"}]}, "no conoce los festivos"),
    ],
)
def test_a_wrong_business_hours_entry_stops_the_load_saying_where(hours: dict, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        _catalog_with(hours)


def test_the_handoff_request_type_is_catalog_data(catalog: Catalog) -> None:
    assert catalog.handoff_request_type is not None
    assert catalog.handoff_request_type.id == catalog.portal["handoff"]["request_type"]


def test_an_unknown_handoff_request_type_stops_the_load() -> None:
    data = _raw()
    data["portal"]["handoff"] = {"request_type": "no_existe"}
    with pytest.raises(CatalogError, match="portal.handoff.request_type"):
        parse_catalog(data)


def test_a_country_without_hours_answers_as_soon_as_someone_can() -> None:
    data = _raw()
    del data["countries"][0]["business_hours"]
    place = parse_catalog(data).countries[0]
    available = availability(place, utc(2026, 12, 5, 15, 0))
    assert available.open_now and not available.known
    assert when(available) == "en cuanto una persona esté disponible (hora de Colombia)"
