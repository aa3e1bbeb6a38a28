"""Reading a Bot Framework activity: who sent it, what they wrote, which files, where replies go.

Activities are JSON from the network: every field may be missing or of
another type, and nothing read here may raise on that.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import quote

from bot.channels.identity import TEAMS_PREFIX, valid_sender_id
from bot.channels.teams.cards import CHOICE_ID

logger = logging.getLogger(__name__)

# Tracker keys of Teams customers: the channel's name, then Teams' user id.
# Other channels refuse sender ids with this prefix (bot.channels.identity,
# the one list of those shapes), so nobody can open (or read) a Teams
# customer's conversation through them.
SENDER_PREFIX = TEAMS_PREFIX
MAX_SENDER_ID_CHARS = 200  # Teams ids are ~90 chars; trackers store 255
FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
# A card's payload is a Rasa intent with a few entities (~80 chars); a longer one is not ours and is
# ignored whole (cutting it could make another valid payload).
MAX_PAYLOAD_CHARS = 500

_MENTION = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def activity_tenants(activity: Mapping[str, Any]) -> set[str]:
    """Every tenant the activity names (Teams puts it in two places), lower-cased."""
    candidates = (
        mapping(activity.get("conversation")).get("tenantId"),
        mapping(mapping(activity.get("channelData")).get("tenant")).get("id"),
    )
    return {c.strip().lower() for c in candidates if isinstance(c, str) and c.strip()}


def sender_id(activity: Mapping[str, Any]) -> Optional[str]:
    """The tracker key of the activity's sender, or None when it names nobody usable.

    An empty or odd id must not become a key: every such message would land
    in one conversation shared by strangers.
    """
    raw = mapping(activity.get("from")).get("id")
    if not isinstance(raw, str) or not valid_sender_id(raw, MAX_SENDER_ID_CHARS) or " " in raw:
        return None  # Teams ids have no spaces; other whitespace is not printable
    return SENDER_PREFIX + raw


def _submitted(value: Any) -> Mapping[str, Any]:
    """A card submit's ``value``: an object, or (as Teams may pass ``messageBack`` values) its JSON text."""
    if isinstance(value, str) and value.lstrip().startswith("{") and len(value) <= 4 * MAX_PAYLOAD_CHARS:
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            return {}
    return mapping(value)


def _payload_field(value: Mapping[str, Any], key: str) -> Optional[str]:
    """One field of a submit as a payload, or None when it is missing, not text, empty or oversized."""
    if key not in value:
        return None
    field = value[key]
    if not isinstance(field, str):
        logger.warning("Teams card submit ignored: %r is a %s, not text.", key, type(field).__name__)
        return None
    field = field.strip()
    if not field:
        logger.info("Teams card submit with an empty %r (nothing chosen).", key)
        return None
    if len(field) > MAX_PAYLOAD_CHARS:
        logger.warning("Teams card submit ignored: %r has %d characters.", key, len(field))
        return None
    return field


def card_payload(activity: Mapping[str, Any]) -> Optional[str]:
    """The payload a card sent: a button's ``value.payload`` or the choice set's ``value.choice``.

    Customer-controlled like typed text, and trusted as much (both reach
    Rasa); a submit that names two different payloads is refused, never
    resolved by guessing which one the customer meant.
    """
    value = _submitted(activity.get("value"))
    button, choice = _payload_field(value, "payload"), _payload_field(value, CHOICE_ID)
    if button and choice and button != choice:
        logger.warning("Teams card submit ignored: a button payload and a list choice that differ.")
        return None
    return button or choice


def incoming_text(activity: Mapping[str, Any]) -> str:
    """What Rasa reads: a clicked button's or chosen option's payload, else the typed text without @mentions."""
    payload = card_payload(activity)
    if payload:
        return payload
    text = _MENTION.sub(" ", str(activity.get("text") or ""))
    return _SPACES.sub(" ", text).strip()


def incoming_metadata(activity: Mapping[str, Any]) -> dict[str, Any]:
    conversation = mapping(activity.get("conversation"))
    sender = mapping(activity.get("from"))
    tenant = conversation.get("tenantId") or mapping(mapping(activity.get("channelData")).get("tenant")).get("id")
    return {
        "conversation_id": conversation.get("id"),
        "service_url": activity.get("serviceUrl"),
        "tenant_id": tenant,
        "aad_object_id": sender.get("aadObjectId"),
        "user_name": sender.get("name"),
    }


@dataclass(frozen=True)
class IncomingFile:
    name: str
    declared_type: Optional[str]
    url: str
    with_token: bool  # a pasted image, served by Microsoft's hosts to the bot's token


def incoming_files(activity: Mapping[str, Any]) -> list[IncomingFile]:
    """Files a customer sent: Teams uploads and pasted images (not the HTML copy of the text)."""
    files: list[IncomingFile] = []
    images: list[Mapping[str, Any]] = []
    for attachment in activity.get("attachments") or ():
        if not isinstance(attachment, Mapping):
            continue
        content_type = str(attachment.get("contentType") or "")
        if content_type == FILE_DOWNLOAD_INFO:
            content = mapping(attachment.get("content"))
            if content.get("downloadUrl"):
                name = str(attachment.get("name") or f"adjunto.{content.get('fileType') or ''}".rstrip("."))
                files.append(IncomingFile(name, mimetypes.guess_type(name)[0], str(content["downloadUrl"]), False))
        elif content_type.startswith("image/") and attachment.get("contentUrl"):
            images.append(attachment)
    for number, image in enumerate(images, start=1):
        name = str(image.get("name") or (f"imagen_{number}" if len(images) > 1 else "imagen"))
        files.append(IncomingFile(name, str(image["contentType"]), str(image["contentUrl"]), True))
    return files


def image_type(data: bytes, declared: str) -> Optional[str]:
    """The real type of a pasted image: Teams declares them as ``image/*``."""
    declared = declared.split(";")[0].strip().lower()
    if declared.startswith("image/") and declared != "image/*":
        return declared
    for magic, content_type in _IMAGE_MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _account(value: Any) -> dict[str, Any]:
    value = mapping(value)
    return {k: value[k] for k in ("id", "name") if value.get(k)}


@dataclass(frozen=True)
class ConversationReference:
    """Where a reply goes: taken from the incoming activity, as Bot Framework requires."""

    service_url: str
    conversation_id: str
    bot: dict[str, Any]
    user: dict[str, Any]
    activity_id: Optional[str] = None
    tenant_id: Optional[str] = None  # kept for proactive messages (bot/channels/addresses.py)

    @classmethod
    def from_activity(cls, activity: Mapping[str, Any]) -> "ConversationReference":
        conversation = mapping(activity.get("conversation"))
        tenants = sorted(activity_tenants(activity))
        return cls(
            service_url=str(activity.get("serviceUrl") or ""),
            conversation_id=str(conversation.get("id") or ""),
            bot=_account(activity.get("recipient")),
            user=_account(activity.get("from")),
            activity_id=activity.get("id"),
            tenant_id=tenants[0] if len(tenants) == 1 else None,
        )

    @property
    def activities_url(self) -> str:
        conversation = quote(self.conversation_id, safe="")
        return f"{self.service_url.rstrip('/')}/v3/conversations/{conversation}/activities"
