"""A ticket's thread: what the help desk says after the ticket, what the customer answers, and CSAT.

``model`` (what a message is), ``table`` (its tables in the tickets
database), ``store`` (``TicketThread``: recording news once, claiming
messages for delivery in order per ticket), ``csat`` (``CsatBook``).
Level 1: the tickets room records into it, the channels deliver from it,
the dialogue reads it through its ports.
"""

from bot.thread.csat import CsatBook
from bot.thread.model import ReplyTarget, ThreadMessage, TicketRef, Update
from bot.thread.store import TicketThread
from bot.thread.table import ThreadError

__all__ = ["CsatBook", "ReplyTarget", "ThreadError", "ThreadMessage", "TicketRef", "TicketThread", "Update"]
