"""A worker's heartbeat file: how the launcher knows a process without an HTTP port is ready.

A worker writes it when its loop starts (and after each round); the
launcher reads it and counts the worker ready once the file names the pid
it started, so a file left by an earlier run never passes for a live one.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional


def write_heartbeat(path: Path, worker: str) -> None:
    """Replace the file atomically: a reader never sees half of it."""
    data = {"pid": os.getpid(), "worker": worker, "at": datetime.now(timezone.utc).isoformat()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def heartbeat_ok(path: Path, pid: Optional[int]) -> bool:
    """The readiness signal: the worker process ``pid`` started its loop."""
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return pid is not None and beat.get("pid") == pid
