"""The knowledge base the assistant answers from before a ticket is opened: which backend, where, how strict."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bot.settings import env as read
from bot.settings.env import Env, SettingError

KB_BACKENDS = ("auto", "embedded", "jsm")
# The repository's own folder of articles (bot/settings/kb.py → the repository root).
DEFAULT_KB_DIR = Path(__file__).resolve().parent.parent.parent / "kb"


def _fraction(env: Env, name: str, default: float) -> float:
    raw = read.text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise SettingError(f"{name} debe ser un número entre 0 y 1 (valor actual: {raw!r})")
    return value


@dataclass(frozen=True)
class KbSettings:
    """``KB_BACKEND``: ``embedded`` (the Markdown articles of ``KB_DIR``), ``jsm`` (the service desk's
    knowledge base, with the embedded one as the fallback) or ``auto`` (JSM when the tickets go to JSM).

    ``threshold`` (``KB_THRESHOLD``, 0–1): the least relevance an article needs to be shown, on the
    scorer's scale (bot/kb/scoring.py: the share of the question's weight the article matches).
    ``jsm_timeout`` (``KB_JSM_TIMEOUT``): a customer waits for this, so it is short; past it the
    embedded base answers. ``cache_seconds``: how long JSM's answer to the same question is reused.
    ``rescan_seconds``: how often a search checks the folder for added, changed or removed files.
    ``retry_seconds``: after JSM failed, how long the embedded base answers alone before JSM is tried again.
    """

    backend: str = "auto"
    directory: Path = DEFAULT_KB_DIR
    threshold: float = 0.45
    jsm_timeout: float = 2.0
    cache_seconds: float = 300.0
    rescan_seconds: float = 5.0
    retry_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Optional[Env] = None) -> "KbSettings":
        env = os.environ if env is None else env
        backend = read.text(env, "KB_BACKEND", "auto").lower()
        if backend not in KB_BACKENDS:
            raise SettingError(f"KB_BACKEND debe ser «auto», «embedded» o «jsm» (valor actual: {backend!r})")
        return cls(
            backend=backend,
            directory=Path(read.text(env, "KB_DIR") or DEFAULT_KB_DIR),
            threshold=_fraction(env, "KB_THRESHOLD", cls.threshold),
            jsm_timeout=read.non_negative(env, "KB_JSM_TIMEOUT", cls.jsm_timeout),
            cache_seconds=read.non_negative(env, "KB_CACHE_SECONDS", cls.cache_seconds),
            rescan_seconds=read.non_negative(env, "KB_RESCAN_SECONDS", cls.rescan_seconds),
            retry_seconds=read.non_negative(env, "KB_JSM_RETRY_SECONDS", cls.retry_seconds),
        )

    def uses_jsm(self, tickets_go_to_jsm: bool) -> bool:
        """Whether to ask JSM's knowledge base first (``auto``: when the tickets go to JSM)."""
        return self.backend == "jsm" or (self.backend == "auto" and tickets_go_to_jsm)
