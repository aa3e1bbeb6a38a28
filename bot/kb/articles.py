"""The embedded articles: one Markdown file each in a folder (``kb/``), with a YAML front matter.

A file looks like::

    ---
    title: Cómo eliminar o actualizar registros de cartera
    request_types: [gestion_archivos, acompanamiento_tecnico]   # catalog ids
    keywords: [eliminar registro, actualizar cartera]
    excerpt: Una línea para la oferta (opcional; si falta, el primer párrafo)
    ---
    El cuerpo, en Markdown.

The help desk edits these files without code, so a mistake in one must never
stop the assistant: a malformed file is skipped, and the log names it and
says why (in Spanish, for whoever edits the folder). ``README.md`` and files
whose name starts with ``_`` or ``.`` are not articles.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

from bot.kb.model import EMBEDDED, Article

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 256 * 1024
EXCERPT_CHARS = 160
ARTICLE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`>#]+")
_LIST_MARK = re.compile(r"^\s*(?:[-+]|\d+[.)])\s+", re.MULTILINE)


class ArticleError(ValueError):
    """A file of the folder that is not a valid article; the message says which and why."""


@dataclass(frozen=True)
class Loaded:
    articles: tuple[Article, ...]
    problems: tuple[str, ...]  # one Spanish line per skipped file


def article_files(folder: Path) -> list[Path]:
    """The folder's article files, in name order (a missing folder has none)."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.glob("*.md")
        if path.is_file() and path.name.lower() != "readme.md" and not path.name.startswith(("_", "."))
    )


def plain_text(markdown: str) -> str:
    """Markdown as one line of plain text (links keep their words), for excerpts."""
    text = _LINK.sub(r"\1", markdown)
    text = _LIST_MARK.sub("", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


def first_paragraph(markdown: str) -> str:
    for block in re.split(r"\n\s*\n", markdown):
        if block.strip() and not block.lstrip().startswith("#"):
            return plain_text(block)
    return ""


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"


def _strings(value: Any, key: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ArticleError(f"{name}: «{key}» debe ser una lista de textos")
    return tuple(str(v).strip() for v in value if str(v).strip())


def parse_article(name: str, text: str, known_types: Optional[Iterable[str]] = None) -> Article:
    """One file's text as an article; ``ArticleError`` (Spanish) when it is not a valid one."""
    article_id = Path(name).stem
    if not ARTICLE_ID.match(article_id):
        raise ArticleError(f"{name}: el nombre del archivo debe usar solo minúsculas, números, «-» o «_»")
    found = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not found:
        raise ArticleError(f"{name}: falta el encabezado YAML entre dos líneas «---» al comienzo del archivo")
    try:
        meta = yaml.safe_load(found.group(1))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (línea {where.line + 2})" if where is not None else ""
        raise ArticleError(f"{name}: el encabezado YAML no es válido{line}") from exc
    if not isinstance(meta, dict):
        raise ArticleError(f"{name}: el encabezado YAML debe tener los campos title, request_types y keywords")
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ArticleError(f"{name}: falta el título («title»)")
    body = found.group(2).strip()
    if not body:
        raise ArticleError(f"{name}: el artículo no tiene texto después del encabezado")
    types = _strings(meta.get("request_types"), "request_types", name)
    if known_types is not None:
        known = set(known_types)
        unknown = [t for t in types if t not in known]
        if unknown:
            raise ArticleError(
                f"{name}: tipos de solicitud que el catálogo no tiene: {', '.join(unknown)} "
                "(usa los id de bot/catalog.yml, p. ej. gestion_archivos)"
            )
    excerpt = meta.get("excerpt")
    if excerpt is not None and not isinstance(excerpt, str):
        raise ArticleError(f"{name}: «excerpt» debe ser un texto")
    return Article(
        id=article_id,
        title=" ".join(title.split()),
        request_types=types,
        keywords=_strings(meta.get("keywords"), "keywords", name),
        body=body,
        url=None,
        excerpt=shorten(plain_text(excerpt) if excerpt else first_paragraph(body)),
        source=EMBEDDED,
    )


def read_article(path: Path, known_types: Optional[Iterable[str]] = None) -> Article:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArticleError(f"{path.name}: el archivo pesa {size} bytes; el máximo es {MAX_FILE_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"{path.name}: el archivo no está en UTF-8") from exc
    except OSError as exc:
        raise ArticleError(f"{path.name}: no se pudo leer ({exc.__class__.__name__})") from exc
    return parse_article(path.name, text, known_types)


def load_folder(folder: Path, known_types: Optional[Iterable[str]] = None) -> Loaded:
    """Every valid article of ``folder``; each invalid file logged (error) and listed in ``problems``."""
    known = None if known_types is None else frozenset(known_types)
    articles: list[Article] = []
    problems: list[str] = []
    for path in article_files(folder):
        try:
            articles.append(read_article(path, known))
        except ArticleError as exc:
            problems.append(str(exc))
            logger.error("base de conocimiento: se omite el artículo %s (%s)", path, exc)
    return Loaded(tuple(articles), tuple(problems))
