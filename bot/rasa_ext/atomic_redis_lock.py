"""Rasa's Redis lock store, with its read-modify-write steps made atomic.

Replaces (in a subclass, ``AtomicRedisLockStore``) ``issue_ticket``,
``finish_serving`` and ``cleanup`` of ``rasa.core.lock_store.RedisLockStore``,
using its internals: the Redis client in ``self.red``, the key prefix in
``self.key_prefix`` and the JSON form of ``rasa.core.lock.TicketLock``.

Why: Rasa 3.6 issues, finishes and cleans up tickets by reading the lock from
Redis, changing it and writing it back. Two Rasa processes doing that at once
can both take the same ticket and handle one conversation's messages at the
same time, which loses events. Each step here runs as a Redis transaction
(WATCH/MULTI) and is retried if the lock changed meanwhile. Always used when
``REDIS_URL`` is set (``bot.stores.EnvLockStore``): it is correctness, not
performance.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Text, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockStore, RedisLockStore

from bot.rasa_ext.patching import expect_release, expect_signature, mismatch

PATCH = "atomic_redis_lock"

# What the subclass overrides or builds on, as in Rasa 3.6.21.
SIGNATURES = {
    "rasa.core.lock_store.RedisLockStore.__init__": (
        "(self, host: 'Text' = 'localhost', port: 'int' = 6379, db: 'int' = 1, username: 'Optional[Text]' = None, "
        "password: 'Optional[Text]' = None, use_ssl: 'bool' = False, ssl_certfile: 'Optional[Text]' = None, "
        "ssl_keyfile: 'Optional[Text]' = None, ssl_ca_certs: 'Optional[Text]' = None, "
        "key_prefix: 'Optional[Text]' = None, socket_timeout: 'float' = 10) -> 'None'"
    ),
    "rasa.core.lock_store.LockStore.issue_ticket": (
        "(self, conversation_id: 'Text', lock_lifetime: 'float' = 60) -> 'int'"
    ),
    "rasa.core.lock_store.LockStore.finish_serving": "(self, conversation_id: 'Text', ticket_number: 'int') -> 'None'",
    "rasa.core.lock_store.LockStore.cleanup": "(self, conversation_id: 'Text', ticket_number: 'int') -> 'None'",
    "rasa.core.lock.TicketLock.from_dict": "(data: Dict[str, Any]) -> 'TicketLock'",
    "rasa.core.lock.TicketLock.dumps": "(self) -> str",
    "rasa.core.lock.TicketLock.issue_ticket": "(self, lifetime: float) -> int",
    "rasa.core.lock.TicketLock.remove_ticket_for": "(self, ticket_number: int) -> None",
    "rasa.core.lock.TicketLock.is_someone_waiting": "(self) -> bool",
}


def targets() -> dict[str, Any]:
    """The functions named in SIGNATURES, as installed now."""
    return {
        "rasa.core.lock_store.RedisLockStore.__init__": RedisLockStore.__init__,
        "rasa.core.lock_store.LockStore.issue_ticket": LockStore.issue_ticket,
        "rasa.core.lock_store.LockStore.finish_serving": LockStore.finish_serving,
        "rasa.core.lock_store.LockStore.cleanup": LockStore.cleanup,
        "rasa.core.lock.TicketLock.from_dict": TicketLock.from_dict,
        "rasa.core.lock.TicketLock.dumps": TicketLock.dumps,
        "rasa.core.lock.TicketLock.issue_ticket": TicketLock.issue_ticket,
        "rasa.core.lock.TicketLock.remove_ticket_for": TicketLock.remove_ticket_for,
        "rasa.core.lock.TicketLock.is_someone_waiting": TicketLock.is_someone_waiting,
    }


def check(functions: dict[str, Any]) -> None:
    """Raises PatchMismatch unless each named function has the signature this module was written for."""
    expect_release(PATCH, "rasa")
    for name, expected in SIGNATURES.items():
        expect_signature(PATCH, name, functions.get(name), expected)


def verify() -> None:
    """``check`` against the Rasa installed."""
    check(targets())


T = TypeVar("T")


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store whose ticket steps are Redis transactions (see the module's docstring)."""

    def __init__(self, **options: Any) -> None:
        verify()
        super().__init__(**options)
        client, prefix = getattr(self, "red", None), getattr(self, "key_prefix", None)
        if not isinstance(client, redis.Redis) or not isinstance(prefix, str):
            raise mismatch(PATCH, "RedisLockStore ya no guarda su cliente en .red y su prefijo en .key_prefix")

    def _transact(
        self, conversation_id: Text, change: Callable[[Optional[TicketLock]], tuple[Optional[TicketLock], T]]
    ) -> T:
        key = self.key_prefix + conversation_id
        while True:
            with self.red.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    current = TicketLock.from_dict(json.loads(raw)) if raw else None
                    updated, result = change(current)
                    pipe.multi()
                    if updated is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, updated.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock]) -> tuple[Optional[TicketLock], int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._transact(conversation_id, change)
