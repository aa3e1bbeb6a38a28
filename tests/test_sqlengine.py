"""The database helpers every store shares (bot/sqlengine.py), against a real SQLite file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import SQLAlchemyError

from bot.sqlengine import as_utc, db_complaint, shared_engine


def test_sqlite_hands_back_naive_datetimes_that_as_utc_reads_as_utc(tmp_path: Path) -> None:
    engine = shared_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    rows = Table("moments", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime(timezone=True)))
    rows.metadata.create_all(engine)
    stored = datetime(2026, 12, 2, 15, 30, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(insert(rows).values(id=1, at=stored))
        read = connection.execute(select(rows.c.at)).scalar_one()
    assert read.tzinfo is None  # what every store had to mend by hand
    assert as_utc(read) == stored and as_utc(read).tzinfo is timezone.utc


def test_as_utc_keeps_an_aware_moment_and_none() -> None:
    bogota = datetime(2026, 12, 2, 10, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert as_utc(bogota) is bogota
    assert as_utc(None) is None


def test_db_complaint_never_carries_the_statements_values(tmp_path: Path) -> None:
    engine = shared_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    rows = Table("people", MetaData(), Column("email", String(50), primary_key=True))
    rows.metadata.create_all(engine)
    secret = "ana.perez@empresa.com.co"
    with engine.begin() as connection:
        connection.execute(insert(rows).values(email=secret))
    with pytest.raises(SQLAlchemyError) as caught:
        with engine.begin() as connection:
            connection.execute(insert(rows).values(email=secret))
    complaint = db_complaint(caught.value)
    assert "UNIQUE" in complaint
    assert secret not in complaint


def test_db_complaint_without_a_driver_error_names_the_kind() -> None:
    assert db_complaint(SQLAlchemyError("lo que sea")) == "SQLAlchemyError"
