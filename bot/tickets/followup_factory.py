"""The tickets room's part of «the conversation goes on after the ticket», built from the settings.

What the composition root and the process entry points call: the web
server's JSM webhook, and the follow-up worker's JSM side (delivering the
customer's replies and notes to JSM, polling JSM for agents' news). With
the embedded store as the help desk there is no JSM side: the CLI records
agents' news (bot/tickets/cli.py) and the thread keeps the customer's
replies as the help desk's own copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from bot.attachments import AttachmentStore
from bot.settings import Settings
from bot.thread import TicketThread
from bot.tickets.desk_delivery import DeskDelivery
from bot.tickets.errors import JsmConfigError
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_news import JsmPeople
from bot.tickets.jsm_poll import JsmPoller
from bot.tickets.jsm_webhook import DeliveryLog, JsmWebhook
from bot.tickets.store import TicketStore
from bot.tickets.updates import UpdateRecorder

logger = logging.getLogger(__name__)


def build_jsm_webhook(settings: Settings, store: TicketStore) -> Optional[JsmWebhook]:
    """The web server's ``/webhooks/jsm`` handler; None (the route answers 404) without ``JSM_WEBHOOK_SECRET``.

    Its client asks JSM who wrote a comment (never echo the customer's own
    words), with the short timeout of status lookups: Jira waits 20 s at most.
    """
    jsm = settings.tickets.jsm
    if not jsm.webhook_secret:
        return None
    if not settings.tickets.uses_jsm:
        logger.warning("JSM_WEBHOOK_SECRET is set but TICKETS_BACKEND is not jsm: /webhooks/jsm stays off")
        return None
    try:
        people: Optional[JsmPeople] = JsmPeople(JsmClient(jsm, timeout=jsm.status_timeout))
    except JsmConfigError as exc:
        logger.warning("JSM webhook: comments wait until JSM is configured (%s)", exc)
        people = None
    recorder = UpdateRecorder(store, TicketThread(settings.tickets_db_url))
    return JsmWebhook(jsm.webhook_secret, DeliveryLog(settings.tickets_db_url), recorder, people)


@dataclass(frozen=True)
class JsmFollowup:
    """The follow-up worker's JSM side: a round that delivers to JSM, and the poller it runs every ``poll_seconds``.

    ``desk.run_once(worker_id)`` is one of the worker's rounds;
    ``poller.poll_once()`` its poll (None: polling is off, ``JSM_POLL_SECONDS=0``).
    """

    desk: DeskDelivery
    poller: Optional[JsmPoller]
    poll_seconds: float


def build_jsm_followup(
    settings: Settings, store: TicketStore, thread: TicketThread, attachments: AttachmentStore
) -> Optional[JsmFollowup]:
    """None unless JSM is the help desk; raises ``JsmConfigError`` naming the ``JSM_*`` variables still unset.

    Separate clients for delivering and polling: each keeps its own count
    of calls and its own connection.
    """
    tickets = settings.tickets
    if not tickets.uses_jsm:
        return None
    desk = DeskDelivery(thread, JsmClient(tickets.jsm), attachments, tickets=store, settings=tickets.outbox)
    poller = None
    if tickets.jsm_poll_seconds > 0:
        client = JsmClient(tickets.jsm)
        poller = JsmPoller(store, UpdateRecorder(store, thread), client, JsmPeople(client))
    return JsmFollowup(desk, poller, tickets.jsm_poll_seconds)
