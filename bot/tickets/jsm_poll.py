"""Polling JSM for agents' news, for sites where an admin webhook is not possible (and what a lost one missed).

Each round reads, for a bounded number of the requests the project
delivered, the public comments (``public=true&internal=false``: internal
ones are never even read) and the status history, and records what is new
through the same ``UpdateRecorder`` as the webhook: a comment the webhook
already brought is the same ``jsm-comment:<id>``, a status the same
canonical change, so each reaches the customer once. Rounds go around the
requests in turn, so a long list is covered over several rounds without
ever exceeding the request budget of one; JSM failing is logged once per
round and never stops the loop.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from bot.text import normalize
from bot.thread import ThreadError, ThreadMessage, Update
from bot.thread.model import DONE, STATUS, TO_CUSTOMER
from bot.tickets.errors import JsmError, JsmUnavailable, TicketStoreError
from bot.tickets.jsm_client import JsmClient, when_of
from bot.tickets.jsm_news import COMMENT_SOURCE, JsmPeople, comment_update, status_update
from bot.tickets.model import Ticket
from bot.tickets.store import TicketStore
from bot.tickets.updates import UpdateRecorder

logger = logging.getLogger(__name__)

# A request costs at most this many calls in a round (comments, status, its reporter the first time).
CALLS_PER_REQUEST = 3


def _last_status(known: list[ThreadMessage]) -> Optional[ThreadMessage]:
    statuses = [m for m in known if m.direction == TO_CUSTOMER and m.kind == STATUS]
    return statuses[-1] if statuses else None


def latest_change(history: list[dict[str, Any]]) -> Optional[tuple[str, Optional[str], datetime]]:
    """The status a request changed to last: (name, category, when); None while it keeps the one it was created with."""
    dated = [(when_of(h.get("statusDate")), h) for h in history if isinstance(h, dict)]
    changes = sorted(((at, h) for at, h in dated if at is not None), key=lambda pair: pair[0])
    if len(changes) < 2:
        return None
    at, entry = changes[-1]
    name = entry.get("status")
    if not isinstance(name, str) or not name.strip():
        return None
    category = entry.get("statusCategory")
    return name, category if isinstance(category, str) else None, at


class JsmPoller:
    """Reads the delivered requests' public comments and status, and records what is news."""

    def __init__(
        self,
        store: TicketStore,
        recorder: UpdateRecorder,
        client: JsmClient,
        people: JsmPeople,
        *,
        max_requests: int = 30,
        max_age: timedelta = timedelta(days=7),
        horizon: timedelta = timedelta(days=90),
        resolved_grace: timedelta = timedelta(days=7),
    ) -> None:
        """``max_requests``: JSM calls per round; ``max_age``: older news is history, not sent on a first poll;
        ``horizon``: requests created before it are no longer followed; ``resolved_grace``: how long a
        resolved request is still read (an agent may add a last word).
        """
        self.store = store
        self.recorder = recorder
        self.client = client
        self.people = people
        self.max_requests = max(CALLS_PER_REQUEST, max_requests)
        self.max_age = max_age
        self.horizon = horizon
        self.resolved_grace = resolved_grace
        self._cursor: Optional[str] = None  # the last request polled: the next round starts after it

    def _in_turn(self, tickets: list[Ticket]) -> list[Ticket]:
        keys = [t.key for t in tickets]
        start = keys.index(self._cursor) + 1 if self._cursor in keys else 0
        return tickets[start:] + tickets[:start]

    def _resolved_long_ago(self, known: list[ThreadMessage], now: datetime) -> bool:
        last = _last_status(known)
        if last is None or last.status_category != DONE:
            return False
        return (last.happened_at or last.created_at) < now - self.resolved_grace

    def poll_once(self) -> int:
        """One round; how many thread messages it recorded."""
        now = datetime.now(timezone.utc)
        try:
            tickets = self.store.in_jsm(created_since=now - self.horizon)
        except TicketStoreError as exc:
            logger.error("JSM polling: %s", exc)
            return 0
        budget_end = self.client.calls + self.max_requests
        recorded = 0
        errors: list[str] = []
        for ticket in self._in_turn(tickets):
            if self.client.calls + CALLS_PER_REQUEST > budget_end:
                break
            self._cursor = ticket.key
            try:
                known = self.recorder.thread.messages(ticket.key)
                if not self._resolved_long_ago(known, now):
                    recorded += self._poll(ticket, known, now)
            except JsmUnavailable as exc:
                errors.append(f"{ticket.key}: {exc}")
                break  # JSM is down or asks to wait: the next round goes on from here
            except JsmError as exc:
                errors.append(f"{ticket.key}: {exc}")
            except (TicketStoreError, ThreadError) as exc:
                logger.error("JSM polling: %s", exc)
                break
        if errors:
            logger.warning("JSM polling: %d error(s) this round; the first: %s", len(errors), errors[0])
        return recorded

    def _poll(self, ticket: Ticket, known: list[ThreadMessage], now: datetime) -> int:
        jsm_key = str(ticket.jsm_key)
        oldest = now - self.max_age
        seen = {m.source for m in known}
        news: list[Update] = []
        for comment in self.client.public_comments(jsm_key):
            comment_id = str(comment.get("id") or "").strip()[:100]
            if not comment_id or comment.get("public") is not True or f"{COMMENT_SOURCE}{comment_id}" in seen:
                continue
            happened = when_of(comment.get("created"))
            if happened is not None and happened < oldest:
                continue
            if self.people.is_echo(jsm_key, comment.get("author"), comment.get("body")):
                continue
            news.append(comment_update(jsm_key, comment_id, comment.get("body"), comment.get("author"), happened))
        change = latest_change(self.client.status_history(jsm_key))
        last = _last_status(known)
        if change is not None and change[2] >= oldest:
            name, category, at = change
            if last is None or normalize(last.body) != normalize(name):
                news.append(status_update(jsm_key, name, category, at))
        news.sort(key=lambda u: u.happened_at or now)
        return sum(len(self.recorder.record(update)) for update in news)
