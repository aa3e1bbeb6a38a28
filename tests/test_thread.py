"""The ticket thread (bot/thread) on SQLite and PostgreSQL, tested by someone who did not write it.

Recording news once (per source, per status change, per resolution),
claiming messages for delivery in order per ticket and never twice (raced
by several workers on one database), the customer's answers for the help
desk, which ticket waits for the customer, and the CSAT book. Time passing
is simulated by moving a row's timestamps back in the real database.

PostgreSQL: a fresh database per test on ``TEST_POSTGRES_URL``
(``eval "$(scripts/ensure-services.sh)"; export TEST_POSTGRES_URL TEST_REDIS_URL``);
without it those cases are skipped.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
from sqlalchemy import create_engine, text, update

from bot.thread import CsatBook, ThreadError, ThreadMessage, TicketRef, TicketThread, Update
from bot.thread.model import (
    COMMENT,
    CSAT,
    DELIVERED,
    DONE,
    FAILED,
    HANDOFF,
    LOCAL,
    PENDING,
    SENDING,
    STATUS,
    TO_CUSTOMER,
    TO_DESK,
)
from bot.thread.table import CsatRow, ThreadRow
from bot.tickets.model import Attachment

BACKENDS = ("sqlite", "postgresql")
WAITING = ("Esperando por el cliente",)
WINDOW = timedelta(hours=1)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The tickets database: a SQLite file, or a PostgreSQL database made for this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tickets.db'}"
        return
    admin = os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        pytest.fail('sin PostgreSQL: eval "$(scripts/ensure-services.sh)"; export TEST_POSTGRES_URL TEST_REDIS_URL')
    name = f"eco_thread_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()


@pytest.fixture
def thread(url: str) -> TicketThread:
    return TicketThread(url)


@pytest.fixture
def book(url: str) -> CsatBook:
    return CsatBook(url)


# ---------------------------------------------------------------------- helpers
def ref(number: int = 1, conversation: str = "web-conv-1", channel: str = "socketio") -> TicketRef:
    return TicketRef(
        key=f"ECO-{number:06d}",
        conversation_id=conversation,
        channel=channel,
        request_type_id="falla_cargue",
        request_type="Falla en cargue archivos de cartera",
        jsm_key=f"SUP-{number}",
    )


def comment(ticket: TicketRef, source: str, body: str = "¿Nos envías el archivo que falla?", **kw: Any) -> Update:
    return Update(ticket=ticket.key, source=source, kind=COMMENT, body=body, author="Laura (soporte)", **kw)


def status(ticket: TicketRef, name: str, category: Optional[str] = "indeterminate", source: str = "") -> Update:
    return Update(
        ticket=ticket.key,
        source=source or f"jsm-status:{uuid.uuid4().hex}",
        kind=STATUS,
        body=name,
        status_category=category,
    )


def resolved(ticket: TicketRef, source: str = "") -> Update:
    return status(ticket, "Resuelta", DONE, source)


def deliver_all(thread: TicketThread, worker: str = "repartidor") -> list[ThreadMessage]:
    """What a worker delivers to customers until nothing is due, in delivery order."""
    sent: list[ThreadMessage] = []
    while True:
        claimed = thread.claim_due(TO_CUSTOMER, worker)
        if not claimed:
            return sent
        for message in claimed:
            assert thread.mark_delivered(message, worker, "socket")
            sent.append(message)


def set_row(thread: TicketThread, row_id: int, **values: Any) -> None:
    """Move a message's timestamps in the real database: time passing, without waiting for it."""
    with thread.tables.engine.begin() as connection:
        connection.execute(update(ThreadRow).where(ThreadRow.id == row_id).values(**values))


def age_csat(book: CsatBook, ticket_key: str, by: timedelta) -> None:
    with book.tables.engine.begin() as connection:
        connection.execute(
            update(CsatRow).where(CsatRow.ticket_key == ticket_key).values(asked_at=datetime.now(timezone.utc) - by)
        )


