"""The intake pages (embudo, esfuerzo, comprensión, contención) rendered from figures of known shape.

The figures are the metrics module's dataclasses, built here the way it
fills them (tests/intake_samples.py); the pages must show every number in a
table under a chart with one bar per row, say «Sin datos» when there is
nothing, escape every label, and answer hostile filters with a notice.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, Optional
from zoneinfo import ZoneInfo

import pytest

from bot.catalog import get_catalog
from bot.review import intake_charts
from bot.review.intake_pages import KINDS, intake_filters, render_page
from bot.review.metrics_model import Containment, Effort, EffortRow, Understanding
from bot.review.views import Views
from tests import intake_samples as samples


class Tables(HTMLParser):
    """Every table's rows as lists of cell texts, by the table's id; and each SVG's count of bars."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.bars: dict[str, int] = {}
        self.points: dict[str, int] = {}
        self._table: Optional[str] = None
        self._svg: Optional[str] = None
        self._cell: Optional[list[str]] = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id") or f"sin-id-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._table and not self._in_head:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table and not self._in_head:
            self._cell = []
        elif tag == "svg":
            self._svg = found.get("id") or ""
            self.bars[self._svg] = 0
            self.points[self._svg] = 0
        elif tag == "g" and self._svg is not None and found.get("class") == "bar":
            self.bars[self._svg] += 1
        elif tag == "g" and self._svg is not None and found.get("class") == "point":
            self.points[self._svg] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parsed(html: str) -> Tables:
    found = Tables()
    found.feed(html)
    return found


@pytest.fixture(scope="module")
def views() -> Views:
    return Views(get_catalog(), ZoneInfo("America/Bogota"))


def page(views: Views, kind: str, figures: Any, args: Optional[dict[str, Any]] = None) -> str:
    args = args or {}
    response = render_page(views, None, KINDS[kind], figures, intake_filters(args), args, ["whatsapp", "socketio"])
    assert response.status == 200
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    return response.body.decode("utf-8")


def test_the_funnel_shows_each_step_reached_to_ticket_where_they_stopped_and_the_refusals(views: Views) -> None:
    html = page(views, "embudo", samples.funnel())
    found = parsed(html)
    overall = found.tables["tabla-embudo-total"]
    assert [row[:3] for row in overall] == [
        ["Llegaron al tipo de solicitud", "45", "100,0 %"],
        ["Respondieron: Descripción", "37", "82,2 %"],
        ["Respondieron: Correo electrónico", "30", "66,7 %"],
        ["Respondieron: Teléfono", "21", "46,7 %"],
        ["Vieron el resumen", "26", "57,8 %"],
        ["Confirmaron", "24", "53,3 %"],
        ["Ticket creado", "22", "48,9 %"],
    ]
    # Asked, stopped there (last question asked, no ticket), refused.
    assert overall[2][3:] == ["37", "7", "9"] and overall[4][3:] == ["", "4", ""]
    assert found.bars["grafico-embudo-total"] == len(overall) == 7
    # Each type reached gets its own funnel; a type with no questions still shows summary to ticket.
    assert found.bars["grafico-embudo-1"] == len(found.tables["tabla-embudo-1"]) == 7
    assert found.bars["grafico-embudo-2"] == len(found.tables["tabla-embudo-2"]) == 4
    assert found.tables["tabla-embudo-2"][-1][:3] == ["Ticket creado", "4", "80,0 %"]
    assert found.tables["tabla-rechazos"][0] == ["Pago en línea", "Correo electrónico", "Correo no válido", "9"]
    # Examples link to their transcripts, masked, escaped.
    assert 'href="/revision/c/d2ViOmFuYQ"' in html  # web:ana
    assert "300 111 2233" not in html and "&lt;script&gt;alert(" in html and '<script>alert("x")' not in html
    assert '<svg class="ichart" id="grafico-embudo-total"' in html and "<title id=" in html
    # The filters and the exports are there, with the query kept.
    assert 'name="pais"' in html and 'href="/revision/embudo.csv"' in html and 'href="/revision/embudo.json"' in html


def test_effort_median_and_p90_by_type_and_channel_with_one_bar_per_row(views: Views) -> None:
    html = page(views, "esfuerzo", samples.effort())
    found = parsed(html)
    by_type = found.tables["tabla-esfuerzo-por-tipo"]
    assert by_type[0] == ["Pago en línea", "18", "8", "13", "5", "12,5", "75,0 %"]
    assert by_type[1][0] == '<script>alert("x")</script>'  # shown as text
    assert '<script>alert("x")</script>' not in html
    by_channel = found.tables["tabla-esfuerzo-por-canal"]
    assert [r[0] for r in by_channel] == ["WhatsApp", "Chat web", "Microsoft Teams"]
    assert by_channel[0] == ["WhatsApp", "12", "9", "14", "6", "13", "66,7 %"]
    for grouping, rows in (("por-tipo", by_type), ("por-canal", by_channel)):
        assert found.bars[f"grafico-turnos-{grouping}"] == len(rows)
        assert found.bars[f"grafico-minutos-{grouping}"] == len(rows)
    assert "80,0 %" in html and "<strong>4,5</strong>" in html  # the overall figures


