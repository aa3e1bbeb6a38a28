"""The project's services seen through the dialogue's ports (``bot/dialogue/ports.py``).

The dialogue handles one failure, ``Unavailable``, and composes plain
``Letter`` objects; the ticket store, the JSM client and the mail threads
raise and take their own types. These wrappers translate at the border, so
neither side imports the other's internals.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Iterable, Optional, Sequence
from urllib.parse import quote

from bot.attachments import AttachmentStore
from bot.dialogue.ports import Compose, DeskTicket, Letter, Unavailable
from bot.kb import Article, KnowledgeBase, Match
from bot.kb.deflections import DeflectionError, DeflectionLog
from bot.mail import Mail, Postman
from bot.thread import CsatBook, ThreadError, TicketRef, TicketThread
from bot.thread.model import CSAT, DONE, HANDOFF, STATUS, TO_CUSTOMER
from bot.tickets.errors import JsmError, TicketStoreError
from bot.tickets.jsm_client import JsmClient
from bot.tickets.model import Attachment, NewTicket, Ticket
from bot.tickets.store import TicketStore

logger = logging.getLogger(__name__)


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


def ticket_ref(ticket: Ticket) -> TicketRef:
    """The ticket as its thread names it."""
    return TicketRef(
        key=ticket.key,
        conversation_id=ticket.conversation_id,
        channel=ticket.channel,
        request_type_id=ticket.request_type_id,
        request_type=ticket.request_type,
        jsm_key=ticket.jsm_key,
    )


class HandoffThread:
    """A ``HandoffDesk``: the conversation's tickets in the store, flagged with a ``HANDOFF`` note in their thread.

    The note is an internal note for the agents: with JSM as the help desk
    (``to_jsm``) it waits in the thread's outbox for the delivery worker,
    which posts it as an internal comment and labels the request; with the
    embedded store the thread itself is the help desk (review app, CLI).
    """

    # The conversation's newest tickets looked at: an older one still open is not what a customer means now.
    RECENT = 10

    def __init__(self, store: TicketStore, thread: TicketThread, *, to_jsm: bool) -> None:
        self.store = store
        self.thread = thread
        self.to_jsm = to_jsm

    def open_ticket(self, conversation_id: str) -> Optional[TicketRef]:
        try:
            tickets = self.store.list(limit=self.RECENT, conversation_id=conversation_id)
            news = self.thread.for_conversation(conversation_id) if tickets else []
        except (TicketStoreError, ThreadError) as exc:
            raise Unavailable(str(exc)) from exc
        latest_status: dict[str, str] = {}
        for message in news:  # oldest first: the last status of each ticket wins
            if message.direction == TO_CUSTOMER and message.kind == STATUS:
                latest_status[message.ticket_key] = message.status_category or ""
        for ticket in tickets:  # newest first
            if latest_status.get(ticket.key) != DONE:
                return ticket_ref(ticket)
        return None

    def flag(self, ticket_key: str, note: str, *, source: str) -> None:
        try:
            ticket = self.store.get(ticket_key)
            if ticket is None:
                raise Unavailable(f"la solicitud {ticket_key} no está en el almacén de tickets")
            self.thread.note_for_desk(ticket_ref(ticket), HANDOFF, note, source=source, to_jsm=self.to_jsm)
        except (TicketStoreError, ThreadError) as exc:
            raise Unavailable(str(exc)) from exc


class DeskThread:
    """A ``HelpDeskThread``: the ticket thread and the CSAT book, only ever for the asking conversation's tickets.

    Each ticket is read from the store before anything is written for it:
    one another conversation created is never found, written to or rated,
    whatever a slot or a payload names. ``to_jsm``: JSM is the help desk, so
    the customer's answers and the CSAT notes wait in the thread's outbox
    for the delivery worker; otherwise the thread itself is the help desk.
    """

    def __init__(
        self,
        store: TicketStore,
        thread: TicketThread,
        csat: CsatBook,
        *,
        to_jsm: bool,
        reply_window: timedelta,
        waiting_statuses: Iterable[str],
        files: Optional[AttachmentStore] = None,
    ) -> None:
        self.store = store
        self.thread = thread
        self.csat = csat
        self.files = files
        self.to_jsm = to_jsm
        self.reply_window = reply_window
        self.waiting_statuses = tuple(waiting_statuses)

    def _ref(self, ticket_key: str, conversation_id: str) -> Optional[TicketRef]:
        ticket = self.store.get(ticket_key)
        if ticket is None or not conversation_id or ticket.conversation_id != conversation_id:
            return None
        return ticket_ref(ticket)

    def reply_target(self, conversation_id: str) -> Optional[DeskTicket]:
        try:
            target = self.thread.reply_target(
                conversation_id, window=self.reply_window, waiting_statuses=self.waiting_statuses
            )
            ref = self._ref(target.ticket_key, conversation_id) if target is not None else None
        except (TicketStoreError, ThreadError) as exc:
            raise Unavailable(str(exc)) from exc
        if ref is None or target is None:
            return None
        return DeskTicket(ref.key, ref.title, target.since, ref.request_type_id)

    def forward(
        self, ticket_key: str, conversation_id: str, text: str, attachments: Sequence[Attachment], *, source: str
    ) -> bool:
        try:
            ref = self._ref(ticket_key, conversation_id)
            if ref is None:
                return False
            self.thread.from_customer(ref, text, source=source, attachments=attachments, to_jsm=self.to_jsm)
            if self.files is not None:
                # A reply's files wait in the thread, not in a ticket: the upload sweep must keep them.
                self.files.mark_attached(a.id for a in attachments if a.id)
        except (TicketStoreError, ThreadError) as exc:
            raise Unavailable(str(exc)) from exc
        return True

    def pending_csat(self, conversation_id: str) -> Optional[DeskTicket]:
        try:
            answer = self.csat.pending(conversation_id)
        except ThreadError as exc:
            raise Unavailable(str(exc)) from exc
        if answer is None:
            return None
        ref = TicketRef(
            key=answer.ticket_key,
            conversation_id=answer.conversation_id,
            channel=answer.channel,
            request_type_id=answer.request_type_id,
            request_type=answer.request_type,
        )
        return DeskTicket(ref.key, ref.title)

    def rate(self, ticket_key: str, conversation_id: str, rating: int) -> bool:
        try:
            return self.csat.rate(ticket_key, conversation_id, rating)
        except ThreadError as exc:
            raise Unavailable(str(exc)) from exc

    def comment(self, ticket_key: str, conversation_id: str, text: str) -> bool:
        try:
            return self.csat.comment(ticket_key, conversation_id, text)
        except ThreadError as exc:
            raise Unavailable(str(exc)) from exc

    def csat_note(self, ticket_key: str, conversation_id: str, body: str, *, source: str) -> bool:
        try:
            ref = self._ref(ticket_key, conversation_id)
            if ref is None:
                return False
            self.thread.note_for_desk(ref, CSAT, body, source=source, to_jsm=self.to_jsm)
        except (TicketStoreError, ThreadError) as exc:
            raise Unavailable(str(exc)) from exc
        return True


class KbArticles:
    """An ``ArticleSource``: the knowledge base; any failure of it reported as ``Unavailable``."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def search(self, text: str, request_type: Optional[str] = None) -> Sequence[Match]:
        try:
            return self.kb.search(text, request_type)
        except Exception as exc:  # any failure of the base (a folder unreadable, a bug): the customer goes on
            logger.exception("base de conocimiento: la búsqueda falló; sigo sin artículos")
            raise Unavailable(str(exc)) from exc


