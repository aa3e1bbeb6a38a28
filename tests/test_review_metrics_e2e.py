"""Issue 15's figures from conversations of known shape, held with the real servers over the REST channel.

Five customers talk to the running assistant (abandoned at the phone, a
refused e-mail twice then a ticket, cancelled at the summary, a fallback turn
then a suggestion picked, a handoff to a person); their events, as Rasa wrote
them, are copied into a tracker store of their own so other tests'
conversations never count, indexed by the review index, and every number of
the funnel, effort, understanding and containment is checked, as in the
exports.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from bot.catalog import Catalog
from bot.review import analysis
from bot.review.db import engine_for
from bot.review.index import DEFAULT_ZONE, ConversationIndex, Filters
from bot.review.labels import Labels
from bot.review.metrics import Metrics
from bot.review.metrics_exports import metrics_csv, metrics_json
from bot.transcripts import EVENTS, TrackerReader, _metadata
from tests.conftest import Chat, RunningAssistant

pytestmark = pytest.mark.servers

PAYMENT = "el pse no me deja pagar, se queda cargando y no vuelve al comercio"


def talk(assistant: RunningAssistant, *lines: str) -> Chat:
    chat = assistant.chat()
    for line in lines:
        chat.say(line)
    return chat


def copy_conversations(source: TrackerReader, senders: list[str], path: Path) -> TrackerReader:
    """The conversations' events exactly as Rasa stored them, in a tracker store with nothing else."""
    url = f"sqlite:///{path}"
    engine = create_engine(url, future=True)
    _metadata.create_all(engine)
    with engine.begin() as connection:
        for sender in senders:
            for event in source.events(sender):
                data = {k: v for k, v in event.items() if k != "_id"}
                connection.execute(
                    insert(EVENTS).values(
                        sender_id=sender,
                        type_name=event["event"],
                        timestamp=event.get("timestamp"),
                        data=json.dumps(data),
                    )
                )
    return TrackerReader(url)


