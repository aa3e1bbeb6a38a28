"""`make bench-load`: many customers completing a ticket at once, over REST, with and without the project's
changes to Rasa.

Each simulated customer runs the whole conversation (problem, e-mail, phone,
confirm) against freshly started servers on the embedded default; all start
together. The same load runs twice in one run: first against Rasa's stock
runtime for the same bot (``RASA_EXTENSIONS=off``: ``bot.rasa_ext`` without its
performance changes), then against the project as ``make run`` starts it; the
report puts them side by side with their ratio. The same number of messages
also goes to Rasa's bare ``/model/parse`` at the same concurrency, so the cost
of dialogue and actions shows as a ratio over NLU alone.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import aiohttp

from bot.kept_secrets import private_dir
from bot.launcher import LaunchError, Servers, child_env
from bot.rasa_ext import PERFORMANCE_OFF, PERFORMANCE_ON
from bot.settings import Settings, quiet_rasa_env
from bot.tickets import TicketStore

# One customer's conversation: (message, words the reply must contain).
SCRIPT = (
    (
        "el pse no me deja pagar, la página se queda cargando al volver al comercio desde esta mañana",
        "correo electrónico",
    ),
    ("{email}", "teléfono"),
    ("+57 315 777 8899", "Revisa tu solicitud"),
    ("/affirm", "Creé tu solicitud"),
)
TARGET_RATE = 40.0  # messages per second at 10 customers
TARGET_P95_MS = 250.0
REQUEST_TIMEOUT_S = 180
# Messages per run, whatever the concurrency, so that rates and percentiles
# rest on enough samples: with 10 customers each completes 20 tickets in a row.
MESSAGES_PER_RUN = 800
# Where the servers keep data: always the embedded default, whatever the shell says.
STORE_VARIABLES = ("TICKETS_DB_URL", "TRACKER_DB_URL", "REDIS_URL", "TICKETS_BACKEND")
STOCK, PROJECT, NLU = "Rasa tal cual", "este proyecto", "solo NLU"


@dataclass
class Result:
    label: str
    customers: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tickets_expected: Optional[int] = None
    tickets_created: Optional[int] = None

    @property
    def messages(self) -> int:
        return len(self.latencies_ms) + len(self.errors)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _customer(session: aiohttp.ClientSession, url: str, sender: str, email: str, result: Result) -> None:
    for template, expected in SCRIPT:
        message = template.format(email=email)
        started = time.perf_counter()
        try:
            async with session.post(url, json={"sender": sender, "message": message}) as reply:
                body = await reply.json(content_type=None) if reply.status == 200 else []
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            result.errors.append(f"{sender}: {type(exc).__name__}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        text = "\n".join(str(m.get("text") or "") for m in body if isinstance(m, dict))
        if status != 200 or expected not in text:
            result.errors.append(f"{sender} «{message[:30]}»: HTTP {status}, sin «{expected}»")
            return
        result.latencies_ms.append(elapsed)


def tickets_per_customer(customers: int, messages: int = MESSAGES_PER_RUN) -> int:
    return max(1, messages // (customers * len(SCRIPT)))


async def conversations(
    base_url: str, rest_token: str, customers: int, run_id: str, rounds: int, label: str = PROJECT
) -> Result:
    result = Result(label, customers)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    url = f"{base_url}/webhooks/rest/webhook"

    async def customer(n: int) -> None:
        for r in range(rounds):
            await _customer(session, url, f"{run_id}-{n}-{r}", f"cliente{n}@empresa.com", result)

    headers = {"Authorization": f"Bearer {rest_token}"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        started = time.perf_counter()
        await asyncio.gather(*(customer(n) for n in range(customers)))
        result.seconds = time.perf_counter() - started
    result.tickets_expected = customers * rounds
    return result


async def parse_baseline(base_url: str, token: str, customers: int, rounds: int) -> Result:
    """The same messages through NLU alone, with the same concurrency."""
    result = Result(NLU, customers)
    texts = [
        template.format(email=f"cliente{n}@empresa.com")
        for n in range(customers)
        for _ in range(rounds)
        for template, _ in SCRIPT
    ]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            text = queue.get_nowait()
            started = time.perf_counter()
            url = f"{base_url}/model/parse"
            try:
                async with session.post(url, params={"token": token}, json={"text": text}) as reply:
                    await reply.read()
                    ok = reply.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                result.errors.append(type(exc).__name__)
                continue
            if ok:
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                result.errors.append(f"HTTP {reply.status}")

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(customers)))
        result.seconds = time.perf_counter() - started
    return result


def _row(label: str, values: Sequence[str]) -> str:
    return f"{label:<34}" + "".join(f"{v:>22}" for v in values)


def report(results: Sequence[Result]) -> str:
    header = _row("", [f"{r.label} ×{r.customers}" for r in results])
    lines = [header, "-" * len(header)]
    lines.append(_row("mensajes", [str(r.messages) for r in results]))
    lines.append(_row("mensajes/s", [f"{r.rate:.1f}" for r in results]))
    for p in (50, 95, 99):
        lines.append(_row(f"latencia p{p} por turno (ms)", [f"{r.percentile(p):.0f}" for r in results]))
    means = [f"{statistics.mean(r.latencies_ms):.0f}" if r.latencies_ms else "-" for r in results]
    lines.append(_row("latencia media (ms)", means))
    lines.append(_row("errores", [str(len(r.errors)) for r in results]))
    tickets = [f"{r.tickets_created}/{r.tickets_expected}" if r.tickets_expected is not None else "-" for r in results]
    lines.append(_row("tickets creados / esperados", tickets))
    lines.append("")
    lines.append(
        f"{STOCK}: el mismo bot con RASA_EXTENSIONS=off (sin los cambios de rendimiento de bot/rasa_ext); "
        f"{PROJECT}: como lo arranca make run; {NLU}: /model/parse, la referencia."
    )
    return "\n".join(lines)


def ratios(results: Sequence[Result]) -> list[str]:
    """One line per number of customers: the project over Rasa's stock runtime, and NLU alone over the project."""
    lines = []
    for customers in dict.fromkeys(r.customers for r in results):
        by_label = {r.label: r for r in results if r.customers == customers}
        stock, project, nlu = by_label.get(STOCK), by_label.get(PROJECT), by_label.get(NLU)
        if stock is None or project is None or not stock.rate or not stock.percentile(95):
            continue
        line = (
            f"  {customers} clientes: {project.rate / stock.rate:.1f}× mensajes/s "
            f"({stock.rate:.1f} → {project.rate:.1f}), p95 {project.percentile(95) / stock.percentile(95):.2f}× "
            f"({stock.percentile(95):.0f} → {project.percentile(95):.0f} ms)"
        )
        if nlu is not None and project.rate:
            line += f"; solo NLU: {nlu.rate / project.rate:.1f}× los mensajes/s del proyecto"
        lines.append(line)
    return lines


