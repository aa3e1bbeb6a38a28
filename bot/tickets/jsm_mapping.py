"""How catalog request types, fields and options correspond to JSM ids.

The correspondence lives in a YAML file that ``python -m bot jsm sync`` writes
from the desk itself (bot/tickets/jsm_sync.py), so no JSM id is ever written
in code; the delivery worker reads it (and re-reads it when it changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from bot.tickets.errors import JsmConfigError


@dataclass
class TypeMapping:
    """One catalog request type in JSM: its request type id, field ids and option ids."""

    request_type_id: str
    jsm_name: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # catalog field id (or "summary") -> JSM fieldId
    options: dict[str, dict[str, str]] = field(default_factory=dict)  # catalog field -> option id -> JSM value

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "jsm_request_type_id": self.request_type_id,
            "jsm_name": self.jsm_name,
            "fields": dict(self.fields),
        }
        if self.options:
            data["options"] = {k: dict(v) for k, v in self.options.items()}
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TypeMapping":
        return cls(
            request_type_id=str(raw["jsm_request_type_id"]),
            jsm_name=str(raw.get("jsm_name") or ""),
            fields={str(k): str(v) for k, v in (raw.get("fields") or {}).items()},
            options={
                str(f): {str(k): str(v) for k, v in (o or {}).items()} for f, o in (raw.get("options") or {}).items()
            },
        )


@dataclass
class JsmMapping:
    service_desk_id: str
    request_types: dict[str, TypeMapping] = field(default_factory=dict)

    def for_type(self, request_type_id: str) -> Optional[TypeMapping]:
        return self.request_types.get(request_type_id)

    @classmethod
    def load(cls, path: Path) -> "JsmMapping":
        if not path.exists():
            raise JsmConfigError(f"no existe el mapa de JSM {path}: ejecuta `python -m bot jsm sync`")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls(
                service_desk_id=str(raw.get("service_desk_id") or ""),
                request_types={str(k): TypeMapping.from_dict(v) for k, v in (raw.get("request_types") or {}).items()},
            )
        except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
            raise JsmConfigError(f"el mapa de JSM {path} no es válido: {exc}") from exc

    def dump(self, path: Path) -> None:
        header = (
            "# Correspondencia entre el catálogo (bot/catalog.yml) y la mesa de Jira Service Management.\n"
            "# La escribe `python -m bot jsm sync` leyendo los tipos de solicitud y campos de la mesa;\n"
            "# puede editarse a mano (un nuevo `jsm sync` conserva los ids que sigan existiendo en JSM).\n"
        )
        body = {
            "service_desk_id": self.service_desk_id,
            "request_types": {k: v.to_dict() for k, v in sorted(self.request_types.items())},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(header + yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
        tmp.replace(path)  # the worker never reads a half-written map


class MappingFile:
    """The mapping as the worker sees it: re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: Optional[float] = None
        self._mapping: Optional[JsmMapping] = None

    def get(self) -> JsmMapping:
        try:
            stamp: Optional[float] = self.path.stat().st_mtime
        except OSError:
            stamp = None
        if self._mapping is None or stamp != self._stamp:
            self._mapping = JsmMapping.load(self.path)
            self._stamp = stamp
        return self._mapping
