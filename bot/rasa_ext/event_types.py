"""Event classes looked up by type name in a table instead of a walk of the class hierarchy.

Replaces ``rasa.shared.core.events.Event.resolve_by_type``.

Why: Rasa walks every subclass of ``Event`` for each event it deserialises
(every tracker read from the store, every response of the action server):
8% of the Rasa process's CPU in the ``make bench-load`` profile. Here the
table is built on the first call (when every event class is defined) with the
first class of each name, as Rasa's walk would find it; a name missing from
the table goes to Rasa's own lookup, so ``"topic"``, defaults and errors are
Rasa's. Performance: installed only with ``RASA_EXTENSIONS`` on (the default).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Type

import rasa.shared.utils.common
from rasa.shared.core.events import Event

from bot.rasa_ext.patching import applied, expect_release, expect_signature, replace

PATCH = "event_types"

RESOLVE = "rasa.shared.core.events.Event.resolve_by_type"
RESOLVE_SIGNATURE = (
    "(type_name: str, default: Optional[Type[ForwardRef('Event')]] = None) -> Optional[Type[ForwardRef('Event')]]"
)
ALL_SUBCLASSES = "rasa.shared.utils.common.all_subclasses"
ALL_SUBCLASSES_SIGNATURE = "(cls: Any) -> List[Any]"

Resolve = Callable[..., Optional[Type[Event]]]


def check(resolve: Any, all_subclasses: Any) -> None:
    """Raises PatchMismatch unless Rasa resolves event types the way this module was written for."""
    expect_release(PATCH, "rasa")
    expect_signature(PATCH, RESOLVE, resolve, RESOLVE_SIGNATURE)
    expect_signature(PATCH, ALL_SUBCLASSES, all_subclasses, ALL_SUBCLASSES_SIGNATURE)


def install() -> bool:
    if applied(Event, "resolve_by_type") == PATCH:
        return False
    check(Event.resolve_by_type, rasa.shared.utils.common.all_subclasses)
    return replace(PATCH, Event, "resolve_by_type", _from_a_table)


def _from_a_table(resolve: Resolve) -> Resolve:
    by_name: dict[str, Type[Event]] = {}

    @functools.wraps(resolve)
    def resolve_by_type(type_name: str, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
        if not by_name:
            for cls in rasa.shared.utils.common.all_subclasses(Event):
                by_name.setdefault(cls.type_name, cls)
        found = by_name.get(type_name)
        return found if found is not None else resolve(type_name, default)

    return resolve_by_type
