"""The Microsoft Teams channel against a fake Microsoft, offline.

A local aiohttp server plays login.botframework.com (OpenID configuration and
signing keys), login.microsoftonline.com (the bot's token) and the Bot
Connector (replies, file downloads); tokens are signed with a key pair made
here. The channel's blueprint runs in a Sanic app whose ``on_new_message``
records what Rasa would receive and can answer through the output channel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import RasaException
from rasa.shared.utils.io import read_config_file
from sanic import Sanic
from sanic_testing import TestManager

from bot.attachments import AttachmentPolicy, AttachmentStore
from bot.catalog import Catalog
from bot.channels import teams
from bot.channels.common import CREDENTIALS_FILE, MAX_MESSAGE_CHARS, TOO_LONG, DisabledChannel, credential_variables
from bot.channels.teams import ADAPTIVE_CARD, FILE_DOWNLOAD_INFO, TeamsConfig, TeamsInput
from bot.channels.teams import config as teams_config
from bot.settings import PROJECT_ROOT

APP_ID = "8f0c1c2e-app-id"
APP_PASSWORD = "secreto-de-prueba"
TENANT = "tenant-123"
ISSUER = "https://api.botframework.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
CHOOSE = '/choose_request_type{"request_type":"gestion_archivos"}'


# ------------------------------------------------------------------ keys
@dataclasses.dataclass
class SigningKey:
    kid: str
    private_pem: bytes
    jwk: dict[str, Any]


def make_key(kid: str, endorsements: tuple[str, ...] = ("msteams",)) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "endorsements": list(endorsements)})
    return SigningKey(kid, pem, jwk)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return make_key("key-1")


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return make_key("key-1")  # same kid, different key: a forged signature


def token_for(
    key: SigningKey,
    service_url: Optional[str],
    *,
    aud: str = APP_ID,
    iss: str = ISSUER,
    expires_in: int = 3600,
    kid: Optional[str] = None,
) -> str:
    """A Bot Connector token; ``service_url=None`` leaves out the serviceurl claim."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": iss, "aud": aud, "exp": now + expires_in, "nbf": now - 10}
    if service_url is not None:
        claims["serviceurl"] = service_url
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": kid or key.kid})


