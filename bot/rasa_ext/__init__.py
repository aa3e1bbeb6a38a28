"""Every change the project makes to an internal of Rasa or of a library it runs on, in one place.

One module per change; each says what it replaces and why (with the measured
figure for performance changes), and checks when installed, or first used,
that what it replaces is what it was written for (Rasa 3.6.x, the signatures
of Rasa 3.6.21), stopping the start-up with its name otherwise
(``PatchMismatch``):

- ``action_server_down``: «Tengo un problema técnico…» instead of silence
  when the action server cannot answer (always).
- ``validation_cache``: action server responses checked against a schema
  compiled once (half of Rasa's CPU under ``make bench-load``).
- ``endpoint_sessions``: one kept HTTP connection pool per endpoint (12%).
- ``event_types``: event classes by name from a table (8%).
- ``sql_tracker_engine``: pooled WAL SQLite for the embedded tracker (16%).
- ``atomic_redis_lock``: Redis lock steps as transactions (always, with Redis).
- ``socketio_handlers``: the guarded socket.io handlers in place of Rasa's (always).
- ``request_json``: the cleaned REST body handed on to Rasa's handler (always).
- ``warnings_options``: the operator's warning filters over Sanic's (always).
- ``log_masking``: cards, e-mails and phones masked in every log line (always).
- ``session_carry``: a new session keeps an open reply or CSAT form (always).

``installer.install`` applies them all, once per process, whichever way Rasa
starts: ``python -m bot.rasa_runtime run`` (``make run``) calls it before
Rasa's CLI, and ``bot.stores.EnvTrackerStore``, which Rasa builds at start-up
from endpoints.yml in every process, calls it too, so ``rasa run`` behaves
the same. ``RASA_EXTENSIONS=off`` leaves out the performance changes, which
is Rasa's stock runtime for the same bot (``make bench-load`` compares both).

This package's ``__init__`` stays light (no Rasa import): the action server
imports ``warnings_options`` from it before rasa_sdk.
"""

from __future__ import annotations

from bot.rasa_ext.patching import PatchMismatch, applied

__all__ = ["PERFORMANCE", "PERFORMANCE_OFF", "PERFORMANCE_ON", "PatchMismatch", "applied"]

PERFORMANCE = ("validation_cache", "endpoint_sessions", "event_types", "sql_tracker_engine")
# In the start-up log, so that an operator (and make bench-load) can see which runtime a Rasa process runs.
PERFORMANCE_ON = "performance extensions on"
PERFORMANCE_OFF = "performance extensions off"