def scratch_settings(scratch: Path, extensions: bool) -> Settings:
    """Settings for servers on the embedded default in ``scratch``, on free ports."""
    env = {name: value for name, value in quiet_rasa_env().items() if name not in STORE_VARIABLES}
    env.update(
        {
            "BOT_DATA_DIR": str(scratch),
            "RASA_PORT": str(_free_port()),
            "ACTIONS_PORT": str(_free_port()),
            "WEB_PORT": str(_free_port()),
            "RASA_EXTENSIONS": "on" if extensions else "off",
        }
    )
    return Settings.from_env(env)


def start(settings: Settings, log_path: Path) -> Servers:
    """The servers as ``make run`` starts them, with Rasa's performance extensions as ``settings`` say.

    The launcher's environment for the servers carries the shell's; the
    switch and the store variables are set here so that both runs see the same
    embedded default, whatever the shell says.
    """
    servers = Servers(settings, log_path=log_path)
    servers.check_ports()
    private_dir(settings.data_dir)
    env = {name: value for name, value in child_env(settings).items() if name not in STORE_VARIABLES}
    env.update(
        {
            "TICKETS_DB_URL": settings.tickets_db_url,
            "TRACKER_DB_URL": settings.tracker_db_url,
            "RASA_EXTENSIONS": "on" if settings.runtime.rasa_extensions else "off",
        }
    )
    with log_path.open("ab") as log:
        for server in servers.servers:
            server.start(env, log)
    servers.wait_ready()
    return servers


