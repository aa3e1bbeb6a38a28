"""Text normalisation shared by matching code.

Customers write without accents, in any case and with stray punctuation; every
comparison between what they typed and catalog names goes through
``normalize`` so that "Gestión" and "gestion" are the same word.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Optional

_NON_WORD = re.compile(r"[^\w@.+/-]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    """Remove diacritics but keep ñ distinct only in lowercase comparisons."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize(text: Optional[str]) -> str:
    """Lowercase, accent-free, single-spaced text for comparisons."""
    if not text:
        return ""
    text = strip_accents(text).lower()
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def contains_phrase(haystack: str, phrase: str) -> bool:
    """Whole-word containment of an already-normalised phrase."""
    if not phrase:
        return False
    return f" {phrase} " in f" {haystack} "


def accent_variants(phrases: Iterable[str]) -> list[str]:
    """Each phrase plus its accent-free form, lowercase, without repeats.

    Lookup tables match literally, so both spellings must be listed.
    """
    seen: dict[str, None] = {}
    for phrase in phrases:
        low = phrase.strip().lower()
        if low:
            seen.setdefault(low, None)
            seen.setdefault(strip_accents(low), None)
    return list(seen)


def word_count(text: str) -> int:
    return len([w for w in normalize(text).split(" ") if any(c.isalnum() for c in w)])


_KEEP_CONTROLS = {"\n", "\t"}
# Control characters, and lone surrogates: these cannot be encoded as UTF-8
# for the database or the logs (Rasa stops the server on the error).
_DROPPED = {"Cc", "Cs"}


def clean_text(text: Optional[str]) -> str:
    """Text without control characters (NUL, escapes, ...), newlines and tabs kept.

    Customers' messages may carry them (pasted from terminals, or sent to
    break things); PostgreSQL refuses NUL in text columns and terminals
    reading logs would obey escape codes.
    """
    if not text:
        return ""
    return "".join(ch for ch in text if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in _DROPPED)
