"""Secrets generated once and kept in the data directory.

Every secret the project needs (Rasa's API token, the action server's token,
the REST channel's token, the web session key) has an embedded default: a
random value generated on first start and kept, readable only by its owner,
under ``BOT_DATA_DIR``. A file is never left empty: an empty token would turn
a check off, so the value is written to a private temporary file and linked
into place whole.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DATA_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """The data directory, created readable only by its owner (it holds secrets and customer files)."""
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, DATA_DIR_MODE)
    return path


def kept_secret(data_dir: Path, name: str) -> str:
    """The secret kept as ``data_dir/name``, generated now if absent or empty.

    Two launches racing get the same value: ``os.link`` refuses to replace an
    existing file, so the loser reads the winner's.
    """
    private_dir(data_dir)
    path = data_dir / name
    for _ in range(3):
        try:
            existing = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            existing = ""
        else:
            if existing:
                return existing
            path.unlink(missing_ok=True)  # left empty by a crash in an older version
        token = secrets.token_urlsafe(32)
        temporary = data_dir / f".{name}.{secrets.token_hex(8)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as secret_file:
                secret_file.write(token + "\n")
                secret_file.flush()
                os.fsync(secret_file.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                continue
            return token
        finally:
            temporary.unlink(missing_ok=True)
    raise RuntimeError(f"no se pudo crear el secreto {path}")
