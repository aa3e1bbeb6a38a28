"""The help-desk catalog, loaded from ``catalog.yml``.

Everything that names a category, request type, ítem or retired option reads it
from here, so that a catalog change is an edit of the YAML file (plus training
examples) and never a code change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import yaml

from bot.text import contains_phrase, normalize

CATALOG_PATH = Path(__file__).with_name("catalog.yml")

# Field kinds the dialogue knows how to ask for and validate.
FIELD_KINDS = ("option", "text", "email", "phone", "attachment")


class CatalogError(ValueError):
    """The catalog file is inconsistent; raised at load time, never later."""


@dataclass(frozen=True)
class Named:
    """A catalog entry customers may name by its name or any alias."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Option(Named):
    """An option of a choice field, such as an ítem."""


@dataclass(frozen=True)
class Country(Named):
    """A country the help desk serves; its id is the ISO 3166 code."""

    timezone: str = "UTC"  # IANA name: times are shown to its customers in it


@dataclass(frozen=True)
class FieldSpec:
    id: str
    label: str
    kind: str
    required: bool
    short_label: str
    aliases: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    min_words: int = 0
    min_chars: int = 0
    # Attachment fields only: size and type limits, content type -> extensions.
    max_bytes: int = 0
    max_files: int = 0
    allowed_types: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def option(self, option_id: Optional[str]) -> Optional[Option]:
        return next((o for o in self.options if o.id == option_id), None)

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.label, self.short_label, *self.aliases)


@dataclass(frozen=True)
class RequestType:
    id: str
    intent: str
    name: str
    category_id: str
    description: Optional[str]
    summary: Optional[str]
    fields: tuple[FieldSpec, ...]
    aliases: tuple[str, ...] = ()
    new: bool = False

    @property
    def explanation(self) -> str:
        """What the type is for: the portal text when there is one."""
        return self.description or self.summary or ""

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def field(self, field_id: str) -> Optional[FieldSpec]:
        return next((f for f in self.fields if f.id == field_id), None)

    @property
    def required_field_ids(self) -> list[str]:
        return [f.id for f in self.fields if f.required]

    @property
    def field_ids(self) -> list[str]:
        return [f.id for f in self.fields]


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    request_types: tuple[RequestType, ...]
    aliases: tuple[str, ...] = ()

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Redirect:
    request_type_id: str
    offer: str
    description_prompt: str
    closing: str
    declined: str


@dataclass(frozen=True)
class RetiredOption:
    id: str
    intent: str
    name: str
    request_type_id: str
    field_id: str
    explanation: str
    redirect: Redirect
    aliases: tuple[str, ...] = ()
    # Beginnings of the verbs that ask for this option ("borr" for borrar,
    # borren...): a short message without any is too vague to redirect.
    action_words: tuple[str, ...] = ()

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def asked_for_in(self, text: str) -> bool:
        """The text uses one of this option's verbs."""
        return any(word.startswith(self.action_words) for word in normalize(text).split()) if self.action_words else True


