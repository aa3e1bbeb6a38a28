"""`make bench-review`: how long a lead waits for the review pages over 10 000 and 100 000 conversations.

For each size a temporary SQLite review database is filled directly with
the index rows of generated conversations (a realistic mix of request
types, channels, countries, outcomes, refusals, suggestion picks and weeks),
and a tracker store with one head event per conversation, so the index sees
them as up to date; then a small batch of new conversations is written to
the tracker store as Rasa writes events and indexed incrementally. Each page
is timed as its handler calls it: the index refresh, then the figure (or the
list, or the overview). The target: every page under ``TARGET_SECONDS`` at
100 000 conversations.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bot.catalog import Catalog, get_catalog
from bot.review import analysis, db
from bot.review.index import ConversationIndex, Filters
from bot.review.intake import iso_week
from bot.review.labels import Labels
from bot.review.metrics import Metrics
from bot.review.metrics_model import Period
from bot.thread.model import CsatAnswer
from bot.transcripts import TrackerReader

SIZES = (10_000, 100_000)
NEW_CONVERSATIONS = 50
EVENTS_EACH = 20  # tracker events per generated conversation (a short intake writes 40 to 60)
TARGET_SECONDS = 2.0
WEEKS = 26
ZONE = ZoneInfo("America/Bogota")
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc)
CHANNELS = (("socketio", 0.5), ("whatsapp", 0.3), ("rest", 0.05), ("teams", 0.15))
COUNTRIES = (("CO", 0.6), ("MX", 0.25), ("DO", 0.1), (None, 0.05))
OUTCOMES = (
    (analysis.TICKET, 0.55), (analysis.ABANDONED, 0.15), (analysis.CANCELLED, 0.07), (analysis.DEFLECTED, 0.05),
    (analysis.HANDOFF, 0.04), (analysis.REDIRECTED, 0.03), (analysis.FALLBACK, 0.06), (analysis.NO_REQUEST, 0.05),
)  # fmt: skip
REFUSALS = (("email", "missing_at"), ("email", "invalid"), ("phone", "too_short"), ("description", "too_short"))


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float


def _pick(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


class CsatList:
    """Rated answers kept in memory: what ``CsatBook.answers`` returns, without a tickets database."""

    def __init__(self, answers: list[CsatAnswer]) -> None:
        self._answers = answers

    def answers(self, since: Optional[datetime] = None) -> list[CsatAnswer]:
        return [a for a in self._answers if since is None or (a.answered_at and a.answered_at >= since)]


def _questions(catalog: Catalog, type_id: str) -> list[str]:
    request_type = catalog.request_type(type_id)
    return [f.id for f in request_type.fields if f.required] if request_type else []


def generate(size: int, catalog: Catalog, rng: random.Random) -> tuple[dict[Any, list[dict[str, Any]]], list[Any]]:
    """Index rows of ``size`` conversations, and their CSAT answers; every row as the index would write it."""
    types = [rt.id for rt in catalog.request_types]
    weights = [8 if i < 6 else 1 for i in range(len(types))]  # a few types take most requests
    rows: dict[Any, list[dict[str, Any]]] = {table: [] for table in db.CACHE_TABLES}
    answers: list[CsatAnswer] = []
    for n in range(size):
        sender = f"bench-{n:07d}"
        started = NOW - timedelta(seconds=rng.uniform(0, WEEKS * 7 * 86400))
        channel, country, outcome = _pick(rng, CHANNELS), _pick(rng, COUNTRIES), _pick(rng, OUTCOMES)
        kind = rng.choices(types, weights=weights)[0] if outcome not in (analysis.NO_REQUEST,) else None
        questions = _questions(catalog, kind) if kind else []
        ticket = outcome in (analysis.TICKET, analysis.HANDOFF) and rng.random() < 0.9
        stop = len(questions) if ticket else rng.randrange(len(questions) + 1) if questions else 0
        asked = questions[: max(stop, 1)] if questions else []
        turns = rng.randint(1, 4) + len(asked)
        fallback = rng.randint(0, 2) if outcome == analysis.FALLBACK else int(rng.random() < 0.05)
        week = iso_week(started, ZONE)
        repeated = rng.random() < 0.2
        rows[db.conversations].append(
            dict(
                sender_id=sender, last_event_id=(n + 1) * EVENTS_EACH, started_at=started,
                last_at=started + timedelta(minutes=4),
                channel=channel, request_types=f",{kind}," if kind else "", last_request_type=kind, outcome=outcome,
                outcomes=f",{outcome},", tickets=f",ECO-{n:06d}," if ticket else "", email=None, phone=None,
                turns=turns, missed_turns=fallback, low_confidence_turns=fallback, customer_text=f"mensaje {n}",
                refreshed_at=time.time(), country=country, week=week, ticket_type=kind if ticket else None,
                ticket_turns=turns + 1 if ticket else None, ticket_seconds=rng.uniform(40, 900) if ticket else None,
                repeated=repeated,
            )
        )  # fmt: skip
        if kind:
            rows[db.requests].append(
                dict(
                    sender_id=sender, request_type=kind, asked="," + ",".join(asked) + ",",
                    answered="," + ",".join(questions[:stop]) + "," if stop else "",
                    last_question=asked[-1] if asked else None, summary=ticket or rng.random() < 0.1,
                    confirmed=ticket, ticket=ticket,
                )
            )  # fmt: skip
            if repeated:
                question, reason = rng.choice(REFUSALS)
                rows[db.refusals].append(
                    dict(sender_id=sender, request_type=kind, question=question, reason=reason,
                         text="ana arroba" if question == "email" else "315", at=started + timedelta(minutes=1))
                )  # fmt: skip
        rows[db.turn_weeks].append(
            dict(sender_id=sender, week=week, turns=turns, understood=max(0, turns - fallback - 1),
                 low_confidence=min(1, turns - fallback), fallback=fallback)
        )  # fmt: skip
        if fallback and rng.random() < 0.5:
            rows[db.picks].append(dict(sender_id=sender, request_type=rng.choice(types[:5])))
        if ticket and rng.random() < 0.1:
            answered = started + timedelta(days=rng.uniform(1, 5))
            if answered <= NOW:
                answers.append(
                    CsatAnswer(
                        ticket_key=f"ECO-{n:06d}", conversation_id=sender, channel=channel,
                        request_type_id=kind or "", request_type=kind or "", asked_at=started,
                        rating=rng.randint(1, 5), answered_at=answered,
                    )
                )  # fmt: skip
    return rows, answers


def new_conversation_events(n: int, start: datetime) -> list[dict[str, Any]]:
    """One customer's turns as Rasa stores them: an e-mail refused once, then a ticket."""
    clock = start.timestamp()
    events: list[dict[str, Any]] = []

    def add(**event: Any) -> None:
        nonlocal clock
        clock += 7
        events.append({"timestamp": clock, **event})

    def user(text: str, intent: str, confidence: float = 0.97) -> None:
        add(event="user", text=text, input_channel="whatsapp",
            parse_data={"intent": {"name": intent, "confidence": confidence}, "text": text})  # fmt: skip

    user("el pse no me deja pagar", "pago_en_linea")
    add(event="action", name="action_start_request")
    add(event="slot", name="request_type", value="pago_en_linea")
    add(event="active_loop", name="ticket_form")
    add(event="slot", name="description", value="el pse no me deja pagar")
    add(event="slot", name="requested_slot", value="email")
    user("ana arroba", "inform", 0.72)
    add(event="bot", text="Le falta la @", metadata={"utter_action": "utter_invalid_email_missing_at"})
    add(event="slot", name="requested_slot", value="email")
    user(f"cliente{n}@empresa.com", "inform", 1.0)
    add(event="slot", name="email", value=f"cliente{n}@empresa.com")
    add(event="slot", name="requested_slot", value="confirmation")
    user("/affirm", "affirm", 1.0)
    add(event="slot", name="confirmation", value="send")
    add(event="active_loop", name=None)
    add(event="slot", name="ticket_key", value=f"ECO-9{n:05d}")
    return events