def race(jobs: list[Callable[[], Any]], timeout: float = 60) -> list[Any]:
    """Run the jobs in threads released at once; their results (an exception re-raised here)."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except BaseException as exc:  # noqa: B036 (handed back to the test thread)
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "un hilo de la carrera no terminó"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


# -------------------------------------------------------------------- recording
def test_news_is_recorded_once_per_source(thread: TicketThread) -> None:
    ticket = ref()
    first = thread.record(comment(ticket, "jsm-comment:10042"), ticket)
    assert [(m.kind, m.direction, m.delivery_status, m.body) for m in first] == [
        (COMMENT, TO_CUSTOMER, PENDING, "¿Nos envías el archivo que falla?")
    ]
    assert first[0].title == "ECO-000001 · Falla en cargue archivos de cartera"
    assert first[0].author == "Laura (soporte)" and first[0].conversation_id == "web-conv-1"
    # The webhook retried, then the poll: same source, nothing new (even with an edited body).
    assert thread.record(comment(ticket, "jsm-comment:10042"), ticket) == []
    assert thread.record(comment(ticket, "jsm-comment:10042", "editado"), ticket) == []
    # The same source on another ticket is other news.
    other = ref(2)
    assert len(thread.record(comment(other, "jsm-comment:10042"), other)) == 1
    assert [m.source for m in thread.messages(ticket.key)] == ["jsm-comment:10042"]


def test_internal_comments_and_empty_bodies_are_never_recorded(thread: TicketThread) -> None:
    ticket = ref()
    assert thread.record(comment(ticket, "jsm-comment:1", "nota interna: cliente moroso", public=False), ticket) == []
    assert thread.record(comment(ticket, "jsm-comment:2", ""), ticket) == []
    assert thread.record(comment(ticket, "jsm-comment:3", " \n\t "), ticket) == []
    assert thread.record(status(ticket, "   "), ticket) == []
    assert thread.messages(ticket.key) == []
    assert thread.claim_due(TO_CUSTOMER, "w") == []
    # A body with spaces around it is kept trimmed.
    kept = thread.record(comment(ticket, "jsm-comment:4", "  Listo, revisado.  \n"), ticket)
    assert [m.body for m in kept] == ["Listo, revisado."]


def test_a_status_equal_to_the_last_one_is_skipped(thread: TicketThread) -> None:
    ticket = ref()
    assert [m.body for m in thread.record(status(ticket, "En curso", source="jsm-status:1"), ticket)] == ["En curso"]
    # The poll sees the same status later, with its own source and other spelling: skipped.
    assert thread.record(status(ticket, "EN CURSO", source="poll:ECO-000001:1"), ticket) == []
    assert thread.record(status(ticket, "Esperando por el cliente"), ticket)
    # Back to a status recorded before (not the last one): that is a change.
    assert [m.body for m in thread.record(status(ticket, "En curso"), ticket)] == ["En curso"]
    assert [m.body for m in thread.messages(ticket.key)] == ["En curso", "Esperando por el cliente", "En curso"]
    # Another ticket's statuses do not count.
    other = ref(2)
    assert thread.record(status(other, "En curso"), other)


def test_webhook_and_poll_reporting_one_change_at_once_record_it_once(url: str) -> None:
    webhook, poll = TicketThread(url), TicketThread(url)
    tickets = [ref(n) for n in range(1, 11)]
    for ticket in tickets:
        webhook.record(status(ticket, "Abierta"), ticket)
    for ticket in tickets:
        results = race(
            [
                partial(webhook.record, status(ticket, "En curso", source="jsm-status:1700000000000"), ticket),
                partial(poll.record, status(ticket, "En curso", source="poll:1"), ticket),
            ]
        )
        assert sorted(len(r) for r in results) == [0, 1], ticket.key
        assert [m.body for m in webhook.messages(ticket.key)] == ["Abierta", "En curso"]


def test_two_processes_opening_a_fresh_database_at_once_both_work(url: str) -> None:
    threads = [TicketThread(url) for _ in range(4)]
    results = race([partial(t.record, comment(ref(n), "c:1"), ref(n)) for n, t in enumerate(threads, 1)])
    assert [len(r) for r in results] == [1, 1, 1, 1]


def test_a_resolution_queues_the_csat_question_once_and_opens_its_answer(thread: TicketThread, book: CsatBook) -> None:
    ticket = ref(channel="whatsapp", conversation="whatsapp:+573001112233")
    kept = thread.record(resolved(ticket, "jsm-status:1"), ticket)
    assert [(m.kind, m.body) for m in kept] == [(STATUS, "Resuelta"), (CSAT, ticket.title)]
    assert kept[0].status_category == DONE and kept[1].direction == TO_CUSTOMER
    asked = book.get(ticket.key)
    assert asked is not None and asked.rating is None
    assert (asked.conversation_id, asked.channel, asked.request_type_id, asked.request_type) == (
        "whatsapp:+573001112233",
        "whatsapp",
        "falla_cargue",
        "Falla en cargue archivos de cartera",
    )
    # Reported again (poll): nothing. Reopened, then resolved again: the status, not the question.
    assert thread.record(resolved(ticket, "poll:2"), ticket) == []
    assert thread.record(status(ticket, "Reabierta"), ticket)
    again = thread.record(resolved(ticket, "jsm-status:3"), ticket)
    assert [m.kind for m in again] == [STATUS]
    kinds = Counter(m.kind for m in thread.messages(ticket.key))
    assert kinds == {STATUS: 3, CSAT: 1}
    reasked = book.get(ticket.key)
    assert reasked is not None and reasked.asked_at == asked.asked_at


def test_a_status_category_in_capitals_still_counts_as_resolved(thread: TicketThread) -> None:
    ticket = ref()
    assert [m.kind for m in thread.record(status(ticket, "Cerrada", "DONE"), ticket)] == [STATUS, CSAT]


def test_two_sources_resolving_at_once_ask_once(url: str) -> None:
    one, two = TicketThread(url), TicketThread(url)
    tickets = [ref(n) for n in range(1, 9)]
    for ticket in tickets:
        one.record(status(ticket, "En curso"), ticket)
    for ticket in tickets:
        race(
            [
                partial(one.record, resolved(ticket, "jsm-status:9"), ticket),
                partial(two.record, resolved(ticket, "poll:9"), ticket),
            ]
        )
        kinds = [m.kind for m in one.messages(ticket.key)]
        assert kinds == [STATUS, STATUS, CSAT], ticket.key
    book = CsatBook(url)
    assert all(book.get(t.key) is not None for t in tickets)


def test_a_status_webhook_retried_after_a_newer_change_is_not_recorded_again(thread: TicketThread) -> None:
    ticket = ref()
    waiting = status(ticket, "Esperando por el cliente", source="jsm-status:1700000000000")
    assert thread.record(waiting, ticket)
    assert thread.record(status(ticket, "En curso", source="jsm-status:1700000060000"), ticket)
    # JSM retries the first delivery (our answer timed out): same source, already recorded.
    assert thread.record(waiting, ticket) == []
    assert [m.body for m in thread.messages(ticket.key)][-1] == "En curso"


def test_a_poll_older_than_the_last_recorded_change_is_not_recorded(thread: TicketThread) -> None:
    ticket = ref()
    t0 = datetime(2025, 3, 3, 14, 0, tzinfo=timezone.utc)
    thread.record(Update(ticket.key, "jsm-status:1", STATUS, "En curso", happened_at=t0), ticket)
    newer = Update(ticket.key, "jsm-status:2", STATUS, "Esperando por el cliente", happened_at=t0 + timedelta(hours=1))
    assert thread.record(newer, ticket)
    # The poll read «En curso» (statusDate t0) before that change, and reports it after.
    stale = Update(ticket.key, "poll:ECO-000001", STATUS, "En curso", happened_at=t0)
    assert thread.record(stale, ticket) == []


# ----------------------------------------------------------------------- claims
def test_claims_hand_out_the_oldest_waiting_message_of_each_ticket(thread: TicketThread) -> None:
    a, b = ref(1), ref(2)
    a1 = thread.record(comment(a, "c:1", "uno"), a)[0]
    a2 = thread.record(comment(a, "c:2", "dos"), a)[0]
    b1 = thread.record(comment(b, "c:1", "otro"), b)[0]
    a3 = thread.record(comment(a, "c:3", "tres"), a)[0]
    first = thread.claim_due(TO_CUSTOMER, "w1", limit=20)
    assert [m.id for m in first] == [a1.id, b1.id]
    assert all(m.delivery_status == SENDING and m.attempts == 1 for m in first)
    # While a1 is in flight, nothing else of A: not to this worker, not to another.
    assert thread.claim_due(TO_CUSTOMER, "w2") == []
    assert thread.mark_delivered(first[0], "w1", "socket")
    assert [m.id for m in thread.claim_due(TO_CUSTOMER, "w2")] == [a2.id]
    assert thread.claim_due(TO_CUSTOMER, "w1") == []
    # TO_DESK messages are another queue: they never block nor get claimed with these.
    thread.from_customer(a, "mi respuesta", source="rasa:1", to_jsm=True)
    assert thread.claim_due(TO_CUSTOMER, "w1") == []
    delivered = thread.messages(a.key)
    assert [(m.id, m.delivery_status, m.via) for m in delivered[:2]] == [
        (a1.id, DELIVERED, "socket"),
        (a2.id, SENDING, None),
    ]
    assert delivered[2].id == a3.id and delivered[2].delivery_status == PENDING


def test_limit_bounds_a_claim(thread: TicketThread) -> None:
    tickets = [ref(n) for n in range(1, 6)]
    for ticket in tickets:
        thread.record(comment(ticket, "c:1"), ticket)
    assert len(thread.claim_due(TO_CUSTOMER, "w", limit=2)) == 2
    assert len(thread.claim_due(TO_CUSTOMER, "w", limit=20)) == 3
    assert thread.claim_due(TO_CUSTOMER, "w") == []


def test_racing_workers_deliver_each_message_once_and_in_order_per_ticket(url: str) -> None:
    setup = TicketThread(url)
    tickets = [ref(n, conversation=f"web-{n}") for n in range(1, 7)]
    for ticket in tickets:  # a ticket's messages side by side: one claim could take several of them
        for round_ in range(5):
            setup.record(comment(ticket, f"jsm-comment:{round_}", f"mensaje {round_}"), ticket)
    total = len(tickets) * 5
    guard = threading.Lock()
    claims: list[tuple[str, int]] = []  # (ticket, message id) in claim order
    in_flight: set[str] = set()
    overlaps: list[str] = []
    refused: list[int] = []  # marks the database did not take: the claim was not this worker's
    deadline = time.monotonic() + 60

    def work(name: str) -> int:
        thread = TicketThread(url)
        done = 0
        while time.monotonic() < deadline:
            with guard:
                if len(claims) >= total and not in_flight:
                    return done
            for message in thread.claim_due(TO_CUSTOMER, name, limit=3):
                with guard:
                    claims.append((message.ticket_key, message.id))
                    if message.ticket_key in in_flight:
                        overlaps.append(message.ticket_key)
                    in_flight.add(message.ticket_key)
                time.sleep(0.005)  # sending takes a moment
                with guard:
                    in_flight.discard(message.ticket_key)
                if thread.mark_delivered(message, name, "socket"):
                    done += 1
                else:
                    with guard:
                        refused.append(message.id)
        return done

    delivered = race([partial(work, f"trabajador-{n}") for n in range(4)], timeout=90)
    assert refused == [] and sum(delivered) == total
    assert overlaps == [], "dos mensajes de un ticket en vuelo a la vez"
    assert len(claims) == total and len(set(claims)) == total  # never one message to two workers
    per_ticket: dict[str, list[int]] = defaultdict(list)
    for key, message_id in claims:
        per_ticket[key].append(message_id)
    for ticket in tickets:
        stored = setup.messages(ticket.key)
        assert per_ticket[ticket.key] == [m.id for m in stored]  # claimed in order
        assert all(m.delivery_status == DELIVERED and m.attempts == 1 for m in stored)
        moments = [m.delivered_at for m in stored]
        assert None not in moments and moments == sorted(m for m in moments if m is not None)


def test_channel_and_conversation_filters(thread: TicketThread) -> None:
    web1, web2 = ref(1, "web-1", "socketio"), ref(2, "web-2", "socketio")
    whatsapp, teams = ref(3, "whatsapp:+573001112233", "whatsapp"), ref(4, "msteams-conv", "msteams")
    for ticket in (web1, web2, whatsapp, teams):
        thread.record(comment(ticket, "c:1"), ticket)
    pushed = thread.claim_due(TO_CUSTOMER, "push", channels=("whatsapp", "msteams"))
    assert sorted(m.ticket_key for m in pushed) == [whatsapp.key, teams.key]
    assert thread.claim_due(TO_CUSTOMER, "push", channels=()) == []
    relay = thread.claim_conversation("web-2", "relay")
    assert [m.ticket_key for m in relay] == [web2.key]
    # A web conversation id asked with another channel's id, or a push conversation through the relay: nothing.
    assert thread.claim_conversation("whatsapp:+573001112233", "relay") == []
    assert thread.claim_due(TO_CUSTOMER, "push", channels=("whatsapp",), conversation_id="web-1") == []
    assert [m.ticket_key for m in thread.claim_conversation("web-1", "relay")] == [web1.key]


def test_an_expired_lease_is_taken_back_and_only_the_holder_can_mark(thread: TicketThread) -> None:
    ticket = ref()
    thread.record(comment(ticket, "c:1"), ticket)
    # A lease long enough for the three refused marks below on a loaded machine (0.05 s was not).
    [held] = thread.claim_due(TO_CUSTOMER, "lento", lease_seconds=2.0)
    assert not thread.mark_delivered(held, "intruso", "socket")
    assert not thread.mark_failed(held, "intruso", "x")
    assert not thread.mark_retry(held, "intruso", "x", datetime.now(timezone.utc))
    assert thread.claim_due(TO_CUSTOMER, "rapido") == []  # lease still running
    time.sleep(2.2)
    [again] = thread.claim_due(TO_CUSTOMER, "rapido")
    assert again.id == held.id and again.attempts == 2
    assert not thread.mark_delivered(held, "lento", "socket")  # the slow worker lost it
    assert thread.mark_delivered(again, "rapido", "socket")
    assert not thread.mark_delivered(again, "rapido", "socket")  # once
    [stored] = thread.messages(ticket.key)
    assert (stored.delivery_status, stored.via, stored.attempts) == (DELIVERED, "socket", 2)


def test_a_message_never_claimed_cannot_be_marked(thread: TicketThread) -> None:
    ticket = ref()
    [message] = thread.record(comment(ticket, "c:1"), ticket)
    assert not thread.mark_delivered(message, "w", "socket")
    assert not thread.mark_failed(message, "w", "x")
    assert thread.messages(ticket.key)[0].delivery_status == PENDING


def test_a_retry_keeps_the_later_messages_of_its_ticket_waiting(thread: TicketThread) -> None:
    a, b = ref(1), ref(2)
    a1 = thread.record(comment(a, "c:1", "uno"), a)[0]
    a2 = thread.record(comment(a, "c:2", "dos"), a)[0]
    [first] = thread.claim_due(TO_CUSTOMER, "w")
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert thread.mark_retry(first, "w", "Twilio 503 " + "x" * 5000, later)
    b1 = thread.record(comment(b, "c:1"), b)[0]
    # a1 is not due yet and a2 must not pass it; B goes on.
    assert [m.id for m in thread.claim_due(TO_CUSTOMER, "w")] == [b1.id]
    stored = thread.messages(a.key)[0]
    assert stored.delivery_status == PENDING and stored.last_error and len(stored.last_error) == 4000
    # When the retry is due, a1 goes first, then a2.
    set_row(thread, a1.id, next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    [retried] = thread.claim_due(TO_CUSTOMER, "w")
    assert retried.id == a1.id and retried.attempts == 2
    assert thread.mark_delivered(retried, "w", "text")
    assert thread.messages(a.key)[0].last_error is None
    assert [m.id for m in thread.claim_due(TO_CUSTOMER, "w")] == [a2.id]


def test_a_failure_lets_the_later_messages_go_and_requeue_brings_it_back(thread: TicketThread) -> None:
    ticket = ref()
    first = thread.record(comment(ticket, "c:1", "uno"), ticket)[0]
    second = thread.record(comment(ticket, "c:2", "dos"), ticket)[0]
    [claimed] = thread.claim_due(TO_CUSTOMER, "w")
    assert thread.mark_failed(claimed, "w", "63016: fuera de la ventana de 24 horas")
    failed = thread.messages(ticket.key)[0]
    assert (failed.delivery_status, failed.last_error) == (FAILED, "63016: fuera de la ventana de 24 horas")
    assert failed.delivery_label == "fallido"
    [next_one] = thread.claim_due(TO_CUSTOMER, "w")
    assert next_one.id == second.id
    assert [m.id for m in thread.undelivered()] == [first.id, second.id]
    # An operator requeues: nothing named, nothing done; a message in flight is not touched.
    assert thread.requeue() == 0
    assert thread.requeue([second.id]) == 0
    assert thread.requeue(failed=True) == 1
    stored = thread.messages(ticket.key)[0]
    assert (stored.delivery_status, stored.last_error) == (PENDING, None)
    assert thread.mark_delivered(next_one, "w", "text")
    [again] = thread.claim_due(TO_CUSTOMER, "w")
    assert again.id == first.id and again.attempts == 2
    assert thread.mark_delivered(again, "w", "template")
    assert thread.requeue([first.id]) == 1  # a delivered one, named, is sent again
    assert thread.requeue(failed=True) == 0


# ------------------------------------------------------------- for the help desk
def test_customer_answers_are_kept_once_and_local_or_pending_by_help_desk(thread: TicketThread) -> None:
    ticket = ref()
    files = (Attachment(name="cartera.csv", content_type="text/csv", size=120, id="adj-1"),)
    sent = thread.from_customer(ticket, "Adjunto el archivo", source="rasa:msg-1", attachments=files, to_jsm=True)
    assert (sent.direction, sent.kind, sent.delivery_status, sent.body) == (
        TO_DESK,
        COMMENT,
        PENDING,
        "Adjunto el archivo",
    )
    assert sent.attachments == files
    # The same message again (the action retried): the first one back, even with other text.
    again = thread.from_customer(ticket, "otra cosa", source="rasa:msg-1", to_jsm=True)
    assert again.id == sent.id and again.body == "Adjunto el archivo" and again.attachments == files
    local = thread.from_customer(ticket, "Gracias", source="rasa:msg-2", to_jsm=False)
    assert local.delivery_status == LOCAL
    note = thread.note_for_desk(
        ticket, HANDOFF, "Pide hablar con una persona.\n\nTranscripción…", source="h:1", to_jsm=True
    )
    assert (note.direction, note.kind, note.delivery_status) == (TO_DESK, HANDOFF, PENDING)
    assert thread.note_for_desk(ticket, HANDOFF, "otra", source="h:1", to_jsm=True).id == note.id
    local_note = thread.note_for_desk(ticket, CSAT, "Calificación: 5", source="csat-answer:1", to_jsm=False)
    assert local_note.delivery_status == LOCAL
    # Only the PENDING ones are delivered to JSM, in order per ticket; LOCAL ones never.
    [first] = thread.claim_due(TO_DESK, "jsm")
    assert first.id == sent.id
    assert thread.mark_delivered(first, "jsm", "jsm")
    [second] = thread.claim_due(TO_DESK, "jsm")
    assert second.id == note.id
    assert thread.mark_delivered(second, "jsm", "jsm")
    assert thread.claim_due(TO_DESK, "jsm") == []
    assert thread.requeue([local.id, local_note.id]) == 0  # the local thread is the help desk
    assert {m.delivery_status for m in thread.messages(ticket.key)} == {DELIVERED, LOCAL}
    # The help desk's queue never blocks the customer's.
    thread.from_customer(ticket, "¿Hay novedades?", source="rasa:msg-3", to_jsm=True)
    assert len(thread.record(comment(ticket, "c:1"), ticket)) == 1
    assert len(thread.claim_due(TO_CUSTOMER, "w")) == 1


def test_a_note_never_comes_back_as_a_message_of_the_other_direction(thread: TicketThread) -> None:
    ticket = ref()
    thread.record(resolved(ticket), ticket)  # queues the question with source csat:ECO-000001
    try:
        note = thread.note_for_desk(
            ticket, CSAT, "Calificación: 5 · Excelente", source=f"csat:{ticket.key}", to_jsm=True
        )
    except ThreadError:
        return  # refusing the clash would be fine too
    assert (note.direction, note.kind, note.body) == (TO_DESK, CSAT, "Calificación: 5 · Excelente")


# --------------------------------------------------------------- reply target
def target(thread: TicketThread, conversation: str = "web-conv-1") -> Optional[str]:
    found = thread.reply_target(conversation, window=WINDOW, waiting_statuses=WAITING)
    return found.ticket_key if found else None


def test_a_recent_agent_comment_makes_its_ticket_the_reply_target(thread: TicketThread) -> None:
    ticket = ref()
    [message] = thread.record(comment(ticket, "c:1"), ticket)
    assert target(thread) is None  # not delivered yet: the customer has not read it
    deliver_all(thread)
    found = thread.reply_target("web-conv-1", window=WINDOW, waiting_statuses=WAITING)
    assert found is not None and (found.ticket_key, found.since) == (ticket.key, message.id)
    # Outside the window, no longer.
    set_row(thread, message.id, delivered_at=datetime.now(timezone.utc) - WINDOW - timedelta(minutes=1))
    assert target(thread) is None


def test_a_waiting_status_makes_a_target_whatever_its_age(thread: TicketThread) -> None:
    ticket = ref()
    [waiting] = thread.record(status(ticket, "ESPERANDO por el cliente"), ticket)
    deliver_all(thread)
    set_row(thread, waiting.id, delivered_at=datetime.now(timezone.utc) - timedelta(days=30))
    found = thread.reply_target("web-conv-1", window=WINDOW, waiting_statuses=WAITING)
    assert found is not None and (found.ticket_key, found.since) == (ticket.key, waiting.id)
    # A later comment on it: the wait is now since the comment.
    [later] = thread.record(comment(ticket, "c:2"), ticket)
    deliver_all(thread)
    found = thread.reply_target("web-conv-1", window=WINDOW, waiting_statuses=WAITING)
    assert found is not None and found.since == later.id
    # The agent picks it up again: not waiting any more, but the comment is recent.
    thread.record(status(ticket, "En curso"), ticket)
    deliver_all(thread)
    assert target(thread) == ticket.key
    set_row(thread, later.id, delivered_at=datetime.now(timezone.utc) - timedelta(days=2))
    assert target(thread) is None


def test_a_resolved_ticket_is_no_target(thread: TicketThread) -> None:
    ticket = ref()
    thread.record(status(ticket, "Esperando por el cliente"), ticket)
    thread.record(comment(ticket, "c:1"), ticket)
    deliver_all(thread)
    assert target(thread) == ticket.key
    thread.record(resolved(ticket), ticket)
    deliver_all(thread)
    assert target(thread) is None
    # Reopened and commented: a target again.
    thread.record(status(ticket, "Reabierta"), ticket)
    thread.record(comment(ticket, "c:2"), ticket)
    deliver_all(thread)
    assert target(thread) == ticket.key


def test_the_newest_waiting_ticket_wins_and_other_conversations_never_count(thread: TicketThread) -> None:
    a, b = ref(1), ref(2)
    stranger = ref(3, conversation="web-conv-2")
    thread.record(comment(a, "c:1"), a)
    deliver_all(thread)
    thread.record(comment(b, "c:1"), b)
    deliver_all(thread)
    assert target(thread) == b.key
    thread.record(status(a, "Esperando por el cliente"), a)
    deliver_all(thread)
    assert target(thread) == a.key
    # Another conversation's ticket, newer and waiting: not this customer's.
    thread.record(status(stranger, "Esperando por el cliente"), stranger)
    thread.record(comment(stranger, "c:9"), stranger)
    deliver_all(thread)
    assert target(thread) == a.key
    assert target(thread, "web-conv-2") == stranger.key
    assert target(thread, "web-conv-3") is None


def test_the_reply_target_names_the_request_type(thread: TicketThread) -> None:
    ticket = ref()
    thread.record(comment(ticket, "c:1"), ticket)
    deliver_all(thread)
    found = thread.reply_target("web-conv-1", window=WINDOW, waiting_statuses=WAITING)
    assert found is not None and found.request_type == "Falla en cargue archivos de cartera"


# --------------------------------------------------------------------- CSAT
def rating_of(book: CsatBook, ticket_key: str) -> Optional[int]:
    answer = book.get(ticket_key)
    assert answer is not None, f"no se preguntó por {ticket_key}"
    return answer.rating


def pending_key(book: CsatBook, conversation_id: str) -> Optional[str]:
    found = book.pending(conversation_id)
    return found.ticket_key if found else None


def test_only_the_asked_conversation_rates_and_only_once(thread: TicketThread, book: CsatBook) -> None:
    ticket = ref()
    thread.record(resolved(ticket), ticket)
    assert not book.rate(ticket.key, "web-conv-intruso", 1)
    assert not book.rate("ECO-999999", "web-conv-1", 5)  # never asked
    for wrong in (0, 6, -1, 100, 2.5):
        assert not book.rate(ticket.key, "web-conv-1", wrong)  # type: ignore[arg-type]  # 2.5: a hostile float
    assert rating_of(book, ticket.key) is None
    assert book.rate(ticket.key, "web-conv-1", 4)
    assert not book.rate(ticket.key, "web-conv-1", 1)
    answer = book.get(ticket.key)
    assert answer is not None and answer.rating == 4 and answer.answered_at is not None


def test_two_ratings_at_once_keep_one(url: str) -> None:
    thread = TicketThread(url)
    ticket = ref()
    thread.record(resolved(ticket), ticket)
    books = [CsatBook(url) for _ in range(4)]
    results = race([partial(b.rate, ticket.key, "web-conv-1", n) for n, b in enumerate(books, 1)])
    assert results.count(True) == 1
    answer = books[0].get(ticket.key)
    assert answer is not None and answer.rating == results.index(True) + 1


def test_a_comment_follows_a_rating_once(thread: TicketThread, book: CsatBook) -> None:
    ticket = ref()
    thread.record(resolved(ticket), ticket)
    assert not book.comment(ticket.key, "web-conv-1", "antes de calificar")
    assert book.rate(ticket.key, "web-conv-1", 2)
    assert not book.comment(ticket.key, "web-conv-intruso", "no soy yo")
    assert book.comment(ticket.key, "web-conv-1", "Tardaron 3 días 😕 " + "x" * 5000)
    assert not book.comment(ticket.key, "web-conv-1", "otra vez")
    answer = book.get(ticket.key)
    assert answer is not None and answer.comment is not None
    assert answer.comment.startswith("Tardaron 3 días 😕") and len(answer.comment) == 2000


def test_pending_is_the_newest_unanswered_question_within_the_window(thread: TicketThread, book: CsatBook) -> None:
    old, new = ref(1), ref(2)
    other = ref(3, conversation="web-conv-2")
    assert book.pending("web-conv-1") is None
    thread.record(resolved(old), old)
    thread.record(resolved(new), new)
    thread.record(resolved(other), other)
    assert pending_key(book, "web-conv-1") == new.key
    assert book.rate(new.key, "web-conv-1", 5)
    assert pending_key(book, "web-conv-1") == old.key
    age_csat(book, old.key, timedelta(days=8))
    assert book.pending("web-conv-1") is None
    assert pending_key(book, "web-conv-2") == other.key


def test_answers_are_the_rated_ones_oldest_first_and_since(thread: TicketThread, book: CsatBook) -> None:
    tickets = [ref(n) for n in range(1, 4)]
    for ticket in tickets:
        thread.record(resolved(ticket), ticket)
    assert book.answers() == []
    assert book.rate(tickets[2].key, "web-conv-1", 3)
    time.sleep(0.05)
    middle = datetime.now(timezone.utc)
    time.sleep(0.05)
    assert book.rate(tickets[0].key, "web-conv-1", 5)
    assert [a.ticket_key for a in book.answers()] == [tickets[2].key, tickets[0].key]
    assert [a.ticket_key for a in book.answers(since=middle)] == [tickets[0].key]
    assert book.answers(since=datetime.now(timezone.utc) + timedelta(minutes=1)) == []


def test_a_conversation_reads_its_own_tickets_threads_only(thread: TicketThread) -> None:
    a, b = ref(1), ref(2)
    stranger = ref(3, conversation="web-conv-2")
    first = thread.record(comment(a, "c:1"), a)[0]
    thread.record(comment(stranger, "c:1", "secreto de otro cliente"), stranger)
    mine = thread.from_customer(b, "respuesta", source="rasa:1", to_jsm=False)
    assert [m.id for m in thread.for_conversation("web-conv-1")] == [first.id, mine.id]
    assert [m.id for m in thread.for_conversation("web-conv-1", after_id=first.id)] == [mine.id]
    assert all(m.conversation_id == "web-conv-2" for m in thread.for_conversation("web-conv-2"))
    assert thread.for_conversation("web-conv-1' OR '1'='1") == []
    assert thread.messages(" eco-000001 ")[0].id == first.id


def test_a_database_error_does_not_carry_the_customers_text(
    thread: TicketThread, url: str, request: pytest.FixtureRequest
) -> None:
    # A key longer than the column: PostgreSQL refuses the row, SQLite keeps it.
    ticket = TicketRef("ECO-" + "9" * 40, "web-conv-1", "socketio", "x", "Pagos")
    try:
        thread.from_customer(ticket, "mi tarjeta 4111 1111 1111 1111, clave 1234", source="rasa:1", to_jsm=True)
    except ThreadError as exc:
        assert "4111" not in str(exc) and "clave" not in str(exc)


# ------------------------------------------------------------------ hostile input
def test_long_and_unicode_news_round_trips(thread: TicketThread) -> None:
    ticket = ref()
    body = "Hola María 👋🏽 — «revisa» el archivo نص عربي 中文 e\u0301\n" * 20000  # ≈ 1 MB
    assert len(thread.record(comment(ticket, "jsm-comment:ñ-😀"), ticket)) == 1
    [kept] = thread.record(comment(ticket, "c:largo", body), ticket)
    assert kept.body == body.strip()
    stored = {m.source: m for m in thread.messages(ticket.key)}
    assert stored["c:largo"].body == body.strip() and "jsm-comment:ñ-😀" in stored
    [claimed] = thread.claim_due(TO_CUSTOMER, "w")
    assert claimed.source == "jsm-comment:ñ-😀"


def test_a_source_of_300_characters_is_cut_the_same_way_every_time(thread: TicketThread) -> None:
    ticket = ref()
    source = "jsm-comment:" + "9" * 288
    assert len(source) == 300
    [kept] = thread.record(comment(ticket, source), ticket)
    assert kept.source == source[:255]
    assert thread.record(comment(ticket, source), ticket) == []
    unicode_source = "rasa:" + "ñ😀" * 150
    sent = thread.from_customer(ticket, "respuesta", source=unicode_source, to_jsm=True)
    assert thread.from_customer(ticket, "respuesta", source=unicode_source, to_jsm=True).id == sent.id
    note = thread.note_for_desk(ticket, HANDOFF, "x", source="h" * 300, to_jsm=False)
    assert thread.note_for_desk(ticket, HANDOFF, "x", source="h" * 300, to_jsm=False).id == note.id
    assert len(thread.messages(ticket.key)) == 3


def test_a_long_request_type_is_cut_in_the_title(thread: TicketThread) -> None:
    ticket = TicketRef("ECO-000001", "web-conv-1", "socketio", "x", "Tipo " * 200)
    [kept] = thread.record(comment(ticket, "c:1"), ticket)
    assert kept.title.startswith("ECO-000001 · Tipo") and len(kept.title) == 300


def test_long_author_and_category_are_kept_on_every_backend(
    thread: TicketThread, url: str, request: pytest.FixtureRequest
) -> None:
    ticket = ref()
    news = Update(ticket=ticket.key, source="c:1", kind=COMMENT, body="hola", author="Agente " * 60)
    assert len(thread.record(news, ticket)) == 1
    odd = Update(ticket.key, "s:1", STATUS, "Pendiente", status_category="categoria-" * 10)
    assert len(thread.record(odd, ticket)) == 1


def test_control_characters_and_lone_surrogates_never_break_recording(thread: TicketThread) -> None:
    ticket = ref()
    kept = thread.record(comment(ticket, "c:1", "hola\x00mundo\ud800 fin"), ticket)
    assert len(kept) == 1 and "\x00" not in kept[0].body and "hola" in kept[0].body and "fin" in kept[0].body
    sent = thread.from_customer(ticket, "archivo\x00\udfff listo", source="rasa:1", to_jsm=True)
    assert "\x00" not in sent.body and "listo" in sent.body
    assert len(thread.messages(ticket.key)) == 2
