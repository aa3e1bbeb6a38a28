"""Intake figures of known shape, built as the metrics module would fill them (bot/review/metrics_model.py)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from bot.review.metrics_model import (
    Containment,
    Correction,
    Csat,
    Effort,
    EffortRow,
    Example,
    Funnel,
    Period,
    QuestionStep,
    SuggestionPick,
    TypeFunnel,
    Understanding,
    WeekContainment,
    WeekCsat,
    WeeklyReport,
    WeekUnderstanding,
)

HOSTILE = '<script>alert("x")</script>'
OUTCOMES = ("ticket", "redirected", "article", "person", "cancelled", "abandoned")
OUTCOME_LABELS = {
    "ticket": "Ticket creado", "redirected": "Redirigida (opción eliminada)", "article": "Resuelta con un artículo",
    "person": "Pasada a una persona", "cancelled": "Cancelada", "abandoned": "Abandonada",
}  # fmt: skip


def funnel(scale: int = 1, label: str = "Teléfono") -> Funnel:
    """Pago en línea: 40 reached; 37 gave a description, 30 an e-mail, 21 a phone (3 stopped there)..."""
    steps = (
        QuestionStep("description", "Descripción", 40 * scale, 37 * scale, 3 * scale,
                     {"too_short": 5 * scale}, {"too_short": "Descripción demasiado corta"}),
        QuestionStep("email", "Correo electrónico", 37 * scale, 30 * scale, 7 * scale,
                     {"invalid_email": 9 * scale}, {"invalid_email": "Correo no válido"},
                     (Example("web:ana", "ana.perez@empresa", datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)),)),
        QuestionStep("phone", label, 30 * scale, 21 * scale, 9 * scale,
                     {"invalid_phone": 4 * scale}, {"invalid_phone": "Teléfono no válido"},
                     (Example("whatsapp:+573001112233", "llámame al 300 111 2233 " + HOSTILE, None),)),
    )  # fmt: skip
    pago = TypeFunnel("pago_en_linea", "Pago en línea", 40 * scale, steps, 21 * scale, 19 * scale, 18 * scale,
                      3 * scale)  # fmt: skip
    other = TypeFunnel("gestion_archivos", "Gestión de archivos", 5 * scale, (), 5 * scale, 5 * scale, 4 * scale,
                       1 * scale)  # fmt: skip
    overall = TypeFunnel(None, "Todas", 45 * scale, steps, 26 * scale, 24 * scale, 22 * scale, 4 * scale)
    return Funnel(overall, (pago, other))


def effort(shift: float = 0.0) -> Effort:
    overall = EffortRow("", "Todas", 22, 7 + shift, 12, 4.5 + shift, 11.25, 0.8)
    by_type = (
        EffortRow("pago_en_linea", "Pago en línea", 18, 8 + shift, 13, 5 + shift, 12.5, 0.75),
        EffortRow("gestion_archivos", HOSTILE, 4, 5, 6, 2.5, 3, 1.0),
    )
    by_channel = (
        EffortRow("whatsapp", "WhatsApp", 12, 9, 14, 6, 13, 0.6667),
        EffortRow("socketio", "Chat web", 9, 6, 8, 3, 5.5, 1.0),
        EffortRow("teams", "Microsoft Teams", 1, 4, 4, 1, 1, 1.0),
    )
    return Effort(overall, by_type, by_channel)


def understanding(understood: int = 170) -> Understanding:
    return Understanding(
        weeks=(
            WeekUnderstanding("2026-W46", 150, 120, 20, 10),
            WeekUnderstanding("2026-W47", 180, 150, 18, 12),
            WeekUnderstanding("2026-W48", 200, understood, 20, 200 - understood - 20),
        ),
        corrections=(Correction("pago_en_linea", "falla_experiencia_usuario", 6), Correction("greet", HOSTILE, 2)),
        suggestions=(SuggestionPick("pago_en_linea", "Pago en línea", 11), SuggestionPick("gestion_archivos",
                                                                                           "Gestión de archivos", 3)),
    )  # fmt: skip


def containment(tickets: int = 22) -> Containment:
    return Containment(
        OUTCOMES,
        OUTCOME_LABELS,
        (
            WeekContainment("2026-W47", {"ticket": 18, "redirected": 2, "cancelled": 3, "abandoned": 9}),
            WeekContainment("2026-W48", {"ticket": tickets, "redirected": 1, "article": 4, "cancelled": 2,
                                         "abandoned": 6}),
        ),
    )  # fmt: skip


def csat(average: float = 4.25) -> Csat:
    return Csat(
        by_week=(WeekCsat("2026-W48", "", "Semana 48 de 2026", 8, average),),
        by_type=(WeekCsat("2026-W48", "pago_en_linea", "Pago en línea", 6, 4.5),
                 WeekCsat("2026-W48", "gestion_archivos", "Gestión de archivos", 2, None)),
        by_channel=(WeekCsat("2026-W48", "whatsapp", "WhatsApp", 8, average),),
    )  # fmt: skip


def empty_funnel() -> Funnel:
    return Funnel(TypeFunnel(None, "Todas", 0, (), 0, 0, 0, 0), ())


def weekly() -> WeeklyReport:
    """2026-W48 (23 to 29 November) against 2026-W47: 22 tickets against 18, 170 of 200 turns understood."""
    return WeeklyReport(
        week=Period(date(2026, 11, 23), date(2026, 11, 29), "2026-W48"),
        previous=Period(date(2026, 11, 16), date(2026, 11, 22), "2026-W47"),
        funnel=(funnel(), funnel_previous()),
        effort=(effort(), effort(shift=1.5)),
        understanding=(
            Understanding((WeekUnderstanding("2026-W48", 200, 170, 20, 10),), (), ()),
            Understanding((WeekUnderstanding("2026-W47", 180, 150, 18, 12),), (), ()),
        ),
        containment=(
            Containment(OUTCOMES, OUTCOME_LABELS, (containment().weeks[1],)),
            Containment(OUTCOMES, OUTCOME_LABELS, (containment().weeks[0],)),
        ),
        csat=(csat(4.25), csat(3.5)),
    )


def funnel_previous() -> Funnel:
    found = funnel()
    overall = TypeFunnel(None, "Todas", 36, found.overall.steps, 22, 20, 18, 4)
    return Funnel(overall, found.by_type)
