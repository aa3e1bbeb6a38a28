"""The interactive messages' Content API resources: created once, remembered by every server.

A reply-button or list message is sent by ``ContentSid``, so its content
must exist in Twilio first. Creating one per message would fill the
account and slow every answer, so contents are kept by their canonical
JSON's digest in a table of the tickets database (shared by all servers),
with this process's own dict in front. Two servers that need the same new
content race on the table's primary key: the one that reserves it creates
it, the other waits briefly for the SID and otherwise sends the numbered
text. The table holds digests and SIDs only, never a message's text.

When the Content API fails the customer still gets the numbered text, and
the operator one log line per cool-down rather than one per message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

import aiohttp
from sqlalchemy import Column, DateTime, String, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import declarative_base, sessionmaker

from bot.channels.http import Delivery, LoopSession, Sleep, post_with_retries
from bot.channels.whatsapp.config import WhatsAppConfig
from bot.channels.whatsapp.interactive import Content
from bot.channels.whatsapp.replies import twilio_error
from bot.http_retry import RetryPolicy
from bot.sqlengine import SchemaOnce, as_utc, db_complaint, shared_engine

logger = logging.getLogger(__name__)

Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time

CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
COOL_DOWN = 600.0  # seconds without trying the Content API after it failed
PEER_WAIT = 3.0  # seconds to wait for another server creating the same content
PEER_LOOK = 0.2
STALE_RESERVATION = timedelta(minutes=2)  # a server that reserved a content and died: another may take over
# Few quick retries: the customer is waiting for the answer.
CREATE_RETRIES = RetryPolicy(attempts=3, backoff_base=0.5, max_wait=5.0)


class ContentApiError(Exception):
    """The Content API did not create the content; ``for_this_content`` when it refused this one only (a 400)."""

    def __init__(self, message: str, for_this_content: bool = False) -> None:
        super().__init__(message)
        self.for_this_content = for_this_content


class ContentRow(Base):
    __tablename__ = "whatsapp_contents"

    key = Column(String(64), primary_key=True)  # sha256 of the content's canonical JSON
    sid = Column(String(34))  # None while the server that reserved the key creates it
    kind = Column(String(40), nullable=False)
    reserved_at = Column(DateTime(timezone=True), nullable=False)
    created_at = Column(DateTime(timezone=True))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ContentCache:
    """The table of created contents in the tickets database at ``url``; created on first use."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = shared_engine(url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False, future=True)
        self._schema = SchemaOnce(self.engine, Base.metadata)

    def sid_of(self, key: str) -> Optional[str]:
        self._schema.ensure()
        with self._sessions() as session:
            sid = session.execute(select(ContentRow.sid).where(ContentRow.key == key)).scalar_one_or_none()
            return str(sid) if sid else None

    def reserve(self, key: str, kind: str, stale_after: timedelta = STALE_RESERVATION) -> bool:
        """True when this caller must create the content: it inserted the key, or took over a stale reservation."""
        self._schema.ensure()
        moment = _now()
        try:
            with self._sessions.begin() as session:
                session.add(ContentRow(key=key, kind=kind[:40], reserved_at=moment))
            return True
        except IntegrityError:
            pass
        with self._sessions.begin() as session:
            row = session.execute(
                select(ContentRow.sid, ContentRow.reserved_at).where(ContentRow.key == key)
            ).one_or_none()
            if row is None or row.sid or moment - as_utc(row.reserved_at) < stale_after:
                return False
            taken = session.execute(
                update(ContentRow)
                .where(ContentRow.key == key, ContentRow.sid.is_(None), ContentRow.reserved_at == row.reserved_at)
                .values(reserved_at=moment)
                .execution_options(synchronize_session=False)
            )
            return bool(taken.rowcount == 1)

    def fill(self, key: str, sid: str) -> None:
        self._schema.ensure()
        with self._sessions.begin() as session:
            session.execute(
                update(ContentRow)
                .where(ContentRow.key == key)
                .values(sid=sid, created_at=_now())
                .execution_options(synchronize_session=False)
            )

    def release(self, key: str) -> None:
        """Give up a reservation whose creation failed, so a later message tries again."""
        self._schema.ensure()
        with self._sessions.begin() as session:
            session.execute(delete(ContentRow).where(ContentRow.key == key, ContentRow.sid.is_(None)))

    def forget(self, sid: str) -> None:
        """Twilio no longer knows ``sid`` (deleted in the console): the next message creates it again."""
        self._schema.ensure()
        with self._sessions.begin() as session:
            session.execute(delete(ContentRow).where(ContentRow.sid == sid))


