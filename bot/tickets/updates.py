"""Recording what the help desk says about a ticket after its creation, whoever reports it.

Three sources report news about a request: JSM's webhook, polling JSM, and
the CLI when the embedded store is the help desk. Each names the ticket its
own way (JSM's issue key, or ours), and the same news may come twice (the
webhook and the poll). This module resolves the ticket, hands the news to
the thread (bot/thread/store.py, which keeps each piece once, in order) and
keeps the ticket's status up to date, so «¿cómo va mi solicitud?» answers
what the customer was just told.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from bot.sqlengine import as_utc
from bot.thread import ThreadMessage, TicketRef, TicketThread, Update
from bot.thread.model import STATUS, TO_CUSTOMER
from bot.tickets.model import Ticket
from bot.tickets.store import TicketStore

logger = logging.getLogger(__name__)

# JSM's issue keys and ours: a project key, a dash, a number. Anything else names no ticket.
TICKET_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,19}-[0-9]{1,12}$")
# Sources whose ``ticket`` is always JSM's issue key.
JSM_SOURCES = ("jsm-",)


def ticket_ref(ticket: Ticket) -> TicketRef:
    """The ticket as the thread knows it: where its conversation is, and how the customer sees it named."""
    return TicketRef(
        key=ticket.key,
        conversation_id=ticket.conversation_id,
        channel=ticket.channel,
        request_type_id=ticket.request_type_id,
        request_type=ticket.request_type,
        jsm_key=ticket.jsm_key,
    )


class UpdateRecorder:
    """Resolves the ticket an ``Update`` names, records it once, and keeps the ticket's status current."""

    def __init__(self, store: TicketStore, thread: TicketThread) -> None:
        self.store = store
        self.thread = thread

    def resolve(self, update: Update) -> Optional[Ticket]:
        """The ticket ``update`` is about: by JSM's key first, then ours (never ours for news from JSM).

        JSM's keys are not zero-padded and ours are, but a JSM project with
        our prefix reaches six digits too: news from JSM names JSM's key.
        """
        name = update.ticket.strip().upper()
        if not TICKET_KEY.match(name):
            return None
        ticket = self.store.by_jsm_key(name)
        if ticket is None and not update.source.startswith(JSM_SOURCES):
            ticket = self.store.get(name)
        return ticket

    def record(self, update: Update) -> list[ThreadMessage]:
        """Keep ``update`` for the customer; the new thread messages (none for news already kept or unknown)."""
        ticket = self.resolve(update)
        if ticket is None:
            logger.info("news about an unknown ticket ignored (%s, %s)", update.ticket[:60], update.source[:80])
            return []
        if update.kind == STATUS and self._older_than_last_status(ticket, update):
            logger.info("%s: status «%s» older than the last one recorded; ignored", ticket.key, update.body[:60])
            return []
        messages = self.thread.record(update, ticket_ref(ticket))
        status = next((m for m in messages if m.kind == STATUS), None)
        if status is not None:
            self._keep_status(ticket, status)
        return messages

    def _older_than_last_status(self, ticket: Ticket, update: Update) -> bool:
        """A status change reported after a newer one (a late webhook, a replayed delivery) is history, not news."""
        happened = as_utc(update.happened_at)
        if happened is None:
            return False
        statuses = [m for m in self.thread.messages(ticket.key) if m.direction == TO_CUSTOMER and m.kind == STATUS]
        last = statuses[-1].happened_at if statuses else None
        return last is not None and happened < last

    def _keep_status(self, ticket: Ticket, message: ThreadMessage) -> None:
        at = message.happened_at or message.created_at
        if ticket.jsm_key:
            self.store.update_jsm_status(ticket.key, message.body, at)
        else:
            self.store.set_status(ticket.key, message.body, at)
