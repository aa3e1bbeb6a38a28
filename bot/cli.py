"""``python -m bot``: the project's command line.

The JSON outputs of ``catalog --json`` and ``tickets list --json`` are a
contract other tools rely on; keep their shape stable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from bot.catalog import CatalogError, get_catalog
from bot.settings import Settings


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cmd_catalog(args: argparse.Namespace) -> int:
    catalog = get_catalog()
    if args.json:
        _print_json(catalog.to_dict())
        return 0
    for category in catalog.categories:
        print(category.name)
        for rt in category.request_types:
            new = "  (nuevo)" if rt.new else ""
            print(f"  - {rt.name}{new}   [intent: {rt.intent}]")
            for spec in rt.fields:
                mark = "*" if spec.required else " "
                print(f"      {mark} {spec.label}")
                for option in spec.options:
                    print(f"          · {option.name}")
    for retired in catalog.retired:
        target = catalog.request_type(retired.redirect.request_type_id)
        print(f"Opción eliminada: {retired.name} -> {target.name if target else '?'}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from bot.sync import generated_files

    stale = []
    for generated in generated_files(get_catalog()):
        if args.check:
            if not generated.is_current():
                stale.append(generated.path)
        elif generated.write():
            print(f"actualizado: {generated.path}")
    if stale:
        for path in stale:
            print(f"desactualizado respecto al catálogo: {path}", file=sys.stderr)
        print("Ejecuta `python -m bot sync`.", file=sys.stderr)
        return 1
    return 0


def cmd_bench_nlu(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.nlu_eval import run_bench

    return run_bench(Path(args.out), get_catalog(), baseline=not args.no_baseline)


def cmd_bench_load(args: argparse.Namespace) -> int:
    from bot.bench_load import run

    return run(args.customers, messages=args.messages)


def cmd_bench_followup(args: argparse.Namespace) -> int:
    try:
        from bot.bench_followup import run
    except ModuleNotFoundError as exc:  # the fakes in tests/ need the dev dependencies
        print(f"ERROR: falta el módulo {exc.name}: ejecútalo desde el repositorio con las dependencias de desarrollo.")
        return 2
    return run(args.comments, args.tickets, args.senders)


def cmd_web(args: argparse.Namespace) -> int:
    from bot.web.app import serve

    serve(Settings.from_env())
    return 0


def cmd_teams_app(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.channels.teams.app_package import PackageError, write_package

    settings = Settings.from_env()
    try:
        path = write_package(Path(args.out), settings.followup.teams.app_id, settings.web.public_url, args.version)
    except PackageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print(f"Paquete de Teams listo para cargar: {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bot.launcher import run_foreground

    return run_foreground(Settings.from_env())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Soporte ecollect")
    sub = parser.add_subparsers(dest="command", required=True)

    catalog = sub.add_parser("catalog", help="muestra el catálogo de la Mesa de ayuda")
    catalog.add_argument("--json", action="store_true", help="salida JSON")
    catalog.set_defaults(func=cmd_catalog)

    from bot.review.links import ticket_links
    from bot.tickets.cli import register as register_tickets

    register_tickets(sub, review_links=ticket_links)

    from bot.review.cli import register as register_review

    register_review(sub)

    from bot.followup.cli import register as register_followup

    register_followup(sub)

    sync = sub.add_parser("sync", help="regenera domain/reglas/lookups desde el catálogo")
    sync.add_argument("--check", action="store_true", help="solo comprueba; falla si algo está desactualizado")
    sync.set_defaults(func=cmd_sync)

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    bench_nlu = bench_sub.add_parser(
        "nlu", help="NLU en el conjunto de evaluación, frente al pipeline por defecto de Rasa"
    )
    bench_nlu.add_argument("--out", default="results/bench-nlu", help="carpeta de resultados")
    bench_nlu.add_argument("--no-baseline", action="store_true", help="no entrenar el pipeline por defecto")
    bench_nlu.set_defaults(func=cmd_bench_nlu)
    bench_load = bench_sub.add_parser(
        "load", help="clientes simultáneos completando un ticket por REST, frente a /model/parse"
    )
    bench_load.add_argument(
        "--customers", type=int, nargs="+", default=[10, 200], help="cuántos clientes a la vez (por defecto 10 y 200)"
    )
    bench_load.add_argument(
        "--messages",
        type=int,
        default=800,
        help="mensajes por medición (por defecto 800; menos para una prueba rápida)",
    )
    bench_load.set_defaults(func=cmd_bench_load)
    bench_followup = bench_sub.add_parser(
        "followup", help="latencia de los avisos: webhook de JSM → proceso de seguimiento → WhatsApp (Twilio)"
    )
    bench_followup.add_argument("--comments", type=int, default=200, help="comentarios en la ráfaga (por defecto 200)")
    bench_followup.add_argument("--tickets", type=int, default=50, help="tickets entre los que se reparten (50)")
    bench_followup.add_argument("--senders", type=int, default=8, help="remitentes del webhook a la vez (8)")
    bench_followup.set_defaults(func=cmd_bench_followup)

    web = sub.add_parser("web", help="servidor web: página de chat, widget y adjuntos (WEB_PORT)")
    web.set_defaults(func=cmd_web)

    teams_app = sub.add_parser(
        "teams-app", help="genera el paquete de la aplicación de Teams (manifest.json e iconos) para cargarlo"
    )
    teams_app.add_argument("--out", default="results/teams-app", help="carpeta de salida (results/teams-app)")
    teams_app.add_argument("--version", default="1.0.0", help="versión de la aplicación; súbela en cada cambio")
    teams_app.set_defaults(func=cmd_teams_app)

    run = sub.add_parser("run", help="arranca el servidor de acciones, el servidor Rasa y el servidor web")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CatalogError as exc:
        print(f"ERROR en el catálogo: {exc}", file=sys.stderr)
        return 2
