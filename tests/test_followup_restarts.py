"""END-TO-END: the help desk's messages reach a WhatsApp customer once and in order while processes restart.

Everything here is what a deployer runs: the launcher's servers (action,
Rasa, web and the follow-up worker, on both backends), the local fake of
Twilio behind WhatsApp, the agent's CLI (``python -m bot tickets
reply|status|thread``, run as a subprocess with the servers' environment)
and the review app over HTTP. The follow-up worker and the Rasa server are
stopped and started again (``Servers.stop_one`` / ``start_one``, as a
deploy or a crash and a supervisor would) while the agent keeps writing;
what the fake Twilio received is then compared with what the agent wrote.

Internal comments are not exercised here: they only come from JSM, and
the servers under test run the embedded help desk. tests/test_jsm_webhook.py
(``test_internal_comments_and_non_news_events_are_never_recorded``) and
tests/test_thread.py show one is never even queued for the customer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pytest

from bot.catalog import Catalog
from bot.dialogue.notices import render
from bot.launcher import child_env
from bot.review.accounts import Accounts
from bot.review.db import engine_for
from bot.settings import PROJECT_ROOT
from bot.thread import CsatBook, TicketThread
from bot.thread.model import COMMENT, CSAT, DELIVERED, PENDING, STATUS, TO_CUSTOMER
from bot.tickets.model import NewTicket
from tests.conftest import RunningAssistant
from tests.test_channels_e2e import post_whatsapp, replies_to

pytestmark = pytest.mark.servers

WORKER = "proceso de seguimiento"
RASA = "servidor Rasa"
PASSWORD = "clave-muy-segura-1"
# Long enough for a worker round (Twilio's status look takes a second) to bring a duplicate, if there were one.
SETTLE_SECONDS = 3.0


# ----------------------------------------------------------------- helpers
def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"tiempo agotado esperando: {what}")
        time.sleep(0.2)


@contextmanager
def stopped(assistant: RunningAssistant, name: str) -> Iterator[None]:
    """One server down for the block, and up again after it even when the block fails (the session shares them)."""
    assistant.servers.stop_one(name)
    try:
        yield
    finally:
        assistant.servers.start_one(name)


def tickets_cli(assistant: RunningAssistant, *args: str) -> str:
    """``python -m bot tickets …`` as the agent runs it, beside the servers, with their environment."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "tickets", *args],
        cwd=PROJECT_ROOT,
        env=child_env(assistant.settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"tickets {args[0]}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def reply(assistant: RunningAssistant, key: str, text: str) -> None:
    out = tickets_cli(assistant, "reply", key, text, "--autor", "Laura")
    assert "quedó en cola para el cliente" in out, out


def sent_to(assistant: RunningAssistant, customer: str, after: int) -> list[str]:
    """Every WhatsApp body Twilio was asked to send to ``customer`` since index ``after``."""
    return assistant.twilio.shown_to(customer, after)


def thread_json(assistant: RunningAssistant, key: str) -> list[dict[str, Any]]:
    return json.loads(tickets_cli(assistant, "thread", key, "--json"))


def followups_in_conversation(assistant: RunningAssistant, customer: str) -> list[dict[str, Any]]:
    """The notices the worker recorded in the customer's Rasa conversation (its metadata says which)."""
    token = assistant.settings.secrets.rasa_api_token
    url = f"{assistant.base_url}/conversations/{customer}/tracker?include_events=ALL&token={token}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        events = json.loads(answer.read())["events"]
    return [
        e["metadata"]["followup"] for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("followup")
    ]


def new_customer() -> str:
    return f"whatsapp:+57301{uuid.uuid4().int % 10_000_000:07d}"


def ticket_over_whatsapp(assistant: RunningAssistant, customer: str) -> str:
    """The customer asks for help on WhatsApp, through the real Rasa server, until the ticket is created."""
    steps = [
        ("¡Hola! El PSE no me deja pagar, sale un error al volver al comercio desde ayer", "correo electrónico"),
        ("ana@empresa.com", "Revisa tu solicitud"),
        ("1", "Creé tu solicitud"),
    ]
    done = ""
    for text, expected in steps:
        mark = len(assistant.twilio.messages)
        assert post_whatsapp(assistant, customer, text) == 200
        done = replies_to(assistant, customer, mark, expected)
    key = done.split("Creé tu solicitud ")[1].split(" ")[0].strip(".,")
    ticket = assistant.store.get(key)
    assert ticket is not None and (ticket.channel, ticket.conversation_id) == ("whatsapp", customer), done
    return key


def review_get(assistant: RunningAssistant, path: str) -> Any:
    """A lead logs in to the review app on the running web server and reads ``path``."""
    username = f"lider-{uuid.uuid4().hex[:8]}"
    Accounts(engine_for(assistant.settings.review_db_url)).add_user(username, PASSWORD)
    base = f"http://127.0.0.1:{assistant.settings.web_port}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(f"{base}/revision/entrar", timeout=30) as form:
        page = form.read().decode("utf-8")
        csrf_cookie = re.search(r"revision_csrf=([^;]+)", form.headers.get("Set-Cookie", "")).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"usuario": username, "clave": PASSWORD, "csrf": csrf, "siguiente": path}).encode()
    login = urllib.request.Request(
        f"{base}/revision/entrar", data=data, headers={"Cookie": f"revision_csrf={csrf_cookie}"}
    )
    with pytest.raises(urllib.error.HTTPError) as redirected:  # 302 to ``path``: the handler refuses to follow
        opener.open(login, timeout=30)
    assert redirected.value.code == 302, redirected.value.read()[:500]
    cookies = redirected.value.headers.get_all("Set-Cookie") or []
    session = next(re.search(r"revision_sesion=([^;]+)", c).group(1) for c in cookies if "revision_sesion=" in c)
    request = urllib.request.Request(f"{base}{path}", headers={"Cookie": f"revision_sesion={session}"})
    with opener.open(request, timeout=30) as answer:
        return json.loads(answer.read())


