"""``python -m bot tickets ...``: the ticket store from the command line.

``tickets list --json`` is a contract other tools rely on (see bot/cli.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cmd_tickets_list(args: argparse.Namespace) -> int:
    from bot.tickets import TicketStore

    tickets = TicketStore.from_settings().list(limit=args.limit)
    if args.json:
        _print_json([t.to_dict() for t in tickets])
        return 0
    if not tickets:
        print("No hay tickets.")
        return 0
    for t in tickets:
        item = f" / {t.item}" if t.item else ""
        print(f"{t.key}  {t.created_at:%Y-%m-%d %H:%M}  {t.status:<8} {t.request_type}{item}  <{t.email}>  [{t.channel}]")
    return 0


def cmd_tickets_show(args: argparse.Namespace) -> int:
    from bot.tickets import TicketStore

    ticket = TicketStore.from_settings().get(args.key)
    if ticket is None:
        print(f"No existe el ticket {args.key}.", file=sys.stderr)
        return 1
    _print_json(ticket.to_dict())
    return 0



def register(sub: Any) -> None:
    tickets = sub.add_parser("tickets", help="tickets del almacén (BOT_DATA_DIR / TICKETS_DB_URL)")
    tickets_sub = tickets.add_subparsers(dest="tickets_command", required=True)
    listing = tickets_sub.add_parser("list", help="lista los tickets, del más nuevo al más antiguo")
    listing.add_argument("--json", action="store_true", help="salida JSON")
    listing.add_argument("--limit", type=int, default=None)
    listing.set_defaults(func=cmd_tickets_list)
    show = tickets_sub.add_parser("show", help="muestra un ticket")
    show.add_argument("key")
    show.set_defaults(func=cmd_tickets_show)
