"""Where each customer can be reached outside a turn: when they last wrote, and Teams' conversation reference.

The help desk answers hours after the customer wrote, from another process
(the follow-up worker). WhatsApp accepts free text only within 24 hours of
the customer's last message, so the worker must know when that was; Teams
delivers a proactive message only to a conversation the bot was given by
an incoming activity, so its reference is kept. Both are recorded by the
channels when a verified message arrives, in the tickets database (own
table, created on first use like the thread's), and read by the pushes.

Recording must never cost the customer their message: ``InboundNotes``
writes in the background, on its own thread, and only logs a failure.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ContextManager, Mapping, Optional, Protocol

from sqlalchemy import Column, DateTime, String, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from bot.privacy import mask_sender
from bot.sqlengine import SchemaOnce, as_utc, db_complaint, shared_engine

logger = logging.getLogger(__name__)

Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time

# Notes waiting for the database beyond this are dropped (and logged): a
# database that hangs must not make the channel hold messages in memory.
MAX_PENDING_NOTES = 1000


class AddressError(RuntimeError):
    """The address book's database failed; the message says what could not be done (Spanish)."""


class AddressRow(Base):
    __tablename__ = "channel_addresses"

    conversation_id = Column(String(255), primary_key=True)
    channel = Column(String(50), nullable=False)
    last_inbound_at = Column(DateTime(timezone=True), nullable=False)
    # Teams: the 1:1 conversation a proactive message goes to.
    service_url = Column(String(2048))
    teams_conversation_id = Column(String(512))
    bot_id = Column(String(255))
    bot_name = Column(String(255))
    user_id = Column(String(255))
    user_name = Column(String(255))
    tenant_id = Column(String(100))
    reference_at = Column(DateTime(timezone=True))


class Reference(Protocol):
    """A Teams conversation reference as the book keeps it (``bot.channels.teams.ConversationReference``).

    A Protocol rather than the class itself: the Teams package imports
    this module, and the book must not import it back.
    """

    @property
    def service_url(self) -> str: ...

    @property
    def conversation_id(self) -> str: ...

    @property
    def bot(self) -> Mapping[str, Any]: ...

    @property
    def user(self) -> Mapping[str, Any]: ...

    @property
    def tenant_id(self) -> Optional[str]: ...


@dataclass(frozen=True)
class StoredReference:
    """The kept reference of a customer's 1:1 Teams chat: where a proactive message goes."""

    service_url: str
    conversation_id: str
    bot: dict[str, Any]
    user: dict[str, Any]
    tenant_id: Optional[str] = None


@dataclass(frozen=True)
class Address:
    """How to reach one conversation's customer: their channel, when they last wrote, Teams' reference."""

    conversation_id: str
    channel: str
    last_inbound_at: datetime
    reference: Optional[StoredReference] = None


def now() -> datetime:
    return datetime.now(timezone.utc)


def _account(account_id: Optional[str], name: Optional[str]) -> dict[str, Any]:
    return {k: v for k, v in (("id", account_id), ("name", name)) if v}


def _reference_values(reference: Reference, moment: datetime) -> dict[str, Any]:
    return {
        "service_url": reference.service_url[:2048],
        "teams_conversation_id": reference.conversation_id[:512],
        "bot_id": str(reference.bot.get("id") or "")[:255] or None,
        "bot_name": str(reference.bot.get("name") or "")[:255] or None,
        "user_id": str(reference.user.get("id") or "")[:255] or None,
        "user_name": str(reference.user.get("name") or "")[:255] or None,
        "tenant_id": (reference.tenant_id or "")[:100] or None,
        "reference_at": moment,
    }


def address_of(row: AddressRow) -> Address:
    reference = None
    if row.service_url and row.teams_conversation_id:
        reference = StoredReference(
            service_url=row.service_url,
            conversation_id=row.teams_conversation_id,
            bot=_account(row.bot_id, row.bot_name),
            user=_account(row.user_id, row.user_name),
            tenant_id=row.tenant_id,
        )
    return Address(row.conversation_id, row.channel, as_utc(row.last_inbound_at) or now(), reference)


