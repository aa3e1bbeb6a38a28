"""Outgoing mail settings (``SMTP_*``). Mail is off unless ``SMTP_HOST`` is set.

- ``SMTP_HOST``: the server; empty = mail off.
- ``SMTP_PORT``: 587 by default.
- ``SMTP_USER`` / ``SMTP_PASSWORD``: login, when the server wants one.
- ``SMTP_FROM``: the sender address (``SMTP_USER`` when it is an address).
- ``SMTP_STARTTLS``: true by default; a server that does not offer it gets
  nothing, never a mail in clear text.
- ``SMTP_SSL``: false by default; true for implicit TLS (port 465).
- ``SMTP_TIMEOUT``: seconds per SMTP operation, 10 by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

_TRUE = ("1", "true", "yes", "si", "sí", "on")
_FALSE = ("0", "false", "no", "off")


class MailConfigError(ValueError):
    """The SMTP settings cannot work; ``str()`` names the variable, in Spanish."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise MailConfigError(f"{name} debe ser true o false (valor actual: {raw!r})")


def plain_address(value: str) -> bool:
    """One bare address, nothing a header or an SMTP command could be smuggled in."""
    return (
        value.count("@") == 1
        and not any(c.isspace() or c in "<>,;\"'()\\" for c in value)
        and "." in value.split("@")[1]
    )


@dataclass(frozen=True)
class MailSettings:
    host: str
    sender: str
    port: int = 587
    user: str = ""
    password: str = ""
    starttls: bool = True
    ssl: bool = False
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Optional["MailSettings"]:
        """The configured server, or None when ``SMTP_HOST`` is empty (mail off)."""
        env = os.environ if env is None else env
        host = (env.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        raw_port = (env.get("SMTP_PORT") or "").strip()
        try:
            port = int(raw_port) if raw_port else 587
        except ValueError:
            raise MailConfigError(f"SMTP_PORT debe ser un número de puerto (valor actual: {raw_port!r})") from None
        if not 0 < port < 65536:
            raise MailConfigError(f"SMTP_PORT debe ser un número de puerto (valor actual: {raw_port!r})")
        raw_timeout = (env.get("SMTP_TIMEOUT") or "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 10.0
        except ValueError:
            raise MailConfigError(
                f"SMTP_TIMEOUT debe ser un número de segundos (valor actual: {raw_timeout!r})"
            ) from None
        user = (env.get("SMTP_USER") or "").strip()
        sender = (env.get("SMTP_FROM") or "").strip() or (user if "@" in user else "")
        if not plain_address(sender):
            raise MailConfigError("SMTP_FROM debe ser la dirección remitente, p. ej. soporte@ecollect.co")
        use_ssl = _flag(env, "SMTP_SSL", False)
        return cls(
            host=host,
            sender=sender,
            port=port,
            user=user,
            password=env.get("SMTP_PASSWORD") or "",
            # Implicit TLS already encrypts; STARTTLS applies to plain connections only.
            starttls=_flag(env, "SMTP_STARTTLS", True) and not use_ssl,
            ssl=use_ssl,
            timeout=timeout if timeout > 0 else 10.0,
        )
