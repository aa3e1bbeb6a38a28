"""A local fake of Twilio's Messages API and media hosting, for offline tests.

Runs aiohttp servers on loopback in their own thread so it can serve both
in-process Sanic apps and separately started Rasa servers.

Like Twilio, it checks a content template send (``ContentSid`` must look
like ``HX`` + 32 hex digits: 21655; ``ContentVariables`` a JSON object of
non-empty values: 21656; variables without a template: 21654; nothing to
send: 21619), and keeps each accepted message as a resource that can be
fetched (``GET …/Messages/{Sid}.json``). With ``enforce_window`` on, free
text to a number that has not written within 24 hours
(``customer_wrote``) is accepted and then fails with 63016 on the message,
which is how Twilio reports it; ``window_answer = "request"`` refuses the
request itself with 63016 instead.

The Content API runs on its own loopback server (``content_url``), like
Twilio's own host: it creates ``twilio/quick-reply`` and
``twilio/list-picker`` contents after checking them as Twilio documents
(400 with Twilio's error JSON otherwise), lists and fetches them, counts
creations and can be scripted to fail (``content_script``, or
``content_outage`` for every request). The Messages API then refuses a
``ContentSid`` it does not know (21655): neither created here nor an
approved template (``approved``); for a known one it records what the
customer sees (``shown``). ``tap`` builds the signed webhook of a
customer tapping a button or a list row.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

SID = "AC" + "0" * 32
TOKEN = "token-de-pruebas"
WINDOW_SECONDS = 24 * 3600
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
OUTSIDE_WINDOW = 63016
# The approved template every fake account has (the follow-up worker's, outside the window).
APPROVED_TEMPLATE_SID = "HX" + "ab12" * 8
QUICK_REPLY = "twilio/quick-reply"
LIST_PICKER = "twilio/list-picker"
SESSION_TYPES = (QUICK_REPLY, LIST_PICKER)  # only inside the 24-hour window, never approved
OUTSIDE_WINDOW_MESSAGE = (
    "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template."
)


def _error(code: int, message: str, status: int = 400) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status=status,
    )


@dataclass
class Media:
    data: bytes
    content_type: str
    mode: str = "plain"  # plain | redirect | endless | no-length


@dataclass
class FakeTwilio:
    """Twilio's Messages API and media URLs, plus a storage host media redirects to."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    message_auth: list[Optional[str]] = field(default_factory=list)
    message_peers: list[Any] = field(default_factory=list)  # the client's (host, port) of each message
    # When each request to create a message arrived (time.monotonic(), this process's clock), beside ``messages``.
    message_times: list[float] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    media_hits: list[str] = field(default_factory=list)
    storage_auth: list[Optional[str]] = field(default_factory=list)
    stream_done: threading.Event = field(default_factory=threading.Event)
    stream_sent: int = 0
    api_url: str = ""
    storage_url: str = ""
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # accepted messages by Message SID
    enforce_window: bool = False
    window_answer: str = "status"  # "status": 63016 on the message (Twilio's way); "request": on the POST
    inbound: dict[str, float] = field(default_factory=dict)  # "whatsapp:+57…" -> when the customer last wrote
    content_url: str = ""
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)  # created contents by Content SID
    content_requests: list[dict[str, Any]] = field(default_factory=list)  # every create request's JSON
    content_auth: list[Optional[str]] = field(default_factory=list)
    content_script: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    content_outage: Optional[tuple[int, dict[str, str], dict[str, Any]]] = None  # answered to every request
    content_delay: float = 0.0  # seconds each create takes (two servers racing)
    approved: set[str] = field(default_factory=lambda: {APPROVED_TEMPLATE_SID})

    def reset(self) -> None:
        for items in (self.messages, self.message_auth, self.message_peers, self.script):
            items.clear()
        self.message_times.clear()
        self.resources.clear()
        self.inbound.clear()
        self.enforce_window = False
        self.window_answer = "status"
        for items in (self.media_hits, self.storage_auth):
            items.clear()
        self.media.clear()
        self.stream_done.clear()
        self.stream_sent = 0
        for kept in (self.contents, self.content_requests, self.content_auth, self.content_script):
            kept.clear()
        self.content_outage = None
        self.content_delay = 0.0
        self.approved = {APPROVED_TEMPLATE_SID}

    # -- what the customer sees
    @property
    def creations(self) -> int:
        """How many contents the Content API created."""
        return len(self.contents)

    def content_of(self, message: dict[str, Any]) -> Optional[tuple[str, dict[str, Any]]]:
        """(type, data) of the interactive content a message request carried, if any."""
        content = self.contents.get(str(message.get("ContentSid") or ""))
        if content is None:
            return None
        kind, data = next(iter(content["types"].items()))
        return kind, data

    def shown(self, message: dict[str, Any]) -> str:
        """The text the customer sees for a message request: its Body, or an interactive message's body and options."""
        found = self.content_of(message)
        if found is None:
            return str(message.get("Body") or "")
        kind, data = found
        if kind == QUICK_REPLY:
            options = [f"[{action['title']}]" for action in data["actions"]]
        else:
            options = [f"[{data['button']}]"] + [f"- {row['item']}: {row['description']}" for row in data["items"]]
        return "\n".join([data["body"], *options])

    def shown_to(self, address: str, after: int = 0) -> list[str]:
        return [self.shown(m) for m in self.messages[after:] if m.get("To") == address]

    def options_to(self, address: str) -> list[tuple[str, str, str]]:
        """(kind, id, title) of the options of the last interactive message sent to ``address``."""
        for message in reversed(self.messages):
            found = self.content_of(message) if message.get("To") == address else None
            if found is not None:
                kind, data = found
                if kind == QUICK_REPLY:
                    return [("button", a["id"], a["title"]) for a in data["actions"]]
                return [("list", row["id"], row["item"]) for row in data["items"]]
        return []

    def bodies(self) -> list[str]:
        return [m.get("Body", "") for m in self.messages]

    def customer_wrote(self, address: str, at: Optional[float] = None) -> None:
        """The customer at ``address`` wrote (now, or at epoch ``at``): WhatsApp's 24-hour window opens."""
        self.inbound[address] = time.time() if at is None else at

    def window_open(self, address: str) -> bool:
        wrote = self.inbound.get(address)
        return wrote is not None and time.time() - wrote < WINDOW_SECONDS

    def accepted(self) -> list[dict[str, Any]]:
        """The messages Twilio created (not the refused or throttled requests), in order."""
        return list(self.resources.values())

    def templates(self) -> list[tuple[str, dict[str, Any]]]:
        """(ContentSid, ContentVariables) of every accepted template send."""
        return [
            (m["content_sid"], json.loads(m["content_variables"] or "{}")) for m in self.accepted() if m["content_sid"]
        ]

    def media_url(self, name: str) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{SID}/Messages/MM1/Media/{name}"

    # -- handlers (run in the fake's own thread)
    @staticmethod
    def _authorized(request: web.Request) -> bool:
        return request.headers.get("Authorization") == aiohttp.BasicAuth(SID, TOKEN).encode()

    async def create_message(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        form = await request.post()
        self.message_auth.append(request.headers.get("Authorization"))
        self.message_peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if not self._authorized(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        fields = {key: form.getall(key) for key in form}
        message = {key: values[0] if len(values) == 1 else values for key, values in fields.items()}
        self.messages.append(message)
        self.message_times.append(arrived)
        if self.script:
            status, headers, body = self.script.pop(0)
            return web.json_response(body, status=status, headers=headers)
        refused = self._refusal(message)
        if refused is not None:
            return refused
        if self._outside_window(message) and self.window_answer == "request":
            return _error(OUTSIDE_WINDOW, OUTSIDE_WINDOW_MESSAGE)
        return web.json_response(self._create(message), status=201)

    def _outside_window(self, message: dict[str, Any]) -> bool:
        """Free text or a session content (no approved template) to a WhatsApp customer silent for 24 hours."""
        to = str(message.get("To") or "")
        free_text = not message.get("ContentSid") or str(message.get("ContentSid")) in self.contents
        return self.enforce_window and free_text and to.startswith("whatsapp:") and not self.window_open(to)

    def _refusal(self, message: dict[str, Any]) -> Optional[web.Response]:
        """Twilio's own checks of a message request, with its error codes."""
        content_sid, variables = message.get("ContentSid"), message.get("ContentVariables")
        if variables is not None and not content_sid:
            return _error(21654, "ContentSid Required")
        if content_sid is not None and not CONTENT_SID.match(str(content_sid)):
            return _error(21655, "The ContentSid is Invalid")
        if content_sid is not None and content_sid not in self.contents and content_sid not in self.approved:
            return _error(21655, "The ContentSid is Invalid")
        if variables is not None:
            try:
                parsed = json.loads(str(variables))
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict) or any(v is None or v == "" for v in parsed.values()):
                return _error(21656, "The ContentVariables Parameter is invalid")
        if not (message.get("Body") or message.get("MediaUrl") or content_sid):
            return _error(21619, "A text message body or media urls must be specified.")
        return None

    def _create(self, message: dict[str, Any]) -> dict[str, Any]:
        """The Message resource; free text outside the window fails later with 63016, as on Twilio."""
        sid = "SM" + uuid.uuid4().hex
        to = str(message.get("To") or "")
        refused = self._outside_window(message)
        resource = {
            "sid": sid,
            "account_sid": SID,
            "to": to,
            "from": message.get("From"),
            "body": message.get("Body") or "",
            "content_sid": message.get("ContentSid"),
            "content_variables": message.get("ContentVariables"),
            "shown": self.shown(message),
            "status": "failed" if refused else "delivered",
            "error_code": OUTSIDE_WINDOW if refused else None,
            "error_message": OUTSIDE_WINDOW_MESSAGE if refused else None,
        }
        self.resources[sid] = resource
        return {**resource, "status": "queued", "error_code": None, "error_message": None}

    # -- the Content API
    async def create_content(self, request: web.Request) -> web.Response:
        self.content_auth.append(request.headers.get("Authorization"))
        if not self._authorized(request):
            return _error(20003, "Authenticate", 401)
        try:
            definition = await request.json()
        except ValueError:
            return _error(20001, "Invalid JSON body")
        self.content_requests.append(definition)
        if self.content_delay:
            await asyncio.sleep(self.content_delay)
        scripted = self.content_script.pop(0) if self.content_script else self.content_outage
        if scripted is not None:
            status, headers, body = scripted
            return web.json_response(body, status=status, headers=headers)
        problem = content_problem(definition)
        if problem:
            return _error(20001, problem)
        sid = "HX" + uuid.uuid4().hex
        resource = {
            "sid": sid,
            "account_sid": SID,
            "friendly_name": definition.get("friendly_name"),
            "language": definition.get("language"),
            "variables": definition.get("variables") or {},
            "types": definition["types"],
            "url": f"{self.content_url}/v1/Content/{sid}",
            "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.contents[sid] = resource
        return web.json_response(resource, status=201)

    async def list_contents(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(20003, "Authenticate", 401)
        return web.json_response({"contents": list(self.contents.values()), "meta": {"page": 0, "key": "contents"}})

    async def fetch_content(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(20003, "Authenticate", 401)
        content = self.contents.get(request.match_info["sid"])
        if content is None:
            return _error(20404, "The requested resource was not found", 404)
        return web.json_response(content)

    async def fetch_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(20003, "Authenticate", 401)
        resource = self.resources.get(request.match_info["msg"])
        if resource is None:
            return _error(20404, "The requested resource was not found", 404)
        return web.json_response(resource)

    async def serve_media(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.media_hits.append(name)
        if not self._authorized(request):
            return web.Response(status=401)
        media = self.media[name]
        if media.mode == "redirect":
            raise web.HTTPFound(f"{self.storage_url}/storage/{name}")
        if media.mode == "endless":
            return await self._endless(request, media)
        if media.mode == "no-length":
            stream = web.StreamResponse(headers={"Content-Type": media.content_type})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            await stream.write(media.data)
            await stream.write_eof()
            return stream
        return web.Response(body=media.data, content_type=media.content_type)

    async def _endless(self, request: web.Request, media: Media) -> web.StreamResponse:
        """A body far beyond any limit: only a client that stops reading finishes early."""
        stream = web.StreamResponse(headers={"Content-Type": media.content_type})
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        try:
            while self.stream_sent < 64 * 1024 * 1024:
                await stream.write(b"x" * 65536)
                self.stream_sent += 65536
                await asyncio.sleep(0)
            await stream.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.stream_done.set()
        return stream

    async def serve_storage(self, request: web.Request) -> web.Response:
        self.storage_auth.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization"):
            return web.Response(status=400, text="Only one auth mechanism allowed")
        media = self.media[request.match_info["name"]]
        return web.Response(body=media.data, content_type=media.content_type)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text_problem(data: dict[str, Any], key: str, limit: int, where: str) -> Optional[str]:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        return f"{where}: '{key}' is required"
    if _units(value) > limit:
        return f"{where}: '{key}' exceeds the maximum length of {limit} characters"
    return None


def content_problem(definition: Any) -> Optional[str]:
    """What Twilio would refuse in a create request (WhatsApp's in-session limits), or None."""
    if not isinstance(definition, dict) or not isinstance(definition.get("types"), dict) or not definition["types"]:
        return "Types are required"
    if not definition.get("language"):
        return "Language is required"
    for kind, data in definition["types"].items():
        if not isinstance(data, dict):
            return f"{kind}: invalid type definition"
        problem = _text_problem(data, "body", 1024, kind)
        if problem:
            return problem
        if kind == QUICK_REPLY:
            actions = data.get("actions")
            if not isinstance(actions, list) or not 1 <= len(actions) <= 10:
                return f"{kind}: between 1 and 10 actions are required"
            for action in actions:
                problem = _text_problem(action, "title", 20, kind) or _text_problem(action, "id", 200, kind)
                if problem:
                    return problem
        elif kind == LIST_PICKER:
            items = data.get("items")
            problem = _text_problem(data, "button", 20, kind)
            if problem:
                return problem
            if not isinstance(items, list) or not 1 <= len(items) <= 10:
                return f"{kind}: between 1 and 10 items are required"
            for item in items:
                problem = (
                    _text_problem(item, "item", 24, kind)
                    or _text_problem(item, "id", 200, kind)
                    or _text_problem(item, "description", 72, kind)
                )
                if problem:
                    return problem
        elif kind != "twilio/text":
            return f"{kind}: content type not supported by this fake"
    return None


def tap(
    webhook_url: str,
    sender: str,
    option: tuple[str, str, str],
    to: str = "whatsapp:+14155238886",
    token: str = TOKEN,
) -> tuple[dict[str, str], dict[str, str]]:
    """The form and headers of Twilio's webhook when ``sender`` taps ``option`` ((kind, id, title)), signed."""
    kind, option_id, title = option
    params = {
        "From": sender,
        "To": to,
        "Body": title,
        "ProfileName": "Ana",
        "MessageSid": "SM" + uuid.uuid4().hex,
        "NumMedia": "0",
        "MessageType": "interactive" if kind == "list" else "button",
    }
    if kind == "list":
        params.update({"ListId": option_id, "ListTitle": title})
    else:
        params.update({"ButtonPayload": option_id, "ButtonText": title})
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(webhook_url, params)}
    return params, headers


def start_fake_twilio() -> tuple["FakeTwilio", Callable[[], None]]:
    """Start the fake; returns it and a function that stops it."""
    fake = FakeTwilio()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        runners.append(runner)
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def start() -> None:
        api = web.Application()
        api.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.create_message)
        api.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{msg}/Media/{name}", fake.serve_media)
        api.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{msg}.json", fake.fetch_message)
        storage = web.Application()
        storage.router.add_get("/storage/{name}", fake.serve_storage)
        content = web.Application()
        content.router.add_post("/v1/Content", fake.create_content)
        content.router.add_get("/v1/Content", fake.list_contents)
        content.router.add_get("/v1/Content/{sid}", fake.fetch_content)
        fake.api_url = await serve(api)
        fake.storage_url = await serve(storage)
        fake.content_url = await serve(content)

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)

    def stop() -> None:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return fake, stop
