"""Reading ``catalog.yml`` into a checked ``Catalog``: a mistake in the file stops the start with its place."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

import holidays
import yaml

from bot.catalog.model import (
    FIELD_KINDS,
    WEEKDAYS,
    BusinessHours,
    Catalog,
    CatalogError,
    Category,
    Country,
    FieldSpec,
    OpenSpan,
    Option,
    Redirect,
    RequestType,
    RetiredOption,
)
from bot.text import normalize

CATALOG_PATH = Path(__file__).resolve().parent.parent / "catalog.yml"


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
        allowed_types={
            str(t): tuple(str(e).lower() for e in exts) for t, exts in (raw.get("allowed_types") or {}).items()
        },
    )


def _field_use(raw: dict[str, Any], defs: dict[str, FieldSpec], where: str) -> FieldSpec:
    field_id = raw.get("field")
    base = defs.get(field_id or "")
    if base is None:
        raise CatalogError(f"{where}: unknown field {field_id!r}")
    options = tuple(
        Option(id=o["id"], name=o["name"], aliases=_tuple(o.get("aliases"))) for o in raw.get("options") or ()
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


_DAY_INDEX = {normalize(name): index for index, name in enumerate(WEEKDAYS)}


def _weekdays(raw: Any, where: str) -> list[int]:
    """«lunes a viernes», «sábado», or a list of day names: the weekdays they cover (0 = lunes)."""
    names = raw if isinstance(raw, list) else [raw]
    days: list[int] = []
    for name in names:
        ends = normalize(str(name)).split(" a ")
        if len(ends) > 2 or any(end not in _DAY_INDEX for end in ends):
            raise CatalogError(f"{where}: {name!r} no es un día de la semana ni un rango «lunes a viernes»")
        first, last = _DAY_INDEX[ends[0]], _DAY_INDEX[ends[-1]]
        if last < first:
            raise CatalogError(f"{where}: el rango {name!r} termina antes de empezar")
        days.extend(range(first, last + 1))
    return days


def _clock_time(raw: Any, where: str) -> time:
    """A time of day written "8:00" or "08:00" (YAML reads an unquoted 8:00 as 480 minutes)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        hours, minutes = divmod(raw, 60)
    else:
        parts = str(raw).strip().split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise CatalogError(f"{where}: {raw!r} no es una hora HH:MM")
        hours, minutes = int(parts[0]), int(parts[1])
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise CatalogError(f"{where}: {raw!r} no es una hora del día")
    return time(hours, minutes)


def _business_hours(raw: Optional[dict[str, Any]], country_id: str) -> Optional[BusinessHours]:
    if not raw:
        return None
    where = f"country {country_id!r} business_hours"
    spans: list[OpenSpan] = []
    for entry in raw.get("open") or ():
        opens, closes = _clock_time(entry.get("from"), where), _clock_time(entry.get("to"), where)
        if closes <= opens:
            raise CatalogError(f"{where}: {entry!r} cierra antes de abrir")
        spans.extend(OpenSpan(day, opens, closes) for day in _weekdays(entry.get("days"), where))
    if not spans:
        raise CatalogError(f"{where}: no dice qué días abre (open)")
    code = raw.get("holidays")
    if code is not None and str(code) not in holidays.list_supported_countries():
        raise CatalogError(f"{where}: el paquete holidays no conoce los festivos de {code!r}")
    return BusinessHours(spans=tuple(spans), holidays=str(code) if code is not None else None)


def parse_catalog(raw: dict[str, Any]) -> Catalog:
    defs = {fid: _field_def(fid, fraw) for fid, fraw in (raw.get("fields") or {}).items()}
    default_fields = tuple(_field_use(f, defs, "default_fields") for f in raw.get("default_fields") or ())
    categories = []
    for craw in raw.get("categories") or ():
        types = []
        for traw in craw.get("request_types") or ():
            where = f"request type {traw.get('id')!r}"
            fields = tuple(_field_use(f, defs, where) for f in traw["fields"]) if "fields" in traw else default_fields
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
        Country(
            id=c["id"],
            name=c["name"],
            aliases=_tuple(c.get("aliases")),
            timezone=c.get("timezone") or "UTC",
            hours=_business_hours(c.get("business_hours"), c["id"]),
        )
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
        spec = owner.field(retired.field_id) if owner is not None else None
        if spec is None:
            raise CatalogError(
                f"retired option {retired.id!r}: {retired.request_type_id}.{retired.field_id} does not exist"
            )
        offered = [o.name for o in spec.options]
        if normalize(retired.name) in map(normalize, offered):
            raise CatalogError(f"retired option {retired.id!r} is still offered")
        if catalog.request_type(retired.redirect.request_type_id) is None:
            raise CatalogError(
                f"retired option {retired.id!r}: redirect to unknown request type {retired.redirect.request_type_id!r}"
            )
    if not catalog.countries:
        raise CatalogError("the catalog lists no countries")
    handoff = (catalog.portal.get("handoff") or {}).get("request_type")
    if handoff is not None and catalog.handoff_request_type is None:
        raise CatalogError(f"portal.handoff.request_type: unknown request type {handoff!r}")
    for spec in catalog.field_defs.values():
        if spec.kind == "attachment" and (spec.max_bytes <= 0 or spec.max_files <= 0 or not spec.allowed_types):
            raise CatalogError(f"field {spec.id!r}: attachments need max_bytes, max_files and allowed_types")


def load_catalog_file(path: Path) -> Catalog:
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: not a mapping")
    return parse_catalog(raw)


@lru_cache(maxsize=4)
def get_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The catalog file parsed once per process: it is data that never changes while running."""
    return load_catalog_file(path)
