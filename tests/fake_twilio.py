"""A local fake of Twilio's Messages API and media hosting, for offline tests.

Runs aiohttp servers on loopback in their own thread so it can serve both
in-process Sanic apps and separately started Rasa servers.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web

SID = "AC" + "0" * 32
TOKEN = "token-de-pruebas"


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
    script: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    media_hits: list[str] = field(default_factory=list)
    storage_auth: list[Optional[str]] = field(default_factory=list)
    stream_done: threading.Event = field(default_factory=threading.Event)
    stream_sent: int = 0
    api_url: str = ""
    storage_url: str = ""

    def reset(self) -> None:
        for items in (self.messages, self.message_auth, self.message_peers, self.script):
            items.clear()
        for items in (self.media_hits, self.storage_auth):
            items.clear()
        self.media.clear()
        self.stream_done.clear()
        self.stream_sent = 0

    def bodies(self) -> list[str]:
        return [m.get("Body", "") for m in self.messages]

    def media_url(self, name: str) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{SID}/Messages/MM1/Media/{name}"

    # -- handlers (run in the fake's own thread)
    @staticmethod
    def _authorized(request: web.Request) -> bool:
        return request.headers.get("Authorization") == aiohttp.BasicAuth(SID, TOKEN).encode()

    async def create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.message_auth.append(request.headers.get("Authorization"))
        self.message_peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if not self._authorized(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        fields = {key: form.getall(key) for key in form}
        self.messages.append({key: values[0] if len(values) == 1 else values for key, values in fields.items()})
        if self.script:
            status, headers, body = self.script.pop(0)
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"sid": "SM" + uuid.uuid4().hex, "status": "queued"}, status=201)

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
        storage = web.Application()
        storage.router.add_get("/storage/{name}", fake.serve_storage)
        fake.api_url = await serve(api)
        fake.storage_url = await serve(storage)

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)

    def stop() -> None:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return fake, stop
