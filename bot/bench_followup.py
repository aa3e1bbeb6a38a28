"""`make bench-followup`: how soon an agent's comment in JSM reaches the WhatsApp customer.

The web server and the follow-up worker run as real subprocesses (as the launcher starts them) on scratch
data; local fakes stand in for JSM, Twilio and Rasa's API. Signed ``comment_created`` webhooks for tickets
delivered to JSM (the customers' window open) come from several senders at once, each ticket's in order as
Jira sends them, each timed from its POST to the fake Twilio receiving the message. Baseline, same run: the
same notices straight to the fake Twilio by the worker's own WhatsApp push (no webhook, queue or worker),
each ticket's in order, all at once, timed from the burst's start. Exit 1 if a comment is lost, repeated,
out of order or misdirected. The fakes come from the ``tests`` package: acceptable in a benchmark, run from
the repository with the dev dependencies (``make bench-followup``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import aiohttp

from bot.bench_load import STORE_VARIABLES, Result, _free_port
from bot.catalog import get_catalog
from bot.channels.addresses import AddressBook, now
from bot.channels.push import PushFailed
from bot.channels.whatsapp.output import CHANNEL_NAME as WHATSAPP
from bot.channels.whatsapp.push import STATUS_WAITS
from bot.dialogue.notices import Notice, render
from bot.followup.customer_delivery import CONCURRENCY
from bot.followup.senders import build_senders
from bot.kept_secrets import private_dir
from bot.launcher import LaunchError, Servers, child_env
from bot.settings import Settings, quiet_rasa_env
from bot.thread import ThreadMessage, TicketThread
from bot.thread.model import COMMENT, DELIVERED, TO_CUSTOMER
from bot.tickets import TicketStore
from bot.tickets.jsm_webhook import IDENTIFIER_HEADER, SIGNATURE_HEADER, signature_of
from bot.tickets.model import Ticket
from bot.tickets.updates import UpdateRecorder

# Test code, outside the static gate (mypy checks bot/ and actions/): imported by name, so mypy stays out of it.
fake_jsm, fake_rasa_api, fake_twilio, jsm_desk = (
    importlib.import_module(f"tests.{name}") for name in ("fake_jsm", "fake_rasa_api", "fake_twilio", "jsm_desk")
)

COMMENTS, TICKETS, SENDERS = 200, 50, 8
WEB, WORKER = "servidor web", "proceso de seguimiento"  # the launcher's names for the two processes measured
READY_TIMEOUT_S = 90.0
SETTLE_S = 1.5  # after the last arrival: longer than a worker round, so a repeated message would show
WEBHOOK_ATTEMPTS, WEBHOOK_PAUSE_S = 5, 0.5  # Jira retries a 5xx or an unanswered delivery
MARK = re.compile(r"\[bench (\d+)-(\d+)\]")
# The shell's help desk, channels and pace never leak into the scratch run.
SCRUBBED = ("JSM_", "TWILIO_", "WHATSAPP_", "TEAMS_", "FOLLOWUP_", "OUTBOX_", "SMTP_", "RASA_API_TOKEN")
PIPELINE, BASELINE = "webhook → cola → proceso", "envío directo (WhatsAppPush)"
# What can go wrong with a comment; ERRORS: webhooks refused, sends failed, a process gone.
PROBLEMS = ("perdidos", "repetidos", "a otro cliente", "tickets fuera de orden", "errores")
LOST, REPEATED, MISDIRECTED, DISORDERED, ERRORS = PROBLEMS

Key = tuple[int, int]  # (ticket number, comment number)
Waited = tuple[list["Arrival"], Optional[str]]  # what arrived, and why not everything did


class Arrival(NamedTuple):
    at: float  # time.monotonic() in this process, when the fake Twilio got the request
    to: str
    body: str


def key_of(text: str) -> Optional[Key]:
    match = MARK.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class Tally:
    """One side's deliveries, judged: latencies of the first arrivals and every way a comment went wrong."""

    result: Result
    expected: int
    once: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in PROBLEMS})
    extra: dict[str, str] = field(default_factory=dict)  # report rows only this side has

    @property
    def ok(self) -> bool:
        return self.once == self.expected and not any(self.problems.values())


