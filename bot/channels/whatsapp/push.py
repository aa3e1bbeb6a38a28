"""The help desk's news to a WhatsApp customer, outside any Rasa turn, through Twilio's Messages API.

WhatsApp takes free text only within 24 hours of the customer's last
message (the customer-service window); after that, only an approved
template, sent by ``ContentSid`` with its ``ContentVariables``. The window is
read from the address book (the channel notes every inbound message), with
a safety margin. Twilio accepts a free-text message before WhatsApp judges
it: a closed window shows up afterwards as error 63016 on the message itself
(or, should Twilio answer so, on the request), so the first message is
checked and, on 63016, the template goes instead. Inside the window, a
notice's buttons go as WhatsApp's reply buttons or list when the worker has
the contents (the same renderer and cache as the conversation).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any, Callable, Optional, Sequence

import aiohttp

from bot.channels.addresses import Address, AddressBook, AddressError, now
from bot.channels.http import Delivery, LoopSession, Sleep, post_with_retries
from bot.channels.identity import owning_channel
from bot.channels.push import PushFailed, failure_of
from bot.channels.whatsapp.config import WhatsAppConfig
from bot.channels.whatsapp.content import Contents
from bot.channels.whatsapp.interactive import render
from bot.channels.whatsapp.output import CHANNEL_NAME, refused_for_content
from bot.channels.whatsapp.replies import numbered_choices, split_body, twilio_error
from bot.dialogue.notices import Notice
from bot.http_retry import RetryPolicy
from bot.privacy import mask_sender

logger = logging.getLogger(__name__)

TEXT = "text"
TEMPLATE = "template"
WINDOW = timedelta(hours=24)
# The window is measured by WhatsApp from the customer's message as it saw
# it; ours is noted a little later, and a message may wait in Twilio's queue.
WINDOW_MARGIN = timedelta(hours=1)
OUTSIDE_WINDOW = "63016"  # Twilio: free-form message outside the customer-service window
# How long to watch a new message for WhatsApp's verdict (seconds between looks).
# One short look: the address book's window already has an hour's margin, so
# 63016 is the exception, and each look delays the ticket's next message.
STATUS_WAITS: tuple[float, ...] = (1.0,)
ACCEPTED = frozenset({"sent", "delivered", "read"})
REFUSED = frozenset({"failed", "undelivered", "canceled"})
# Few quick retries here: the worker retries later with its own backoff.
PUSH_RETRIES = RetryPolicy(attempts=3, backoff_base=1.0, max_wait=10.0)
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")

NO_TEMPLATE = (
    "El cliente no escribe por WhatsApp desde hace más de 24 horas y no hay una plantilla aprobada "
    "configurada (WHATSAPP_NOTIFY_CONTENT_SID): WhatsApp no permite enviarle texto libre. "
    "Configure la plantilla y vuelva a poner el mensaje en cola."
)


class _OutsideWindow(Exception):
    """WhatsApp refused free text: the customer-service window is closed (63016)."""


class _ContentRefused(Exception):
    """Twilio refused an interactive message for its content: the numbered text goes instead."""


def _message_sid(body: str) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    sid = answer.get("sid") if isinstance(answer, dict) else None
    return sid if isinstance(sid, str) and MESSAGE_SID.match(sid) else ""


def _choices(notice: Notice) -> list[dict[str, Any]]:
    return [{"title": button.title, "payload": button.payload} for button in notice.buttons]


def _refusal(code: Any, message: Any) -> str:
    return f"código {code if code is not None else 'desconocido'}: {str(message or '').strip()[:300]}"


class WhatsAppPush:
    """Sends the follow-up worker's notices to WhatsApp customers."""

    def __init__(
        self,
        config: WhatsAppConfig,
        addresses: AddressBook,
        content_sid: str = "",
        http: Optional[LoopSession] = None,
        *,
        margin: timedelta = WINDOW_MARGIN,
        status_waits: Sequence[float] = STATUS_WAITS,
        retries: RetryPolicy = PUSH_RETRIES,
        clock: Callable[[], datetime] = now,
        sleep: Sleep = asyncio.sleep,
        contents: Optional[Contents] = None,
    ) -> None:
        """``contents``: for buttons as WhatsApp's reply buttons or list inside the window; None: numbered text."""
        self.config = config
        self.contents = contents
        self.addresses = addresses
        self.content_sid = content_sid
        self.http = http if http is not None else LoopSession()
        self.margin = margin
        self.status_waits = tuple(status_waits)
        self.retries = retries
        self.clock = clock
        self.sleep = sleep

    @property
    def _auth(self) -> aiohttp.BasicAuth:
        return aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token)

    def window_open(self, address: Optional[Address]) -> bool:
        """Whether free text may still go: the customer wrote within 24 hours, minus the margin."""
        return address is not None and self.clock() - address.last_inbound_at < WINDOW - self.margin

    async def send(self, conversation_id: str, notice: Notice) -> str:
        if owning_channel(conversation_id) != CHANNEL_NAME:
            raise PushFailed(f"La conversación {mask_sender(conversation_id)} no es de WhatsApp.", temporary=False)
        try:
            address = await asyncio.to_thread(self.addresses.get, conversation_id)
        except AddressError as exc:
            raise PushFailed(str(exc), temporary=True) from exc
        if self.window_open(address):
            try:
                await self._send_text(conversation_id, notice)
                return TEXT
            except _OutsideWindow:
                logger.warning(
                    "WhatsApp: 63016 for %s (window closed before our record said); sending the template",
                    mask_sender(conversation_id),
                )
        return await self._send_template(conversation_id, notice)

    async def close(self) -> None:
        await self.http.close()
        if self.contents is not None:
            await self.contents.close()

    # ------------------------------------------------------------- sending
    async def _send_text(self, to: str, notice: Notice) -> None:
        text = numbered_choices(notice.text, _choices(notice)) if notice.buttons else notice.text
        if notice.buttons and self.contents is not None:
            rendered = render(notice.text, _choices(notice))
            sid = await self.contents.sid_for(rendered.content) if rendered.content is not None else None
            if sid:
                try:
                    await self._send_parts(to, [*rendered.lead], [("ContentSid", sid)])
                    return
                except _ContentRefused as refused:
                    logger.warning("WhatsApp: %s; the notice goes as numbered text", refused)
                    text = rendered.fallback if rendered.lead else text
        await self._send_parts(to, split_body(text))

    async def _send_parts(self, to: str, bodies: list[str], last: Optional[list[tuple[str, str]]] = None) -> None:
        """Each body, then ``last`` (an interactive message); the first message's verdict is awaited."""
        messages = [[("Body", body)] for body in bodies] + ([last] if last else [])
        for index, fields in enumerate(messages):
            interactive = fields[0][0] == "ContentSid"
            sid = await self._create(to, fields)
            if index == 0 or interactive:  # one look is enough for the window; WhatsApp judges a content itself
                try:
                    await self._confirm(sid, to)
                except PushFailed as failed:
                    if not interactive:
                        raise
                    raise _ContentRefused(str(failed)) from None

    async def _send_template(self, to: str, notice: Notice) -> str:
        if not self.content_sid:
            raise PushFailed(NO_TEMPLATE, temporary=False)
        variables = json.dumps(notice.template_variables or {}, ensure_ascii=False)
        try:
            sid = await self._create(to, [("ContentSid", self.content_sid), ("ContentVariables", variables)])
            await self._confirm(sid, to)
        except _OutsideWindow:
            raise PushFailed(
                "WhatsApp rechazó la plantilla fuera de la ventana de 24 horas (63016): revise en Twilio que la "
                "plantilla de WHATSAPP_NOTIFY_CONTENT_SID esté aprobada para iniciar conversaciones.",
                temporary=False,
            ) from None
        return TEMPLATE

    async def _create(self, to: str, fields: list[tuple[str, str]]) -> str:
        """POST one message; its Message SID (for the status check)."""
        form = [("From", self.config.whatsapp_number), ("To", to), *fields]

        def on_retry(failed: Delivery, wait: float) -> None:
            logger.warning("WhatsApp: Twilio answered %s; retry in %.1fs", failed.status or "nothing", wait)

        delivery = await post_with_retries(
            self.http,
            self.config.messages_url,
            self.retries,
            data=form,
            auth=self._auth,
            on_retry=on_retry,
            sleep=self.sleep,
        )
        if delivery.ok:
            return _message_sid(delivery.body)
        if delivery.status == 0:
            raise failure_of(delivery, "No se pudo contactar a Twilio", delivery.detail)
        error = twilio_error(delivery.detail)
        if str(error.get("code")) == OUTSIDE_WINDOW:
            raise _OutsideWindow()
        if fields[0][0] == "ContentSid" and fields[0][1] != self.content_sid and refused_for_content(delivery):
            if str(error.get("code")) == "21655" and self.contents is not None:
                await self.contents.forget(fields[0][1])
            raise _ContentRefused(
                f"Twilio refused the interactive message ({_refusal(error.get('code'), error.get('message'))})"
            )
        raise failure_of(
            delivery, "Twilio no aceptó el mensaje de WhatsApp", _refusal(error.get("code"), error.get("message"))
        )

    async def _confirm(self, sid: str, to: str) -> None:
        """Wait a little for WhatsApp's verdict on a new message: 63016 arrives on the message, not the request.

        A message still queued after the waits is counted as sent (WhatsApp
        is slow, not refusing); a refusal is final, with Twilio's code.
        """
        if not sid:
            return
        for wait in self.status_waits:
            await self.sleep(wait)
            state = await self._fetch(sid)
            status = str(state.get("status") or "")
            if status in ACCEPTED:
                return
            if status in REFUSED:
                code = state.get("error_code")
                if str(code) == OUTSIDE_WINDOW:
                    raise _OutsideWindow()
                raise PushFailed(
                    f"WhatsApp no entregó el mensaje ({_refusal(code, state.get('error_message'))}).",
                    temporary=False,
                )
        logger.info("WhatsApp: message %s to %s still without verdict; counted as sent", sid, mask_sender(to))

    async def _fetch(self, sid: str) -> dict[str, Any]:
        """Twilio's Message resource; empty when it cannot be read now (the next look may)."""
        url = f"{self.config.api_url}/2010-04-01/Accounts/{self.config.account_sid}/Messages/{sid}.json"
        try:
            async with self.http.session().get(url, auth=self._auth) as reply:
                if reply.status != 200:
                    logger.warning("WhatsApp: Twilio answered %s reading message %s", reply.status, sid)
                    return {}
                answer = await reply.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            logger.warning("WhatsApp: could not read message %s: %r", sid, exc)
            return {}
        return answer if isinstance(answer, dict) else {}
