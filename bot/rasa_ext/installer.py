"""``install``: every change of ``bot.rasa_ext`` applied (or checked) once per process.

Called before Rasa's CLI by ``python -m bot.rasa_runtime`` (``make run``),
and by ``bot.stores.EnvTrackerStore``, which Rasa builds at start-up from
endpoints.yml in every process, so ``rasa run`` behaves the same. Importing
this module imports Rasa's core (TensorFlow), which is why it is not the
package's ``__init__``: the action server imports ``bot.rasa_ext.warnings_options``
and must stay light.
"""

from __future__ import annotations

import logging

from bot.rasa_ext import (
    PERFORMANCE,
    PERFORMANCE_OFF,
    PERFORMANCE_ON,
    action_server_down,
    atomic_redis_lock,
    endpoint_sessions,
    event_types,
    log_masking,
    request_json,
    session_carry,
    socketio_handlers,
    sql_tracker_engine,
    validation_cache,
    warnings_options,
)
from bot.settings.runtime import RuntimeSettings

logger = logging.getLogger(__name__)

ALWAYS = (
    "warnings_options",
    "log_masking",
    "action_server_down",
    "atomic_redis_lock",
    "request_json",
    "socketio_handlers",
    "session_carry",
)


def install(runtime: RuntimeSettings) -> tuple[str, ...]:
    """Apply (or check) every change; the performance ones only with ``runtime.rasa_extensions``.

    Idempotent: a change already in place is left as it is. Returns the names
    of the changes in force. Raises PatchMismatch, naming the change, when
    Rasa or a library is not the version a change was written for.
    """
    warnings_options.honour_warning_options()
    log_masking.install()
    action_server_down.install()
    session_carry.install()
    atomic_redis_lock.verify()
    request_json.verify()
    socketio_handlers.verify()
    in_force: tuple[str, ...] = ALWAYS
    if runtime.rasa_extensions:
        validation_cache.install()
        endpoint_sessions.install()
        event_types.install()
        sql_tracker_engine.verify()
        in_force += PERFORMANCE
    logger.info(
        "Rasa extensions (bot.rasa_ext): %s; %s.",
        ", ".join(in_force),
        PERFORMANCE_ON if runtime.rasa_extensions else f"{PERFORMANCE_OFF} (RASA_EXTENSIONS=off: Rasa's stock runtime)",
    )
    return in_force
