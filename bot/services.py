"""The composition root: every long-lived service is built here, from one ``Settings``, and handed out.

Each process calls the builder it needs once at start-up: the action server
(``action_services``), the web server (``bot.web.app.create_app`` builds its
own from the same settings), the delivery worker (``bot.tickets.cli``). No
module below finds a service through a global or builds one from the
environment; Rasa's own processes get theirs from the classes Rasa builds
from credentials.yml and endpoints.yml (see bot/settings/__init__.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Optional

from actions.actions import Services
from actions.adapters import DeflectionBook, DeskThread, HandoffThread, KbArticles, LiveJsm, Postbox, TicketDesk
from bot.attachments import AttachmentStore
from bot.catalog import Catalog, get_catalog
from bot.dialogue.ports import Knowledge
from bot.kb import build_knowledge_base
from bot.kb.deflections import DeflectionLog
from bot.mail import Postman
from bot.review.links import public_base
from bot.settings import Settings
from bot.thread import CsatBook, TicketThread
from bot.tickets.factory import build_ticket_store, live_status_client
from bot.tickets.store import TicketStore

logger = logging.getLogger(__name__)


def action_services(settings: Settings) -> Services:
    """What the Rasa SDK actions use: tickets, attachments, JSM's live status, the mail threads."""
    catalog = get_catalog()
    store = build_ticket_store(settings, catalog)
    files = AttachmentStore.from_settings(catalog, settings)
    live = live_status_client(settings.tickets)
    if settings.mail is None and settings.mail_error:
        logger.error("mail is off: %s", settings.mail_error)
    return Services(
        catalog=catalog,
        tickets=TicketDesk(store),
        attachments=files,
        live=LiveJsm(live) if live is not None else None,
        postman=Postbox(Postman(settings.mail)) if settings.mail is not None else None,
        handoff=HandoffThread(store, TicketThread(settings.tickets_db_url), to_jsm=settings.tickets.uses_jsm),
        thread=desk_thread(settings, catalog, store, files),
        kb=Knowledge(
            KbArticles(build_knowledge_base(settings.kb, settings.tickets, catalog)),
            # Links counted by the web app: WEB_PUBLIC_URL, else this machine on WEB_PORT (like the review links).
            DeflectionBook(DeflectionLog(settings.tickets_db_url), public_base(settings)),
        ),
    )


def desk_thread(
    settings: Settings, catalog: Catalog, store: TicketStore, files: Optional[AttachmentStore] = None
) -> DeskThread:
    """The ticket's thread for the conversation after it: answers to the agent, CSAT (actions/followup.py)."""
    url = settings.tickets_db_url
    return DeskThread(
        store,
        TicketThread(url),
        CsatBook(url),
        to_jsm=settings.tickets.uses_jsm,
        reply_window=timedelta(hours=catalog.reply_window_hours),
        waiting_statuses=catalog.waiting_statuses,
        files=files,
    )