# ------------------------------------------------------------------- tests
def test_agent_comments_reach_whatsapp_once_and_in_order_while_the_worker_and_rasa_restart(
    assistant: RunningAssistant, catalog: Catalog
) -> None:
    customer = new_customer()
    key = ticket_over_whatsapp(assistant, customer)
    comments = [f"Comentario {n} de 8 sobre el pago con PSE (ref. {uuid.uuid4().hex[:6]})" for n in range(1, 9)]
    thread = TicketThread(assistant.settings.tickets_db_url)
    mark = len(assistant.twilio.messages)

    def arrived() -> int:
        return sum(1 for body in sent_to(assistant, customer, mark) if "Comentario " in body)

    def delivered() -> list[str]:
        return [m.delivery_status for m in thread.messages(key)]

    reply(assistant, key, comments[0])
    reply(assistant, key, comments[1])
    wait_until(lambda: arrived() >= 1, "el primer comentario en Twilio")
    with stopped(assistant, WORKER):  # stopped mid-stream: the second one may be on its way
        while_down = arrived()
        for text in comments[2:5]:
            reply(assistant, key, text)
        time.sleep(2.0)
        assert arrived() == while_down, "a message went out with the worker stopped"
    wait_until(lambda: delivered() == [DELIVERED] * 5, "los comentarios escritos con el proceso detenido")

    with stopped(assistant, RASA):
        reply(assistant, key, comments[5])
        reply(assistant, key, comments[6])
        wait_until(lambda: "Rasa" in (thread.messages(key)[5].last_error or ""), "el intento del sexto", timeout=30)
        assert arrived() == 5, sent_to(assistant, customer, mark)  # with Rasa down it waits, unsent
        sixth = thread.messages(key)[5]
        assert sixth.delivery_status == PENDING and "Rasa" in (sixth.last_error or ""), sixth
    reply(assistant, key, comments[7])
    wait_until(lambda: delivered() == [DELIVERED] * 8, "los 8 comentarios entregados", timeout=90)
    time.sleep(SETTLE_SECONDS)

    messages = thread.messages(key)
    assert [(m.direction, m.kind, m.body) for m in messages] == [(TO_CUSTOMER, COMMENT, c) for c in comments]
    expected = [render(m, catalog.waiting_statuses).text for m in messages]
    assert sent_to(assistant, customer, mark) == expected  # each once, in the order written, nothing else
    for text, body in zip(comments, expected, strict=True):
        assert f"Laura escribió:\n\n{text}" in body and key in body

    shown = thread_json(assistant, key)
    assert [(m["body"], m["delivery_status"], m["via"]) for m in shown] == [(c, DELIVERED, "text") for c in comments]
    # The conversation shows each of them once, in order: the customer's next message answers the agent.
    assert [f["message_id"] for f in followups_in_conversation(assistant, customer)] == [m.id for m in messages]


