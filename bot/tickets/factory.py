"""The tickets room's services built from the settings: what the composition root calls.

Nothing here is kept between calls: each process (action server, web server,
delivery worker, CLI) builds its services once at start-up and hands them
to who needs them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

from bot.attachments import AttachmentStore
from bot.catalog import Catalog
from bot.settings import Settings
from bot.settings.tickets import TicketsSettings
from bot.tickets.delivery import TicketDelivery
from bot.tickets.errors import JsmConfigError
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_mapping import MappingFile
from bot.tickets.model import Ticket
from bot.tickets.outbox_queue import OutboxQueue
from bot.tickets.store import TicketStore
from bot.tickets.worker import Worker, heartbeat_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketServices:
    """What the assistant's processes use: the repository, the outbox queue, and live JSM statuses."""

    store: TicketStore
    queue: OutboxQueue
    live_status: Optional[JsmClient]  # None unless JSM is the help desk and configured


def build_ticket_store(settings: Settings, catalog: Catalog) -> TicketStore:
    """Tickets keyed with the catalog's prefix; they wait in the outbox when JSM is the help desk."""
    return TicketStore(settings.tickets_db_url, prefix=catalog.ticket_prefix, outbox=settings.tickets.uses_jsm)


def live_status_client(tickets: TicketsSettings) -> Optional[JsmClient]:
    """A client for customers' status questions when JSM is the help desk: short timeout, so they never wait long."""
    if not tickets.uses_jsm:
        return None
    try:
        return JsmClient(tickets.jsm, timeout=tickets.jsm.status_timeout)
    except JsmConfigError as exc:
        logger.warning("JSM status lookups disabled: %s", exc)
        return None


def build_ticket_services(settings: Settings, catalog: Catalog) -> TicketServices:
    return TicketServices(
        store=build_ticket_store(settings, catalog),
        queue=OutboxQueue(settings.tickets_db_url),
        live_status=live_status_client(settings.tickets),
    )


def build_worker(
    settings: Settings,
    catalog: Catalog,
    *,
    attachments: AttachmentStore,
    transcripts: Callable[[Ticket], str],
    heartbeat: bool = True,
) -> Worker:
    """The delivery worker; raises ``JsmConfigError`` naming the ``JSM_*`` variables still unset.

    A missing mapping file only warns: tickets wait in the queue until
    ``python -m bot jsm sync`` writes it (the worker re-reads it).
    """
    client = JsmClient(settings.tickets.jsm)
    mapping = MappingFile(settings.tickets.jsm.mapping_file)
    try:
        mapping.get()
    except JsmConfigError as exc:
        logger.warning("%s (tickets wait until it exists)", exc)
    queue = OutboxQueue(settings.tickets_db_url)
    outbox = settings.tickets.outbox
    delivery = TicketDelivery(
        queue, client, mapping, catalog=catalog, attachments=attachments, transcripts=transcripts, settings=outbox
    )
    return Worker(queue, delivery, outbox, heartbeat_path(settings) if heartbeat else None)
