"""«Quiero hablar con una persona»: the decisions (bot/dialogue/handoff.py) and the actions that run them.

Actions are run as the action server runs them, with rasa_sdk's Tracker and
CollectingDispatcher, over real stores in a temporary folder: the ticket
store and the ticket thread on SQLite, fitted to the dialogue's port by the
real adapter (actions/adapters.py ``HandoffThread``). The clock is fixed:
Monday 7 December 2026 is a working day in every country; Tuesday 8 December
is a national holiday in Colombia only.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as act
from actions.adapters import HandoffThread, TicketDesk
from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.dialogue import handoff
from bot.dialogue.turn import Turn
from bot.thread import TicketThread, Update
from bot.thread.model import DONE, HANDOFF, LOCAL, PENDING, STATUS, TO_DESK
from bot.tickets import TicketStore
from bot.tickets.model import NewTicket

CARD = "4111 1111 1111 1111"
WORKING_DAY = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)  # lunes 10:00 en Bogotá, 9:00 en CDMX
CO_HOLIDAY = datetime(2026, 12, 8, 15, 0, tzinfo=timezone.utc)  # martes: La Inmaculada Concepción en Colombia
T0 = WORKING_DAY.timestamp()  # event timestamps: seconds after Monday 10:00 in Bogotá


# ------------------------------------------------------------------ harness
def user(text: str, intent: str, timestamp: float, message_id: str = "msg-1") -> dict[str, Any]:
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.97}, "entities": [], "message_id": message_id}
    return {
        "event": "user",
        "text": text,
        "parse_data": parse,
        "input_channel": "rest",
        "timestamp": timestamp,
        "message_id": message_id,
    }


def bot(text: str, timestamp: float, buttons: Optional[list[dict[str, str]]] = None) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": timestamp, "data": {"buttons": buttons}}


def conversation(*events: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversation ending with the customer's «quiero hablar con una persona» (the turn the action answers)."""
    return [
        *events,
        {"event": "action", "name": "action_listen"},
        user("quiero hablar con una persona", "human_handoff", T0 + 600, "msg-ask"),
        {"event": "action", "name": "action_extract_slots"},
    ]


def tracker(
    events: list[dict[str, Any]],
    slots: Optional[dict[str, Any]] = None,
    active_loop: Optional[str] = None,
    sender: str = "conv-handoff",
    metadata: Optional[dict[str, Any]] = None,
) -> Tracker:
    last_user = next(e for e in reversed(events) if e["event"] == "user")
    latest = {**last_user["parse_data"], "metadata": metadata or {}}
    return Tracker(
        sender_id=sender,
        slots=dict(slots or {}),
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name=events[-1].get("name"),
    )


def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    return asyncio.run(action.run(dispatcher, t, {})), dispatcher.messages


def slot_sets(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def loops(events: list[dict[str, Any]]) -> list[Optional[str]]:
    return [e["name"] for e in events if e.get("event") == "active_loop"]


@pytest.fixture
def tickets(tmp_path: Path, catalog: Catalog) -> TicketStore:
    return TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}", prefix=catalog.ticket_prefix)


@pytest.fixture
def thread(tmp_path: Path) -> TicketThread:
    return TicketThread(f"sqlite:///{tmp_path / 'tickets.db'}")


def services_with(
    catalog: Catalog, tickets: TicketStore, desk: Optional[HandoffThread], tmp_path: Path
) -> act.Services:
    files = AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field))
    return act.Services(catalog=catalog, tickets=TicketDesk(tickets), attachments=files, handoff=desk)


@pytest.fixture
def services(catalog: Catalog, tickets: TicketStore, thread: TicketThread, tmp_path: Path) -> act.Services:
    return services_with(catalog, tickets, HandoffThread(tickets, thread, to_jsm=False), tmp_path)


def ask(services: act.Services, t: Tracker, moment: datetime = WORKING_DAY) -> tuple[list[dict], list[dict]]:
    return run(act.ActionHumanHandoff(services, clock=lambda: moment), t)


def stored_ticket(tickets: TicketStore, conversation_id: str = "conv-handoff", **values: Any):
    ticket = NewTicket(
        category_id="modulo_administrativo",
        category="Módulo",
        request_type_id="gestion_archivos",
        request_type="Gestión",
        item_id="falla_cargue_cartera",
        item="Cartera",
        email="ana@empresa.com",
        description="el archivo de cartera no carga desde ayer",
        channel="rest",
        conversation_id=conversation_id,
        **values,
    )
    return tickets.create(ticket, f"{conversation_id}:{len(tickets.list()) + 1}")[0]


