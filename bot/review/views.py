"""What leads read on the review pages: templates, masked customer data and the words for codes.

Pages are server-rendered with Jinja2, autoescaped (customer text is always
shown as text), and carry no scripts; every answer gets headers that keep it
out of frames, caches and other sites' referrers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import response
from sanic.response import HTTPResponse

from bot.catalog import Catalog
from bot.contacts import find_emails, find_phones
from bot.privacy import mask_cards, mask_email, mask_phone
from bot.review import links
from bot.review.accounts import Session
from bot.review.analysis import OUTCOME_LABELS
from bot.review.intake_charts import number
from bot.review.satisfaction import average_text

HERE = Path(__file__).resolve().parent
FULL_RECORD_ACTION = "ver_datos_completos"

# Channel codes as leads know them.
CHANNEL_LABELS = {"socketio": "Chat web", "rest": "API REST", "whatsapp": "WhatsApp", "teams": "Microsoft Teams"}

# What the access log records, in words.
ACCESS_LABELS = {
    FULL_RECORD_ACTION: "Vio los datos completos",
    "exportar_lista_csv": "Exportó la lista (CSV)",
    "exportar_lista_json": "Exportó la lista (JSON)",
    "exportar_transcripcion_csv": "Exportó una transcripción (CSV)",
    "exportar_transcripcion_json": "Exportó una transcripción (JSON)",
    "exportar_csat_csv": "Exportó las encuestas de satisfacción (CSV)",
    "exportar_csat_json": "Exportó las encuestas de satisfacción (JSON)",
    "exportar_articulos_csv": "Exportó las cifras de artículos (CSV)",
    "exportar_articulos_json": "Exportó las cifras de artículos (JSON)",
    "exportar_cifras_embudo_csv": "Exportó el embudo (CSV)",
    "exportar_cifras_embudo_json": "Exportó el embudo (JSON)",
    "exportar_cifras_esfuerzo_csv": "Exportó el esfuerzo (CSV)",
    "exportar_cifras_esfuerzo_json": "Exportó el esfuerzo (JSON)",
    "exportar_cifras_comprension_csv": "Exportó la comprensión (CSV)",
    "exportar_cifras_comprension_json": "Exportó la comprensión (JSON)",
    "exportar_cifras_contencion_csv": "Exportó la contención (CSV)",
    "exportar_cifras_contencion_json": "Exportó la contención (JSON)",
    "exportar_cifras_satisfaccion_csv": "Exportó las cifras de satisfacción (CSV)",
    "exportar_cifras_satisfaccion_json": "Exportó las cifras de satisfacción (JSON)",
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


def mask_text(text: str, catalog: Catalog, full: bool) -> str:
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


def customer(email: Optional[str], phone: Optional[str], sender_id: str, full: bool) -> str:
    """Who the customer is, as much of it as the lead may see."""
    if email:
        return email if full else mask_email(email)
    if phone:
        return phone if full else mask_phone(phone)
    if sender_id.startswith("whatsapp:"):
        number = sender_id.split(":", 1)[1]
        return sender_id if full else "whatsapp:" + mask_phone(number)
    return "cliente " + sender_id[:8]


def security_headers(resp: HTTPResponse) -> HTTPResponse:
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


class Views:
    """The templates with the catalog's names and the support team's time zone, loaded once."""

    def __init__(self, catalog: Catalog, zone: ZoneInfo) -> None:
        self.catalog = catalog
        self.zone = zone
        self.request_type_names = {rt.id: rt.name for rt in catalog.request_types}
        # What a lead may mark a customer message as: options, retired options, conversation mechanics.
        self.intent_choices = (
            [(rt.intent, rt.name) for rt in catalog.request_types]
            + [(r.intent, f"{r.name} (opción eliminada)") for r in catalog.retired]
            + sorted(GENERAL_INTENTS.items(), key=lambda item: item[1])
        )
        self.pages = Environment(
            loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"])
        )
        self.pages.filters.update(
            local=self.local,
            outcome_label=lambda o: OUTCOME_LABELS.get(o, o),
            type_name=lambda t: self.request_type_names.get(t or "", t or "—"),
            conversation_path=links.conversation_path,
            ticket_path=links.ticket_path,
            thread_path=links.thread_path,
            percent=lambda v: f"{v * 100:.1f} %".replace(".", ","),
            average=average_text,
            channel=lambda c: CHANNEL_LABELS.get(c or "", c or "—"),
            access_action=lambda a: ACCESS_LABELS.get(a, a),
            masked=lambda text: mask_text(str(text or ""), catalog, full=False),
            plural=lambda n, one, many: f"{n} {one if n == 1 else many}",
            num=number,
        )

    def local(self, moment: Optional[datetime], fmt: str = "%Y-%m-%d %H:%M") -> str:
        """``moment`` on the support team's clock."""
        return moment.astimezone(self.zone).strftime(fmt) if moment else ""

    def mask(self, text: str, full: bool) -> str:
        return mask_text(text, self.catalog, full)

    def render(self, name: str, session: Optional[Session], status: int = 200, **context: Any) -> HTTPResponse:
        html = self.pages.get_template(name).render(
            session=session, prefix=links.PREFIX, portal=self.catalog.portal, zone=str(self.zone), **context
        )
        return security_headers(response.html(html, status=status))

    def error(self, session: Optional[Session], status: int, message: str) -> HTTPResponse:
        return self.render("error.html", session, status=status, message=message)
