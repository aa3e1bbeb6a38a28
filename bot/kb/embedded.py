"""The embedded knowledge base: the Markdown articles of a folder, indexed at start-up and again on change.

The help desk adds or edits a file and the next questions find it, with no
restart: a search looks at the folder's file names, sizes and modification
times at most every ``rescan_seconds`` (a directory listing, cheap) and
re-reads the folder only when they changed. Searches run in the action
server's worker threads; a rebuild swaps the whole index at once, so a
search sees the old articles or the new ones, never half of each.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from bot.kb.articles import article_files, load_folder
from bot.kb.model import EMBEDDED, Article, Match
from bot.kb.scoring import Index
from bot.kb.synonyms import Synonyms

logger = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


class EmbeddedBase:
    source = EMBEDDED

    def __init__(
        self,
        folder: Path,
        synonyms: Synonyms,
        *,
        rescan_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        known_types: Optional[Iterable[str]] = None,
    ) -> None:
        """``known_types``: the catalog's request-type ids an article may name (default: the synonyms')."""
        self.folder = folder
        self.synonyms = synonyms
        self.rescan_seconds = rescan_seconds
        self.clock = clock
        self.known_types = frozenset(known_types) if known_types is not None else synonyms.known_types
        self._lock = threading.Lock()
        self._fingerprint: Optional[Fingerprint] = None
        self._checked = 0.0
        self.problems: tuple[str, ...] = ()
        self._index = Index(synonyms.analyzer, synonyms)
        self.refresh(force=True)

    def _scan(self) -> Fingerprint:
        entries = []
        for path in article_files(self.folder):
            try:
                stat = path.stat()
            except OSError:
                continue  # removed between the listing and the stat: the next scan sees it gone
            entries.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def refresh(self, force: bool = False) -> bool:
        """Re-index if the folder changed (checked at most every ``rescan_seconds``); True if it did."""
        now = self.clock()
        if not force and now - self._checked < self.rescan_seconds:
            return False
        with self._lock:
            if not force and now - self._checked < self.rescan_seconds:
                return False  # another thread checked while this one waited
            self._checked = now
            fingerprint = self._scan()
            if fingerprint == self._fingerprint:
                return False
            loaded = load_folder(self.folder, self.known_types)
            index = Index(self.synonyms.analyzer, self.synonyms)
            for article in loaded.articles:
                index.add(article)
            self._index, self._fingerprint, self.problems = index, fingerprint, loaded.problems
        if not self.folder.is_dir():
            logger.warning("base de conocimiento: no existe la carpeta %s (KB_DIR); no hay artículos", self.folder)
        else:
            logger.info(
                "base de conocimiento: %d artículos en %s%s",
                len(loaded.articles),
                self.folder,
                f" ({len(loaded.problems)} omitidos: ver los errores anteriores)" if loaded.problems else "",
            )
        return True

    @property
    def index(self) -> Index:
        self.refresh()
        return self._index

    def articles(self) -> list[Article]:
        return self.index.articles()

    def get(self, article_id: str) -> Optional[Article]:
        return self.index.get(article_id)

    def search(self, text: str, request_type: Optional[str] = None, k: int = 3, threshold: float = 0.0) -> list[Match]:
        index = self.index
        query = index.query(text, request_type)
        return [Match(a, s, EMBEDDED) for a, s in index.search(query, k=k, threshold=threshold)]
