"""The leads' review pages, mounted under /revision on the project's web server.

Every page and export requires a logged-in lead; the only exceptions are the
login form itself and the stylesheet. Pages are server-rendered with Jinja2
(autoescaped: customer text is always shown as text) and carry no scripts.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.catalog import Catalog
from bot.contacts import find_emails, find_phones
from bot.privacy import mask_cards, mask_email, mask_phone
from bot.review import links
from bot.review.accounts import USERNAME_LENGTH, Accounts, LoginThrottled, Session, same_token
from bot.review.analysis import LOW_CONFIDENCE, OUTCOME_LABELS, OUTCOME_ORDER, is_doubtful
from bot.review.charts import day_bars, outcome_rows
from bot.review.db import engine_for
from bot.review.index import ConversationIndex, Filters, review_zone
from bot.review.labels import Labels
from bot.review.proxies import TrustedProxies
from bot.settings import Settings
from bot.tickets import TicketStore
from bot.transcripts import CUSTOMER, TrackerReader

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "revision_sesion"
LOGIN_CSRF_COOKIE = "revision_csrf"
FULL_RECORD_ACTION = "ver_datos_completos"
FULL_RECORD_WINDOW = timedelta(minutes=15)
EXPORT_LIMIT = 10_000

Handler = Callable[..., Awaitable[HTTPResponse]]


def _mask_text(text: str, catalog: Catalog, full: bool) -> str:
    """Cards always hidden; e-mails and phones partly masked unless ``full``."""
    text = mask_cards(text)
    if full:
        return text
    found = sorted(find_emails(text) + find_phones(text, catalog.country_ids), key=lambda f: f.start, reverse=True)
    for item in found:
        original = text[item.start : item.end]
        masked = mask_email(original) if item.entity == "email" else mask_phone(original)
        text = text[: item.start] + masked + text[item.end :]
    return text


def _customer(email: Optional[str], phone: Optional[str], sender_id: str, full: bool) -> str:
    if email:
        return email if full else mask_email(email)
    if phone:
        return phone if full else mask_phone(phone)
    if sender_id.startswith("whatsapp:"):
        number = sender_id.split(":", 1)[1]
        return sender_id if full else "whatsapp:" + mask_phone(number)
    return "cliente " + sender_id[:8]


def _security_headers(resp: HTTPResponse) -> HTTPResponse:
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def _secure_cookies(scheme: str) -> bool:
    """``scheme`` as our proxies report it: behind TLS termination the socket itself is plain HTTP."""
    return scheme == "https" or os.environ.get("REVIEW_SECURE_COOKIES", "").lower() in ("1", "true", "sí", "si")


def _set_cookie(scheme: str, resp: HTTPResponse, name: str, value: str, max_age: int) -> None:
    resp.cookies[name] = value
    cookie = resp.cookies[name]
    cookie["path"] = links.PREFIX
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["max-age"] = max_age
    if _secure_cookies(scheme):
        cookie["secure"] = True


LIST_COLUMNS = ["conversacion", "inicio", "canal", "cliente", "tipo_de_solicitud", "resultado", "tickets", "turnos", "turnos_no_entendidos"]
TRANSCRIPT_COLUMNS = ["hora", "quien", "texto", "intent", "confianza", "opciones"]


# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """A cell a spreadsheet shows as text: customer words such as «=HYPERLINK(...)» would run
    when a lead opens the export; the leading quote (OWASP's advice) makes them plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str) -> HTTPResponse:
    """UTF-8 CSV with a BOM, so spreadsheet programs show accents correctly; no cell is a formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows({key: _inert(value) for key, value in row.items()} for row in rows)
    return _security_headers(response.raw(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    ))


def _wait_text(seconds: int) -> str:
    """How long to wait, in seconds as the Retry-After header says, and in minutes when that helps."""
    text = f"Espera {seconds} segundo{'s' if seconds != 1 else ''}"
    if seconds >= 120:
        text += f" (unos {round(seconds / 60)} minutos)"
    return text + " antes de volver a intentarlo."


def _safe_next(value: Optional[str]) -> str:
    if value and value.startswith(links.PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return f"{links.PREFIX}/conversaciones"


def review_blueprint(settings: Settings, catalog: Catalog) -> Blueprint:
    proxies = TrustedProxies.from_env()
    engine = engine_for(os.environ.get("REVIEW_DB_URL") or settings.tickets_db_url)
    accounts = Accounts(engine)
    reader = TrackerReader(settings.tracker_db_url)
    index = ConversationIndex(reader, engine)
    labels = Labels(engine)
    tickets = TicketStore(settings.tickets_db_url, prefix=catalog.ticket_prefix)
    zone = review_zone()
    pages = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]))
    request_type_names = {rt.id: rt.name for rt in catalog.request_types}
    intent_choices = (
        [(rt.intent, rt.name) for rt in catalog.request_types]
        + [(r.intent, f"{r.name} (opción eliminada)") for r in catalog.retired]
        + sorted(GENERAL_INTENTS.items(), key=lambda item: item[1])
    )

    def local(moment: Optional[datetime], fmt: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(zone).strftime(fmt) if moment else ""

    pages.filters.update(
        local=local,
        outcome_label=lambda o: OUTCOME_LABELS.get(o, o),
        type_name=lambda t: request_type_names.get(t or "", t or "—"),
        conversation_path=links.conversation_path,
        ticket_path=links.ticket_path,
        percent=lambda v: f"{v * 100:.1f} %".replace(".", ","),
        channel=lambda c: CHANNEL_LABELS.get(c or "", c or "—"),
        access_action=lambda a: ACCESS_LABELS.get(a, a),
        masked=lambda text: _mask_text(str(text or ""), catalog, full=False),
        plural=lambda n, one, many: f"{n} {one if n == 1 else many}",
    )

    def render(name: str, session: Optional[Session], status: int = 200, **context: Any) -> HTTPResponse:
        html = pages.get_template(name).render(
            session=session, prefix=links.PREFIX, portal=catalog.portal, zone=str(zone), **context
        )
        return _security_headers(response.html(html, status=status))

    def requires_lead(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            session = accounts.session(request.cookies.get(SESSION_COOKIE))
            if session is None:
                target = request.path + (f"?{request.query_string}" if request.query_string else "")
                return _security_headers(
                    response.redirect(f"{links.PREFIX}/entrar?{urlencode({'siguiente': target})}")
                )
            if request.method == "POST" and not session.csrf_ok(request.form.get("csrf")):
                return render("error.html", session, status=403, message="La solicitud no es válida (token CSRF). Recarga la página e inténtalo de nuevo.")
            return await handler(request, session, *args, **kwargs)

        return guarded

    bp = Blueprint("revision", url_prefix=links.PREFIX)

    # ------------------------------------------------------------- login
    @bp.get("/entrar")
    async def login_form(request: Request) -> HTTPResponse:
        token = secrets.token_urlsafe(24)
        resp = render("login.html", None, csrf=token, next=_safe_next(request.args.get("siguiente")), error=None)
        _set_cookie(proxies.scheme(request), resp, LOGIN_CSRF_COOKIE, token, 3600)
        return resp

    @bp.post("/entrar")
    async def login(request: Request) -> HTTPResponse:
        form = request.form
        username = (form.get("usuario") or "").strip()
        target = _safe_next(form.get("siguiente"))
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not same_token(cookie_token, form.get("csrf")):
            return render("login.html", None, status=403, csrf=cookie_token, next=target,
                          error="La sesión del formulario caducó. Vuelve a intentarlo.")
        shown = username[:USERNAME_LENGTH]  # typed back into the form; no account has a longer name
        try:
            session = accounts.login(username, form.get("clave") or "", proxies.client_network(request))
        except LoginThrottled as wait:
            resp = render("login.html", None, status=429, csrf=cookie_token, next=target, username=shown,
                          error=f"Demasiados intentos fallidos. {_wait_text(wait.seconds)}")
            resp.headers["Retry-After"] = str(wait.seconds)
            return resp
        if session is None:
            left = accounts.attempts_left(username)
            warning = ""
            if left <= 3:
                warning = (f" Te queda{'n' if left != 1 else ''} {left} intento{'s' if left != 1 else ''}; "
                           "después, cada intento fallido alarga la espera antes del siguiente.")
            return render("login.html", None, status=401, csrf=cookie_token, next=target, username=shown,
                          error="Usuario o contraseña incorrectos." + warning)
        resp = _security_headers(response.redirect(target))
        _set_cookie(proxies.scheme(request), resp, SESSION_COOKIE, session.token, int(accounts.session_length.total_seconds()))
        del resp.cookies[LOGIN_CSRF_COOKIE]
        return resp

    @bp.post("/salir")
    @requires_lead
    async def logout(request: Request, session: Session) -> HTTPResponse:
        accounts.logout(session.token)
        resp = _security_headers(response.redirect(f"{links.PREFIX}/entrar"))
        del resp.cookies[SESSION_COOKIE]
        return resp

    @bp.get("/estilos.css")
    async def stylesheet(_: Request) -> HTTPResponse:
        return response.raw((HERE / "static" / "review.css").read_bytes(), content_type="text/css; charset=utf-8")

    # -------------------------------------------------------------- list
    @bp.get("/")
    @requires_lead
    async def home(request: Request, session: Session) -> HTTPResponse:
        return response.redirect(f"{links.PREFIX}/conversaciones")

    def _list_rows(rows: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "row": row,
                "customer": _customer(row.email, row.phone, row.sender_id, full=False),
                "path": links.conversation_path(row.sender_id),
            }
            for row in rows
        ]

    @bp.get("/conversaciones")
    @requires_lead
    async def conversations(request: Request, session: Session) -> HTTPResponse:
        index.refresh()
        filters = Filters.from_args(request.args)
        rows, total = index.search(filters)
        pages_count = max(1, -(-total // 25))
        if filters.page > pages_count:
            return response.redirect(f"{links.PREFIX}/conversaciones?{urlencode(filters.as_args(page=pages_count))}")
        return render(
            "conversations.html", session, notices=_filter_notices(request.args, filters),
            filters=filters, rows=_list_rows(rows), total=total, pages=pages_count,
            channels=index.channels(), catalog=catalog, outcomes=[(o, OUTCOME_LABELS[o]) for o in OUTCOME_ORDER],
            query=lambda **changes: urlencode(filters.as_args(**changes)),
        )

    def _export_rows(filters: Filters) -> list[dict[str, Any]]:
        rows, _ = index.search(Filters(**{**filters.__dict__, "page": 1}), page_size=EXPORT_LIMIT)
        return [
            {
                "conversacion": row.sender_id if not row.sender_id.startswith("whatsapp:") else _customer(None, None, row.sender_id, False),
                "inicio": local(row.started_at, "%Y-%m-%d %H:%M:%S"),
                "canal": row.channel or "",
                "cliente": _customer(row.email, row.phone, row.sender_id, full=False),
                "tipo_de_solicitud": request_type_names.get(row.last_request_type or "", ""),
                "resultado": OUTCOME_LABELS.get(row.outcome, row.outcome),
                "tickets": " ".join(row.tickets),
                "turnos": row.turns,
                "turnos_no_entendidos": row.missed_turns,
            }
            for row in rows
        ]

    def _export(session: Session, fmt: str, data: list[dict[str, Any]], columns: Any, name: str, action: str, subject: str) -> HTTPResponse:
        """One export as CSV or JSON, logged as «<action>_<fmt>» with what it covered."""
        accounts.log_access(session.username, f"{action}_{fmt}", subject)
        if fmt == "csv":
            return _csv_response(data, columns, f"{name}.csv")
        return _security_headers(response.json(data, dumps=lambda d: json.dumps(d, ensure_ascii=False)))

    async def _list_export(request: Request, session: Session, fmt: str) -> HTTPResponse:
        index.refresh()
        filters = Filters.from_args(request.args)
        subject = urlencode(filters.as_args()) or "todas"
        return _export(session, fmt, _export_rows(filters), LIST_COLUMNS, "conversaciones", "exportar_lista", subject)

    @bp.get("/conversaciones.csv")
    @requires_lead
    async def conversations_csv(request: Request, session: Session) -> HTTPResponse:
        return await _list_export(request, session, "csv")

    @bp.get("/conversaciones.json")
    @requires_lead
    async def conversations_json(request: Request, session: Session) -> HTTPResponse:
        return await _list_export(request, session, "json")

    # -------------------------------------------------------- transcript
    def _conversation(token: str) -> Optional[str]:
        sender = links.sender_for(token)
        return sender if sender and reader.events(sender) else None

    def _turns(sender: str, full: bool) -> list[dict[str, Any]]:
        found_labels = labels.for_conversation(sender)
        turns = []
        for u in reader.conversation(sender).utterances:
            low = u.speaker == CUSTOMER and not u.payload and is_doubtful(u.intent, u.confidence)
            turns.append({
                "u": u,
                "text": _mask_text(u.text, catalog, full),
                "low": low,
                "label": found_labels.get(u.event_id),
                "buttons": [title for title, _ in u.buttons],
            })
        return turns

    @bp.get("/c/<token:str>")
    @requires_lead
    async def transcript(request: Request, session: Session, token: str) -> HTTPResponse:
        sender = _conversation(token)
        if sender is None:
            return render("error.html", session, status=404, message="No existe esa conversación.")
        index.refresh()
        row = index.get(sender)
        full = accounts.has_recent_access(session.username, FULL_RECORD_ACTION, sender, FULL_RECORD_WINDOW)
        return render(
            "transcript.html", session,
            token=token, row=row, turns=_turns(sender, full), full=full,
            customer=_customer(row.email if row else None, row.phone if row else None, sender, full),
            intents=intent_choices, intent_values={value for value, _ in intent_choices}, low_confidence=LOW_CONFIDENCE,
        )

    @bp.post("/c/<token:str>/completo")
    @requires_lead
    async def full_record(request: Request, session: Session, token: str) -> HTTPResponse:
        sender = _conversation(token)
        if sender is None:
            return render("error.html", session, status=404, message="No existe esa conversación.")
        accounts.log_access(session.username, FULL_RECORD_ACTION, sender)
        return response.redirect(f"{links.PREFIX}/c/{token}")

    @bp.post("/c/<token:str>/etiqueta")
    @requires_lead
    async def mark(request: Request, session: Session, token: str) -> HTTPResponse:
        sender = _conversation(token)
        intent = request.form.get("intent") or ""
        if sender is None or intent not in {i for i, _ in intent_choices}:
            return render("error.html", session, status=400, message="Intent o conversación no válidos.")
        try:
            event_id = int(request.form.get("evento") or 0)
        except ValueError:
            event_id = 0
        utterance = next((u for u in reader.conversation(sender).utterances if u.event_id == event_id and u.speaker == CUSTOMER), None)
        if utterance is None:
            return render("error.html", session, status=400, message="Ese mensaje no existe en la conversación.")
        labels.mark(sender, event_id, utterance.text, utterance.intent, intent, session.username)
        return response.redirect(f"{links.PREFIX}/c/{token}#turno-{event_id}")

    def _transcript_export(sender: str) -> list[dict[str, Any]]:
        return [
            {
                "hora": local(u.at, "%Y-%m-%d %H:%M:%S"),
                "quien": u.speaker,
                "texto": _mask_text(u.text, catalog, full=False),
                "intent": u.intent or "",
                "confianza": round(u.confidence, 3) if u.confidence is not None else "",
                "opciones": " | ".join(title for title, _ in u.buttons),
            }
            for u in reader.conversation(sender).utterances
        ]

    def _transcript_file(session: Session, token: str, fmt: str) -> HTTPResponse:
        sender = _conversation(token)
        if sender is None:
            return render("error.html", session, status=404, message="No existe esa conversación.")
        return _export(session, fmt, _transcript_export(sender), TRANSCRIPT_COLUMNS, "transcripcion", "exportar_transcripcion", sender)

    @bp.get("/c/<token:str>/transcripcion.json")
    @requires_lead
    async def transcript_json(request: Request, session: Session, token: str) -> HTTPResponse:
        return _transcript_file(session, token, "json")

    @bp.get("/c/<token:str>/transcripcion.csv")
    @requires_lead
    async def transcript_csv(request: Request, session: Session, token: str) -> HTTPResponse:
        return _transcript_file(session, token, "csv")

    # ------------------------------------------------------------- ticket
    @bp.get("/tickets/<key:str>")
    @requires_lead
    async def ticket(request: Request, session: Session, key: str) -> HTTPResponse:
        found = tickets.get(key)
        if found is None:
            return render("error.html", session, status=404, message=f"No existe el ticket {key}.")
        full = accounts.has_recent_access(session.username, FULL_RECORD_ACTION, found.conversation_id, FULL_RECORD_WINDOW)
        return render(
            "ticket.html", session, ticket=found, full=full,
            email=found.email if full else mask_email(found.email),
            phone=(found.phone if full else mask_phone(found.phone or "")) if found.phone else "",
            description=_mask_text(found.description or "", catalog, full),
            original=_mask_text(found.original_text or "", catalog, full),
            transcript=links.conversation_path(found.conversation_id),
        )

    # ------------------------------------------------------------ overview
    @bp.get("/resumen")
    @requires_lead
    async def overview(request: Request, session: Session) -> HTTPResponse:
        index.refresh()
        stats = index.stats()
        return render(
            "overview.html", session,
            stats=stats, days=day_bars(stats), rows=outcome_rows(stats, request_type_names),
            outcomes=[(o, OUTCOME_LABELS[o]) for o in OUTCOME_ORDER], access=accounts.access_log(20),
        )

    return bp


def _filter_notices(args: Any, filters: Filters) -> list[str]:
    """Why a filter the lead typed did not apply, instead of ignoring it silently."""
    notices = []
    for name, label, parsed in (("desde", "Desde", filters.date_from), ("hasta", "Hasta", filters.date_to)):
        raw = str(args.get(name) or "").strip()
        if raw and parsed is None:
            notices.append(f"La fecha «{raw}» de «{label}» no es válida (usa AAAA-MM-DD); no se aplicó.")
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        notices.append("«Desde» es posterior a «Hasta»: ningún día cabe en ese rango.")
    return notices


# Channel codes as leads know them.
CHANNEL_LABELS = {"socketio": "Chat web", "rest": "API REST", "whatsapp": "WhatsApp", "teams": "Microsoft Teams"}

# What the access log records, in words.
ACCESS_LABELS = {
    FULL_RECORD_ACTION: "Vio los datos completos",
    "exportar_lista_csv": "Exportó la lista (CSV)",
    "exportar_lista_json": "Exportó la lista (JSON)",
    "exportar_transcripcion_csv": "Exportó una transcripción (CSV)",
    "exportar_transcripcion_json": "Exportó una transcripción (JSON)",
}

# Conversation mechanics a lead may also assign (a greeting misread as a request...).
GENERAL_INTENTS = {
    "greet": "Saludo",
    "goodbye": "Despedida",
    "thanks": "Agradecimiento",
    "affirm": "Sí / confirmar",
    "deny": "No",
    "cancel": "Cancelar",
    "help": "Pide ayuda",
    "menu": "Pide el menú",
    "bot_challenge": "¿Eres un robot?",
    "chitchat": "Conversación casual",
    "out_of_scope": "Fuera de alcance",
    "inform": "Da un dato (correo, teléfono, país)",
    "correct": "Corrige un dato",
    "ask_request_type_info": "Pregunta qué es una opción",
    "choose_category": "Elige una categoría",
    "check_status": "Estado de una solicitud",
}
