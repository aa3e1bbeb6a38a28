"""When a person of the help desk answers: a country's business hours and national holidays, in its local time.

A customer who asks for a person is told when one will answer, in their own
clock: «Te responderán a partir del lunes 8:00 (hora de Colombia)». The hours
are catalog data (``countries[].business_hours``); the national holidays of
Colombia, México and República Dominicana come from the ``holidays`` package,
named in Spanish. The moment is always a parameter, so the wording for a
holiday or a weekend is tested at fixed moments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional, Union
from zoneinfo import ZoneInfo

import holidays

from bot.catalog import WEEKDAYS, BusinessHours, Country

MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)
# How far ahead an opening is looked for: past a year the hours are certainly wrong.
HORIZON_DAYS = 370
# At most this many holidays are named before the next opening (Semana Santa is the longest run).
NAMED_HOLIDAYS = 3
_OBSERVED = "(observado)"  # the package's mark for a holiday moved to a Monday


@dataclass(frozen=True)
class Holiday:
    """A day the desk would open but does not: a national holiday, named as the package names it in Spanish."""

    day: date
    name: str


@dataclass(frozen=True)
class Availability:
    """Whether a person answers now, for one country at one moment; every time is the country's local time."""

    country: Country
    now: datetime
    open_now: bool
    until: Optional[datetime] = None  # open now: when this stretch closes
    next_opening: Optional[datetime] = None  # closed: when a person answers next
    holidays: tuple[Holiday, ...] = ()  # closed: holidays between now and the next opening

    @property
    def known(self) -> bool:
        """The country has business hours in the catalog."""
        return self.country.hours is not None


def utc_now() -> datetime:
    """The real clock; tests pass fixed moments instead."""
    return datetime.now(timezone.utc)


def _holiday_names(hours: BusinessHours, year: int) -> holidays.HolidayBase:
    """The country's national holidays, in Spanish; later years are added as they are asked for."""
    if not hours.holidays:
        return holidays.HolidayBase()
    return holidays.country_holidays(hours.holidays, years=year, language="es")


def _clean(name: str) -> str:
    names = [part.replace(_OBSERVED, "").strip() for part in name.split(";")]
    return "; ".join(dict.fromkeys(n for n in names if n))


