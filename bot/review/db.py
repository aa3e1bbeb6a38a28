"""The review app's own tables, next to the tickets (``REVIEW_DB_URL``, default
the tickets database): lead accounts, sessions, failed logins, the access
log, intent corrections and a cache of conversation summaries.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine

from bot.sqlengine import shared_engine

metadata = MetaData()

users = Table(
    "review_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "review_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "review_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "review_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("action", String(50), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)

labels = Table(
    "review_labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("event_id", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("predicted_intent", String(100)),
    Column("intent", String(100), nullable=False),
    Column("username", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_review_labels_event", "sender_id", "event_id", unique=True),
)

conversations = Table(
    "review_conversations",
    metadata,
    Column("sender_id", String(255), primary_key=True),
    Column("last_event_id", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), index=True),
    Column("last_at", DateTime(timezone=True)),
    Column("channel", String(50)),
    Column("request_types", String(1000), nullable=False, default=""),  # ",id1,id2,"
    Column("last_request_type", String(100)),
    Column("outcome", String(30), nullable=False),
    Column("outcomes", String(200), nullable=False, default=""),  # ",ticket,redirigida,"
    Column("tickets", String(1000), nullable=False, default=""),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("turns", Integer, nullable=False, default=0),
    Column("missed_turns", Integer, nullable=False, default=0),
    Column("low_confidence_turns", Integer, nullable=False, default=0),
    Column("customer_text", Text, nullable=False, default=""),
    Column("refreshed_at", Float),
)


def engine_for(url: str) -> Engine:
    """The shared engine for ``url``, with the review tables created (those missing; called at start-up)."""
    engine = shared_engine(url)
    metadata.create_all(engine)
    return engine
