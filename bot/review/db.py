"""The review app's own tables, next to the tickets (``REVIEW_DB_URL``, default
the tickets database): lead accounts, sessions, failed logins, the access
log, intent corrections and a cache of conversation summaries.

The cache (``CACHE_TABLES``: the summaries and their facts about intake) is
rebuilt from the tracker store whenever ``CACHE_VERSION`` or the team's time
zone changes: its columns and ISO weeks then no longer match, and an older
database gets the new columns by being dropped and refilled, not migrated.
"""

from __future__ import annotations

from typing import Optional

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
    delete,
    insert,
    select,
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
    # Issue 15's facts: the country, the ISO week it started in (team's clock), the effort to the first ticket.
    Column("country", String(8)),
    Column("week", String(10), index=True),
    Column("ticket_type", String(100)),
    Column("ticket_turns", Integer),
    Column("ticket_seconds", Float),
    Column("repeated", Boolean, nullable=False, default=False),  # a question asked twice (before the ticket)
)

# One row per conversation and request type reached: the form's questions as ",email,phone,".
requests = Table(
    "review_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("request_type", String(100), nullable=False),
    Column("asked", String(300), nullable=False, default=""),
    Column("answered", String(300), nullable=False, default=""),
    Column("last_question", String(40)),
    Column("summary", Boolean, nullable=False, default=False),
    Column("confirmed", Boolean, nullable=False, default=False),
    Column("ticket", Boolean, nullable=False, default=False),
)

# Answers the form refused, with the reason and the customer's words (masked when indexed).
refusals = Table(
    "review_refusals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("request_type", String(100)),
    Column("question", String(40), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("text", String(400), nullable=False, default=""),
    Column("at", DateTime(timezone=True)),
)

# Customer turns per conversation and ISO week (team's clock): understood, low confidence, fallback.
turn_weeks = Table(
    "review_turn_weeks",
    metadata,
    Column("sender_id", String(255), primary_key=True),
    Column("week", String(10), primary_key=True),
    Column("turns", Integer, nullable=False, default=0),
    Column("understood", Integer, nullable=False, default=0),
    Column("low_confidence", Integer, nullable=False, default=0),
    Column("fallback", Integer, nullable=False, default=0),
)

# Suggestion buttons picked after a low-confidence turn (a request type id, or "otra").
picks = Table(
    "review_picks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("request_type", String(100), nullable=False),
)

cache_meta = Table(
    "review_cache_meta",
    metadata,
    Column("key", String(50), primary_key=True),
    Column("value", String(200), nullable=False),
)

CACHE_TABLES = (conversations, requests, refusals, turn_weeks, picks)
CHILD_TABLES = (requests, refusals, turn_weeks, picks)
# Bump when a cache table's columns or the meaning of a cached fact change: the cache is rebuilt.
CACHE_VERSION = "3"
_TAG = "cache"
_WATERMARK = "tracker_watermark"


def engine_for(url: str) -> Engine:
    """The shared engine for ``url``, with the review tables created (those missing; called at start-up)."""
    engine = shared_engine(url)
    metadata.create_all(engine)
    return engine


def prepare_cache(engine: Engine, zone_name: str) -> bool:
    """Recreates the cache tables when they were built by another version or for another time zone.

    Returns whether it did (the next refresh then summarises every conversation again).
    """
    tag = f"{CACHE_VERSION}|{zone_name}"
    with engine.connect() as connection:
        current = connection.execute(select(cache_meta.c.value).where(cache_meta.c.key == _TAG)).scalar()
    if current == tag:
        return False
    metadata.drop_all(engine, tables=list(CACHE_TABLES), checkfirst=True)
    metadata.create_all(engine, tables=list(CACHE_TABLES))
    with engine.begin() as connection:
        connection.execute(delete(cache_meta).where(cache_meta.c.key.in_((_TAG, _WATERMARK))))
        connection.execute(insert(cache_meta).values(key=_TAG, value=tag))
    return True


def watermark(engine: Engine) -> Optional[int]:
    """The tracker store's newest event id at the index's last refresh (None: never refreshed)."""
    with engine.connect() as connection:
        value = connection.execute(select(cache_meta.c.value).where(cache_meta.c.key == _WATERMARK)).scalar()
    return int(value) if value is not None and str(value).isdigit() else None


def set_watermark(engine: Engine, event_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(delete(cache_meta).where(cache_meta.c.key == _WATERMARK))
        connection.execute(insert(cache_meta).values(key=_WATERMARK, value=str(event_id)))
