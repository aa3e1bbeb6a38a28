"""Lead accounts, sessions, login throttling and the access log.

Passwords are hashed with argon2id (argon2-cffi). Sessions are random tokens
kept only as SHA-256 hashes, expire after ``REVIEW_SESSION_HOURS`` and carry
their own CSRF token. Failed logins are counted per user name (5) and per address (20):
too many in the window and further attempts are refused before the password
is even checked.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.review import db

MAX_FAILURES = 5  # per user name
# Per address, higher: a support office shares one address, and one lead's
# typos must not lock out the others; password spraying still stops here.
MAX_FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountError(ValueError):
    """A refused account operation; the message is Spanish for the operator."""


@dataclass(frozen=True)
class Session:
    token: str
    username: str
    csrf: str
    expires_at: datetime

    def csrf_ok(self, submitted: Optional[str]) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf, str(submitted))


class Accounts:
    def __init__(self, engine: Engine, session_hours: Optional[float] = None) -> None:
        self.engine = engine
        hours = session_hours if session_hours is not None else float(os.environ.get("REVIEW_SESSION_HOURS") or 8)
        self.session_length = timedelta(hours=hours)

    # ------------------------------------------------------------ users
    def add_user(self, username: str, password: str) -> None:
        username = username.strip()
        if not username or any(c.isspace() for c in username):
            raise AccountError("El nombre de usuario no puede estar vacío ni tener espacios.")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"La contraseña debe tener al menos {MIN_PASSWORD_LENGTH} caracteres.")
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(db.users).values(
                        username=username, password_hash=_hasher.hash(password), active=True, created_at=_now()
                    )
                )
        except IntegrityError:
            raise AccountError(f"Ya existe el usuario «{username}».") from None

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"La contraseña debe tener al menos {MIN_PASSWORD_LENGTH} caracteres.")
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(db.users).where(db.users.c.username == username).values(password_hash=_hasher.hash(password))
            ).rowcount
            connection.execute(delete(db.sessions).where(db.sessions.c.user_id.in_(
                select(db.users.c.id).where(db.users.c.username == username)
            )))
        if not changed:
            raise AccountError(f"No existe el usuario «{username}».")

    def usernames(self) -> list[str]:
        with self.engine.connect() as connection:
            return [r[0] for r in connection.execute(select(db.users.c.username).order_by(db.users.c.username))]

    # --------------------------------------------------------- throttle
    def _failures(self, key: str) -> int:
        since = _now() - FAILURE_WINDOW
        with self.engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(db.login_failures).where(
                    db.login_failures.c.key == key, db.login_failures.c.at >= since
                )
            ).scalar_one())

    def throttled(self, username: str, address: str) -> bool:
        return self.attempts_left(username) <= 0 or self._failures(f"ip:{address}") >= MAX_FAILURES_PER_ADDRESS

    def attempts_left(self, username: str) -> int:
        """Failed logins this user name may still have before it waits out the window."""
        return max(0, MAX_FAILURES - self._failures(f"u:{username.lower()}"))

    def _record_failure(self, username: str, address: str) -> None:
        with self.engine.begin() as connection:
            for key in (f"u:{username.lower()}", f"ip:{address}"):
                connection.execute(insert(db.login_failures).values(key=key, at=_now()))

    # ---------------------------------------------------------- sessions
    def login(self, username: str, password: str, address: str) -> Optional[Session]:
        """A new session, or None; callers check ``throttled`` first."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(db.users).where(db.users.c.username == username, db.users.c.active.is_(True))
            ).first()
        valid = False
        if row is not None:
            try:
                valid = _hasher.verify(row.password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                valid = False
        else:
            _hasher.hash(password)  # same cost whether or not the user exists
        if not valid:
            self._record_failure(username, address)
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        expires = _now() + self.session_length
        with self.engine.begin() as connection:
            connection.execute(delete(db.login_failures).where(db.login_failures.c.key == f"u:{username.lower()}"))
            connection.execute(insert(db.sessions).values(
                token_hash=_digest(token), user_id=row.id, csrf=csrf, created_at=_now(), expires_at=expires
            ))
        return Session(token, username, csrf, expires)

    def session(self, token: Optional[str]) -> Optional[Session]:
        if not token:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(
                select(db.sessions, db.users.c.username)
                .join(db.users, db.users.c.id == db.sessions.c.user_id)
                .where(db.sessions.c.token_hash == _digest(token), db.users.c.active.is_(True))
            ).first()
        if row is None or _aware(row.expires_at) <= _now():
            return None
        return Session(token, row.username, row.csrf, _aware(row.expires_at))

    def logout(self, token: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(db.sessions).where(db.sessions.c.token_hash == _digest(token)))
            connection.execute(delete(db.sessions).where(db.sessions.c.expires_at <= _now()))

    # ------------------------------------------------------------- audit
    def log_access(self, username: str, action: str, subject: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(db.audit).values(username=username, action=action, subject=subject, at=_now()))

    def has_recent_access(self, username: str, action: str, subject: str, within: timedelta) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(
                select(db.audit.c.id).where(
                    db.audit.c.username == username,
                    db.audit.c.action == action,
                    db.audit.c.subject == subject,
                    db.audit.c.at >= _now() - within,
                )
            ).first() is not None

    def access_log(self, limit: int = 50) -> list[tuple[str, str, str, datetime]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(db.audit).order_by(db.audit.c.id.desc()).limit(limit))
            return [(r.username, r.action, r.subject, _aware(r.at)) for r in rows]
