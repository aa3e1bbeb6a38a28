"""``python -m bot review ...``: lead accounts and the NLU export."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.catalog import get_catalog
from bot.review.accounts import AccountError, Accounts
from bot.review.db import engine_for
from bot.review.labels import Labels, nlu_yaml
from bot.review.links import PREFIX, public_base
from bot.settings import Settings


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