def build(
    size: int, folder: Path, catalog: Catalog, rng: random.Random
) -> tuple[ConversationIndex, Metrics, float, Timing]:
    """The review and tracker databases for ``size`` conversations; the load time and the first full look too."""
    started = time.perf_counter()
    tracker = folder / "tracker.db"
    with sqlite3.connect(tracker) as connection:
        connection.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) "
            "NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"
        )
        connection.execute("CREATE INDEX ix_events_sender_id ON events (sender_id)")
        connection.executemany(
            "INSERT INTO events (id, sender_id, type_name, timestamp, data) VALUES (?, ?, 'action', ?, '{}')",
            (
                (n * EVENTS_EACH + k, f"bench-{n:07d}", NOW.timestamp())
                for n in range(size)
                for k in range(1, EVENTS_EACH + 1)
            ),
        )
    engine = db.engine_for(f"sqlite:///{folder / 'review.db'}")
    index = ConversationIndex(TrackerReader(f"sqlite:///{tracker}"), engine, ZONE)
    rows, answers = generate(size, catalog, rng)
    with engine.begin() as connection:
        for table in db.CACHE_TABLES:
            if rows[table]:
                connection.execute(insert(table), rows[table])
    first_look = timed("primera lectura completa (al arrancar)", lambda: index.refresh(NOW))
    with sqlite3.connect(tracker) as connection:
        for n in range(NEW_CONVERSATIONS):
            sender = f"nueva-{n:04d}"
            for event in new_conversation_events(n, NOW - timedelta(minutes=30)):
                connection.execute(
                    "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                    (sender, event["event"], event["timestamp"], json.dumps(event)),
                )
    loading = time.perf_counter() - started - first_look.seconds
    return index, Metrics(index, catalog, Labels(engine), CsatList(answers)), loading, first_look


