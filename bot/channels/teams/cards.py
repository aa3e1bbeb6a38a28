"""The assistant's buttons as Adaptive Cards, the card Microsoft documents for bots in Teams.

Each Rasa button becomes an ``Action.Submit`` whose ``msteams`` ``messageBack``
data carries the payload in ``value.payload`` (what ``activity.py`` reads, as
it did for the hero cards sent before) and shows the button's title in the
chat as the customer's own message, so the conversation and its transcript
read like a dialogue. Teams shows at most six actions on a card: longer menus
become one ``Input.ChoiceSet`` whose choices carry the payloads and an
«Enviar» button; its submit arrives as a message whose ``value`` holds the
chosen payload under ``CHOICE_ID``.

A client that renders no cards (or not this version) shows ``fallbackText``
(Adaptive Cards) or the activity's ``summary`` (Bot Framework): both list the
question and its numbered options.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import urlsplit

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# 1.3 brought isRequired and errorMessage, the newest features used here; Teams renders 1.3 cards
# on desktop, web and mobile, and a lower version reaches the most (older) clients.
CARD_VERSION = "1.3"
# Teams shows at most six actions on a card; more options go into a choice set.
MAX_CARD_BUTTONS = 6
# Up to this many options the choice set shows them all (radio buttons: one tap, then «Enviar»);
# longer lists become a drop-down so the card does not fill the screen. The catalog's longest
# menu (a category's request types plus «Volver») has 7.
MAX_EXPANDED_CHOICES = 10
CHOICE_ID = "choice"  # the choice set's input id: its value comes back as activity.value["choice"]
SUBMIT_TITLE = "Enviar"
CHOICE_LABEL = "Elige una opción"  # a required input needs a label (accessibility: screen readers announce it)
CHOICE_PLACEHOLDER = "Selecciona una opción"
CHOICE_REQUIRED = "Elige una opción de la lista y pulsa «Enviar»."
FALLBACK_HINT = "Escribe la opción que prefieras."  # words reach the NLU; numbers are not translated on Teams

# Markdown Teams interprets in a TextBlock (bold, italic, lists, links), escaped so bot text that
# echoes what a customer typed (an e-mail like ana_perez@x.co, a [link](…)) shows as typed.
_INLINE_MARKDOWN = re.compile(r"([\\*_\[\]])")
_LINE_MARKER = re.compile(r"^(\s*)(?:([-+])(?=\s)|(\d+)([.)])(?=\s|$))")


def plain_text(line: str) -> str:
    """One line of bot text with the markdown Adaptive Cards would interpret escaped (CommonMark escapes)."""
    escaped = _INLINE_MARKDOWN.sub(r"\\\1", line)
    return _LINE_MARKER.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}", escaped)


def text_blocks(text: Optional[str]) -> list[dict[str, Any]]:
    """The bot text, one wrapped TextBlock per line: a single newline inside one block is not a line break."""
    lines = [line.strip() for line in (text or "").strip().splitlines()]
    return [{"type": "TextBlock", "text": plain_text(line), "wrap": True} for line in lines if line]


def https_url(value: Any) -> Optional[str]:
    """The URL a link button may open: https only (no javascript:, data:, intranet http)."""
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme == "https" and parts.hostname else None


def is_link(button: Mapping[str, Any]) -> bool:
    return bool(button.get("url")) or button.get("type") == "web_url"


def title_of(button: Mapping[str, Any]) -> str:
    return str(button.get("title") or button.get("payload") or "").strip()


def payload_of(button: Mapping[str, Any]) -> str:
    return str(button.get("payload") or button.get("title") or "").strip()


def submit_action(title: str, payload: str) -> dict[str, Any]:
    """A button: the title shows in the chat as the customer's message, the payload goes to the bot."""
    message_back = {"type": "messageBack", "displayText": title, "text": title, "value": {"payload": payload}}
    return {"type": "Action.Submit", "title": title, "data": {"msteams": message_back}}


def open_url_action(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def choice_set(options: list[tuple[str, str]]) -> dict[str, Any]:
    """The options of a long menu: the chosen one's payload is submitted as ``CHOICE_ID``."""
    return {
        "type": "Input.ChoiceSet",
        "id": CHOICE_ID,
        "style": "expanded" if len(options) <= MAX_EXPANDED_CHOICES else "compact",
        "isMultiSelect": False,
        "label": CHOICE_LABEL,
        "isRequired": True,
        "errorMessage": CHOICE_REQUIRED,
        "placeholder": CHOICE_PLACEHOLDER,
        "choices": [{"title": title, "value": payload} for title, payload in options],
    }


def fallback_text(text: Optional[str], options: list[str], links: list[tuple[str, str]]) -> str:
    """The question and its options as plain lines, for a client that shows no card."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    lines += [f"{number}. {title}" for number, title in enumerate(options, start=1)]
    if options:
        lines.append(FALLBACK_HINT)
    lines += [f"{title}: {url}" for title, url in links]
    return "\n".join(lines)


def adaptive_card(text: Optional[str], buttons: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The card for a bot message with buttons: actions for up to six, a choice set beyond."""
    options: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    for button in buttons:
        title = title_of(button)
        if is_link(button):
            url = https_url(button.get("url") or button.get("payload"))
            if url:  # a link that is not https is left out: the card never opens it
                links.append((title or url, url))
        elif payload_of(button):
            options.append((title or payload_of(button), payload_of(button)))
    body = text_blocks(text)
    link_actions = [open_url_action(title, url) for title, url in links]
    if len(options) + len(links) <= MAX_CARD_BUTTONS or not options:
        actions = [submit_action(title, payload) for title, payload in options] + link_actions[:MAX_CARD_BUTTONS]
    else:
        body.append(choice_set(options))
        actions = [{"type": "Action.Submit", "title": SUBMIT_TITLE, "data": {}}]
        actions += link_actions[: MAX_CARD_BUTTONS - 1]
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": fallback_text(text, [title for title, _ in options], links),
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def buttons_message(text: Optional[str], buttons: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The activity fields of a message with buttons: one Adaptive Card, and ``summary`` for no-card clients."""
    card = adaptive_card(text, buttons)
    return {"summary": card["fallbackText"], "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}