def tally(label: str, due: Mapping[Key, float], customers: Mapping[int, str], arrivals: Sequence[Arrival]) -> Tally:
    """Judge ``arrivals`` against the comments ``due`` (each with the moment its news was handed over)."""
    keyed = [(key, a) for a in arrivals if (key := key_of(a.body)) is not None and key in due]
    seen: dict[Key, list[Arrival]] = {}
    for key, arrival in keyed:
        seen.setdefault(key, []).append(arrival)
    firsts = {key: hits[0].at for key, hits in seen.items()}
    seconds = max(firsts.values()) - min(due.values()) if firsts else 0.0
    latencies = [(firsts[k] - due[k]) * 1000 for k in sorted(firsts)]
    found = Tally(Result(label, len(customers), seconds, latencies), len(due))
    for key in sorted(due):
        hits = seen.get(key, [])
        what = f"ticket {key[0]} comentario {key[1]}"
        found.problems[LOST] += [what] if not hits else []
        found.problems[REPEATED] += [f"{what} (×{len(hits)})"] if len(hits) > 1 else []
        found.problems[MISDIRECTED] += [what] if any(h.to != customers[key[0]] for h in hits) else []
        found.once += 1 if len(hits) == 1 and hits[0].to == customers[key[0]] else 0
    for ticket in sorted(customers):
        order = [key[1] for key, _ in keyed if key[0] == ticket]
        found.problems[DISORDERED] += [f"ticket {ticket}: {order}"] if order != sorted(order) else []
    return found


