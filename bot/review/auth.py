"""Logging leads in and out, and the guard every other review page and form goes through.

Every page and export requires a logged-in lead; the only exceptions are the
login form itself and the stylesheet. Forms carry a CSRF token: the login
form's in a cookie of its own, the others' in the lead's session.
"""

from __future__ import annotations

import asyncio
import secrets
from functools import wraps
from typing import Any, Callable, Coroutine, Optional
from urllib.parse import urlencode

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.review import links
from bot.review.accounts import USERNAME_LENGTH, LoginThrottled, Session, same_token
from bot.review.room import ReviewRoom, room_of
from bot.review.views import HERE, security_headers

SESSION_COOKIE = "revision_sesion"
LOGIN_CSRF_COOKIE = "revision_csrf"

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]


def _wait_text(seconds: int) -> str:
    """How long to wait, in seconds as the Retry-After header says, and in minutes when that helps."""
    text = f"Espera {seconds} segundo{'s' if seconds != 1 else ''}"
    if seconds >= 120:
        text += f" (unos {round(seconds / 60)} minutos)"
    return text + " antes de volver a intentarlo."


def _safe_next(value: Optional[str]) -> str:
    """Only a review page of this site: a login link must not send the lead anywhere else."""
    if value and value.startswith(links.PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return f"{links.PREFIX}/conversaciones"


def _set_cookie(room: ReviewRoom, scheme: str, resp: HTTPResponse, name: str, value: str, max_age: int) -> None:
    """``scheme`` as our proxies report it: behind TLS termination the socket itself is plain HTTP."""
    resp.cookies[name] = value
    cookie = resp.cookies[name]
    cookie["path"] = links.PREFIX
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["max-age"] = max_age
    if scheme == "https" or room.secure_cookies:
        cookie["secure"] = True


def requires_lead(handler: Handler) -> Handler:
    """The handler runs only for a logged-in lead (and, for a form, with the session's CSRF token)."""

    @wraps(handler)
    async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        room = room_of(request)
        session = await asyncio.to_thread(room.accounts.session, request.cookies.get(SESSION_COOKIE))
        if session is None:
            target = request.path + (f"?{request.query_string}" if request.query_string else "")
            return security_headers(response.redirect(f"{links.PREFIX}/entrar?{urlencode({'siguiente': target})}"))
        if request.method == "POST" and not session.csrf_ok(request.form.get("csrf")):
            return room.views.error(
                session, 403, "La solicitud no es válida (token CSRF). Recarga la página e inténtalo de nuevo."
            )
        return await handler(request, session, *args, **kwargs)

    return guarded


async def login_form(request: Request) -> HTTPResponse:
    room = room_of(request)
    token = secrets.token_urlsafe(24)
    resp = room.views.render("login.html", None, csrf=token, next=_safe_next(request.args.get("siguiente")), error=None)
    _set_cookie(room, room.proxies.scheme(request), resp, LOGIN_CSRF_COOKIE, token, 3600)
    return resp


async def login(request: Request) -> HTTPResponse:
    room = room_of(request)
    form = request.form
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    return await asyncio.to_thread(
        _login,
        room,
        (form.get("usuario") or "").strip(),
        form.get("clave") or "",
        _safe_next(form.get("siguiente")),
        cookie_token,
        same_token(cookie_token, form.get("csrf")),
        room.proxies.client_network(request),
        room.proxies.scheme(request),
    )


def _login(
    room: ReviewRoom,
    username: str,
    password: str,
    target: str,
    csrf: str,
    csrf_ok: bool,
    network: str,
    scheme: str,
) -> HTTPResponse:
    """The login attempt: argon2 and SQL, so it runs in a worker thread."""
    views = room.views
    if not csrf_ok:
        return views.render(
            "login.html",
            None,
            status=403,
            csrf=csrf,
            next=target,
            error="La sesión del formulario caducó. Vuelve a intentarlo.",
        )
    shown = username[:USERNAME_LENGTH]  # typed back into the form; no account has a longer name
    try:
        session = room.accounts.login(username, password, network)
    except LoginThrottled as wait:
        resp = views.render(
            "login.html",
            None,
            status=429,
            csrf=csrf,
            next=target,
            username=shown,
            error=f"Demasiados intentos fallidos. {_wait_text(wait.seconds)}",
        )
        resp.headers["Retry-After"] = str(wait.seconds)
        return resp
    if session is None:
        left = room.accounts.attempts_left(username, network)
        warning = ""
        if left <= 3:
            warning = (
                f" Te queda{'n' if left != 1 else ''} {left} intento{'s' if left != 1 else ''}; "
                "después, cada intento fallido alarga la espera antes del siguiente."
            )
        return views.render(
            "login.html",
            None,
            status=401,
            csrf=csrf,
            next=target,
            username=shown,
            error="Usuario o contraseña incorrectos." + warning,
        )
    resp = security_headers(response.redirect(target))
    _set_cookie(room, scheme, resp, SESSION_COOKIE, session.token, int(room.accounts.session_length.total_seconds()))
    del resp.cookies[LOGIN_CSRF_COOKIE]
    return resp


@requires_lead
async def logout(request: Request, session: Session) -> HTTPResponse:
    await asyncio.to_thread(room_of(request).accounts.logout, session.token)
    resp = security_headers(response.redirect(f"{links.PREFIX}/entrar"))
    del resp.cookies[SESSION_COOKIE]
    return resp


async def stylesheet(_: Request) -> HTTPResponse:
    return response.raw((HERE / "static" / "review.css").read_bytes(), content_type="text/css; charset=utf-8")


def register(bp: Blueprint) -> None:
    bp.add_route(login_form, "/entrar", methods=["GET"])
    bp.add_route(login, "/entrar", methods=["POST"])
    bp.add_route(logout, "/salir", methods=["POST"])
    bp.add_route(stylesheet, "/estilos.css", methods=["GET"])
