"""Replies to WhatsApp through Twilio's Messages API, without blocking the event loop.

Buttons go as WhatsApp's reply buttons or list (``interactive``) when the
channel has its contents; whatever cannot go so goes as numbered text.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Text

import aiohttp
from rasa.core.channels.channel import OutputChannel

from bot.channels.http import Delivery, LoopSession, post_with_retries
from bot.channels.whatsapp.config import WhatsAppConfig, with_prefix
from bot.channels.whatsapp.content import Contents
from bot.channels.whatsapp.interactive import render
from bot.channels.whatsapp.replies import numbered_choices, split_body, twilio_error
from bot.http_retry import RetryPolicy
from bot.privacy import mask_sender

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"
# Twilio refusing a message for its content: unknown or unusable ContentSid (216xx), WhatsApp's own checks (63xxx).
CONTENT_REFUSALS = frozenset({"21655", "21656", "21658"})


def refused_for_content(delivery: Delivery) -> bool:
    code = str(twilio_error(delivery.detail).get("code"))
    return 400 <= delivery.status < 500 and (code in CONTENT_REFUSALS or code.startswith("63"))


class Recent:
    """A bounded insertion-ordered map, so per-sender memory cannot grow forever."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._items: "OrderedDict[str, Any]" = OrderedDict()

    def get(self, key: str) -> Any:
        return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def pop(self, key: str) -> Any:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class WhatsAppOutput(OutputChannel):
    """Sends through Twilio's Messages API, retrying what Twilio says is temporary (429, 5xx, network)."""

    max_attempts = 4
    backoff_base = 1.0  # seconds; doubled on each retry
    max_wait = 30.0  # never wait longer than this for one retry

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(
        self,
        config: WhatsAppConfig,
        http: Optional[LoopSession] = None,
        sent_buttons: Optional[Recent] = None,
        contents: Optional[Contents] = None,
    ) -> None:
        """``contents``: where interactive messages' SIDs come from; None sends numbered text."""
        self.config = config
        self.contents = contents
        self.http = http if http is not None else LoopSession()
        # What this process last offered each recipient; used to read numbered
        # replies only when no tracker store is available.
        self.sent_buttons = sent_buttons if sent_buttons is not None else Recent()

    @property
    def whatsapp_number(self) -> str:
        return self.config.whatsapp_number

    @property
    def messages_url(self) -> str:
        return self.config.messages_url

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.sent_buttons.pop(recipient_id)
        await self._send_body(recipient_id, text)

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        self.sent_buttons.put(recipient_id, list(buttons))
        if self.contents is not None and await self._send_interactive(recipient_id, text, buttons):
            return
        await self._send_body(recipient_id, numbered_choices(text, buttons))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._create_message(recipient_id, [("MediaUrl", image)])

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        if isinstance(attachment, str) and attachment.startswith(("https://", "http://")):
            await self._create_message(recipient_id, [("MediaUrl", attachment)])
        else:
            await self.send_text_message(recipient_id, str(attachment))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """Custom payloads may carry ``text``/``body`` and ``media_url``; nothing else reaches WhatsApp.

        The default would show the customer raw JSON.
        """
        text = json_message.get("text") or json_message.get("body")
        media = json_message.get("media_url") or []
        if text:
            await self.send_text_message(recipient_id, str(text))
        for url in [media] if isinstance(media, str) else media:
            await self._create_message(recipient_id, [("MediaUrl", str(url))])
        if not text and not media:
            logger.warning("WhatsApp: custom payload without text or media_url ignored: %s", sorted(json_message))

    async def _send_interactive(self, recipient_id: str, text: str, buttons: List[Dict[Text, Any]]) -> bool:
        """Reply buttons or a list; False when nothing was sent and the numbered text should go instead."""
        rendered = render(text, buttons)
        if rendered.content is None or self.contents is None:
            return False
        sid = await self.contents.sid_for(rendered.content)
        if not sid:
            return False
        for part in rendered.lead:
            await self._send_body(recipient_id, part)
        delivery = await self._post(recipient_id, [("ContentSid", sid)])
        if delivery.ok:
            return True
        if not refused_for_content(delivery):
            self._log_failure(recipient_id, delivery)
            return True  # refused for another reason (the number, the account): text would fare no better
        error = twilio_error(delivery.detail)
        logger.warning(
            "WhatsApp: Twilio rechazó el mensaje interactivo %s (código %s: %s); se envía la lista numerada",
            sid,
            error.get("code"),
            error.get("message"),
        )
        if str(error.get("code")) == "21655":
            await self.contents.forget(sid)
        await self._send_body(recipient_id, rendered.fallback)
        return True

    async def _send_body(self, recipient_id: str, text: str) -> None:
        for part in split_body(text):
            await self._create_message(recipient_id, [("Body", part)])

    async def _create_message(self, recipient_id: str, fields: list[tuple[str, str]]) -> bool:
        """POST one message; logs Twilio's own error code when it refuses for good."""
        delivery = await self._post(recipient_id, fields)
        if not delivery.ok:
            self._log_failure(recipient_id, delivery)
        return delivery.ok

    async def _post(self, recipient_id: str, fields: list[tuple[str, str]]) -> Delivery:
        form = [("From", self.config.whatsapp_number), ("To", with_prefix(recipient_id)), *fields]
        auth = aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token)
        retries = RetryPolicy(self.max_attempts, self.backoff_base, self.max_wait)  # read per send: tests shorten them
        return await post_with_retries(self.http, self.config.messages_url, retries, data=form, auth=auth)

    @staticmethod
    def _log_failure(recipient_id: str, delivery: Delivery) -> None:
        if delivery.status == 0:
            logger.error(
                "WhatsApp: could not reach Twilio to message %s: %s", mask_sender(recipient_id), delivery.detail
            )
            return
        error = twilio_error(delivery.detail)
        logger.error(
            "WhatsApp: Twilio refused the message to %s (HTTP %s, code %s): %s",
            mask_sender(recipient_id),
            delivery.status,
            error.get("code"),
            error.get("message"),
        )
