"""Knowledge-base articles in the conversation: what is a direct question, how articles are shown and answered.

The ticket form offers up to three articles once the request type and the
description are known, before the contact questions (``offer_in_form``):
a request an article solves is the cheapest one for both sides. A direct
question («¿cómo …?», «¿qué es …?», «¿dónde …?») typed while the form asks
something else is answered from the base, and the pending question is asked
again (``answer_in_form``). Outside the form, bot/dialogue/answers.py answers
questions with the same two buttons and reads the customer's verdict.

Every article shown is recorded with its conversation (``DeflectionRecorder``)
and linked through an address that counts the view; the ticket lists the
articles the customer saw, with their plain addresses, for the agent.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence

from bot.catalog import RequestType
from bot.dialogue.extract import ESCAPE_INTENTS, UNPARSED, is_escape
from bot.dialogue.ports import Knowledge, Unavailable
from bot.dialogue.slots import (
    DESCRIPTION,
    KB_ANSWER,
    KB_ARTICLES,
    KB_DECLINED,
    KB_OFFERED,
    REDIRECTED_FROM,
    empty,
)
from bot.dialogue.turn import Button, Say, Turn, payload
from bot.dialogue.wording import leaning
from bot.kb.model import Article, Match
from bot.text import normalize

# The customer's verdict on articles shown (the records' events of the same names, bot/kb/deflections.py).
HELPFUL = "helpful"
DECLINED = "declined"
# How articles were shown: offered by the form, or as the answer to a question.
OFFERED = "offered"
ANSWERED = "answered"

MAX_SHOWN = 3
TITLE_CHARS = 120
EXCERPT_CHARS = 160  # one line of a chat bubble, even on WhatsApp
HELPFUL_TITLE = "Sí, esto me sirvió"
DECLINED_TITLE = "No, sigo con la solicitud"
TICKET_HEADING = "Artículos mostrados al cliente antes de crear la solicitud:"

# Words before the question itself: «hola, ¿cómo …?», «una pregunta: ¿dónde …?».
_LEAD_IN = re.compile(
    r"^(?:(?:hola|buenas|buenos dias|buenas tardes|buenas noches|oye|disculpa|disculpe|"
    r"tengo una pregunta|una pregunta|pregunta|por favor|y)\s+)*"
)
_QUESTION = re.compile(
    r"^(?:como|que es|que son|que significa|para que sirve|para que es|donde|en donde|por donde|de donde|a donde)\b"
)
# «¿cómo va mi caso?», «¿cómo estás?»: a status or a greeting, not a how-to.
_NOT_HOW_TO = re.compile(r"^como (?:va|van|vamos|esta|estas|estan|sigue|siguen|le fue|te va)\b")
# Short verdicts on the articles; longer messages are read as what they say.
VERDICT_MAX_WORDS = 8
_DECLINED_WORDS = re.compile(
    r"(?:^no\b|\bno me sirv|\bno sirv|\bno me ayud|\bsigo\b|\bseguir\b|\bsigamos\b|\bcontinu|\bprefiero la solicitud)"
)
_HELPFUL_WORDS = re.compile(
    r"(?:^si\b|\bsirvio\b|\bme sirve\b|\bme ayudo\b|\bresuelto\b|\blo resolvi\b|\bya quedo\b|\bya lo hice\b"
    r"|\bperfecto\b)"
)
VERDICT_CONFIDENCE = 0.8  # a bare «sí» / «no» the NLU is sure of


def buttons() -> tuple[Button, ...]:
    """«Sí, esto me sirvió» / «No, sigo con la solicitud»: the same two answers in and out of the form."""
    return (
        Button(HELPFUL_TITLE, payload("affirm", kb_answer=HELPFUL)),
        Button(DECLINED_TITLE, payload("deny", kb_answer=DECLINED)),
    )


def is_direct_question(text: str) -> bool:
    """«¿cómo …?», «¿qué es …?», «¿dónde …?», with or without ¿ and accents, also after a greeting."""
    if not text or text.startswith("/"):
        return False
    for clause in [text, *text.split("¿")[1:]]:
        words = _LEAD_IN.sub("", normalize(clause))
        if _QUESTION.match(words) and not _NOT_HOW_TO.match(words):
            return True
    return False


def read_verdict(turn: Turn) -> Optional[str]:
    """``HELPFUL``, ``DECLINED`` or None: a button, a short «sí» / «me sirvió» / «no» / «sigo»."""
    chosen = turn.entity(KB_ANSWER)
    if chosen in (HELPFUL, DECLINED):
        return str(chosen)
    if turn.is_payload:
        return None
    words = normalize(turn.text)
    if not words or len(words.split()) > VERDICT_MAX_WORDS:
        return None
    if _DECLINED_WORDS.search(words):
        return DECLINED
    if _HELPFUL_WORDS.search(words):
        return HELPFUL
    if turn.confidence >= VERDICT_CONFIDENCE and turn.intent in ("affirm", "deny"):
        if leaning(turn.text) is (turn.intent == "affirm"):  # «no, no me sirvió» read as affirm is no «sí»
            return HELPFUL if turn.intent == "affirm" else DECLINED
    return None


def _line(text: Any, limit: int) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= limit else one[: limit - 1].rstrip() + "…"


def shown_articles(value: Any) -> list[dict[str, str]]:
    """The articles a slot holds, as shown: only well-formed entries (the slot is ours, but read defensively)."""
    if not isinstance(value, list):
        return []
    keys = ("id", "title", "excerpt", "link", "url")
    return [
        {key: str(entry.get(key) or "") for key in keys}
        for entry in value
        if isinstance(entry, Mapping) and entry.get("id") and entry.get("title") and entry.get("link")
    ]


def article_lines(shown: Sequence[Mapping[str, str]]) -> str:
    """One entry an article: «• Título: extracto» and its link on the next line."""
    lines = []
    for article in shown:
        head = f"• {article['title']}" + (f": {article['excerpt']}" if article.get("excerpt") else "")
        lines.append(f"{head}\n  {article['link']}")
    return "\n".join(lines)


def ticket_lines(value: Any) -> Optional[str]:
    """What the ticket tells the agent about the articles the customer saw (plain addresses, no view counted)."""
    shown = shown_articles(value)
    if not shown:
        return None
    return "\n".join([TICKET_HEADING] + [f"• {a['title']}: {a['url'] or a['link']}" for a in shown])


def search(knowledge: Knowledge, text: str, request_type: Optional[str]) -> list[Match]:
    """Up to three articles above the threshold; none when the base cannot answer now."""
    try:
        return list(knowledge.articles.search(text, request_type))[:MAX_SHOWN]
    except Unavailable:
        return []


def show(
    knowledge: Knowledge, turn: Turn, event: str, articles: Sequence[Article], request_type: Optional[str]
) -> list[dict[str, str]]:
    """Record ``articles`` as shown in this conversation; each with the link the customer follows."""
    records = knowledge.records
    links = records.offer(turn.sender_id, event, articles, request_type=request_type, channel=turn.channel or None)
    if len(links) != len(articles):
        links = [records.address(a) for a in articles]
    return [
        {
            "id": a.id,
            "title": _line(a.title, TITLE_CHARS),
            "excerpt": _line(a.excerpt, EXCERPT_CHARS),
            "link": link,
            "url": records.address(a),
        }
        for a, link in zip(articles, links, strict=True)
    ]


def record_verdict(
    knowledge: Optional[Knowledge], turn: Turn, verdict: str, slots: Mapping[str, Any], request_type: Optional[str]
) -> None:
    if knowledge is None:
        return
    ids = [a["id"] for a in shown_articles(slots.get(KB_ARTICLES))]
    knowledge.records.answer(turn.sender_id, verdict, ids, request_type=request_type, channel=turn.channel or None)


def offered(slots: Mapping[str, Any]) -> list[str]:
    """The ids of the articles awaiting the customer's verdict."""
    value = slots.get(KB_OFFERED)
    return [str(v) for v in value] if isinstance(value, list) else []


