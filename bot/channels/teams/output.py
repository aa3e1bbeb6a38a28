"""The assistant's replies as Teams activities: markdown text, Adaptive Cards for buttons.

A button's click must come back as its Rasa payload (``value.payload``),
not as an empty message, which is what Rasa's own connector produced; the
cards themselves are built in ``cards.py``. Carousels (``send_elements``) and
images stay hero cards: Teams lays hero cards out as a carousel with their
images, and nothing is chosen from them but their buttons, which send the
same ``value.payload``.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable, Mapping, Optional, Text

from rasa.core.channels.channel import OutputChannel

from bot.channels.teams.activity import ConversationReference
from bot.channels.teams.cards import buttons_message, https_url, is_link
from bot.channels.teams.connector import BotConnector

CHANNEL_NAME = "teams"
HERO_CARD = "application/vnd.microsoft.card.hero"
# Teams shows at most six buttons on a hero card; a carousel element's longer list becomes several cards.
MAX_HERO_BUTTONS = 6

_NEWLINES = re.compile(r"\s*\n\s*")


def markdown_text(text: str) -> str:
    """Bot text as Teams markdown: each line its own paragraph.

    Teams joins lines separated by a single newline, and the mobile clients
    do not render markdown lists, so every line break becomes a paragraph.
    """
    return _NEWLINES.sub("\n\n", text.strip())


def card_text(text: str) -> str:
    """Bot text for a card: Teams renders card text as simple XML, not markdown."""
    return "<br>".join(html.escape(line, quote=False) for line in text.strip().splitlines())


def card_action(button: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """A Rasa button as a hero card action whose click sends the payload back to Rasa (None: a non-https link)."""
    title = str(button.get("title") or button.get("payload") or "")
    if is_link(button):
        url = https_url(button.get("url") or button.get("payload"))
        return {"type": "openUrl", "title": title, "value": url} if url else None
    payload = str(button.get("payload") or title)
    return {"type": "messageBack", "title": title, "displayText": title, "text": title, "value": {"payload": payload}}


def hero_cards(text: Optional[str], buttons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Hero cards for a carousel element: its text and buttons, six buttons a card."""
    actions = [action for action in map(card_action, buttons) if action is not None]
    chunks = [actions[i : i + MAX_HERO_BUTTONS] for i in range(0, len(actions), MAX_HERO_BUTTONS)] or [[]]
    cards = []
    for index, chunk in enumerate(chunks):
        content: dict[str, Any] = {"buttons": chunk}
        if index == 0 and text:
            content["text"] = card_text(text)
        cards.append({"contentType": HERO_CARD, "content": content})
    return cards


class TeamsOutput(OutputChannel):
    """Sends the assistant's replies into the Teams conversation they answer."""

    def __init__(self, connector: BotConnector, reference: ConversationReference) -> None:
        self.connector = connector
        self.reference = reference

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def activity(self, **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": "message",
            "from": self.reference.bot,
            "recipient": self.reference.user,
            "conversation": {"id": self.reference.conversation_id},
        }
        if self.reference.activity_id:
            activity["replyToId"] = self.reference.activity_id
        activity.update(fields)
        return activity

    async def send_activity(self, activity: dict[str, Any]) -> bool:
        return await self.connector.send(self.reference, activity)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_activity(self.activity(text=markdown_text(text), textFormat="markdown"))

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_activity(self.activity(**buttons_message(text, buttons)))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        card = {"contentType": HERO_CARD, "content": {"images": [{"url": image}]}}
        await self.send_activity(self.activity(attachments=[card]))

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, f"Adjunto: {attachment}")

    async def send_elements(self, recipient_id: Text, elements: Iterable[dict[str, Any]], **kwargs: Any) -> None:
        cards = []
        for element in elements:
            card = hero_cards(element.get("subtitle") or element.get("text"), element.get("buttons") or [])[0]
            if element.get("title"):
                card["content"]["title"] = element["title"]
            if element.get("image_url"):
                card["content"]["images"] = [{"url": element["image_url"]}]
            cards.append(card)
        if cards:
            await self.send_activity(self.activity(attachmentLayout="carousel", attachments=cards))

    async def send_custom_json(self, recipient_id: Text, json_message: dict[str, Any], **kwargs: Any) -> None:
        """Lets responses carry Teams-specific activities (e.g. Adaptive Cards) unchanged."""
        await self.send_activity(self.activity(**json_message))
