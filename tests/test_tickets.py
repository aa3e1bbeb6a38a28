"""The embedded ticket store and the `tickets list --json` contract."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from actions.adapters import TicketDesk
from bot.catalog import Catalog
from bot.dialogue import status, submit
from bot.dialogue.turn import Say, Turn
from bot.tickets import NewTicket, TicketStore, TicketStoreError
from bot.tickets.model import Attachment
from bot.tickets.outbox_queue import OutboxQueue

CONTRACT_FIELDS = {
    "category", "request_type", "item", "email", "phone", "description", "channel",
    "conversation_id", "key", "created_at", "status", "attachments", "original_text",
}


def new_ticket(**overrides) -> NewTicket:
    data = dict(
        category_id="formacion_informacion",
        category="Formación e información",
        request_type_id="acompanamiento_tecnico",
        request_type="Acompañamiento técnico",
        email="ana@empresa.com",
        phone="+573157778899",
        description="necesito apoyo para actualizar registros de cartera",
        original_text="necesito eliminar registros de cartera",
        conversation_id="conv-1",
        channel="rest",
        redirected_from="eliminacion_actualizacion_cartera",
        attachments=(Attachment(name="cartera.csv", content_type="text/csv", size=10),),
    )
    data.update(overrides)
    return NewTicket(**data)


def test_keys_are_sequential_and_formatted(store: TicketStore) -> None:
    first, created = store.create(new_ticket(), "k1")
    second, _ = store.create(new_ticket(conversation_id="conv-2"), "k2")
    assert created
    assert (first.key, second.key) == ("ECO-000001", "ECO-000002")
    assert first.status == "open"
    assert first.attachments[0].name == "cartera.csv"


def test_every_field_of_a_ticket_is_stored_and_read_back(store: TicketStore) -> None:
    """Fields are mapped to columns by name: none is dropped or mixed up on the way to the database."""
    attachment = Attachment(name="a.png", content_type="image/png", size=3, url="https://x/a", path="/p/a", id="abc")
    full = new_ticket(
        item_id="falla_cargue_cartera",
        item="Falla en cargue",
        attachments=(attachment,),
        articles_shown="Artículos mostrados al cliente antes de crear la solicitud:\n• Un artículo: https://x/a",
    )
    assert all(getattr(full, f.name) not in (None, ()) for f in dataclasses.fields(NewTicket))  # every field set
    created, _ = store.create(full, "k-full")
    for ticket in (created, store.get(created.key)):
        assert {f.name: getattr(ticket, f.name) for f in dataclasses.fields(NewTicket)} == dataclasses.asdict(full) | {
            "attachments": (attachment,)
        }
        assert ticket.created_at.tzinfo is not None and ticket.delivery_status == "local"


def test_same_confirmation_never_creates_two_tickets(store: TicketStore) -> None:
    first, created_first = store.create(new_ticket(), "conv-1:msg-9")
    again, created_again = store.create(new_ticket(), "conv-1:msg-9")
    assert created_first and not created_again
    assert again.key == first.key
    assert len(store.list()) == 1


def test_concurrent_retries_of_one_confirmation_create_one_ticket(store: TicketStore) -> None:
    keys: list[str] = []

    def attempt() -> None:
        ticket, _ = store.create(new_ticket(), "conv-1:same")
        keys.append(ticket.key)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(store.list()) == 1


def test_list_filters_by_requester_or_conversation(store: TicketStore) -> None:
    store.create(new_ticket(email="x@a.co", conversation_id="c-x"), "1")
    store.create(new_ticket(email="y@a.co", conversation_id="c-y"), "2")
    assert [t.email for t in store.list(email="y@a.co")] == ["y@a.co"]
    assert [t.conversation_id for t in store.list(conversation_id="c-x")] == ["c-x"]
    assert len(store.list()) == 2


def test_submit_creates_the_ticket_from_confirmed_slots(catalog: Catalog, store: TicketStore) -> None:
    slots = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com",
        "confirmation": "send", "original_text": "no me carga el archivo de cartera",
    }
    confirming = Turn(text="/affirm", intent="affirm", sender_id="conv-7", message_id="m-1", channel="rest")
    updates, says = submit.submit(slots, confirming, catalog, store)
    ticket = store.list()[0]
    assert (ticket.request_type, ticket.item) == ("Gestión de archivos", "Falla en cargue archivos de cartera")
    assert ticket.category == "Módulo administrativo / Transferencia de archivos"
    assert ticket.description is None and ticket.original_text == "no me carga el archivo de cartera"
    assert updates["ticket_key"] == ticket.key and updates["request_type"] is None
    assert says[0].response == "utter_ticket_created" and says[0].kwargs["key"] == ticket.key
    # The action retried for the same confirming message finds the same ticket.
    submit.submit(slots, confirming, catalog, store)
    assert len(store.list()) == 1


def test_redirected_ticket_ends_with_the_closing_message(catalog: Catalog, store: TicketStore) -> None:
    slots = {
        "request_type": "acompanamiento_tecnico", "description": "eliminar 3 registros de cartera ya pagados",
        "email": "ana@empresa.com", "phone": "+573157778899", "confirmation": "send",
        "redirected_from": "eliminacion_actualizacion_cartera",
    }
    _, says = submit.submit(slots, Turn(text="sí", intent="affirm", sender_id="c", message_id="m"), catalog, store)
    assert says[-1].response == "utter_redirect_closing"
    assert says[-1].kwargs["closing"] == "El equipo de soporte te indicará cómo realizar el proceso."
    assert store.list()[0].redirected_from == "eliminacion_actualizacion_cartera"


def test_incomplete_or_unconfirmed_requests_are_never_stored(catalog: Catalog, store: TicketStore) -> None:
    base = {"request_type": "pago_en_linea", "description": "el pse no devuelve al comercio", "email": "a@b.co"}
    turn = Turn(text="sí", intent="affirm", sender_id="c", message_id="m")
    submit.submit({**base, "confirmation": "send"}, turn, catalog, store)  # phone missing
    submit.submit({**base, "phone": "+573157778899"}, turn, catalog, store)  # not confirmed
    assert store.list() == []


class UnreachableStore(TicketStore):
    """A store whose database is down."""

    def __init__(self) -> None:  # no engine: every call fails like a dead server
        pass

    def create(self, ticket: NewTicket, idempotency_key: str):
        raise TicketStoreError("conexión rechazada")


def test_store_failure_keeps_the_request_and_says_so(catalog: Catalog) -> None:
    slots = {"request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "a@b.co", "confirmation": "send"}
    desk = TicketDesk(UnreachableStore())  # as the action server hands the store to the dialogue
    updates, says = submit.submit(slots, Turn(text="sí", sender_id="c", message_id="m"), catalog, desk)
    assert updates == {}  # nothing reset: "enviar" again retries with the same data
    assert [s.response for s in says] == ["utter_ticket_store_unavailable"]


def test_services_first_used_together_on_a_new_database_all_open_it(tmp_path: Path) -> None:
    """The action server, the web server and the worker may start at once on an empty database."""
    for round_ in range(20):
        url = f"sqlite:///{tmp_path / f'tickets-{round_}.db'}"
        services = [TicketStore(url), OutboxQueue(url), TicketStore(url, outbox=True), OutboxQueue(url)]
        failures: list[Exception] = []

        def first_use(service: object) -> None:
            try:
                service.list() if isinstance(service, TicketStore) else service.claim_due("w")
            except TicketStoreError as exc:
                failures.append(exc)

        threads = [threading.Thread(target=first_use, args=(s,)) for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []


def test_unreachable_database_raises_a_store_error() -> None:
    import pytest

    with pytest.raises(TicketStoreError):
        TicketStore("postgresql://nadie:nada@127.0.0.1:1/tickets").list()


def test_status_is_only_shown_to_its_conversation(catalog: Catalog, store: TicketStore) -> None:
    ticket, _ = store.create(new_ticket(conversation_id="c-own", email="own@a.co"), "k")
    ask = lambda sender, email=None: status.status(  # noqa: E731
        Turn(text=f"¿cómo va mi solicitud {ticket.key.lower()}?", sender_id=sender, channel="rest"),
        {"email": email}, catalog, store, live=None, postman=None,
    )
    assert ask("c-own")[0].response == "utter_ticket_status"
    # The requester's e-mail, written in another chat, proves nothing.
    assert ask("c-other", "own@a.co") == [Say("utter_ticket_status_private", {"key": ticket.key})]
    assert ask("c-other", "intruso@a.co") == [Say("utter_ticket_status_private", {"key": ticket.key})]
    missing = status.status(Turn(text="estado del ECO-999999", sender_id="c-own", channel="rest"), {}, catalog, store, live=None, postman=None)
    assert missing == [Say("utter_ticket_status_private", {"key": "ECO-999999"})]  # same as someone else's
    assert status.ticket_keys_in("como va el eco 45 y ECO-000123", catalog) == ["ECO-000045", "ECO-000123"]


def test_status_of_another_chat_stays_hidden_whatever_email_is_written(catalog: Catalog, store: TicketStore) -> None:
    # Mail off and no live JSM: the status functions get what they may use as arguments, never from the environment.
    ticket, _ = store.create(new_ticket(conversation_id="c-own", email="own@a.co"), "k")
    hidden = [Say("utter_ticket_status_private", {"key": ticket.key})]
    for text in (f"¿cómo va {ticket.key}?", f"estado de {ticket.key}, soy own@a.co"):
        updates, says = status.status_lookup(Turn(text=text, sender_id="c-new", channel="rest"), {"email": "own@a.co"}, catalog, store)
        assert (updates, says) == ({}, hidden)
    # Its own conversation reads it in the customer's local time.
    _, (same,) = status.status_lookup(Turn(text=f"estado de {ticket.key}", sender_id="c-own", channel="rest"), {"country": "MX"}, catalog, store)
    assert same.response == "utter_ticket_status" and "(hora de México)" in same.kwargs["updated"]


def test_tickets_list_json_contract(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    TicketStore(url).create(new_ticket(), "k")
    env = {**os.environ, "TICKETS_DB_URL": url}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "tickets", "list", "--json"], capture_output=True, text=True, check=True, env=env
    ).stdout
    (ticket,) = json.loads(out)
    assert CONTRACT_FIELDS <= set(ticket)
    assert ticket["key"] == "ECO-000001"
    assert ticket["request_type"] == "Acompañamiento técnico"
    assert ticket["phone"] == "+573157778899"
    assert ticket["created_at"].endswith("+00:00")


def test_tickets_list_reads_bot_data_dir(tmp_path: Path) -> None:
    TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}").create(new_ticket(), "k")
    env = {k: v for k, v in os.environ.items() if k != "TICKETS_DB_URL"}
    env["BOT_DATA_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "bot", "tickets", "list", "--json"], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert [t["key"] for t in json.loads(out)] == ["ECO-000001"]


def test_tickets_show_links_to_its_review_pages(tmp_path: Path) -> None:
    from bot.review.links import sender_for

    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    TicketStore(url).create(new_ticket(conversation_id="whatsapp:+573001234567"), "k")
    env = {**os.environ, "TICKETS_DB_URL": url, "WEB_PUBLIC_URL": "https://soporte.ejemplo.com"}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "tickets", "show", "ECO-000001"], capture_output=True, text=True, check=True, env=env
    ).stdout
    links = json.loads(out)["revision"]
    assert links["ticket"] == "https://soporte.ejemplo.com/revision/tickets/ECO-000001"
    token = links["conversacion"].rsplit("/", 1)[1]
    assert sender_for(token) == "whatsapp:+573001234567"
