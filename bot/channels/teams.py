"""Microsoft Teams, through the Bot Framework, as a channel of the assistant.

Replaces Rasa's ``botframework`` connector, which cannot serve this project:
it downloads Microsoft's signing keys when it is constructed (the assistant
could not start offline, or at all while login.botframework.com is slow),
only knows the multi-tenant token endpoint that new Azure bots no longer get,
blocks the event loop with ``requests`` and turns Teams button clicks into
empty messages.

Here nothing touches the network until traffic arrives: the OpenID
configuration, its keys and the bot's access token are fetched on first use
and cached. Incoming requests are accepted only with a valid Bot Framework
JWT; button clicks carry their Rasa payload in ``value.payload``; files are
stored with ``AttachmentStore`` and reach the form as attachment ids.

Messaging endpoint: ``https://<host>/webhooks/teams/webhook``.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import mimetypes
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Text
from urllib.parse import quote, urlsplit

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import AttachmentRefused, AttachmentStore, StoredAttachment, human_size
from bot.channels.common import DisabledChannel, StoresCustomerFiles, missing_credentials, screen_message, webhook_blueprint
from bot.http_retry import parse_retry_after, retryable_status

logger = logging.getLogger(__name__)

CHANNEL_NAME = "teams"
DEFAULT_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TOKEN_URL_TEMPLATE = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MULTI_TENANT = "botframework.com"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"

HERO_CARD = "application/vnd.microsoft.card.hero"
FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
ATTACH_TEXT = "/attach"  # payload of the form's `attach` intent: a file without words
# Teams shows at most six buttons on a hero card; longer menus become several cards.
MAX_CARD_BUTTONS = 6

TOKEN_LEEWAY_S = 300  # clock skew tolerated on exp/nbf, as Microsoft's SDKs do
KEYS_TTL_S = 24 * 3600  # Microsoft rotates signing keys; re-read them daily
UNKNOWN_KID_REFRESH_S = 60  # a forged kid must not make us hammer the key endpoint
ACCESS_TOKEN_MARGIN_S = 300  # renew the outgoing token this long before it expires
SEND_ATTEMPTS = 4
MAX_RETRY_DELAY_S = 30.0
API_TIMEOUT = aiohttp.ClientTimeout(total=30)
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120)
# Hosts where Teams keeps inline images; only they (and the activity's own
# service host) ever receive the bot's access token.
TOKEN_HOST_SUFFIXES = (".botframework.com", ".trafficmanager.net", ".skype.com", ".teams.microsoft.com")

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_MENTION = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_NEWLINES = re.compile(r"\s*\n\s*")
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

Sleep = Callable[[float], Awaitable[None]]


class Unauthorized(Exception):
    """An incoming request that does not prove it comes from the Bot Framework."""


class TokenError(Exception):
    """The bot could not obtain its access token (wrong secret, tenant, network)."""


# --------------------------------------------------------------- configuration
@dataclass(frozen=True)
class TeamsConfig:
    app_id: str
    app_password: str
    tenant_id: str = ""
    openid_url: str = DEFAULT_OPENID_URL
    token_url: str = ""

    def __post_init__(self) -> None:
        # Empty settings mean "Microsoft's defaults", so credentials.yml can
        # reference every variable while deployers set only what they need.
        if not self.openid_url:
            object.__setattr__(self, "openid_url", DEFAULT_OPENID_URL)
        if not self.token_url:
            tenant = self.tenant_id or MULTI_TENANT
            object.__setattr__(self, "token_url", TOKEN_URL_TEMPLATE.format(tenant=tenant))

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> "TeamsConfig":
        def value(key: str) -> str:
            return str(credentials.get(key) or "").strip()

        return cls(
            app_id=value("app_id"),
            app_password=value("app_password"),
            tenant_id=value("tenant_id"),
            openid_url=value("openid_url"),
            token_url=value("token_url"),
        )


class _LoopResources:
    """An aiohttp session and locks for the running event loop.

    Sessions and locks belong to the loop that created them; Sanic may run
    the channel in a new loop (worker restarts, test servers), so they are
    recreated when the loop changes instead of being built at construction.
    """

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self._locks: dict[str, asyncio.Lock] = {}

    def _ensure_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._session, self._locks = loop, None, {}

    def session(self) -> aiohttp.ClientSession:
        self._ensure_loop()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=True, timeout=API_TIMEOUT)
        return self._session

    def lock(self, name: str) -> asyncio.Lock:
        self._ensure_loop()
        return self._locks.setdefault(name, asyncio.Lock())

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


# ------------------------------------------------------------ incoming tokens
@dataclass(frozen=True)
class _SigningKey:
    key: Any
    endorsements: tuple[str, ...]


class BotFrameworkAuth:
    """Verifies the JWT the Bot Framework puts on every request to the bot."""

    def __init__(self, config: TeamsConfig, http: _LoopResources, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self._keys: dict[str, _SigningKey] = {}
        self._fetched_at: Optional[float] = None
        self._unknown_kid_refresh_at: Optional[float] = None

    async def verify(self, authorization: Optional[str], activity: Mapping[str, Any]) -> dict[str, Any]:
        """The token's claims, or ``Unauthorized`` saying why it was refused."""
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"malformed token: {exc}") from exc
        if header.get("alg") != "RS256":
            raise Unauthorized(f"unexpected algorithm {header.get('alg')!r}")
        signing_key = await self._signing_key(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key=signing_key.key,
                algorithms=["RS256"],
                audience=self.config.app_id,
                issuer=BOT_FRAMEWORK_ISSUER,
                leeway=TOKEN_LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        check_activity_claims(claims, signing_key, activity)
        return claims

    async def _signing_key(self, kid: str) -> _SigningKey:
        if not kid:
            raise Unauthorized("token without key id")
        now = self.clock()
        if self._fetched_at is None or now - self._fetched_at > KEYS_TTL_S:
            await self._refresh(reason="expired" if self._fetched_at else "first request")
        elif kid not in self._keys and self._may_refresh_for_unknown_kid(now):
            await self._refresh(reason=f"unknown key id {kid}")
        if kid not in self._keys:
            raise Unauthorized(f"unknown key id {kid}")
        return self._keys[kid]

    def _may_refresh_for_unknown_kid(self, now: float) -> bool:
        if self._unknown_kid_refresh_at is not None and now - self._unknown_kid_refresh_at < UNKNOWN_KID_REFRESH_S:
            return False
        self._unknown_kid_refresh_at = now
        return True

    async def _refresh(self, reason: str) -> None:
        seen = self._fetched_at
        async with self.http.lock("keys"):
            if self._fetched_at != seen:
                return  # a concurrent request refreshed them while we waited
            try:
                self._keys = await self._fetch_keys()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                logger.error("Could not fetch Bot Framework signing keys (%s): %s", reason, exc)
                if not self._keys:
                    raise Unauthorized("signing keys unavailable") from exc
                return  # keep the keys we have; retry at the next expiry
            self._fetched_at = self.clock()
            logger.info("Bot Framework signing keys fetched (%s): %d keys.", reason, len(self._keys))

    async def _fetch_keys(self) -> dict[str, _SigningKey]:
        session = self.http.session()
        async with session.get(self.config.openid_url) as reply:
            reply.raise_for_status()
            configuration = await reply.json(content_type=None)
        async with session.get(configuration["jwks_uri"]) as reply:
            reply.raise_for_status()
            jwks = await reply.json(content_type=None)
        keys: dict[str, _SigningKey] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (jwt.PyJWTError, ValueError) as exc:
                logger.warning("Ignoring unusable Bot Framework key %s: %s", jwk.get("kid"), exc)
                continue
            keys[jwk["kid"]] = _SigningKey(public_key, tuple(jwk.get("endorsements") or ()))
        return keys


def bearer_token(authorization: Optional[str]) -> str:
    match = _BEARER.match(authorization or "")
    if not match:
        raise Unauthorized("no bearer token")
    return match.group(1)


def check_activity_claims(claims: Mapping[str, Any], signing_key: _SigningKey, activity: Mapping[str, Any]) -> None:
    """Binds the token to this activity, so a token for one service cannot be replayed with another.

    The ``serviceurl`` claim is where replies (carrying our access token) go;
    endorsements restrict which channels a Microsoft key may sign for.
    """
    claimed = claims.get("serviceurl")
    if claimed is not None and not _same_url(str(claimed), str(activity.get("serviceUrl") or "")):
        raise Unauthorized("serviceUrl does not match the token")
    channel = str(activity.get("channelId") or "")
    if signing_key.endorsements and channel not in signing_key.endorsements:
        raise Unauthorized(f"key not endorsed for channel {channel!r}")


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


# ------------------------------------------------------------ Bot Connector
@dataclass(frozen=True)
class ConversationReference:
    """Where a reply goes: taken from the incoming activity, as Bot Framework requires."""

    service_url: str
    conversation_id: str
    bot: dict[str, Any]
    user: dict[str, Any]
    activity_id: Optional[str] = None

    @classmethod
    def from_activity(cls, activity: Mapping[str, Any]) -> "ConversationReference":
        conversation = activity.get("conversation") or {}
        return cls(
            service_url=str(activity.get("serviceUrl") or ""),
            conversation_id=str(conversation.get("id") or ""),
            bot=_account(activity.get("recipient")),
            user=_account(activity.get("from")),
            activity_id=activity.get("id"),
        )

    @property
    def activities_url(self) -> str:
        conversation = quote(self.conversation_id, safe="")
        return f"{self.service_url.rstrip('/')}/v3/conversations/{conversation}/activities"


def _account(value: Any) -> dict[str, Any]:
    value = value if isinstance(value, Mapping) else {}
    return {k: value[k] for k in ("id", "name") if value.get(k)}


class BotConnector:
    """The bot's side of the Bot Connector API: its access token, replies and file downloads."""

    def __init__(self, config: TeamsConfig, http: _LoopResources, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self.sleep: Sleep = asyncio.sleep
        self._token: Optional[str] = None
        self._token_expires_at = 0.0

    async def access_token(self) -> str:
        if self._token and self.clock() < self._token_expires_at:
            return self._token
        async with self.http.lock("token"):
            if self._token and self.clock() < self._token_expires_at:
                return self._token  # fetched by a concurrent request
            self._token, lifetime = await self._fetch_token()
            margin = min(ACCESS_TOKEN_MARGIN_S, lifetime / 2)
            self._token_expires_at = self.clock() + lifetime - margin
            return self._token

    def forget_token(self) -> None:
        self._token, self._token_expires_at = None, 0.0

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.app_id,
            "client_secret": self.config.app_password,
            "scope": BOT_FRAMEWORK_SCOPE,
        }
        try:
            async with self.http.session().post(self.config.token_url, data=form) as reply:
                status, raw = reply.status, await reply.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TokenError(f"{self.config.token_url} unreachable: {exc}") from exc
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            # Entra ID explains a wrong secret or tenant in error_description; never log the secret.
            error = (body.get("error_description") or body.get("error")) if isinstance(body, dict) else raw[:200]
            raise TokenError(f"{self.config.token_url} answered {status}: {error}")
        return str(body["access_token"]), float(body.get("expires_in") or 3600)

    async def send(self, reference: ConversationReference, activity: dict[str, Any]) -> bool:
        """POST one activity; retries throttling and server errors, then logs and gives up."""
        url = reference.activities_url
        token_renewed = False
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                headers = {"Authorization": f"Bearer {await self.access_token()}"}
                async with self.http.session().post(url, json=activity, headers=headers) as reply:
                    if reply.status < 300:
                        return True
                    detail = (await reply.text())[:500]
                    retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                    status = reply.status
            except TokenError as exc:
                logger.error("Teams reply not sent: no access token (%s).", exc)
                return False
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status, detail, retry_after = 0, str(exc) or type(exc).__name__, None
            if status == 401 and not token_renewed:
                self.forget_token()  # revoked or rotated secret: one retry with a new token
                token_renewed = True
                continue
            if status and not retryable_status(status):
                logger.error("Teams refused a reply to %s: %s %s", reference.conversation_id, status, detail)
                return False
            if attempt < SEND_ATTEMPTS:
                delay = min(retry_after if retry_after is not None else 0.5 * 2 ** (attempt - 1), MAX_RETRY_DELAY_S)
                logger.warning("Teams reply failed (%s %s); retry %d in %.1fs.", status or "network", detail, attempt, delay)
                await self.sleep(delay)
        logger.error("Teams reply to %s not sent after %d attempts: %s %s", reference.conversation_id, SEND_ATTEMPTS, status, detail)
        return False

    async def download(self, url: str, max_bytes: int, with_token: bool) -> tuple[bytes, str]:
        """The file's bytes and declared type; ``FileTooLarge`` past ``max_bytes``, without reading it all."""
        headers = {"Authorization": f"Bearer {await self.access_token()}"} if with_token else {}
        async with self.http.session().get(url, headers=headers, timeout=DOWNLOAD_TIMEOUT) as reply:
            reply.raise_for_status()
            if reply.content_length is not None and reply.content_length > max_bytes:
                raise FileTooLarge()
            data = bytearray()
            async for chunk in reply.content.iter_chunked(64 * 1024):
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise FileTooLarge()
            return bytes(data), reply.headers.get("Content-Type", "")


class FileTooLarge(Exception):
    """A download stopped at the attachment size limit."""


# ------------------------------------------------------------------ output
def markdown_text(text: str) -> str:
    """Bot text as Teams markdown: each line its own paragraph.

    Teams joins lines separated by a single newline, and the mobile clients
    do not render markdown lists, so every line break becomes a paragraph.
    """
    return _NEWLINES.sub("\n\n", text.strip())


def card_text(text: str) -> str:
    """Bot text for a card: Teams renders card text as simple XML, not markdown."""
    return "<br>".join(html.escape(line, quote=False) for line in text.strip().splitlines())


def card_action(button: Mapping[str, Any]) -> dict[str, Any]:
    """A Rasa button as a Teams action whose click sends the payload back to Rasa."""
    title = str(button.get("title") or button.get("payload") or "")
    if button.get("url") or button.get("type") == "web_url":
        return {"type": "openUrl", "title": title, "value": button.get("url") or button.get("payload")}
    payload = str(button.get("payload") or title)
    return {"type": "messageBack", "title": title, "displayText": title, "text": title, "value": {"payload": payload}}


def hero_cards(text: Optional[str], buttons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    actions = [card_action(b) for b in buttons]
    chunks = [actions[i : i + MAX_CARD_BUTTONS] for i in range(0, len(actions), MAX_CARD_BUTTONS)] or [[]]
    cards = []
    for index, chunk in enumerate(chunks):
        content: dict[str, Any] = {"buttons": chunk}
        if index == 0 and text:
            content["text"] = card_text(text)
        cards.append({"contentType": HERO_CARD, "content": content})
    return cards


class TeamsOutput(OutputChannel):
    """Sends the assistant's replies into the Teams conversation they answer."""

    def __init__(self, connector: BotConnector, reference: ConversationReference) -> None:
        self.connector = connector
        self.reference = reference

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def activity(self, **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": "message",
            "from": self.reference.bot,
            "recipient": self.reference.user,
            "conversation": {"id": self.reference.conversation_id},
        }
        if self.reference.activity_id:
            activity["replyToId"] = self.reference.activity_id
        activity.update(fields)
        return activity

    async def send_activity(self, activity: dict[str, Any]) -> bool:
        return await self.connector.send(self.reference, activity)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_activity(self.activity(text=markdown_text(text), textFormat="markdown"))

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_activity(self.activity(attachmentLayout="list", attachments=hero_cards(text, buttons)))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        card = {"contentType": HERO_CARD, "content": {"images": [{"url": image}]}}
        await self.send_activity(self.activity(attachments=[card]))

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, f"Adjunto: {attachment}")

    async def send_elements(self, recipient_id: Text, elements: Iterable[dict[str, Any]], **kwargs: Any) -> None:
        cards = []
        for element in elements:
            card = hero_cards(element.get("subtitle") or element.get("text"), element.get("buttons") or [])[0]
            if element.get("title"):
                card["content"]["title"] = element["title"]
            if element.get("image_url"):
                card["content"]["images"] = [{"url": element["image_url"]}]
            cards.append(card)
        if cards:
            await self.send_activity(self.activity(attachmentLayout="carousel", attachments=cards))

    async def send_custom_json(self, recipient_id: Text, json_message: dict[str, Any], **kwargs: Any) -> None:
        """Lets responses carry Teams-specific activities (e.g. Adaptive Cards) unchanged."""
        await self.send_activity(self.activity(**json_message))


# ------------------------------------------------------------------- input
def incoming_text(activity: Mapping[str, Any]) -> str:
    """What Rasa reads: a clicked button's payload, else the typed text without @mentions."""
    value = activity.get("value")
    if isinstance(value, Mapping) and isinstance(value.get("payload"), str) and value["payload"].strip():
        return value["payload"].strip()
    text = _MENTION.sub(" ", str(activity.get("text") or ""))
    return _SPACES.sub(" ", text).strip()


def incoming_metadata(activity: Mapping[str, Any]) -> dict[str, Any]:
    conversation = activity.get("conversation") or {}
    sender = activity.get("from") or {}
    channel_data = activity.get("channelData") or {}
    tenant = conversation.get("tenantId") or (channel_data.get("tenant") or {}).get("id")
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
    with_token: bool


def incoming_files(activity: Mapping[str, Any]) -> list[IncomingFile]:
    """Files a customer sent: Teams uploads and pasted images (not the HTML copy of the text)."""
    files: list[IncomingFile] = []
    images: list[Mapping[str, Any]] = []
    for attachment in activity.get("attachments") or ():
        if not isinstance(attachment, Mapping):
            continue
        content_type = str(attachment.get("contentType") or "")
        if content_type == FILE_DOWNLOAD_INFO:
            content = attachment.get("content") or {}
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


def may_receive_token(url: str, service_url: str) -> bool:
    """Only Microsoft's hosts get the bot's token, whatever URL an activity names."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or urlsplit(url).scheme not in ("https", "http"):
        return False
    if host == (urlsplit(service_url).hostname or "").lower():
        return True
    return urlsplit(url).scheme == "https" and host.endswith(TOKEN_HOST_SUFFIXES)


@dataclass
class ReceivedFiles:
    stored: list[StoredAttachment] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def metadata(self) -> list[dict[str, Any]]:
        return [{"id": s.id, "name": s.name, "content_type": s.content_type, "size": s.size} for s in self.stored]


class TeamsInput(StoresCustomerFiles, InputChannel):
    """The Teams webhook: verifies Bot Framework requests and hands messages to Rasa."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[dict[str, Any]]) -> InputChannel:
        missing = missing_credentials(credentials, ("app_id", "app_password"))
        if missing:
            return DisabledChannel(CHANNEL_NAME, "Microsoft Teams", missing)
        return cls(TeamsConfig.from_credentials(credentials or {}))

    def __init__(self, config: TeamsConfig, attachment_store: Optional[AttachmentStore] = None) -> None:
        self.config = config
        self.http = _LoopResources()
        self.auth = BotFrameworkAuth(config, self.http)
        self.connector = BotConnector(config, self.http)
        self._attachment_store = attachment_store

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = webhook_blueprint("teams_webhook")

        @hook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            return await self.handle_request(request, on_new_message)

        @hook.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            await self.http.close()

        return hook

    async def handle_request(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        authorization = request.headers.get("Authorization")
        if not _BEARER.match(authorization or ""):
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

        if activity.get("type") != "message":
            logger.debug("Ignoring Teams activity of type %s.", activity.get("type"))
            return response.json({}, status=200)
        try:
            await self.handle_message(activity, on_new_message)
        except Exception:  # noqa: BLE001 - a failing turn must not make Teams resend the activity
            logger.exception("Error handling Teams message %s.", activity.get("id"))
        return response.json({}, status=200)

    async def handle_message(
        self, activity: Mapping[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        reference = ConversationReference.from_activity(activity)
        output = TeamsOutput(self.connector, reference)
        sender_id = str((activity.get("from") or {}).get("id") or "")
        text, refusal = screen_message(incoming_text(activity))
        if refusal:
            await output.send_text_message(sender_id, refusal)
            return
        text = text.strip()
        files = await self.receive_files(activity)
        for refusal in files.refusals:
            await output.send_text_message(sender_id, refusal)
        if not text and files.stored:
            text = ATTACH_TEXT
        if not text:
            return  # nothing Rasa could read (an empty message, or only refused files)
        metadata = incoming_metadata(activity)
        if files.stored:
            metadata["attachments"] = files.metadata()
        message = UserMessage(
            text=text,
            output_channel=output,
            sender_id=sender_id,
            input_channel=self.name(),
            message_id=activity.get("id"),
            metadata=metadata,
        )
        await on_new_message(message)

    async def receive_files(self, activity: Mapping[str, Any]) -> ReceivedFiles:
        received = ReceivedFiles()
        incoming = incoming_files(activity)
        if not incoming:
            return received
        store = self.attachment_store
        if len(incoming) > store.policy.max_files:
            logger.info("Teams message with %d files; keeping the first %d.", len(incoming), store.policy.max_files)
        service_url = str(activity.get("serviceUrl") or "")
        for file in incoming[: store.policy.max_files]:
            try:
                received.stored.append(await self.receive_file(file, service_url, store))
            except AttachmentRefused as refused:
                logger.info("Teams file %r refused: %s", file.name, refused.code)
                received.refusals.append(refused.message)
        return received

    async def receive_file(self, file: IncomingFile, service_url: str, store: AttachmentStore) -> StoredAttachment:
        name, declared = file.name, file.declared_type
        if declared != "image/*":
            store.policy.content_type_for(name, declared)  # refuse a forbidden type before downloading it
        with_token = file.with_token and may_receive_token(file.url, service_url)
        try:
            data, served_type = await self.connector.download(file.url, store.policy.max_bytes, with_token)
        except FileTooLarge:
            raise AttachmentRefused(
                "too_large", f"El archivo «{name}» supera el máximo de {human_size(store.policy.max_bytes)}."
            ) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, TokenError) as exc:
            logger.error("Could not download Teams file %r: %s", name, exc)
            raise AttachmentRefused(
                "download_failed", f"No pude descargar el archivo «{name}». Intenta enviarlo de nuevo."
            ) from exc
        if file.with_token:  # pasted image: its real type decides its name
            declared = image_type(data, served_type or declared or "") or declared
            extensions = store.policy.allowed_types.get(declared or "")
            if extensions and "." not in name:
                name += extensions[0]
        return await asyncio.to_thread(store.save, name, declared, data)
