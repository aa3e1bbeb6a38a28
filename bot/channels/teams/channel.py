"""The Teams webhook as a Rasa input channel: verify, read the activity, hand the message to Rasa.

Messaging endpoint: ``https://<host>/webhooks/teams/webhook``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Mapping, Optional, Text

import aiohttp
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import AttachmentRefused, AttachmentStore, StoredAttachment
from bot.catalog import get_catalog
from bot.channels.addresses import AddressBook, InboundNotes
from bot.channels.common import DisabledChannel, missing_credentials, screen_message, webhook_blueprint
from bot.channels.files import ReceivedFiles, message_text, too_large
from bot.channels.http import FileTooLarge, LoopSession, UntrustedUrl
from bot.channels.teams.activity import (
    ConversationReference,
    IncomingFile,
    image_type,
    incoming_files,
    incoming_metadata,
    incoming_text,
    sender_id,
)
from bot.channels.teams.auth import BEARER, ActivityRefused, BotFrameworkAuth, Unauthorized, check_activity
from bot.channels.teams.config import TeamsConfig
from bot.channels.teams.connector import BotConnector, TokenError
from bot.channels.teams.hosts import host_of
from bot.channels.teams.output import CHANNEL_NAME, TeamsOutput
from bot.channels.teams.welcome import WELCOME_PAYLOAD, WelcomeBook, WelcomeError, Welcomes, asks_for_welcome
from bot.settings import Settings

logger = logging.getLogger(__name__)

REQUIRED_CREDENTIALS = ("app_id", "app_password")
PERSONAL = "personal"  # Teams' conversationType of a 1:1 chat with the bot


class TeamsInput(InputChannel):
    """The Teams webhook: verifies Bot Framework requests and hands messages to Rasa."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[dict[str, Any]]) -> InputChannel:
        """Rasa's start-up hook: the process's settings are read here, once, and passed down."""
        missing = missing_credentials(credentials, REQUIRED_CREDENTIALS)
        if missing:
            return DisabledChannel(CHANNEL_NAME, "Microsoft Teams", missing)
        settings = Settings.from_env()
        config = TeamsConfig.from_credentials(credentials or {}, settings.teams)
        addresses = AddressBook(settings.tickets_db_url)
        welcomes = WelcomeBook(settings.tickets_db_url)
        return cls(config, AttachmentStore.from_settings(get_catalog(), settings), addresses, welcomes)

    def __init__(
        self,
        config: TeamsConfig,
        attachment_store: AttachmentStore,
        addresses: Optional[AddressBook] = None,
        welcomes: Optional[WelcomeBook] = None,
    ) -> None:
        """``addresses``: where each customer's 1:1 conversation is kept for the follow-up worker's messages.

        ``welcomes``: the conversations already welcomed, shared by every server (None: this process only).
        """
        self.config = config
        self.inbound = InboundNotes(addresses)
        self.welcomes = Welcomes(welcomes)
        self.attachment_store = attachment_store
        self.http = LoopSession(trust_env=True)
        self.auth = BotFrameworkAuth(config, self.http)
        self.connector = BotConnector(config, self.http)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = webhook_blueprint("teams_webhook")

        @hook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            return await self.handle_request(request, on_new_message)

        @hook.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            await self.http.close()
            self.inbound.close()

        return hook

    async def handle_request(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        authorization = request.headers.get("Authorization")
        if not BEARER.match(authorization or ""):
            logger.warning("Teams request refused: no bearer token.")
            return response.json({"error": "unauthorized"}, status=401)
        try:
            activity = json.loads(request.body or b"")
        except ValueError:
            activity = None
        if not isinstance(activity, dict):
            return response.json({"error": "invalid activity"}, status=400)
        try:
            await self.auth.verify(authorization, activity)
        except Unauthorized as exc:
            logger.warning("Teams request refused: %s", exc)
            return response.json({"error": "unauthorized"}, status=401)
        try:
            check_activity(activity, self.config)
        except ActivityRefused as exc:
            logger.warning("Teams activity %r refused: %s", activity.get("id"), exc)
            return response.json({"error": "forbidden"}, status=403)

        if asks_for_welcome(activity):
            await self.welcome(activity, on_new_message)
            return response.json({}, status=200)
        if activity.get("type") != "message":
            logger.debug("Ignoring Teams activity of type %s.", activity.get("type"))
            return response.json({}, status=200)
        sender = sender_id(activity)
        if sender is None:
            logger.warning("Teams message %r refused: no usable sender id.", activity.get("id"))
            return response.json({"error": "invalid activity"}, status=400)
        self.note_inbound(activity, sender)
        try:
            await self.handle_message(activity, sender, on_new_message)
        except Exception:  # noqa: BLE001 - a failing turn must not make Teams resend the activity
            logger.exception("Error handling Teams message %s.", activity.get("id"))
        return response.json({}, status=200)

    async def welcome(
        self, activity: Mapping[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        """The app was installed in a 1:1 chat: greet the customer through Rasa, once per conversation.

        Only personal chats: the app's scope is ``personal``, and a group must
        not get a menu meant for one customer. A database failure still
        welcomes (a rare second greeting beats none); a failed turn gives the
        claim back so the next ``conversationUpdate`` tries again.
        """
        conversation = activity.get("conversation")
        if not (isinstance(conversation, Mapping) and conversation.get("conversationType") == PERSONAL):
            logger.debug("Teams conversationUpdate outside a personal chat: no welcome.")
            return
        sender = sender_id(activity)
        if sender is None:
            logger.warning("Teams conversationUpdate %r ignored: no usable user id.", activity.get("id"))
            return
        self.note_inbound(activity, sender)
        try:
            claimed = await asyncio.to_thread(self.welcomes.claim, sender)
        except WelcomeError as exc:
            logger.error("Teams: %s; se envía la bienvenida de todos modos.", exc)
            claimed = True
        if not claimed:
            logger.debug("Teams conversation already welcomed.")
            return
        message = UserMessage(
            text=WELCOME_PAYLOAD,
            output_channel=TeamsOutput(self.connector, ConversationReference.from_activity(activity)),
            sender_id=sender,
            input_channel=self.name(),
            message_id=activity.get("id"),
            metadata=incoming_metadata(activity),
        )
        try:
            await on_new_message(message)
        except Exception:  # noqa: BLE001 - a failing welcome must not make Teams resend the activity
            logger.exception("Error welcoming a Teams conversation (activity %s).", activity.get("id"))
            try:
                await asyncio.to_thread(self.welcomes.release, sender)
            except WelcomeError as exc:
                logger.error("Teams: %s", exc)

    def note_inbound(self, activity: Mapping[str, Any], sender_id: str) -> None:
        """Note a verified message; only a 1:1 chat's reference is kept for proactive messages.

        A customer who also writes to the bot in a group chat or a channel
        must never have their ticket's news posted there for others to read.
        """
        conversation = activity.get("conversation")
        personal = isinstance(conversation, Mapping) and conversation.get("conversationType") == PERSONAL
        reference = ConversationReference.from_activity(activity) if personal else None
        self.inbound.note(sender_id, CHANNEL_NAME, reference)

    async def handle_message(
        self, activity: Mapping[str, Any], sender_id: str, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        """One customer message to Rasa, keyed by ``sender_id``; replies follow the activity's reference."""
        reference = ConversationReference.from_activity(activity)
        output = TeamsOutput(self.connector, reference)
        text, refusal = screen_message(incoming_text(activity))
        if refusal:
            await output.send_text_message(sender_id, refusal)
            return
        files = await self.receive_files(activity, sender_id)
        for refusal in files.refusals:
            await output.send_text_message(sender_id, refusal)
        text = message_text(text.strip(), files.stored)
        if not text:
            return  # nothing Rasa could read (an empty message, or only refused files)
        message = UserMessage(
            text=text,
            output_channel=output,
            sender_id=sender_id,
            input_channel=self.name(),
            message_id=activity.get("id"),
            metadata=files.add_to(incoming_metadata(activity)),
        )
        await on_new_message(message)

    async def receive_files(self, activity: Mapping[str, Any], sender_id: str) -> ReceivedFiles:
        """The activity's files, stored as ``sender_id``'s: only that conversation may put them in a ticket."""
        received = ReceivedFiles()
        incoming = incoming_files(activity)
        if not incoming:
            return received
        store = self.attachment_store
        if len(incoming) > store.policy.max_files:
            logger.info("Teams message with %d files; keeping the first %d.", len(incoming), store.policy.max_files)
        for file in incoming[: store.policy.max_files]:
            try:
                received.stored.append(await self.receive_file(file, store, sender_id))
            except AttachmentRefused as refused:
                logger.info("Teams file %r refused: %s", file.name, refused.code)
                received.refusals.append(refused.message)
        return received

    async def receive_file(self, file: IncomingFile, store: AttachmentStore, owner: str) -> StoredAttachment:
        """Fetches and stores one file; pasted images with the bot's token, from its hosts only."""
        name, declared = file.name, file.declared_type
        if declared != "image/*":
            store.policy.content_type_for(name, declared)  # refuse a forbidden type before downloading it
        hosts = self.config.image_hosts if file.with_token else self.config.download_hosts
        try:
            download = await self.connector.download(file.url, hosts, store.policy.max_bytes, file.with_token)
        except UntrustedUrl as exc:
            logger.warning("Teams file %r not downloaded: untrusted source (%s).", name, exc)
            raise AttachmentRefused(
                "untrusted_source", f"No pude descargar el archivo «{name}»: no viene de Microsoft Teams."
            ) from None
        except FileTooLarge as exc:
            raise too_large(name, store.policy.max_bytes, exc.size) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, TokenError) as exc:
            status = getattr(exc, "status", "")  # not the exception text: it holds the pre-authenticated URL
            logger.error(
                "Could not download Teams file %r from %s: %s %s", name, host_of(file.url), type(exc).__name__, status
            )
            raise AttachmentRefused(
                "download_failed", f"No pude descargar el archivo «{name}». Intenta enviarlo de nuevo."
            ) from exc
        data = download.data
        if file.with_token:  # pasted image: its real type decides its name
            declared = image_type(data, download.content_type or declared or "") or declared
            extensions = store.policy.allowed_types.get(declared or "")
            if extensions and "." not in name:
                name += extensions[0]
        return await asyncio.to_thread(store.save, name, declared, data, owner)
