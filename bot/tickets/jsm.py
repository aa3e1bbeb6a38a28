"""Jira Service Management names at their pre-issue-11 import path, for callers not yet moved.

New code imports from the module that does the job: ``errors``,
``jsm_client``, ``jsm_mapping``, ``jsm_sync`` (settings: ``bot.settings.tickets``).
"""

from bot.tickets.errors import JsmAuthError, JsmConfigError, JsmError, JsmRejected, JsmUnavailable
from bot.tickets.jsm_client import JsmClient, when_of
from bot.tickets.jsm_mapping import JsmMapping, MappingFile, TypeMapping
from bot.tickets.jsm_sync import SyncReport, sync_mapping

__all__ = [
    "JsmAuthError",
    "JsmClient",
    "JsmConfigError",
    "JsmError",
    "JsmMapping",
    "JsmRejected",
    "JsmUnavailable",
    "MappingFile",
    "SyncReport",
    "TypeMapping",
    "sync_mapping",
    "when_of",
]