def confirm_runtime(log_path: Path, extensions: bool) -> None:
    """Stop unless the Rasa server logged the runtime this run is meant to measure."""
    log = log_path.read_text(encoding="utf-8", errors="replace")
    on, off = log.rfind(PERFORMANCE_ON), log.rfind(PERFORMANCE_OFF)
    if max(on, off) < 0 or (on > off) != extensions:
        wanted = PERFORMANCE_ON if extensions else PERFORMANCE_OFF
        raise LaunchError(f"El servidor Rasa no registró «{wanted}» (registro: {log_path}): la medición no valdría.")


def measure(
    extensions: bool, scratch: Path, customer_counts: Sequence[int], messages: int, baseline: bool
) -> list[Result]:
    """Start the servers with the extensions on or off, run every load, stop them."""
    settings = scratch_settings(scratch, extensions)
    label = PROJECT if extensions else STOCK
    print(f"Arrancando los servidores ({label}; embebido por defecto, datos en {scratch}) ...", flush=True)
    servers = start(settings, scratch / "servers.log")
    results: list[Result] = []
    try:
        confirm_runtime(scratch / "servers.log", extensions)
        base = f"http://127.0.0.1:{settings.rasa_port}"
        rest = settings.secrets.rest_token
        store = TicketStore(settings.tickets_db_url)
        asyncio.run(conversations(base, rest, 2, "calentamiento", 2, label))  # load models, JIT, connections
        for customers in customer_counts:
            rounds = tickets_per_customer(customers, messages)
            run_id = f"carga-{uuid.uuid4().hex[:6]}"
            print(f"{label}: {customers} clientes a la vez, {rounds} ticket(s) seguidos cada uno ...", flush=True)
            full = asyncio.run(conversations(base, rest, customers, run_id, rounds, label))
            full.tickets_created = sum(1 for t in store.list() if t.conversation_id.startswith(run_id + "-"))
            results.append(full)
            if baseline:
                print(f"{customers} mensajes concurrentes a /model/parse ...", flush=True)
                token = settings.secrets.rasa_api_token
                results.append(asyncio.run(parse_baseline(base, token, customers, rounds)))
    finally:
        servers.stop()
    return results


def checks(results: Sequence[Result]) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    for r in results:
        if r.label == NLU:
            continue
        if r.label == PROJECT and r.customers == 10:
            found.append((f"≥ {TARGET_RATE:.0f} mensajes/s con 10 clientes: {r.rate:.1f}", r.rate >= TARGET_RATE))
            p95 = r.percentile(95)
            found.append((f"p95 ≤ {TARGET_P95_MS:.0f} ms con 10 clientes: {p95:.0f} ms", p95 <= TARGET_P95_MS))
        where = f"{r.label}, {r.customers} clientes"
        found.append((f"0 errores ({where}): {len(r.errors)}", not r.errors))
        lost = f"{r.tickets_created}/{r.tickets_expected}"
        found.append((f"0 tickets perdidos ({where}): {lost}", r.tickets_created == r.tickets_expected))
    return found


def run(customer_counts: Sequence[int], messages: int = MESSAGES_PER_RUN) -> int:
    """Measure Rasa's stock runtime and the project on the same load, print both and their ratio."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    stock = measure(False, scratch / "rasa-tal-cual", customer_counts, messages, baseline=False)
    project = measure(True, scratch / "este-proyecto", customer_counts, messages, baseline=True)
    results: list[Result] = []
    for customers in customer_counts:
        results += [r for r in stock + project if r.customers == customers]
    print("\n" + report(results))
    for result in results:
        for error in result.errors[:5]:
            print(f"  error ({result.label} ×{result.customers}): {error}")
    print("\nEste proyecto frente a Rasa tal cual (el mismo bot y la misma carga, en esta ejecución):")
    print("\n".join(ratios(results)))
    print("\nObjetivos (máquina de 2 núcleos, embebido por defecto):")
    found = checks(results)
    for text, ok in found:
        print(f"  [{'OK' if ok else 'NO'}] {text}")
    return 0 if all(ok for _, ok in found) else 1
