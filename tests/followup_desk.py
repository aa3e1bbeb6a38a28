"""A help desk for the conversation after the ticket, on real stores in a temporary folder.

The ticket store, the ticket thread and the CSAT book share one SQLite
database, and the dialogue reaches them through the real adapter
(actions/adapters.py ``DeskThread``), as the action server does. An agent
«speaks» by recording news in the thread; the news is then delivered (claimed
and marked) the way the follow-up worker does, so the thread knows what the
customer has read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from sqlalchemy import create_engine, text

from actions.adapters import DeskThread, ticket_ref
from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.dialogue.turn import Turn
from bot.thread import CsatBook, ThreadMessage, TicketThread, Update
from bot.thread.model import COMMENT, DONE, STATUS, TO_CUSTOMER, TO_DESK
from bot.tickets import TicketStore
from bot.tickets.model import NewTicket, Ticket

CONV = "conv-ana-0001"
OTHER = "conv-luis-0002"
REPLY_WINDOW = timedelta(hours=72)


@dataclass
class Desk:
    url: str
    store: TicketStore
    thread: TicketThread
    book: CsatBook
    port: DeskThread
    files: AttachmentStore

    def ticket(self, conversation_id: str = CONV) -> Ticket:
        new = NewTicket(
            category_id="modulo_administrativo",
            category="Módulo",
            request_type_id="gestion_archivos",
            request_type="Gestión de archivos",
            email="ana@empresa.com",
            description="el archivo de cartera no carga desde ayer",
            channel="rest",
            conversation_id=conversation_id,
        )
        return self.store.create(new, f"{conversation_id}:{len(self.store.list()) + 1}")[0]

    def deliver(self) -> list[ThreadMessage]:
        """Everything waiting for the customers, delivered as the worker does."""
        delivered: list[ThreadMessage] = []
        while claimed := self.thread.claim_due(TO_CUSTOMER, "repartidor"):
            for message in claimed:
                assert self.thread.mark_delivered(message, "repartidor", "socket")
                delivered.append(message)
        return delivered

    def agent_says(self, ticket: Ticket, body: str, source: str) -> ThreadMessage:
        (message,) = self.thread.record(Update(ticket.key, source, COMMENT, body, author="Laura"), ticket_ref(ticket))
        self.deliver()
        return message

    def resolve(self, ticket: Ticket) -> list[ThreadMessage]:
        news = Update(ticket.key, f"status:{ticket.key}", STATUS, "Resuelta", status_category=DONE)
        kept = self.thread.record(news, ticket_ref(ticket))
        self.deliver()
        return kept

    def for_desk(self, key: str, kind: Optional[str] = None) -> list[ThreadMessage]:
        return [m for m in self.thread.messages(key) if m.direction == TO_DESK and (kind is None or m.kind == kind)]

    def break_thread(self, *tables: str) -> None:
        """The thread's tables disappear under the running services: every read and write of them fails."""
        engine = create_engine(self.url)
        with engine.begin() as connection:
            for table in tables or ("ticket_thread",):
                connection.execute(text(f"DROP TABLE {table}"))
        engine.dispose()


def make_desk(tmp_path: Path, catalog: Catalog) -> Desk:
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    store = TicketStore(url, prefix=catalog.ticket_prefix)
    thread, book = TicketThread(url), CsatBook(url)
    port = DeskThread(
        store, thread, book, to_jsm=False, reply_window=REPLY_WINDOW, waiting_statuses=catalog.waiting_statuses
    )
    files = AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field))
    return Desk(url, store, thread, book, port, files)


def turn(
    text: str,
    intent: Optional[str] = "nlu_fallback",
    confidence: float = 0.95,
    *,
    sender: str = CONV,
    message_id: str = "m-1",
    attachments: Iterable[Mapping[str, Any]] = (),
    entities: Iterable[Mapping[str, Any]] = (),
    mode: str = "answer",
) -> Turn:
    """A customer's message as the validation action reads it (attachments already resolved by the store)."""
    metadata = {"attachments": [dict(a) for a in attachments]} if attachments else {}
    return Turn(
        text=text,
        intent=intent,
        confidence=confidence,
        entities=tuple(entities),
        metadata=metadata,
        mode=mode,
        sender_id=sender,
        message_id=message_id,
        channel="rest",
    )


def reply_slots(message: ThreadMessage, **more: Any) -> dict[str, Any]:
    """The slots the worker sets when it delivers an agent's message (bot/dialogue/notices.py)."""
    return {"reply_ticket": message.ticket_key, "reply_since": message.id, "requested_slot": "reply_text", **more}


def title_of(ticket: Ticket) -> str:
    return ticket_ref(ticket).title