class DeflectionBook:
    """A ``DeflectionRecorder``: the deflection log, and links that count a view through the web app.

    ``public_url``: the web server as customers reach it. Each article shown
    gets ``{public_url}/ayuda/v/{token}`` (the web app counts the view and
    redirects); when the log cannot be written, the article's own address
    (JSM) or the web app's page of an embedded article, uncounted. A failing
    log is reported once, not for every message, until it works again.
    """

    def __init__(self, log: DeflectionLog, public_url: str) -> None:
        self.log = log
        self.public_url = public_url.rstrip("/")
        self._lock = threading.Lock()
        self._failing = False

    def address(self, article: Article) -> str:
        return article.url or f"{self.public_url}/ayuda/articulos/{quote(article.id, safe='')}"

    def offer(
        self,
        conversation_id: str,
        event: str,
        articles: Sequence[Article],
        *,
        request_type: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> list[str]:
        try:
            tokens = self.log.offer(conversation_id, event, articles, request_type=request_type, channel=channel)
        except DeflectionError as exc:
            self._failed(exc)
            return [self.address(a) for a in articles]
        self._worked()
        return [f"{self.public_url}/ayuda/v/{quote(token, safe='')}" for token in tokens]

    def answer(
        self,
        conversation_id: str,
        event: str,
        article_ids: Sequence[str],
        *,
        request_type: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> None:
        try:
            self.log.answer(conversation_id, event, article_ids, request_type=request_type, channel=channel)
        except DeflectionError as exc:
            self._failed(exc)
        else:
            self._worked()

    def _failed(self, exc: DeflectionError) -> None:
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            logger.error("%s; los enlaces a los artículos se muestran sin contar visitas hasta que se pueda", exc)
        else:
            logger.debug("registro de artículos sigue fallando: %s", exc)

    def _worked(self) -> None:
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered:
            logger.warning("el registro de artículos volvió a funcionar")
