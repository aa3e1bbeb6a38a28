"""The knowledge base in the dialogue, without Rasa: the form's offer, its verdicts, direct questions.

The knowledge base is the real one over the shipped articles of ``kb/`` and
the records are the real deflection log on a temporary SQLite database,
through the same adapters the action server uses (actions/adapters.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actions.adapters import DeflectionBook, KbArticles, TicketDesk
from bot.catalog import Catalog
from bot.dialogue import answers, articles, form, prompts, submit
from bot.dialogue.ports import Knowledge
from bot.dialogue.turn import Turn
from bot.kb import build_knowledge_base
from bot.kb.deflections import DeflectionLog
from bot.settings.kb import KbSettings
from bot.settings.tickets import TicketsSettings
from bot.tickets import TicketStore
from bot.tickets.delivery_text import details_of
from bot.tickets.model import NewTicket

PUBLIC = "https://ayuda.ejemplo.com"
HELPFUL_BUTTON = '/affirm{"kb_answer":"helpful"}'
NEED = "necesito apoyo para configurar las referencias del servicio nuevo"


@pytest.fixture
def log(tmp_path: Path) -> DeflectionLog:
    return DeflectionLog(f"sqlite:///{tmp_path / 'kb.db'}")


@pytest.fixture
def knowledge(catalog: Catalog, log: DeflectionLog) -> Knowledge:
    kb = build_knowledge_base(KbSettings(backend="embedded"), TicketsSettings(), catalog)
    return Knowledge(KbArticles(kb), DeflectionBook(log, PUBLIC))


def turn(text: str, intent: str = "inform", confidence: float = 0.95, mode: str = "answer", **kw: Any) -> Turn:
    return Turn(text=text, intent=intent, confidence=confidence, mode=mode, sender_id="c-kb", channel="rest", **kw)


def described(catalog: Catalog, knowledge: Knowledge, **slots: Any) -> tuple[dict[str, Any], form.Step]:
    """An Acompañamiento técnico request right after its description."""
    before = {"request_type": "acompanamiento_tecnico", "requested_slot": "description", **slots}
    step = form.step(turn(NEED), before, catalog, knowledge=knowledge)
    return {**before, **step.updates, "requested_slot": step.next_slot}, step


@pytest.mark.parametrize(
    "text",
    [
        "¿cómo actualizo un registro de cartera?",
        "como hago para cargar el archivo",
        "¿Qué es la cartera?",
        "donde descargo el reporte",
        "hola, ¿dónde veo mis pagos?",
        "Qué significa acompañamiento técnico",
    ],
)
def test_direct_questions_are_recognised(text: str) -> None:
    assert articles.is_direct_question(text)


@pytest.mark.parametrize(
    "text", ["no me carga el archivo", "¿cómo va mi caso?", "cómo estás", "el pse falla, ¿me ayudan?", "/affirm"]
)
def test_other_messages_are_no_direct_question(text: str) -> None:
    assert not articles.is_direct_question(text)


@pytest.mark.parametrize(
    "text, intent, verdict",
    [
        ("sí", "affirm", "helpful"),
        ("me sirvió", "nlu_fallback", "helpful"),
        ("si me sirvio", "affirm", "helpful"),
        ("no", "deny", "declined"),
        ("sigo", "cancel", "declined"),
        ("no, sigo con la solicitud", "cancel", "declined"),
        ("no me sirvió", "deny", "declined"),
        ("ana@empresa.com", "inform", None),
        ('/affirm{"kb_answer":"helpful"}', "affirm", "helpful"),
    ],
)
def test_verdicts_read_from_words_and_buttons(text: str, intent: str, verdict: str | None) -> None:
    entities = ({"entity": "kb_answer", "value": verdict},) if text.startswith("/") else ()
    assert articles.read_verdict(turn(text, intent, entities=entities)) == verdict


def test_the_form_offers_articles_after_the_description(catalog: Catalog, knowledge: Knowledge, log) -> None:
    slots, step = described(catalog, knowledge)
    assert step.next_slot == "kb_answer"
    (offer,) = prompts.step_messages(step, slots, catalog)
    assert offer.response == "utter_kb_offer"
    assert [b.title for b in offer.buttons] == ["Sí, esto me sirvió", "No, sigo con la solicitud"]
    assert f"{PUBLIC}/ayuda/v/" in offer.kwargs["articles"]  # the counted link
    assert "Opciones de Formación e información" in offer.kwargs["articles"]
    (event,) = log.events("c-kb")
    assert (event.event, event.request_type, event.channel) == ("offered", "acompanamiento_tecnico", "rest")
    assert list(event.article_ids) == slots["kb_offered"]


def test_me_sirvio_ends_the_request_without_a_ticket(catalog: Catalog, knowledge, log, store: TicketStore) -> None:
    slots, _ = described(catalog, knowledge)
    step = form.step(turn("sí, me sirvió", "affirm"), slots, catalog, knowledge=knowledge)
    assert step.next_slot is None and step.updates["kb_answer"] == "helpful"
    after = {**slots, **step.updates, "requested_slot": None}
    updates, says = submit.submit(after, turn("sí, me sirvió", "affirm"), catalog, TicketDesk(store))
    assert [s.response for s in says] == ["utter_kb_resolved"]
    assert updates["kb_resolved"] is True and updates["request_type"] is None and updates["kb_articles"] is None
    assert store.list(conversation_id="c-kb") == []
    assert [e.event for e in log.events("c-kb")] == ["offered", "helpful"]


def test_sigo_goes_on_and_the_ticket_lists_the_articles(catalog: Catalog, knowledge, log, store) -> None:
    slots, _ = described(catalog, knowledge)
    step = form.step(
        turn('/deny{"kb_answer":"declined"}', "deny", entities=({"entity": "kb_answer", "value": "declined"},)),
        slots,
        catalog,
        knowledge=knowledge,
    )
    assert step.next_slot == "email" and step.updates["kb_declined"] is True
    assert [s.response for s in prompts.step_messages(step, slots, catalog)] == [
        "utter_kb_continue",
        "utter_question_email",
    ]
    slots = {**slots, **step.updates, "email": "ana@empresa.com", "phone": "+573157778899", "confirmation": "send"}
    submit.submit(slots, turn("/affirm", "affirm"), catalog, TicketDesk(store))
    (ticket,) = store.list(conversation_id="c-kb")
    assert ticket.description == NEED  # the customer's words, untouched
    assert ticket.articles_shown.startswith("Artículos mostrados al cliente antes de crear la solicitud:")
    # The agent's link is the article's plain page: an agent's click is no customer's view.
    assert (
        f"Opciones de Formación e información: {PUBLIC}/ayuda/articulos/formacion-e-informacion"
        in ticket.articles_shown
    )
    assert [e.event for e in log.events("c-kb")] == ["offered", "declined"]


def test_typing_the_email_instead_goes_on_with_the_request(catalog: Catalog, knowledge: Knowledge) -> None:
    slots, _ = described(catalog, knowledge)
    step = form.step(turn("ana@empresa.com"), slots, catalog, knowledge=knowledge)
    assert step.updates["email"] == "ana@empresa.com" and step.updates["kb_answer"] == "declined"
    assert step.next_slot == "phone"


def test_a_declined_offer_is_not_repeated_in_the_conversation(catalog: Catalog, knowledge: Knowledge) -> None:
    slots, step = described(catalog, knowledge, kb_declined=True)
    assert step.next_slot == "email" and "kb_offered" not in step.updates


@pytest.mark.parametrize(
    "slots",
    [{"redirected_from": "eliminacion_actualizacion_cartera"}],  # the retired option's redirect stays as it is
)
def test_no_offer_after_a_retired_option_redirect(catalog: Catalog, knowledge: Knowledge, slots) -> None:
    _, step = described(catalog, knowledge, **slots)
    assert step.next_slot == "email"


def test_a_type_without_description_is_offered_nothing(catalog: Catalog, knowledge: Knowledge) -> None:
    slots = {"request_type": "gestion_archivos", "requested_slot": "item"}
    step = form.step(turn("no me carga el archivo de cartera"), slots, catalog, knowledge=knowledge)
    assert step.next_slot == "email" and not step.updates.get("kb_offered")


def test_a_question_inside_the_form_is_answered_and_the_form_resumes(catalog: Catalog, knowledge, log) -> None:
    slots = {
        "request_type": "pago_en_linea",
        "description": "el pse no funciona desde ayer",
        "kb_offered": [],
        "requested_slot": "email",
    }
    step = form.step(
        turn("¿cómo elimino un registro de cartera?", "cambio_registros_cartera", 0.6),
        slots,
        catalog,
        knowledge=knowledge,
    )
    assert step.next_slot == "email" and not step.reject
    assert step.updates == {"email": None}  # nothing filled, nothing lost (the asked slot stays empty)
    says = prompts.step_messages(step, slots, catalog)
    assert [s.response for s in says] == ["utter_kb_answer_in_form", "utter_question_email"]
    assert "Cómo eliminar o actualizar un registro de cartera" in says[0].kwargs["articles"]
    assert [e.event for e in log.events("c-kb")] == ["answered"]


def test_a_question_outside_the_form_then_sigo_opens_its_request(catalog: Catalog, knowledge, log) -> None:
    question = turn("¿cómo pido acompañamiento técnico?", "acompanamiento_tecnico", 0.6)
    updates, says = answers.answer_question(
        question, catalog, knowledge, catalog.request_type("acompanamiento_tecnico")
    )
    assert says[0].response == "utter_kb_answer" and len(says[0].buttons) == 2
    assert answers.answered(updates)
    opened, said = answers.verdict(turn("no", "deny"), updates, catalog, knowledge, articles.DECLINED)
    assert opened["request_type"] == "acompanamiento_tecnico" and opened["kb_declined"] is True
    assert answers.opens_request(opened) and said[0].response == "utter_request_started"
    assert opened["kb_articles"] == updates["kb_articles"]  # listed in the ticket
    assert [e.event for e in log.events("c-kb")] == ["answered", "declined"]


def test_no_article_keeps_todays_behaviour(catalog: Catalog, knowledge: Knowledge) -> None:
    assert answers.answer_question(turn("¿cómo cambio el wifi de mi casa?"), catalog, knowledge) is None
    assert answers.answer_question(turn("no me carga el archivo de cartera"), catalog, knowledge) is None


def test_a_failing_log_shows_plain_links_and_the_conversation_goes_on(catalog: Catalog, tmp_path: Path, caplog) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the database should be: every write fails
    kb = build_knowledge_base(KbSettings(backend="embedded"), TicketsSettings(), catalog)
    broken = Knowledge(KbArticles(kb), DeflectionBook(DeflectionLog(f"sqlite:///{tmp_path / 'dir.db'}"), PUBLIC))
    slots, step = described(catalog, broken)
    assert step.next_slot == "kb_answer"
    offer = prompts.step_messages(step, slots, catalog)[0].kwargs["articles"]
    assert "/ayuda/v/" not in offer and f"{PUBLIC}/ayuda/articulos/formacion-e-informacion" in offer
    form.step(turn("no", "deny"), slots, catalog, knowledge=broken)
    assert (
        sum(
            "registro" in r.getMessage() or "guardar" in r.getMessage()
            for r in caplog.records
            if r.levelname == "ERROR"
        )
        == 1
    )


def test_an_offer_button_pressed_at_the_summary_sends_nothing(catalog: Catalog, knowledge: Knowledge) -> None:
    slots = {
        "request_type": "pago_en_linea",
        "description": "el pse no funciona desde ayer",
        "email": "ana@empresa.com",
        "phone": "+573157778899",
        "kb_offered": [],
        "requested_slot": "confirmation",
    }
    button = turn(HELPFUL_BUTTON, "affirm", entities=({"entity": "kb_answer", "value": "helpful"},))
    step = form.step(button, slots, catalog, knowledge=knowledge)
    assert step.updates.get("confirmation") is None and step.next_slot == "confirmation"


def test_the_agent_reads_the_articles_in_what_goes_to_jsm(catalog: Catalog, store: TicketStore) -> None:
    shown = [{"id": "a", "title": "Un artículo", "excerpt": "", "link": f"{PUBLIC}/ayuda/v/t", "url": "https://jsm/a"}]
    ticket, _ = store.create(
        NewTicket(
            category_id="formacion_informacion",
            category="x",
            request_type_id="acompanamiento_tecnico",
            request_type="y",
            email="ana@empresa.com",
            conversation_id="c-kb",
            channel="rest",
            description="necesito apoyo",
            articles_shown=articles.ticket_lines(shown),
        ),
        "k-kb",
    )
    details = details_of(ticket, catalog)
    assert details.startswith("necesito apoyo")
    assert "Artículos mostrados al cliente antes de crear la solicitud:\n• Un artículo: https://jsm/a" in details
    assert "/ayuda/v/" not in details
