"""Issue 12 in the review app: a ticket's thread after the ticket, and the CSAT page.

The tickets database is seeded the way the running project fills it: tickets
by the ticket store, help-desk news by ``TicketThread.record``, the customer's
replies and internal notes by ``from_customer`` / ``note_for_desk``, delivery
states by the claim/mark calls the workers make, CSAT answers by ``CsatBook``.
Only the answers' times are moved with SQL, to place them in known weeks.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.review.links import conversation_path, thread_path
from bot.thread import CsatBook, ThreadMessage, TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, CSAT, DONE, HANDOFF, STATUS, TO_CUSTOMER, TO_DESK
from bot.thread.table import CsatRow, ThreadTables
from bot.tickets import NewTicket, TicketStore
from bot.tickets.model import Attachment
from tests.cards import CARD, shows_card
from tests.test_review_web import SENDER, make_site, session_cookies
from tests.test_security_review import review_db_url  # noqa: F401  (SQLite and a fresh PostgreSQL database)

KEY = "ECO-000001"  # the ticket make_site creates, from SENDER's WhatsApp conversation
AGENT_AT = datetime(2026, 11, 29, 15, 4, tzinfo=timezone.utc)  # 10:04 in Bogotá (REVIEW_TIMEZONE default)
WORKER = "prueba"


def ref(key: str, conversation: str, channel: str, type_id: str, type_name: str) -> TicketRef:
    return TicketRef(
        key=key, conversation_id=conversation, channel=channel, request_type_id=type_id, request_type=type_name
    )


FIRST = ref(KEY, SENDER, "whatsapp", "pago_en_linea", "Pago en línea")


def claim_one(thread: TicketThread, direction: str) -> ThreadMessage:
    claimed = thread.claim_due(direction, WORKER, limit=1)
    assert len(claimed) == 1, claimed
    return claimed[0]


def seed_thread(url: str) -> dict[str, int]:
    """Every kind of message on KEY, in this order, each in a different delivery state."""
    thread = TicketThread(url)
    ids: dict[str, int] = {}
    (comment,) = thread.record(
        Update(
            ticket=KEY,
            source="jsm-comment:1",
            kind=COMMENT,
            author="Laura <b>Agente</b>",
            happened_at=AGENT_AT,
            body="¿Nos envías el archivo que falla? <script>alert('agente')</script> Tarjeta " + CARD,
        ),
        FIRST,
    )
    ids["comment"] = comment.id
    assert thread.mark_delivered(claim_one(thread, TO_CUSTOMER), WORKER, "text")
    assert (
        thread.record(
            Update(ticket=KEY, source="jsm-comment:2", kind=COMMENT, body="Nota solo para agentes", public=False), FIRST
        )
        == []
    )
    reply = thread.from_customer(
        FIRST,
        "Aquí va <script>alert('cliente')</script>; escríbanme a ana.perez@empresa.com",
        source="local:respuesta-1",
        attachments=[Attachment(name="cartera<img src=x onerror=alert(1)>.csv", content_type="text/csv", size=10)],
        to_jsm=True,
    )
    ids["reply"] = reply.id
    assert thread.mark_delivered(claim_one(thread, TO_DESK), WORKER, "jsm")
    (waiting,) = thread.record(Update(ticket=KEY, source="jsm-status:1", kind=STATUS, body="En curso"), FIRST)
    ids["status"] = waiting.id
    assert thread.mark_delivered(claim_one(thread, TO_CUSTOMER), WORKER, "template")
    handoff = thread.note_for_desk(
        FIRST, HANDOFF, "El cliente pidió hablar con una persona.\nTranscripción: hola", source="local:h1", to_jsm=False
    )
    ids["handoff"] = handoff.id
    resolved, question = thread.record(
        Update(ticket=KEY, source="jsm-status:2", kind=STATUS, body="Resuelta", status_category=DONE), FIRST
    )
    ids["resolved"], ids["question"] = resolved.id, question.id
    assert thread.mark_failed(claim_one(thread, TO_CUSTOMER), WORKER, "Twilio 63016: <b>fuera de la ventana</b>")
    book = CsatBook(url)
    assert book.rate(KEY, SENDER, 4)
    assert book.comment(KEY, SENDER, "Bien <script>alert('csat')</script>")
    answer = thread.note_for_desk(FIRST, CSAT, "Calificación 4 de 5: Bien", source="local:csat", to_jsm=True)
    ids["answer"] = answer.id
    retry_at = datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)
    assert thread.mark_retry(
        claim_one(thread, TO_DESK), WORKER, "JSM respondió 503 para ana.perez@empresa.com", retry_at
    )
    return ids


ZONE = {"REVIEW_TIMEZONE": "America/Bogota"}  # the times and weeks below are Bogotá's


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str):  # noqa: F811
    """The review app over one database holding tickets, threads and review tables: SQLite, then PostgreSQL."""
    return make_site(tmp_path, monkeypatch, review_db_url, env={"TICKETS_DB_URL": review_db_url, **ZONE})


def tickets_url(site) -> str:
    return site.ctx.settings.tickets_db_url


# ----------------------------------------------------------------- thread
def test_thread_shows_every_message_in_order_with_direction_and_delivery_state(site) -> None:
    ids = seed_thread(tickets_url(site))
    cookies = session_cookies(site)
    _, page = site.test_client.get(thread_path(KEY), cookies=cookies)
    assert page.status == 200, page.text
    html = page.text
    order = [
        html.index(f'id="mensaje-{ids[name]}"')
        for name in ("comment", "reply", "status", "handoff", "resolved", "question", "answer")
    ]
    assert order == sorted(order), order
    assert "Después del ticket (7 mensajes)" in html

    def item(name: str) -> str:
        start = html.index(f'id="mensaje-{ids[name]}"')
        return html[start : html.index("</li>", start)]

    comment = item("comment")
    assert "Equipo de soporte → cliente" in comment and "Comentario del agente" in comment
    assert "2026-11-29 10:04" in comment  # the agent's time on the review clock
    assert "entregado por WhatsApp" in comment and "state-entregado" in comment
    assert "Laura &lt;b&gt;Agente&lt;/b&gt;" in comment
    reply = item("reply")
    assert "Cliente → equipo de soporte" in reply and "Respuesta del cliente" in reply
    assert "entregado a Jira Service Management" in reply
    assert "cartera&lt;img src=x onerror=alert(1)&gt;.csv" in reply  # the attachment's name, as text
    status = item("status")
    assert "Nuevo estado: En curso" in status and "entregado por WhatsApp (plantilla aprobada" in status
    handoff = item("handoff")
    assert "Nota interna" in handoff and "El cliente pidió hablar con una persona" in handoff
    assert "state-local" in handoff
    resolved = item("resolved")
    assert "state-fallido" in resolved and "Motivo: Twilio 63016: &lt;b&gt;fuera de la ventana&lt;/b&gt;" in resolved
    question = item("question")
    assert "Encuesta de satisfacción" in question and "state-pendiente" in question and ">pendiente<" in question
    answer = item("answer")
    assert "Nota interna" in answer and "Calificación 4 de 5" in answer and "state-pendiente" in answer
    assert "pendiente · nuevo intento 2026-11-29 11:00" in answer and "Motivo: JSM respondió 503 para a•••" in answer

    assert "Nota solo para agentes" not in html  # internal comments never enter the thread
    assert "<script>" not in html and html.count("&lt;script&gt;") == 3  # agent, customer, CSAT comment
    assert "<b>" not in html
    assert not shows_card(html) and "[tarjeta oculta]" in html
    assert "ana.perez@empresa.com" not in html  # masked until the lead opens the full record
    assert "4 de 5" in html and "Estado</dt><dd>Resuelta" in html


def test_thread_is_reached_from_the_ticket_the_transcript_and_the_list(site) -> None:
    seed_thread(tickets_url(site))
    cookies = session_cookies(site)
    link = f'href="{thread_path(KEY)}"'
    for path in (f"/revision/tickets/{KEY}", conversation_path(SENDER), "/revision/conversaciones"):
        _, page = site.test_client.get(path, cookies=cookies)
        assert page.status == 200 and link in page.text, path
    _, thread = site.test_client.get(thread_path(KEY), cookies=cookies)
    assert f'href="/revision/tickets/{KEY}"' in thread.text and f'href="{conversation_path(SENDER)}"' in thread.text


def test_a_ticket_without_news_has_an_empty_thread(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get(thread_path(KEY.lower()), cookies=cookies)
    assert page.status == 200
    assert "Aún no hay mensajes después del ticket" in page.text and "sin encuesta" in page.text


@pytest.mark.parametrize(
    "key",
    [
        "ECO-999999",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "ECO-%00",
        "A" * 500,
        "ECO-1%27%20OR%201%3D1",
        "%F0%9F%92%A5",
    ],
)
def test_unknown_or_hostile_keys_are_a_404_page(site, key: str) -> None:
    seed_thread(tickets_url(site))
    cookies = session_cookies(site)
    _, page = site.test_client.get(f"/revision/tickets/{key}/hilo", cookies=cookies)
    assert page.status == 404, page.text
    assert "No existe el ticket" in page.text and "<script>alert" not in page.text


@pytest.mark.parametrize(
    "path", [thread_path(KEY), "/revision/satisfaccion", "/revision/satisfaccion.csv", "/revision/satisfaccion.json"]
)
def test_thread_and_csat_need_a_logged_in_lead(site, path: str) -> None:
    seed_thread(tickets_url(site))
    _, response = site.test_client.get(path, allow_redirects=False)
    assert response.status == 302 and response.headers["location"].startswith("/revision/entrar?siguiente=")
    assert "Bien" not in response.text and "Laura" not in response.text
    _, forged = site.test_client.get(path, cookies={"revision_sesion": "inventada"}, allow_redirects=False)
    assert forged.status == 302


# ------------------------------------------------------------------- CSAT
# (key, conversation, channel, type id, type name, rating, comment, answered at)
ANSWERS = [
    (
        "ECO-000002",
        "c2",
        "whatsapp",
        "pago_en_linea",
        "Pago en línea",
        5,
        "<script>alert('x')</script> excelente, escríbanme a ana.perez@empresa.com",
        "2026-11-18T15:00:00+00:00",
    ),
    ("ECO-000003", "c3", "socketio", "pago_en_linea", "Pago en línea", 4, None, "2026-11-25T15:00:00+00:00"),
    (
        "ECO-000004",
        "c4",
        "teams",
        "capacitaciones",
        "Capacitaciones",
        2,
        '=HYPERLINK("http://x","y")',
        "2026-11-18T16:00:00+00:00",
    ),
    # Monday 03:00 UTC is still Sunday in Bogotá: week 48, not 49.
    (
        "ECO-000005",
        "c5",
        "whatsapp",
        "capacitaciones",
        "Capacitaciones",
        1,
        "nadie respondió",
        "2026-11-30T03:00:00+00:00",
    ),
]


def seed_csat(url: str) -> None:
    store, thread, book = TicketStore(url), TicketThread(url), CsatBook(url)
    for key, conversation, channel, type_id, type_name, rating, comment, answered in ANSWERS:
        ticket, _ = store.create(
            NewTicket(
                category_id="x",
                category="X",
                request_type_id=type_id,
                request_type=type_name,
                email="cliente@empresa.com",
                conversation_id=conversation,
                channel=channel,
            ),
            f"idem-{key}",
        )
        assert ticket.key == key
        thread.record(
            Update(ticket=key, source="st", kind=STATUS, body="Resuelta", status_category=DONE),
            ref(key, conversation, channel, type_id, type_name),
        )
        assert book.rate(key, conversation, rating)
        if comment:
            assert book.comment(key, conversation, comment)
        with ThreadTables(url).begin() as session:
            session.execute(
                update(CsatRow).where(CsatRow.ticket_key == key).values(answered_at=datetime.fromisoformat(answered))
            )
    # Asked and never answered: not in any figure.
    store.create(
        NewTicket(
            category_id="x",
            category="X",
            request_type_id="pago_en_linea",
            request_type="Pago en línea",
            email="c@empresa.com",
            conversation_id="c6",
            channel="socketio",
        ),
        "idem-6",
    )
    thread.record(
        Update(ticket="ECO-000006", source="st", kind=STATUS, body="Resuelta", status_category=DONE),
        ref("ECO-000006", "c6", "socketio", "pago_en_linea", "Pago en línea"),
    )


def table_row(html: str, table: str, label: str) -> list[str]:
    """The cells of the row headed ``label`` in the table with id ``table``."""
    start = html.index(f'id="{table}"')
    body = html[start : html.index("</table>", start)]
    head = f'<th scope="row">{label}</th>'
    assert head in body, (label, body)
    row = body[body.index(head) + len(head) : body.index("</tr>", body.index(head))]
    return [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]


def test_csat_page_averages_per_type_channel_and_week(site) -> None:
    seed_csat(tickets_url(site))
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/satisfaccion", cookies=cookies)
    assert page.status == 200, page.text
    html = page.text
    assert 'id="promedio">3,0<' in html and 'id="respuestas">4<' in html and "50,0 %" in html
    # answers, average, satisfied (4 or 5), then how many gave 1..5
    assert table_row(html, "tabla-por-tipo", "Pago en línea") == ["2", "4,5", "100,0 %", "0", "0", "0", "1", "1"]
    assert table_row(html, "tabla-por-tipo", "Capacitaciones") == ["2", "1,5", "0,0 %", "1", "1", "0", "0", "0"]
    assert table_row(html, "tabla-por-canal", "WhatsApp")[:2] == ["2", "3,0"]
    assert table_row(html, "tabla-por-canal", "Chat web")[:2] == ["1", "4,0"]
    assert table_row(html, "tabla-por-canal", "Microsoft Teams")[:2] == ["1", "2,0"]
    assert table_row(html, "tabla-por-semana", "Semana 47 de 2026 (desde el lunes 16/11)")[:2] == ["2", "3,5"]
    assert table_row(html, "tabla-por-semana", "Semana 48 de 2026 (desde el lunes 23/11)")[:2] == ["2", "2,5"]
    assert "Semana 49" not in html
    assert html.index("Semana 47") < html.index("Semana 48")  # weeks in order
    # The comments, newest first, each linking to its ticket's thread.
    comments = html[html.index('id="tabla-comentarios"') :]
    assert comments.count("<tr>") == 4  # the header and three comments
    assert comments.index("ECO-000005") < comments.index("ECO-000002")
    assert f'href="{thread_path("ECO-000004")}"' in comments and "1 de 5" in comments
    assert "2026-11-29 22:00" in comments  # Sunday night in Bogotá
    assert "&lt;script&gt;" in comments and "<script>" not in html
    assert "ana.perez@empresa.com" not in html
    assert 'href="/revision/satisfaccion"' in html  # in the navigation


def test_csat_period_filter_uses_the_team_days(site) -> None:
    seed_csat(tickets_url(site))
    cookies = session_cookies(site)
    _, page = site.test_client.get(
        "/revision/satisfaccion", params={"desde": "2026-11-25", "hasta": "2026-11-29"}, cookies=cookies
    )
    assert 'id="respuestas">2<' in page.text and 'id="promedio">2,5<' in page.text  # ECO-000003 and ECO-000005
    _, bad = site.test_client.get("/revision/satisfaccion", params={"desde": "ayer"}, cookies=cookies)
    assert bad.status == 200 and "La fecha «ayer» de «Desde» no es válida" in bad.text
    _, empty = site.test_client.get("/revision/satisfaccion", params={"desde": "2030-01-01"}, cookies=cookies)
    assert 'id="respuestas">0<' in empty.text and "No hay respuestas en este periodo." in empty.text


def test_csat_exports_are_masked_inert_and_logged(site) -> None:
    seed_csat(tickets_url(site))
    cookies = session_cookies(site)
    _, response = site.test_client.get("/revision/satisfaccion.csv", cookies=cookies)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert [r["ticket"] for r in rows] == ["ECO-000002", "ECO-000004", "ECO-000003", "ECO-000005"]
    hyperlink = next(r for r in rows if r["ticket"] == "ECO-000004")
    assert hyperlink["comentario"].startswith("'=HYPERLINK") and hyperlink["canal"] == "Microsoft Teams"
    last = rows[-1]
    assert last["semana"] == "2026-W48" and last["respondida"] == "2026-11-29 22:00:00" and last["calificacion"] == "1"
    assert "ana.perez@empresa.com" not in response.text
    _, filtered = site.test_client.get("/revision/satisfaccion.json?desde=2026-11-25", cookies=cookies)
    assert [r["ticket"] for r in json.loads(filtered.text)] == ["ECO-000003", "ECO-000005"]
    _, overview = site.test_client.get("/revision/resumen", cookies=cookies)
    assert "Exportó las encuestas de satisfacción (CSV)" in overview.text


def test_recent_answers_count_on_the_default_page(site) -> None:
    """An answer given just now, through the same calls as the chat, shows up without any date filter."""
    url = tickets_url(site)
    seed_thread(url)
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/satisfaccion", cookies=cookies)
    assert 'id="respuestas">1<' in page.text and 'id="promedio">4,0<' in page.text
    assert table_row(page.text, "tabla-por-canal", "WhatsApp")[:2] == ["1", "4,0"]
    assert f'href="{thread_path(KEY)}"' in page.text


def test_a_broken_tickets_database_is_said_in_spanish_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url=f"sqlite:///{tmp_path / 'review.db'}", env=ZONE)
    cookies = session_cookies(site)
    database = Path(tickets_url(site).removeprefix("sqlite:///"))
    database.write_bytes(b"esto no es una base de datos SQLite" * 200)
    for path, what in ((thread_path(KEY), f"el hilo del ticket {KEY}"), ("/revision/satisfaccion", "las encuestas")):
        _, page = site.test_client.get(path, cookies=cookies)
        assert page.status == 503, page.text
        assert f"No se pudo leer {what}" in page.text and "Traceback" not in page.text
    _, export = site.test_client.get("/revision/satisfaccion.csv", cookies=cookies)
    assert export.status == 503 and "No se pudieron leer las encuestas" in export.text
    assert "No se pudo leer el hilo del ticket ECO-000001" in caplog.text
