"""Outcome classification, masking, the conversation index and the NLU export."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, insert

from bot.catalog import Catalog
from bot.privacy import luhn_valid, mask_cards, mask_email, mask_phone
from bot.review import analysis
from bot.review.db import engine_for
from bot.review.index import ConversationIndex, Filters, review_zone
from bot.review.labels import Labels, anonymize, nlu_yaml
from bot.settings.review import ReviewSettings
from bot.transcripts import EVENTS, TrackerReader, _metadata
from tests.cards import shows_card

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)


class Conversation:
    """Builds tracker events the way Rasa writes them."""

    def __init__(self, start: datetime = NOW - timedelta(hours=2), channel: str = "socketio") -> None:
        self.events: list[dict[str, Any]] = []
        self.clock = start.timestamp()
        self.channel = channel

    def _add(self, **event: Any) -> "Conversation":
        self.clock += 5
        event.setdefault("timestamp", self.clock)
        event["_id"] = len(self.events) + 1
        self.events.append(event)
        return self

    def user(self, text: str, intent: str, confidence: float = 0.95) -> "Conversation":
        return self._add(event="user", text=text, input_channel=self.channel,
                         parse_data={"intent": {"name": intent, "confidence": confidence}, "text": text})

    def action(self, name: str) -> "Conversation":
        return self._add(event="action", name=name)

    def slot(self, name: str, value: Any) -> "Conversation":
        return self._add(event="slot", name=name, value=value)

    def form(self, active: bool) -> "Conversation":
        return self._add(event="active_loop", name="ticket_form" if active else None)

    def bot(self, text: str, utter: str = "utter_x", buttons: list[dict[str, str]] | None = None) -> "Conversation":
        return self._add(event="bot", text=text, metadata={"utter_action": utter}, data={"buttons": buttons or []})

    def start(self, request_type: str, text: str = "el pse no sirve") -> "Conversation":
        return self.user(text, request_type).action("action_start_request").slot("request_type", request_type).form(True)


def test_ticket_created() -> None:
    c = Conversation().start("pago_en_linea").slot("email", "ana@empresa.com").user("/affirm", "affirm")
    c.form(False).action("action_create_ticket").slot("ticket_key", "ECO-000007").slot("request_type", None)
    s = analysis.summarize("c", c.events, now=NOW)
    assert s.outcome == analysis.TICKET and s.tickets == ["ECO-000007"]
    assert s.request_type == "pago_en_linea" and s.email == "ana@empresa.com"
    assert s.turns == 1  # the button click is not a typed turn


def test_open_form_is_abandoned_after_the_idle_time_and_in_progress_before() -> None:
    c = Conversation(start=NOW - timedelta(hours=2)).start("pago_en_linea")
    assert analysis.summarize("c", c.events, now=NOW).outcome == analysis.ABANDONED
    recent = Conversation(start=NOW - timedelta(minutes=5)).start("pago_en_linea")
    assert analysis.summarize("c", recent.events, now=NOW).outcome == analysis.IN_PROGRESS


def test_cancelled() -> None:
    c = Conversation().start("capacitaciones").user("cancelar", "cancel").action("action_cancel_request")
    c.bot("Listo, cancelé la solicitud", "utter_request_cancelled").slot("request_type", None).form(False)
    assert analysis.summarize("c", c.events, now=NOW).outcome == analysis.CANCELLED


def test_retired_option_redirect_with_and_without_ticket() -> None:
    c = Conversation().user("borrar registros de cartera", "cambio_registros_cartera").action("action_redirect_retired")
    c.user("no gracias", "deny")
    s = analysis.summarize("c", c.events, now=NOW)
    assert s.outcome == analysis.REDIRECTED
    c.start("acompanamiento_tecnico", "/affirm").slot("redirected_from", "eliminacion_actualizacion_cartera")
    c.form(False).slot("ticket_key", "ECO-000009")
    s = analysis.summarize("c", c.events, now=NOW)
    assert s.outcome == analysis.TICKET and analysis.REDIRECTED in s.outcomes


def test_fallback_and_out_of_scope() -> None:
    c = Conversation().user("asdf qwer", "nlu_fallback", 0.2).action("action_suggest_request_types")
    c.user("quiero una pizza", "out_of_scope", 0.9)
    s = analysis.summarize("c", c.events, now=NOW)
    assert s.outcome == analysis.FALLBACK
    assert (s.missed_turns, s.low_confidence_turns, s.turns) == (2, 1, 2)


def test_greeting_only_is_no_request() -> None:
    c = Conversation().user("/greet", "greet", 1.0).bot("¡Hola!").user("hola", "greet")
    assert analysis.summarize("c", c.events, now=NOW).outcome == analysis.NO_REQUEST


def test_card_numbers_never_reach_the_summary_text() -> None:
    c = Conversation().user("mi tarjeta 4111 1111 1111 1111 fue rechazada", "pago_en_linea")
    assert not shows_card(analysis.summarize("c", c.events, now=NOW).customer_text)


@pytest.mark.parametrize(
    "text, masked",
    [
        ("4111 1111 1111 1111", "[tarjeta oculta]"),
        ("pago con 5500-0000-0000-0004 ayer", "pago con [tarjeta oculta] ayer"),
        ("amex 378282246310005", "amex [tarjeta oculta]"),
        ("referencia 4111111111111112", "referencia 4111111111111112"),  # not Luhn-valid
        ("cel 3157778899", "cel 3157778899"),
        ("ECO-000123", "ECO-000123"),
        ("cel +52 1 55 1234 5678", "cel +52 1 55 1234 5678"),  # Luhn-valid, but a phone: it has a "+"
        ("+5215512345678", "+5215512345678"),
    ],
)
def test_card_masking(text: str, masked: str) -> None:
    assert mask_cards(text) == masked


def test_luhn_and_contact_masks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert mask_email("ana.perez@empresa.com") == "a•••••••z@empresa.com"
    assert mask_email("al@x.co") == "a•@x.co"
    assert mask_phone("+573157778899") == "+57•••••••899"


# ------------------------------------------------------------------- index
def tracker_db(path: Path, conversations: dict[str, Conversation]) -> TrackerReader:
    url = f"sqlite:///{path}"
    engine = create_engine(url, future=True)
    _metadata.create_all(engine)
    with engine.begin() as connection:
        for sender, conversation in conversations.items():
            for event in conversation.events:
                data = {k: v for k, v in event.items() if k != "_id"}
                connection.execute(insert(EVENTS).values(
                    sender_id=sender, type_name=event["event"], timestamp=event["timestamp"], data=json.dumps(data)
                ))
    return TrackerReader(url)


@pytest.fixture
def index(tmp_path: Path) -> ConversationIndex:
    yesterday = NOW - timedelta(days=1)
    conversations = {
        "abandonada-ayer": Conversation(start=yesterday).start("pago_en_linea"),
        "ticket-ayer": Conversation(start=yesterday, channel="whatsapp").start("gestion_archivos").slot("ticket_key", "ECO-000001"),
        "abandonada-hoy": Conversation(start=NOW - timedelta(hours=3)).start("pago_en_linea", "el boton de pago se queda cargando"),
        "otra-tipo": Conversation(start=yesterday).start("capacitaciones"),
    }
    reader = tracker_db(tmp_path / "tracker.db", conversations)
    zone = review_zone(ReviewSettings(timezone="America/Bogota"))  # REVIEW_TIMEZONE
    return ConversationIndex(reader, engine_for(f"sqlite:///{tmp_path / 'review.db'}"), zone)


def test_index_filters_find_yesterdays_abandoned_online_payments(index: ConversationIndex) -> None:
    assert index.refresh(now=NOW) == 4
    assert index.refresh(now=NOW) == 0  # nothing changed, nothing recomputed
    bogota_yesterday = date(2026, 11, 28)  # filters are in REVIEW_TIMEZONE, not the machine's zone
    rows, total = index.search(Filters(date_from=bogota_yesterday, date_to=bogota_yesterday,
                                       request_type="pago_en_linea", outcome=analysis.ABANDONED))
    assert total == 1 and rows[0].sender_id == "abandonada-ayer"
    rows, total = index.search(Filters(channel="whatsapp"))
    assert [r.sender_id for r in rows] == ["ticket-ayer"] and rows[0].tickets == ["ECO-000001"]
    rows, _ = index.search(Filters(text="boton de pago"))
    assert [r.sender_id for r in rows] == ["abandonada-hoy"]
    rows, _ = index.search(Filters(text="eco-000001"))
    assert [r.sender_id for r in rows] == ["ticket-ayer"]


def test_index_pagination_and_stats(index: ConversationIndex) -> None:
    index.refresh(now=NOW)
    first, total = index.search(Filters(page=1), page_size=3)
    second, _ = index.search(Filters(page=2), page_size=3)
    assert total == 4 and len(first) == 3 and len(second) == 1
    assert first[0].started_at >= first[-1].started_at  # newest first
    stats = index.stats(days=3, today=date(2026, 11, 29))
    assert stats.conversations == 4 and sum(stats.conversations_per_day) == 4
    assert stats.outcomes_by_type["pago_en_linea"][analysis.ABANDONED] == 2


def test_filters_from_query_arguments_are_sanitised() -> None:
    filters = Filters.from_args({"desde": "2026-11-28", "hasta": "no-es-fecha", "resultado": "x", "pagina": "-3"})
    assert filters.date_from == date(2026, 11, 28) and filters.date_to is None
    assert filters.outcome is None and filters.page == 1


def test_export_nlu_anonymizes(tmp_path: Path, catalog: Catalog) -> None:
    labels = Labels(engine_for(f"sqlite:///{tmp_path / 'review.db'}"))
    labels.mark("c1", 5, "mi correo es ana@empresa.com y el cel 3157778899, la pasarela no abre", "greet", "pago_en_linea", "lider")
    labels.mark("c1", 6, "pagué con 4111 1111 1111 1111 y no pasó", "inform", "pago_en_linea", "lider")
    labels.mark("c1", 5, "mi correo es ana@empresa.com y el cel 3157778899, la pasarela no abre", "greet", "pago_en_linea", "lider")
    text = nlu_yaml(labels.all(), catalog)
    data = yaml.safe_load(text)
    (block,) = data["nlu"]
    assert block["intent"] == "pago_en_linea"
    examples = [l[2:] for l in block["examples"].splitlines()]
    assert len(examples) == 2  # marking again replaced, not duplicated
    assert "ana@empresa.com" not in text and "3157778899" not in text and not shows_card(text)
    assert anonymize("escribe a x.y@z.com", catalog) == "escribe a nombre@empresa.com"


def test_control_characters_never_reach_summaries() -> None:
    c = Conversation().user("\x00\x01 el pse \x1b[31m no sirve\n", "pago_en_linea")
    summary = analysis.summarize("c", c.events, now=NOW)
    assert "\x00" not in summary.customer_text and "\x1b" not in summary.customer_text
    assert "el pse" in summary.customer_text


def test_fallback_turns_are_doubtful_even_at_the_threshold() -> None:
    from bot.review.analysis import LOW_CONFIDENCE, is_doubtful

    assert is_doubtful("nlu_fallback", LOW_CONFIDENCE) and is_doubtful("pago_en_linea", LOW_CONFIDENCE - 0.01)
    assert not is_doubtful("pago_en_linea", LOW_CONFIDENCE)
