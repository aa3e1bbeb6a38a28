"""Issue 15's facts from synthetic event lists (edge cases), the cache's upgrade, the figures, exports and bench."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest
from sqlalchemy import create_engine, insert, inspect, text

from bot import bench_review
from bot.catalog import Catalog
from bot.review import analysis, db
from bot.review.db import engine_for
from bot.review.index import ConversationIndex, Filters, review_zone
from bot.review.intake import refusal_of
from bot.review.labels import Labels
from bot.review.metrics import Metrics, nearest_rank, week_period, weeks_between
from bot.review.metrics_exports import KINDS, metrics_csv, metrics_json
from bot.settings.review import ReviewSettings
from bot.thread.model import CsatAnswer
from bot.transcripts import EVENTS, TrackerReader, _metadata
from tests.test_review_analysis import NOW, Conversation, tracker_db
from tests.test_security_review import review_db_url  # noqa: F401  # the figures on SQLite and PostgreSQL

BOGOTA = review_zone(ReviewSettings(timezone="America/Bogota"))


def summarize(c: Conversation, sender: str = "c") -> analysis.Summary:
    return analysis.summarize(sender, c.events, now=NOW, zone=BOGOTA)


def asked(c: Conversation, slot: str) -> Conversation:
    return c.slot("requested_slot", slot)


def refused(c: Conversation, text: str, utter: str) -> Conversation:
    return c.user(text, "inform", 0.9).bot("No", utter)


# ------------------------------------------------------------ summarize
def test_questions_refusals_and_effort_to_the_ticket() -> None:
    c = Conversation(channel="whatsapp").user("/greet", "greet", 1.0).start("pago_en_linea")
    c.slot("description", "el pse no me deja pagar")
    asked(c, "email")
    refused(c, "ana arroba", "utter_invalid_email_missing_at")
    asked(c, "email")
    refused(c, "mi tarjeta 4111 1111 1111 1111", "utter_invalid_email_invalid")
    asked(c, "email").user("ana@empresa.com", "inform", 1.0).slot("email", "ana@empresa.com")
    asked(c, "phone").user("3157778899", "inform", 1.0).slot("phone_candidates", {"CO": "+573157778899"})
    asked(c, "phone_country").user("/affirm", "affirm", 1.0).bot("?", "utter_answer_not_understood")
    asked(c, "phone_country").user('/inform{"country":"CO"}', "inform", 1.0)
    c.slot("phone", "+573157778899").slot("country", "CO")
    asked(c, "confirmation").bot("Revisa", "utter_question_confirmation").user("/affirm", "affirm", 1.0)
    c.slot("confirmation", "send").slot("request_type", None).slot("ticket_key", "ECO-000001")
    s = summarize(c)
    facts = s.intake
    (request,) = facts.requests.values()
    assert request.asked == {"email", "phone", "phone_country"}
    assert request.answered == {"description", "email", "phone", "phone_country"}
    assert (request.summary, request.confirmed, request.ticket, request.last_question) == (
        True, True, True, "resumen",
    )  # fmt: skip  # the summary was the last step asked
    assert [(r.question, r.reason) for r in facts.refusals] == [
        ("email", "missing_at"), ("email", "invalid"), ("phone_country", "no_entendida"),
    ]  # fmt: skip
    assert "4111" not in facts.refusals[1].text and facts.refusals[0].text == "ana arroba"
    # Messages up to the ticket, clicks included, the widget's /greet not: 8.
    assert (facts.ticket_type, facts.ticket_turns, facts.repeated_before_ticket) == ("pago_en_linea", 8, True)
    assert facts.ticket_seconds == pytest.approx(5 * (len(c.events) - 2))  # first message is the 2nd event
    assert facts.country == "CO"


def test_a_second_request_after_a_ticket_keeps_its_own_facts_and_contact_data() -> None:
    c = Conversation().start("capacitaciones").slot("email", "ana@empresa.com")
    asked(c, "description").user("necesito una capacitación de reportes", "inform").slot("description", "x y z w")
    c.slot("request_type", None).slot("ticket_key", "ECO-000002")
    c.user("ahora el pse no funciona", "pago_en_linea").slot("description", None).slot("request_type", "pago_en_linea")
    asked(c, "phone")
    facts = summarize(c).intake
    assert list(facts.requests) == ["capacitaciones", "pago_en_linea"]
    second = facts.requests["pago_en_linea"]
    assert second.answered == {"email"} and second.last_question == "phone" and not second.ticket
    assert facts.ticket_type == "capacitaciones" and facts.repeated_before_ticket is False


def test_suggestion_picks_typed_words_and_broken_payloads() -> None:
    c = Conversation().user("pago", "nlu_fallback", 0.5).action("action_suggest_request_types")
    c.user('/choose_request_type{"request_type":"pago_presencial","opening":"kept"}', "choose_request_type", 1.0)
    c.user("otra", "nlu_fallback", 0.4).action("action_suggest_request_types").user("/other", "other", 1.0)
    c.user("x", "nlu_fallback", 0.4).action("action_suggest_request_types").user("no sé", "deny", 0.9)
    c.user("x", "nlu_fallback", 0.4).action("action_suggest_request_types").user("/choose_request_type{roto", "x", 1.0)
    assert summarize(c).intake.picks == ["pago_presencial", "otra"]


def test_a_person_asked_for_is_the_outcome_even_with_the_ticket_it_opened() -> None:
    c = Conversation().user("quiero hablar con una persona", "human_handoff").action("action_human_handoff")
    c.slot("request_type", "acompanamiento_tecnico").form(True).slot("ticket_key", "ECO-000003")
    s = summarize(c)
    assert s.outcome == analysis.HANDOFF and analysis.TICKET in s.outcomes
    assert analysis.labels(s.outcomes)[0] == "Derivada a una persona"
    assert analysis.OUTCOME_ORDER[1:] == (
        analysis.TICKET, analysis.DEFLECTED, analysis.ABANDONED, analysis.CANCELLED, analysis.REDIRECTED,
        analysis.FALLBACK, analysis.IN_PROGRESS, analysis.NO_REQUEST,
    )  # fmt: skip


@pytest.mark.parametrize(
    "sender, slots, country",
    [
        ("c", {"country": "mx"}, "MX"),
        ("c", {"phone": "+18095551234"}, "DO"),
        ("whatsapp:+573001234567", {}, "CO"),
        ("c", {}, None),
    ],
)
def test_country_said_else_the_phones(sender: str, slots: dict[str, Any], country: Optional[str]) -> None:
    c = Conversation().user("hola", "greet")
    for name, value in slots.items():
        c.slot(name, value)
    assert summarize(c, sender).intake.country == country


def test_turns_count_in_the_teams_week_and_by_confidence() -> None:
    sunday_night = datetime(2026, 11, 30, 4, 30, tzinfo=timezone.utc)  # Sunday 23:30 in Bogotá, Monday in UTC
    c = Conversation(start=sunday_night - timedelta(seconds=5)).user("el pse", "pago_en_linea", 0.95)
    c.user("algo", "pago_en_linea", 0.6).user("asdf", "nlu_fallback", 0.5).user("pizza", "out_of_scope", 0.9)
    c.user("/affirm", "affirm", 1.0)  # a click: not a turn
    weeks = summarize(c).intake.weeks
    assert list(weeks) == ["2026-W48"]
    w = weeks["2026-W48"]
    assert (w.turns, w.understood, w.low_confidence, w.fallback) == (4, 1, 1, 2)
    assert summarize(c).week == "2026-W48"


@pytest.mark.parametrize(
    "utter, found",
    [
        ("utter_invalid_email_missing_at", ("email", "missing_at")),
        ("utter_invalid_phone_unsupported_country", ("phone", "unsupported_country")),
        ("utter_invalid_description_too_short", ("description", "too_short")),
        ("utter_invalid_item", ("item", "invalid")),
        ("utter_invalid_phone_country", ("phone_country", "invalid")),
        ("utter_ticket_refused_email", ("email", "al_enviar")),
        ("utter_ticket_refused_country", ("phone_country", "al_enviar")),
        ("utter_invalid_correction_field", None),
        ("utter_question_email", None),
    ],
)
def test_refusal_responses(utter: str, found: Optional[tuple[str, str]]) -> None:
    assert refusal_of(utter) == found


# ----------------------------------------------------------------- index
def old_review_db(path: Path) -> str:
    """A review database as the previous version left it: no facts columns, no cache tag."""
    url = f"sqlite:///{path}"
    with create_engine(url).begin() as connection:
        connection.execute(text(
            "CREATE TABLE review_conversations (sender_id VARCHAR(255) PRIMARY KEY, last_event_id INTEGER NOT NULL, "
            "started_at DATETIME, last_at DATETIME, channel VARCHAR(50), request_types VARCHAR(1000) NOT NULL, "
            "last_request_type VARCHAR(100), outcome VARCHAR(30) NOT NULL, outcomes VARCHAR(200) NOT NULL, "
            "tickets VARCHAR(1000) NOT NULL, email VARCHAR(320), phone VARCHAR(32), turns INTEGER NOT NULL, "
            "missed_turns INTEGER NOT NULL, low_confidence_turns INTEGER NOT NULL, customer_text TEXT NOT NULL, "
            "refreshed_at FLOAT)"
        ))  # fmt: skip
        connection.execute(text(
            "INSERT INTO review_conversations VALUES ('viejo', 99, NULL, NULL, 'rest', '', NULL, 'sin_solicitud', '', "
            "'', NULL, NULL, 0, 0, 0, '', 0)"
        ))  # fmt: skip
    return url


def test_an_existing_database_gets_the_new_cache_and_a_new_zone_rebuilds_it(tmp_path: Path) -> None:
    reader = tracker_db(tmp_path / "tracker.db", {"nueva": Conversation().start("pago_en_linea")})
    engine = engine_for(old_review_db(tmp_path / "review.db"))
    index = ConversationIndex(reader, engine, BOGOTA)
    assert "country" in {col["name"] for col in inspect(engine).get_columns("review_conversations")}
    assert index.refresh(now=NOW) == 1 and index.get("viejo") is None and index.get("nueva") is not None
    assert ConversationIndex(reader, engine, BOGOTA).refresh(now=NOW) == 0  # same version and zone: kept
    mexico = review_zone(ReviewSettings(timezone="America/Mexico_City"))
    assert ConversationIndex(reader, engine, mexico).refresh(now=NOW) == 1  # weeks depend on the zone


def add_events(reader: TrackerReader, sender: str, conversation: Conversation) -> None:
    with create_engine(reader.url).begin() as connection:
        for event in conversation.events:
            data = {k: v for k, v in event.items() if k != "_id"}
            connection.execute(insert(EVENTS).values(
                sender_id=sender, type_name=event["event"], timestamp=event["timestamp"], data=json.dumps(data)
            ))  # fmt: skip


def test_refresh_reads_only_new_events_and_notices_a_store_started_anew(tmp_path: Path) -> None:
    reader = tracker_db(
        tmp_path / "tracker.db", {"a": Conversation().start("pago_en_linea").slot("ticket_key", "ECO-1")}
    )
    index = ConversationIndex(reader, engine_for(f"sqlite:///{tmp_path / 'review.db'}"), BOGOTA)
    assert index.refresh(now=NOW) == 1 and db.watermark(index.engine) == reader.last_id()
    add_events(reader, "b", Conversation().start("capacitaciones"))
    assert index.refresh(now=NOW) == 1 and index.get("b").outcome == analysis.ABANDONED
    assert index.refresh(now=NOW) == 0
    fresh = tracker_db(tmp_path / "tracker2.db", {"c": Conversation().user("hola", "greet")})
    index.reader = fresh  # the tracker store emptied and started again: smaller ids than the last look
    assert index.refresh(now=NOW) == 1 and index.get("c") is not None


def test_country_filter_from_query_arguments() -> None:
    filters = Filters.from_args({"pais": "co"})
    assert filters.country == "CO" and filters.as_args() == {"pais": "CO"}
    assert Filters.from_args({"pais": "\x00" * 3}).country is None


# ---------------------------------------------------------------- figures
class Answers:
    def __init__(self, answers: list[CsatAnswer]) -> None:
        self.list = answers

    def answers(self, since: Optional[datetime] = None) -> list[CsatAnswer]:
        return [a for a in self.list if since is None or (a.answered_at and a.answered_at >= since)]


def csat_answer(key: str, sender: str, channel: str, kind: str, rating: int, at: datetime) -> CsatAnswer:
    return CsatAnswer(
        ticket_key=key, conversation_id=sender, channel=channel, request_type_id=kind, request_type=kind, asked_at=at,
        rating=rating, answered_at=at,
    )  # fmt: skip


@pytest.fixture
def figures(tmp_path: Path, catalog: Catalog, review_db_url: str) -> Metrics:  # noqa: F811
    """Two conversations a week apart, a correction and two CSAT answers, on SQLite or PostgreSQL."""
    week_ago = NOW - timedelta(days=7)
    ticket = Conversation(channel="whatsapp").start("pago_en_linea").slot("phone", "+573001234567")
    asked(ticket, "email")
    refused(ticket, '=HYPERLINK("http://x")', "utter_invalid_email_invalid")
    asked(ticket, "email").user("ana@empresa.com", "inform", 1.0).slot("email", "ana@empresa.com")
    ticket.slot("ticket_key", "ECO-000001")
    old = Conversation(start=week_ago, channel="socketio").start("pago_en_linea")
    asked(old, "phone")
    conversations = {"whatsapp:+573001234567": ticket, "antigua": old}
    reader = tracker_db(tmp_path / "tracker.db", conversations)
    engine = engine_for(review_db_url)
    index = ConversationIndex(reader, engine, BOGOTA)
    index.refresh(now=NOW)
    labels = Labels(engine)
    labels.mark("whatsapp:+573001234567", 2, "el pse no me deja", "greet", "pago_en_linea", "lider")
    labels.mark("antigua", 2, "x", "pago_en_linea", "pago_en_linea", "lider")  # confirmed, not corrected
    answers = Answers([
        csat_answer("ECO-000001", "whatsapp:+573001234567", "whatsapp", "pago_en_linea", 5, NOW - timedelta(hours=1)),
        csat_answer("ECO-000000", "antigua", "socketio", "pago_en_linea", 2, week_ago),
    ])  # fmt: skip
    return Metrics(index, catalog, labels, answers)


def test_figures_filtered_by_country_and_the_weekly_report(figures: Metrics) -> None:
    colombia = Filters(country="CO")
    funnel = figures.funnel(colombia)
    assert [(f.request_type, f.reached, f.tickets) for f in funnel.by_type] == [("pago_en_linea", 1, 1)]
    email = next(s for s in funnel.overall.steps if s.question == "email")
    assert (email.asked, email.answered, email.refusals) == (1, 1, {"invalid": 1})
    assert figures.understanding(colombia).corrections[0].predicted == "greet"
    assert [(r.key, r.ratings, r.average) for r in figures.csat(colombia).by_type] == [("pago_en_linea", 1, 5.0)]
    assert [r.ratings for r in figures.csat(Filters()).by_week] == [1, 1]
    report = figures.weekly("2026-W48")
    assert (report.week.start, report.week.end, report.previous.label) == (
        date(2026, 11, 23),
        date(2026, 11, 29),
        "2026-W47",
    )
    this, before = report.containment
    assert [w.counts[analysis.TICKET] for w in this.weeks] == [1]
    assert [w.counts[analysis.ABANDONED] for w in before.weeks] == [1]
    assert report.funnel[1].overall.steps[0].question == "description"


def test_weeks_without_data_show_as_zero(figures: Metrics) -> None:
    weeks = figures.understanding(Filters()).weeks
    assert [w.week for w in weeks] == ["2026-W47", "2026-W48"] and all(w.turns for w in weeks)
    assert weeks_between("2026-W52", "2027-W01") == ["2026-W52", "2026-W53", "2027-W01"]


@pytest.mark.parametrize("week", ["2026-48", "2026-W54", "semana", "2026-W00"])
def test_bad_weeks_are_explained(week: str) -> None:
    with pytest.raises(ValueError, match="semana"):
        week_period(week)


def test_nearest_rank() -> None:
    assert nearest_rank([], 0.9) == 0.0
    assert nearest_rank([3, 1, 2], 0.9) == 3
    assert nearest_rank(list(range(1, 11)), 0.9) == 9


def test_exports_are_formula_safe_and_masked(figures: Metrics) -> None:
    for kind in KINDS:
        assert metrics_csv(kind, figures, Filters()).startswith("\ufeff")
        assert metrics_json(kind, figures, Filters())["cifra"] == kind
    rows = list(csv.DictReader(io.StringIO(metrics_csv("embudo", figures, Filters()).lstrip("\ufeff"))))
    email = next(r for r in rows if r["tipo_de_solicitud"] == "Todos los tipos" and r["codigo_paso"] == "email")
    assert email["ejemplos"].startswith("'=")  # a spreadsheet shows it as text
    data = metrics_json("embudo", figures, Filters())
    example = data["general"]["pasos"][1]["ejemplos"][0]
    assert example["enlace"].startswith("/revision/c/") and "573001234567" not in json.dumps(data)
    with pytest.raises(ValueError, match="cifra"):
        metrics_csv("nada", figures, Filters())


def test_bench_runs_on_a_thousand(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_review.run([1000]) == 0
    out = capsys.readouterr().out
    assert "embudo, todo el periodo" in out and "informe semanal" in out and "1 000" in out


def test_tracker_reader_last_id_on_an_empty_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vacio.db'}"
    _metadata.create_all(create_engine(url))
    assert TrackerReader(url).last_id() == 0 and TrackerReader(url).heads(after=5) == {}


def test_a_customer_leaving_at_the_summary_stopped_there_not_at_the_question_before() -> None:
    """Counted once: under «resumen», not also under the last question of the form."""
    c = Conversation(channel="web").user("/greet", "greet", 1.0).start("pago_en_linea")
    c.slot("description", "el pse no me deja pagar").slot("email", "ana@empresa.com")
    asked(c, "phone").user("3157778899", "inform", 1.0).slot("phone", "+573157778899")
    asked(c, "confirmation").bot("Revisa", "utter_question_confirmation")
    (request,) = summarize(c).intake.requests.values()
    assert request.summary and not request.ticket and request.last_question == "resumen"
    # A correction after the summary asks a question again: that question is then the last step.
    asked(c, "phone")
    (request,) = summarize(c).intake.requests.values()
    assert request.last_question == "phone"
