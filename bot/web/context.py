"""What the web server's handlers use, built once at start-up and kept as Sanic's ``app.ctx``.

Built from the one ``Settings`` of the process: the attachment store, the
signer of web chat sessions, the proxies believed about client addresses,
the upload rate limit, the ticket store, the knowledge base with its log of
followed links (the help pages) and the review app's services. No handler
builds a service or reads the environment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic.request import Request

from bot.attachments import AttachmentStore
from bot.catalog import Catalog
from bot.channels.web_session import SessionSigner
from bot.kb import KnowledgeBase, build_knowledge_base
from bot.kb.deflections import DeflectionLog
from bot.review.proxies import TrustedProxies
from bot.review.room import ReviewRoom
from bot.settings import Settings
from bot.sliding_window import SlidingWindow
from bot.tickets import TicketStore
from bot.tickets.factory import build_ticket_store
from bot.tickets.followup_factory import build_jsm_webhook
from bot.tickets.jsm_webhook import JsmWebhook

HERE = Path(__file__).resolve().parent


@dataclass
class WebContext:
    settings: Settings
    catalog: Catalog
    origins: frozenset[str]  # may embed the widget and call the API from a browser
    attachments: AttachmentStore  # tests set its clock
    sessions: SessionSigner
    proxies: TrustedProxies
    upload_rate: SlidingWindow  # uploads per client address a minute; tests set its clock
    session_rate: SlidingWindow  # new chat sessions per client address a minute
    tickets: TicketStore
    review: ReviewRoom
    pages: Environment
    knowledge: KnowledgeBase  # /ayuda: the embedded articles (JSM's are read on JSM's own site)
    deflections: DeflectionLog  # /ayuda/v/<token>: counts a followed link, says where it goes
    attachment_sweep: Optional["asyncio.Task[Any]"] = None  # started with the server
    jsm_webhook: Optional[JsmWebhook] = None  # POST /webhooks/jsm; None (404) without JSM_WEBHOOK_SECRET

    @classmethod
    def build(
        cls,
        settings: Settings,
        catalog: Catalog,
        tickets: Optional[TicketStore] = None,
        knowledge: Optional[KnowledgeBase] = None,
        deflections: Optional[DeflectionLog] = None,
    ) -> WebContext:
        """Every service of the web server, once; a REVIEW_TIMEZONE no zone database knows stops the start here."""
        tickets = tickets or build_ticket_store(settings, catalog)
        knowledge = knowledge or build_knowledge_base(settings.kb, settings.tickets, catalog)
        deflections = deflections or DeflectionLog(settings.tickets_db_url)
        # The review app's reading of PROXIES_COUNT, not app.config: that would also
        # change the scheme and host every other route believes.
        proxies = TrustedProxies(settings.web.proxies)
        return cls(
            settings=settings,
            catalog=catalog,
            origins=frozenset(settings.web_origins),
            attachments=AttachmentStore.from_settings(catalog, settings),
            sessions=SessionSigner(settings.secrets.web_session_secret),
            proxies=proxies,
            upload_rate=SlidingWindow(settings.web.uploads.rate_per_minute, 60.0),
            session_rate=SlidingWindow(settings.web.sessions_per_minute, 60.0),
            tickets=tickets,
            review=ReviewRoom.build(settings, catalog, tickets, proxies, deflections=deflections, articles=knowledge),
            pages=Environment(
                loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html", "xml"])
            ),
            jsm_webhook=build_jsm_webhook(settings, tickets),
            knowledge=knowledge,
            deflections=deflections,
        )


def web_context(request: Request) -> WebContext:
    """The services of the app serving ``request``."""
    context = request.app.ctx
    if not isinstance(context, WebContext):
        raise RuntimeError("the web app's ctx must be a WebContext (bot.web.app.create_app)")
    return context
