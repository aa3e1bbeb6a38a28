"""A local stand-in for the Rasa 3.6 server's conversation API, built from Rasa's own parts.

Serves ``GET /conversations/{id}/tracker`` and ``POST
/conversations/{id}/tracker/events`` the way rasa/server.py does: the token
in the ``token`` query parameter (401 with Rasa's error body otherwise),
``include_events`` checked against Rasa's verbosities, the body validated
with Rasa's own event JSON schema and turned into events by
``Event.from_parameters``, applied to a real ``DialogueStateTracker`` (a new
one starts its session first), and the answer is the tracker's
``current_state``. Like Sanic's router for Rasa's ``<conversation_id:path>``,
the id is taken from the raw path, without percent-decoding.

Runs aiohttp on loopback in its own thread, so the code under test talks
real HTTP to it. The real server's test is left to the full assistant.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jsonschema
import rasa
from aiohttp import web
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.utils.schemas.events import EVENTS_SCHEMA

TOKEN = "token-de-la-api-de-rasa"
# Sanic's ``path`` parameter pattern, as Rasa's routes use it (non-greedy, not starting with "/").
ROUTE = re.compile(r"^/conversations/(?P<id>[^/].*?)/(?P<tail>tracker|tracker/events)$")


def rasa_error(status: int, reason: str, message: str) -> web.Response:
    body = {
        "version": rasa.__version__,
        "status": "failure",
        "message": message,
        "reason": reason,
        "details": {},
        "help": None,
        "code": status,
    }
    return web.json_response(body, status=status)


@dataclass
class FakeRasaApi:
    token: str = TOKEN
    domain: Domain = field(default_factory=Domain.empty)
    trackers: dict[str, DialogueStateTracker] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # method, raw path, JSON body
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before serving normally
    url: str = ""

    def events_of(self, conversation_id: str) -> list[dict[str, Any]]:
        tracker = self.trackers.get(conversation_id)
        return [event.as_dict() for event in tracker.events] if tracker is not None else []

    def appended(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(conversation id, events) of every accepted append, in order."""
        found = []
        for method, path, body in self.requests:
            match = ROUTE.match(path)
            if method == "POST" and match and isinstance(body, list):
                found.append((match.group("id"), body))
        return found

    def _tracker(self, conversation_id: str) -> DialogueStateTracker:
        tracker = self.trackers.get(conversation_id)
        if tracker is None:  # Rasa starts a new conversation's session before anything else
            tracker = DialogueStateTracker(conversation_id, self.domain.slots)
            for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
                tracker.update(event, self.domain)
            self.trackers[conversation_id] = tracker
        return tracker

    async def handle(self, request: web.Request) -> web.Response:
        raw_path = request.rel_url.raw_path
        body: Any = None
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                return rasa_error(400, "BadRequest", "Request body must be JSON.")
        self.requests.append((request.method, raw_path, body))
        match = ROUTE.match(raw_path)
        if match is None:
            return rasa_error(404, "NotFound", "Requested URL not found")
        if request.query.get("token") != self.token:
            return rasa_error(401, "NotAuthenticated", "User is not authenticated.")
        if self.fail_next:
            return rasa_error(self.fail_next.pop(0), "ConversationError", "An unexpected error occurred.")
        try:
            verbosity = EventVerbosity[request.query.get("include_events", "AFTER_RESTART").upper()]
        except KeyError:
            return rasa_error(400, "BadRequest", "Invalid parameter value for 'include_events'.")
        conversation_id, tail = match.group("id"), match.group("tail")
        if tail == "tracker" and request.method == "GET":
            return web.json_response(self._tracker(conversation_id).current_state(verbosity))
        if tail == "tracker/events" and request.method == "POST":
            events = body if isinstance(body, list) else [body]
            try:
                jsonschema.validate(events, EVENTS_SCHEMA)
            except jsonschema.ValidationError as error:
                return rasa_error(400, "BadRequest", f"Failed to validate the events format. Error: {error.message}")
            parsed = [e for e in (Event.from_parameters(event) for event in events) if e]
            if not parsed:
                return rasa_error(400, "BadRequest", "Couldn't extract a proper event from the request body.")
            tracker = self._tracker(conversation_id)
            for event in parsed:
                tracker.update(event, self.domain)
            return web.json_response(tracker.current_state(verbosity))
        return rasa_error(405, "MethodNotAllowed", "Method not allowed")


def start_fake_rasa_api(token: str = TOKEN) -> tuple[FakeRasaApi, Callable[[], None]]:
    """Start the fake on a free loopback port; returns it and a function that stops it."""
    fake = FakeRasaApi(token=token)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        runners.append(runner)
        fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)

    def stop() -> None:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return fake, stop


def reset(fake: FakeRasaApi, token: Optional[str] = None) -> FakeRasaApi:
    fake.trackers.clear()
    fake.requests.clear()
    fake.fail_next.clear()
    if token is not None:
        fake.token = token
    return fake
