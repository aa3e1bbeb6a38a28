"""The last JSM status seen for each ticket, kept on its row.

When a customer asks how their request is going, JSM answers live; when JSM
cannot be reached, the status recorded here (by the last live answer, or by
the delivery worker when it created the request) answers instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import update

from bot.tickets.table import TicketRow, TicketTable


class JsmStatusCache:
    """Writes the JSM status columns of the tickets table; reading them is the ticket's ``jsm_status``."""

    def __init__(self, table: TicketTable) -> None:
        self.table = table

    def update(self, key: str, status: str, at: Optional[datetime]) -> None:
        statement = update(TicketRow).where(TicketRow.key == key).values(jsm_status=status, jsm_status_at=at)
        self.table.write("guardar el estado de JSM", statement)
