"""SQLAlchemy engines shared by the ticket store and the review tables.

One engine (and connection pool) per URL per process; SQLite files get their
folder created and a generous lock timeout, since several processes (action
server, web server, delivery worker) write to the same file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            # hide_parameters: a database error's text (logged, shown to operators)
            # never carries the values bound to the statement: customers' words.
            kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            engine = create_engine(url, **kwargs)
            _engines[url] = engine
        return engine
