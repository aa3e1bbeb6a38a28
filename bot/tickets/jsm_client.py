"""The Jira Service Management REST client: the Service Desk endpoints this project uses.

The support team works in a JSM customer portal (``/rest/servicedeskapi``,
basic auth with an agent's e-mail and API token). Every failure is sorted
by what to do next (bot/tickets/errors.py): retry later, fix the
credentials, fix the settings, or give up on this request.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, Optional

import requests

from bot.http_retry import parse_retry_after
from bot.settings.tickets import JsmSettings
from bot.tickets.errors import JsmAuthError, JsmConfigError, JsmRejected, JsmUnavailable

API = "/rest/servicedeskapi"


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


class JsmClient:
    """The Service Desk REST endpoints this project uses, with errors sorted by what to do next."""

    def __init__(
        self, settings: JsmSettings, *, timeout: Optional[float] = None, session: Optional[requests.Session] = None
    ) -> None:
        """Raises ``JsmConfigError`` naming the ``JSM_*`` variables still unset."""
        missing = settings.missing()
        if missing:
            raise JsmConfigError("faltan variables de entorno para Jira Service Management: " + ", ".join(missing))
        self.settings = settings
        self.timeout = timeout if timeout is not None else settings.timeout
        self.session = session or requests.Session()
        self.session.auth = (settings.email, settings.api_token)
        self.session.headers.update({"Accept": "application/json"})
        self.calls = 0  # requests made so far: how the poller keeps to its budget per round

    @property
    def desk(self) -> str:
        return f"{API}/servicedesk/{self.settings.service_desk_id}"

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
        url = self.settings.site_url + path
        self.calls += 1
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
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise JsmUnavailable(f"JSM falló ({status}) en {where}: {detail}", status, wait)
        if status in (401, 403):
            raise JsmAuthError(
                f"JSM rechazó las credenciales o permisos ({status}) en {where}: {detail}. "
                "Revisa JSM_EMAIL y JSM_API_TOKEN.",
                status,
            )
        raise JsmRejected(f"JSM rechazó la solicitud ({status}) en {where}: {detail}", status)

    def pages(
        self, path: str, params: Optional[dict[str, Any]] = None, headers: Optional[dict[str, str]] = None
    ) -> Iterator[dict[str, Any]]:
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
        desk = self.settings.service_desk_id
        params = {"searchTerm": term, "requestOwnership": "ALL_REQUESTS", "serviceDeskId": desk}
        return list(self.pages(f"{API}/request", params))

    def get_request(self, key: str) -> dict[str, Any]:
        return self.call("GET", f"{API}/request/{key}") or {}

    def attach_temporary_files(self, files: list[tuple[str, str, bytes]]) -> list[str]:
        """Upload (name, content type, data) files; returns their temporary attachment ids."""
        multipart = [("file", (name, data, content_type)) for name, content_type, data in files]
        body = (
            self.call(
                "POST",
                f"{self.desk}/attachTemporaryFile",
                files=multipart,
                headers={"X-Atlassian-Token": "no-check", "X-ExperimentalApi": "opt-in"},
            )
            or {}
        )
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

    def public_comments(self, key: str) -> Iterator[dict[str, Any]]:
        """The request's comments the customer can read (never the agents' internal ones), oldest first, paged."""
        return self.pages(f"{API}/request/{key}/comment", {"public": "true", "internal": "false"})

    def internal_comments(self, key: str) -> Iterator[dict[str, Any]]:
        """The agents-only comments of the request, paged."""
        return self.pages(f"{API}/request/{key}/comment", {"public": "false", "internal": "true"})

    def status_history(self, key: str) -> list[dict[str, Any]]:
        """Every status the request has had (``status``, ``statusCategory``, ``statusDate``), as JSM lists them."""
        return list(self.pages(f"{API}/request/{key}/status"))

    def comment_with_attachments(
        self, key: str, temporary_ids: list[str], body: str, public: bool = True
    ) -> dict[str, Any]:
        """Attach uploaded files to the request together with one comment (``additionalComment``)."""
        payload = {"temporaryAttachmentIds": temporary_ids, "public": public, "additionalComment": {"body": body}}
        return self.call("POST", f"{API}/request/{key}/attachment", json=payload) or {}

    def add_label(self, key: str, label: str) -> None:
        """Add one label to the request's issue (platform API; adding a label it has is harmless)."""
        self.call("PUT", f"/rest/api/3/issue/{key}", json={"update": {"labels": [{"add": label}]}})

    def myself(self) -> dict[str, Any]:
        """The integration account itself (``accountId``, ``emailAddress``...)."""
        return self.call("GET", "/rest/api/3/myself") or {}

    def current_status(self, key: str) -> tuple[str, Optional[datetime]]:
        """The request's current status name and when it was reached."""
        current = self.get_request(key).get("currentStatus") or {}
        return str(current.get("status") or ""), when_of(current.get("statusDate"))