def timed(name: str, call: Callable[[], Any]) -> Timing:
    started = time.perf_counter()
    call()
    return Timing(name, time.perf_counter() - started)


def page(index: ConversationIndex, figure: Callable[[], Any]) -> Any:
    """What a page's handler does: bring the index up to date, then read its figure."""
    index.refresh(NOW)
    return figure()


def measure(index: ConversationIndex, metrics: Metrics) -> list[Timing]:
    """The incremental refresh, then each page as its handler calls it (refresh first, then the figure)."""
    found = [timed(f"refresco incremental ({NEW_CONVERSATIONS} conversaciones nuevas)", lambda: index.refresh(NOW))]
    last_week = iso_week(NOW - timedelta(days=7), ZONE)
    period = Period(NOW.date() - timedelta(days=28), NOW.date(), "")
    month = Filters(date_from=period.start, date_to=period.end)
    pages: list[tuple[str, Callable[[], Any]]] = [
        ("lista de conversaciones", lambda: (index.search(Filters()), index.channels())),
        ("resumen (panorama)", lambda: index.stats(today=NOW.astimezone(ZONE).date())),
        ("embudo, todo el periodo", lambda: metrics.funnel(Filters())),
        ("embudo, 4 semanas, WhatsApp", lambda: metrics.funnel(replace(month, channel="whatsapp"))),
        ("esfuerzo", lambda: metrics.effort(Filters())),
        ("comprensión", lambda: metrics.understanding(Filters())),
        ("contención", lambda: metrics.containment(Filters())),
        ("satisfacción (CSAT)", lambda: metrics.csat(Filters())),
        ("cifras de 4 semanas, país CO", lambda: metrics.funnel(Filters(date_from=month.date_from, country="CO"))),
        (f"informe semanal {last_week}", lambda: metrics.weekly(last_week)),
    ]  # fmt: skip
    for name, call in pages:
        found.append(timed(name, partial(page, index, call)))
    return found


def run(sizes: Sequence[int] = SIZES, seed: int = 15) -> int:
    catalog = get_catalog()
    results: dict[int, list[Timing]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-review-") as scratch:
            index, metrics, loading, first_look = build(size, Path(scratch), catalog, random.Random(seed))
            print(f"{size:>7} conversaciones generadas en {loading:.1f} s", flush=True)
            results[size] = [first_look, *measure(index, metrics)]
            index.engine.dispose()
    names = [t.name for t in results[sizes[0]]]
    header = "".join(f"{size:>12,}".replace(",", " ") for size in sizes)
    print(f"\n{'página (segundos)':<52}{header}")
    for row, name in enumerate(names):
        print(f"{name:<52}" + "".join(f"{results[size][row].seconds:>12.3f}" for size in sizes))
    largest = results[sizes[-1]][2:]  # the pages (not the start-up look nor the refresh alone)
    slow = [t for t in largest if t.seconds >= TARGET_SECONDS]
    print(
        f"\nObjetivo: cada página en menos de {TARGET_SECONDS:.0f} s con {sizes[-1]:,} conversaciones.".replace(
            ",", " "
        )
    )
    if slow:
        print("Fuera del objetivo: " + ", ".join(f"{t.name} ({t.seconds:.2f} s)" for t in slow))
        return 1
    print("Todas las páginas dentro del objetivo.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mide las páginas de revisión con 10 000 y 100 000 conversaciones.")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="tamaños separados por comas")
    args = parser.parse_args(argv)
    return run([int(s) for s in args.sizes.split(",") if s.strip()])


if __name__ == "__main__":
    sys.exit(main())
