"""What the catalog is: categories, request types, their fields and options, retired options, countries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Any, Optional, Sequence

from bot.text import contains_phrase, normalize

# Field kinds the dialogue knows how to ask for and validate.
FIELD_KINDS = ("option", "text", "email", "phone", "attachment")
# Days of the week as the catalog (and the customer) names them; index 0 is Monday, as in ``date.weekday()``.
WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


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
class OpenSpan:
    """One stretch of a weekday when the help desk's people answer, in the country's own time."""

    weekday: int  # 0 = lunes … 6 = domingo
    opens: time
    closes: time


@dataclass(frozen=True)
class BusinessHours:
    """When a person of the help desk answers a country's customers.

    ``holidays``: the ISO code of the country whose national holidays close
    the desk (the ``holidays`` package knows them), None for no holidays.
    """

    spans: tuple[OpenSpan, ...]
    holidays: Optional[str] = None

    def spans_on(self, weekday: int) -> list[OpenSpan]:
        return sorted((s for s in self.spans if s.weekday == weekday), key=lambda s: s.opens)


@dataclass(frozen=True)
class Country(Named):
    """A country the help desk serves; its id is the ISO 3166 code."""

    timezone: str = "UTC"  # IANA name: times are shown to its customers in it
    hours: Optional[BusinessHours] = None  # None: no business hours known, a person answers as soon as one can


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
        return (
            any(word.startswith(self.action_words) for word in normalize(text).split()) if self.action_words else True
        )


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

    @property
    def waiting_statuses(self) -> tuple[str, ...]:
        """Help-desk statuses that mean the agent waits for the customer (``portal.followup``)."""
        return tuple(str(s) for s in (self.portal.get("followup") or {}).get("waiting_statuses") or ())

    @property
    def reply_window_hours(self) -> float:
        """How long after an agent's comment the customer's messages are taken as the answer."""
        return float((self.portal.get("followup") or {}).get("reply_window_hours") or 72)

    @property
    def handoff_request_type(self) -> Optional[RequestType]:
        """The request opened for «quiero hablar con una persona» when the conversation has no ticket open."""
        return self.request_type((self.portal.get("handoff") or {}).get("request_type"))

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

    def retired_with_owners(self) -> list[tuple[RetiredOption, RequestType]]:
        """Each retired option with the request type it was an option of (the loader checks it exists)."""
        found = ((r, self.request_type(r.request_type_id)) for r in self.retired)
        return [(r, owner) for r, owner in found if owner is not None]

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
        return [f for f in self.field_defs.values() if any(contains_phrase(norm, normalize(p)) for p in f.phrases)]

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
                        "category": self.category_of(self._by_id[r.redirect.request_type_id]).id,
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
