"""The weekly reports in the review app: /revision/informes lists the last ones, /revision/informes/<name> serves one.

Reports are files written by ``python -m bot review report`` under the data
directory (``weekly_report.reports_dir``). A name is matched against
``informe-AAAA-Www.html|pdf`` before any path is built, so no request can
read another file. The HTML report carries its own CSS and no script: it is
served with a policy that allows inline styles and nothing else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.review.accounts import Session
from bot.review.auth import requires_lead
from bot.review.room import room_of
from bot.review.views import security_headers
from bot.review.weekly_report import list_reports, report_file, reports_dir
from bot.settings import Settings

REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"


def folder_of(request: Request) -> Optional[Path]:
    """The reports' folder of the web server serving ``request`` (its settings' data directory)."""
    settings = getattr(request.app.ctx, "settings", None)
    return reports_dir(settings.data_dir) if isinstance(settings, Settings) else None


@requires_lead
async def reports(request: Request, session: Session) -> HTTPResponse:
    folder = folder_of(request)
    found = await asyncio.to_thread(list_reports, folder) if folder else []
    return room_of(request).views.render("informes.html", session, reports=found, folder=str(folder or ""))


@requires_lead
async def report(request: Request, session: Session, filename: str) -> HTTPResponse:
    folder = folder_of(request)
    path = await asyncio.to_thread(report_file, folder, filename) if folder else None
    if path is None:
        return room_of(request).views.error(session, 404, "No existe ese informe.")
    download = request.args.get("descargar") == "1"
    mime = "application/pdf" if path.suffix == ".pdf" else "text/html; charset=utf-8"
    headers = {"Content-Disposition": f'{"attachment" if download else "inline"}; filename="{path.name}"'}
    served = await response.file(path, mime_type=mime, headers=headers)
    security_headers(served)
    served.headers["Content-Security-Policy"] = REPORT_POLICY
    return served


def register(bp: Blueprint) -> None:
    bp.add_route(reports, "/informes", methods=["GET"])
    bp.add_route(report, "/informes/<filename:str>", methods=["GET"])
