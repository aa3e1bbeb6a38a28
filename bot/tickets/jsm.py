"""Jira Service Management: configuration, the Service Desk REST client, and the mapping.

The support team works in a JSM customer portal; the catalog mirrors that
portal. This module knows how to talk to it (``/rest/servicedeskapi``, basic
auth with an agent's e-mail and API token) and how catalog request types,
fields and options correspond to JSM ids. The correspondence lives in a YAML
file that ``python -m bot jsm sync`` writes from the desk itself, so no JSM id
is ever written in code. Delivery itself is in ``bot/tickets/outbox.py``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

import requests
import yaml

from bot.catalog import Catalog, FieldSpec, RequestType
from bot.http_retry import parse_retry_after
from bot.settings import env_seconds
from bot.text import normalize

logger = logging.getLogger(__name__)

BACKENDS = ("local", "jsm")
API = "/rest/servicedeskapi"
# Catalog fields that are not JSM request fields: the e-mail becomes
# raiseOnBehalfOf and attachments are uploaded separately.
NOT_REQUEST_FIELDS = ("email", "attachment")


def tickets_backend() -> str:
    """``TICKETS_BACKEND``: where confirmed tickets end up (``local`` by default)."""
    value = (os.environ.get("TICKETS_BACKEND") or "local").strip().lower()
    if value not in BACKENDS:
        raise SystemExit(f"TICKETS_BACKEND debe ser «local» o «jsm» (valor actual: {value!r})")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "si", "sí", "on")


# ---------------------------------------------------------------------- errors
class JsmError(RuntimeError):
    """JSM did not do what was asked. ``str()`` is Spanish: support leads read it in `tickets list`."""

    retryable = False

    def __init__(self, message: str, status: Optional[int] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class JsmUnavailable(JsmError):
    """Timeout, connection refused, 5xx or 429: the same call may work later."""

    retryable = True


class JsmAuthError(JsmError):
    """401/403: the credentials or permissions are wrong; retried so tickets flow once fixed."""

    retryable = True


class JsmConfigError(JsmError):
    """Missing settings or mapping; retried so tickets flow once the deployer fixes it."""

    retryable = True


class JsmRejected(JsmError):
    """A 4xx that sending the same request again cannot fix (e.g. 400 with ``errorMessage``)."""


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class JsmConfig:
    site_url: str
    service_desk_id: str
    email: str
    api_token: str = field(repr=False)
    create_customers: bool = False
    mapping_file: Path = Path("jsm-mapping.yml")
    timeout: float = 20.0
    status_timeout: float = 4.0

    @classmethod
    def from_env(cls) -> "JsmConfig":
        from bot.settings import Settings

        env = os.environ
        missing = [n for n in ("JSM_SITE_URL", "JSM_SERVICE_DESK_ID", "JSM_EMAIL", "JSM_API_TOKEN") if not (env.get(n) or "").strip()]
        if missing:
            raise JsmConfigError("faltan variables de entorno para Jira Service Management: " + ", ".join(missing))
        mapping = env.get("JSM_MAPPING_FILE") or str(Settings.from_env().data_dir / "jsm-mapping.yml")
        return cls(
            site_url=env["JSM_SITE_URL"].strip().rstrip("/"),
            service_desk_id=env["JSM_SERVICE_DESK_ID"].strip(),
            email=env["JSM_EMAIL"].strip(),
            api_token=env["JSM_API_TOKEN"].strip(),
            create_customers=_flag("JSM_CREATE_CUSTOMERS", False),
            mapping_file=Path(mapping),
            timeout=env_seconds("JSM_TIMEOUT", 20.0),
            status_timeout=env_seconds("JSM_STATUS_TIMEOUT", 4.0),
        )


def _error_text(response: requests.Response) -> str:
    """JSM's own explanation: ``errorMessage`` (servicedeskapi), ``errorMessages``/``errors`` (platform)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:500]
    if isinstance(body, dict):
        if body.get("errorMessage"):
            return str(body["errorMessage"])
        parts = [str(m) for m in body.get("errorMessages") or []]
        parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
        if parts:
            return "; ".join(parts)
        if body.get("message"):
            return str(body["message"])
    return str(body)[:500]