def notes(thread: TicketThread, key: str) -> list:
    return [m for m in thread.messages(key) if m.direction == TO_DESK and m.kind == HANDOFF]


IN_FORM = {
    "request_type": "gestion_archivos",
    "item": "falla_cargue_cartera",
    "requested_slot": "email",
    "original_text": "no me carga el archivo de cartera",
}


# ------------------------------------------------------- inside the form
def test_inside_the_form_the_request_is_flagged_and_the_question_asked_again(
    services: act.Services, tickets: TicketStore, thread: TicketThread
) -> None:
    events, messages = ask(services, tracker(conversation(), slots=IN_FORM, active_loop="ticket_form"))
    # Only the flag: what the customer typed so far stays; the form is already active (the rule resumes it).
    assert slot_sets(events) == {"handoff_requested": True, "request_type": "gestion_archivos"}
    assert loops(events) == []
    (said,) = messages
    assert said["response"] == "utter_handoff_in_request"
    assert said["when"] == "Estamos en horario de atención: hoy hasta las 18:00 (hora de Colombia)."
    assert tickets.list() == []  # nothing created, nothing flagged yet

    # The form runs after the action (a resumed turn): it asks the e-mail again, and reads nothing into it.
    resumed = conversation() + [
        {"event": "action", "name": "action_human_handoff"},
        {"event": "slot", "name": "handoff_requested", "value": True},
        {"event": "action", "name": "ticket_form"},
    ]
    slots = {**IN_FORM, "handoff_requested": True}
    form_events, form_messages = run(act.ValidateTicketForm(services), tracker(resumed, slots, "ticket_form"))
    assert slot_sets(form_events) == {"requested_slot": "email"}
    assert [m["response"] for m in form_messages] == ["utter_question_email"]


def test_the_flagged_request_gets_the_handoff_note_when_it_is_created(
    services: act.Services, tickets: TicketStore, thread: TicketThread
) -> None:
    history = [
        user(f"no me carga el archivo de cartera, pagué con la tarjeta {CARD}", "gestion_archivos", T0, "m1"),
        bot("¿A nombre de qué correo electrónico generamos la solicitud?", T0 + 1),
        user("quiero hablar con una persona", "human_handoff", T0 + 100, "m2"),
        user("ana.perez@empresa.com", "inform", T0 + 200, "m3"),
        bot(
            "Revisa tu solicitud antes de enviarla: …",
            T0 + 201,
            [{"title": "Enviar", "payload": "/affirm"}, {"title": "Cancelar", "payload": "/cancel"}],
        ),
        user("/affirm", "affirm", T0 + 300, "m4"),
    ]
    slots = {
        **IN_FORM,
        "email": "ana.perez@empresa.com",
        "confirmation": "send",
        "confirmation_id": "c-1",
        "handoff_requested": True,
    }
    events, messages = run(act.ActionCreateTicket(services), tracker(history, slots))
    (ticket,) = tickets.list()
    assert [m["response"] for m in messages] == ["utter_ticket_created", "utter_handoff_noted"]
    assert messages[1]["key"] == ticket.key
    assert slot_sets(events)["handoff_requested"] is None
    (note,) = notes(thread, ticket.key)
    assert note.delivery_status == LOCAL  # the embedded store: the thread itself is the help desk
    assert ticket.key in note.body and "mientras registraba esta solicitud" in note.body
    assert "[07/12 10:00] Cliente: no me carga el archivo de cartera" in note.body  # Bogotá time
    assert CARD not in note.body and "[tarjeta oculta]" in note.body
    assert "ana.perez@empresa.com" not in note.body  # contacts masked: the ticket holds them
    assert "Cliente: «Enviar» (botón)" in note.body

    # The same confirmation again (a retry after a lost reply) writes no second note.
    run(act.ActionCreateTicket(services), tracker(history, slots))
    assert len(notes(thread, ticket.key)) == 1


def test_a_confirmed_request_waiting_for_a_retry_is_flagged_and_its_form_resumed(services: act.Services) -> None:
    slots = {**IN_FORM, "email": "ana@empresa.com", "confirmation": "send", "requested_slot": None}
    events, messages = ask(services, tracker(conversation(), slots=slots))  # no loop: the store had failed
    assert slot_sets(events) == {"handoff_requested": True, "request_type": "gestion_archivos"}
    assert loops(events) == ["ticket_form"]  # the form takes it from there (here: straight to creating it)
    assert [m["response"] for m in messages] == ["utter_handoff_in_request"]


