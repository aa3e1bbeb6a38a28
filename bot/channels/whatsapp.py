"""WhatsApp through Twilio, replacing Rasa's own ``twilio`` connector.

Rasa's connector rewrites "¡" as "@", ignores media, trusts any caller and
sends with Twilio's blocking client. This one checks Twilio's signature,
keeps the text exactly as the customer wrote it, stores media in the
project's ``AttachmentStore``, turns buttons into numbered lists (WhatsApp
has no buttons) and talks to Twilio's REST API with aiohttp.

Webhook: ``POST /webhooks/whatsapp/webhook``; health: ``GET /webhooks/whatsapp/``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import mimetypes
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterable, List, Optional, Text
from urllib.parse import parse_qs, urlsplit

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered
from sanic import Blueprint, response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.attachments import AttachmentRefused, AttachmentStore, StoredAttachment, human_size, safe_filename
from bot.catalog import get_catalog
from bot.channels.common import DisabledChannel, StoresCustomerFiles, missing_credentials, screen_message, webhook_blueprint
from bot.channels.identity import WHATSAPP_PREFIX
from bot.http_retry import parse_retry_after, retryable_status
from bot.privacy import mask_sender
from bot.text import contains_phrase, normalize
from bot.validation import check_phone

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"
DEFAULT_API_URL = "https://api.twilio.com"
REQUIRED_CREDENTIALS = ("account_sid", "auth_token", "whatsapp_number")
WHATSAPP_PREFIX = "whatsapp:"
ATTACH_TEXT = "/attach"  # payload-only intent `attach`: a file sent without words

# Twilio refuses bodies over 1600 characters (counted like UTF-16 units).
MAX_BODY = 1600

# Customer-facing Spanish.
CHOICE_HINT = "Responde con el número o el nombre de la opción."
DOWNLOAD_FAILED = "No pude recibir tu archivo. Por favor, envíalo de nuevo."


def _too_large(name: str, max_bytes: int) -> AttachmentRefused:
    limit = human_size(max_bytes)
    return AttachmentRefused("too_large", f"El archivo «{name}» pesa más de {limit}, el máximo permitido.")


# ------------------------------------------------------------- small helpers
class _Recent:
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


def with_prefix(address: str) -> str:
    """Twilio needs the ``whatsapp:`` prefix on both ends, or it sends an SMS."""
    address = (address or "").strip()
    return address if address.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + address


def sender_phone(address: Optional[str]) -> Optional[str]:
    """E.164 of a WhatsApp sender in a served country, else None.

    The form fills the ticket's phone with it; a number from a country the
    help desk does not serve would only be refused later, so it is not passed.
    """
    raw = (address or "").strip()
    if raw.startswith(WHATSAPP_PREFIX):
        raw = raw[len(WHATSAPP_PREFIX):]
    if not raw:
        return None
    check = check_phone(raw, get_catalog().country_ids)
    return check.e164 if check.ok else None


# ------------------------------------------------------------ body splitting
def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _hard_cut(text: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current, size = "", 0
    for char in text:
        width = _units(char)
        if size + width > limit:
            chunks.append(current)
            current, size = "", 0
        current, size = current + char, size + width
    return chunks + ([current] if current else [])


def _pack(text: str, separators: tuple[str, ...], limit: int) -> list[str]:
    """Greedy packing on the coarsest separator that works (paragraph, line, word)."""
    if _units(text) <= limit:
        return [text]
    if not separators:
        return _hard_cut(text, limit)
    separator, finer = separators[0], separators[1:]
    chunks: list[str] = []
    current = ""
    for part in text.split(separator):
        for piece in _pack(part, finer, limit):
            candidate = f"{current}{separator}{piece}" if current else piece
            if _units(candidate) <= limit:
                current = candidate
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def split_body(text: str, limit: int = MAX_BODY) -> list[str]:
    """Message bodies Twilio accepts, cut on paragraph boundaries when possible."""
    chunks = _pack((text or "").strip(), ("\n\n", "\n", " "), limit)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


# ------------------------------------------------------------------- buttons
def numbered_choices(text: str, buttons: Iterable[Dict[str, Any]]) -> str:
    lines = [f"{index}. {button_title(button)}" for index, button in enumerate(buttons, start=1)]
    return "\n\n".join(part for part in ((text or "").strip(), "\n".join(lines), CHOICE_HINT) if part)


def button_title(button: Dict[str, Any]) -> str:
    return str(button.get("title") or button.get("payload") or "")


_NUMBER_WORDS = {
    word: number
    for number, words in enumerate(
        (
            ("uno", "una", "primero", "primera"),
            ("dos", "segundo", "segunda"),
            ("tres", "tercero", "tercera"),
            ("cuatro", "cuarto", "cuarta"),
            ("cinco", "quinto", "quinta"),
            ("seis", "sexto", "sexta"),
            ("siete", "septimo", "septima"),
            ("ocho", "octavo", "octava"),
            ("nueve", "noveno", "novena"),
            ("diez", "decimo", "decima"),
        ),
        start=1,
    )
    for word in words
}
# Words around a choice that carry no meaning: "la 2", "opción 2", "la de pagos".
_FILLER = frozenset(
    "la el lo los las de del opcion numero nro num n a al en y o un una por favor quiero elijo escojo".split()
)


def _words(text: str) -> list[str]:
    return [word.strip(".") for word in normalize(text).split() if word.strip(".")]


def _choice_number(words: list[str]) -> Optional[int]:
    meaningful = [w for w in words if w not in _FILLER or w in _NUMBER_WORDS]
    if len(meaningful) != 1:
        return None
    word = meaningful[0].rstrip(")")
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


def _trim_filler(words: list[str]) -> list[str]:
    """ "la de pagos" -> "pagos": filler only at the ends, never inside a title."""
    start, end = 0, len(words)
    while start < end and words[start] in _FILLER:
        start += 1
    while end > start and words[end - 1] in _FILLER:
        end -= 1
    return words[start:end]


def _covers(reply: str, title: str) -> bool:
    """The reply is the title plus filler words ("la de pagos en línea")."""
    if not title or not contains_phrase(reply, title):
        return False
    rest = f" {reply} ".replace(f" {title} ", " ", 1).split()
    return all(word in _FILLER for word in rest)


def choose_button(reply: str, buttons: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The button a typed reply unambiguously designates, if any."""
    words = _words(reply)
    if not words or not buttons:
        return None
    text = " ".join(words)
    titles = [(" ".join(_words(button_title(b))), b) for b in buttons]
    exact = [b for title, b in titles if title == text]
    if len(exact) == 1:
        return exact[0]
    number = _choice_number(words)
    if number is not None:
        return buttons[number - 1] if 1 <= number <= len(buttons) else None
    if all(word in _FILLER for word in words):
        return None
    core = " ".join(_trim_filler(words))
    partial = [b for title, b in titles if contains_phrase(title, core) or _covers(text, title)]
    return partial[0] if len(partial) == 1 else None


