"""A local fake of Jira Service Management's REST API, for offline tests.

Implements the servicedeskapi endpoints the assistant uses with the request
and response shapes of Atlassian's documentation (paged ``values`` lists,
``CustomerRequestDTO``, ``DateDTO``, ``{"errorMessage": ...}`` errors), basic
auth with e-mail and API token, and JSM's own checks (required fields, valid
options, XSRF header on multipart uploads). Tests script failures per
endpoint (status, body, Retry-After, delays past the client's timeout, or a
delay *after* the work is done, which is the ambiguous timeout) and can take
the whole site down and back up on the same port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import unicodedata
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from aiohttp import web

from bot.catalog import Catalog

EMAIL = "agente@ecollect.example"
TOKEN = "token-jsm-de-pruebas"
DESK_ID = "7"
UNAUTHORIZED = "Client must be authenticated to access this resource."
AGENT = "557058:agente-ecollect"  # the accountId behind JSM_EMAIL
LAURA = "557058:laura-gomez"  # a human agent of the desk, who answers customers
# Status categories as the platform API keys them (the servicedeskapi shows them upper case).
RESOLVED_STATUSES = ("Resuelta", "Cerrada", "Resolved", "Closed", "Done")


@dataclass
class Scripted:
    """One scripted answer for the next call to an endpoint.

    ``after``: do the real work first, then wait ``delay`` and answer
    normally (a response lost to a client timeout after JSM acted).
    """

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    after: bool = False


def date_dto(moment: datetime) -> dict[str, Any]:
    return {
        "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "jira": moment.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
        "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
        "epochMillis": int(moment.timestamp() * 1000),
    }


def paged(values: list[Any], request: web.Request, link: str, page_size: int = 50) -> dict[str, Any]:
    start = int(request.query.get("start", 0))
    limit = min(int(request.query.get("limit", 50)), page_size)
    page = values[start:start + limit]
    return {
        "_expands": [], "size": len(page), "start": start, "limit": limit,
        "isLastPage": start + len(page) >= len(values), "_links": {"base": link, "context": "", "self": link},
        "values": page,
    }


def _kb_words(text: str) -> set[str]:
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    words = set()
    for word in re.findall(r"[a-z0-9]+", folded):
        if len(word) > 4 and word.endswith("es"):
            word = word[:-2]
        elif len(word) > 3 and word.endswith("s"):
            word = word[:-1]
        words.add(word)
    return words


def error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"errorMessage": message, "i18nErrorMessage": {"i18nKey": "sd.error", "parameters": []}}, status=status
    )


@dataclass
class FakeJsm:
    """State of one JSM site with one service desk."""

    base_url: str = ""
    project_name: str = "Mesa de ayuda / Soporte ecollect"
    project_key: str = "MDA"
    request_types: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # accountId -> user
    desk_customers: set[str] = field(default_factory=set)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    temporary: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    scripts: dict[tuple[str, str], list[Scripted]] = field(default_factory=dict)
    create_posts: int = 0
    labels: dict[str, list[str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # webhook bodies, as Jira Cloud would post them
    page_size: int = 50  # JSM caps pages; smaller values exercise the client's paging
    lock: threading.Lock = field(default_factory=threading.Lock)
    kb_articles: list[dict[str, Any]] = field(default_factory=list)  # the linked Confluence space's pages
    kb_delay: float = 0.0  # seconds every knowledge-base search takes (a slow site), besides scripted answers

    def __post_init__(self) -> None:
        self.users[AGENT] = {
            "accountId": AGENT, "accountType": "atlassian", "emailAddress": EMAIL,
            "displayName": "Agente ecollect", "active": True, "timeZone": "America/Bogota",
        }
        self.users[LAURA] = {
            "accountId": LAURA, "accountType": "atlassian", "emailAddress": "laura.gomez@ecollect.example",
            "displayName": "Laura Gómez", "active": True, "timeZone": "America/Bogota",
        }

    # -- helpers for tests
    def script(self, method: str, route: str, *answers: Scripted) -> None:
        """Queue answers for ``method route`` (route as declared, e.g. /rest/servicedeskapi/request)."""
        self.scripts.setdefault((method, route), []).extend(answers)

    def add_article(
        self, title: str, excerpt: str = "", body: str = "", page_id: Optional[str] = None
    ) -> dict[str, Any]:
        """A page of the knowledge base linked to the desk; ``body`` is searched, never returned (JSM links it)."""
        page = page_id or str(8786177 + len(self.kb_articles))
        article = {"title": title, "excerpt": excerpt, "body": body, "pageId": page}
        self.kb_articles.append(article)
        return article

    def add_user(self, email: str, display_name: str = "", customer: bool = True) -> str:
        account = f"qm:{len(self.users) + 1:04d}:{email.split('@')[0]}"
        self.users[account] = {
            "accountId": account, "accountType": "customer", "emailAddress": email,
            "displayName": display_name or email, "active": True, "timeZone": "America/Bogota",
        }
        if customer:
            self.desk_customers.add(account)
        return account

    def account_of(self, email: str) -> Optional[str]:
        return next((a for a, u in self.users.items() if u["emailAddress"].lower() == email.lower()), None)

    def set_status(self, key: str, status: str, at: Optional[datetime] = None, category: Optional[str] = None) -> None:
        """Move the request to ``status`` (category: new / indeterminate / done, by the name when not given)."""
        request = self.requests[key]
        previous = request["status"]
        request["status"] = status
        request["status_at"] = at or datetime.now(timezone.utc)
        request["category"] = category or ("done" if status in RESOLVED_STATUSES else "indeterminate")
        request["history"].append((status, request["status_at"], request["category"]))
        self.events.append(self.status_event(key, previous))

    def transition(
        self, key: str, status: str, category: Optional[str] = None, at: Optional[datetime] = None
    ) -> dict[str, Any]:
        """An agent moves the request; returns the ``jira:issue_updated`` body Jira Cloud would post."""
        self.set_status(key, status, at, category)
        return self.events[-1]

    def agent_comment(self, key: str, text: str, public: bool = True, author: str = LAURA) -> dict[str, Any]:
        """An agent comments in JSM (internal when ``public`` is False); returns the ``comment_created`` body."""
        comment = self._add_comment(key, text, public, author)
        self.events.append(self.comment_event(key, comment))
        return self.events[-1]

    def customer_comment(self, key: str, text: str) -> dict[str, Any]:
        """The request's reporter comments in the customer portal (always public)."""
        return self.agent_comment(key, text, public=True, author=self.requests[key]["reporter"])

    # -- webhooks, shaped and signed as Jira Cloud's admin webhooks
    def _platform_user(self, account: str) -> dict[str, Any]:
        user = self.users[account]
        return {
            "self": f"{self.base_url}/rest/api/2/user?accountId={account}", "accountId": account,
            "displayName": user["displayName"], "active": True, "timeZone": user["timeZone"],
            "accountType": user["accountType"], "avatarUrls": {},
        }

    def _issue(self, key: str, with_reporter: bool) -> dict[str, Any]:
        r = self.requests[key]
        category = r.get("category", "new")
        fields: dict[str, Any] = {
            "summary": self.summary(key),
            "status": {
                "name": r["status"], "id": "10001", "statusCategory": {"id": 4, "key": category, "name": category},
            },
            "issuetype": {"name": "[System] Service request"}, "project": {"key": self.project_key},
        }
        if with_reporter:
            fields["reporter"] = self._platform_user(r["reporter"])
        return {"id": r["issueId"], "self": f"{self.base_url}/rest/api/2/{r['issueId']}", "key": key, "fields": fields}

    def comment_event(self, key: str, comment: dict[str, Any]) -> dict[str, Any]:
        created = datetime.fromtimestamp(comment["created"]["epochMillis"] / 1000, tz=timezone.utc)
        author = self._platform_user(comment["author"]["accountId"])
        return {
            "timestamp": int(datetime.now(timezone.utc).timestamp() * 1000), "webhookEvent": "comment_created",
            "comment": {
                "self": f"{self.base_url}/rest/api/2/issue/{self.requests[key]['issueId']}/comment/{comment['id']}",
                "id": comment["id"], "author": author, "body": comment["body"], "updateAuthor": author,
                "created": created.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
                "updated": created.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
                "jsdPublic": comment["public"],
            },
            "issue": self._issue(key, with_reporter=False),  # comment events carry a few fields, not the reporter
        }

    def status_event(self, key: str, previous: str) -> dict[str, Any]:
        r = self.requests[key]
        return {
            "timestamp": int(r["status_at"].timestamp() * 1000), "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic", "user": self._platform_user(LAURA),
            "issue": self._issue(key, with_reporter=True),
            "changelog": {"id": str(uuid.uuid4().int % 10**6), "items": [{
                "field": "status", "fieldtype": "jira", "fieldId": "status",
                "from": "10000", "fromString": previous, "to": "10001", "toString": r["status"],
            }]},
        }

    @staticmethod
    def send_webhook(
        url: str, event: dict[str, Any], secret: Optional[str], *, identifier: Optional[str] = None,
        signature: Optional[str] = None, body: Optional[bytes] = None,
    ) -> tuple[int, Any, str]:
        """POST ``event`` to ``url`` as Jira Cloud does: the raw body signed in X-Hub-Signature (sha256=<hex>).

        Returns (status, JSON answer or text, the delivery identifier used, for a replay).
        """
        raw = body if body is not None else json.dumps(event).encode("utf-8")
        identifier = identifier or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": identifier,
            "X-Atlassian-Webhook-Flow": "Primary", "User-Agent": "Atlassian Webhook HTTP Client",
        }
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        elif secret is not None:
            headers["X-Hub-Signature"] = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        request = urllib.request.Request(url, data=raw, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text), identifier
        except ValueError:
            return status, text, identifier

    def summary(self, key: str) -> str:
        return str(self.requests[key]["fields"].get("summary", ""))

    def called(self, method: str, path_part: str) -> list[tuple[str, str, dict[str, str], Any]]:
        return [c for c in self.calls if c[0] == method and path_part in c[1]]

    # -- DTOs
    def _user(self, account: str) -> dict[str, Any]:
        user = dict(self.users[account])
        user["_links"] = {"jiraRest": f"{self.base_url}/rest/api/2/user?accountId={account}", "avatarUrls": {}, "self": ""}
        return user

    def _request_dto(self, key: str) -> dict[str, Any]:
        r = self.requests[key]
        labels = {f["fieldId"]: f["name"] for f in self.fields.get(r["requestTypeId"], [])}
        return {
            "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"],
            "issueId": r["issueId"],
            "issueKey": key,
            "requestTypeId": r["requestTypeId"],
            "serviceDeskId": DESK_ID,
            "createdDate": date_dto(r["created"]),
            "reporter": self._user(r["reporter"]),
            "requestFieldValues": [
                {"fieldId": fid, "label": labels.get(fid, fid), "value": value} for fid, value in r["fields"].items()
            ],
            "currentStatus": {
                "status": r["status"], "statusCategory": r.get("category", "new").upper(),
                "statusDate": date_dto(r["status_at"]),
            },
            "_links": {
                "jiraRest": f"{self.base_url}/rest/api/2/issue/{r['issueId']}",
                "web": f"{self.base_url}/servicedesk/customer/portal/1/{key}",
                "self": f"{self.base_url}/rest/servicedeskapi/request/{r['issueId']}",
                "agent": f"{self.base_url}/browse/{key}",
            },
        }

    # -- middleware: auth, call log, scripted answers
    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body: Any = None
        if request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
        self.calls.append((request.method, request.path, dict(request.query), body))
        expected = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text=UNAUTHORIZED, headers={"WWW-Authenticate": 'Basic realm="protected-area"'})
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
        queue = self.scripts.get((request.method, route)) or []
        answer = queue.pop(0) if queue else None
        if answer is not None and not answer.after:
            await asyncio.sleep(answer.delay)
            if isinstance(answer.body, (dict, list)):
                return web.json_response(answer.body, status=answer.status, headers=answer.headers)
            return web.Response(status=answer.status, text=str(answer.body or ""), headers=answer.headers)
        request["json"] = body
        response = await handler(request)
        if answer is not None and answer.after:
            await asyncio.sleep(answer.delay)
        return response

    # -- service desk and request types
    def _desk(self, request: web.Request) -> Optional[web.Response]:
        if request.match_info["desk"] != DESK_ID:
            return error(404, f"The service desk with ID {request.match_info['desk']} does not exist.")
        return None

    async def service_desk(self, request: web.Request) -> web.Response:
        return self._desk(request) or web.json_response({
            "id": DESK_ID, "projectId": "10000", "projectName": self.project_name, "projectKey": self.project_key,
            "_links": {"self": f"{self.base_url}/rest/servicedeskapi/servicedesk/{DESK_ID}"},
        })

    async def list_request_types(self, request: web.Request) -> web.Response:
        if (missing := self._desk(request)) is not None:
            return missing
        return web.json_response(paged(self.request_types, request, f"{self.base_url}{request.path}", self.page_size))

    async def request_type_fields(self, request: web.Request) -> web.Response:
        if (missing := self._desk(request)) is not None:
            return missing
        type_id = request.match_info["type"]
        if type_id not in self.fields:
            return error(404, f"The request type {type_id} does not exist.")
        return web.json_response(
            {"requestTypeFields": self.fields[type_id], "canRaiseOnBehalfOf": True, "canAddRequestParticipants": True}
        )

    # -- knowledge base (Confluence pages linked to the desk)
    async def kb_articles_search(self, request: web.Request) -> web.Response:
        """Pages sharing a word with the query, most shared words first, as ``ArticleDTO``s.

        Words compare lower case, accents folded and a final «s»/«es» dropped
        (Confluence's search folds plurals, not Spanish verb forms).
        """
        if (missing := self._desk(request)) is not None:
            return missing
        if "query" not in request.query or request.query.get("highlight") not in ("true", "false"):
            return error(400, "The query and highlight parameters are required.")
        if self.kb_delay:
            await asyncio.sleep(self.kb_delay)
        wanted, api = _kb_words(request.query["query"]), "/rest/servicedeskapi"
        ranked = []
        for position, page in enumerate(self.kb_articles):
            shared = len(wanted & _kb_words(f"{page['title']} {page['excerpt']} {page['body']}"))
            if shared:
                ranked.append((-shared, position, page))
        ranked.sort(key=lambda entry: entry[:2])
        values = [
            {
                "title": page["title"], "excerpt": page["excerpt"],
                "source": {"type": "confluence", "pageId": page["pageId"], "spaceKey": "MDA"},
                "content": {"iframeSrc": f"{self.base_url}{api}/knowledgebase/article/view/{page['pageId']}"},
            }
            for _, _, page in ranked
        ]
        return web.json_response(paged(values, request, f"{self.base_url}{request.path}", self.page_size))

    # -- customers
    async def desk_customers_list(self, request: web.Request) -> web.Response:
        if (missing := self._desk(request)) is not None:
            return missing
        query = request.query.get("query", "").lower()
        found = [
            self._user(a) for a in sorted(self.desk_customers)
            if query in self.users[a]["emailAddress"].lower() or query in self.users[a]["displayName"].lower()
        ]
        return web.json_response(paged(found, request, f"{self.base_url}{request.path}"))

    async def add_desk_customers(self, request: web.Request) -> web.Response:
        if (missing := self._desk(request)) is not None:
            return missing
        accounts = (request["json"] or {}).get("accountIds") or []
        unknown = [a for a in accounts if a not in self.users]
        if unknown:
            return error(400, f"The following users do not exist: {', '.join(unknown)}")
        self.desk_customers.update(accounts)
        return web.Response(status=204)

    async def create_customer(self, request: web.Request) -> web.Response:
        body = request["json"] or {}
        email = str(body.get("email") or "")
        if "@" not in email:
            return error(400, "The email address is not valid.")
        if self.account_of(email):
            return error(400, "An account already exists for this email.")
        account = self.add_user(email, str(body.get("displayName") or email), customer=False)
        return web.json_response(self._user(account), status=201)

    async def user_search(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        return web.json_response([self._user(a) for a, u in self.users.items() if query and query in u["emailAddress"].lower()])

    # -- requests
    async def create_request(self, request: web.Request) -> web.Response:
        with self.lock:
            self.create_posts += 1
        body = request["json"] or {}
        if str(body.get("serviceDeskId")) != DESK_ID:
            return error(404, f"The service desk with ID {body.get('serviceDeskId')} does not exist.")
        type_id = str(body.get("requestTypeId"))
        if type_id not in self.fields:
            return error(400, "The request type you are trying to use does not exist.")
        specs = {f["fieldId"]: f for f in self.fields[type_id]}
        values = body.get("requestFieldValues") or {}
        for field_id, value in values.items():
            spec = specs.get(field_id)
            if spec is None:
                return error(400, f"Field '{field_id}' is not valid for this request type.")
            if spec["validValues"] and (not isinstance(value, dict) or value.get("id") not in {v["value"] for v in spec["validValues"]}):
                return error(400, f"Specify a valid value for {spec['name']}.")
        for spec in specs.values():
            if spec["required"] and spec["fieldId"] != "attachment" and not values.get(spec["fieldId"]):
                return error(400, f"{spec['name']}: You must specify a value for this field.")
        reporter = body.get("raiseOnBehalfOf") or AGENT
        if reporter != AGENT and reporter not in self.desk_customers:
            return error(400, f"The user '{reporter}' is not a customer of this service desk.")
        now = datetime.now(timezone.utc)
        with self.lock:
            number = len(self.requests) + 1
            key = f"{self.project_key}-{number}"
            self.requests[key] = {
                "issueId": str(10000 + number), "requestTypeId": type_id, "fields": dict(values),
                "reporter": reporter, "created": now, "status": "Esperando por soporte", "status_at": now,
                "history": [("Esperando por soporte", now)], "ownership": None,
            }
        return web.json_response(self._request_dto(key), status=201)

    async def list_requests(self, request: web.Request) -> web.Response:
        term = request.query.get("searchTerm", "").lower()
        desk = request.query.get("serviceDeskId")
        if desk and desk != DESK_ID:
            return web.json_response(paged([], request, f"{self.base_url}{request.path}"))
        keys = [k for k in self.requests if term in self.summary(k).lower()]
        if request.query.get("requestOwnership") != "ALL_REQUESTS":
            keys = [k for k in keys if self.requests[k]["reporter"] == AGENT]  # only the caller's own
        return web.json_response(paged([self._request_dto(k) for k in keys], request, f"{self.base_url}{request.path}", self.page_size))

    def _known(self, request: web.Request) -> tuple[str, Optional[web.Response]]:
        key = request.match_info["key"]
        if key not in self.requests:
            return key, error(404, "The customer request does not exist or you do not have permission to view it.")
        return key, None

    async def get_request(self, request: web.Request) -> web.Response:
        key, missing = self._known(request)
        return missing or web.json_response(self._request_dto(key))

    async def request_status(self, request: web.Request) -> web.Response:
        key, missing = self._known(request)
        if missing:
            return missing
        history = [
            {
                "status": entry[0], "statusCategory": (entry[2] if len(entry) > 2 else "new").upper(),
                "statusDate": date_dto(entry[1]),
            }
            for entry in reversed(self.requests[key]["history"])
        ]
        return web.json_response(paged(history, request, f"{self.base_url}{request.path}"))

    # -- attachments
    async def attach_temporary_file(self, request: web.Request) -> web.Response:
        if (missing := self._desk(request)) is not None:
            return missing
        if request.headers.get("X-Atlassian-Token") != "no-check":
            return web.Response(status=403, text="XSRF check failed")
        reader = await request.multipart()
        created = []
        async for part in reader:
            if part.name != "file":
                continue
            data = await part.read()
            temporary_id = f"temp{len(self.temporary) + 1:06d}"
            self.temporary[temporary_id] = (part.filename or "file", part.headers.get("Content-Type", ""), bytes(data))
            created.append({"temporaryAttachmentId": temporary_id, "fileName": part.filename})
        if not created:
            return error(400, "No file was attached (the form field must be called 'file').")
        return web.json_response({"temporaryAttachments": created}, status=201)

    async def add_attachment(self, request: web.Request) -> web.Response:
        key, missing = self._known(request)
        if missing:
            return missing
        body = request["json"] or {}
        ids = body.get("temporaryAttachmentIds") or []
        if not ids or any(i not in self.temporary for i in ids):
            return error(400, "One or more temporary attachments could not be found.")
        added = []
        for temporary_id in ids:
            name, content_type, data = self.temporary.pop(temporary_id)
            entry = {
                "filename": name, "author": self._user(AGENT),
                "created": date_dto(datetime.now(timezone.utc)), "size": len(data), "mimeType": content_type,
                "_links": {"content": f"{self.base_url}/secure/attachment/{len(added)}/{name}"},
                "data": data, "public": bool(body.get("public")),
            }
            self.attachments.setdefault(key, []).append(entry)
            added.append({k: v for k, v in entry.items() if k not in ("data", "public")})
        result: dict[str, Any] = {"attachments": {"size": len(added), "start": 0, "limit": len(added), "isLastPage": True, "values": added}}
        if body.get("additionalComment"):
            result["comment"] = self._add_comment(key, body["additionalComment"].get("body", ""), bool(body.get("public")))
        return web.json_response(result, status=201)

    async def list_attachments(self, request: web.Request) -> web.Response:
        key, missing = self._known(request)
        if missing:
            return missing
        values = [{k: v for k, v in a.items() if k not in ("data", "public")} for a in self.attachments.get(key, [])]
        return web.json_response(paged(values, request, f"{self.base_url}{request.path}"))

    # -- comments
    def _add_comment(self, key: str, body: str, public: bool, author: str = AGENT) -> dict[str, Any]:
        """A comment by ``author`` (the integration account when it comes through the API)."""
        comment = {
            "id": str(20000 + sum(len(c) for c in self.comments.values()) + 1), "body": body, "public": public,
            "author": self._user(author), "created": date_dto(datetime.now(timezone.utc)),
            "_links": {"self": f"{self.base_url}/rest/servicedeskapi/request/{key}/comment"},
        }
        self.comments.setdefault(key, []).append(comment)
        return comment

    async def add_comment(self, request: web.Request) -> web.Response:
        key, missing = self._known(request)
        if missing:
            return missing
        body = request["json"] or {}
        if not body.get("body"):
            return error(400, "The comment body can't be empty.")
        return web.json_response(self._add_comment(key, str(body["body"]), bool(body.get("public"))), status=201)

    async def list_comments(self, request: web.Request) -> web.Response:
        key, missing = self._known(request)
        if missing:
            return missing
        public = request.query.get("public", "true") != "false"
        internal = request.query.get("internal", "true") != "false"
        values = [c for c in self.comments.get(key, []) if (c["public"] and public) or (not c["public"] and internal)]
        return web.json_response(paged(values, request, f"{self.base_url}{request.path}"))

    # -- platform API: the caller, and labels
    async def myself(self, request: web.Request) -> web.Response:
        return web.json_response({**self._user(AGENT), "locale": "es_ES", "groups": {"size": 1, "items": []}})

    async def edit_issue(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in self.requests:
            message = "Issue does not exist or you do not have permission to see it."
            return web.json_response({"errorMessages": [message], "errors": {}}, status=404)
        operations = ((request["json"] or {}).get("update") or {}).get("labels")
        if not isinstance(operations, list) or not operations:
            return web.json_response({"errorMessages": [], "errors": {"update": "Nothing to update."}}, status=400)
        for operation in operations:
            label = operation.get("add") if isinstance(operation, dict) else None
            if not isinstance(label, str) or not label or " " in label:
                errors = {"labels": "The label can't contain spaces."}
                return web.json_response({"errorMessages": [], "errors": errors}, status=400)
            if label not in self.labels.setdefault(key, []):
                self.labels[key].append(label)
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        api = "/rest/servicedeskapi"
        add = app.router
        add.add_get(api + "/servicedesk/{desk}", self.service_desk)
        add.add_get(api + "/servicedesk/{desk}/requesttype", self.list_request_types)
        add.add_get(api + "/servicedesk/{desk}/requesttype/{type}/field", self.request_type_fields)
        add.add_get(api + "/servicedesk/{desk}/customer", self.desk_customers_list)
        add.add_get(api + "/servicedesk/{desk}/knowledgebase/article", self.kb_articles_search)
        add.add_post(api + "/servicedesk/{desk}/customer", self.add_desk_customers)
        add.add_post(api + "/servicedesk/{desk}/attachTemporaryFile", self.attach_temporary_file)
        add.add_post(api + "/customer", self.create_customer)
        add.add_get("/rest/api/3/user/search", self.user_search)
        add.add_get("/rest/api/3/myself", self.myself)
        add.add_put("/rest/api/3/issue/{key}", self.edit_issue)
        add.add_post(api + "/request", self.create_request)
        add.add_get(api + "/request", self.list_requests)
        add.add_get(api + "/request/{key}", self.get_request)
        add.add_get(api + "/request/{key}/status", self.request_status)
        add.add_post(api + "/request/{key}/attachment", self.add_attachment)
        add.add_get(api + "/request/{key}/attachment", self.list_attachments)
        add.add_post(api + "/request/{key}/comment", self.add_comment)
        add.add_get(api + "/request/{key}/comment", self.list_comments)
        return app


def desk_from_catalog(
    fake: FakeJsm,
    catalog: Catalog,
    *,
    skip: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    without_description: tuple[str, ...] = (),
    drop_options: tuple[str, ...] = (),
) -> None:
    """A desk mirroring the catalog's portal: a request type per catalog type, with its fields.

    ``skip``: catalog type ids JSM lacks; ``extra``: JSM-only type names;
    ``without_description``: types whose JSM form has no description field
    (as the portal's Gestión de archivos); ``drop_options``: option ids JSM lacks.
    """
    fake.request_types.clear()
    fake.fields.clear()
    option_number = 0

    def add_type(name: str, fields: list[dict[str, Any]]) -> None:
        type_id = str(30 + len(fake.request_types))
        fake.request_types.append({
            "_expands": [], "id": type_id, "_links": {"self": f"{fake.base_url}/rest/servicedeskapi/servicedesk/{DESK_ID}/requesttype/{type_id}"},
            "name": name, "description": "", "helpText": "", "issueTypeId": "10004", "serviceDeskId": DESK_ID,
            "groupIds": ["1"], "icon": {"id": "10500", "_links": {"iconUrls": {}}},
        })
        fake.fields[type_id] = fields

    def jsm_field(field_id: str, name: str, required: bool, schema: dict[str, Any], valid: list[dict[str, Any]] = ()) -> dict[str, Any]:
        return {
            "fieldId": field_id, "name": name, "description": "", "required": required, "defaultValues": [],
            "validValues": list(valid), "presetValues": [], "jiraSchema": schema, "visible": True,
        }

    for request_type in catalog.request_types:
        if request_type.id in skip:
            continue
        fields = [jsm_field("summary", "Resumen", True, {"type": "string", "system": "summary"})]
        if request_type.field("description") or request_type.id not in without_description:
            fields.append(jsm_field("description", "Descripción", bool(request_type.field("description")), {"type": "string", "system": "description"}))
        item = request_type.field("item")
        if item:
            valid = []
            for option in item.options:
                option_number += 1
                if option.id not in drop_options:
                    valid.append({"value": str(10100 + option_number), "label": option.name, "children": []})
            fields.append(jsm_field(
                "customfield_10050", "Ítem", True,
                {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10050}, valid,
            ))
        if request_type.field("phone"):
            fields.append(jsm_field(
                "customfield_10060", "Teléfono", False,
                {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield", "customId": 10060},
            ))
        fields.append(jsm_field("attachment", "Adjunto", False, {"type": "array", "items": "attachment", "system": "attachment"}))
        add_type(request_type.name, fields)
    for name in extra:
        add_type(name, [jsm_field("summary", "Resumen", True, {"type": "string", "system": "summary"})])


class FakeJsmServer:
    """The fake running on a loopback port in its own thread; can go down and come back on the same port."""

    def __init__(self) -> None:
        self.fake = FakeJsm()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.fake.base_url = f"http://127.0.0.1:{self.port}"
        self.runner: Optional[web.AppRunner] = None
        self.up()

    @property
    def url(self) -> str:
        return self.fake.base_url

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(15)

    def up(self) -> None:
        async def start() -> web.AppRunner:
            runner = web.AppRunner(self.fake.app(), handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True, shutdown_timeout=0.5).start()
            return runner

        if self.runner is None:
            self.runner = self._run(start())

    def down(self) -> None:
        """Stop listening and drop open connections: clients get connection refused."""
        if self.runner is not None:
            self._run(self.runner.cleanup())
            self.runner = None

    def close(self) -> None:
        self.down()

        async def cancel_leftovers() -> None:  # handlers still sleeping on a scripted delay
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        self._run(cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# ---------------------------------------------------------------- pytest glue
# Imported by the test modules that use them (fixtures are found by name).
import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def jsm_server(catalog: Catalog) -> Any:
    """A fake desk mirroring the catalog; Gestión de archivos without description, as on the portal."""
    server = FakeJsmServer()
    desk_from_catalog(server.fake, catalog, without_description=("gestion_archivos",))
    yield server
    server.close()


@pytest.fixture
def tickets_db_url(tmp_path: Any) -> Any:
    """SQLite by default; a fresh PostgreSQL database per test when TEST_POSTGRES_URL names a server.

    (e.g. TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres): the
    outbox's claiming differs per backend, so both can be exercised.
    """
    admin = os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        yield f"sqlite:///{tmp_path / 'tickets.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"eco_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield admin.rsplit("/", 1)[0] + "/" + name
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


@pytest.fixture
def jsm_env(jsm_server: FakeJsmServer, tmp_path: Any, tickets_db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a deployment with TICKETS_BACKEND=jsm against the fake."""
    env = {
        "TICKETS_BACKEND": "jsm",
        "JSM_SITE_URL": jsm_server.url,
        "JSM_SERVICE_DESK_ID": DESK_ID,
        "JSM_EMAIL": EMAIL,
        "JSM_API_TOKEN": TOKEN,
        "JSM_CREATE_CUSTOMERS": "false",
        "BOT_DATA_DIR": str(tmp_path),
        "TICKETS_DB_URL": tickets_db_url,
        "TRACKER_DB_URL": f"sqlite:///{tmp_path / 'tracker.db'}",
    }
    monkeypatch.delenv("JSM_MAPPING_FILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