def when_of(date: Optional[dict[str, Any]]) -> Optional[datetime]:
    """A JSM DateDTO (``epochMillis``, ``iso8601``...) as an aware datetime."""
    if not date:
        return None
    if date.get("epochMillis") is not None:
        return datetime.fromtimestamp(int(date["epochMillis"]) / 1000, tz=timezone.utc)
    raw = date.get("iso8601")
    if raw:
        try:
            return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S%z").astimezone(timezone.utc)
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------- client
class JsmClient:
    """The Service Desk REST endpoints this project uses, with errors sorted by what to do next."""

    def __init__(self, config: JsmConfig, *, timeout: Optional[float] = None, session: Optional[requests.Session] = None) -> None:
        self.config = config
        self.timeout = timeout if timeout is not None else config.timeout
        self.session = session or requests.Session()
        self.session.auth = (config.email, config.api_token)
        self.session.headers.update({"Accept": "application/json"})

    @property
    def desk(self) -> str:
        return f"{API}/servicedesk/{self.config.service_desk_id}"

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Optional[dict[str, Any]] = None,
        json: Any = None,
        files: Any = None,
        headers: Optional[dict[str, str]] = None,
    ) -> Any:
        url = self.config.site_url + path
        try:
            response = self.session.request(
                method, url, params=params, json=json, files=files, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise JsmUnavailable(f"JSM no respondió a tiempo ({method} {path})") from exc
        except requests.RequestException as exc:
            raise JsmUnavailable(f"no se pudo conectar con JSM ({method} {path}): {exc.__class__.__name__}") from exc
        status = response.status_code
        if status < 400:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise JsmUnavailable(f"JSM devolvió una respuesta que no es JSON ({method} {path})", status) from exc
        detail = _error_text(response)
        where = f"{method} {path}"
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise JsmUnavailable(f"JSM pidió esperar (429) en {where}: {detail}", status, wait)
        if status >= 500:
            raise JsmUnavailable(f"JSM falló ({status}) en {where}: {detail}", status,
                                 parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise JsmAuthError(
                f"JSM rechazó las credenciales o permisos ({status}) en {where}: {detail}. "
                "Revisa JSM_EMAIL y JSM_API_TOKEN.", status)
        raise JsmRejected(f"JSM rechazó la solicitud ({status}) en {where}: {detail}", status)

    def pages(self, path: str, params: Optional[dict[str, Any]] = None, headers: Optional[dict[str, str]] = None) -> Iterator[dict[str, Any]]:
        """Every value of a paged servicedeskapi list (``values``/``isLastPage``)."""
        start = 0
        while True:
            page = self.call("GET", path, params={**(params or {}), "start": start, "limit": 50}, headers=headers) or {}
            values = page.get("values") or []
            yield from values
            if page.get("isLastPage", True) or not values:
                return
            start += len(values)

    # -- the desk and its request types
    def service_desk(self) -> dict[str, Any]:
        return self.call("GET", self.desk) or {}

    def request_types(self) -> list[dict[str, Any]]:
        return list(self.pages(f"{self.desk}/requesttype"))

    def request_type_fields(self, request_type_id: str) -> dict[str, Any]:
        return self.call("GET", f"{self.desk}/requesttype/{request_type_id}/field") or {}

    # -- customers
    def desk_customer(self, email: str) -> Optional[str]:
        """accountId of a customer of this desk with exactly this e-mail."""
        for user in self.pages(f"{self.desk}/customer", {"query": email}, headers={"X-ExperimentalApi": "opt-in"}):
            if (user.get("emailAddress") or "").lower() == email.lower():
                return user.get("accountId")
        return None

    def site_user(self, email: str) -> Optional[str]:
        """accountId of any account of the site with this e-mail (customer or not yet on this desk)."""
        users = self.call("GET", "/rest/api/3/user/search", params={"query": email}) or []
        for user in users:
            if (user.get("emailAddress") or "").lower() == email.lower():
                return user.get("accountId")
        return None

    def create_customer(self, email: str, display_name: str) -> str:
        user = self.call("POST", f"{API}/customer", json={"email": email, "displayName": display_name}) or {}
        return str(user["accountId"])

    def add_customers(self, account_ids: list[str]) -> None:
        self.call("POST", f"{self.desk}/customer", json={"accountIds": account_ids})

    # -- requests
    def create_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"{API}/request", json=body) or {}

    def search_requests(self, term: str) -> list[dict[str, Any]]:
        params = {"searchTerm": term, "requestOwnership": "ALL_REQUESTS", "serviceDeskId": self.config.service_desk_id}
        return list(self.pages(f"{API}/request", params))

    def get_request(self, key: str) -> dict[str, Any]:
        return self.call("GET", f"{API}/request/{key}") or {}

    def attach_temporary_files(self, files: list[tuple[str, str, bytes]]) -> list[str]:
        """Upload (name, content type, data) files; returns their temporary attachment ids."""
        multipart = [("file", (name, data, content_type)) for name, content_type, data in files]
        body = self.call(
            "POST", f"{self.desk}/attachTemporaryFile", files=multipart,
            headers={"X-Atlassian-Token": "no-check", "X-ExperimentalApi": "opt-in"},
        ) or {}
        return [str(t["temporaryAttachmentId"]) for t in body.get("temporaryAttachments") or []]

    def add_attachments(self, key: str, temporary_ids: list[str], public: bool = True) -> dict[str, Any]:
        body = {"temporaryAttachmentIds": temporary_ids, "public": public}
        return self.call("POST", f"{API}/request/{key}/attachment", json=body) or {}

    def attachment_names(self, key: str) -> list[str]:
        return [str(a.get("filename")) for a in self.pages(f"{API}/request/{key}/attachment")]

    def add_comment(self, key: str, body: str, public: bool) -> dict[str, Any]:
        return self.call("POST", f"{API}/request/{key}/comment", json={"body": body, "public": public}) or {}

    def comments(self, key: str) -> list[dict[str, Any]]:
        return list(self.pages(f"{API}/request/{key}/comment"))

    def current_status(self, key: str) -> tuple[str, Optional[datetime]]:
        """The request's current status name and when it was reached."""
        current = self.get_request(key).get("currentStatus") or {}
        return str(current.get("status") or ""), when_of(current.get("statusDate"))


@lru_cache(maxsize=1)
def _live_client(config: JsmConfig) -> JsmClient:
    return JsmClient(config, timeout=config.status_timeout)


def live_status_client() -> Optional[JsmClient]:
    """A client for status questions when JSM is the help desk; short timeout, one per process."""
    if tickets_backend() != "jsm":
        return None
    try:
        return _live_client(JsmConfig.from_env())
    except JsmConfigError as exc:
        logger.warning("JSM status lookups disabled: %s", exc)
        return None


# --------------------------------------------------------------------- mapping
@dataclass
class TypeMapping:
    """One catalog request type in JSM: its request type id, field ids and option ids."""

    request_type_id: str
    jsm_name: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # catalog field id (or "summary") -> JSM fieldId
    options: dict[str, dict[str, str]] = field(default_factory=dict)  # catalog field -> option id -> JSM value

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"jsm_request_type_id": self.request_type_id, "jsm_name": self.jsm_name, "fields": dict(self.fields)}
        if self.options:
            data["options"] = {k: dict(v) for k, v in self.options.items()}
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TypeMapping":
        return cls(
            request_type_id=str(raw["jsm_request_type_id"]),
            jsm_name=str(raw.get("jsm_name") or ""),
            fields={str(k): str(v) for k, v in (raw.get("fields") or {}).items()},
            options={str(f): {str(k): str(v) for k, v in (o or {}).items()} for f, o in (raw.get("options") or {}).items()},
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
            stamp = self.path.stat().st_mtime
        except OSError:
            stamp = None
        if self._mapping is None or stamp != self._stamp:
            self._mapping = JsmMapping.load(self.path)
            self._stamp = stamp
        return self._mapping


# ------------------------------------------------------------------------ sync
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
            self.missing_in_jsm or self.missing_fields or self.missing_options or self.unfilled_required
            or self.cannot_raise_on_behalf
        )


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
    return max(
        (f for f in free if wanted & {normalize(v.get("label")) for v in f.get("validValues") or []}),
        key=lambda f: len(wanted & {normalize(v.get("label")) for v in f.get("validValues") or []}),
        default=None,
    )


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
    report = SyncReport(JsmMapping(client.config.service_desk_id), desk_name=str(desk.get("projectName") or ""))
    matched: set[str] = set()
    for request_type in catalog.request_types:
        kept = previous.for_type(request_type.id) if previous else None
        jsm_type = by_id.get(kept.request_type_id) if kept else None
        jsm_type = jsm_type or by_name.get(normalize(request_type.name))
        if jsm_type is None:
            report.missing_in_jsm.append(request_type)
            continue
        type_id = str(jsm_type.get("id"))
        matched.add(type_id)
        described = client.request_type_fields(type_id) or {}
        if described.get("canRaiseOnBehalfOf") is False:
            report.cannot_raise_on_behalf.append(request_type)
        jsm_fields = list(described.get("requestTypeFields") or [])
        mapping = TypeMapping(type_id, str(jsm_type.get("name") or ""))
        if any(f.get("fieldId") == "summary" for f in jsm_fields):
            mapping.fields["summary"] = "summary"
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
        for jsm_field in jsm_fields:
            if jsm_field.get("required") and jsm_field.get("fieldId") not in used | {"attachment"}:
                report.unfilled_required.append((request_type, jsm_field))
        report.mapping.request_types[request_type.id] = mapping
    report.extra_in_jsm = [t for t in jsm_types if str(t.get("id")) not in matched]
    return report
