"""What, of what happens on a JSM request, is news for the customer; shared by the webhook and the poller.

A public comment by an agent is news; so is a status change. Internal
comments never are. Neither are the comments the customer wrote
(the request's reporter, in the portal) nor the ones this project wrote
(the customer's chat replies, posted by the integration account): telling
the customer what they just said would be an echo. Who the integration
account and each request's reporter are is asked of JSM once and kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from bot.privacy import mask_cards
from bot.thread import Update
from bot.thread.model import COMMENT, STATUS
from bot.tickets.jsm_client import JsmClient

# How the customer's replies start in JSM (bot/tickets/desk_delivery.py): never news for the customer.
REPLY_PREFIX = "Respuesta del cliente por el chat"
COMMENT_SOURCE = "jsm-comment:"
STATUS_SOURCE = "jsm-status:"
BODY_MAX = 30000
REPORTERS_KEPT = 5000


def jira_time(raw: Any) -> Optional[datetime]:
    """A Jira platform timestamp («2024-07-10T01:53:58.190-0500») as an aware datetime."""
    if not isinstance(raw, str):
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(raw.strip(), layout).astimezone(timezone.utc)
        except ValueError:
            continue
    return None


def epoch_millis(raw: Any) -> Optional[datetime]:
    """A JSON number of milliseconds since the epoch (a webhook's ``timestamp``); None if it is not one."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(raw / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def text_of(body: Any) -> str:
    """A comment's text: the string Jira sends (wiki markup), or the text nodes of an ADF document."""
    if isinstance(body, str):
        return body
    parts: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 50 or not isinstance(node, Mapping):
            return
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            parts.append(node["text"])
        elif node.get("type") == "hardBreak":
            parts.append("\n")
        children = node.get("content")
        if isinstance(children, list):
            for child in children:
                walk(child, depth + 1)
        if node.get("type") in ("paragraph", "heading", "listItem"):
            parts.append("\n")

    walk(body, 0)
    return "".join(parts).strip()


def display_name(author: Any) -> Optional[str]:
    if isinstance(author, Mapping) and isinstance(author.get("displayName"), str):
        return author["displayName"].strip()[:255] or None
    return None


def account_of(author: Any) -> Optional[str]:
    if isinstance(author, Mapping) and isinstance(author.get("accountId"), str):
        return author["accountId"] or None
    return None


def comment_update(jsm_key: str, comment_id: str, body: Any, author: Any, happened_at: Optional[datetime]) -> Update:
    """An agent's public comment as news for the customer (card numbers masked before it is kept)."""
    text = mask_cards(text_of(body).strip())[:BODY_MAX]
    return Update(
        ticket=jsm_key,
        source=f"{COMMENT_SOURCE}{comment_id}",
        kind=COMMENT,
        body=text,
        author=display_name(author),
        happened_at=happened_at,
        public=True,
    )


def status_update(jsm_key: str, name: str, category: Optional[str], happened_at: Optional[datetime]) -> Update:
    """A status change as news; the thread gives it its canonical id (the webhook and the poll write the same)."""
    millis = int(happened_at.timestamp() * 1000) if happened_at else 0
    return Update(
        ticket=jsm_key,
        source=f"{STATUS_SOURCE}{millis}",
        kind=STATUS,
        body=name.strip()[:255],
        happened_at=happened_at,
        status_category=(category or "").strip().lower() or None,
    )


class JsmPeople:
    """Who wrote a comment, as far as echoes go: the integration account and each request's reporter.

    Asked of JSM once (``GET /rest/api/3/myself``, the request's reporter)
    and kept by this object, which each process builds at start-up.
    """

    def __init__(self, client: JsmClient) -> None:
        self.client = client
        self._own: Optional[str] = None
        self._reporters: OrderedDict[str, Optional[str]] = OrderedDict()
        self._lock = threading.Lock()

    def own_account(self) -> Optional[str]:
        """The integration account's accountId (raises ``JsmError`` while JSM cannot say)."""
        if self._own is None:
            self._own = account_of(self.client.myself())
        return self._own

    def reporter(self, jsm_key: str) -> Optional[str]:
        """The accountId of the customer the request was raised for (raises ``JsmError`` while JSM cannot say)."""
        with self._lock:
            if jsm_key in self._reporters:
                self._reporters.move_to_end(jsm_key)
                return self._reporters[jsm_key]
        found = account_of(self.client.get_request(jsm_key).get("reporter"))
        with self._lock:
            self._reporters[jsm_key] = found
            while len(self._reporters) > REPORTERS_KEPT:
                self._reporters.popitem(last=False)
        return found

    def is_echo(self, jsm_key: str, author: Any, body: Any, reporter: Optional[str] = None) -> bool:
        """Whether a comment was written by the customer or by this project, so it must not go back to the chat.

        ``reporter``: the reporter's accountId when the caller already
        knows it (a webhook that carries the issue's reporter).
        """
        if text_of(body).lstrip().startswith(REPLY_PREFIX):
            return True
        email = author.get("emailAddress") if isinstance(author, Mapping) else None
        if isinstance(email, str) and email.strip().lower() == self.client.settings.email.strip().lower():
            return True
        account = account_of(author)
        if account is None:
            return False
        if account == reporter or account == self.own_account():
            return True
        return reporter is None and account == self.reporter(jsm_key)
