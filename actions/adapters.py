"""The project's services seen through the dialogue's ports (``bot/dialogue/ports.py``).

The dialogue handles one failure, ``Unavailable``, and composes plain
``Letter`` objects; the ticket store, the JSM client and the mail threads
raise and take their own types. These wrappers translate at the border, so
neither side imports the other's internals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Sequence

from bot.dialogue.ports import Compose, Letter, Unavailable
from bot.mail import Mail, Postman
from bot.tickets.errors import JsmError, TicketStoreError
from bot.tickets.jsm_client import JsmClient
from bot.tickets.model import NewTicket, Ticket
from bot.tickets.store import TicketStore


class TicketDesk:
    """A ``TicketRepository``: the ticket store, its failures reported as ``Unavailable``."""

    def __init__(self, store: TicketStore) -> None:
        self.store = store

    def create(self, ticket: NewTicket, idempotency_key: str) -> tuple[Ticket, bool]:
        try:
            return self.store.create(ticket, idempotency_key)
        except TicketStoreError as exc:
            raise Unavailable(str(exc)) from exc

    def get(self, key: str) -> Optional[Ticket]:
        try:
            return self.store.get(key)
        except TicketStoreError as exc:
            raise Unavailable(str(exc)) from exc

    def list(
        self, *, limit: Optional[int] = None, email: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> Sequence[Ticket]:
        try:
            return self.store.list(limit=limit, email=email, conversation_id=conversation_id)
        except TicketStoreError as exc:
            raise Unavailable(str(exc)) from exc

    def update_jsm_status(self, key: str, status: str, at: Optional[datetime]) -> None:
        try:
            self.store.update_jsm_status(key, status, at)
        except TicketStoreError as exc:
            raise Unavailable(str(exc)) from exc


class LiveJsm:
    """A ``LiveStatus``: JSM's client, any failure of it reported as ``Unavailable``."""

    def __init__(self, client: JsmClient) -> None:
        self.client = client

    def current_status(self, key: str) -> tuple[str, Optional[datetime]]:
        try:
            return self.client.current_status(key)
        except JsmError as exc:
            raise Unavailable(str(exc)) from exc


def mail_of(letter: Optional[Letter]) -> Optional[Mail]:
    """The mail for a composed letter; ``Mail`` refuses a recipient that could smuggle headers."""
    if letter is None:
        return None
    return Mail(to=letter.to, subject=letter.subject, text=letter.text, topic=letter.topic)


class Postbox:
    """A ``StatusMailer``: the mail threads, given the dialogue's letters as mails (composed on those threads)."""

    def __init__(self, postman: Postman) -> None:
        self.postman = postman

    def post(self, compose: Compose, requester: Optional[str] = None) -> bool:
        return self.postman.post(lambda: mail_of(compose()), requester=requester)

    def may_send(self, address: str, topic: str) -> bool:
        return self.postman.may_send(address, topic)
