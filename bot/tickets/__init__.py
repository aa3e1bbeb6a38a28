"""Tickets: the record a confirmed conversation produces, where it is kept, and its delivery to JSM.

Modules, one job each: ``model`` (what a ticket holds), ``table`` (its SQL
table and the row <-> ticket mapping), ``store`` (the repository),
``outbox_queue`` (claiming tickets for delivery), ``status_cache`` (the last
JSM status seen), ``jsm_client`` / ``jsm_mapping`` / ``jsm_sync`` (Jira
Service Management), ``delivery_text`` / ``delivery`` / ``worker`` (the
outbox worker), ``errors``, ``factory`` (built from the settings), ``cli``.
``jsm`` and ``outbox`` only re-export names at their old import paths.
"""

from bot.tickets.errors import TicketStoreError
from bot.tickets.model import NewTicket, Ticket
from bot.tickets.store import TicketStore

__all__ = ["NewTicket", "Ticket", "TicketStore", "TicketStoreError"]
