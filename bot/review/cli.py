"""``python -m bot review ...``: lead accounts, the NLU export and the weekly report."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from bot.catalog import Catalog, get_catalog
from bot.review.accounts import AccountError, Accounts
from bot.review.db import engine_for
from bot.review.index import ConversationIndex, review_zone
from bot.review.labels import Labels, nlu_yaml
from bot.review.links import PREFIX, public_base
from bot.review.metrics import Metrics
from bot.review.metrics_model import WeeklyReport
from bot.review.views import Views
from bot.review.weekly_report import WeekError, parse_week, print_pdf, render_report, reports_dir, write_report
from bot.settings import Settings
from bot.thread import CsatBook
from bot.transcripts import TrackerReader

# Where Debian and others put Chromium when ``CHROMIUM`` does not say (scripts/ensure-chromium.sh looks there too).
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _engine(settings: Settings) -> Engine:
    return engine_for(settings.review_db_url)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Contraseña (mínimo 10 caracteres): ")
    if first != getpass.getpass("Repite la contraseña: "):
        raise AccountError("Las contraseñas no coinciden.")
    return first


def cmd_add_user(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        Accounts(_engine(settings)).add_user(args.username, _read_password(args))
    except AccountError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"Usuario «{args.username}» creado. Entra en {public_base(settings)}{PREFIX}/")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    try:
        Accounts(_engine(Settings.from_env())).set_password(args.username, _read_password(args))
    except AccountError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"Contraseña de «{args.username}» cambiada; sus sesiones abiertas se cerraron.")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    names = Accounts(_engine(Settings.from_env())).usernames()
    print("\n".join(names) if names else "No hay usuarios. Crea uno con: python -m bot review add-user NOMBRE")
    return 0


def cmd_export_nlu(args: argparse.Namespace) -> int:
    found = Labels(_engine(Settings.from_env())).all()
    text = nlu_yaml(found, get_catalog())
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(found)} correcciones escritas en {args.out}. Revísalas y entrena con `make train`.")
    return 0


def find_chromium(configured: str) -> Optional[Path]:
    """The browser that prints the PDF: ``CHROMIUM`` if set, else the usual paths; None when there is none."""
    for candidate in (configured, *CHROMIUM_PATHS):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _weekly_figures(settings: Settings, catalog: Catalog, zone: ZoneInfo, week: str) -> WeeklyReport:
    """The week's figures from the same index the review app keeps (brought up to date first)."""
    engine = _engine(settings)
    index = ConversationIndex(
        TrackerReader(settings.tracker_db_url), engine, zone, timedelta(minutes=settings.review.abandon_minutes)
    )
    index.refresh()
    return Metrics(index, catalog, Labels(engine), CsatBook(settings.tickets_db_url)).weekly(week)


def cmd_report(args: argparse.Namespace) -> int:
    """Writes the week's report (HTML, and a PDF when a Chromium is there); exit 2 for a week that is none."""
    try:
        parse_week(args.week)
    except WeekError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    week = args.week.strip().upper()
    settings = Settings.from_env()
    catalog = get_catalog()
    zone = review_zone(settings.review)
    found = _weekly_figures(settings, catalog, zone, week)
    html = render_report(Views(catalog, zone), found, datetime.now(timezone.utc))
    path = write_report(html, Path(args.out) if args.out else reports_dir(settings.data_dir), week)
    print(f"Informe de la semana {week} escrito en {path}")
    if args.no_pdf:
        return 0
    chromium = find_chromium(settings.review.chromium)
    if chromium is None:
        print("Sin PDF: no se encontró Chromium (indica su ruta con CHROMIUM=/ruta/chromium).", file=sys.stderr)
        return 0
    try:
        print(f"PDF escrito en {print_pdf(chromium, path)}")
    except RuntimeError as exc:
        print(f"AVISO: el informe HTML está listo, pero {exc}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Adds ``review`` to the ``python -m bot`` parser (``sub``: its subparsers)."""
    review = sub.add_parser("review", help="revisión de conversaciones: cuentas de líderes y exportación NLU")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    add = review_sub.add_parser("add-user", help="crea la cuenta de un líder de soporte")
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", help="lee la contraseña de la entrada estándar")
    add.set_defaults(func=cmd_add_user)
    change = review_sub.add_parser("set-password", help="cambia la contraseña de un líder (cierra sus sesiones)")
    change.add_argument("username")
    change.add_argument("--password-stdin", action="store_true")
    change.set_defaults(func=cmd_set_password)
    users = review_sub.add_parser("users", help="lista las cuentas")
    users.set_defaults(func=cmd_users)
    export = review_sub.add_parser("export-nlu", help="escribe las correcciones como datos NLU de Rasa")
    export.add_argument(
        "--out", default="data/nlu/revision.yml", help="archivo de salida ('-' para la salida estándar)"
    )
    export.set_defaults(func=cmd_export_nlu)
    report = review_sub.add_parser("report", help="escribe el informe semanal (HTML y PDF) de una semana ISO")
    report.add_argument("--week", required=True, help="semana ISO, por ejemplo 2026-W48")
    report.add_argument(
        "--out", default="", help="carpeta de salida (por omisión, informes/ en el directorio de datos)"
    )
    report.add_argument("--no-pdf", action="store_true", help="solo el HTML, aunque haya Chromium")
    report.set_defaults(func=cmd_report)
