"""Reading Twilio's WhatsApp webhook: the form it signed, who wrote, what and which media."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Optional, Sequence
from urllib.parse import parse_qs

from sanic.request import Request, RequestParameters

from bot.attachments import safe_filename
from bot.channels.identity import WHATSAPP_PREFIX
from bot.validation import check_phone


@dataclass
class Incoming:
    """The fields of a Twilio WhatsApp webhook this channel uses."""

    sender: str
    body: str
    message_sid: str
    profile_name: str
    media: list[tuple[str, str]] = field(default_factory=list)  # (url, declared content type)
    message_type: str = ""  # Twilio's MessageType ("text", "audio", "document"...), when sent
    is_location: bool = False  # a shared location (Latitude and Longitude)
    # A tap on reply buttons (ButtonPayload, ButtonText) or a list's row (ListId, ListTitle): the option's id
    # and title as the customer's side sent them; the id is only a claim until matched to what was offered.
    tap_id: str = ""
    tap_title: str = ""

    @classmethod
    def from_params(cls, params: RequestParameters) -> "Incoming":
        try:
            count = int(params.get("NumMedia") or 0)
        except ValueError:
            count = 0
        media = [
            (str(params.get(f"MediaUrl{i}")), params.get(f"MediaContentType{i}") or "")
            for i in range(count)
            if params.get(f"MediaUrl{i}")
        ]
        return cls(
            sender=params.get("From") or "",
            body=params.get("Body") or "",
            message_sid=params.get("MessageSid") or params.get("SmsMessageSid") or "",
            profile_name=params.get("ProfileName") or "",
            media=media,
            message_type=params.get("MessageType") or "",
            is_location=bool(params.get("Latitude") and params.get("Longitude")),
            tap_id=(params.get("ButtonPayload") or params.get("ListId") or "").strip(),
            tap_title=params.get("ButtonText") or params.get("ListTitle") or "",
        )

    def media_name(self, index: int, declared: str) -> str:
        """WhatsApp sends no file name: name it after the message, typed by its content type."""
        tail = (self.message_sid[-6:] or "wa").lower()
        suffix = f"-{index}" if len(self.media) > 1 else ""
        extension = mimetypes.guess_extension(declared.split(";")[0].strip()) or ""
        return safe_filename(f"adjunto-{tail}{suffix}{extension}")


def form_params(request: Request) -> RequestParameters:
    """The webhook's form fields, blank ones included.

    Sanic's ``request.form`` drops blank values, but Twilio signs them (a
    media-only message has ``Body=``), so the signature would never match.
    """
    body = (request.body or b"").decode("utf-8", errors="replace")
    return RequestParameters(parse_qs(body, keep_blank_values=True))


def sender_phone(address: Optional[str], served_countries: Sequence[str]) -> Optional[str]:
    """E.164 of a WhatsApp sender in a served country, else None.

    The form fills the ticket's phone with it; a number from a country the
    help desk does not serve would only be refused later, so it is not passed.
    """
    raw = (address or "").strip()
    if raw.startswith(WHATSAPP_PREFIX):
        raw = raw[len(WHATSAPP_PREFIX) :]
    if not raw:
        return None
    check = check_phone(raw, served_countries)
    return check.e164 if check.ok else None
