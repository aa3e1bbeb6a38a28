"""Tickets: the record a confirmed conversation produces, and where it is kept."""

from bot.tickets.model import NewTicket, Ticket
from bot.tickets.store import TicketStore, TicketStoreError

__all__ = ["NewTicket", "Ticket", "TicketStore", "TicketStoreError"]
