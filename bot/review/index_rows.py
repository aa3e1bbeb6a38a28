"""A conversation's summary as the rows of the review cache's tables (``bot.review.db``).

The index replaces every row of a conversation at once when it has new
events, so the summary and its facts (requests, refusals, weeks, picks)
never disagree.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Table

from bot.review import db
from bot.review.analysis import OUTCOME_ORDER, Summary
from bot.text import normalize


def joined(values: list[str]) -> str:
    """ ",id1,id2,": a list a LIKE '%,id,%' can search."""
    return "," + ",".join(values) + "," if values else ""


def _ordered(values: set[str]) -> list[str]:
    return sorted(values)


def conversation_row(summary: Summary) -> dict[str, Any]:
    facts = summary.intake
    return dict(
        sender_id=summary.sender_id,
        last_event_id=summary.last_event_id,
        started_at=summary.started_at,
        last_at=summary.last_at,
        channel=summary.channel,
        request_types=joined(summary.request_types),
        last_request_type=summary.request_type,
        outcome=summary.outcome,
        outcomes=joined([o for o in OUTCOME_ORDER if o in summary.outcomes]),
        tickets=joined(summary.tickets),
        email=summary.email,
        phone=summary.phone,
        turns=summary.turns,
        missed_turns=summary.missed_turns,
        low_confidence_turns=summary.low_confidence_turns,
        customer_text=normalize(summary.customer_text),
        refreshed_at=time.time(),
        country=facts.country,
        week=summary.week,
        ticket_type=facts.ticket_type,
        ticket_turns=facts.ticket_turns,
        ticket_seconds=facts.ticket_seconds,
        repeated=facts.repeated_before_ticket,
    )


def rows_of(summary: Summary) -> dict[Table, list[dict[str, Any]]]:
    """Every cache row of one conversation, by table."""
    sender, facts = summary.sender_id, summary.intake
    return {
        db.conversations: [conversation_row(summary)],
        db.requests: [
            dict(
                sender_id=sender,
                request_type=r.request_type[:100],
                asked=joined(_ordered(r.asked))[:300],
                answered=joined(_ordered(r.answered))[:300],
                last_question=(r.last_question or None) and r.last_question[:40],
                summary=r.summary,
                confirmed=r.confirmed,
                ticket=r.ticket,
            )
            for r in facts.requests.values()
        ],
        db.refusals: [
            dict(
                sender_id=sender,
                request_type=(r.request_type or None) and r.request_type[:100],
                question=r.question[:40],
                reason=r.reason[:40],
                text=r.text[:400],
                at=r.at,
            )
            for r in facts.refusals
        ],
        db.turn_weeks: [
            dict(
                sender_id=sender,
                week=week,
                turns=c.turns,
                understood=c.understood,
                low_confidence=c.low_confidence,
                fallback=c.fallback,
            )
            for week, c in facts.weeks.items()
        ],
        db.picks: [dict(sender_id=sender, request_type=p) for p in facts.picks],
    }
