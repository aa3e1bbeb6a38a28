"""Chart geometry for the overview page, rendered as SVG by the template.

Server-side SVG needs no script on a page full of customer data, prints
well, and each chart comes with the same figures as a table for screen
readers.
"""

from __future__ import annotations

from typing import Any

from bot.review.analysis import OUTCOME_ORDER
from bot.review.index import Stats

CHART_HEIGHT = 160  # colours per outcome live in review.css (.seg-*)


def day_bars(stats: Stats) -> list[dict[str, Any]]:
    """Two bars per day (conversations, tickets), scaled to the busiest day."""
    peak = max(stats.conversations_per_day + stats.tickets_per_day + [1])
    bars = []
    for index, day in enumerate(stats.days):
        conversations = stats.conversations_per_day[index]
        tickets = stats.tickets_per_day[index]
        bars.append(
            {
                "day": day,
                "label": day.strftime("%d/%m"),
                "conversations": conversations,
                "tickets": tickets,
                "conv_height": round(CHART_HEIGHT * conversations / peak),
                "ticket_height": round(CHART_HEIGHT * tickets / peak),
            }
        )
    return bars


def outcome_rows(stats: Stats, type_names: dict[str, str]) -> list[dict[str, Any]]:
    """One stacked bar per request type: the share of each outcome."""
    rows = []
    for type_id, counts in sorted(stats.outcomes_by_type.items(), key=lambda item: -sum(item[1].values())):
        total = sum(counts.values())
        offset = 0.0
        segments = []
        for outcome in OUTCOME_ORDER:
            count = counts.get(outcome, 0)
            if not count:
                continue
            width = 100.0 * count / total
            segments.append({"outcome": outcome, "count": count, "x": offset, "width": width})
            offset += width
        rows.append(
            {
                "type": type_names.get(type_id, "Sin tipo de solicitud"),
                "total": total,
                "segments": segments,
                "counts": counts,
            }
        )
    return rows