def test_a_note_that_cannot_be_stored_is_told_and_the_ticket_kept(
    catalog: Catalog, tickets: TicketStore, tmp_path: Path
) -> None:
    (tmp_path / "roto.db").mkdir()  # a directory where the thread's database should be
    broken = HandoffThread(tickets, TicketThread(f"sqlite:///{tmp_path / 'roto.db'}"), to_jsm=False)
    services = services_with(catalog, tickets, broken, tmp_path)
    slots = {
        **IN_FORM,
        "email": "ana@empresa.com",
        "confirmation": "send",
        "confirmation_id": "c-2",
        "handoff_requested": True,
    }
    events, messages = run(act.ActionCreateTicket(services), tracker(conversation(), slots))
    (ticket,) = tickets.list()
    assert [m["response"] for m in messages] == ["utter_ticket_created", "utter_handoff_note_failed"]
    assert messages[1]["key"] == ticket.key


# ------------------------------------------------- an open ticket, or none
def test_an_open_ticket_of_the_conversation_is_flagged_with_the_transcript(
    services: act.Services, tickets: TicketStore, thread: TicketThread
) -> None:
    ticket = stored_ticket(tickets)
    history = conversation(
        user(f"mi tarjeta {CARD} no pasa, escríbanme a ana@empresa.com o al 3157778899", "pago_en_linea", T0, "m1"),
        bot(f"¡Listo! Creé tu solicitud {ticket.key}.", T0 + 1),
    )
    events, messages = ask(services, tracker(history))
    assert slot_sets(events) == {} and loops(events) == []
    (said,) = messages
    assert said["response"] == "utter_handoff_flagged" and said["ticket"] == f"{ticket.key} · {ticket.request_type}"
    (note,) = notes(thread, ticket.key)
    body = note.body
    assert "El cliente pidió hablar con una persona" in body and "Canal: rest" in body and "País: Colombia" in body
    assert "Se le dijo: «Estamos en horario de atención: hoy hasta las 18:00 (hora de Colombia).»" in body
    assert (
        "Cliente: quiero hablar con una persona" in body
        and f"Asistente: ¡Listo! Creé tu solicitud {ticket.key}" in body
    )
    assert CARD not in body and "ana@empresa.com" not in body and "3157778899" not in body

    # The same message handled twice (Rasa retries an action) writes one note.
    ask(services, tracker(history))
    assert len(notes(thread, ticket.key)) == 1


def test_with_jsm_the_note_waits_in_the_outbox(
    catalog: Catalog, tickets: TicketStore, thread: TicketThread, tmp_path: Path
) -> None:
    ticket = stored_ticket(tickets)
    services = services_with(catalog, tickets, HandoffThread(tickets, thread, to_jsm=True), tmp_path)
    ask(services, tracker(conversation()))
    (note,) = notes(thread, ticket.key)
    assert note.delivery_status == PENDING and note.channel == "rest" and note.conversation_id == "conv-handoff"


def test_with_no_ticket_and_no_form_the_handoff_request_type_is_opened(
    services: act.Services, catalog: Catalog, tickets: TicketStore, thread: TicketThread
) -> None:
    # Another conversation's open ticket is never this customer's.
    other = stored_ticket(tickets, conversation_id="whatsapp:+573001112233")
    sender = "whatsapp:+5215512345678"
    t = tracker(
        conversation(), slots={"email": "ana@empresa.com"}, sender=sender, metadata={"sender_phone": "+5215512345678"}
    )
    events, messages = ask(services, t)
    slots = slot_sets(events)
    expected = catalog.handoff_request_type
    assert expected is not None
    assert slots["request_type"] == expected.id and slots["handoff_requested"] is True
    assert slots["phone"] == "+5215512345678"  # the channel vouches for it
    assert "email" not in slots  # contact data already given is kept
    assert loops(events) == ["ticket_form"]  # the form asks what the request needs
    (said,) = messages
    assert said["response"] == "utter_handoff_opening"
    assert said["when"] == "Estamos en horario de atención: hoy hasta las 18:00 (hora de México)."  # 9:00 in CDMX
    assert notes(thread, other.key) == [] and [t.key for t in tickets.list()] == [other.key]


