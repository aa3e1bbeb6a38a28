"""Leads' corrections of misread messages, exported as Rasa NLU training data.

A lead marks a customer message with the intent it should have had; the
export turns every correction into an example under that intent, with
personal data replaced by neutral placeholders so no customer's e-mail,
phone or card ends up in the training files.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

import yaml
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from bot.catalog import Catalog
from bot.contacts import find_emails, find_phones
from bot.privacy import mask_cards
from bot.review import db

EMAIL_PLACEHOLDER = "nombre@empresa.com"
PHONE_PLACEHOLDER = "3001234567"


@dataclass(frozen=True)
class Label:
    sender_id: str
    event_id: int
    text: str
    predicted_intent: Optional[str]
    intent: str
    username: str
    at: datetime


def anonymize(text: str, catalog: Catalog) -> str:
    """A training example without the customer's own contact data or cards."""
    text = mask_cards(text)
    found = sorted(find_emails(text) + find_phones(text, catalog.country_ids), key=lambda f: f.start, reverse=True)
    for item in found:
        placeholder = EMAIL_PLACEHOLDER if item.entity == "email" else PHONE_PLACEHOLDER
        text = text[: item.start] + placeholder + text[item.end :]
    return text.replace("[tarjeta oculta]", "mi tarjeta")


class Labels:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Marks arrive from worker threads: two at once for one message would both insert.
        self._marking = threading.Lock()

    def mark(
        self, sender_id: str, event_id: int, text: str, predicted: Optional[str], intent: str, username: str
    ) -> None:
        """One correction per message: marking again replaces the previous one."""
        with self._marking, self.engine.begin() as connection:
            connection.execute(
                delete(db.labels).where(db.labels.c.sender_id == sender_id, db.labels.c.event_id == event_id)
            )
            connection.execute(
                insert(db.labels).values(
                    sender_id=sender_id,
                    event_id=event_id,
                    text=mask_cards(text),
                    predicted_intent=predicted,
                    intent=intent,
                    username=username,
                    at=datetime.now(timezone.utc),
                )
            )

    def for_conversation(self, sender_id: str) -> dict[int, Label]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(db.labels).where(db.labels.c.sender_id == sender_id))
            return {r.event_id: _label(r) for r in rows}

    def all(self) -> list[Label]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(db.labels).order_by(db.labels.c.intent, db.labels.c.id))
            return [_label(r) for r in rows]


def _label(row: Any) -> Label:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=timezone.utc)
    return Label(row.sender_id, row.event_id, row.text, row.predicted_intent, row.intent, row.username, at)


class _LiteralDumper(yaml.SafeDumper):
    pass


_LiteralDumper.add_representer(
    str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None)
)


def nlu_yaml(labels: Iterable[Label], catalog: Catalog) -> str:
    """Rasa 3 NLU YAML with one block per intent, ready for data/nlu/."""
    by_intent: dict[str, list[str]] = {}
    for label in labels:
        example = " ".join(anonymize(label.text, catalog).split())
        if example and not example.startswith("/") and example not in by_intent.get(label.intent, []):
            by_intent.setdefault(label.intent, []).append(example)
    blocks = [
        {"intent": intent, "examples": "".join(f"- {re.sub(r'^[-#]', '', e).strip()}\n" for e in examples)}
        for intent, examples in sorted(by_intent.items())
    ]
    header = "# Exportado de las correcciones de la revisión de conversaciones (python -m bot review export-nlu).\n"
    body = yaml.dump(
        {"version": "3.1", "nlu": blocks}, Dumper=_LiteralDumper, allow_unicode=True, sort_keys=False, width=1000
    )
    return header + body