def button_payload(button: Dict[str, Any]) -> str:
    return str(button.get("payload") or button.get("title") or "")


# -------------------------------------------------------------------- output
class WhatsAppOutput(OutputChannel):
    """Sends through Twilio's Messages API without blocking the event loop."""

    max_attempts = 4
    backoff_base = 1.0  # seconds; doubled on each retry
    max_wait = 30.0  # never wait longer than this for one retry
    timeout = aiohttp.ClientTimeout(total=30)

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        whatsapp_number: str,
        api_url: str = DEFAULT_API_URL,
        sent_buttons: Optional[_Recent] = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.whatsapp_number = with_prefix(whatsapp_number)
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        # What this process last offered each recipient; used to read numbered
        # replies only when no tracker store is available.
        self.sent_buttons = sent_buttons if sent_buttons is not None else _Recent()

    @property
    def messages_url(self) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.sent_buttons.pop(recipient_id)
        await self._send_body(recipient_id, text)

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        self.sent_buttons.put(recipient_id, list(buttons))
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

    async def _send_body(self, recipient_id: str, text: str) -> None:
        for part in split_body(text):
            await self._create_message(recipient_id, [("Body", part)])

    async def _create_message(self, recipient_id: str, fields: list[tuple[str, str]]) -> bool:
        """POST one message, retrying what Twilio says is temporary (429, 5xx, network)."""
        form = [("From", self.whatsapp_number), ("To", with_prefix(recipient_id)), *fields]
        auth = aiohttp.BasicAuth(self.account_sid, self.auth_token)
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            for attempt in range(1, self.max_attempts + 1):
                last = attempt == self.max_attempts
                try:
                    async with session.post(self.messages_url, data=form, auth=auth) as reply:
                        if reply.status < 300:
                            return True
                        error = await _twilio_error(reply)
                        if not retryable_status(reply.status) or last:
                            logger.error(
                                "WhatsApp: Twilio refused the message to %s (HTTP %s, code %s): %s",
                                mask_sender(recipient_id), reply.status, error.get("code"), error.get("message"),
                            )
                            return False
                        wait = parse_retry_after(reply.headers.get("Retry-After"))
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    if last:
                        logger.error("WhatsApp: could not reach Twilio to message %s: %r", mask_sender(recipient_id), exc)
                        return False
                    wait = None
                if wait is None:
                    wait = self.backoff_base * 2 ** (attempt - 1)
                await asyncio.sleep(min(wait, self.max_wait))
        return False