def test_resolved_then_the_survey_reach_whatsapp_once_in_order_and_the_answer_reaches_the_review(
    assistant: RunningAssistant, catalog: Catalog
) -> None:
    customer = new_customer()
    mark = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, "hola") == 200  # the 24-hour window opens; the address book notes it
    replies_to(assistant, customer, mark, "Soporte ecollect")
    ticket = assistant.store.create(
        NewTicket(
            category_id="modulo_administrativo",
            category="Módulo administrativo",
            request_type_id="gestion_archivos",
            request_type="Gestión de archivos",
            email="ana@empresa.com",
            description="el archivo de cartera no carga desde ayer",
            channel="whatsapp",
            conversation_id=customer,
        ),
        f"e2e-{uuid.uuid4().hex}",
    )[0]
    key = ticket.key
    thread = TicketThread(assistant.settings.tickets_db_url)
    mark = len(assistant.twilio.messages)

    with stopped(assistant, RASA):  # the agent resolves it while Rasa is down...
        out = tickets_cli(assistant, "status", key, "Resuelta")
        assert "El cambio de estado" in out and "La encuesta de satisfacción" in out, out
        time.sleep(2.0)
        assert sent_to(assistant, customer, mark) == []  # nothing the conversation could not record
        with stopped(assistant, WORKER):  # ...and the worker restarts meanwhile
            pass
    wait_until(
        lambda: [m.delivery_status for m in thread.messages(key)] == [DELIVERED, DELIVERED],
        "el estado y la encuesta entregados",
        timeout=90,
    )
    time.sleep(SETTLE_SECONDS)

    status, question = thread.messages(key)
    assert (status.kind, status.body, question.kind) == (STATUS, "Resuelta", CSAT)
    bodies = sent_to(assistant, customer, mark)
    # The survey: its ticket line as text, then the question as a list (shared content, no ticket key in it).
    assert len(bodies) == 3, bodies
    assert bodies[0] == render(status, catalog.waiting_statuses).text
    assert "Tu solicitud cambió de estado: Resuelta." in bodies[0]
    assert key in bodies[1]
    assert "¿Cómo calificarías la ayuda que recibiste?" in bodies[2] and "5" in bodies[2] and key not in bodies[2]
    assert [m["kind"] for m in thread_json(assistant, key)] == [STATUS, CSAT]

    mark = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, "5") == 200
    replies_to(assistant, customer, mark, "¿Quieres contarnos por qué?")
    mark = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, customer, "muy rápido") == 200
    replies_to(assistant, customer, mark, "Gracias por contarnos")

    answer = CsatBook(assistant.settings.tickets_db_url).get(key)
    assert answer is not None
    assert (answer.rating, answer.comment, answer.channel, answer.conversation_id) == (
        5,
        "muy rápido",
        "whatsapp",
        customer,
    )
    rows = [r for r in review_get(assistant, "/revision/satisfaccion.json") if r["ticket"] == key]
    assert [(r["calificacion"], r["comentario"], r["canal"]) for r in rows] == [(5, "muy rápido", "WhatsApp")]
