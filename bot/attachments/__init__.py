"""Files customers attach (the portal's «Adjunto»), on every channel.

Channels save what they receive here and pass only the attachment's id in
the message metadata (``metadata["attachments"] = [{"id": ...}]``); the form
resolves ids back to stored records, so a client can never point a ticket at
an arbitrary server path. Limits (size, count, types) come from the catalog's
attachment field.

Every file belongs to the conversation that sent it (``owner``): only that
conversation can put it in a ticket, and the delivery worker re-reads it by
id from under the store's root, never from a path a record claims. Files
that no ticket took are removed after ``UPLOAD_UNATTACHED_HOURS``, and a
conversation may keep only so many recent files (``UPLOAD_MAX_*``).
"""

from bot.attachments.policy import AttachmentPolicy
from bot.attachments.records import (
    CARD_FILE_MASK,
    AttachmentRefused,
    StoredAttachment,
    attachment_id_of,
    human_size,
    safe_filename,
)
from bot.attachments.store import AttachmentStore
from bot.attachments.sweep import TicketFiles, referenced_ids, sweep_periodically, sweep_unattached

__all__ = [
    "CARD_FILE_MASK",
    "AttachmentPolicy",
    "AttachmentRefused",
    "AttachmentStore",
    "StoredAttachment",
    "TicketFiles",
    "attachment_id_of",
    "human_size",
    "referenced_ids",
    "safe_filename",
    "sweep_periodically",
    "sweep_unattached",
]