class ContentApi:
    """``POST {content_api_url}/v1/Content`` with the account's credentials."""

    def __init__(self, config: WhatsAppConfig, http: LoopSession, retries: RetryPolicy = CREATE_RETRIES) -> None:
        self.config = config
        self.http = http
        self.retries = retries

    async def create(self, content: Content, sleep: Sleep = asyncio.sleep) -> str:
        """The new content's SID (``HX…``); ``ContentApiError`` with Twilio's reason otherwise."""

        def on_retry(failed: Delivery, wait: float) -> None:
            logger.warning("WhatsApp: la API de contenidos respondió %s; reintento en %.1fs", failed.status, wait)

        delivery = await post_with_retries(
            self.http,
            f"{self.config.content_api_url}/v1/Content",
            self.retries,
            json=content.definition(),
            auth=aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token),
            on_retry=on_retry,
            sleep=sleep,
        )
        if delivery.status == 0:
            raise ContentApiError(f"sin respuesta ({delivery.detail})")
        if not delivery.ok:
            error = twilio_error(delivery.detail)
            reason = f"HTTP {delivery.status}, código {error.get('code')}: {str(error.get('message') or '')[:200]}"
            raise ContentApiError(reason, for_this_content=delivery.status == 400)
        try:
            answer = json.loads(delivery.body)
        except ValueError:
            answer = None
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not isinstance(sid, str) or not CONTENT_SID.match(sid):
            raise ContentApiError(f"respuesta sin un SID de contenido válido (HTTP {delivery.status})")
        return sid


class Contents:
    """This process's contents: its own dict, then the shared table, then the Content API."""

    def __init__(
        self,
        api: ContentApi,
        cache: ContentCache,
        *,
        cool_down: float = COOL_DOWN,
        peer_wait: float = PEER_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = api
        self.cache = cache
        self.cool_down = cool_down
        self.peer_wait = peer_wait
        self.clock = clock
        self.sleep = sleep
        self._known: dict[str, str] = {}
        self._refused: set[str] = set()  # keys Twilio refused (400): not asked again by this process
        self._down_until = 0.0

    @classmethod
    def from_config(cls, config: WhatsAppConfig, tickets_db_url: str) -> Optional["Contents"]:
        """The process's contents, or None when interactive messages are switched off."""
        if not config.interactive:
            return None
        return cls(ContentApi(config, LoopSession()), ContentCache(tickets_db_url))

    @property
    def down(self) -> bool:
        return self.clock() < self._down_until

    async def sid_for(self, content: Content) -> Optional[str]:
        """The SID to send ``content`` by; None means: send the numbered text this time."""
        key = content.key
        known = self._known.get(key)
        if known or self.down or key in self._refused:
            return known
        async with self.api.http.lock(f"content:{key}"):
            known = self._known.get(key)
            if known:
                return known
            try:
                sid = await self._shared(content)
            except SQLAlchemyError as exc:
                self._failed(f"la tabla de contenidos no responde: {getattr(exc, 'orig', None) or type(exc).__name__}")
                return None
        if sid:
            self._known[key] = sid
        return sid

    async def forget(self, sid: str) -> None:
        for key in [key for key, known in self._known.items() if known == sid]:
            del self._known[key]
        try:
            await asyncio.to_thread(self.cache.forget, sid)
        except SQLAlchemyError as exc:
            logger.error("WhatsApp: no se pudo olvidar el contenido %s: %s", sid, db_complaint(exc))

    async def close(self) -> None:
        await self.api.http.close()

    async def _shared(self, content: Content) -> Optional[str]:
        key = content.key
        sid = await asyncio.to_thread(self.cache.sid_of, key)
        if sid:
            return sid
        if not await asyncio.to_thread(self.cache.reserve, key, content.kind):
            return await self._from_peer(key)
        try:
            sid = await self.api.create(content, sleep=self.sleep)
        except ContentApiError as exc:
            await asyncio.to_thread(self.cache.release, key)
            if exc.for_this_content:
                self._refused.add(key)
                logger.error(
                    "WhatsApp: Twilio rechazó un contenido interactivo (%s): %s; ese mensaje irá como lista numerada",
                    content.kind,
                    exc,
                )
            else:
                self._failed(str(exc))
            return None
        await asyncio.to_thread(self.cache.fill, key, sid)
        if self._down_until:
            logger.info("WhatsApp: la API de contenidos de Twilio responde de nuevo")
            self._down_until = 0.0
        return sid

    async def _from_peer(self, key: str) -> Optional[str]:
        """Another server reserved the key: its SID if it arrives soon, else None (numbered text)."""
        waited = 0.0
        while waited < self.peer_wait:
            await self.sleep(PEER_LOOK)
            waited += PEER_LOOK
            sid = await asyncio.to_thread(self.cache.sid_of, key)
            if sid:
                return sid
        logger.info("WhatsApp: otro servidor está creando el contenido %s; esta vez va la lista numerada", key[:12])
        return None

    def _failed(self, why: str) -> None:
        """Logged once per cool-down: the customers get numbered text meanwhile, the operator one line."""
        if not self.down:
            logger.error(
                "WhatsApp: la API de contenidos de Twilio falló (%s); los botones se envían como lista numerada "
                "y se vuelve a intentar en %.0f minutos",
                why,
                self.cool_down / 60,
            )
        self._down_until = self.clock() + self.cool_down
