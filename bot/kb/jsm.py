"""The service desk's knowledge base in Jira Service Management, re-ranked by our own scorer.

``GET {site}/rest/servicedeskapi/servicedesk/{id}/knowledgebase/article?query=…&highlight=false``
answers a page of ``{title, excerpt, source {type, pageId, spaceKey}, content {iframeSrc}}``.
JSM's own ranking is not ours and its scores are not given, so its answers
are scored again by bot/kb/scoring.py: ``KB_THRESHOLD`` means the same for
both backends. The articles JSM has returned are kept in an index of their
own (bounded), which gives the scorer term statistics of the desk's base.

A customer is waiting, so the call is short (``KB_JSM_TIMEOUT``, 2 s), the
same question is answered from a cache for ``KB_CACHE_SECONDS``, and every
failure (timeout, refused connection, 429, 5xx, refused credentials, an
answer that is not the documented shape) is one ``KbUnavailable``: the
caller answers from the embedded base instead (bot/kb/__init__.py).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional

import requests

from bot.http_retry import parse_retry_after
from bot.kb.articles import plain_text, shorten
from bot.kb.model import JSM, Article, Match
from bot.kb.scoring import Index
from bot.kb.synonyms import Synonyms
from bot.settings.tickets import JsmSettings
from bot.text import normalize

PATH = "/rest/servicedeskapi/servicedesk/{desk}/knowledgebase/article"
RESULTS = 20  # candidates asked of JSM per question, re-ranked here
MAX_QUERY_WORDS = 20
MAX_SEEN = 2000  # articles kept for the scorer's statistics and get()
MAX_CACHED = 500  # questions kept in the cache
JSM_CREDIT = 0.5
_TEXT_WORD = re.compile(r"\w+", re.UNICODE)
_TAG = re.compile(r"<[^>]{0,200}>")


def jsm_credit(position: int) -> float:
    """How much of the question's words we cannot see JSM's article matching it vouches for, by its rank.

    JSM searches the whole page; we see the title and the excerpt. Its first
    answers likely contain the words we miss (a synonym in the body): half
    of them for the first, less further down.
    """
    return JSM_CREDIT / (1 + position)


class KbUnavailable(Exception):
    """JSM's knowledge base did not answer usably; ``retry_after``: seconds JSM asked to wait, if it did."""

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JsmArticles:
    source = JSM

    def __init__(
        self,
        settings: JsmSettings,
        synonyms: Synonyms,
        *,
        timeout: float = 2.0,
        cache_seconds: float = 300.0,
        session: Optional[requests.Session] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.synonyms = synonyms
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.session = session or requests.Session()
        self.session.auth = (settings.email, settings.api_token)
        self.session.headers.update({"Accept": "application/json"})
        self.url = settings.site_url + PATH.format(desk=settings.service_desk_id)
        self.calls = 0
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._seen = Index(synonyms.analyzer, synonyms)
        self._order: OrderedDict[str, None] = OrderedDict()  # seen ids, oldest first

    # ------------------------------------------------------------ asking JSM
    def topic_words(self, text: str) -> str:
        """The question's topic words as typed (accents kept), without the chatter: the cache's key."""
        analyzer = self.synonyms.analyzer
        return " ".join([w for w in _TEXT_WORD.findall(text) if analyzer.words(w)][:MAX_QUERY_WORDS])

    def query_text(self, topic: str) -> str:
        """What JSM is asked: the topic words, then the words JSM's articles use for them (other verb forms,
        typing slips fixed), as far as seen so far: JSM's search does not fold Spanish verb forms."""
        words = topic.split()
        with self._lock:
            known = self._seen.spellings(topic)
        typed = {normalize(w) for w in words}
        return " ".join([*words, *(w for w in known if w not in typed)][: 2 * MAX_QUERY_WORDS])

    def fetch(self, query: str) -> list[Article]:
        """JSM's articles for ``query`` (uncached); ``KbUnavailable`` on any failure."""
        self.calls += 1
        params: dict[str, str | int] = {"query": query, "highlight": "false", "limit": RESULTS}
        try:
            response = self.session.get(self.url, params=params, timeout=self.timeout)
        except requests.Timeout as exc:
            raise KbUnavailable(f"JSM no respondió en {self.timeout:g} s") from exc
        except requests.RequestException as exc:
            raise KbUnavailable(f"no se pudo conectar con JSM ({exc.__class__.__name__})") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise KbUnavailable(f"JSM respondió {status} a la búsqueda de artículos", wait)
        if status in (401, 403):
            raise KbUnavailable(f"JSM rechazó las credenciales ({status}): revisa JSM_EMAIL y JSM_API_TOKEN")
        if status >= 400:
            raise KbUnavailable(
                f"JSM respondió {status} a la búsqueda de artículos: revisa JSM_SERVICE_DESK_ID y que el "
                "proyecto tenga una base de conocimiento enlazada"
            )
        try:
            values = response.json().get("values")
        except (ValueError, AttributeError) as exc:
            raise KbUnavailable("JSM devolvió una respuesta que no es la lista de artículos documentada") from exc
        if not isinstance(values, list):
            raise KbUnavailable("JSM devolvió una respuesta sin «values»")
        return [a for a in (self.article_of(v) for v in values) if a is not None]

    def article_of(self, value: Any) -> Optional[Article]:
        """One ``ArticleDTO`` as an article, or None when it has no title."""
        if not isinstance(value, dict) or not isinstance(value.get("title"), str) or not value["title"].strip():
            return None
        title = " ".join(value["title"].split())[:300]
        excerpt = plain_text(_TAG.sub(" ", value.get("excerpt") or "")) if isinstance(value.get("excerpt"), str) else ""
        source = value.get("source")
        page = str(source.get("pageId") or "").strip() if isinstance(source, dict) else ""
        page = page if page.isdigit() else ""
        key = page or hashlib.sha256(normalize(title).encode("utf-8")).hexdigest()[:16]
        return Article(
            id=f"jsm-{key}",
            title=title,
            body=excerpt[:2000],
            url=self.link(page, value.get("content")),
            excerpt=shorten(excerpt),
            source=JSM,
        )

    def link(self, page: str, content: Any) -> Optional[str]:
        """The article in the customer portal; else JSM's own viewer URL, if it is on the JSM site."""
        if page:
            return (
                f"{self.settings.site_url}/servicedesk/customer/portal/{self.settings.service_desk_id}/article/{page}"
            )
        iframe = content.get("iframeSrc") if isinstance(content, dict) else None
        if isinstance(iframe, str) and iframe.startswith(self.settings.site_url + "/"):
            return iframe
        return None

    # ------------------------------------------------------------ searching
    def _remember(self, articles: list[Article]) -> tuple[str, ...]:
        """Index what JSM returned (the oldest forgotten past ``MAX_SEEN``); the ids, in JSM's order."""
        for article in articles:
            if self._seen.get(article.id) != article:
                self._seen.add(article)
            self._order.pop(article.id, None)
            self._order[article.id] = None
        while len(self._order) > MAX_SEEN:
            oldest, _ = self._order.popitem(last=False)
            self._seen.remove(oldest)
        return tuple(dict.fromkeys(a.id for a in articles))

    def candidates(self, text: str) -> tuple[str, ...]:
        """The ids JSM returns for ``text``, from the cache while fresh."""
        topic = self.topic_words(text)
        if not topic:
            return ()
        now = self.clock()
        with self._lock:
            cached = self._cache.get(topic)
            if cached is not None and cached[0] > now and all(self._seen.get(i) for i in cached[1]):
                return cached[1]
        articles = self.fetch(self.query_text(topic))
        with self._lock:
            ids = self._remember(articles)
            self._cache[topic] = (now + self.cache_seconds, ids)
            self._cache.move_to_end(topic)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return ids

    def search(self, text: str, request_type: Optional[str] = None, k: int = 3, threshold: float = 0.0) -> list[Match]:
        ids = self.candidates(text)
        if not ids:
            return []
        with self._lock:
            query = self._seen.query(text, request_type)
            found = self._seen.search(query, k=k, threshold=threshold, among=ids, credit=jsm_credit)
        return [Match(a, s, JSM) for a, s in found]

    def get(self, article_id: str) -> Optional[Article]:
        with self._lock:
            return self._seen.get(article_id)
