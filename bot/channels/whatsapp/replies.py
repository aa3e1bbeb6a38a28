"""The assistant's replies in WhatsApp's terms: bodies Twilio accepts, buttons as numbered choices.

WhatsApp (through Twilio's plain messages) has no buttons, so they become a
numbered list, and the customer's typed answer ("2", "la 2", an option's
name) is read back as the button's payload.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional

from bot.text import contains_phrase, normalize

# Twilio refuses bodies over 1600 characters (counted like UTF-16 units).
MAX_BODY = 1600
CHOICE_HINT = "Responde con el número o el nombre de la opción."


def twilio_error(detail: str) -> dict[str, Any]:
    """Twilio's error code and message out of a refusal's body (JSON), or the body's start."""
    try:
        body = json.loads(detail)
    except ValueError:
        return {"code": None, "message": detail[:300]}
    return body if isinstance(body, dict) else {"code": None, "message": str(body)[:300]}


# ------------------------------------------------------------ body splitting
def utf16_units(text: str) -> int:
    """Length as Twilio and WhatsApp count it (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


_units = utf16_units


def _hard_cut(text: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current, size = "", 0
    for char in text:
        width = _units(char)
        if size + width > limit:
            chunks.append(current)
            current, size = "", 0
        current, size = current + char, size + width
    return chunks + ([current] if current else [])


def _pack(text: str, separators: tuple[str, ...], limit: int) -> list[str]:
    """Greedy packing on the coarsest separator that works (paragraph, line, word)."""
    if _units(text) <= limit:
        return [text]
    if not separators:
        return _hard_cut(text, limit)
    separator, finer = separators[0], separators[1:]
    chunks: list[str] = []
    current = ""
    for part in text.split(separator):
        for piece in _pack(part, finer, limit):
            candidate = f"{current}{separator}{piece}" if current else piece
            if _units(candidate) <= limit:
                current = candidate
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def split_body(text: str, limit: int = MAX_BODY) -> list[str]:
    """Message bodies Twilio accepts, cut on paragraph boundaries when possible."""
    chunks = _pack((text or "").strip(), ("\n\n", "\n", " "), limit)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


# ------------------------------------------------------------------- buttons
def button_title(button: Dict[str, Any]) -> str:
    return str(button.get("title") or button.get("payload") or "")


def button_payload(button: Dict[str, Any]) -> str:
    return str(button.get("payload") or button.get("title") or "")


def numbered_choices(text: str, buttons: Iterable[Dict[str, Any]]) -> str:
    lines = [f"{index}. {button_title(button)}" for index, button in enumerate(buttons, start=1)]
    return "\n\n".join(part for part in ((text or "").strip(), "\n".join(lines), CHOICE_HINT) if part)


_NUMBER_WORDS = {
    word: number
    for number, words in enumerate(
        (
            ("uno", "una", "primero", "primera"),
            ("dos", "segundo", "segunda"),
            ("tres", "tercero", "tercera"),
            ("cuatro", "cuarto", "cuarta"),
            ("cinco", "quinto", "quinta"),
            ("seis", "sexto", "sexta"),
            ("siete", "septimo", "septima"),
            ("ocho", "octavo", "octava"),
            ("nueve", "noveno", "novena"),
            ("diez", "decimo", "decima"),
        ),
        start=1,
    )
    for word in words
}
# Words around a choice that carry no meaning: "la 2", "opción 2", "la de pagos".
_FILLER = frozenset(
    "la el lo los las de del opcion numero nro num n a al en y o un una por favor quiero elijo escojo".split()
)


def _words(text: str) -> list[str]:
    return [word.strip(".") for word in normalize(text).split() if word.strip(".")]


def _choice_number(words: list[str]) -> Optional[int]:
    meaningful = [w for w in words if w not in _FILLER or w in _NUMBER_WORDS]
    if len(meaningful) != 1:
        return None
    word = meaningful[0].rstrip(")")
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


def _trim_filler(words: list[str]) -> list[str]:
    """ "la de pagos" -> "pagos": filler only at the ends, never inside a title."""
    start, end = 0, len(words)
    while start < end and words[start] in _FILLER:
        start += 1
    while end > start and words[end - 1] in _FILLER:
        end -= 1
    return words[start:end]


def _covers(reply: str, title: str) -> bool:
    """The reply is the title plus filler words ("la de pagos en línea")."""
    if not title or not contains_phrase(reply, title):
        return False
    rest = f" {reply} ".replace(f" {title} ", " ", 1).split()
    return all(word in _FILLER for word in rest)


def choose_button(reply: str, buttons: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The button a typed reply unambiguously designates, if any."""
    words = _words(reply)
    if not words or not buttons:
        return None
    text = " ".join(words)
    titles = [(" ".join(_words(button_title(b))), b) for b in buttons]
    exact = [b for title, b in titles if title == text]
    if len(exact) == 1:
        return exact[0]
    number = _choice_number(words)
    if number is not None:
        return buttons[number - 1] if 1 <= number <= len(buttons) else None
    if all(word in _FILLER for word in words):
        return None
    core = " ".join(_trim_filler(words))
    partial = [b for title, b in titles if contains_phrase(title, core) or _covers(text, title)]
    return partial[0] if len(partial) == 1 else None