def test_understanding_by_week_corrections_and_suggestions(views: Views) -> None:
    html = page(views, "comprension", samples.understanding())
    found = parsed(html)
    weeks = found.tables["tabla-comprension"]
    assert weeks[2] == ["2026-W48", "200", "170", "20", "10", "85,0 %", "10,0 %", "5,0 %"]
    assert len(weeks) == 3 and found.points["grafico-comprension"] == 3 * 3  # three lines, a point a week
    assert found.tables["tabla-correcciones"][0] == ["pago_en_linea", "falla_experiencia_usuario", "6"]
    assert found.bars["grafico-correcciones"] == len(found.tables["tabla-correcciones"]) == 2
    assert found.tables["tabla-sugerencias"][0] == ["Pago en línea", "Pago en línea", "11"]
    assert found.bars["grafico-sugerencias"] == 2
    assert "S46" in html and "100 %" in html  # axis labels


def test_containment_one_stacked_column_per_week(views: Views) -> None:
    html = page(views, "contencion", samples.containment())
    found = parsed(html)
    weeks = found.tables["tabla-contencion"]
    assert weeks == [
        ["2026-W47", "18", "2", "0", "0", "3", "9", "32"],
        ["2026-W48", "22", "1", "4", "0", "2", "6", "35"],
    ]
    assert found.bars["grafico-contencion"] == 2
    # Each outcome has its own colour, darkest first (they stay apart printed in grey), and a legend.
    assert all(colour in html for colour in intake_charts.PALETTE)
    assert "Pasada a una persona" in html and "<title>S48 · Ticket creado: 22</title>" in html


@pytest.mark.parametrize(
    "kind, figures",
    [
        ("embudo", samples.empty_funnel()),
        ("esfuerzo", Effort(EffortRow("", "Todas", 0, 0, 0, 0, 0, 0), (), ())),
        ("comprension", Understanding((), (), ())),
        ("contencion", Containment(samples.OUTCOMES, samples.OUTCOME_LABELS, ())),
    ],
)
def test_no_data_says_so_in_spanish_and_draws_no_empty_chart(views: Views, kind: str, figures: Any) -> None:
    html = page(views, kind, figures)
    assert "Sin datos para estos filtros." in html
    assert 'class="bar"' not in html and "NaN" not in html and "Traceback" not in html


HOSTILE_ARGS = [
    {"desde": "2026-13-45", "hasta": "'; DROP TABLE x; --"},
    {"canal": '"><script>alert(1)</script>', "pais": "../../etc/passwd", "tipo": "\x00\x01" + "x" * 5000},
    {"desde": "2026-12-01", "hasta": "2026-11-01", "pagina": "-1", "resultado": "<b>"},
    {"canal": ["whatsapp", "teams"], "pais": ["CO"], "tipo": []},
    {"desde": "9999-12-31", "hasta": "0001-01-01"},  # a day past the clock's arithmetic: no filter, a notice
]


@pytest.mark.parametrize("args", HOSTILE_ARGS)
def test_hostile_filters_render_with_a_notice_never_an_error(views: Views, args: dict[str, Any]) -> None:
    for kind, figures in (("embudo", samples.funnel()), ("contencion", samples.containment())):
        html = page(views, kind, figures, args)
        assert "<script>alert(1)" not in html and "\x00" not in html
        if "canal" in args and isinstance(args["canal"], str):
            assert "El canal «&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;» no existe" in html
        if args.get("desde") in ("2026-13-45", "9999-12-31"):
            assert f"La fecha «{args['desde']}» de «Desde» no es válida" in html


def test_a_chosen_filter_stays_selected_and_goes_into_the_export_links(views: Views) -> None:
    args = {"desde": "2026-11-23", "hasta": "2026-11-29", "canal": "whatsapp", "tipo": "pago_en_linea", "pais": "CO"}
    html = page(views, "esfuerzo", samples.effort(), args)
    assert '<option value="whatsapp" selected>WhatsApp</option>' in html
    assert '<option value="pago_en_linea" selected>Pago en línea</option>' in html
    assert 'value="2026-11-23"' in html
    link = re.search(r'href="(/revision/esfuerzo\.csv\?[^"]+)"', html).group(1)
    assert "desde=2026-11-23" in link and "canal=whatsapp" in link and "tipo=pago_en_linea" in link
    assert "no existe" not in html


def test_axis_ends_are_round_numbers() -> None:
    assert [intake_charts._nice_top(v) for v in (0, 3, 7, 35, 45, 101, 950)] == [1, 4, 8, 40, 60, 200, 1000]
    chart = intake_charts.hbars("t", "eje", [("a", 3, "3"), ("b", 0, "0")])
    assert [b.width for b in chart.bars] == [348.0, 0.0]  # 3 of 4 on a 464-unit axis
    assert [t[1] for t in chart.ticks] == ["0", "2", "4"]
