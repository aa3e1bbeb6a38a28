"""Customer data out of every log line of the Rasa process.

Replaces the logging module's record factory (``logging.setLogRecordFactory``,
public API; the previous factory still builds the record) so each record's
message is formatted once and masked (``bot.privacy.mask_for_log``: cards,
e-mails, phones) before any handler sees it.

Why: Rasa logs the customer's raw text when a message fails
(``rasa.core.channels.rest``: «An exception occured while handling user
message '…'»), and DEBUG lines carry slots and events; a card number or a
phone must never reach a log file. Always on.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from bot.privacy import mask_for_log

PATCH = "log_masking"
_MARK = "_soporte_ecollect_masking"


def masking(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """``factory`` with each record's message formatted and masked."""

    def build(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  # a bad format string: logging reports it itself later
            return record
        masked = mask_for_log(message)
        if masked != message or record.args:
            record.msg, record.args = masked, ()
        return record

    setattr(build, _MARK, True)
    return build


def install() -> None:
    """Mask every record created from now on in this process (once)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, _MARK, False):
        logging.setLogRecordFactory(masking(current))