@pytest.fixture(scope="module")
def shaped(assistant: RunningAssistant, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chats = {
        "abandoned_at_phone": talk(assistant, PAYMENT, "ana@empresa.com"),
        "email_refused_twice": talk(
            assistant, PAYMENT, "ana arroba", "ana@", "ana@empresa.com", "+57 315 777 8899", "/affirm"
        ),
        "cancelled_at_summary": talk(
            assistant, "no me carga el archivo de cartera, mi correo es ana.perez@empresa.com.co"
        ),
        "suggestion_picked": talk(assistant, "pago"),
        "handoff": talk(assistant, "quiero hablar con una persona"),
    }
    summary = chats["cancelled_at_summary"].transcript[-1][1]
    assert chats["cancelled_at_summary"].payloads(summary)[-1] == "/cancel", chats["cancelled_at_summary"].dump()
    chats["cancelled_at_summary"].say("/cancel")
    suggested = chats["suggestion_picked"].payloads(chats["suggestion_picked"].transcript[-1][1])
    assert suggested and suggested[0].startswith("/choose_request_type"), chats["suggestion_picked"].dump()
    picked = json.loads(suggested[0][len("/choose_request_type") :])["request_type"]
    chats["suggestion_picked"].say(suggested[0])
    chats["suggestion_picked"].say("/cancel")  # the picked type's form is left at once
    tmp = tmp_path_factory.mktemp("metrics-e2e")
    real = TrackerReader(assistant.settings.tracker_db_url)
    reader = copy_conversations(real, [c.sender for c in chats.values()], tmp / "tracker.db")
    engine = engine_for(f"sqlite:///{tmp / 'review.db'}")
    index = ConversationIndex(reader, engine, DEFAULT_ZONE, abandon_after=timedelta(0))
    assert index.refresh() == 5
    today = datetime.now(DEFAULT_ZONE).date()
    return {
        "chats": chats,
        "picked": picked,
        "index": index,
        "real": real,
        "metrics": Metrics(index, catalog, Labels(engine)),
        "filters": Filters(date_from=today - timedelta(days=1), date_to=today + timedelta(days=1), channel="rest"),
    }


def step(funnel: Any, question: str) -> Any:
    return next(s for s in funnel.steps if s.question == question)


def test_each_conversation_is_summarised_with_its_outcome(shaped: dict[str, Any]) -> None:
    chats, index = shaped["chats"], shaped["index"]
    outcomes = {name: index.get(chat.sender).outcome for name, chat in chats.items()}
    assert outcomes == {
        "abandoned_at_phone": analysis.ABANDONED,
        "email_refused_twice": analysis.TICKET,
        "cancelled_at_summary": analysis.CANCELLED,
        "suggestion_picked": analysis.CANCELLED,
        "handoff": analysis.HANDOFF,
    }, "\n\n".join(c.dump() for c in chats.values())
    assert index.get(chats["email_refused_twice"].sender).country == "CO"  # from the phone


def test_funnel_by_question(shaped: dict[str, Any]) -> None:
    funnel = shaped["metrics"].funnel(shaped["filters"])
    by_type = {f.request_type: f for f in funnel.by_type}
    picked = shaped["picked"]
    assert set(by_type) == {"pago_en_linea", "gestion_archivos", "acompanamiento_tecnico", picked}
    payment = by_type["pago_en_linea"]
    assert (payment.reached, payment.summary, payment.confirmed, payment.tickets, payment.stopped_at_summary) == (
        2, 1, 1, 1, 0,
    )  # fmt: skip
    assert [s.question for s in payment.steps] == ["description", "email", "phone", "phone_country", "attachment"]
    description, email, phone = step(payment, "description"), step(payment, "email"), step(payment, "phone")
    # The description came with the opening message: answered, never asked.
    assert (description.asked, description.answered, description.stopped_here) == (0, 2, 0)
    assert (email.asked, email.answered, email.stopped_here) == (2, 2, 0)
    assert (phone.asked, phone.answered, phone.stopped_here) == (2, 1, 1)  # the abandoned one stopped here
    assert email.refusals == {"missing_at": 1, "invalid": 1}
    assert email.refusal_labels == {"missing_at": "Correo sin @", "invalid": "Correo no válido"}
    refused_sender = shaped["chats"]["email_refused_twice"].sender
    assert [(e.sender_id, e.text) for e in email.examples] == [(refused_sender, "ana@"), (refused_sender, "ana arroba")]
    assert phone.refusals == {} and step(payment, "phone_country").asked == 0
    files = by_type["gestion_archivos"]  # ítem and e-mail in the opening message: straight to the summary
    assert (files.reached, files.summary, files.confirmed, files.tickets, files.stopped_at_summary) == (1, 1, 0, 0, 1)
    assert [(s.question, s.asked, s.answered) for s in files.steps] == [
        ("item", 0, 1), ("email", 0, 1), ("attachment", 0, 0),
    ]  # fmt: skip
    person = by_type["acompanamiento_tecnico"]
    assert (person.reached, person.tickets) == (1, 0)
    assert (step(person, "description").asked, step(person, "description").stopped_here) == (1, 1)
    overall = funnel.overall
    assert overall.request_type is None and overall.reached == 5 and overall.tickets == 1
    assert step(overall, "email").refusals == {"missing_at": 1, "invalid": 1}
    assert step(overall, "phone").stopped_here == 1
    only_colombia = shaped["metrics"].funnel(Filters(country="CO"))
    assert [(f.request_type, f.reached, f.tickets) for f in only_colombia.by_type] == [("pago_en_linea", 1, 1)]


def test_effort_to_the_ticket(shaped: dict[str, Any]) -> None:
    effort = shaped["metrics"].effort(shaped["filters"])
    chat = shaped["chats"]["email_refused_twice"]
    events = shaped["real"].events(chat.sender)
    first = min(e["timestamp"] for e in events if e["event"] == "user")
    ticket_at = next(
        e["timestamp"] for e in events if e["event"] == "slot" and e["name"] == "ticket_key" and e["value"]
    )
    minutes = (ticket_at - first) / 60
    overall = effort.overall
    assert overall.tickets == 1
    assert overall.turns_median == overall.turns_p90 == 6  # the six messages, the «Enviar» click included
    assert overall.minutes_median == pytest.approx(minutes, abs=1e-6) and overall.minutes_p90 == pytest.approx(
        minutes, abs=1e-6
    )
    assert overall.no_repeat_share == 0.0  # the e-mail was asked three times
    assert [(r.key, r.tickets) for r in effort.by_type] == [("pago_en_linea", 1)]
    assert [(r.key, r.label) for r in effort.by_channel] == [("rest", "API REST")]


def test_understanding_by_week(shaped: dict[str, Any]) -> None:
    understanding = shaped["metrics"].understanding(shaped["filters"])
    typed = [
        e["parse_data"]["intent"]
        for chat in shaped["chats"].values()
        for e in shaped["real"].events(chat.sender)
        if e["event"] == "user" and not str(e.get("text")).startswith("/")
    ]
    assert len(typed) == 10  # 2 + 5 + 1 + 1 + 1 typed messages; clicks are not turns
    fallback = sum(1 for i in typed if i["name"] in ("nlu_fallback", "out_of_scope"))
    low = sum(1 for i in typed if i["name"] not in ("nlu_fallback", "out_of_scope") and i["confidence"] < 0.7)
    assert fallback >= 1  # «pago»: the NLU could not place it
    (week,) = understanding.weeks
    assert week.week == datetime.now(DEFAULT_ZONE).strftime("%G-W%V")
    assert (week.turns, week.fallback, week.low_confidence, week.understood) == (10, fallback, low, 10 - fallback - low)
    assert [(s.request_type, s.count) for s in understanding.suggestions] == [(shaped["picked"], 1)]
    assert understanding.corrections == ()


def test_containment_per_week(shaped: dict[str, Any]) -> None:
    containment = shaped["metrics"].containment(shaped["filters"])
    assert (
        containment.outcomes[0] == analysis.TICKET and containment.labels[analysis.HANDOFF] == "Derivada a una persona"
    )
    (week,) = containment.weeks
    assert week.counts == {
        analysis.TICKET: 1, analysis.REDIRECTED: 0, analysis.DEFLECTED: 0, analysis.HANDOFF: 1,
        analysis.CANCELLED: 2, analysis.ABANDONED: 1,
    }  # fmt: skip


def test_exports_carry_the_same_numbers(shaped: dict[str, Any]) -> None:
    metrics, filters = shaped["metrics"], shaped["filters"]
    rows = list(csv.DictReader(io.StringIO(metrics_csv("embudo", metrics, filters).lstrip("\ufeff"))))
    email = next(r for r in rows if r["tipo_de_solicitud"] == "Pago en línea" and r["paso"] == "Correo")
    assert (email["preguntada"], email["respondida"], email["se_detuvo_aqui"]) == ("2", "2", "0")
    assert email["rechazos"] == "Correo no válido: 1; Correo sin @: 1"
    data = metrics_json("contencion", metrics, filters)
    assert data["semanas"][0]["ticket"] == 1 and data["semanas"][0]["cancelada"] == 2
    effort = metrics_json("esfuerzo", metrics, filters)
    assert effort["general"]["tickets"] == 1 and effort["general"]["turnos_mediana"] == 6
