"""Keeping the operator's warning filters in force over Sanic's.

Calls ``warnings._processoptions`` (CPython 3.10's private parser of ``-W``
and ``PYTHONWARNINGS``) again after Sanic is imported.

Why: Sanic 21.12 calls ``warnings.filterwarnings("once", DeprecationWarning)``
when it is imported, which puts the deprecation notices of Rasa's (and
rasa_sdk's) dependencies back on the console ahead of ``PYTHONWARNINGS`` (the
launcher sets it to ignore them, so that the lines an operator needs are not
buried). Applying the interpreter's options again puts them back in front.
The standard library has no public way to apply them. Always used: by
``bot.action_server`` before rasa_sdk's imports, and by Rasa's start-up.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import sanic  # noqa: F401  # importing it installs the filter that honour_warning_options() overrides

from bot.rasa_ext.patching import expect_python, expect_signature

PATCH = "warnings_options"

PROCESS_OPTIONS = "warnings._processoptions"
PROCESS_OPTIONS_SIGNATURE = "(args)"


def check(process_options: Any) -> None:
    """Raises PatchMismatch unless the interpreter's option parser is the one of CPython 3.10."""
    expect_python(PATCH)
    expect_signature(PATCH, PROCESS_OPTIONS, process_options, PROCESS_OPTIONS_SIGNATURE)


def honour_warning_options() -> None:
    """Re-apply -W / PYTHONWARNINGS in front of Sanic's filter (Sanic is imported with this module)."""
    process_options: Any = getattr(warnings, "_processoptions", None)
    check(process_options)
    process_options(sys.warnoptions)
