"""``python -m bot jsm sync``: read the desk's request types and fields and match them to the catalog.

The catalog mirrors the customer portal, so types match by name and fields
by their phrases (options by their labels); what does not match is reported
for the deployer to fix in JSM or in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from bot.catalog import Catalog, FieldSpec, RequestType
from bot.text import normalize
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_mapping import JsmMapping, TypeMapping

# Catalog fields that are not JSM request fields: the e-mail becomes
# raiseOnBehalfOf and attachments are uploaded separately.
NOT_REQUEST_FIELDS = ("email", "attachment")


@dataclass
class SyncReport:
    mapping: JsmMapping
    desk_name: str = ""
    missing_in_jsm: list[RequestType] = field(default_factory=list)
    extra_in_jsm: list[dict[str, Any]] = field(default_factory=list)
    missing_fields: list[tuple[RequestType, FieldSpec]] = field(default_factory=list)
    missing_options: list[tuple[RequestType, FieldSpec, str]] = field(default_factory=list)
    unfilled_required: list[tuple[RequestType, dict[str, Any]]] = field(default_factory=list)
    cannot_raise_on_behalf: list[RequestType] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (
            self.missing_in_jsm
            or self.missing_fields
            or self.missing_options
            or self.unfilled_required
            or self.cannot_raise_on_behalf
        )


def _labels(jsm_field: dict[str, Any]) -> set[str]:
    return {normalize(v.get("label")) for v in jsm_field.get("validValues") or []}


def _jsm_field_for(spec: FieldSpec, jsm_fields: list[dict[str, Any]], used: set[str]) -> Optional[dict[str, Any]]:
    """The JSM field a catalog field corresponds to, by name, or for options by their labels."""
    if spec.id == "description":
        found = next((f for f in jsm_fields if f.get("fieldId") == "description"), None)
        if found:
            return found
    names = {normalize(p) for p in spec.phrases}
    free = [f for f in jsm_fields if f.get("fieldId") not in used and f.get("fieldId") not in ("summary", "attachment")]
    by_name = next((f for f in free if normalize(f.get("name")) in names), None)
    if by_name or not spec.options:
        return by_name
    wanted = {normalize(o.name) for o in spec.options}
    return max((f for f in free if wanted & _labels(f)), key=lambda f: len(wanted & _labels(f)), default=None)


def _map_fields(
    request_type: RequestType, jsm_fields: list[dict[str, Any]], mapping: TypeMapping, report: SyncReport
) -> set[str]:
    """Fill ``mapping`` with the catalog fields found in JSM; returns the JSM field ids used."""
    used = {"summary"}
    for spec in request_type.fields:
        if spec.id in NOT_REQUEST_FIELDS:
            continue
        jsm_field = _jsm_field_for(spec, jsm_fields, used)
        if jsm_field is None:
            if spec.required or spec.options:
                report.missing_fields.append((request_type, spec))
            continue
        field_id = str(jsm_field["fieldId"])
        used.add(field_id)
        mapping.fields[spec.id] = field_id
        if spec.options:
            values = {normalize(v.get("label")): str(v.get("value")) for v in jsm_field.get("validValues") or []}
            mapping.options[spec.id] = {}
            for option in spec.options:
                value = next((values[n] for n in (normalize(p) for p in option.phrases) if n in values), None)
                if value is None:
                    report.missing_options.append((request_type, spec, option.name))
                else:
                    mapping.options[spec.id][option.id] = value
    if "description" not in mapping.fields and any(f.get("fieldId") == "description" for f in jsm_fields):
        mapping.fields["description"] = "description"  # the request's details go there
        used.add("description")
    return used


def sync_mapping(client: JsmClient, catalog: Catalog, previous: Optional[JsmMapping] = None) -> SyncReport:
    """Read the desk's request types and fields and match them to the catalog.

    Types match by name (the catalog mirrors the portal); a type mapped by
    hand in ``previous`` keeps its JSM id while that id still exists.
    """
    desk = client.service_desk()
    jsm_types = client.request_types()
    by_id = {str(t.get("id")): t for t in jsm_types}
    by_name: dict[str, dict[str, Any]] = {}
    for jsm_type in jsm_types:
        by_name.setdefault(normalize(jsm_type.get("name")), jsm_type)
    report = SyncReport(JsmMapping(client.settings.service_desk_id), desk_name=str(desk.get("projectName") or ""))
    matched: set[str] = set()
    for request_type in catalog.request_types:
        kept = previous.for_type(request_type.id) if previous else None
        found = by_id.get(kept.request_type_id) if kept else None
        found = found or by_name.get(normalize(request_type.name))
        if found is None:
            report.missing_in_jsm.append(request_type)
            continue
        type_id = str(found.get("id"))
        matched.add(type_id)
        described = client.request_type_fields(type_id) or {}
        if described.get("canRaiseOnBehalfOf") is False:
            report.cannot_raise_on_behalf.append(request_type)
        jsm_fields = list(described.get("requestTypeFields") or [])
        mapping = TypeMapping(type_id, str(found.get("name") or ""))
        if any(f.get("fieldId") == "summary" for f in jsm_fields):
            mapping.fields["summary"] = "summary"
        used = _map_fields(request_type, jsm_fields, mapping, report)
        for jsm_field in jsm_fields:
            if jsm_field.get("required") and jsm_field.get("fieldId") not in used | {"attachment"}:
                report.unfilled_required.append((request_type, jsm_field))
        report.mapping.request_types[request_type.id] = mapping
    report.extra_in_jsm = [t for t in jsm_types if str(t.get("id")) not in matched]
    return report
