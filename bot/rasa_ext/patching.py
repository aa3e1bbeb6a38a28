"""What every module of ``bot.rasa_ext`` does before it touches a library internal.

A change to an internal written for one version breaks silently on another:
the wrapped method takes other arguments, the swapped attribute is no longer
read, and nothing fails until a customer writes. So each module states what it
replaces as it was in the pinned versions (Rasa 3.6.21, Sanic 21.12.2,
python-socketio 5.9.0, SQLAlchemy 1.4, CPython 3.10); these helpers compare
that at start-up and stop the process with the module's name otherwise, and
mark each replacement so that installing twice changes nothing.
"""

from __future__ import annotations

import inspect
import sys
from importlib import metadata
from typing import Any, Callable, Optional

# Set on every replacement function: the name of the module that put it there.
MARK = "__rasa_ext_patch__"

# Release lines the patches were written and measured against (pyproject.toml pins the exact versions).
RELEASE_LINES = {"rasa": "3.6.", "sanic": "21.12.", "python-socketio": "5.", "SQLAlchemy": "1.4."}
PYTHON = (3, 10)
RUNNING_PYTHON = (sys.version_info[0], sys.version_info[1])


class PatchMismatch(RuntimeError):
    """A library internal is not the one a module of ``bot.rasa_ext`` was written for.

    A RuntimeError on purpose: Rasa turns an AttributeError or ImportError
    raised while it builds the tracker store named in endpoints.yml into a
    warning and an in-memory store, which would start the assistant without
    the project's stores instead of stopping it.
    """


def mismatch(patch: str, problem: str) -> PatchMismatch:
    """The error that stops the start-up, naming the module to review."""
    return PatchMismatch(
        f"bot.rasa_ext.{patch}: {problem}. Este cambio de Rasa se escribió para Rasa 3.6.21 "
        f"(Sanic 21.12, python-socketio 5.9, SQLAlchemy 1.4, Python 3.10): revisa bot/rasa_ext/{patch}.py "
        "antes de cambiar de versión, o vuelve a la versión fijada en constraints.txt."
    )


def expect_release(patch: str, distribution: str, installed: Optional[str] = None) -> None:
    """The installed ``distribution`` is on the release line the patch was written for."""
    line = RELEASE_LINES[distribution]
    version = installed if installed is not None else metadata.version(distribution)
    if not version.startswith(line):
        raise mismatch(patch, f"{distribution} instalado es {version}, se esperaba {line}x")


def expect_python(patch: str, version: tuple[int, int] = RUNNING_PYTHON) -> None:
    if version != PYTHON:
        raise mismatch(patch, f"Python es {version[0]}.{version[1]}, se esperaba {PYTHON[0]}.{PYTHON[1]}")


def expect_signature(patch: str, name: str, function: Any, expected: str) -> None:
    """``function`` has exactly the signature (parameters and annotations) the patch was written against.

    A replacement keeps the replaced function as ``__wrapped__``, so checking
    again after installing compares the original, and still passes.
    """
    if function is None:
        raise mismatch(patch, f"{name} no existe")
    try:
        actual = str(inspect.signature(function))
    except (TypeError, ValueError) as exc:
        raise mismatch(patch, f"no se puede leer la firma de {name} ({exc})") from exc
    if actual != expected:
        raise mismatch(patch, f"{name} tiene la firma {actual}; se esperaba {expected}")


def applied(owner: Any, attribute: str) -> Optional[str]:
    """The module of this package whose replacement is at ``owner.attribute``, if any."""
    value = inspect.getattr_static(owner, attribute, None)
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    mark = getattr(value, MARK, None)
    return mark if isinstance(mark, str) else None


def replace(patch: str, owner: type, attribute: str, make: Callable[[Any], Any]) -> bool:
    """Put ``make(current)`` at ``owner.attribute``, marked; False if ``patch`` is already there.

    A static method stays static, so callers that use it through the class
    or an instance see the same kind of attribute as before.
    """
    if applied(owner, attribute) == patch:
        return False
    replacement = make(getattr(owner, attribute))
    setattr(replacement, MARK, patch)
    static = isinstance(inspect.getattr_static(owner, attribute), staticmethod)
    setattr(owner, attribute, staticmethod(replacement) if static else replacement)
    return True
