"""What arrives with a message besides its words: files, and contact data the channel vouches for."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from bot.catalog import Catalog
from bot.dialogue.slots import ATTACHMENT, PHONE
from bot.dialogue.turn import Say, Turn


def attachments_in(
    turn: Turn, slots: Mapping[str, Any], catalog: Catalog
) -> tuple[Optional[list[dict[str, Any]]], list[Say]]:
    """Files delivered with this message, added to those already attached (None: no new file).

    ``metadata["attachments"]`` holds records the action layer has already
    resolved from the attachment store (never paths sent by a client).
    """
    new = [dict(a) for a in turn.metadata.get("attachments") or () if isinstance(a, Mapping) and a.get("id")]
    if not new:
        return None, []
    current = list(slots.get(ATTACHMENT) or [])
    known = {a.get("id") for a in current}
    new = [a for a in new if a["id"] not in known]
    limit = catalog.attachment_field.max_files
    taken = new[: max(0, limit - len(current))]
    says = []
    if taken:
        names = ", ".join(a["name"] for a in taken)
        says.append(Say("utter_attachment_received", {"names": names, "count": len(current) + len(taken)}))
    if len(new) > len(taken):
        says.append(Say("utter_attachment_limit", {"max_files": limit}))
    return current + taken, says


def channel_contacts(turn: Turn, slots: Mapping[str, Any]) -> dict[str, Any]:
    """Contact data the channel itself vouches for (the WhatsApp sender's number).

    It fills the phone instead of asking for it; the summary shows it, so the
    customer confirms or corrects it there.
    """
    phone = turn.metadata.get("sender_phone")
    if phone and not slots.get(PHONE):
        return {PHONE: str(phone)}
    return {}
