"""``python -m bot followup run|retry``: the follow-up worker process and its operator's commands.

``run`` is what the launcher starts (always: with the embedded help desk
the CLI's replies reach WhatsApp and Teams customers through it too). The
customers' side and the JSM side run in two threads, so JSM being slow
(its timeouts are long) never holds up a message to a customer.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from bot.attachments import AttachmentStore
from bot.catalog import get_catalog
from bot.followup.senders import customer_delivery
from bot.followup.worker import HEARTBEAT_FILE, FollowupWorker
from bot.settings import Settings
from bot.thread import ThreadError, TicketThread
from bot.tickets.errors import JsmConfigError
from bot.tickets.factory import build_ticket_store
from bot.tickets.followup_factory import build_jsm_followup


def run_followup(settings: Settings, once: bool = False) -> int:
    """The worker in the foreground, until SIGTERM/SIGINT (``--once``: deliver what is due, then stop)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s followup: %(message)s")
    catalog = get_catalog()
    store = build_ticket_store(settings, catalog)
    thread = TicketThread(settings.tickets_db_url)
    try:
        jsm = build_jsm_followup(settings, store, thread, AttachmentStore.from_settings(catalog, settings))
    except JsmConfigError as exc:
        print(f"ERROR: {exc}", flush=True)
        return 2
    customers = customer_delivery(settings, catalog.waiting_statuses)
    idle = settings.followup.poll_seconds
    to_customers = FollowupWorker(
        rounds=(customers,),
        idle_seconds=idle,
        heartbeat=None if once else settings.data_dir / HEARTBEAT_FILE,
    )
    to_desk = (
        FollowupWorker(rounds=(jsm.desk,), poller=jsm.poller, poll_seconds=jsm.poll_seconds, idle_seconds=idle)
        if jsm is not None
        else None
    )
    try:
        if once:
            to_customers.drain()
            if to_desk is not None:
                to_desk.drain()
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        desk_thread = None
        if to_desk is not None:
            desk_thread = threading.Thread(target=to_desk.run, args=(stop,), name="followup-jsm", daemon=True)
            desk_thread.start()
        to_customers.run(stop)
        if desk_thread is not None:
            desk_thread.join(timeout=30)
        return 0
    finally:
        customers.close()


def cmd_run(args: argparse.Namespace) -> int:
    return run_followup(Settings.from_env(), once=args.once)


def cmd_retry(args: argparse.Namespace) -> int:
    """Queue failed messages again, after the cause (a template, a credential) was fixed."""
    thread = TicketThread(Settings.from_env().tickets_db_url)
    try:
        count = thread.requeue(args.ids, failed=args.failed)
    except ThreadError as exc:
        print(f"ERROR: {exc}")
        return 2
    print(f"Mensajes en cola de nuevo: {count}")
    return 0


def register(sub: Any) -> None:
    """Add ``followup run`` and ``followup retry`` to the command line."""
    followup = sub.add_parser("followup", help="seguimiento después del ticket: mensajes en ambos sentidos")
    followup_sub = followup.add_subparsers(dest="followup_command", required=True)
    run = followup_sub.add_parser("run", help="proceso de seguimiento: entrega y reintenta los mensajes del hilo")
    run.add_argument("--once", action="store_true", help="entrega lo pendiente y termina")
    run.set_defaults(func=cmd_run)
    retry = followup_sub.add_parser("retry", help="vuelve a poner en cola mensajes fallidos")
    retry.add_argument("ids", nargs="*", type=int, help="números de mensaje (los de `tickets thread`)")
    retry.add_argument("--failed", action="store_true", help="todos los fallidos")
    retry.set_defaults(func=cmd_retry)