class AddressBook:
    """The channel addresses in the tickets database at one URL; the table is created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = shared_engine(url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False, future=True)
        self._schema = SchemaOnce(self.engine, Base.metadata)

    def _ensure_schema(self) -> None:
        try:
            self._schema.ensure()
        except SQLAlchemyError as exc:
            raise AddressError(
                f"no se pudo abrir la libreta de direcciones de los canales: {db_complaint(exc)}"
            ) from exc

    def _session(self) -> Session:
        self._ensure_schema()
        return self._sessions()

    def _begin(self) -> ContextManager[Session]:
        self._ensure_schema()
        return self._sessions.begin()

    def seen(
        self,
        conversation_id: str,
        channel: str,
        reference: Optional[Reference] = None,
        *,
        at: Optional[datetime] = None,
    ) -> None:
        """The customer of ``conversation_id`` wrote now (or ``at``); a Teams reference replaces the kept one."""
        moment = at or now()
        values: dict[str, Any] = {"channel": channel[:50], "last_inbound_at": moment}
        if reference is not None:
            values.update(_reference_values(reference, moment))
        statement = (
            update(AddressRow)
            .where(AddressRow.conversation_id == conversation_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        try:
            for _ in range(2):  # a concurrent first message of the same customer may insert between our two steps
                try:
                    with self._begin() as session:
                        if session.execute(statement).rowcount == 0:
                            session.add(AddressRow(conversation_id=conversation_id, **values))
                    return
                except IntegrityError:
                    continue
        except SQLAlchemyError as exc:
            raise AddressError(
                f"no se pudo anotar la dirección de {mask_sender(conversation_id)}: {db_complaint(exc)}"
            ) from exc
        raise AddressError(f"no se pudo anotar la dirección de {mask_sender(conversation_id)}: conflicto repetido")

    def get(self, conversation_id: str) -> Optional[Address]:
        try:
            with self._session() as session:
                row = session.execute(
                    select(AddressRow).where(AddressRow.conversation_id == conversation_id)
                ).scalar_one_or_none()
                return address_of(row) if row is not None else None
        except SQLAlchemyError as exc:
            raise AddressError(
                f"no se pudo leer la dirección de {mask_sender(conversation_id)}: {db_complaint(exc)}"
            ) from exc


class InboundNotes:
    """The channels' side of the address book: notes an inbound message without ever holding it up.

    Each note is written on this object's own thread (never the event
    loop's, nor the shared pool the attachments use), in arrival order; a
    failure is logged and forgotten: the customer's message goes on.
    """

    def __init__(self, book: Optional[AddressBook]) -> None:
        self.book = book
        self._executor: Optional[ThreadPoolExecutor] = None
        self._pending: set[asyncio.Future[None]] = set()

    def note(self, conversation_id: str, channel: str, reference: Optional[Reference] = None) -> None:
        """Schedule the note and return at once (call from the event loop)."""
        if self.book is None:
            return
        if len(self._pending) >= MAX_PENDING_NOTES:
            logger.error(
                "Address book: %d notes waiting; %s not noted", len(self._pending), mask_sender(conversation_id)
            )
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channel-addresses")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._write, self.book, conversation_id, channel, reference)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    @staticmethod
    def _write(book: AddressBook, conversation_id: str, channel: str, reference: Optional[Reference]) -> None:
        try:
            book.seen(conversation_id, channel, reference)
        except AddressError as exc:
            logger.error("Address book: %s", exc)
        except Exception:  # noqa: BLE001 - a note must never cost the customer their message
            logger.exception("Address book: could not note %s (%s)", mask_sender(conversation_id), channel)

    async def settle(self) -> None:
        """Wait for the notes already scheduled (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        mine = [future for future in self._pending if future.get_loop() is loop]
        if mine:
            await asyncio.gather(*mine)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
