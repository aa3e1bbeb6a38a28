"""What a knowledge-base article and a search hit are: found by bot/kb, offered by the dialogue.

Plain values with no I/O, so the dialogue (pure) can take and word them; the
embedded Markdown articles and JSM's knowledge-base answers both become these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

EMBEDDED = "embedded"  # the Markdown articles of the repository's kb/ folder
JSM = "jsm"  # the service desk's knowledge base in Jira Service Management


@dataclass(frozen=True)
class Article:
    """One article. ``id``: the file name without ``.md`` (embedded) or ``jsm-<pageId>``.

    ``url``: where the customer reads it; None for embedded articles until the
    web app serves them (the caller builds the link from ``id``). ``excerpt``:
    one line for an offer (the front matter's, else the body's first paragraph).
    """

    id: str
    title: str
    request_types: tuple[str, ...] = ()  # catalog request-type ids
    keywords: tuple[str, ...] = ()
    body: str = ""  # Markdown
    url: Optional[str] = None
    excerpt: str = ""
    source: str = EMBEDDED


@dataclass(frozen=True)
class Match:
    """An article found for a question; ``score`` in [0, 1] (bot/kb/scoring.py), ``source`` the backend."""

    article: Article
    score: float
    source: str


class ArticleSearch(Protocol):
    """What the dialogue needs from the knowledge base (``bot.kb.KnowledgeBase`` is one)."""

    def search(self, text: str, request_type: Optional[str] = None, k: int = 3) -> Sequence[Match]: ...

    def get(self, article_id: str) -> Optional[Article]: ...
