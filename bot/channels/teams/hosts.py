"""Which hosts the Teams connector may call, and with what.

Replies carry the bot's access token to the activity's ``serviceUrl``, and
files are fetched from URLs an activity names: a crafted activity must make
the assistant call neither an attacker's host nor an internal address. So
every URL is judged against an allow-list, with the very parser aiohttp
fetches with.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from yarl import URL

logger = logging.getLogger(__name__)

MAX_URL_CHARS = 8192

# Where the Bot Connector lives (replies go to the activity's serviceUrl with
# the bot's access token): the public cloud's smba.trafficmanager.net (its
# regions are paths: /amer/, /emea/, /teams/...), the government clouds'
# smba.infra.{gcc,gov,dod}.teams.microsoft.{com,us} and the Bot Framework's
# own domains. Exactly smba.trafficmanager.net: anyone can create a
# *.trafficmanager.net host. An entry is a host, or "*." and a domain for its
# subdomains, optionally with ":port"; HTTPS on 443 unless the entry starts
# with "http://" or names a port.
DEFAULT_SERVICE_HOSTS = (
    "smba.trafficmanager.net",
    "*.botframework.com",
    "*.botframework.us",
    "*.teams.microsoft.com",
    "*.teams.microsoft.us",
)
# Besides the service hosts, images pasted into channel posts live in Teams'
# media service; like the service hosts, it wants the bot's token.
MEDIA_HOSTS = ("*.asm.skype.com",)
# Files sent through Teams are pre-authenticated SharePoint/OneDrive links
# (commercial and government clouds); they never get the bot's token.
DEFAULT_DOWNLOAD_HOSTS = ("*.sharepoint.com", "*.sharepoint.us")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostRule:
    """One allowed origin: scheme, port and an exact host or a domain's subdomains.

    A wildcard never matches an IP literal nor the bare domain, and ports
    must match exactly, so an allowed name cannot be stretched to internal
    addresses or other services on the same machine.
    """

    scheme: str
    host: str  # the exact host, or for a wildcard the domain its subdomains end with
    port: int
    wildcard: bool = False

    @classmethod
    def parse(cls, entry: str) -> "HostRule":
        text = entry.strip().lower()
        scheme, separator, rest = text.partition("://")
        if not separator:
            scheme, rest = "https", text
        if scheme not in ("https", "http"):
            raise ValueError(f"scheme {scheme!r} is not http(s)")
        wildcard = rest.startswith("*.")
        if wildcard:
            rest = rest[2:]
        if not rest or any(c in rest for c in "/?#@\\*") or any(c.isspace() for c in rest):
            raise ValueError("not a host[:port]")
        url = URL(f"{scheme}://{rest}")
        if not url.host or url.port is None:
            raise ValueError("not a host[:port]")
        if wildcard and (_is_ip(url.host) or "." not in url.host):
            raise ValueError("wildcard too broad")
        return cls(scheme, url.host, url.port, wildcard)

    def matches(self, url: URL) -> bool:
        host = url.host or ""
        if url.scheme != self.scheme or url.port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host) and not _is_ip(host)
        return host == self.host


def host_rules(entries: Iterable[str], source: str = "") -> tuple[HostRule, ...]:
    """The valid entries as rules; a bad entry is logged and skipped, never widened."""
    rules = []
    for entry in entries:
        if not entry.strip():
            continue
        try:
            rules.append(HostRule.parse(entry))
        except ValueError as exc:
            logger.error("Ignoring %r in %s: %s.", entry, source or "a Teams host list", exc)
    return tuple(rules)


def trusted_url(raw: Any, rules: Sequence[HostRule]) -> Optional[URL]:
    """``raw`` parsed as aiohttp will fetch it, if it is on the allow-list; else None.

    The URL checked is the URL fetched (one parser for both), and URLs
    carrying credentials or odd characters are refused outright: they are
    how parsers are made to disagree about the host.
    """
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_CHARS:
        return None
    if any(ord(c) <= 0x20 or c in "\\\x7f" for c in raw):
        return None
    try:
        url = URL(raw)
        if not url.is_absolute() or url.scheme not in ("https", "http") or not url.host:
            return None
        if "@" in (url.raw_authority or ""):
            return None
        return url if any(rule.matches(url) for rule in rules) else None
    except (ValueError, TypeError):
        return None


def host_of(raw: Any) -> str:
    """For logs: the host only, as download URLs carry short-lived credentials."""
    try:
        return URL(str(raw)).host or "?"
    except (ValueError, TypeError):
        return "?"