@dataclass(frozen=True)
class Catalog:
    portal: dict[str, Any]
    categories: tuple[Category, ...]
    retired: tuple[RetiredOption, ...]
    countries: tuple[Country, ...]
    field_defs: dict[str, FieldSpec]
    _by_id: dict[str, RequestType] = field(repr=False, compare=False, default_factory=dict)
    _by_intent: dict[str, RequestType] = field(repr=False, compare=False, default_factory=dict)

    # ----------------------------------------------------------------- lookups
    @property
    def request_types(self) -> list[RequestType]:
        return [rt for c in self.categories for rt in c.request_types]

    @property
    def ticket_prefix(self) -> str:
        return str(self.portal.get("ticket_prefix", "ECO"))

    def label(self, key: str) -> str:
        """A word the assistant puts around catalog data (``portal.labels``)."""
        labels = self.portal.get("labels") or {}
        if key not in labels:
            raise CatalogError(f"portal.labels.{key} is missing from the catalog")
        return str(labels[key])

    def request_type(self, type_id: Optional[str]) -> Optional[RequestType]:
        return self._by_id.get(type_id or "")

    def request_type_for_intent(self, intent: Optional[str]) -> Optional[RequestType]:
        return self._by_intent.get(intent or "")

    def category(self, category_id: Optional[str]) -> Optional[Category]:
        return next((c for c in self.categories if c.id == category_id), None)

    def category_of(self, request_type: RequestType) -> Category:
        category = self.category(request_type.category_id)
        assert category is not None  # guaranteed by _validate
        return category

    def retired_option(self, option_id: Optional[str]) -> Optional[RetiredOption]:
        return next((r for r in self.retired if r.id == option_id), None)

    def retired_for_intent(self, intent: Optional[str]) -> Optional[RetiredOption]:
        return next((r for r in self.retired if r.intent == intent), None)

    def country(self, country_id: Optional[str]) -> Optional[Country]:
        return next((c for c in self.countries if c.id == country_id), None)

    @property
    def country_ids(self) -> list[str]:
        return [c.id for c in self.countries]

    @property
    def request_intents(self) -> list[str]:
        return [rt.intent for rt in self.request_types]

    @property
    def retired_intents(self) -> list[str]:
        return [r.intent for r in self.retired]

    def all_options(self) -> list[Option]:
        return [o for rt in self.request_types for f in rt.fields for o in f.options]

    # ---------------------------------------------------------------- matching
    def match_request_types(self, text: str) -> list[RequestType]:
        return best_matches(text, self.request_types)

    def match_categories(self, text: str) -> list[Category]:
        return best_matches(text, self.categories)

    def match_countries(self, text: str) -> list[Country]:
        return best_matches(text, self.countries)

    def match_retired(self, text: str) -> list[RetiredOption]:
        return best_matches(text, self.retired)

    @property
    def attachment_field(self) -> FieldSpec:
        return next(f for f in self.field_defs.values() if f.kind == "attachment")

    def fields_mentioned(self, text: str) -> list[FieldSpec]:
        """Every field the text names ("el correo y el teléfono están mal")."""
        norm = normalize(text)
        return [
            f
            for f in self.field_defs.values()
            if any(contains_phrase(norm, normalize(p)) for p in f.phrases)
        ]

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        """The catalog as plain data: the `python -m bot catalog --json` contract."""

        def field_dict(f: FieldSpec) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": f.id,
                "label": f.label,
                "kind": f.kind,
                "required": f.required,
            }
            if f.options:
                data["options"] = [{"id": o.id, "name": o.name} for o in f.options]
            return data

        return {
            "portal": dict(self.portal),
            "countries": [{"id": c.id, "name": c.name} for c in self.countries],
            "categories": [
                {
                    "id": c.id,
                    "name": c.name,
                    "request_types": [
                        {
                            "id": rt.id,
                            "name": rt.name,
                            "description": rt.description,
                            "summary": rt.summary,
                            "intent": rt.intent,
                            "new": rt.new,
                            "fields": [field_dict(f) for f in rt.fields],
                        }
                        for rt in c.request_types
                    ],
                }
                for c in self.categories
            ],
            "retired": [
                {
                    "id": r.id,
                    "name": r.name,
                    "intent": r.intent,
                    "request_type": r.request_type_id,
                    "field": r.field_id,
                    "explanation": r.explanation,
                    "redirect": {
                        "request_type": r.redirect.request_type_id,
                        "category": self.category_of(
                            self._by_id[r.redirect.request_type_id]
                        ).id,
                        "closing": r.redirect.closing,
                    },
                }
                for r in self.retired
            ],
        }


def best_matches(text: str, candidates: Sequence[Any]) -> list[Any]:
    """Candidates whose longest phrase found in ``text`` is the longest overall.

    Longest-phrase-wins lets "archivo de cartera" beat "archivo"; candidates
    tied on the same length are all returned so the caller can ask instead of
    guessing.
    """
    norm = normalize(text)
    if not norm:
        return []
    scored: list[tuple[int, Any]] = []
    for candidate in candidates:
        best = max(
            (len(p) for p in map(normalize, candidate.phrases) if contains_phrase(norm, p)),
            default=0,
        )
        if best:
            scored.append((best, candidate))
    if not scored:
        return []
    top = max(score for score, _ in scored)
    return [c for score, c in scored if score == top]


# --------------------------------------------------------------------- loading
def _tuple(values: Optional[Iterable[str]]) -> tuple[str, ...]:
    return tuple(str(v) for v in (values or ()))


def _field_def(field_id: str, raw: dict[str, Any]) -> FieldSpec:
    kind = raw.get("kind")
    if kind not in FIELD_KINDS:
        raise CatalogError(f"field {field_id!r}: unknown kind {kind!r}")
    return FieldSpec(
        id=field_id,
        label=raw["label"],
        short_label=raw.get("short_label") or raw["label"],
        kind=kind,
        required=False,
        aliases=_tuple(raw.get("aliases")),
        min_words=int(raw.get("min_words", 0)),
        min_chars=int(raw.get("min_chars", 0)),
        max_bytes=int(raw.get("max_bytes", 0)),
        max_files=int(raw.get("max_files", 0)),
        allowed_types={str(t): tuple(str(e).lower() for e in exts) for t, exts in (raw.get("allowed_types") or {}).items()},
    )


def _field_use(raw: dict[str, Any], defs: dict[str, FieldSpec], where: str) -> FieldSpec:
    field_id = raw.get("field")
    base = defs.get(field_id or "")
    if base is None:
        raise CatalogError(f"{where}: unknown field {field_id!r}")
    options = tuple(
        Option(id=o["id"], name=o["name"], aliases=_tuple(o.get("aliases")))
        for o in raw.get("options") or ()
    )
    if base.kind == "option" and not options:
        raise CatalogError(f"{where}: field {field_id!r} needs options")
    return FieldSpec(
        id=base.id,
        label=base.label,
        short_label=base.short_label,
        kind=base.kind,
        required=bool(raw.get("required", False)),
        aliases=base.aliases,
        options=options,
        min_words=base.min_words,
        min_chars=base.min_chars,
        max_bytes=base.max_bytes,
        max_files=base.max_files,
        allowed_types=base.allowed_types,
    )


