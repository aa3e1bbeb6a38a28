"""Reading typed values out of an environment mapping.

Every value the project reads from the environment goes through these
helpers, so a bad value always stops the process the same way: with the
variable's name and what it should be, in Spanish, before anything starts.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

Env = Mapping[str, str]

TRUE = ("1", "true", "yes", "si", "sí", "on")
FALSE = ("0", "false", "no", "off")


class SettingError(SystemExit):
    """A variable with a value the project cannot use; the message says which and why."""


def text(env: Env, name: str, default: str = "") -> str:
    return (env.get(name) or "").strip() or default


def integer(env: Env, name: str, default: int, minimum: Optional[int] = None) -> int:
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} debe ser un número entero (valor actual: {raw!r})") from None
    if minimum is not None and value < minimum:
        raise SettingError(f"{name} debe ser un número entero mayor o igual que {minimum} (valor actual: {raw!r})")
    return value


def seconds(env: Env, name: str, default: float) -> float:
    """A duration in seconds; a bad value stops with its name."""
    raw = text(env, name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SettingError(f"{name} debe ser un número de segundos (valor actual: {raw!r})") from None


def non_negative(env: Env, name: str, default: float) -> float:
    """A count or size where 0 turns a limit off; negative or non-numeric stops with its name."""
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise SettingError(f"{name} debe ser un número positivo (valor actual: {raw!r})")
    return value


def flag(env: Env, name: str, default: bool) -> bool:
    raw = text(env, name).lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise SettingError(f"{name} debe ser true o false (valor actual: {raw!r})")


def items(env: Env, name: str) -> tuple[str, ...]:
    """A comma-separated list, without empty entries."""
    return tuple(part.strip() for part in text(env, name).split(",") if part.strip())
