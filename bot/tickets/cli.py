"""``python -m bot tickets|outbox|jsm ...``: tickets, their delivery and JSM from the command line.

``tickets list --json`` is a contract other tools rely on (see bot/cli.py).
A process entry point: it reads the settings and builds what each command
needs; imports stay inside the commands so ``python -m bot catalog`` does
not load the database or HTTP libraries.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.tickets.model import Ticket

# The review app's pages of a ticket and of its conversation, for `tickets show`:
# passed in by bot/cli.py, since the tickets room never imports the review app.
ReviewLinks = Callable[["Settings", "Ticket"], dict[str, str]]


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cmd_tickets_list(args: argparse.Namespace) -> int:
    from bot.catalog import get_catalog
    from bot.settings import Settings
    from bot.tickets.factory import build_ticket_store
    from bot.tickets.model import DELIVERY_LABELS
    from bot.tickets.outbox_queue import OutboxQueue

    settings = Settings.from_env()
    store = build_ticket_store(settings, get_catalog())
    tickets = store.list(limit=args.limit)
    if args.json:
        _print_json([t.to_dict() for t in tickets])
        return 0
    if not tickets:
        print("No hay tickets.")
        return 0
    for t in tickets:
        item = f" / {t.item}" if t.item else ""
        when = f"{t.created_at:%Y-%m-%d %H:%M}"
        print(f"{t.key}  {when}  {t.status:<8} {t.request_type}{item}  <{t.email}>  [{t.channel}]{_delivery(t)}")
        if t.last_error and t.delivery_status != "delivered":
            print(f"    {'error' if t.delivery_status == 'failed' else 'último error'}: {t.last_error}")
    counts = {k: v for k, v in OutboxQueue(settings.tickets_db_url).delivery_counts().items() if k != "local"}
    if counts:
        parts = ", ".join(f"{n} {DELIVERY_LABELS.get(k, k)}" for k, n in sorted(counts.items()))
        print(f"Entrega a JSM (todos los tickets): {parts}.")
        if counts.get("failed"):
            print("Corrige la causa y vuelve a enviarlos con `python -m bot outbox retry --failed`.")
    return 0


def _delivery(ticket: "Ticket") -> str:
    """The JSM side of a ticket in one phrase; nothing for the local backend."""
    if ticket.delivery_status == "local":
        return ""
    if ticket.delivery_status == "delivered":
        status = f", {ticket.jsm_status}" if ticket.jsm_status else ""
        return f"  JSM: {ticket.jsm_key} (entregado{status})"
    if ticket.delivery_status == "failed":
        key = f" {ticket.jsm_key}" if ticket.jsm_key else ""
        return f"  JSM:{key} FALLIDO tras {ticket.delivery_attempts} intento(s)"
    when = ""
    if ticket.next_attempt_at and ticket.delivery_attempts:
        when = f", próximo intento {ticket.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
    key = f" {ticket.jsm_key}" if ticket.jsm_key else ""
    return f"  JSM:{key} {ticket.delivery_label} ({ticket.delivery_attempts} intento(s){when})"


def cmd_tickets_show(args: argparse.Namespace) -> int:
    from bot.catalog import get_catalog
    from bot.settings import Settings
    from bot.tickets.factory import build_ticket_store

    settings = Settings.from_env()
    ticket = build_ticket_store(settings, get_catalog()).get(args.key)
    if ticket is None:
        print(f"No existe el ticket {args.key}.", file=sys.stderr)
        return 1
    data = ticket.to_dict()
    links: Optional[ReviewLinks] = args.review_links
    if links is not None:
        # Both ways: the ticket's page in the review app, and the conversation behind it.
        data["revision"] = links(settings, ticket)
    _print_json(data)
    return 0


# Status names the embedded help desk reads as «resolved» without --resuelta (normalized).
RESOLVED_NAMES = (
    "resuelta",
    "resuelto",
    "cerrada",
    "cerrado",
    "completada",
    "completado",
    "finalizada",
    "solucionada",
    "resolved",
    "closed",
    "done",
    "completed",
)


def _agent_update(args: argparse.Namespace, kind: str, body: str, **extra: Any) -> int:
    """Record one piece of agent news on the embedded help desk, as JSM's webhook would (``local:<uuid>``)."""
    import uuid
    from datetime import datetime, timezone

    from bot.catalog import get_catalog
    from bot.settings import Settings
    from bot.thread import ThreadError, TicketThread, Update
    from bot.tickets.errors import TicketStoreError
    from bot.tickets.factory import build_ticket_store
    from bot.tickets.updates import UpdateRecorder

    settings = Settings.from_env()
    if settings.tickets.uses_jsm:
        print(
            "Con TICKETS_BACKEND=jsm la mesa de ayuda es JSM: los agentes responden y cambian el estado "
            "en la solicitud de JSM, y el asistente se lo hace llegar al cliente.",
            file=sys.stderr,
        )
        return 2
    if not body.strip():
        print("El texto está vacío.", file=sys.stderr)
        return 2
    store = build_ticket_store(settings, get_catalog())
    try:
        ticket = store.get(args.key)
        if ticket is None:
            print(f"No existe el ticket {args.key}. Revisa la clave con `python -m bot tickets list`.", file=sys.stderr)
            return 1
        news = Update(
            ticket=ticket.key,
            source=f"local:{uuid.uuid4()}",
            kind=kind,
            body=body.strip(),
            happened_at=datetime.now(timezone.utc),
            **extra,
        )
        recorded = UpdateRecorder(store, TicketThread(settings.tickets_db_url)).record(news)
    except (TicketStoreError, ThreadError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    if not recorded:
        print(f"{ticket.key} ya estaba en «{body.strip()}»: no hay nada nuevo que enviar al cliente.")
        return 0
    names = {"comment": "La respuesta", "status": "El cambio de estado", "csat": "La encuesta de satisfacción"}
    for message in recorded:
        print(f"{names.get(message.kind, message.kind)} de {ticket.key} quedó en cola para el cliente (#{message.id}).")
    return 0


def cmd_tickets_reply(args: argparse.Namespace) -> int:
    return _agent_update(args, "comment", args.text, author=(args.autor or "").strip() or None)


def cmd_tickets_status(args: argparse.Namespace) -> int:
    from bot.text import normalize

    done = args.resuelta or normalize(args.status) in RESOLVED_NAMES
    return _agent_update(args, "status", args.status, status_category="done" if done else "indeterminate")


def cmd_tickets_thread(args: argparse.Namespace) -> int:
    """A ticket's whole thread with each message's delivery state."""
    from dataclasses import asdict

    from bot.settings import Settings
    from bot.thread import ThreadError, TicketThread
    from bot.tickets.errors import TicketStoreError
    from bot.tickets.store import TicketStore

    settings = Settings.from_env()
    try:
        ticket = TicketStore(settings.tickets_db_url).get(args.key)
        messages = TicketThread(settings.tickets_db_url).messages(args.key) if ticket else []
    except (TicketStoreError, ThreadError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    if ticket is None:
        print(f"No existe el ticket {args.key}.", file=sys.stderr)
        return 1
    if args.json:
        rows = [asdict(m) | {"delivery_label": m.delivery_label} for m in messages]
        _print_json(json.loads(json.dumps(rows, default=lambda value: value.isoformat())))
        return 0
    if not messages:
        print(f"{ticket.key}: el hilo está vacío (nadie escribió después de crear el ticket).")
        return 0
    ways = {"customer": "→ cliente", "desk": "→ mesa"}
    kinds = {"comment": "comentario", "status": "estado", "csat": "encuesta", "handoff": "pide una persona"}
    for m in messages:
        what = f"{ways.get(m.direction, m.direction)} {kinds.get(m.kind, m.kind)}"
        who = f" {m.author}:" if m.author else ""
        via = f" vía {m.via}" if m.via else ""
        print(f"#{m.id} {m.created_at:%Y-%m-%d %H:%M} {what}{who} {m.body[:200]}")
        print(f"    {m.delivery_label}{via}" + (f" — error: {m.last_error}" if m.last_error else ""))
    return 0


def run_outbox(settings: "Settings", once: bool = False) -> int:
    """``python -m bot outbox run``: the delivery worker, in the foreground, until SIGTERM/SIGINT."""
    import logging
    import signal
    import threading

    from bot.attachments import AttachmentStore
    from bot.catalog import get_catalog
    from bot.tickets.delivery_text import transcripts_from
    from bot.tickets.errors import JsmConfigError, TicketStoreError
    from bot.tickets.factory import build_worker
    from bot.transcripts import TrackerReader

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s outbox: %(message)s")
    if not settings.tickets.uses_jsm:
        print("La entrega a JSM está desactivada: define TICKETS_BACKEND=jsm.", flush=True)
        return 2
    catalog = get_catalog()
    try:
        worker = build_worker(
            settings,
            catalog,
            heartbeat=not once,
            attachments=AttachmentStore.from_settings(catalog, settings),
            transcripts=transcripts_from(TrackerReader(settings.tracker_db_url)),
        )
    except (JsmConfigError, TicketStoreError) as exc:
        print(f"ERROR: {exc}", flush=True)
        return 2
    if once:
        worker.drain()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.run(stop)
    return 0


def cmd_outbox_run(args: argparse.Namespace) -> int:
    from bot.settings import Settings

    return run_outbox(Settings.from_env(), once=args.once)


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from bot.settings import Settings
    from bot.tickets.outbox_queue import OutboxQueue

    if not args.keys and not args.failed:
        print("Indica las claves de los tickets o --failed.", file=sys.stderr)
        return 2
    queued = OutboxQueue(Settings.from_env().tickets_db_url).requeue(args.keys, failed=args.failed)
    if not queued:
        print("No había tickets que volver a enviar.")
        return 1 if args.keys else 0
    print(f"En cola para entrega a JSM: {', '.join(sorted(queued))}")
    missing = sorted({k.strip().upper() for k in args.keys} - set(queued))
    if missing:
        print(f"No encontrados o en envío en este momento: {', '.join(missing)}", file=sys.stderr)
    return 0


def cmd_jsm_sync(args: argparse.Namespace) -> int:
    from bot.catalog import get_catalog
    from bot.settings import Settings
    from bot.tickets.errors import JsmConfigError, JsmError
    from bot.tickets.jsm_client import JsmClient
    from bot.tickets.jsm_mapping import JsmMapping
    from bot.tickets.jsm_sync import sync_mapping

    config = Settings.from_env().tickets.jsm
    try:
        client = JsmClient(config)
    except JsmConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    previous = None
    if config.mapping_file.exists():
        try:
            previous = JsmMapping.load(config.mapping_file)
        except JsmConfigError as exc:
            print(f"Aviso: se ignora el mapa anterior ({exc}).", file=sys.stderr)
    try:
        report = sync_mapping(client, get_catalog(), previous)
    except JsmError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    catalog_types = get_catalog().request_types
    if not args.dry_run:
        report.mapping.dump(config.mapping_file)
    desk = f" «{report.desk_name}»" if report.desk_name else ""
    verb = "Se escribiría" if args.dry_run else "Mapa escrito en"
    print(f"Mesa de servicio {config.service_desk_id}{desk}. {verb} {config.mapping_file}:")
    linked = len(report.mapping.request_types)
    print(f"  {linked} de {len(catalog_types)} tipos de solicitud del catálogo enlazados con JSM.")
    if report.missing_in_jsm:
        print("En el catálogo pero no en JSM (sus tickets esperarán en la cola hasta que existan):")
        for rt in report.missing_in_jsm:
            print(f"  - {rt.name}  [{rt.id}]")
    if report.extra_in_jsm:
        print("En JSM pero no en el catálogo (el asistente no los ofrece):")
        for jsm_type in report.extra_in_jsm:
            print(f"  - {jsm_type.get('name')}  [id {jsm_type.get('id')}]")
    for rt, spec in report.missing_fields:
        print(f"Campo sin equivalente en JSM: {rt.name} / {spec.label}")
    for rt, spec, option in report.missing_options:
        print(f"Opción sin equivalente en JSM: {rt.name} / {spec.label} / {option}")
    for rt, jsm_field in report.unfilled_required:
        where = f"{rt.name} / {jsm_field.get('name')} [{jsm_field.get('fieldId')}]"
        print(f"Campo obligatorio en JSM que el asistente no llena: {where}")
    if report.cannot_raise_on_behalf:
        names = ", ".join(rt.name for rt in report.cannot_raise_on_behalf)
        print(
            f"El agente {config.email} no puede crear solicitudes en nombre de clientes en: {names}. "
            "Debe ser agente con licencia de la mesa."
        )
    if report.complete and not report.extra_in_jsm:
        print("El catálogo y JSM coinciden.")
    return 1 if args.strict and not report.complete else 0


def register(sub: Any, review_links: Optional[ReviewLinks] = None) -> None:
    """Add the tickets, outbox and jsm commands; ``review_links`` adds the review pages to ``tickets show``."""
    tickets = sub.add_parser("tickets", help="tickets del almacén (BOT_DATA_DIR / TICKETS_DB_URL)")
    tickets_sub = tickets.add_subparsers(dest="tickets_command", required=True)
    listing = tickets_sub.add_parser("list", help="lista los tickets, del más nuevo al más antiguo")
    listing.add_argument("--json", action="store_true", help="salida JSON")
    listing.add_argument("--limit", type=int, default=None)
    listing.set_defaults(func=cmd_tickets_list)
    show = tickets_sub.add_parser("show", help="muestra un ticket")
    show.add_argument("key")
    show.set_defaults(func=cmd_tickets_show, review_links=review_links)
    reply = tickets_sub.add_parser("reply", help="responde al cliente como agente (mesa de ayuda embebida)")
    reply.add_argument("key")
    reply.add_argument("text")
    reply.add_argument("--autor", default=None, help="nombre del agente que firma la respuesta")
    reply.set_defaults(func=cmd_tickets_reply)
    status = tickets_sub.add_parser("status", help="cambia el estado del ticket y avisa al cliente (embebida)")
    status.add_argument("key")
    status.add_argument("status")
    status.add_argument("--resuelta", action="store_true", help="el estado cuenta como resuelto (pide la encuesta)")
    status.set_defaults(func=cmd_tickets_status)
    thread = tickets_sub.add_parser("thread", help="el hilo del ticket: mensajes de agentes y cliente, con su entrega")
    thread.add_argument("key")
    thread.add_argument("--json", action="store_true", help="salida JSON")
    thread.set_defaults(func=cmd_tickets_thread)

    outbox = sub.add_parser("outbox", help="entrega de tickets a Jira Service Management (TICKETS_BACKEND=jsm)")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    run = outbox_sub.add_parser("run", help="proceso de entrega: envía y reintenta los tickets pendientes")
    run.add_argument("--once", action="store_true", help="entrega lo pendiente y termina")
    run.set_defaults(func=cmd_outbox_run)
    retry = outbox_sub.add_parser("retry", help="vuelve a poner en cola tickets (fallidos o locales)")
    retry.add_argument("keys", nargs="*", help="claves, p. ej. ECO-000123")
    retry.add_argument("--failed", action="store_true", help="todos los tickets con entrega fallida")
    retry.set_defaults(func=cmd_outbox_retry)

    jsm = sub.add_parser("jsm", help="Jira Service Management")
    jsm_sub = jsm.add_subparsers(dest="jsm_command", required=True)
    sync = jsm_sub.add_parser(
        "sync", help="lee tipos de solicitud y campos de la mesa y escribe el mapa (JSM_MAPPING_FILE)"
    )
    sync.add_argument("--dry-run", action="store_true", help="solo informa; no escribe el mapa")
    sync.add_argument("--strict", action="store_true", help="termina con error si al catálogo le falta algo en JSM")
    sync.set_defaults(func=cmd_jsm_sync)