def parse_catalog(raw: dict[str, Any]) -> Catalog:
    defs = {fid: _field_def(fid, fraw) for fid, fraw in (raw.get("fields") or {}).items()}
    default_fields = tuple(
        _field_use(f, defs, "default_fields") for f in raw.get("default_fields") or ()
    )
    categories = []
    for craw in raw.get("categories") or ():
        types = []
        for traw in craw.get("request_types") or ():
            where = f"request type {traw.get('id')!r}"
            fields = (
                tuple(_field_use(f, defs, where) for f in traw["fields"])
                if "fields" in traw
                else default_fields
            )
            types.append(
                RequestType(
                    id=traw["id"],
                    intent=traw["intent"],
                    name=traw["name"],
                    category_id=craw["id"],
                    description=(traw.get("description") or "").strip() or None,
                    summary=(traw.get("summary") or "").strip() or None,
                    fields=fields,
                    aliases=_tuple(traw.get("aliases")),
                    new=bool(traw.get("new", False)),
                )
            )
        categories.append(
            Category(
                id=craw["id"],
                name=craw["name"],
                request_types=tuple(types),
                aliases=_tuple(craw.get("aliases")),
            )
        )
    retired = tuple(
        RetiredOption(
            id=r["id"],
            intent=r["intent"],
            name=r["name"],
            request_type_id=r["request_type"],
            field_id=r["field"],
            action_words=tuple(normalize(w) for w in r.get("action_words") or ()),
            explanation=" ".join(str(r["explanation"]).split()),
            redirect=Redirect(
                request_type_id=r["redirect"]["request_type"],
                offer=r["redirect"]["offer"],
                description_prompt=r["redirect"]["description_prompt"],
                closing=r["redirect"]["closing"],
                declined=r["redirect"]["declined"],
            ),
            aliases=_tuple(r.get("aliases")),
        )
        for r in raw.get("retired") or ()
    )
    countries = tuple(
        Country(id=c["id"], name=c["name"], aliases=_tuple(c.get("aliases")), timezone=c.get("timezone") or "UTC")
        for c in raw.get("countries") or ()
    )
    types_all = [rt for c in categories for rt in c.request_types]
    catalog = Catalog(
        portal=dict(raw.get("portal") or {}),
        categories=tuple(categories),
        retired=retired,
        countries=countries,
        field_defs=defs,
        _by_id={rt.id: rt for rt in types_all},
        _by_intent={rt.intent: rt for rt in types_all},
    )
    _validate(catalog)
    return catalog


def _validate(catalog: Catalog) -> None:
    """Reject catalogs the dialogue could not serve, with a message saying where."""
    types = catalog.request_types
    for label, values in (
        ("category id", [c.id for c in catalog.categories]),
        ("request type id", [rt.id for rt in types]),
        ("intent", [rt.intent for rt in types] + [r.intent for r in catalog.retired]),
        ("request type name", [rt.name for rt in types]),
        ("option id", [o.id for o in catalog.all_options()] + [r.id for r in catalog.retired]),
        ("country id", [c.id for c in catalog.countries]),
    ):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise CatalogError(f"duplicate {label}: {', '.join(dupes)}")
    for rt in types:
        if "email" not in rt.required_field_ids:
            raise CatalogError(f"request type {rt.id!r} must require the requester e-mail")
    for retired in catalog.retired:
        owner = catalog.request_type(retired.request_type_id)
        if owner is None or owner.field(retired.field_id) is None:
            raise CatalogError(
                f"retired option {retired.id!r}: {retired.request_type_id}.{retired.field_id} does not exist"
            )
        offered = [o.name for o in owner.field(retired.field_id).options]  # type: ignore[union-attr]
        if normalize(retired.name) in map(normalize, offered):
            raise CatalogError(f"retired option {retired.id!r} is still offered")
        if catalog.request_type(retired.redirect.request_type_id) is None:
            raise CatalogError(
                f"retired option {retired.id!r}: redirect to unknown request type "
                f"{retired.redirect.request_type_id!r}"
            )
    if not catalog.countries:
        raise CatalogError("the catalog lists no countries")
    for spec in catalog.field_defs.values():
        if spec.kind == "attachment" and (spec.max_bytes <= 0 or spec.max_files <= 0 or not spec.allowed_types):
            raise CatalogError(f"field {spec.id!r}: attachments need max_bytes, max_files and allowed_types")


def load_catalog_file(path: Path) -> Catalog:
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: not a mapping")
    return parse_catalog(raw)


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The catalog in use: ``BOT_CATALOG`` when set, else the packaged file."""
    return load_catalog_file(Path(os.environ.get("BOT_CATALOG") or CATALOG_PATH))