def test_a_resolved_ticket_is_not_flagged(services: act.Services, tickets: TicketStore, thread: TicketThread) -> None:
    resolved = stored_ticket(tickets)
    ref = services.handoff.open_ticket("conv-handoff") if services.handoff else None
    assert ref is not None and ref.key == resolved.key
    thread.record(
        Update(ticket=resolved.key, source="jsm-status:1", kind=STATUS, body="Resuelta", status_category=DONE), ref
    )
    events, messages = ask(services, tracker(conversation()))
    assert messages[0]["response"] == "utter_handoff_opening" and loops(events) == ["ticket_form"]
    assert notes(thread, resolved.key) == []


def test_outside_hours_it_says_so_before_anything_is_created(
    services: act.Services, tickets: TicketStore, thread: TicketThread
) -> None:
    _, messages = ask(services, tracker(conversation()), moment=CO_HOLIDAY)
    assert [m["response"] for m in messages] == ["utter_handoff_closed", "utter_handoff_opening"]
    assert messages[0]["notice"] == (
        "Ahora estamos fuera del horario de atención del equipo de soporte (lunes a viernes de 8:00 a 18:00, "
        "hora de Colombia). Hoy es festivo en Colombia (La Inmaculada Concepción)."
    )
    assert messages[1]["when"] == "Te responderán a partir de mañana a las 8:00 (hora de Colombia)."
    assert tickets.list() == []

    # With a ticket open, the hours come first too, then the flag.
    ticket = stored_ticket(tickets)
    _, flagged = ask(services, tracker(conversation()), moment=CO_HOLIDAY)
    assert [m["response"] for m in flagged] == ["utter_handoff_closed", "utter_handoff_flagged"]
    body = notes(thread, ticket.key)[0].body
    assert "fuera del horario de atención" in body and "a partir de mañana a las 8:00 (hora de Colombia)" in body


def test_a_failing_help_desk_is_told_and_nothing_is_lost(
    catalog: Catalog, tickets: TicketStore, tmp_path: Path
) -> None:
    stored_ticket(tickets)
    (tmp_path / "roto.db").mkdir()
    broken = HandoffThread(tickets, TicketThread(f"sqlite:///{tmp_path / 'roto.db'}"), to_jsm=False)
    events, messages = ask(services_with(catalog, tickets, broken, tmp_path), tracker(conversation()))
    assert [m["response"] for m in messages] == ["utter_handoff_unavailable"]
    assert slot_sets(events) == {} and loops(events) == []


# ----------------------------------------------------------- the pieces
@pytest.mark.parametrize(
    "sender, slots, metadata, expected",
    [
        ("whatsapp:+5215512345678", {"country": "DO"}, {}, "DO"),  # what the customer said wins
        ("whatsapp:+5215512345678", {"phone": "+18095551234"}, {}, "MX"),  # then the WhatsApp number
        ("web-123", {}, {"sender_phone": "+18295551234"}, "DO"),  # the number the channel vouches for
        ("web-123", {"phone": "+5215512345678"}, {}, "MX"),  # then the phone given
        ("whatsapp:+34911234567", {"country": "ES"}, {}, "CO"),  # nothing served: the catalog's first
        ("whatsapp:+57<script>", {"phone": ["no", "texto"]}, {"sender_phone": 57}, "CO"),  # hostile: never a crash
    ],
)
def test_the_customer_country(catalog: Catalog, sender: str, slots: dict, metadata: dict, expected: str) -> None:
    turn = Turn(text="quiero un asesor", sender_id=sender, metadata=metadata)
    assert handoff.customer_country(turn, slots, catalog).id == expected


def test_the_transcript_is_bounded_and_keeps_the_latest() -> None:
    events = [user(f"mensaje {i} " + "x" * 900, "inform", T0 + i, f"m{i}") for i in range(100)]
    text = handoff.transcript(events, ZoneInfo("America/Bogota"))
    assert len(text) <= handoff.TRANSCRIPT_CHARS + 100
    assert text.startswith("(… ") and "mensaje 99 " in text and "mensaje 50 " not in text
    assert max(len(line) for line in text.splitlines()) <= handoff.TRANSCRIPT_LINE_CHARS + 30


def test_the_transcript_survives_hostile_events() -> None:
    events = [
        {"event": "user", "text": None},
        {"event": "bot", "text": 5, "data": "x"},
        {"event": "user", "text": "hola", "timestamp": "ayer"},
        {"event": "user", "text": "sí", "timestamp": 1e300},
    ]
    assert handoff.transcript(events, ZoneInfo("America/Bogota")) == "Cliente: hola\nCliente: sí"
