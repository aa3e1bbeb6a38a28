"""The environment-driven stores: lock choice, atomic Redis tickets, masking."""

from __future__ import annotations

import os
import threading

import pytest
from rasa.core.lock_store import InMemoryLockStore
from rasa.shared.core.events import BotUttered, SlotSet, UserUttered

from bot.stores import AtomicRedisLockStore, EnvLockStore, lock_store_from_url, mask_event
from tests.cards import CARD, shows_card



def test_in_memory_lock_without_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert isinstance(EnvLockStore(), InMemoryLockStore)


def test_redis_url_is_parsed() -> None:
    store = lock_store_from_url("redis://:s3cr%40to@redis.interno:6390/3")
    assert isinstance(store, AtomicRedisLockStore)
    kwargs = store.red.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("redis.interno", 6390, 3, "s3cr@to")
    assert store.key_prefix.startswith("soporteecollect:")
    with pytest.raises(ValueError):
        lock_store_from_url("http://redis:6379")


def test_card_numbers_are_masked_in_events() -> None:
    user = UserUttered(f"pagué con {CARD}", intent={"name": "pago_en_linea"}, parse_data={"text": f"pagué con {CARD}"})
    bot = BotUttered(f"recibí {CARD}", data={"buttons": []})
    slot = SlotSet("description", f"tarjeta {CARD}")
    for event in (user, bot, slot):
        mask_event(event)
    assert not shows_card(user.text) and not shows_card(str(user.parse_data))
    assert not shows_card(bot.text) and not shows_card(str(slot.value))


@pytest.fixture
def redis_store() -> AtomicRedisLockStore:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.fail("TEST_REDIS_URL no está definida: ejecuta las pruebas con `make test`.")
    store = lock_store_from_url(url)
    store.red.flushdb()
    return store


def test_concurrent_ticket_issuing_never_hands_out_one_ticket_twice(redis_store: AtomicRedisLockStore) -> None:
    """Many lock-store clients (as several Rasa processes) taking tickets at once."""
    stores = [lock_store_from_url(os.environ["TEST_REDIS_URL"]) for _ in range(8)]
    tickets: list[int] = []
    guard = threading.Lock()

    def take(store: AtomicRedisLockStore) -> None:
        for _ in range(25):
            number = store.issue_ticket("conversacion-compartida", 60)
            with guard:
                tickets.append(number)

    threads = [threading.Thread(target=take, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(tickets) == 200 and len(set(tickets)) == 200
    for number in tickets:
        redis_store.cleanup("conversacion-compartida", number)
    assert redis_store.get_lock("conversacion-compartida") is None
