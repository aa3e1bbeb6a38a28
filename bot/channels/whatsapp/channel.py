"""The Twilio WhatsApp webhook as a Rasa input channel.

Webhook: ``POST /webhooks/whatsapp/webhook``; health: ``GET /webhooks/whatsapp/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Sequence, Text
from urllib.parse import urlsplit

import aiohttp
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.core.events import BotUttered
from sanic import Blueprint, response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.attachments import AttachmentRefused, AttachmentStore, StoredAttachment
from bot.catalog import get_catalog
from bot.channels.addresses import AddressBook, InboundNotes
from bot.channels.common import DisabledChannel, missing_credentials, screen_message, webhook_blueprint
from bot.channels.files import ReceivedFiles, message_text, too_large
from bot.channels.http import FileTooLarge, LoopSession, capped_download
from bot.channels.identity import WHATSAPP_PREFIX
from bot.channels.whatsapp.config import REQUIRED_CREDENTIALS, WhatsAppConfig
from bot.channels.whatsapp.content import Contents
from bot.channels.whatsapp.incoming import Incoming, form_params, sender_phone
from bot.channels.whatsapp.interactive import payload_for
from bot.channels.whatsapp.kinds import LOCATION_ANSWER, screen_media
from bot.channels.whatsapp.output import CHANNEL_NAME, Recent, WhatsAppOutput
from bot.channels.whatsapp.replies import button_payload, choose_button
from bot.privacy import mask_sender
from bot.settings import Settings

logger = logging.getLogger(__name__)

DOWNLOAD_FAILED = "No pude recibir tu archivo. Por favor, envíalo de nuevo."
# Bot messages (latest first) whose buttons a tap may still answer: a customer may scroll up and tap.
TAP_REACH = 5


class _SenderTurn:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class WhatsAppInput(InputChannel):
    """Twilio WhatsApp webhook."""

    answer_within = 10.0  # seconds; Twilio gives up on a webhook after 15

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Rasa's start-up hook: the process's settings are read here, once, and passed down."""
        missing = missing_credentials(credentials, REQUIRED_CREDENTIALS)
        if missing:
            return DisabledChannel(CHANNEL_NAME, "WhatsApp", missing)
        catalog = get_catalog()
        settings = Settings.from_env()
        store = AttachmentStore.from_settings(catalog, settings)
        addresses = AddressBook(settings.tickets_db_url)
        config = WhatsAppConfig.from_credentials(credentials or {})
        contents = Contents.from_config(config, settings.tickets_db_url)
        return cls(config, store, catalog.country_ids, addresses, contents)

    def __init__(
        self,
        config: WhatsAppConfig,
        attachment_store: AttachmentStore,
        served_countries: Sequence[str],
        addresses: Optional[AddressBook] = None,
        contents: Optional[Contents] = None,
    ) -> None:
        """``served_countries``: the catalog's; a sender's number elsewhere is not given to the form.

        ``addresses``: where each customer's last message is noted, so the
        follow-up worker knows whether WhatsApp's 24-hour window is open.
        ``contents``: the interactive messages' contents; None sends buttons
        as numbered text.
        """
        self.config = config
        self.contents = contents
        self.inbound = InboundNotes(addresses)
        self.attachment_store = attachment_store
        self.served_countries = tuple(served_countries)
        self.validator = RequestValidator(config.auth_token)
        self.http = LoopSession()
        self._sent_buttons = Recent()
        self._seen_sids = Recent(limit=5_000)
        self._turns: dict[str, _SenderTurn] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def api_url(self) -> str:
        return self.config.api_url

    @property
    def public_url(self) -> Optional[str]:
        return self.config.public_url

    def get_output_channel(self) -> WhatsAppOutput:
        return WhatsAppOutput(self.config, self.http, sent_buttons=self._sent_buttons, contents=self.contents)

    # -------------------------------------------------------------- webhook
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = webhook_blueprint("whatsapp_webhook")

        @hook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            params = form_params(request)
            if not self.signature_ok(request, params):
                return response.text("invalid Twilio signature", status=403)
            incoming = Incoming.from_params(params)
            if not incoming.sender.startswith(WHATSAPP_PREFIX):
                # SMS or another Twilio channel on the same number: not a WhatsApp conversation.
                logger.info("WhatsApp: ignored a message whose sender is not a WhatsApp address")
                return _twiml()
            self.inbound.note(incoming.sender, CHANNEL_NAME)  # Twilio vouched for the sender: the window opens
            if incoming.message_sid:
                if incoming.message_sid in self._seen_sids:
                    logger.info("WhatsApp: duplicate delivery of %s ignored", incoming.message_sid)
                    return _twiml()
                self._seen_sids.put(incoming.message_sid, True)
            agent = getattr(request.app.ctx, "agent", None)
            await self._hand_over(self._handle(incoming, agent, on_new_message))
            return _twiml()

        @hook.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            await self.http.close()
            if self.contents is not None:
                await self.contents.close()
            self.inbound.close()

        return hook

    def signature_ok(self, request: Request, params: RequestParameters) -> bool:
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            logger.warning("WhatsApp: request without X-Twilio-Signature refused")
            return False
        url = self.signed_url(request)
        if self.validator.validate(url, params, signature):
            return True
        logger.warning(
            "WhatsApp: invalid Twilio signature for %s; behind a proxy set WHATSAPP_PUBLIC_URL "
            "to the exact webhook URL configured in Twilio",
            url,
        )
        return False

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the configured public one (proxies rewrite the request's)."""
        public_url = self.config.public_url
        if not public_url:
            return request.url
        if request.query_string and not urlsplit(public_url).query:
            return f"{public_url}?{request.query_string}"
        return public_url

    async def _hand_over(self, work: Awaitable[None]) -> None:
        """Wait for the answer a while, then let it finish in the background.

        Twilio abandons (and may retry) a webhook after 15 s; a slow turn keeps
        running and its replies go out through the REST API anyway.
        """
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.answer_within)
        except asyncio.TimeoutError:
            logger.info("WhatsApp: turn still running after %.0f s; answered Twilio already", self.answer_within)

    # ------------------------------------------------------------ one turn
    @asynccontextmanager
    async def _turn_of(self, sender: str) -> AsyncIterator[None]:
        """Messages of one sender are handled one at a time, in arrival order."""
        turn = self._turns.setdefault(sender, _SenderTurn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                self._turns.pop(sender, None)

    async def _handle(
        self, incoming: Incoming, agent: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        try:
            async with self._turn_of(incoming.sender):
                await self._process(incoming, agent, on_new_message)
        except Exception:  # noqa: BLE001 - a background turn must never die silently
            logger.exception("WhatsApp: failed to handle message %s", incoming.message_sid)

    async def _process(
        self, incoming: Incoming, agent: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        output = self.get_output_channel()
        if incoming.is_location:
            # Its Body, if any, is the place's name or address: not words for the NLU.
            await output.send_text_message(incoming.sender, LOCATION_ANSWER)
            return
        screened = screen_media(incoming.media, incoming.message_type)
        for answer in screened.answers:
            await output.send_text_message(incoming.sender, answer)
        incoming = dataclasses.replace(incoming, media=screened.files)
        files = await self.receive_media(incoming)
        for refused in files.refusals:
            await output.send_text_message(incoming.sender, refused)

        text, refusal = screen_message(incoming.body or incoming.tap_title)
        if refusal:
            await output.send_text_message(incoming.sender, refusal)
            return
        tapped = await self.tapped_payload(incoming.sender, incoming.tap_id, agent) if incoming.tap_id else None
        if tapped is not None:
            text = tapped
        elif text.strip():
            text = await self.translate_choice(incoming.sender, text, agent)
        text = message_text(text, files.stored)
        if not text:
            logger.debug("WhatsApp: message %s has nothing to process", incoming.message_sid)
            return

        message = UserMessage(
            text,
            output,
            incoming.sender,
            input_channel=self.name(),
            message_id=incoming.message_sid or None,
            metadata=files.add_to(self.metadata_of(incoming)),
        )
        await on_new_message(message)

    def metadata_of(self, incoming: Incoming) -> dict[str, Any]:
        metadata: dict[str, Any] = {"profile_name": incoming.profile_name, "message_sid": incoming.message_sid}
        phone = sender_phone(incoming.sender, self.served_countries)
        if phone:
            metadata["sender_phone"] = phone
        return metadata

    # -------------------------------------------------------------- buttons
    async def translate_choice(self, sender: str, text: str, agent: Any) -> str:
        """A typed choice ("2", "la 2", an option's name) becomes that button's payload."""
        buttons = await self.last_buttons(sender, agent)
        if not buttons:
            return text
        chosen = choose_button(text, buttons)
        return button_payload(chosen) if chosen else text

    async def tapped_payload(self, sender: str, tap_id: str, agent: Any) -> Optional[str]:
        """The payload of the option a tap names, if this conversation was offered it; None otherwise.

        The id comes from the customer's side: an id that matches no button
        offered here is never used as a payload (its title is read as text).
        """
        offers = await self.recent_offers(sender, agent, TAP_REACH)
        payload = payload_for(tap_id, offers)
        if payload is None:
            logger.info("WhatsApp: a tap of %s matches no option offered; read as text", mask_sender(sender))
        return payload

    async def last_buttons(self, sender: str, agent: Any) -> Optional[List[Dict[str, Any]]]:
        """Buttons of the conversation's last bot message, from the shared tracker store.

        The tracker store is shared by every server, whereas this process's own
        record only knows what this process sent.
        """
        offers = await self.recent_offers(sender, agent, 1)
        return offers[0] if offers else None

    async def recent_offers(self, sender: str, agent: Any, reach: int) -> List[List[Dict[str, Any]]]:
        """The buttons of the conversation's last ``reach`` bot messages that had some, latest first.

        Only bot messages count; ``reach`` = 1 is the last bot message's, or
        nothing when it had none.
        """
        store = getattr(agent, "tracker_store", None)
        if store is None:
            own = self._sent_buttons.get(sender)
            return [own] if own else []
        try:
            tracker = store.retrieve(sender)
            if inspect.isawaitable(tracker):
                tracker = await tracker
        except Exception:  # noqa: BLE001 - fall back rather than lose the message
            logger.exception("WhatsApp: could not read the tracker of %s", mask_sender(sender))
            own = self._sent_buttons.get(sender)
            return [own] if own else []
        if tracker is None:
            return []
        offers: List[List[Dict[str, Any]]] = []
        seen = 0
        for event in reversed(list(tracker.events)):
            if not isinstance(event, BotUttered):
                continue
            data = event.data or {}
            buttons = data.get("buttons") or data.get("quick_replies")
            if buttons:
                offers.append(list(buttons))
            seen += 1
            if seen >= reach:
                break
        return offers

    # ---------------------------------------------------------------- media
    async def receive_media(self, incoming: Incoming) -> ReceivedFiles:
        """Download and store each file; what was stored and the Spanish refusals."""
        received = ReceivedFiles()
        for index, (url, declared) in enumerate(incoming.media, start=1):
            name = incoming.media_name(index, declared)
            try:
                received.stored.append(await self._fetch_and_store(url, name, declared, incoming.sender))
            except AttachmentRefused as refused:
                logger.info("WhatsApp: attachment refused (%s) from %s", refused.code, mask_sender(incoming.sender))
                received.refusals.append(refused.message)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                logger.error("WhatsApp: could not download media of %s: %r", incoming.message_sid, exc)
                received.refusals.append(DOWNLOAD_FAILED)
        return received

    async def _fetch_and_store(self, url: str, name: str, declared: str, owner: str) -> StoredAttachment:
        store = self.attachment_store
        store.policy.content_type_for(name, declared)  # refuse a bad type before downloading it
        limit = store.policy.max_bytes
        try:
            download = await capped_download(self.http.session(), url, limit, auth=self._media_auth(url))
        except FileTooLarge as exc:
            raise too_large(name, limit, exc.size) from None
        content_type = declared or download.content_type
        return await asyncio.to_thread(store.save, name, content_type, download.data, owner)

    def _media_auth(self, url: str) -> Optional[aiohttp.BasicAuth]:
        """Twilio's credentials go only to Twilio.

        Passed per request (not as the session default) so aiohttp drops them
        when Twilio redirects to its storage host, which rejects them anyway.
        """
        host = (urlsplit(url).hostname or "").lower()
        api_host = (urlsplit(self.config.api_url).hostname or "").lower()
        if host == api_host or host == "twilio.com" or host.endswith(".twilio.com"):
            return aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token)
        logger.warning("WhatsApp: media host %s is not Twilio; downloading without credentials", host)
        return None


def _twiml() -> HTTPResponse:
    """Empty TwiML: replies go through the REST API, not the webhook answer."""
    return response.text(str(MessagingResponse()), content_type="text/xml")
