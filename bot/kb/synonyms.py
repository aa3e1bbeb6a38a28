"""The catalog's aliases as search synonyms: «sftp», «filezilla» or «pasarela» name a request type.

A question that mentions an alias of a request type (or of one of its ítems,
or of a retired option) is about that type: the search adds the type's own
name to the question's terms and favours the articles tagged with the type,
so «no me abre el filezilla» reaches an article written as «No tengo acceso
al SFTP». Matching is on stems, so «cargues de cartera» meets the alias
«cargue de cartera».
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalog import Catalog
from bot.kb.analysis import Analyzer


@dataclass(frozen=True)
class Expansion:
    """What a question's aliases add: the types they name, and those types' names as terms."""

    request_types: frozenset[str] = frozenset()
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry:
    phrase: tuple[str, ...]  # the alias's stems
    request_types: tuple[str, ...]
    terms: tuple[str, ...]  # the named thing's own stems


class Synonyms:
    """The catalog's phrases, stemmed once at start-up."""

    def __init__(self, catalog: Catalog, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.type_phrases: dict[str, str] = {}  # type id -> its name and aliases, for the articles' «types» field
        entries: list[_Entry] = []

        def add(phrases: tuple[str, ...], type_ids: tuple[str, ...], name: str) -> None:
            own = tuple(analyzer.terms(name))
            for phrase in phrases:
                stems = tuple(analyzer.terms(phrase))
                if stems:
                    entries.append(_Entry(stems, type_ids, own))

        for request_type in catalog.request_types:
            add(request_type.phrases, (request_type.id,), request_type.name)
            self.type_phrases[request_type.id] = " ".join(request_type.phrases)
            for spec in request_type.fields:
                for option in spec.options:
                    add(option.phrases, (request_type.id,), option.name)
        for retired in catalog.retired:
            add(retired.phrases, (retired.request_type_id, retired.redirect.request_type_id), retired.name)
        # Longest phrases first: «cargue de cartera» before «cartera».
        self.entries = sorted(entries, key=lambda e: -len(e.phrase))
        self.known_types = frozenset(self.type_phrases)

    def expand(self, terms: list[str]) -> Expansion:
        """The request types the question's terms name, and the terms their names add."""
        types: set[str] = set()
        added: dict[str, None] = {}
        present = set(terms)
        for entry in self.entries:
            if not set(entry.phrase) <= present or not _contains(terms, entry.phrase):
                continue
            types.update(entry.request_types)
            for term in entry.terms:
                if term not in present:
                    added.setdefault(term, None)
        return Expansion(frozenset(types), tuple(added))


def _contains(terms: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(terms[i : i + size]) == phrase for i in range(len(terms) - size + 1))