# ------------------------------------------------------------- in the form
def may_offer(slots: Mapping[str, Any], request_type: RequestType) -> bool:
    """Whether the form offers articles now: once a request, after its description, never after a «sigo».

    Request types without a description (``gestion_archivos``: ítem, e-mail,
    attachment) are not offered articles: their ítem is a fixed failure
    category, so every customer would be shown the same articles whatever
    happened. A request redirected from a retired option is not either: the
    customer was just told what the article says and chose the request.
    """
    return (
        request_type.field(DESCRIPTION) is not None
        and slots.get(KB_OFFERED) is None
        and not slots.get(KB_DECLINED)
        and not slots.get(REDIRECTED_FROM)
        and not empty(slots.get(DESCRIPTION))
    )


def _belongs(article: Article, request_type: RequestType) -> bool:
    """An article tagged with other request types explains another option: not this request's business."""
    return not article.request_types or request_type.id in article.request_types


def offer_in_form(
    turn: Turn, slots: Mapping[str, Any], request_type: RequestType, knowledge: Knowledge
) -> dict[str, Any]:
    """Search with the description; the slots that show the offer (``KB_ANSWER`` is then asked)."""
    found = [m.article for m in search(knowledge, str(slots.get(DESCRIPTION)), request_type.id)]
    articles = [a for a in found if _belongs(a, request_type)]
    if not articles:
        return {KB_OFFERED: []}  # searched: not again for this request
    shown = show(knowledge, turn, OFFERED, articles, request_type.id)
    return {KB_OFFERED: [a["id"] for a in shown], KB_ARTICLES: shown, KB_ANSWER: None}


def offer_question(slots: Mapping[str, Any]) -> list[Say]:
    """The form's question for ``KB_ANSWER``: the articles and the two buttons."""
    shown = shown_articles(slots.get(KB_ARTICLES))
    return [Say("utter_kb_offer", {"articles": article_lines(shown)}, buttons())] if shown else []


def asks_article(turn: Turn, answer: Optional[Mapping[str, Any]], requested: Any) -> bool:
    """A direct question where the form asked for a datum: the answer read nothing from it.

    Not for the description (a need phrased as a question is the
    description, and the offer follows it) nor for the offer itself; not for
    a side request a rule answers (help, cancel, «¿qué es …?» of the catalog).
    """
    if turn.mode != "answer" or turn.is_payload or requested in (None, DESCRIPTION, KB_ANSWER):
        return False
    if not is_direct_question(turn.text):
        return False
    if answer is None:
        return not is_escape(turn, ESCAPE_INTENTS)
    return UNPARSED in answer


def answer_in_form(turn: Turn, request_type: RequestType, knowledge: Knowledge) -> list[Say]:
    """The articles answering a question asked inside the form (no buttons: the pending question follows)."""
    articles = [m.article for m in search(knowledge, turn.text, request_type.id)]
    if not articles:
        return []
    shown = show(knowledge, turn, ANSWERED, articles, request_type.id)
    return [Say("utter_kb_answer_in_form", {"articles": article_lines(shown)})]