def availability(country: Country, moment: datetime) -> Availability:
    """Open now (until when), or the next opening and the holidays that keep the desk closed until then.

    ``moment`` is any aware datetime (a naive one is taken as UTC).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    zone = ZoneInfo(country.timezone)
    local = moment.astimezone(zone)
    hours = country.hours
    if hours is None:
        return Availability(country, local, open_now=True)
    calendar = _holiday_names(hours, local.year)
    skipped: list[Holiday] = []
    for offset in range(HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        spans = hours.spans_on(day.weekday())
        if not spans:
            continue
        name = calendar.get(day)
        if name:
            skipped.append(Holiday(day, _clean(str(name))))
            continue
        for span in spans:
            start = datetime.combine(day, span.opens, tzinfo=zone)
            end = datetime.combine(day, span.closes, tzinfo=zone)
            if start <= local < end:
                return Availability(country, local, open_now=True, until=end)
            if start > local:
                return Availability(country, local, open_now=False, next_opening=start, holidays=tuple(skipped))
    return Availability(country, local, open_now=False, holidays=tuple(skipped[:NAMED_HOLIDAYS]))


# ------------------------------------------------------------------- words
def clock(moment: Union[datetime, time]) -> str:
    """8:00, 18:30: how the hour is written for the customer."""
    return f"{moment.hour}:{moment.minute:02d}"


def zone_label(country: Country) -> str:
    return f"(hora de {country.name})"


def _day(day: date, today: date) -> str:
    """hoy, mañana, el lunes, el lunes 11 de enero: a day as the customer says it, seen from ``today``."""
    ahead = (day - today).days
    if ahead == 0:
        return "hoy"
    if ahead == 1:
        return "mañana"
    weekday = WEEKDAYS[day.weekday()]
    if ahead < 7:
        return f"el {weekday}"
    return f"el {weekday} {day.day} de {MONTHS[day.month - 1]}"


def _from(moment: datetime, today: date) -> str:
    """«a partir del lunes 8:00», «a partir de mañana a las 8:00»."""
    day = _day(moment.date(), today)
    if not day.startswith("el "):
        return f"a partir de {day} a las {clock(moment)}"
    separator = ", " if " de " in day else " "  # «del lunes 11 de enero, 8:00»
    return f"a partir del {day[3:]}{separator}{clock(moment)}"


def when(available: Availability) -> str:
    """When a person answers: «hoy hasta las 18:00 (hora de México)», «a partir del lunes 8:00 (hora de Colombia)»."""
    label = zone_label(available.country)
    if available.open_now:
        if available.until is None:
            return f"en cuanto una persona esté disponible {label}"
        return f"hoy hasta las {clock(available.until)} {label}"
    if available.next_opening is None:
        return f"en cuanto el equipo vuelva a atender {label}"
    return f"{_from(available.next_opening, available.now.date())} {label}"


def schedule(hours: BusinessHours) -> str:
    """The week's hours in words: «lunes a viernes de 8:00 a 18:00; sábado de 9:00 a 13:00»."""
    by_hours: dict[tuple[str, ...], list[int]] = {}
    for weekday in range(7):
        spans = hours.spans_on(weekday)
        if spans:
            stretches = tuple(f"de {clock(s.opens)} a {clock(s.closes)}" for s in spans)
            by_hours.setdefault(stretches, []).append(weekday)
    parts = []
    for stretches, days in by_hours.items():
        runs: list[list[int]] = []
        for weekday in days:
            if runs and runs[-1][-1] == weekday - 1:
                runs[-1].append(weekday)
            else:
                runs.append([weekday])
        named: list[str] = []
        for run in runs:
            named += [f"{WEEKDAYS[run[0]]} a {WEEKDAYS[run[-1]]}"] if len(run) > 2 else [WEEKDAYS[d] for d in run]
        parts.append(f"{listing(named)} {' y '.join(stretches)}")
    return "; ".join(parts)


def listing(items: list[str]) -> str:
    """«martes, jueves y viernes»."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} y {items[-1]}"


def _holiday_sentence(holiday: Holiday, country: Country, today: date) -> str:
    day = _day(holiday.day, today)
    if day.startswith("el ") and " de " not in day:
        day = f"{day} {holiday.day.day} de {MONTHS[holiday.day.month - 1]}"
    return f"{day[0].upper()}{day[1:]} es festivo en {country.name} ({holiday.name})."


def closed_notice(available: Availability) -> str:
    """What a customer reads before anything is created outside hours: the hours and the holidays in the way.

    «Ahora estamos fuera del horario de atención del equipo de soporte (lunes
    a viernes de 8:00 a 18:00, hora de Colombia). Hoy es festivo en Colombia
    (La Inmaculada Concepción).»
    """
    country = available.country
    hours = country.hours
    text = "Ahora estamos fuera del horario de atención del equipo de soporte"
    if hours is not None:
        text += f" ({schedule(hours)}, hora de {country.name})"
    text += "."
    today = available.now.date()
    sentences = [_holiday_sentence(h, country, today) for h in available.holidays[:NAMED_HOLIDAYS]]
    return " ".join([text, *sentences])


def reply_time(available: Availability) -> str:
    """One sentence: when the customer hears from a person.

    «Estamos en horario de atención: hoy hasta las 18:00 (hora de México).» /
    «Te responderán a partir del lunes 8:00 (hora de Colombia).»
    """
    if available.open_now and available.until is not None:
        return f"Estamos en horario de atención: {when(available)}."
    return f"Te responderán {when(available)}."
