"""An embedded article's Markdown body as HTML a customer's browser can be given safely.

The help desk writes the articles in ``kb/`` without a review by code: a
stray ``<script>``, an ``<iframe>`` or a ``javascript:`` link pasted into
one must reach the customer as visible text or as nothing, never as markup.
Python-Markdown has no safe mode any more; its own advice is to remove the
two steps that pass raw HTML through (the block preprocessor and the inline
pattern), so every ``<`` is escaped like any other text, and here links and
images keep only addresses of the web (``http(s)``, ``mailto``, or this
site's own paths). The page's CSP (no scripts at all) is the second wall.
"""

from __future__ import annotations

import xml.etree.ElementTree as etree
from urllib.parse import urlsplit

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
EXTENSIONS = ("sane_lists", "tables")


def safe_address(value: str) -> bool:
    """An address a link may carry: the web's, mail, or a path of this site (never ``//other.host``)."""
    address = value.strip()
    if not address or any(ch.isspace() or not ch.isprintable() for ch in address) or "\\" in address:
        return False
    try:
        parts = urlsplit(address)
    except ValueError:
        return False
    if parts.scheme:
        return parts.scheme.lower() in SAFE_SCHEMES and (parts.scheme.lower() == "mailto" or bool(parts.netloc))
    return not address.startswith("//")


class _SafeLinks(Treeprocessor):
    """Unsafe link targets and image sources are dropped; the link's words stay."""

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            if element.tag == "a":
                href = element.get("href", "")
                if not safe_address(href):
                    element.attrib.pop("href", None)
                elif urlsplit(href.strip()).scheme:
                    element.set("rel", "noopener noreferrer")
            elif element.tag == "img" and not safe_address(element.get("src", "")):
                element.attrib.pop("src", None)


class _NoRawHtml(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Python-Markdown's hook name)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_SafeLinks(md), "safe_links", 0)


def article_html(body: str) -> str:
    """``body`` (Markdown) as HTML with every raw tag shown as text; a new converter per call (they keep state)."""
    converter = markdown.Markdown(extensions=[*EXTENSIONS, _NoRawHtml()], output_format="html")
    return str(converter.convert(body))