@dataclass
class Rig:
    """The fakes, the scratch settings and environment, and the tickets (0 is the warm-up), for one run."""

    scratch: Path
    twilio: Any
    rasa: Any
    jsm: Any  # FakeJsmServer
    tickets: dict[int, Ticket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.secret = secrets.token_urlsafe(24)
        overrides = {
            "BOT_DATA_DIR": str(self.scratch),
            "WEB_PORT": str(_free_port()),
            "RASA_PORT": self.rasa.url.rsplit(":", 1)[1],  # the worker records each message in "Rasa" here
            "RASA_API_TOKEN": self.rasa.token,
            "TICKETS_BACKEND": "jsm",
            "JSM_SITE_URL": self.jsm.url,
            "JSM_SERVICE_DESK_ID": fake_jsm.DESK_ID,
            "JSM_EMAIL": fake_jsm.EMAIL,
            "JSM_API_TOKEN": fake_jsm.TOKEN,
            "JSM_WEBHOOK_SECRET": self.secret,
            "JSM_POLL_SECONDS": "0",  # news only by webhook: polling would bring them too and blur the measure
            "TWILIO_ACCOUNT_SID": fake_twilio.SID,
            "TWILIO_AUTH_TOKEN": fake_twilio.TOKEN,
            "TWILIO_WHATSAPP_NUMBER": "whatsapp:+14155238886",
            "TWILIO_API_URL": self.twilio.api_url,
        }
        self.settings = Settings.from_env({**self.scrubbed(quiet_rasa_env()), **overrides})
        private_dir(self.settings.data_dir)
        self.env = {**self.scrubbed(child_env(self.settings)), **overrides}

    @staticmethod
    def scrubbed(env: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k not in STORE_VARIABLES and not k.startswith(SCRUBBED)}

    def customers(self, plan: Mapping[int, int]) -> dict[int, str]:
        return {number: self.tickets[number].conversation_id for number in plan}

    def recorded(self, plan: Mapping[int, int]) -> dict[Key, ThreadMessage]:
        thread, found = TicketThread(self.settings.tickets_db_url), {}
        for number in plan:
            for message in thread.messages(self.tickets[number].key):
                key = key_of(message.body)
                if key is not None and message.direction == TO_CUSTOMER and message.kind == COMMENT:
                    found[key] = message
        return found

    def set_up(self, tickets: int) -> None:
        """Tickets 0 to ``tickets``: delivered to JSM (as tests/jsm_desk.py leaves them), their window open."""
        url = self.settings.tickets_db_url
        store, thread, book = TicketStore(url, outbox=True), TicketThread(url), AddressBook(url)
        desk = jsm_desk.Desk(self.settings, store, thread, UpdateRecorder(store, thread), self.jsm.fake, self.jsm)
        self.twilio.enforce_window = True  # free text outside the window would fail, as on Twilio (63016)
        for number in range(tickets + 1):
            customer = f"whatsapp:+57300{number:07d}"
            self.tickets[number] = desk.delivered(customer, WHATSAPP)[0]
            book.seen(customer, WHATSAPP, at=now() - timedelta(hours=1))
            self.twilio.customer_wrote(customer, time.time() - 3600)

    def arrivals(self, mark: int) -> list[Arrival]:
        messages, times = list(self.twilio.messages), list(self.twilio.message_times)
        messages, times = messages[mark : len(times)], times[mark : len(messages)]  # appended together, copied apart
        return [Arrival(t, m.get("To", ""), m.get("Body", "")) for t, m in zip(times, messages, strict=True)]

    def wait_for(self, mark: int, keys: set[Key], timeout: float, servers: Servers) -> Waited:
        """The arrivals since ``mark`` once every key arrived (and a while after), or why they did not."""
        deadline = time.monotonic() + timeout
        while True:
            missing = keys - {key_of(a.body) for a in self.arrivals(mark)}
            if not missing:
                time.sleep(SETTLE_S)
                return self.arrivals(mark), None
            gone = servers.first_exited()
            if gone is not None:
                return self.arrivals(mark), f"el {gone.name} terminó con código {gone.exit_code()}"
            if time.monotonic() > deadline:
                return self.arrivals(mark), f"{len(missing)} comentario(s) sin llegar tras {timeout:.0f} s"
            time.sleep(0.1)

    def webhooks(self, plan: Mapping[int, int]) -> dict[int, list[tuple[Key, bytes]]]:
        """Each ticket's ``comment_created`` bodies in order, as Jira Cloud posts them; made before the burst."""
        hooks: dict[int, list[tuple[Key, bytes]]] = {}
        for ticket, count in plan.items():
            jsm_key = str(self.tickets[ticket].jsm_key)
            for n in range(1, count + 1):
                text = f"Avance {n} de {count}: revisamos el archivo de cartera que falla. [bench {ticket}-{n}]"
                event = self.jsm.fake.agent_comment(jsm_key, text)
                hooks.setdefault(ticket, []).append(((ticket, n), json.dumps(event).encode("utf-8")))
        return hooks


@dataclass
class Burst:
    sent: dict[Key, float] = field(default_factory=dict)  # when each comment's first POST left
    answers: Result = field(default_factory=lambda: Result("respuestas del webhook", 0))
    retries: int = 0
    errors: list[str] = field(default_factory=list)


async def _post(session: aiohttp.ClientSession, url: str, secret: str, key: Key, body: bytes, burst: Burst) -> None:
    """One delivery, signed as Jira signs it; retried with the same identifier, as Jira retries."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature_of(secret, body)}
    headers[IDENTIFIER_HEADER] = str(uuid.uuid4())
    burst.sent[key] = time.monotonic()
    for _ in range(WEBHOOK_ATTEMPTS):
        started = time.monotonic()
        try:
            async with session.post(url, data=body, headers=headers) as reply:
                status, text = reply.status, await reply.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, text = 0, type(exc).__name__
        if status == 200:
            burst.answers.latencies_ms.append((time.monotonic() - started) * 1000)
            if '"registrado":1' not in text.replace(" ", ""):
                burst.errors.append(f"ticket {key[0]} comentario {key[1]}: no registrado ({text[:100]})")
            return
        if 0 < status < 500 and status != 429:
            break
        burst.retries += 1
        await asyncio.sleep(WEBHOOK_PAUSE_S)
    burst.errors.append(f"ticket {key[0]} comentario {key[1]}: el webhook respondió HTTP {status} {text[:100]}")


async def post_all(url: str, secret: str, hooks: Mapping[int, list[tuple[Key, bytes]]], senders: int) -> Burst:
    """``senders`` at once, each with its share of the tickets, one comment of each ticket per round."""
    burst, tickets = Burst(), sorted(hooks)

    async def sender(mine: list[int]) -> None:
        for index in range(max(len(hooks[t]) for t in mine)):
            for ticket in (t for t in mine if index < len(hooks[t])):
                await _post(session, url, secret, *hooks[ticket][index], burst)

    shares = [tickets[s::senders] for s in range(senders) if tickets[s::senders]]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(sender(share) for share in shares))
    return burst


def pipeline(rig: Rig, plan: Mapping[int, int], senders: int) -> tuple[Tally, dict[Key, ThreadMessage]]:
    """The burst of webhooks through the real processes, after one comment that warms them up."""
    hooks, warm = rig.webhooks(plan), rig.webhooks({0: 1})
    print("Arrancando el servidor web y el proceso de seguimiento ...", flush=True)
    log_path = rig.scratch / "servers.log"
    servers = Servers(rig.settings, log_path=log_path)
    servers.servers = [servers.named(WEB), servers.named(WORKER)]  # the launcher's commands for both
    try:
        with log_path.open("ab") as log:
            for server in servers.servers:
                server.start(rig.env, log)
        servers.wait_ready(READY_TIMEOUT_S)
        url = f"http://127.0.0.1:{rig.settings.web_port}/webhooks/jsm"
        warmed = asyncio.run(post_all(url, rig.secret, warm, 1))
        why = rig.wait_for(0, {(0, 1)}, 30.0, servers)[1] or next(iter(warmed.errors), None)
        if why is not None:
            raise LaunchError(f"el comentario de calentamiento no llegó a Twilio: {why}")
        mark = len(rig.twilio.message_times)
        print(f"{sum(plan.values())} webhooks de {len(plan)} tickets, {senders} remitentes a la vez ...", flush=True)
        burst = asyncio.run(post_all(url, rig.secret, hooks, senders))
        arrivals, why = rig.wait_for(mark, set(burst.sent), max(30.0, 0.45 * len(burst.sent)), servers)
    finally:
        servers.stop()
    found = tally(PIPELINE, burst.sent, rig.customers(plan), arrivals)
    recorded = rig.recorded(plan)
    in_thread = sum(1 for m in recorded.values() if m.delivery_status == DELIVERED)
    conversations = set(rig.customers(plan).values())
    in_rasa = sum(1 for c, events in rig.rasa.appended() if c in conversations for e in events if e["event"] == "bot")
    answers, retried = burst.answers, f" ({burst.retries} reintentos)" if burst.retries else ""
    found.extra = {
        "respuesta del webhook p50/p95 (ms)": f"{answers.percentile(50):.0f}/{answers.percentile(95):.0f}{retried}",
        "entregados según el hilo": f"{in_thread}/{found.expected}",
        "registrados en la conversación (Rasa)": f"{in_rasa}/{found.expected}",
    }
    missing = [f"{found.expected - in_thread} sin marcar entregados en el hilo"] if in_thread < found.expected else []
    found.problems[ERRORS] += burst.errors + ([why] if why else []) + missing
    return found, recorded


def baseline(rig: Rig, plan: Mapping[int, int], recorded: Mapping[Key, ThreadMessage]) -> Tally:
    """The same notices (rendered from the thread's messages, as the worker renders them), straight to Twilio."""
    waiting, errors, senders = get_catalog().waiting_statuses, [], build_senders(rig.settings)
    keys = [[(t, n) for n in range(1, count + 1) if (t, n) in recorded] for t, count in plan.items()]
    notices = [[(recorded[k].conversation_id, render(recorded[k], waiting)) for k in ticket] for ticket in keys]

    async def one_ticket(items: list[tuple[str, Notice]]) -> None:
        for conversation_id, notice in items:
            try:
                await senders[WHATSAPP].send(conversation_id, notice)
            except PushFailed as failure:
                errors.append(f"{notice.ticket_key}: {failure.reason}")

    async def all_tickets() -> None:
        try:
            await asyncio.gather(*(one_ticket(items) for items in notices))
        finally:
            await asyncio.gather(*(sender.close() for sender in senders.values()))

    print(f"Referencia: {len(recorded)} avisos directo a Twilio con WhatsAppPush ...", flush=True)
    mark, started = len(rig.twilio.message_times), time.monotonic()
    asyncio.run(all_tickets())
    due = {(t, n): started for t, count in plan.items() for n in range(1, count + 1)}
    found = tally(BASELINE, due, rig.customers(plan), rig.arrivals(mark))
    missing = [f"{len(due) - len(recorded)} comentario(s) no quedaron en el hilo"] if len(recorded) < len(due) else []
    found.problems[ERRORS] += errors + missing
    return found


def _row(label: str, values: Sequence[str]) -> str:
    return f"{label:<40}" + "".join(f"{v:>32}" for v in values)


def ratio(a: float, b: float, digits: int = 0) -> str:
    return (f"×{a / b:.1f} " if b else "- ") + f"({b:.{digits}f} → {a:.{digits}f})"


def report(piped: Tally, direct: Tally, settings: Settings) -> str:
    sides = (piped, direct)
    rows = [
        ("entregados una sola vez a su cliente", [f"{s.once}/{s.expected}" for s in sides]),
        *((kind, [str(len(s.problems[kind])) for s in sides]) for kind in PROBLEMS),
        ("latencia p50 (ms)", [f"{s.result.percentile(50):.0f}" for s in sides]),
        ("latencia p95 (ms)", [f"{s.result.percentile(95):.0f}" for s in sides]),
        ("latencia máxima (ms)", [f"{max(s.result.latencies_ms, default=0):.0f}" for s in sides]),
        ("mensajes/s", [f"{s.result.rate:.1f}" for s in sides]),
        *((label, [value, direct.extra.get(label, "-")]) for label, value in piped.extra.items()),
    ]
    header = _row("", [s.result.label for s in sides])
    lines = [header, "-" * len(header), *(_row(label, values) for label, values in rows), ""]
    a, b = piped.result, direct.result
    tops = [max(r.latencies_ms, default=0) for r in (a, b)]
    found = [f"p{p} {ratio(a.percentile(p), b.percentile(p))}" for p in (50, 95)]
    found += [f"máx {ratio(tops[0], tops[1])}", f"mensajes/s {ratio(a.rate, b.rate, 1)}"]
    follow = settings.followup
    lines += [
        "El proceso frente al envío directo (los mismos avisos, en esta ejecución): " + ", ".join(found),
        f"{PIPELINE}: del POST firmado a /webhooks/jsm a la llegada a Twilio (servidor web → hilo → followup run). "
        f"{BASELINE}: cada ticket en orden, todos a la vez, desde el inicio de la ráfaga.",
        f"Ritmo por defecto del proceso: {follow.poll_seconds:g} s de espera sin trabajo, lotes de {follow.batch}, "
        f"{CONCURRENCY} tickets a la vez; WhatsAppPush mira el estado de cada mensaje a los {STATUS_WAITS[0]:g} s.",
    ]
    return "\n".join(lines)


def run(comments: int = COMMENTS, tickets: int = TICKETS, senders: int = SENDERS) -> int:
    """Measure the follow-up pipeline and the direct push on the same comments, print both and their ratio."""
    began, failed, comments, senders = time.monotonic(), True, max(1, comments), max(1, senders)
    tickets = max(1, min(tickets, comments))
    scratch = Path(tempfile.mkdtemp(prefix="bench-followup-"))
    stops: list[Callable[[], None]] = []
    try:
        (twilio, stop_twilio), jsm = fake_twilio.start_fake_twilio(), fake_jsm.FakeJsmServer()
        rasa, stop_rasa = fake_rasa_api.start_fake_rasa_api(secrets.token_urlsafe(16))
        stops += [stop_twilio, jsm.close, stop_rasa]
        rig = Rig(scratch, twilio, rasa, jsm)
        print(f"Preparando {tickets} conversaciones de WhatsApp con su ticket en JSM (datos en {scratch}) ...")
        rig.set_up(tickets)
        plan = {t: comments // tickets + (t <= comments % tickets) for t in range(1, tickets + 1)}  # spread evenly
        piped, recorded = pipeline(rig, plan, senders)
        direct = baseline(rig, plan, recorded)
        print("\n" + report(piped, direct, rig.settings) + "\n\nComprobaciones:")
        for side in (piped, direct):
            print(f"  [{'OK' if side.ok else 'NO'}] {side.result.label}: {side.once}/{side.expected} una sola vez")
            for kind, found in side.problems.items():
                print("".join(f"      {kind}: {problem}\n" for problem in found[:5]), end="")
        failed = not (piped.ok and direct.ok)
        print(f"Duración total: {time.monotonic() - began:.0f} s")
        return 1 if failed else 0
    except LaunchError as exc:
        print(f"ERROR: {exc}")
        return 1
    finally:
        log = scratch / "servers.log"
        if failed and log.exists():
            print("Últimas líneas del registro de los procesos:\n" + "\n".join(log.read_text().splitlines()[-30:]))
        for stop in reversed(stops):
            stop()
        shutil.rmtree(scratch, ignore_errors=True)