# ------------------------------------------------------- fake Microsoft
class FakeMicrosoft:
    """OpenID + JWKS + token endpoint + Bot Connector, on a free loopback port."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.requests: list[tuple[str, str, Optional[str]]] = []  # method, path, Authorization
        self.token_calls: list[tuple[str, dict[str, str]]] = []
        self.activities: list[dict[str, Any]] = []
        self.send_statuses: list[tuple[int, dict[str, str]]] = []
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}  # /redirect/<name> -> Location
        # Conversations the bot is in; None accepts any. Like the Bot Connector, a message (a proactive
        # one too) needs the bot's token and a conversation the bot belongs to (404 otherwise).
        self.conversations: Optional[set[str]] = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self, prefix: str = "/") -> list[str]:
        return [path for _, path, _ in self.requests if path.startswith(prefix)]

    def issued_tokens(self) -> list[str]:
        return [f"token-{n}" for n in range(1, len(self.token_calls) + 1)]

    def build(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append((request.method, request.path, request.headers.get("Authorization")))
            return await handler(request)

        async def openid(_: web.Request) -> web.Response:
            return web.json_response({"issuer": ISSUER, "jwks_uri": f"{self.base}/keys"})

        async def keys(_: web.Request) -> web.Response:
            return web.json_response({"keys": self.keys})

        async def token(request: web.Request) -> web.Response:
            self.token_calls.append((request.path, dict(await request.post())))
            return web.json_response(
                {"token_type": "Bearer", "expires_in": 3600, "access_token": f"token-{len(self.token_calls)}"}
            )

        async def activities(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") not in {f"Bearer {t}" for t in self.issued_tokens()}:
                return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
            if self.conversations is not None and request.match_info["conversation"] not in self.conversations:
                error = {"code": "ConversationNotFound", "message": "Conversation not found."}
                return web.json_response({"error": error}, status=404)
            activity = await request.json()
            activity["_conversation"] = request.match_info["conversation"]
            activity["_authorization"] = request.headers.get("Authorization")
            self.activities.append(activity)
            if self.send_statuses:
                status, headers = self.send_statuses.pop(0)
                return web.json_response({"error": {"code": "Throttled"}}, status=status, headers=headers)
            return web.json_response({"id": f"reply-{len(self.activities)}"}, status=201)

        async def public_file(request: web.Request) -> web.Response:
            data = self.files.get(request.match_info["name"])
            return web.Response(body=data, content_type="application/octet-stream") if data else web.Response(status=404)

        async def redirect(request: web.Request) -> web.Response:
            location = self.redirects.get(request.match_info["name"])
            return web.Response(status=302, headers={"Location": location}) if location else web.Response(status=404)

        async def bot_attachment(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") not in {f"Bearer {t}" for t in self.issued_tokens()}:
                return web.Response(status=401)
            return web.Response(body=PNG, content_type="image/png")

        app = web.Application(middlewares=[record])
        app.router.add_get("/openid", openid)
        app.router.add_get("/keys", keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
        app.router.add_post("/v3/conversations/{conversation}/activities", activities)
        app.router.add_get("/files/{name}", public_file)
        app.router.add_get("/redirect/{name}", redirect)
        app.router.add_get("/v3/attachments/{id}/views/original", bot_attachment)
        return app

    def __enter__(self) -> "FakeMicrosoft":
        self.loop = asyncio.new_event_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.runner = web.AppRunner(self.build(), access_log=None)
            self.loop.run_until_complete(self.runner.setup())
            self.loop.run_until_complete(web.SockSite(self.runner, sock).start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert ready.wait(10), "fake Microsoft did not start"
        return self

    def __exit__(self, *_: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def microsoft(key: SigningKey) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft([key.jwk]) as fake:
        yield fake


# ------------------------------------------------------------ the channel
Reply = Callable[[UserMessage], Awaitable[None]]


class Rasa:
    """Stands in for Rasa's message handler: records messages, may answer."""

    def __init__(self) -> None:
        self.messages: list[UserMessage] = []
        self.reply: Optional[Reply] = None

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        if self.reply is not None:
            await self.reply(message)


@dataclasses.dataclass
class Harness:
    channel: Any
    app: Sanic
    rasa: Rasa
    microsoft: Optional[FakeMicrosoft]
    delays: list[float]

    def post(self, activity: dict[str, Any], token: Optional[str] = None, authorization: Optional[str] = None) -> Any:
        """POST an activity as the Bot Framework would: with ``token`` as bearer, or a raw header."""
        if token is not None:
            authorization = f"Bearer {token}"
        headers = {"Authorization": authorization} if authorization is not None else {}
        _, reply = self.app.test_client.post("/webhooks/teams/webhook", json=activity, headers=headers)
        return reply


