"""The project's web server: the chat page, the embeddable widget and uploads.

Served on ``WEB_PORT`` by ``python -m bot web`` (started by ``make run``).
The widget talks to Rasa's socket.io channel directly; this server only hands
out the page and the script, and receives attachments, because Rasa's
channels carry text, not files.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import AttachmentRefused, AttachmentStore, UploadLimits, sweep_periodically
from bot.catalog import Catalog, get_catalog
from bot.channels.web_session import SessionSigner
from bot.review.proxies import TrustedProxies
from bot.settings import PROJECT_ROOT, Settings

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SOCKET_IO_CLIENT = PROJECT_ROOT / "widget" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


def templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "xml"]),
    )


def allowed_origins(settings: Settings) -> set[str]:
    """Sites allowed to embed the widget and upload through it (``WEB_ALLOWED_ORIGINS``)."""
    configured = os.environ.get("WEB_ALLOWED_ORIGINS", "")
    origins = {o.strip().rstrip("/") for o in configured.split(",") if o.strip()}
    origins |= {f"http://localhost:{settings.web_port}", f"http://127.0.0.1:{settings.web_port}"}
    return origins


def rasa_public_url(request: Request, settings: Settings) -> str:
    """Where browsers reach Rasa: ``RASA_PUBLIC_URL``, else this host on ``RASA_PORT``."""
    configured = os.environ.get("RASA_PUBLIC_URL", "").strip().rstrip("/")
    if configured:
        return configured
    host = urlsplit(f"//{request.host}").hostname or "localhost"
    return f"{request.scheme}://{host}:{settings.rasa_port}"


def _cors(request: Request, resp: HTTPResponse, origins: set[str]) -> HTTPResponse:
    origin = (request.headers.get("origin") or "").rstrip("/")
    if origin in origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Sesion-Chat"
    return resp


# ------------------------------------------------------------------ uploads
SESSION_INVALID = "La sesión del chat no es válida; recarga la página."
UPLOAD_RATE_LIMITED = "Estás enviando archivos demasiado rápido. Espera un momento e inténtalo de nuevo."
# AttachmentRefused code -> HTTP status of the refusal.
UPLOAD_REFUSAL_STATUS = {"too_large": 413, "type_not_allowed": 415, "quota_bytes": 413, "quota_files": 429}


def client_key(request: Request, proxies: TrustedProxies) -> str:
    """The client's address as our proxies report it (``PROXIES_COUNT``), IPv6 folded to its /64.

    With PROXIES_COUNT=0 (the default) it is the socket peer: a made-up
    X-Forwarded-For changes nothing. One IPv6 customer holds a whole /64, so
    counting single addresses would let them rotate past any limit.
    """
    address = proxies.client_address(request).strip("[]")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


class UploadRateLimit:
    """At most ``per_minute`` uploads per client address in any 60 seconds; 0 turns it off.

    The count lives in this process's memory: it is per web server process
    (``python -m bot web`` runs one). Several processes behind a balancer
    admit that many times the rate, and a restart forgets the counts.
    """

    WINDOW = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._tidy_at = 1024

    def admit(self, client: str) -> float:
        """0 when the upload may go ahead (it is counted), else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        times = self._recent.get(client)
        if times is None:
            if len(self._recent) >= self._tidy_at:
                self._forget_idle(now)
            times = self._recent[client] = deque()
        while times and times[0] <= now - self.WINDOW:
            times.popleft()
        if len(times) >= self.per_minute:
            return max(times[0] + self.WINDOW - now, 0.001)
        times.append(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop clients idle for a window; amortised, so many clients never make each upload slow."""
        for client in [c for c, t in self._recent.items() if not t or t[-1] <= now - self.WINDOW]:
            del self._recent[client]
        self._tidy_at = max(1024, 2 * len(self._recent))


def upload_session(request: Request) -> str:
    """The widget's signed session: form field ``sesion`` or header ``X-Sesion-Chat``."""
    token = request.form.get("sesion") if request.form else None
    return str(token or request.headers.get("X-Sesion-Chat") or "")


def _static(name: str, content_type: str) -> HTTPResponse:
    return response.raw(
        (STATIC / name).read_bytes(),
        content_type=content_type,
        headers={"Cache-Control": "no-cache"},
    )


def create_app(
    settings: Optional[Settings] = None,
    catalog: Optional[Catalog] = None,
    name: str = "soporte_ecollect_web",
) -> Sanic:
    settings = settings or Settings.from_env()
    catalog = catalog or get_catalog()
    store = AttachmentStore.from_settings(catalog)
    origins = allowed_origins(settings)
    signer = SessionSigner.from_env(settings.data_dir)
    pages = templates()
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = store.policy.max_bytes + 1024 * 1024  # multipart overhead
    app.ctx.settings = settings
    # The review app's reading of PROXIES_COUNT, not app.config: that would also
    # change the scheme and host every other route believes.
    proxies = TrustedProxies.from_env()
    upload_rate = UploadRateLimit((store.limits or UploadLimits()).rate_per_minute)
    app.ctx.attachments = store  # tests set its clock and upload_rate's
    app.ctx.upload_rate = upload_rate

    @app.after_server_start
    async def start_attachment_sweep(app_: Sanic, _loop: Any) -> None:
        """Files no ticket took are removed in the background (bot/attachments.py)."""
        app_.ctx.attachment_sweep = app_.loop.create_task(sweep_periodically(store))

    @app.before_server_stop
    async def stop_attachment_sweep(app_: Sanic, _loop: Any) -> None:
        task = getattr(app_.ctx, "attachment_sweep", None)
        if task is not None:
            task.cancel()

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        html = pages.get_template("index.html").render(
            portal=catalog.portal,
            categories=catalog.categories,
            rasa_url=rasa_public_url(request, settings),
        )
        return response.html(html, headers={"Content-Security-Policy": _page_csp(request, settings)})

    @app.get("/integracion")
    async def embed_example(request: Request) -> HTTPResponse:
        """The one-tag embed snippet, and the floating widget it produces."""
        widget_url = f"{request.scheme}://{request.host}/widget.js"
        rasa_url = rasa_public_url(request, settings)
        snippet = f'<script src="{widget_url}" data-rasa-url="{rasa_url}" defer></script>'
        html = pages.get_template("integracion.html").render(
            portal=catalog.portal, snippet=snippet, widget_url=widget_url, rasa_url=rasa_url
        )
        return response.html(html, headers={"Content-Security-Policy": _page_csp(request, settings)})

    @app.get("/widget.js")
    async def widget_js(_: Request) -> HTTPResponse:
        return _static("widget.js", "application/javascript; charset=utf-8")

    @app.get("/widget.css")
    async def widget_css(_: Request) -> HTTPResponse:
        return _static("widget.css", "text/css; charset=utf-8")

    @app.get("/vendor/socket.io.min.js")
    async def socket_io(_: Request) -> HTTPResponse:
        if not SOCKET_IO_CLIENT.exists():
            return response.text(
                "Falta socket.io-client: ejecuta `make install` (instala widget/node_modules).", status=503
            )
        return response.raw(
            SOCKET_IO_CLIENT.read_bytes(),
            content_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/api/config")
    async def config(request: Request) -> HTTPResponse:
        policy = store.policy
        data = {
            "max_bytes": policy.max_bytes,
            "max_files": policy.max_files,
            "accept": ",".join(policy.extensions),
            "limits": policy.describe(),
        }
        return _cors(request, response.json(data), origins)

    @app.route("/api/sesion", methods=["OPTIONS"])
    async def session_preflight(request: Request) -> HTTPResponse:
        return _cors(request, response.empty(), origins)

    @app.post("/api/sesion")
    async def new_session(request: Request) -> HTTPResponse:
        """A new signed conversation id for a widget: the only way into the web chat."""
        origin = (request.headers.get("origin") or "").rstrip("/")
        if origin and origin not in origins:
            return response.json({"error": "Este sitio no puede abrir conversaciones con el asistente."}, status=403)
        return _cors(request, response.json({"session_id": signer.issue()}, status=201, headers={"Cache-Control": "no-store"}), origins)

    @app.route("/api/adjuntos", methods=["OPTIONS"])
    async def upload_preflight(request: Request) -> HTTPResponse:
        return _cors(request, response.empty(), origins)

    @app.post("/api/adjuntos")
    async def upload(request: Request) -> HTTPResponse:
        origin = (request.headers.get("origin") or "").rstrip("/")
        if origin and origin not in origins:
            return response.json({"error": "Este sitio no puede enviar archivos al asistente."}, status=403)
        wait = upload_rate.admit(client_key(request, proxies))
        if wait:
            limited = response.json(
                {"error": UPLOAD_RATE_LIMITED, "code": "rate_limited"}, status=429, headers={"Retry-After": str(math.ceil(wait))}
            )
            return _cors(request, limited, origins)
        owner = signer.verify(upload_session(request))
        if owner is None:
            return _cors(request, response.json({"error": SESSION_INVALID, "code": "session"}, status=401), origins)
        files = request.files.getlist("archivo") if request.files else None
        if not files:
            return _cors(request, response.json({"error": "No recibí ningún archivo."}, status=400), origins)
        upload = files[0]
        try:
            stored = store.save(upload.name, upload.type, upload.body, owner=owner)
        except AttachmentRefused as refused:
            status = UPLOAD_REFUSAL_STATUS.get(refused.code, 400)
            headers = {"Retry-After": str(math.ceil(refused.retry_after))} if status == 429 and refused.retry_after else None
            refusal = response.json({"error": refused.message, "code": refused.code}, status=status, headers=headers)
            return _cors(request, refusal, origins)
        data: dict[str, Any] = {
            "id": stored.id,
            "name": stored.name,
            "content_type": stored.content_type,
            "size": stored.size,
        }
        return _cors(request, response.json(data, status=201), origins)

    # Transcript review for support leads (login required), same process and port.
    from bot.review.web import review_blueprint

    app.blueprint(review_blueprint(settings, catalog))

    @app.get("/salud")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    return app


def _page_csp(request: Request, settings: Settings) -> str:
    """The chat page loads only its own scripts and talks only to itself and Rasa."""
    rasa = rasa_public_url(request, settings)
    ws = rasa.replace("https://", "wss://").replace("http://", "ws://")
    return (
        "default-src 'self'; "
        f"connect-src 'self' {rasa} {ws}; "
        "img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    )


def serve(settings: Settings) -> None:
    """``python -m bot web``: one process, no auto-reload, quiet access log."""
    app = create_app(settings)
    app.run(host="0.0.0.0", port=settings.web_port, access_log=False, workers=1, motd=False)
