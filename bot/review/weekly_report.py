"""The weekly report: one self-contained HTML file (and a PDF beside it) with the intake figures of an ISO week.

A lead forwards it or prints it for the weekly meeting, so it carries its
own CSS and SVG and requests nothing from anywhere, and it holds no customer
words (the refused answers' examples stay in the review app, behind its
login). Reports are kept under the data directory (``reports_dir``) and
listed by the review app; their names are ``informe-<AAAA-Www>.html|pdf``,
checked before any file is opened.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Optional, Sequence

from bot.review import intake_views
from bot.review.intake_charts import number, percent
from bot.review.metrics_model import EffortRow, TypeFunnel, Understanding, WeekCsat, WeeklyReport
from bot.review.views import HERE, Views

logger = logging.getLogger(__name__)

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
REPORT_NAME = re.compile(r"^informe-(\d{4}-W\d{2})\.(html|pdf)$")
REPORT_CSS = """
body { background: #fff; }
main { max-width: 60rem; }
.report-head p { margin: .2rem 0; }
h2 { border-top: 2px solid var(--line); padding-top: .8rem; margin-top: 2rem; }
@media print { h2 { break-before: auto; } .figure, table { break-inside: avoid; } body { font-size: 11pt; } }
"""
PDF_TIMEOUT = 120  # seconds: a cold Chromium on a busy machine


class WeekError(ValueError):
    """A week argument that is no ISO week; the message is for the lead, in Spanish."""


def parse_week(text: str) -> tuple[date, date]:
    """Monday and Sunday of ``2026-W48``; raises ``WeekError`` with the reason in Spanish."""
    found = WEEK.match((text or "").strip())
    if not found:
        raise WeekError(f"La semana «{text}» no es válida: usa el formato ISO AAAA-Www, por ejemplo 2026-W48.")
    year, week = int(found.group(1)), int(found.group(2))
    try:
        return date.fromisocalendar(year, week, 1), date.fromisocalendar(year, week, 7)
    except ValueError:
        raise WeekError(f"La semana «{text}» no existe: el año {year} no tiene la semana {week}.") from None


def reports_dir(data_dir: Path) -> Path:
    """Where reports are written by the CLI and listed by the review app."""
    return data_dir / "informes"


def report_name(week: str, suffix: str) -> str:
    return f"informe-{week}.{suffix}"


# ------------------------------------------------------------------ deltas
@dataclass(frozen=True)
class Delta:
    """One headline figure this week and the week before; ``better``: +1 if it improved, -1 if it worsened."""

    label: str
    current: str
    previous: str
    change: str
    better: int = 0


def _count(label: str, now: int, before: int, up_is_good: Optional[bool] = None) -> Delta:
    diff = now - before
    better = 0 if up_is_good is None or diff == 0 else (1 if (diff > 0) == up_is_good else -1)
    return Delta(label, str(now), str(before), f"{diff:+d}".replace("-", "−") if diff else "=", better)


def _value(label: str, now: Optional[float], before: Optional[float], up_is_good: bool, unit: str = "") -> Delta:
    """Medians and averages; no figure (no tickets, no ratings) reads «—»."""
    if now is None or before is None:
        shown = [number(v) + unit if v is not None else "—" for v in (now, before)]
        return Delta(label, shown[0], shown[1], "—")
    diff = round(now - before, 1)
    better = 0 if diff == 0 else (1 if (diff > 0) == up_is_good else -1)
    sign = "+" if diff > 0 else "−" if diff < 0 else ""
    return Delta(
        label, number(now) + unit, number(before) + unit, f"{sign}{number(abs(diff))}{unit}" if diff else "=", better
    )


def _share(label: str, now: Optional[float], before: Optional[float], up_is_good: bool) -> Delta:
    """Shares compared in percentage points («+2,5 pp»)."""
    if now is None or before is None:
        shown = [percent(v) if v is not None else "—" for v in (now, before)]
        return Delta(label, shown[0], shown[1], "—")
    points = round((now - before) * 100, 1)
    better = 0 if points == 0 else (1 if (points > 0) == up_is_good else -1)
    sign = "+" if points > 0 else "−" if points < 0 else ""
    return Delta(label, percent(now), percent(before), f"{sign}{number(abs(points))} pp" if points else "=", better)


def _turn_shares(found: Understanding) -> tuple[Optional[float], Optional[float]]:
    turns = sum(w.turns for w in found.weeks)
    if not turns:
        return None, None
    return sum(w.understood for w in found.weeks) / turns, sum(w.fallback for w in found.weeks) / turns


def _effort(row: EffortRow) -> tuple[Optional[float], Optional[float], Optional[float]]:
    return (row.turns_median, row.minutes_median, row.no_repeat_share) if row.tickets else (None, None, None)


def deltas(report: WeeklyReport) -> list[Delta]:
    """The headline figures of the week against the previous one."""
    (fn, fp), (en, ep), (un, up), (cn, cp), (sn, sp) = (
        report.funnel, report.effort, report.understanding, report.containment, report.csat,
    )  # fmt: skip
    understood_now, fallback_now = _turn_shares(un)
    understood_before, fallback_before = _turn_shares(up)
    turns_now, minutes_now, repeat_now = _effort(en.overall)
    turns_before, minutes_before, repeat_before = _effort(ep.overall)
    found = [
        _count("Conversaciones que llegaron a un tipo de solicitud", fn.overall.reached, fp.overall.reached),
        _count("Tickets creados", fn.overall.tickets, fp.overall.tickets, True),
        _share("Llegaron y obtuvieron ticket", intake_views.share(fn.overall.tickets, fn.overall.reached),
               intake_views.share(fp.overall.tickets, fp.overall.reached), True),
        _value("Turnos del cliente hasta el ticket (mediana)", turns_now, turns_before, False),
        _value("Minutos hasta el ticket (mediana)", minutes_now, minutes_before, False, " min"),
        _share("Tickets sin ninguna pregunta repetida", repeat_now, repeat_before, True),
        _share("Turnos del cliente entendidos", understood_now, understood_before, True),
        _share("Turnos no entendidos", fallback_now, fallback_before, False),
    ]  # fmt: skip
    good = {"ticket": True, "article": True, "cancelled": False, "abandoned": False}
    for outcome in cn.outcomes:
        now = sum(w.counts.get(outcome, 0) for w in cn.weeks)
        before = sum(w.counts.get(outcome, 0) for w in cp.weeks)
        found.append(_count(f"Terminaron: {cn.labels.get(outcome, outcome)}", now, before, good.get(outcome)))
    rated_now = sum(w.ratings for w in sn.by_week)
    rated_before = sum(w.ratings for w in sp.by_week)
    found.append(_value("Satisfacción (promedio de 1 a 5)", _average(sn.by_week), _average(sp.by_week), True))
    found.append(_count("Encuestas respondidas", rated_now, rated_before))
    return found


def _average(weeks: Sequence[WeekCsat]) -> Optional[float]:
    """The week's average over every rating (weeks weighted by their answers); None without ratings."""
    rated = [w for w in weeks if w.ratings and w.average is not None]
    total = sum(w.ratings for w in rated)
    return sum(w.ratings * (w.average or 0.0) for w in rated) / total if total else None


def type_rows(now: Sequence[TypeFunnel], before: Sequence[TypeFunnel]) -> list[tuple[str, Delta, Delta]]:
    """Per request type: reached and tickets this week against the previous one."""
    previous = {f.request_type: f for f in before}
    names = {f.request_type: f.name for f in list(before) + list(now)}
    current = {f.request_type: f for f in now}
    rows = []
    for key in sorted(names, key=lambda k: (-(current[k].reached if k in current else 0), names[k])):
        a, b = current.get(key), previous.get(key)
        rows.append((
            names[key],
            _count("", a.reached if a else 0, b.reached if b else 0),
            _count("", a.tickets if a else 0, b.tickets if b else 0, True),
        ))  # fmt: skip
    return [r for r in rows if r[1].current != "0" or r[1].previous != "0"]


# ------------------------------------------------------------------ render
def render_report(views: Views, report: WeeklyReport, generated_at: datetime) -> str:
    """The whole report as one HTML document: CSS inline, charts as inline SVG, no external request."""
    css = (HERE / "static" / "review.css").read_text(encoding="utf-8") + REPORT_CSS
    fn, fp = report.funnel
    return views.pages.get_template("informe.html").render(
        report=report,
        css=css,
        deltas=deltas(report),
        types=type_rows(fn.by_type, fp.by_type),
        funnel=intake_views.funnel_context(fn),
        effort=intake_views.effort_context(report.effort[0]),
        understanding=intake_views.understanding_context(report.understanding[0]),
        containment=intake_views.containment_context(report.containment[0]),
        csat=intake_views.csat_context(report.csat[0]),
        generated=views.local(generated_at),
        zone=str(views.zone),
        portal=views.catalog.portal,
        prefix="",
    )


def write_report(html: str, out_dir: Path, week: str) -> Path:
    """Writes ``informe-<week>.html`` atomically (a half-written report is never listed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / report_name(week, "html")
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out_dir, suffix=".tmp", delete=False) as handle:
        handle.write(html)
    Path(handle.name).chmod(0o644)  # no customer data in it; the web server may run as another user
    Path(handle.name).replace(target)
    return target


def print_pdf(chromium: Path, html_file: Path) -> Path:
    """The report printed by a headless Chromium beside the HTML; raises ``RuntimeError`` in Spanish on failure."""
    target = html_file.with_suffix(".pdf")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={target}",
            html_file.resolve().as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=PDF_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"Chromium no pudo imprimir el PDF: {exc}") from exc
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"Chromium no pudo imprimir el PDF (código {done.returncode}): {' '.join(tail)}")
    return target


# ------------------------------------------------------------------ listing
@dataclass(frozen=True)
class ReportFile:
    week: str
    html: Optional[str]
    pdf: Optional[str]
    modified: datetime


def list_reports(folder: Path, limit: int = 20) -> list[ReportFile]:
    """The last reports kept, newest week first; files whose names are not reports are ignored."""
    if not folder.is_dir():
        return []
    found: dict[str, dict[str, str]] = {}
    moments: dict[str, float] = {}
    for entry in folder.iterdir():
        match = REPORT_NAME.match(entry.name)
        if match and report_file(folder, entry.name) is not None:
            found.setdefault(match.group(1), {})[match.group(2)] = entry.name
            moments[match.group(1)] = max(moments.get(match.group(1), 0.0), entry.stat().st_mtime)
    weeks = sorted(found, reverse=True)[:limit]
    return [
        ReportFile(w, found[w].get("html"), found[w].get("pdf"), datetime.fromtimestamp(moments[w]).astimezone())
        for w in weeks
    ]


def report_file(folder: Path, name: str) -> Optional[Path]:
    """The kept report ``name`` names, or None: only ``informe-AAAA-Www.html|pdf`` inside ``folder``."""
    if not REPORT_NAME.match(name):
        return None
    path = folder / name
    return path if path.is_file() and path.resolve().parent == folder.resolve() else None
