"""Removing the files no ticket took, on a timer of the web server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable, Optional, Protocol, Sequence

from bot.attachments.records import StoredAttachment, attachment_id_of
from bot.attachments.store import AttachmentStore
from bot.settings.web import UploadLimits

logger = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 300.0


class TicketFiles(Protocol):
    """What the sweep reads of the ticket store (``bot.tickets.TicketStore``): tickets and their attachment records.

    A protocol, not an import: the tickets room sits above this module.
    """

    def list(self, *, conversation_id: Optional[str] = None) -> Sequence[Any]: ...


def referenced_ids(tickets: TicketFiles, candidates: Iterable[StoredAttachment]) -> set[str]:
    """Ids among ``candidates`` that some ticket references.

    A file can only reach a ticket of the conversation that owns it, so only
    those conversations' tickets are read; files from before owners existed
    are checked against every ticket.
    """
    candidates = list(candidates)
    owners = {c.owner for c in candidates}
    if None in owners:
        tickets_read = tickets.list()
    else:
        tickets_read = [t for owner in sorted(o for o in owners if o) for t in tickets.list(conversation_id=owner)]
    referenced = {attachment_id_of(a) for t in tickets_read for a in t.attachments}
    return {c.id for c in candidates if c.id in referenced}


def sweep_unattached(store: AttachmentStore, tickets: TicketFiles, now: Optional[float] = None) -> list[str]:
    """Remove the files no ticket took within ``UPLOAD_UNATTACHED_HOURS``; returns their ids.

    Never removes a file younger than the limit or one a ticket references
    (a ticket store that cannot be read stops the sweep: TicketStoreError).
    """
    limits = store.limits or UploadLimits()
    if not limits.window_seconds:
        return []
    cutoff = (store.clock() if now is None else now) - limits.window_seconds
    candidates = store.unattached_before(cutoff)
    if not candidates:
        return []
    keep = referenced_ids(tickets, candidates)
    store.mark_attached(keep)
    return store.sweep(cutoff, keep)


async def sweep_periodically(store: AttachmentStore, tickets: TicketFiles, every: float = SWEEP_EVERY_SECONDS) -> None:
    """The web server's background sweep: now, then every ``every`` seconds, until cancelled.

    ``tickets`` is the web server's own ticket store, handed in.
    """
    while True:
        try:
            removed = await asyncio.to_thread(sweep_unattached, store, tickets)
            if removed:
                logger.info("attachments: removed %d file(s) no ticket took", len(removed))
        except Exception:  # noqa: BLE001 - the next round tries again; the server keeps serving
            logger.exception("attachments: sweep failed")
        await asyncio.sleep(every)
