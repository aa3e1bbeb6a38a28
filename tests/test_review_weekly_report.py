"""The weekly report: one self-contained HTML file for an ISO week against the one before, and its listing.

Rendered from figures of known shape (tests/intake_samples.py: 2026-W48
against 2026-W47); the file must request nothing from anywhere, carry no
customer words, and show the same numbers as the figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.catalog import get_catalog
from bot.review.metrics_model import Csat, Effort, EffortRow, Understanding
from bot.review.views import Views
from bot.review.weekly_report import (
    WeekError,
    deltas,
    list_reports,
    parse_week,
    render_report,
    report_file,
    write_report,
)
from bot.settings import PROJECT_ROOT
from tests import intake_samples as samples
from tests.test_review_intake_pages import parsed

GENERATED = datetime(2026, 11, 30, 13, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def html() -> str:
    return render_report(Views(get_catalog(), ZoneInfo("America/Bogota")), samples.weekly(), GENERATED)


def test_the_report_is_self_contained_and_holds_no_customer_words(html: str) -> None:
    assert html.startswith("<!doctype html>") and "<style>" in html and ".ichart" in html  # the CSS is inline
    assert "<link" not in html and "<script" not in html and "<img" not in html and "<iframe" not in html
    assert not re.search(r"""\bsrc\s*=""", html) and "url(" not in html and "@import" not in html
    assert not re.findall(r"""href="(?!#)[^"]*""", html)  # no link at all: the file works offline
    assert html.count("<svg") >= 6 and "<title" in html
    # The refused answers' examples stay behind the review app's login.
    assert "ana.perez" not in html and "2233" not in html and "Ver la conversación" not in html
    assert "Generado el 2026-11-30 08:05" in html  # the team's clock


def test_the_report_compares_the_week_with_the_previous_one(html: str) -> None:
    summary = {row[0]: row[1:] for row in parsed(html).tables["tabla-resumen"]}
    assert summary["Conversaciones que llegaron a un tipo de solicitud"] == ["45", "36", "+9"]
    assert summary["Tickets creados"] == ["22", "18", "+4 (mejor)"]
    assert summary["Llegaron y obtuvieron ticket"] == ["48,9 %", "50,0 %", "−1,1 pp (peor)"]
    assert summary["Turnos del cliente hasta el ticket (mediana)"] == ["7", "8,5", "−1,5 (mejor)"]
    assert summary["Minutos hasta el ticket (mediana)"] == ["4,5 min", "6 min", "−1,5 min (mejor)"]
    assert summary["Turnos del cliente entendidos"] == ["85,0 %", "83,3 %", "+1,7 pp (mejor)"]
    assert summary["Turnos no entendidos"] == ["5,0 %", "6,7 %", "−1,7 pp (mejor)"]
    assert summary["Terminaron: Abandonada"] == ["6", "9", "−3 (mejor)"]
    assert summary["Terminaron: Pasada a una persona"] == ["0", "0", "="]
    assert summary["Satisfacción (promedio de 1 a 5)"] == ["4,2", "3,5", "+0,8 (mejor)"]
    assert summary["Encuestas respondidas"] == ["8", "8", "="]
    types = parsed(html).tables["tabla-tipos-semana"]
    assert types[0] == ["Pago en línea", "40", "40", "=", "18", "18", "="]


def test_the_report_has_every_section_of_the_week_with_its_tables(html: str) -> None:
    found = parsed(html)
    assert found.tables["tabla-embudo-total"][-1][:3] == ["Ticket creado", "22", "48,9 %"]
    assert found.bars["grafico-embudo-total"] == 7
    assert found.tables["tabla-esfuerzo-por-tipo"][0][:3] == ["Pago en línea", "18", "8"]
    assert found.tables["tabla-comprension"] == [["2026-W48", "200", "170", "20", "10", "85,0 %", "10,0 %", "5,0 %"]]
    assert found.tables["tabla-contencion"] == [["2026-W48", "22", "1", "4", "0", "2", "6", "35"]]
    assert found.tables["tabla-csat-tipo"] == [["Pago en línea", "6", "4,5"], ["Gestión de archivos", "2", "—"]]
    assert "Del 23/11/2026 al 29/11/2026" in html and "semana 2026-W47" in html


def test_a_week_with_no_previous_figures_reads_dashes_not_errors() -> None:
    report = samples.weekly()
    empty = samples.empty_funnel()
    quiet = replace(
        report,
        funnel=(report.funnel[0], empty),
        effort=(report.effort[0], Effort(EffortRow("", "Todas", 0, 0, 0, 0, 0, 0), (), ())),
        understanding=(report.understanding[0], Understanding((), (), ())),
        csat=(report.csat[0], Csat((), (), ())),
    )
    found = {d.label: d for d in deltas(quiet)}
    assert found["Minutos hasta el ticket (mediana)"].previous == "—"
    assert found["Llegaron y obtuvieron ticket"].change == "—"
    assert found["Satisfacción (promedio de 1 a 5)"].previous == "—"
    assert found["Tickets creados"].change == "+22" and found["Tickets creados"].better == 1


@pytest.mark.parametrize("week, monday", [("2026-W48", date(2026, 11, 23)), ("2026-w01", date(2025, 12, 29)),
                                          ("2026-W53", date(2026, 12, 28))])  # fmt: skip
def test_iso_weeks_are_understood(week: str, monday: date) -> None:
    assert parse_week(week.upper())[0] == monday


@pytest.mark.parametrize("week", ["2025-W53", "2026-W00", "2026-48", "48", "", "../../etc", "2026-W48; rm -rf /"])
def test_a_week_that_is_none_is_refused_in_spanish(week: str) -> None:
    with pytest.raises(WeekError) as refused:
        parse_week(week)
    assert "no es válida" in str(refused.value) or "no existe" in str(refused.value)


@pytest.mark.parametrize("week", ["2026-W60", "semana-48", "../../etc/passwd"])
def test_the_report_command_refuses_a_week_that_is_none_in_spanish(tmp_path: Path, week: str) -> None:
    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "review", "report", "--week", week, "--no-pdf"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"ERROR: La semana «{week}»")
    assert "por ejemplo 2026-W48" in done.stderr or "no tiene la semana 60" in done.stderr
    assert not (tmp_path / "informes").exists()


def test_reports_are_written_whole_listed_newest_first_and_only_by_their_names(tmp_path: Path) -> None:
    folder = tmp_path / "informes"
    write_report("<p>47</p>", folder, "2026-W47")
    path = write_report("<p>48</p>", folder, "2026-W48")
    (folder / "informe-2026-W48.pdf").write_bytes(b"%PDF-1.4")
    (folder / "notas.txt").write_text("no es un informe")
    (tmp_path / "secreto.html").write_text("fuera")
    assert path.read_text() == "<p>48</p>" and not list(folder.glob("*.tmp"))
    listed = list_reports(folder)
    assert [(r.week, r.html, r.pdf) for r in listed] == [
        ("2026-W48", "informe-2026-W48.html", "informe-2026-W48.pdf"),
        ("2026-W47", "informe-2026-W47.html", None),
    ]
    assert report_file(folder, "informe-2026-W48.pdf") == folder / "informe-2026-W48.pdf"
    for name in ("../secreto.html", "notas.txt", "informe-2026-W48.html/..", "informe-2026-W4.html",
                 "informe-2026-W49.html", "..%2Fsecreto.html", "informe-2026-W48.HTML"):  # fmt: skip
        assert report_file(folder, name) is None
    # A link named like a report but pointing out of the folder is no report either.
    os.symlink(tmp_path / "secreto.html", folder / "informe-2026-W46.html")
    assert report_file(folder, "informe-2026-W46.html") is None
    assert list_reports(tmp_path / "no-existe") == []
    assert "2026-W46" not in [r.week for r in list_reports(folder)]
