"""The welcome of a Teams customer who installs the app: once per conversation, remembered by all servers.

Teams sends a ``conversationUpdate`` when the app is installed in a personal
chat (the bot or the user in ``membersAdded``), and may send it again (a
reinstall, a retried delivery, another server behind the balancer). The
customer should see the welcome once, so the first server to claim the
conversation in the tickets database sends it; the others send nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from sqlalchemy import Column, DateTime, String, delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import declarative_base, sessionmaker

from bot.privacy import mask_sender
from bot.sqlengine import SchemaOnce, db_complaint, shared_engine

logger = logging.getLogger(__name__)

Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time

# What Rasa is handed for the welcome: the same intent the web chat sends when it opens,
# so the transcript shows it and the reply (with the menu button) is the greeting's.
WELCOME_PAYLOAD = "/greet"


class WelcomeError(RuntimeError):
    """The welcomes' table failed; the message says what could not be done (Spanish)."""


class WelcomeRow(Base):
    __tablename__ = "teams_welcomes"

    conversation_id = Column(String(255), primary_key=True)
    welcomed_at = Column(DateTime(timezone=True), nullable=False)


def asks_for_welcome(activity: Mapping[str, Any]) -> bool:
    """A ``conversationUpdate`` that adds the bot or the user to the conversation.

    Anything else (members removed, a rename, odd shapes) asks for nothing.
    """
    if activity.get("type") != "conversationUpdate":
        return False
    added = activity.get("membersAdded")
    if not isinstance(added, list):
        return False
    wanted = set()
    for party in ("recipient", "from"):
        account = activity.get(party)
        if isinstance(account, Mapping) and isinstance(account.get("id"), str) and account["id"]:
            wanted.add(account["id"])
    return any(isinstance(member, Mapping) and member.get("id") in wanted for member in added)


class WelcomeBook:
    """The conversations already welcomed, in the tickets database at one URL (table created on first use)."""

    def __init__(self, url: str) -> None:
        self.engine = shared_engine(url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False, future=True)
        self._schema = SchemaOnce(self.engine, Base.metadata)

    def claim(self, conversation_id: str) -> bool:
        """True for the first caller of a conversation: it sends the welcome; everyone later gets False."""
        try:
            self._schema.ensure()
            with self._sessions.begin() as session:
                session.add(WelcomeRow(conversation_id=conversation_id, welcomed_at=datetime.now(timezone.utc)))
            return True
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            why = db_complaint(exc)
            raise WelcomeError(f"no se pudo anotar la bienvenida de {mask_sender(conversation_id)}: {why}") from exc

    def release(self, conversation_id: str) -> None:
        """Forget a claim whose welcome could not be sent, so the next installation tries again."""
        try:
            self._schema.ensure()
            with self._sessions.begin() as session:
                session.execute(delete(WelcomeRow).where(WelcomeRow.conversation_id == conversation_id))
        except SQLAlchemyError as exc:
            why = db_complaint(exc)
            raise WelcomeError(f"no se pudo liberar la bienvenida de {mask_sender(conversation_id)}: {why}") from exc


class Welcomes:
    """Claims in the book when there is one, else in this object's memory (one process only)."""

    def __init__(self, book: Optional[WelcomeBook]) -> None:
        self.book = book
        self._seen: set[str] = set()

    def claim(self, conversation_id: str) -> bool:
        if self.book is not None:
            return self.book.claim(conversation_id)
        if conversation_id in self._seen:
            return False
        self._seen.add(conversation_id)
        return True

    def release(self, conversation_id: str) -> None:
        if self.book is not None:
            self.book.release(conversation_id)
        self._seen.discard(conversation_id)