def harness_for(channel: Any, microsoft: Optional[FakeMicrosoft] = None) -> Harness:
    rasa = Rasa()
    app = Sanic(f"teams_test_{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(rasa), url_prefix="/webhooks/teams")
    TestManager(app)
    delays: list[float] = []
    if isinstance(channel, TeamsInput):

        async def no_wait(seconds: float) -> None:
            delays.append(seconds)

        channel.connector.sleep = no_wait
    return Harness(channel, app, rasa, microsoft, delays)


def credentials(microsoft: FakeMicrosoft, **overrides: str) -> dict[str, str]:
    """The channel's settings against the fake: its origin (plain HTTP, loopback, its port) is the only allowed host."""
    values = {
        "app_id": APP_ID,
        "app_password": APP_PASSWORD,
        "tenant_id": TENANT,
        "openid_url": f"{microsoft.base}/openid",
        "token_url": f"{microsoft.base}/{TENANT}/oauth2/v2.0/token",
        "allowed_service_hosts": microsoft.base,
        "allowed_download_hosts": microsoft.base,
    }
    values.update(overrides)
    return values


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own data folder and tickets database (the welcome and address tables live there).

    A session's running servers (tests/conftest.py) leave their TICKETS_DB_URL in the environment.
    """
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TICKETS_DB_URL", raising=False)
    return tmp_path


@pytest.fixture
def bot(microsoft: FakeMicrosoft, data_dir: Path) -> Harness:
    return harness_for(TeamsInput.from_credentials(credentials(microsoft)), microsoft)


def activity_for(service_url: str, **fields: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "message",
        "id": f"act-{uuid.uuid4().hex[:6]}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:user-1", "name": "Ana Pérez", "aadObjectId": "aad-user-1"},
        "recipient": {"id": "28:bot-1", "name": "Soporte ecollect"},
        "conversation": {"id": "a:conv;1", "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
        "text": "hola",
    }
    activity.update(fields)
    return activity


def answer_with(harness: Harness, message: dict[str, Any]) -> None:
    async def reply(user_message: UserMessage) -> None:
        await user_message.output_channel.send_response(user_message.sender_id, dict(message))

    harness.rasa.reply = reply


# ------------------------------------------------------- offline start-up
def test_construction_and_blueprint_make_no_network_call() -> None:
    """Every Microsoft URL points at a socket that records connection attempts."""
    tripwire = socket.socket()
    tripwire.bind(("127.0.0.1", 0))
    tripwire.listen(8)
    tripwire.setblocking(False)
    url = f"http://127.0.0.1:{tripwire.getsockname()[1]}"
    try:
        channel = TeamsInput.from_credentials(
            {"app_id": APP_ID, "app_password": APP_PASSWORD, "tenant_id": TENANT,
             "openid_url": f"{url}/openid", "token_url": f"{url}/token"}
        )
        assert isinstance(channel, TeamsInput)
        harness = harness_for(channel)
        _, health = harness.app.test_client.get("/webhooks/teams/")
        assert health.status == 200 and health.json == {"status": "ok"}
        with pytest.raises(BlockingIOError):
            tripwire.accept()  # nobody connected: no key, no token was fetched
    finally:
        tripwire.close()


def test_empty_urls_mean_microsofts_endpoints() -> None:
    single = TeamsConfig.from_credentials({"app_id": "a", "app_password": "p", "tenant_id": TENANT, "openid_url": "", "token_url": None})
    multi = TeamsConfig.from_credentials({"app_id": "a", "app_password": "p", "tenant_id": ""})
    assert single.token_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert multi.token_url == "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    assert single.openid_url == multi.openid_url == "https://login.botframework.com/v1/.well-known/openidconfiguration"


# -------------------------------------------------------- authentication
def refused_requests(key: SigningKey, other_key: SigningKey, service_url: str) -> dict[str, tuple[Optional[str], dict[str, Any]]]:
    """Authorization header and activity overrides of requests that must get 401."""
    activity: dict[str, Any] = {}
    return {
        "no token": (None, activity),
        "not bearer": ("Basic dXNlcjpwYXNz", activity),
        "garbage": ("Bearer not.a.jwt", activity),
        "bad signature": ("Bearer " + token_for(other_key, service_url), activity),
        "wrong audience": ("Bearer " + token_for(key, service_url, aud="otra-app"), activity),
        "wrong issuer": ("Bearer " + token_for(key, service_url, iss="https://sts.windows.net/x/"), activity),
        "expired": ("Bearer " + token_for(key, service_url, expires_in=-400), activity),
        "unknown key": ("Bearer " + token_for(key, service_url, kid="key-unknown"), activity),
        "other service url": ("Bearer " + token_for(key, "https://evil.example/"), activity),
        "not endorsed channel": ("Bearer " + token_for(key, service_url), {"channelId": "webchat"}),
    }


@pytest.mark.parametrize(
    "case",
    ["no token", "not bearer", "garbage", "bad signature", "wrong audience", "wrong issuer", "expired",
     "unknown key", "other service url", "not endorsed channel"],
)
def test_requests_without_a_valid_bot_framework_token_are_refused(
    case: str, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, other_key: SigningKey
) -> None:
    answer_with(bot, {"text": "no debería salir"})
    authorization, overrides = refused_requests(key, other_key, microsoft.base)[case]
    reply = bot.post(activity_for(microsoft.base, **overrides), authorization=authorization)
    assert reply.status == 401
    assert bot.rasa.messages == []
    assert microsoft.activities == [] and microsoft.token_calls == []


def test_clock_skew_within_five_minutes_is_tolerated(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    reply = bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base, expires_in=-120))
    assert reply.status == 200
    assert [m.text for m in bot.rasa.messages] == ["hola"]


def test_keys_are_cached_and_refreshed_for_a_new_key_id(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    for _ in range(2):
        assert bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    assert microsoft.paths("/openid") == ["/openid"] and microsoft.paths("/keys") == ["/keys"]

    rotated = make_key("key-2")
    microsoft.keys.append(rotated.jwk)  # Microsoft publishes a new key
    assert bot.post(activity_for(microsoft.base, text="otra vez"), token=token_for(rotated, microsoft.base)).status == 200
    assert len(microsoft.paths("/keys")) == 2
    assert [m.text for m in bot.rasa.messages] == ["hola", "hola", "otra vez"]


# ------------------------------------------------------------- messages
def test_text_arrives_without_mentions_and_with_metadata(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    answer_with(bot, {"text": "¡Hola, Ana!\nCuéntame qué necesitas."})
    activity = activity_for(microsoft.base, text="<at>Soporte ecollect</at>  ¡Hola! ¿Me ayudas con un pago?\n")
    reply = bot.post(activity, token=token_for(key, microsoft.base))

    assert reply.status == 200
    [message] = bot.rasa.messages
    assert message.text == "¡Hola! ¿Me ayudas con un pago?"
    assert message.sender_id == "teams:29:user-1"
    assert message.input_channel == "teams"
    assert message.metadata == {
        "conversation_id": "a:conv;1",
        "service_url": microsoft.base,
        "tenant_id": TENANT,
        "aad_object_id": "aad-user-1",
        "user_name": "Ana Pérez",
    }
    [sent] = microsoft.activities
    assert sent["_conversation"] == "a:conv;1"
    assert sent["_authorization"] == "Bearer token-1"
    assert sent["type"] == "message" and sent["textFormat"] == "markdown"
    assert sent["text"] == "¡Hola, Ana!\n\nCuéntame qué necesitas."
    assert sent["from"] == {"id": "28:bot-1", "name": "Soporte ecollect"}
    assert sent["recipient"] == {"id": "29:user-1", "name": "Ana Pérez"}
    assert sent["conversation"] == {"id": "a:conv;1"}


def test_a_message_over_the_limit_is_refused_in_spanish_and_not_processed(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    reply = bot.post(activity_for(microsoft.base, text="a" * (MAX_MESSAGE_CHARS + 1)), token=token_for(key, microsoft.base))
    assert reply.status == 200
    assert bot.rasa.messages == []
    assert [a["text"] for a in microsoft.activities] == [TOO_LONG]


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"text": "\x00 \x1b[31mhola\x07 "}, ["[31mhola"]),
        ({"text": "<script>alert(1)</script> 🙂"}, ["<script>alert(1)</script> 🙂"]),
        ({"text": None}, []),
        ({"text": 42}, ["42"]),
        ({"text": "  \n\t "}, []),
        ({"from": {"id": "29:user-1", "name": ["no", "texto"]}}, ["hola"]),
        ({"value": {"payload": ["no", "texto"]}}, ["hola"]),
        ({"attachments": "no es una lista"}, ["hola"]),
        ({"attachments": [{"contentType": FILE_DOWNLOAD_INFO, "content": "no es un objeto"}]}, ["hola"]),
        ({"conversation": None}, ["hola"]),
        ({"conversation": ["no", "objeto"], "channelData": {"tenant": {"id": TENANT}, "extra": None}}, ["hola"]),
    ],
)
def test_odd_activities_never_get_a_5xx(
    fields: dict[str, Any], expected: list[str], bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    reply = bot.post(activity_for(microsoft.base, **fields), token=token_for(key, microsoft.base))
    assert reply.status == 200
    assert [m.text for m in bot.rasa.messages] == expected


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'"texto"'])
def test_bodies_that_are_not_an_activity_get_a_4xx(raw: bytes, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    headers = {"Authorization": f"Bearer {token_for(key, microsoft.base)}", "Content-Type": "application/json"}
    _, reply = bot.app.test_client.post("/webhooks/teams/webhook", content=raw, headers=headers)
    assert 400 <= reply.status < 500
    assert bot.rasa.messages == []


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "conversationUpdate", "membersRemoved": [{"id": "28:bot-1"}]},
        {"type": "conversationUpdate", "membersAdded": [{"id": "29:someone-else"}]},
        {"type": "conversationUpdate", "membersAdded": "28:bot-1"},
        {"type": "conversationUpdate", "membersAdded": [{"id": "28:bot-1"}],
         "conversation": {"id": "19:group", "conversationType": "groupChat", "tenantId": TENANT}},
        {"type": "typing"},
        {"type": "installationUpdate", "action": "add"},
    ],
    ids=["members removed", "someone else added", "odd members", "group chat", "typing", "installation update"],
)
def test_non_message_activities_are_acknowledged_and_ignored(
    fields: dict[str, Any], bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    answer_with(bot, {"text": "no debería salir"})
    reply = bot.post(activity_for(microsoft.base, **fields), token=token_for(key, microsoft.base))
    assert reply.status == 200
    assert bot.rasa.messages == [] and microsoft.activities == []


# ---------------------------------------------------------------- welcome
WELCOME_CARD = {
    "text": "¡Hola! Soy el asistente de la Mesa de ayuda.",
    "buttons": [{"title": "Menú", "payload": "/menu"}],
}


def installed(service_url: str, member: str = "28:bot-1") -> dict[str, Any]:
    """What Teams sends when the app is installed in a personal chat."""
    return activity_for(service_url, type="conversationUpdate", membersAdded=[{"id": member}], text=None)


def stored_address(bot: Harness) -> Any:
    """The address book entry of the test's customer; notes are written on their own thread, so wait a little."""
    for _ in range(600):  # up to 30 s: a loaded machine's background thread may be late
        address = bot.channel.inbound.book.get("teams:29:user-1")
        if address is not None:
            return address
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("member", ["28:bot-1", "29:user-1"], ids=["bot added", "user added"])
def test_installing_the_app_gets_the_greeting_through_rasa_once(
    member: str, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    answer_with(bot, WELCOME_CARD)
    assert bot.post(installed(microsoft.base, member), token=token_for(key, microsoft.base)).status == 200

    [welcome] = bot.rasa.messages
    assert (welcome.text, welcome.sender_id, welcome.input_channel) == ("/greet", "teams:29:user-1", "teams")
    [sent] = microsoft.activities
    assert sent["_conversation"] == "a:conv;1"
    assert sent["attachments"][0]["contentType"] == ADAPTIVE_CARD
    actions = sent["attachments"][0]["content"]["actions"]
    assert [a["data"]["msteams"]["value"]["payload"] for a in actions] == ["/menu"]
    address = stored_address(bot)  # kept like a message's, for the follow-up worker
    assert address is not None and address.reference.conversation_id == "a:conv;1"

    for again in (installed(microsoft.base, "28:bot-1"), installed(microsoft.base, "29:user-1")):
        assert bot.post(again, token=token_for(key, microsoft.base)).status == 200
    assert len(bot.rasa.messages) == 1 and len(microsoft.activities) == 1


def test_another_server_does_not_welcome_again(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    bot.post(installed(microsoft.base), token=token_for(key, microsoft.base))
    other = harness_for(TeamsInput.from_credentials(credentials(microsoft)), microsoft)
    other.post(installed(microsoft.base), token=token_for(key, microsoft.base))
    assert len(bot.rasa.messages) == 1 and other.rasa.messages == []


def test_no_welcome_without_a_valid_token(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, other_key: SigningKey
) -> None:
    answer_with(bot, WELCOME_CARD)
    assert bot.post(installed(microsoft.base), token=token_for(other_key, microsoft.base)).status == 401
    assert bot.post(installed(microsoft.base)).status == 401
    assert bot.rasa.messages == [] and microsoft.activities == []
    # the forged attempts claimed nothing: the real installation is still welcomed
    assert bot.post(installed(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in bot.rasa.messages] == ["/greet"]


def test_a_failed_welcome_is_tried_again_on_the_next_update(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_: UserMessage) -> None:
        raise RuntimeError("Rasa no responde")

    bot.rasa.reply = broken
    assert bot.post(installed(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    assert "Error welcoming a Teams conversation" in caplog.text
    answer_with(bot, WELCOME_CARD)
    assert bot.post(installed(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in bot.rasa.messages] == ["/greet", "/greet"]
    assert len(microsoft.activities) == 1


def test_buttons_become_an_adaptive_card_with_message_back_submits(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    buttons = [{"title": "Gestión de archivos", "payload": CHOOSE}, {"title": "Opción 2 – ñ", "payload": "/deny"}]
    answer_with(bot, {"text": "¿Qué necesitas?\nElige una opción:", "buttons": buttons})
    bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base))

    [sent] = microsoft.activities
    [card] = sent["attachments"]
    assert card["contentType"] == ADAPTIVE_CARD
    content = card["content"]
    assert [(b["type"], b["text"], b["wrap"]) for b in content["body"]] == [
        ("TextBlock", "¿Qué necesitas?", True),
        ("TextBlock", "Elige una opción:", True),
    ]
    assert content["actions"][0] == {
        "type": "Action.Submit",
        "title": "Gestión de archivos",
        "data": {
            "msteams": {
                "type": "messageBack",
                "displayText": "Gestión de archivos",
                "text": "Gestión de archivos",
                "value": {"payload": CHOOSE},
            }
        },
    }
    assert [a["data"]["msteams"]["value"]["payload"] for a in content["actions"]] == [CHOOSE, "/deny"]
    assert sent["summary"] == content["fallbackText"]


def test_a_button_click_sends_its_payload_to_rasa(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    click = activity_for(microsoft.base, text="Gestión de archivos", value={"payload": CHOOSE})
    assert bot.post(click, token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in bot.rasa.messages] == [CHOOSE]


# ------------------------------------------------------------ attachments
def file_info(url: str, name: str) -> dict[str, Any]:
    return {
        "contentType": FILE_DOWNLOAD_INFO,
        "name": name,
        "contentUrl": f"https://contoso.sharepoint.com/personal/ana/Documents/{name}",
        "content": {"downloadUrl": url, "uniqueId": "1150D938-8870-4044-9F2C", "fileType": name.rsplit(".", 1)[-1]},
    }


def test_an_uploaded_file_is_stored_and_sent_as_attach(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path) -> None:
    microsoft.files["captura.png"] = PNG
    activity = activity_for(
        microsoft.base,
        text="",
        attachments=[file_info(f"{microsoft.base}/files/captura.png", "captura.png"), {"contentType": "text/html", "content": "<p></p>"}],
    )
    assert bot.post(activity, token=token_for(key, microsoft.base)).status == 200

    [message] = bot.rasa.messages
    assert message.text == "/attach"
    [reference] = message.metadata["attachments"]
    assert reference["name"] == "captura.png" and reference["content_type"] == "image/png" and reference["size"] == len(PNG)
    stored = bot.channel.attachment_store.get(reference["id"])
    assert stored is not None and Path(stored.path).read_bytes() == PNG
    assert Path(stored.path).is_relative_to(data_dir)
    # The pre-authenticated SharePoint link never receives the bot's token.
    assert [auth for _, path, auth in microsoft.requests if path == "/files/captura.png"] == [None]


def test_a_pasted_image_is_downloaded_with_the_bot_token(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    image = {"contentType": "image/*", "contentUrl": f"{microsoft.base}/v3/attachments/0-eus-d1/views/original"}
    activity = activity_for(microsoft.base, text="mira el error", attachments=[image])
    assert bot.post(activity, token=token_for(key, microsoft.base)).status == 200

    [message] = bot.rasa.messages
    assert message.text == "mira el error"  # words win over /attach
    [reference] = message.metadata["attachments"]
    assert reference["name"] == "imagen.png" and reference["content_type"] == "image/png"
    assert microsoft.paths("/v3/attachments") == ["/v3/attachments/0-eus-d1/views/original"]


def test_a_forbidden_file_is_refused_in_spanish_without_downloading(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    microsoft.files["programa.exe"] = b"MZ" + b"\x00" * 100
    activity = activity_for(microsoft.base, text="", attachments=[file_info(f"{microsoft.base}/files/programa.exe", "programa.exe")])
    assert bot.post(activity, token=token_for(key, microsoft.base)).status == 200

    assert bot.rasa.messages == []
    [sent] = microsoft.activities
    assert sent["text"].startswith("No puedo recibir archivos de tipo «.exe»")
    assert microsoft.paths("/files") == []


def test_a_file_over_the_limit_is_refused(microsoft: FakeMicrosoft, key: SigningKey, catalog: Catalog, tmp_path: Path) -> None:
    policy = AttachmentPolicy(dataclasses.replace(catalog.attachment_field, max_bytes=100))
    channel = TeamsInput(TeamsConfig.from_credentials(credentials(microsoft)), AttachmentStore(tmp_path, policy))
    harness = harness_for(channel, microsoft)
    microsoft.files["grande.pdf"] = b"%PDF" + b"0" * 5000
    activity = activity_for(microsoft.base, text="", attachments=[file_info(f"{microsoft.base}/files/grande.pdf", "grande.pdf")])
    assert harness.post(activity, token=token_for(key, microsoft.base)).status == 200

    assert harness.rasa.messages == []
    assert [a["text"] for a in microsoft.activities] == ["El archivo «grande.pdf» pesa 4 KB; el máximo es 100 B."]
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------- sending
def test_single_tenant_token_is_fetched_once_and_reused(
    microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default token URL, pointed at the fake: only the host changes.
    monkeypatch.setattr(teams_config, "TOKEN_URL_TEMPLATE", f"{microsoft.base}/{{tenant}}/oauth2/v2.0/token")
    harness = harness_for(TeamsInput.from_credentials(credentials(microsoft, token_url="")), microsoft)
    answer_with(harness, {"text": "Recibido."})
    for _ in range(2):
        harness.post(activity_for(microsoft.base), token=token_for(key, microsoft.base))

    assert microsoft.token_calls == [
        (
            f"/{TENANT}/oauth2/v2.0/token",
            {
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_PASSWORD,
                "scope": "https://api.botframework.com/.default",
            },
        )
    ]
    assert [a["_authorization"] for a in microsoft.activities] == ["Bearer token-1", "Bearer token-1"]


def test_throttled_replies_are_retried_after_retry_after(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    microsoft.send_statuses = [(429, {"Retry-After": "2"})]
    answer_with(bot, {"text": "¡Listo!"})
    bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base))

    assert [a["text"] for a in microsoft.activities] == ["¡Listo!", "¡Listo!"]  # 429, then 201
    assert bot.delays == [2.0]
    assert len(microsoft.token_calls) == 1


def test_server_errors_are_retried_a_few_times_then_logged(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    microsoft.send_statuses = [(503, {})] * 10
    answer_with(bot, {"text": "¡Listo!"})
    with caplog.at_level(logging.ERROR, logger="bot.channels.teams"):
        assert bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base)).status == 200

    assert len(microsoft.activities) == teams.SEND_ATTEMPTS
    assert bot.delays == [0.5, 1.0, 2.0]  # exponential backoff without Retry-After
    assert any("not sent after" in r.getMessage() for r in caplog.records)


def test_client_errors_are_not_retried(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    microsoft.send_statuses = [(400, {})]
    answer_with(bot, {"text": "¡Listo!"})
    bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base))
    assert len(microsoft.activities) == 1 and bot.delays == []


# --------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "given, missing",
    [
        (None, ["app_id", "app_password"]),
        ({"app_id": APP_ID, "app_password": "", "tenant_id": TENANT}, ["app_password"]),
        ({"app_id": "  ", "app_password": APP_PASSWORD}, ["app_id"]),
    ],
)
def test_missing_credentials_disable_the_channel(given: Optional[dict[str, str]], missing: list[str]) -> None:
    channel = TeamsInput.from_credentials(given)
    assert isinstance(channel, DisabledChannel)
    assert channel.name() == "teams" and channel.missing == missing
    harness = harness_for(channel)
    _, reply = harness.app.test_client.post("/webhooks/teams/webhook", json=activity_for("https://smba.example/"))
    assert reply.status == 503 and reply.json["missing"] == missing
    assert harness.rasa.messages == []


def test_credentials_file_block_loads_the_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The block in credentials.yml, read as Rasa reads it (env vars expanded)."""
    from rasa.core.run import _create_single_channel
    from rasa.shared.utils.io import read_config_file

    for name in ("TEAMS_OPENID_URL", "TEAMS_TOKEN_URL"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("TEAMS_APP_PASSWORD", APP_PASSWORD)
    monkeypatch.setenv("TEAMS_TENANT_ID", TENANT)
    for name in credential_variables():  # the other channels' variables (WhatsApp's...), blank as the launcher sets them
        if not name.startswith("TEAMS_"):
            monkeypatch.setenv(name, "")
    block = read_config_file(PROJECT_ROOT / "credentials.yml")["bot.channels.teams.TeamsInput"]

    channel = _create_single_channel("bot.channels.teams.TeamsInput", block)
    assert isinstance(channel, TeamsInput)
    assert channel.config.app_id == APP_ID and channel.config.tenant_id == TENANT
    assert channel.config.token_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"

    monkeypatch.setenv("TEAMS_APP_PASSWORD", "")
    block = read_config_file(PROJECT_ROOT / "credentials.yml")["bot.channels.teams.TeamsInput"]
    assert isinstance(_create_single_channel("bot.channels.teams.TeamsInput", block), DisabledChannel)


def test_the_launcher_knows_every_variable_credentials_yml_references(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa refuses to start on an unset ``${VAR}``: the launcher sets these to "" when absent.

    Read as Rasa reads the file, in an environment with only those variables:
    all of them are enough, and each one is needed.
    """
    names = credential_variables()
    assert {"TWILIO_AUTH_TOKEN", "WHATSAPP_PUBLIC_URL", "TEAMS_APP_PASSWORD", "TEAMS_TOKEN_URL"} <= set(names)
    with monkeypatch.context() as patched:
        patched.setattr(os, "environ", {name: "" for name in names})
        assert "bot.channels.whatsapp.WhatsAppInput" in read_config_file(CREDENTIALS_FILE)
        for left_out in names:
            patched.setattr(os, "environ", {name: "" for name in names if name != left_out})
            with pytest.raises(RasaException, match=left_out):
                read_config_file(CREDENTIALS_FILE)


def test_credential_variables_are_read_from_values_not_comments(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "# Secrets come from ${COMMENTED}.\n"
        "canal.A:\n"
        "  token: ${TOKEN_A}\n"
        "  url: https://${HOST_1}/ruta/${TOKEN_A}\n"
        "  # old: ${OLD_TOKEN}\n"
        "canal.B:\n"
        "  token: ${TOKEN_B}\n",
        encoding="utf-8",
    )
    assert credential_variables(credentials) == ("TOKEN_A", "HOST_1", "TOKEN_B")
