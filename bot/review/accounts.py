"""Lead accounts, sessions, login throttling and the access log.

Passwords are hashed with argon2id (argon2-cffi). Sessions are random tokens
kept only as SHA-256 hashes, expire after ``REVIEW_SESSION_HOURS``
(``settings.review.session_hours``) and carry their own CSRF token.

Failed logins are counted per client address and per user name at that
address. Instead of a lock-out, which behind a shared address let one person
shut out the whole office, each failure makes the next attempt wait longer
(1 s, 2 s, 4 s... up to ``MAX_DELAY``): from the first failure for an
address, which stops a guesser at one address; from the ``MAX_FAILURES``-th
for a user name at one address; and, for a user name, from failures at
``SPREAD_ADDRESSES`` different addresses, which stops guessers spread over
many addresses. One address alone can never make a lead wait elsewhere.
While the wait lasts the attempt is refused before the password is even
checked. A successful login clears the counters.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.review import db
from bot.settings.review import ReviewSettings
from bot.sqlengine import as_utc

MAX_FAILURES = 5  # per user name at one address, before its attempts must wait
SPREAD_ADDRESSES = 5  # addresses failing on one user name before it waits everywhere
FIRST_DELAY = timedelta(seconds=1)  # doubled by each further failure
MAX_DELAY = timedelta(minutes=15)
# How long a failure is remembered: long enough that a patient guesser stays at
# the longest wait (a few tries an hour); a lead's own typos cost seconds, since
# waits run from the last failure, not from the first.
FAILURE_WINDOW = timedelta(hours=24)
MIN_PASSWORD_LENGTH = 10
USERNAME_LENGTH = db.users.c.username.type.length
KEY_LENGTH = db.login_failures.c.key.type.length
SUBJECT_LENGTH = db.audit.c.subject.type.length


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _storable(value: str) -> bool:
    """Whether every database stores ``value`` as is (PostgreSQL refuses NUL and lone surrogates)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fit(value: str, length: int) -> str:
    """``value`` within a column of ``length`` characters, still telling long values apart.

    Hostile input must never overflow a column (PostgreSQL fails the request)
    nor collide with another value once cut: what does not fit keeps a readable
    start and ends with a digest of the whole.
    """
    if len(value) <= length and _storable(value):
        return value
    digest = _digest(value)[:16]
    start = "".join(c for c in value if c.isprintable() and _storable(c))
    return start[: length - len(digest) - 2] + "…#" + digest


def _plausible_username(username: str) -> bool:
    """Whether ``username`` could name an account; anything else fails without a query."""
    return (
        0 < len(username) <= USERNAME_LENGTH
        and username.isprintable()
        and not any(c.isspace() for c in username)
        and _storable(username)
    )


def _wait(failures: int, free: int, last: Optional[datetime], now: datetime) -> float:
    """Seconds still to wait after ``failures`` of which the first ``free`` cost nothing."""
    if failures <= free or last is None:
        return 0.0
    delay = min(MAX_DELAY.total_seconds(), FIRST_DELAY.total_seconds() * 2.0 ** min(failures - free - 1, 40))
    return max(0.0, delay - (now - as_utc(last)).total_seconds())


def same_token(expected: str, submitted: Optional[str]) -> bool:
    """Constant-time comparison that also takes tokens with any characters (str would raise)."""
    if not expected or not submitted:
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), str(submitted).encode("utf-8", "surrogatepass")
    )


class AccountError(ValueError):
    """A refused account operation; the message is Spanish for the operator."""


