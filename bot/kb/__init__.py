"""The knowledge base the assistant answers from before a ticket is opened: one interface, two backends.

``KnowledgeBase.search(text, request_type=None, k=3)`` returns up to ``k``
``Match``es (bot/kb/model.py) at or above the relevance threshold, best
first; ``get(article_id)`` one article. Behind it, JSM's knowledge base when
it is configured (``KB_BACKEND``, bot/settings/kb.py), with the embedded
Markdown articles of ``kb/`` as the fallback whenever JSM is slow, down,
refusing or has nothing relevant; the embedded base alone otherwise.

Both are synchronous and may take up to ``KB_JSM_TIMEOUT`` (JSM): call them
from the action's worker thread (as the status lookup does,
actions/actions.py ``run_in_executor``), never on the event loop. One
instance per process, built by the composition root (``build_knowledge_base``)
and shared by the threads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from bot.catalog import Catalog
from bot.kb.analysis import Analyzer
from bot.kb.embedded import EmbeddedBase
from bot.kb.jsm import JsmArticles, KbUnavailable
from bot.kb.model import EMBEDDED, JSM, Article, ArticleSearch, Match
from bot.kb.synonyms import Synonyms
from bot.settings.kb import KbSettings
from bot.settings.tickets import TicketsSettings
from bot.text import clean_text

__all__ = [
    "EMBEDDED",
    "JSM",
    "Article",
    "ArticleSearch",
    "KnowledgeBase",
    "Match",
    "build_knowledge_base",
]

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000  # a pasted log is not a question: its start is enough to search


class KnowledgeBase:
    """The search the dialogue calls; JSM first when there is one, the embedded articles otherwise."""

    def __init__(
        self,
        embedded: EmbeddedBase,
        jsm: Optional[JsmArticles] = None,
        *,
        threshold: float = 0.45,
        retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.embedded = embedded
        self.jsm = jsm
        self.threshold = threshold
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._jsm_down = False
        self._jsm_paused_until = 0.0

    @property
    def backend(self) -> str:
        """Which base answers first: ``jsm`` or ``embedded``."""
        return JSM if self.jsm is not None else EMBEDDED

    def search(
        self, text: str, request_type: Optional[str] = None, k: int = 3, *, threshold: Optional[float] = None
    ) -> list[Match]:
        """Up to ``k`` articles for the customer's ``text`` (a question or a description), best first.

        ``request_type``: the catalog id the conversation is about, if known
        (its articles are favoured). ``threshold``: this call's least score
        (default ``KB_THRESHOLD``). Never raises for JSM's failures.
        """
        question = clean_text(text)[:MAX_QUESTION_CHARS]
        least = self.threshold if threshold is None else threshold
        if k <= 0 or not question.strip():
            return []
        if self.jsm is not None and self.clock() >= self._jsm_paused_until:
            try:
                found = self.jsm.search(question, request_type, k, least)
            except KbUnavailable as exc:
                self._jsm_failed(exc)
            else:
                self._jsm_answered()
                if found:
                    return found
        return self.embedded.search(question, request_type, k, least)

    def get(self, article_id: str) -> Optional[Article]:
        """An article by id (``jsm-…`` ids: one JSM returned recently), e.g. for the link redirect."""
        if self.jsm is not None and article_id.startswith("jsm-"):
            return self.jsm.get(article_id)
        return self.embedded.get(article_id)

    def _jsm_failed(self, exc: KbUnavailable) -> None:
        """Log an outage once (not per question) and let the embedded base answer alone for a while."""
        pause = max(self.retry_seconds, exc.retry_after or 0.0)
        with self._lock:
            first = not self._jsm_down
            self._jsm_down = True
            self._jsm_paused_until = self.clock() + pause
        if first:
            logger.warning(
                "base de conocimiento: %s; respondo con los artículos locales y vuelvo a probar JSM cada %g s",
                exc,
                pause,
            )
        else:
            logger.debug("base de conocimiento: JSM sigue sin responder (%s)", exc)

    def _jsm_answered(self) -> None:
        with self._lock:
            recovered = self._jsm_down
            self._jsm_down = False
        if recovered:
            logger.warning("base de conocimiento: JSM volvió a responder; las búsquedas usan de nuevo su base")


def build_knowledge_base(settings: KbSettings, tickets: TicketsSettings, catalog: Catalog) -> KnowledgeBase:
    """The process's knowledge base from its settings (the composition root calls this once)."""
    synonyms = Synonyms(catalog, Analyzer())
    embedded = EmbeddedBase(settings.directory, synonyms, rescan_seconds=settings.rescan_seconds)
    jsm: Optional[JsmArticles] = None
    if settings.uses_jsm(tickets.uses_jsm):
        missing = tickets.jsm.missing()
        if missing:
            logger.error(
                "base de conocimiento: KB_BACKEND pide JSM pero faltan %s; uso solo los artículos de %s",
                ", ".join(missing),
                settings.directory,
            )
        else:
            jsm = JsmArticles(tickets.jsm, synonyms, timeout=settings.jsm_timeout, cache_seconds=settings.cache_seconds)
    return KnowledgeBase(embedded, jsm, threshold=settings.threshold, retry_seconds=settings.retry_seconds)