async def _twilio_error(reply: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await reply.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return {"code": None, "message": (await reply.text())[:300]}
    return body if isinstance(body, dict) else {"code": None, "message": str(body)[:300]}


# --------------------------------------------------------------------- input
@dataclass
class Incoming:
    """The fields of a Twilio WhatsApp webhook this channel uses."""

    sender: str
    body: str
    message_sid: str
    profile_name: str
    media: list[tuple[str, str]] = field(default_factory=list)  # (url, declared content type)

    @classmethod
    def from_params(cls, params: RequestParameters) -> "Incoming":
        try:
            count = int(params.get("NumMedia") or 0)
        except ValueError:
            count = 0
        media = [
            (params.get(f"MediaUrl{i}"), params.get(f"MediaContentType{i}") or "")
            for i in range(count)
            if params.get(f"MediaUrl{i}")
        ]
        return cls(
            sender=params.get("From") or "",
            body=params.get("Body") or "",
            message_sid=params.get("MessageSid") or params.get("SmsMessageSid") or "",
            profile_name=params.get("ProfileName") or "",
            media=media,
        )


def form_params(request: Request) -> RequestParameters:
    """The webhook's form fields, blank ones included.

    Sanic's ``request.form`` drops blank values, but Twilio signs them (a
    media-only message has ``Body=``), so the signature would never match.
    """
    body = (request.body or b"").decode("utf-8", errors="replace")
    return RequestParameters(parse_qs(body, keep_blank_values=True))


class _SenderTurn:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class WhatsAppInput(StoresCustomerFiles, InputChannel):
    """Twilio WhatsApp webhook."""

    answer_within = 10.0  # seconds; Twilio gives up on a webhook after 15

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        missing = missing_credentials(credentials, REQUIRED_CREDENTIALS)
        if missing:
            return DisabledChannel(CHANNEL_NAME, "WhatsApp", missing)
        credentials = credentials or {}

        def value(key: str) -> str:
            return str(credentials.get(key) or "").strip()

        return cls(
            account_sid=value("account_sid"),
            auth_token=value("auth_token"),
            whatsapp_number=value("whatsapp_number"),
            api_url=value("api_url") or DEFAULT_API_URL,
            public_url=value("public_url") or None,
        )

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        whatsapp_number: str,
        api_url: str = DEFAULT_API_URL,
        public_url: Optional[str] = None,
        attachment_store: Optional[AttachmentStore] = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.whatsapp_number = with_prefix(whatsapp_number)
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.public_url = public_url or None
        self.validator = RequestValidator(auth_token)
        self._attachment_store = attachment_store
        self._sent_buttons = _Recent()
        self._seen_sids = _Recent(limit=5_000)
        self._turns: dict[str, _SenderTurn] = {}
        self._tasks: set[asyncio.Task] = set()

    def get_output_channel(self) -> WhatsAppOutput:
        return WhatsAppOutput(
            self.account_sid, self.auth_token, self.whatsapp_number, self.api_url, sent_buttons=self._sent_buttons
        )

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
            if incoming.message_sid:
                if incoming.message_sid in self._seen_sids:
                    logger.info("WhatsApp: duplicate delivery of %s ignored", incoming.message_sid)
                    return _twiml()
                self._seen_sids.put(incoming.message_sid, True)
            agent = getattr(request.app.ctx, "agent", None)
            await self._hand_over(self._handle(incoming, agent, on_new_message))
            return _twiml()

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
        if not self.public_url:
            return request.url
        if request.query_string and not urlsplit(self.public_url).query:
            return f"{self.public_url}?{request.query_string}"
        return self.public_url

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
        attachments, refusals = await self.receive_media(incoming)
        for refusal in refusals:
            await output.send_text_message(incoming.sender, refusal)

        text, refusal = screen_message(incoming.body)
        if refusal:
            await output.send_text_message(incoming.sender, refusal)
            return
        if text.strip():
            text = await self.translate_choice(incoming.sender, text, agent)
        elif attachments:
            text = ATTACH_TEXT
        else:
            logger.debug("WhatsApp: message %s has nothing to process", incoming.message_sid)
            return

        message = UserMessage(
            text,
            output,
            incoming.sender,
            input_channel=self.name(),
            message_id=incoming.message_sid or None,
            metadata=self.metadata_of(incoming, attachments),
        )
        await on_new_message(message)

    @staticmethod
    def metadata_of(incoming: Incoming, attachments: list[StoredAttachment]) -> dict[str, Any]:
        metadata: dict[str, Any] = {"profile_name": incoming.profile_name, "message_sid": incoming.message_sid}
        phone = sender_phone(incoming.sender)
        if phone:
            metadata["sender_phone"] = phone
        if attachments:
            metadata["attachments"] = [
                {"id": a.id, "name": a.name, "content_type": a.content_type, "size": a.size} for a in attachments
            ]
        return metadata

    # -------------------------------------------------------------- buttons
    async def translate_choice(self, sender: str, text: str, agent: Any) -> str:
        """A typed choice ("2", "la 2", an option's name) becomes that button's payload."""
        buttons = await self.last_buttons(sender, agent)
        if not buttons:
            return text
        chosen = choose_button(text, buttons)
        return button_payload(chosen) if chosen else text

    async def last_buttons(self, sender: str, agent: Any) -> Optional[List[Dict[str, Any]]]:
        """Buttons of the conversation's last bot message, from the shared tracker store.

        The tracker store is shared by every server, whereas this process's own
        record only knows what this process sent.
        """
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return self._sent_buttons.get(sender)
        try:
            tracker = store.retrieve(sender)
            if inspect.isawaitable(tracker):
                tracker = await tracker
        except Exception:  # noqa: BLE001 - fall back rather than lose the message
            logger.exception("WhatsApp: could not read the tracker of %s", mask_sender(sender))
            return self._sent_buttons.get(sender)
        if tracker is None:
            return None
        for event in reversed(list(tracker.events)):
            if isinstance(event, BotUttered):
                data = event.data or {}
                return data.get("buttons") or data.get("quick_replies") or None
        return None

    # ---------------------------------------------------------------- media
    async def receive_media(self, incoming: Incoming) -> tuple[list[StoredAttachment], list[str]]:
        """Download and store each file; returns what was stored and the Spanish refusals."""
        stored: list[StoredAttachment] = []
        refusals: list[str] = []
        if not incoming.media:
            return stored, refusals
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            for index, (url, declared) in enumerate(incoming.media, start=1):
                name = self.media_name(incoming, index, declared)
                try:
                    stored.append(await self._fetch_and_store(session, url, name, declared, incoming.sender))
                except AttachmentRefused as refused:
                    logger.info("WhatsApp: attachment refused (%s) from %s", refused.code, mask_sender(incoming.sender))
                    refusals.append(refused.message)
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    logger.error("WhatsApp: could not download media of %s: %r", incoming.message_sid, exc)
                    refusals.append(DOWNLOAD_FAILED)
        return stored, refusals

    @staticmethod
    def media_name(incoming: Incoming, index: int, declared: str) -> str:
        """WhatsApp sends no file name: name it after the message, typed by its content type."""
        tail = (incoming.message_sid[-6:] or "wa").lower()
        suffix = f"-{index}" if len(incoming.media) > 1 else ""
        extension = mimetypes.guess_extension(declared.split(";")[0].strip()) or ""
        return safe_filename(f"adjunto-{tail}{suffix}{extension}")

    async def _fetch_and_store(
        self, session: aiohttp.ClientSession, url: str, name: str, declared: str, owner: str
    ) -> StoredAttachment:
        store = self.attachment_store
        store.policy.content_type_for(name, declared)  # refuse a bad type before downloading it
        limit = store.policy.max_bytes
        async with session.get(url, auth=self._media_auth(url), allow_redirects=True) as reply:
            reply.raise_for_status()
            declared = declared or reply.headers.get("Content-Type", "")
            if reply.content_length is not None and reply.content_length > limit:
                store.policy.check(name, declared, reply.content_length)  # raises with the size
            data = bytearray()
            async for chunk in reply.content.iter_chunked(64 * 1024):
                data.extend(chunk)
                if len(data) > limit:
                    raise _too_large(name, limit)
        return await asyncio.to_thread(store.save, name, declared, bytes(data), owner)

    def _media_auth(self, url: str) -> Optional[aiohttp.BasicAuth]:
        """Twilio's credentials go only to Twilio.

        Passed per request (not as the session default) so aiohttp drops them
        when Twilio redirects to its storage host, which rejects them anyway.
        """
        host = (urlsplit(url).hostname or "").lower()
        api_host = (urlsplit(self.api_url).hostname or "").lower()
        if host == api_host or host == "twilio.com" or host.endswith(".twilio.com"):
            return aiohttp.BasicAuth(self.account_sid, self.auth_token)
        logger.warning("WhatsApp: media host %s is not Twilio; downloading without credentials", host)
        return None


def _twiml() -> HTTPResponse:
    """Empty TwiML: replies go through the REST API, not the webhook answer."""
    return response.text(str(MessagingResponse()), content_type="text/xml")
