"""Relevance of articles to a question: BM25F over title, keywords, request types and body, on a 0–1 scale.

The scale is what the threshold (``KB_THRESHOLD``) means, whichever backend
found the article: the share of the question's weight that the article
matches. Each question term weighs its IDF; an article matches a term fully
when the term's field-weighted, length-normalised frequency reaches
``REFERENCE_TF`` (about once in the title or keywords, twice in the body),
partly below it, and a little more above it (BM25 saturation: this orders
articles that all match every term). Terms no article has still weigh (less),
so a question mostly about something else scores low. Then:

- aliases of the catalog (bot/kb/synonyms.py) add the named type's terms as
  a bonus (for the articles tagged with that type, or with none, like
  JSM's), and favour the articles tagged with that type;
- the request type the dialogue already knows favours its articles;
- a term no article has is matched to a known one a typing slip away
  («registor» → «registr»), with less weight.

Scores are capped at 1 (ranking uses the uncapped value). An article matching no term scores 0, whatever its tags.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from bot.kb.analysis import Analyzer
from bot.kb.model import Article
from bot.kb.synonyms import Synonyms

FIELD_WEIGHTS = {"title": 3.0, "keywords": 2.5, "types": 1.0, "body": 1.0}
FIELD_B = {"title": 0.3, "keywords": 0.3, "types": 0.3, "body": 0.75}
K1 = 1.2
REFERENCE_TF = 2.0
EXPANSION_WEIGHT = 0.5  # a term added by an alias, bonus only
TYPO_WEIGHT = 0.8  # a term matched through a one-letter slip
UNKNOWN_WEIGHT = 1.0  # a question term no article has, at the IDF of a term one article has
ALIAS_TYPE_BOOST = 0.15  # the article is tagged with a type the question names through an alias
KNOWN_TYPE_BOOST = 0.25  # the article is tagged with the request type the dialogue already knows
MIN_TYPO_LENGTH = 5


@dataclass(frozen=True)
class Query:
    terms: dict[str, float]  # term -> weight (counts in the denominator)
    unknown: float  # weight of the terms no article has
    bonus: dict[str, float] = field(default_factory=dict)  # alias expansions: numerator only
    types: frozenset[str] = frozenset()
    request_type: Optional[str] = None


@dataclass
class _Doc:
    article: Article
    fields: dict[str, Counter[str]]
    lengths: dict[str, int]
    tags: frozenset[str]


def _deletes(term: str) -> set[str]:
    return {term[:i] + term[i + 1 :] for i in range(len(term))}


class Index:
    """Articles indexed for search. Not locked: the embedded base swaps whole indexes; JSM's locks its own."""

    def __init__(self, analyzer: Analyzer, synonyms: Synonyms) -> None:
        self.analyzer = analyzer
        self.synonyms = synonyms
        self._docs: dict[str, _Doc] = {}
        self._df: Counter[str] = Counter()
        self._postings: dict[str, set[str]] = {}
        self._length_sums: Counter[str] = Counter()
        self._typos: dict[str, set[str]] = {}  # one-letter deletions -> terms (SymSpell, distance 1)
        self._spellings: dict[str, Counter[str]] = {}  # term -> the words it was seen as

    def __len__(self) -> int:
        return len(self._docs)

    def articles(self) -> list[Article]:
        return [doc.article for doc in self._docs.values()]

    def get(self, article_id: str) -> Optional[Article]:
        doc = self._docs.get(article_id)
        return doc.article if doc else None

    # ------------------------------------------------------------ building
    def add(self, article: Article) -> None:
        """Index ``article``, replacing one with the same id."""
        if article.id in self._docs:
            self.remove(article.id)
        types_text = " ".join(self.synonyms.type_phrases.get(t, "") for t in article.request_types)
        texts = {"title": article.title, "keywords": " ".join(article.keywords), "types": types_text}
        texts["body"] = article.body or article.excerpt
        pairs = {name: self.analyzer.pairs(text) for name, text in texts.items()}
        fields = {name: Counter(stem for _, stem in found) for name, found in pairs.items()}
        doc = _Doc(article, fields, {n: sum(c.values()) for n, c in fields.items()}, frozenset(article.request_types))
        self._docs[article.id] = doc
        self._length_sums.update(doc.lengths)
        for term in set().union(*fields.values()):
            self._df[term] += 1
            self._postings.setdefault(term, set()).add(article.id)
        for word, stem in {pair for found in pairs.values() for pair in found}:
            self._spellings.setdefault(stem, Counter())[word] += 1
            for spelling in {word, stem}:
                if len(spelling) >= MIN_TYPO_LENGTH - 1:
                    for variant in _deletes(spelling) | {spelling}:
                        self._typos.setdefault(variant, set()).add(stem)

    def remove(self, article_id: str) -> None:
        doc = self._docs.pop(article_id, None)
        if doc is None:
            return
        self._length_sums.subtract(doc.lengths)
        for term in set().union(*doc.fields.values()):
            self._df[term] -= 1
            self._postings[term].discard(article_id)
            if self._df[term] <= 0:
                del self._df[term]
                del self._postings[term]

    # ------------------------------------------------------------- scoring
    def idf(self, df: int) -> float:
        n = len(self._docs)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def _corrected(self, word: str, stem: str) -> Optional[str]:
        """The known term whose word or stem is one slip (a letter missing, extra, changed, or two swapped)
        away from an unknown one: «recupearr» → «recuper», «registor» → «registr». The most common wins."""
        found: set[str] = set()
        for spelling in {word, stem}:
            if len(spelling) >= MIN_TYPO_LENGTH:
                for variant in _deletes(spelling) | {spelling}:
                    found.update(t for t in self._typos.get(variant, ()) if self._df.get(t))
        return min(found, key=lambda t: (-self._df[t], t)) if found else None

    def spellings(self, text: str, per_word: int = 2) -> list[str]:
        """The indexed words for ``text``'s words, typing slips resolved: «cree facura» → «crear factura».

        For a search engine without Spanish stemming (JSM's), beside the words as typed.
        """
        found: dict[str, None] = {}
        for word, stem in self.analyzer.pairs(text):
            term = stem if stem in self._df else self._corrected(word, stem)
            for spelling, _ in (self._spellings.get(term) or Counter()).most_common(per_word) if term else ():
                found.setdefault(spelling, None)
        return list(found)

    def query(self, text: str, request_type: Optional[str] = None) -> Query:
        """``text`` as weighted terms for this index (typing slips resolved against its vocabulary)."""
        pairs = self.analyzer.pairs(text)
        expansion = self.synonyms.expand([stem for _, stem in pairs])
        terms: dict[str, float] = {}
        unknown = 0.0
        for word, stem in dict.fromkeys(pairs):
            if stem in self._df:
                terms[stem] = max(terms.get(stem, 0.0), 1.0)
                continue
            corrected = self._corrected(word, stem)
            if corrected is not None:
                terms[corrected] = max(terms.get(corrected, 0.0), TYPO_WEIGHT)
            else:
                unknown += UNKNOWN_WEIGHT
        bonus = {t: EXPANSION_WEIGHT for t in expansion.terms if t not in terms and t in self._df}
        return Query(terms, unknown, bonus, expansion.request_types, request_type)

    def _reference(self, term: str) -> float:
        return self.idf(self._df.get(term, 0)) * REFERENCE_TF * (K1 + 1) / (REFERENCE_TF + K1)

    def _matched(self, doc: _Doc, term: str) -> float:
        """The term's BM25F contribution for ``doc`` (up to 1.6 times a full match, BM25's saturation)."""
        n = len(self._docs)
        weighted = 0.0
        for name, counts in doc.fields.items():
            tf = counts.get(term, 0)
            if tf:
                average = self._length_sums[name] / n if n else 1.0
                b = FIELD_B[name]
                norm = 1.0 - b + b * (doc.lengths[name] / average if average else 1.0)
                weighted += FIELD_WEIGHTS[name] * tf / norm
        if not weighted:
            return 0.0
        return self.idf(self._df[term]) * weighted * (K1 + 1) / (weighted + K1)

    def score(self, query: Query, article_id: str, credit: float = 0.0) -> float:
        """The article's relevance to the question, in [0, 1]."""
        return min(self.raw_score(query, article_id, credit), 1.0)

    def raw_score(self, query: Query, article_id: str, credit: float = 0.0) -> float:
        """Uncapped: orders the articles that all reach 1 (a term matched in title and body beats body only).

        ``credit`` (0–1): the share of the question's unknown terms to count as
        matched, when a search that sees more of the article than this index
        (JSM's, over the whole page) says it matched them.
        """
        doc = self._docs.get(article_id)
        total = sum(w * self._reference(t) for t, w in query.terms.items()) + query.unknown * self.idf(1)
        if doc is None or total <= 0:
            return 0.0
        matched = sum(w * self._matched(doc, t) for t, w in query.terms.items())
        if not doc.tags or query.types & doc.tags:  # another type's article gains nothing from this type's name
            matched += sum(w * self._matched(doc, t) for t, w in query.bonus.items())
        matched += credit * query.unknown * self.idf(1)
        if matched <= 0:
            return 0.0
        score = matched / total
        if query.types & doc.tags:
            score *= 1.0 + ALIAS_TYPE_BOOST
        if query.request_type and query.request_type in doc.tags:
            score *= 1.0 + KNOWN_TYPE_BOOST
        return score

    def candidates(self, query: Query) -> set[str]:
        """The articles sharing at least one term with the question."""
        found: set[str] = set()
        for term in (*query.terms, *query.bonus):
            found.update(self._postings.get(term, ()))
        return found

    def search(
        self,
        query: Query,
        *,
        k: int = 3,
        threshold: float = 0.0,
        among: Optional[Sequence[str]] = None,
        credit: Optional[Callable[[int], float]] = None,
    ) -> list[tuple[Article, float]]:
        """Up to ``k`` articles scoring at least ``threshold`` (and above 0), best first.

        ``among``: only these articles, in another search's order (JSM's),
        which breaks ties and, through ``credit(position)``, vouches for the
        question's terms this index cannot see.
        """
        if among is None:
            order = {i: 0 for i in self.candidates(query)}
        else:
            order = {i: position for position, i in reversed(list(enumerate(among))) if i in self._docs}
        scored = [
            (self._docs[i].article, self.raw_score(query, i, credit(p) if credit else 0.0), p) for i, p in order.items()
        ]
        kept = [entry for entry in scored if entry[1] > 0 and min(entry[1], 1.0) >= threshold]
        kept.sort(key=lambda e: (-round(e[1], 3), e[2], e[0].title, e[0].id))
        return [(a, min(s, 1.0)) for a, s, _ in kept[: max(k, 0)]]
