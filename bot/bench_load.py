"""`make bench-load`: many customers completing a ticket at once, over REST.

Each simulated customer runs the whole conversation (problem, e-mail, phone,
confirm) against freshly started servers on the embedded default; all start
together. In the same run, the same number of messages goes to Rasa's bare
``/model/parse`` at the same concurrency, so the cost of dialogue and actions
shows as a ratio over NLU alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import aiohttp

from bot.launcher import Servers, rest_token
from bot.settings import Settings
from bot.tickets import TicketStore

# One customer's conversation: (message, words the reply must contain).
SCRIPT = (
    ("el pse no me deja pagar, la página se queda cargando al volver al comercio desde esta mañana", "correo electrónico"),
    ("{email}", "teléfono"),
    ("+57 315 777 8899", "Revisa tu solicitud"),
    ("/affirm", "Creé tu solicitud"),
)
TARGET_RATE = 40.0  # messages per second at 10 customers
TARGET_P95_MS = 250.0
REQUEST_TIMEOUT_S = 180


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
    import socket

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


# Messages per run, whatever the concurrency, so that rates and percentiles
# rest on enough samples: with 10 customers each completes 20 tickets in a row.
MESSAGES_PER_RUN = 800


def tickets_per_customer(customers: int) -> int:
    return max(1, MESSAGES_PER_RUN // (customers * len(SCRIPT)))


async def conversations(base_url: str, rest_token: str, customers: int, run_id: str, rounds: Optional[int] = None) -> Result:
    result = Result("conversación", customers)
    rounds = rounds or tickets_per_customer(customers)
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


async def parse_baseline(base_url: str, token: str, customers: int) -> Result:
    """The same messages through NLU alone, with the same concurrency."""
    result = Result("solo NLU", customers)
    texts = [
        template.format(email=f"cliente{n}@empresa.com")
        for n in range(customers) for _ in range(tickets_per_customer(customers)) for template, _ in SCRIPT
    ]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            text = queue.get_nowait()
            started = time.perf_counter()
            try:
                async with session.post(f"{base_url}/model/parse", params={"token": token}, json={"text": text}) as reply:
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
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(customers)))
        result.seconds = time.perf_counter() - started
    return result


def _row(label: str, values: Sequence[str]) -> str:
    return f"{label:<34}" + "".join(f"{v:>24}" for v in values)


def report(results: Sequence[Result]) -> str:
    header = _row("", [f"{r.label} ×{r.customers}" for r in results])
    lines = [header, "-" * len(header)]
    lines.append(_row("mensajes", [str(r.messages) for r in results]))
    lines.append(_row("mensajes/s", [f"{r.rate:.1f}" for r in results]))
    for p in (50, 95, 99):
        lines.append(_row(f"latencia p{p} por turno (ms)", [f"{r.percentile(p):.0f}" for r in results]))
    lines.append(_row("latencia media (ms)", [f"{statistics.mean(r.latencies_ms):.0f}" if r.latencies_ms else "-" for r in results]))
    lines.append(_row("errores", [str(len(r.errors)) for r in results]))
    lines.append(_row("tickets creados / esperados", [
        f"{r.tickets_created}/{r.tickets_expected}" if r.tickets_expected is not None else "-" for r in results
    ]))
    lines.append("")
    lines.append("conversación: cada cliente completa tickets por el canal REST; solo NLU: /model/parse, la referencia.")
    return "\n".join(lines)


def run(customer_counts: Sequence[int]) -> int:
    """Start servers on the embedded default in a scratch folder, measure, print."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    for name in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REDIS_URL", "TICKETS_BACKEND"):
        os.environ.pop(name, None)
    os.environ.update({
        "BOT_DATA_DIR": str(scratch),
        "RASA_PORT": str(_free_port()),
        "ACTIONS_PORT": str(_free_port()),
        "WEB_PORT": str(_free_port()),
    })
    settings = Settings.from_env()
    print(f"Arrancando los servidores (embebido por defecto, datos en {scratch}) ...", flush=True)
    servers = Servers(settings, log_path=scratch / "servers.log")
    results: list[Result] = []
    checks: list[tuple[str, bool]] = []
    try:
        servers.start()
        servers.wait_ready()
        base = f"http://127.0.0.1:{settings.rasa_port}"
        token = (scratch / "rasa_api_token").read_text(encoding="utf-8").strip()
        rest = rest_token(settings)
        store = TicketStore(settings.tickets_db_url)
        asyncio.run(conversations(base, rest, 2, "calentamiento", rounds=2))  # load models, JIT, connections
        for customers in customer_counts:
            run_id = f"carga-{uuid.uuid4().hex[:6]}"
            print(f"{customers} clientes a la vez, {tickets_per_customer(customers)} ticket(s) seguidos cada uno ...", flush=True)
            full = asyncio.run(conversations(base, rest, customers, run_id))
            full.tickets_created = sum(1 for t in store.list() if t.conversation_id.startswith(run_id + "-"))
            print(f"{customers} mensajes concurrentes a /model/parse ...", flush=True)
            baseline = asyncio.run(parse_baseline(base, token, customers))
            results += [full, baseline]
            if customers == 10:
                checks.append((f"≥ {TARGET_RATE:.0f} mensajes/s con 10 clientes: {full.rate:.1f}", full.rate >= TARGET_RATE))
                checks.append((f"p95 ≤ {TARGET_P95_MS:.0f} ms con 10 clientes: {full.percentile(95):.0f} ms", full.percentile(95) <= TARGET_P95_MS))
            checks.append((f"0 errores con {customers} clientes: {len(full.errors)}", not full.errors))
            checks.append((f"0 tickets perdidos con {customers} clientes: {full.tickets_created}/{full.tickets_expected}", full.tickets_created == full.tickets_expected))
    finally:
        servers.stop()
    print("\n" + report(results))
    for result in results:
        for error in result.errors[:5]:
            print(f"  error ({result.label} ×{result.customers}): {error}")
    ratios = [
        f"{results[i].customers} clientes: {results[i + 1].rate / results[i].rate:.1f}× más mensajes/s con solo NLU"
        for i in range(0, len(results), 2) if results[i].rate
    ]
    print("\nCoste del diálogo y las acciones sobre el NLU: " + "; ".join(ratios))
    print("\nObjetivos (máquina de 2 núcleos, embebido por defecto):")
    for text, ok in checks:
        print(f"  [{'OK' if ok else 'NO'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1