class LoginThrottled(Exception):
    """A login attempt that came before its wait was over; the password was not checked."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


@dataclass(frozen=True)
class Session:
    token: str
    username: str
    csrf: str
    expires_at: datetime

    def csrf_ok(self, submitted: Optional[str]) -> bool:
        return same_token(self.csrf, submitted)


class Accounts:
    """Blocking (SQL, argon2): the web handlers call it from a worker thread, never on the event loop."""

    def __init__(self, engine: Engine, session_hours: float = ReviewSettings.session_hours) -> None:
        self.engine = engine
        self.session_length = timedelta(hours=session_hours)
        self._hasher = PasswordHasher()

    # ------------------------------------------------------------ users
    def add_user(self, username: str, password: str) -> None:
        username = username.strip()
        if not username or any(c.isspace() for c in username):
            raise AccountError("El nombre de usuario no puede estar vacío ni tener espacios.")
        if not _plausible_username(username):
            raise AccountError(
                f"El nombre de usuario debe tener como máximo {USERNAME_LENGTH} caracteres y ninguno de control."
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"La contraseña debe tener al menos {MIN_PASSWORD_LENGTH} caracteres.")
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(db.users).values(
                        username=username, password_hash=self._hasher.hash(password), active=True, created_at=_now()
                    )
                )
        except IntegrityError:
            raise AccountError(f"Ya existe el usuario «{username}».") from None

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"La contraseña debe tener al menos {MIN_PASSWORD_LENGTH} caracteres.")
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(db.users)
                .where(db.users.c.username == username)
                .values(password_hash=self._hasher.hash(password))
            ).rowcount
            connection.execute(
                delete(db.sessions).where(
                    db.sessions.c.user_id.in_(select(db.users.c.id).where(db.users.c.username == username))
                )
            )
        if not changed:
            raise AccountError(f"No existe el usuario «{username}».")

    def usernames(self) -> list[str]:
        with self.engine.connect() as connection:
            return [r[0] for r in connection.execute(select(db.users.c.username).order_by(db.users.c.username))]

    # --------------------------------------------------------- throttle
    @staticmethod
    def _user_prefix(username: str) -> str:
        return f"u:{username.lower()}|"

    @classmethod
    def _user_key(cls, username: str, address: str) -> str:
        return fit(f"{cls._user_prefix(username)}{address}", KEY_LENGTH)

    def _spread(self, username: str) -> tuple[int, Optional[datetime]]:
        """Addresses that failed on this user name within the window, and the latest failure."""
        if not _plausible_username(username):
            return 0, None  # no account has such a name (NUL, too long): its own failures still count
        table = db.login_failures
        with self.engine.connect() as connection:
            count, last = connection.execute(
                select(func.count(func.distinct(table.c.key)), func.max(table.c.at)).where(
                    table.c.key.startswith(self._user_prefix(username), autoescape=True),
                    table.c.at >= _now() - FAILURE_WINDOW,
                )
            ).one()
        return int(count or 0), last

    @staticmethod
    def _address_key(address: str) -> str:
        return fit(f"ip:{address}", KEY_LENGTH)

    def _failures(self, keys: Iterable[str]) -> dict[str, tuple[int, Optional[datetime]]]:
        """Failures per key within the window, and when the latest one was."""
        keys = list(keys)
        table = db.login_failures
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.key, func.count(), func.max(table.c.at))
                .where(table.c.key.in_(keys), table.c.at >= _now() - FAILURE_WINDOW)
                .group_by(table.c.key)
            ).all()
        found = {key: (int(count), last) for key, count, last in rows}
        return {key: found.get(key, (0, None)) for key in keys}

    def retry_after(self, username: str, address: str) -> int:
        """Whole seconds before this user name may be tried from this address; 0: now."""
        user, ip = self._user_key(username, address), self._address_key(address)
        failures, now = self._failures([user, ip]), _now()
        (user_count, user_last), (ip_count, ip_last) = failures[user], failures[ip]
        spread, spread_last = self._spread(username)
        seconds = max(
            _wait(user_count, MAX_FAILURES - 1, user_last, now),  # a user name here: from its 5th failure
            _wait(ip_count, 0, ip_last, now),  # an address: from its first failure
            _wait(spread, SPREAD_ADDRESSES - 1, spread_last, now),  # a user name everywhere: from 5 addresses
        )
        return math.ceil(seconds)

    def attempts_left(self, username: str, address: str) -> int:
        """Failed logins this user name may still have at this address before its attempts must wait."""
        user = self._user_key(username, address)
        return max(0, MAX_FAILURES - self._failures([user])[user][0])

    def _record_failure(self, keys: Iterable[str]) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(db.login_failures).where(db.login_failures.c.at < _now() - FAILURE_WINDOW))
            for key in keys:
                connection.execute(insert(db.login_failures).values(key=key, at=_now()))

    # ---------------------------------------------------------- sessions
    def login(self, username: str, password: str, address: str) -> Optional[Session]:
        """A new session, or None for a wrong user name or password.

        Raises ``LoginThrottled`` while this user name or address must still
        wait: checked here, so no caller can check a password without it.
        """
        wait = self.retry_after(username, address)
        if wait > 0:
            raise LoginThrottled(wait)
        row = None
        if _plausible_username(username):
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(db.users).where(db.users.c.username == username, db.users.c.active.is_(True))
                ).first()
        valid = False
        if row is not None:
            try:
                valid = self._hasher.verify(row.password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                valid = False
        else:
            self._hasher.hash(password)  # same cost whether or not the user exists
        keys = [self._user_key(username, address), self._address_key(address)]
        if not valid or row is None:
            self._record_failure(keys)
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        expires = _now() + self.session_length
        with self.engine.begin() as connection:
            failures = db.login_failures.c.key
            spread = failures.startswith(self._user_prefix(username), autoescape=True)
            connection.execute(delete(db.login_failures).where(failures.in_(keys) | spread))
            connection.execute(
                insert(db.sessions).values(
                    token_hash=_digest(token), user_id=row.id, csrf=csrf, created_at=_now(), expires_at=expires
                )
            )
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
        if row is None or as_utc(row.expires_at) <= _now():
            return None
        return Session(token, row.username, row.csrf, as_utc(row.expires_at))

    def logout(self, token: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(db.sessions).where(db.sessions.c.token_hash == _digest(token)))
            connection.execute(delete(db.sessions).where(db.sessions.c.expires_at <= _now()))

    # ------------------------------------------------------------- audit
    def log_access(self, username: str, action: str, subject: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                insert(db.audit).values(
                    username=username, action=action, subject=fit(subject, SUBJECT_LENGTH), at=_now()
                )
            )

    def has_recent_access(self, username: str, action: str, subject: str, within: timedelta) -> bool:
        with self.engine.connect() as connection:
            return (
                connection.execute(
                    select(db.audit.c.id).where(
                        db.audit.c.username == username,
                        db.audit.c.action == action,
                        db.audit.c.subject == fit(subject, SUBJECT_LENGTH),
                        db.audit.c.at >= _now() - within,
                    )
                ).first()
                is not None
            )

    def access_log(self, limit: int = 50) -> list[tuple[str, str, str, datetime]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(db.audit).order_by(db.audit.c.id.desc()).limit(limit))
            return [(r.username, r.action, r.subject, as_utc(r.at)) for r in rows]
