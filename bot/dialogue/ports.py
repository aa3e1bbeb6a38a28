"""What the dialogue needs from the world, as the Protocols it is handed.

The dialogue decides what to say and what to store; it never opens a
database, a socket or the environment. The ticket store, the attachment
store, JSM's live status and the mail threads are built once when the action
server starts and passed to each call, so the rules can be tested with local
stores and fakes, and the rooms that do I/O never import the dialogue's
internals. ``actions/adapters.py`` fits the concrete services to these ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence

from bot.kb.model import Article, Match
from bot.thread.model import TicketRef
from bot.tickets.model import Attachment, NewTicket, Ticket


class Unavailable(Exception):
    """A service could not answer now (database down, JSM unreachable).

    The only failure the dialogue handles: it tells the customer, or falls
    back to what it knows, and keeps the conversation's data for a retry.
    """


class TicketRepository(Protocol):
    """Where confirmed requests are kept: what ``submit`` and ``status`` read and write."""

    def create(self, ticket: NewTicket, idempotency_key: str) -> tuple[Ticket, bool]:
        """The stored ticket, and whether this call created it (one ticket per key)."""

    def get(self, key: str) -> Optional[Ticket]:
        """The ticket with ``key``, None when there is none."""

    def list(
        self, *, limit: Optional[int] = None, email: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> Sequence[Ticket]:
        """Newest first, of one requester or one conversation when given."""

    def update_jsm_status(self, key: str, status: str, at: Optional[datetime]) -> None:
        """Remember the last JSM status seen, for when JSM cannot be reached."""


class AttachmentResolver(Protocol):
    """The attachment store, asked which files a conversation really sent."""

    def resolve(self, references: Iterable[Any], *, owner: str) -> list[dict[str, Any]]:
        """The store's own records of ``owner``'s files among ``references``; anything else is dropped."""


class LiveStatus(Protocol):
    """The help desk's current status of a request it holds (JSM)."""

    def current_status(self, key: str) -> tuple[str, Optional[datetime]]:
        """Status name and when it was reached; raises ``Unavailable`` when the help desk cannot tell."""


@dataclass(frozen=True)
class Letter:
    """One plain-text mail the dialogue composed; ``topic`` is what the mail quota counts per address."""

    to: str
    subject: str
    text: str
    topic: str = ""


Compose = Callable[[], Optional[Letter]]


class StatusMailer(Protocol):
    """Mail sent off the chat's path, so neither its delay nor its outcome shows in the answer."""

    def post(self, compose: Compose, requester: Optional[str] = None) -> bool:
        """Run ``compose`` and send its letter in the background; False when it was dropped.

        ``requester``: the conversation that asked; each may have only so many
        mails sent, so one chat cannot mail every ticket owner in turn.
        """

    def may_send(self, address: str, topic: str) -> bool:
        """Whether the quota would let one more letter to ``address`` about ``topic`` through now."""


class HandoffDesk(Protocol):
    """The help desk, when a customer asks for a person: the ticket to flag, and the flag itself.

    Only tickets this conversation created are ever found or flagged: a
    customer reaches no one else's request by asking for a person.
    """

    def open_ticket(self, conversation_id: str) -> Optional[TicketRef]:
        """The newest ticket the conversation created that the help desk has not resolved; None when none.

        Raises ``Unavailable`` when the tickets cannot be read now.
        """

    def flag(self, ticket_key: str, note: str, *, source: str) -> None:
        """Flag the ticket for human contact: ``note`` (the transcript) reaches the agents as an internal note.

        Idempotent on ``source``: the same request flagged twice writes one
        note. Raises ``Unavailable`` when the note cannot be stored now.
        """


@dataclass(frozen=True)
class DeskTicket:
    """A ticket of this conversation, named as the customer reads it.

    ``title``: «ECO-000123 · <its request type>» (``TicketRef.title``).
    ``since``: for a reply target, the id of the help-desk message that
    opened the wait (a newer one means the agent spoke again).
    ``request_type_id``: words that read as the ticket's own type are about it.
    """

    key: str
    title: str
    since: int = 0
    request_type_id: str = ""


class HelpDeskThread(Protocol):
    """The ticket's thread, as the conversation after the ticket needs it (bot/dialogue/followup.py).

    Every call names the conversation: only tickets it created are ever
    found, written to or rated, whatever a payload claims. Each raises
    ``Unavailable`` when the thread cannot be read or written now.
    """

    def reply_target(self, conversation_id: str) -> Optional[DeskTicket]:
        """The ticket whose agent waits for this conversation's answer (a recent comment, a waiting status)."""

    def forward(
        self, ticket_key: str, conversation_id: str, text: str, attachments: Sequence[Attachment], *, source: str
    ) -> bool:
        """The customer's message for the agent (a public comment); False when the ticket is not this conversation's.

        Idempotent on ``source`` (``customer:<message id>``): a retried action posts once.
        """

    def pending_csat(self, conversation_id: str) -> Optional[DeskTicket]:
        """The newest satisfaction question this conversation has not answered yet."""

    def rate(self, ticket_key: str, conversation_id: str, rating: int) -> bool:
        """Store the rating; False unless this conversation was asked about this ticket and has not rated it."""

    def comment(self, ticket_key: str, conversation_id: str, text: str) -> bool:
        """Store the comment that follows a rating; False unless this conversation rated the ticket, once."""

    def csat_note(self, ticket_key: str, conversation_id: str, body: str, *, source: str) -> bool:
        """The answer as an internal note for the agents, idempotent on ``source``; False for another's ticket."""


class ArticleSource(Protocol):
    """The knowledge base, asked for the articles that answer a question or a description.

    Blocking (JSM's base may take its timeout): called from the action's
    worker thread. Raises ``Unavailable`` when the base cannot answer; the
    dialogue then goes on as if nothing was found.
    """

    def search(self, text: str, request_type: Optional[str] = None) -> Sequence[Match]:
        """Up to three articles at or above the relevance threshold, best first."""


class DeflectionRecorder(Protocol):
    """Where what the knowledge base did in a conversation is kept, and the links that count a view.

    Never raises: a record that cannot be kept is logged by the adapter and
    the conversation goes on (the links are then the articles' plain addresses).
    """

    def offer(
        self,
        conversation_id: str,
        event: str,
        articles: Sequence[Article],
        *,
        request_type: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> list[str]:
        """Record ``articles`` shown (``offered`` or ``answered``); the link to show for each, in order."""

    def answer(
        self,
        conversation_id: str,
        event: str,
        article_ids: Sequence[str],
        *,
        request_type: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> None:
        """Record the customer's answer to articles shown: ``helpful`` or ``declined``."""

    def address(self, article: Article) -> str:
        """The article's plain address, counted as no view: what the ticket lists for the agent."""


@dataclass(frozen=True)
class Knowledge:
    """The knowledge base and its records, as the dialogue is handed them (None: no articles at all)."""

    articles: ArticleSource
    records: DeflectionRecorder
