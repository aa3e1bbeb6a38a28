"""`make bench-followup` keeps working: a small run end to end, and its judge of what reached the customers.

The small run starts the real web server and follow-up worker (like the
other server tests) and checks that the benchmark passes, reports both
sides and leaves no process or scratch file behind. The judge is checked on
made-up arrivals with each way a comment can go wrong, so the benchmark
cannot pass while comments are lost, repeated, misdirected or out of order.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.bench_followup import DISORDERED, ERRORS, LOST, MISDIRECTED, PIPELINE, REPEATED, Arrival, tally
from bot.settings import PROJECT_ROOT

ANA, LUIS = "whatsapp:+573000000001", "whatsapp:+573000000002"


def body(ticket: int, comment: int) -> str:
    return f"💬 ECO-000001 · Falla\nLaura Gómez escribió:\n\nAvance {comment} [bench {ticket}-{comment}]"


def processes_using(data_dir: str) -> list[str]:
    """Processes still running with ``BOT_DATA_DIR`` set to ``data_dir`` (ours: their environment is readable)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"BOT_DATA_DIR={data_dir}".encode() in environ.read_bytes().split(b"\0"):
                found.append(environ.parent.name)
        except OSError:
            continue
    return found


def test_the_judge_counts_a_clean_run_and_names_every_way_a_comment_went_wrong() -> None:
    due = {(1, 1): 10.0, (1, 2): 10.0, (2, 1): 10.5}
    customers = {1: ANA, 2: LUIS}
    clean = tally(
        PIPELINE,
        due,
        customers,
        [
            Arrival(11.0, ANA, body(1, 1)),
            Arrival(11.5, LUIS, body(2, 1)),
            Arrival(12.0, ANA, body(1, 2)),
            Arrival(12.1, ANA, "otro mensaje"),
        ],
    )
    assert clean.ok and clean.once == 3
    assert sorted(round(ms) for ms in clean.result.latencies_ms) == [1000, 1000, 2000]
    assert round(clean.result.seconds, 3) == 2.0 and round(clean.result.rate, 2) == 1.5

    wrong = tally(
        PIPELINE,
        due,
        customers,
        [
            Arrival(11.0, ANA, body(1, 2)),
            Arrival(11.2, ANA, body(1, 1)),
            Arrival(11.4, ANA, body(1, 1)),
            Arrival(11.6, ANA, body(2, 1)),
        ],
    )
    assert not wrong.ok and wrong.once == 1  # only comment 2 of ticket 1 arrived once, to its customer
    assert wrong.problems[REPEATED] == ["ticket 1 comentario 1 (×2)"]
    assert wrong.problems[MISDIRECTED] == ["ticket 2 comentario 1"]
    assert wrong.problems[DISORDERED] == ["ticket 1: [2, 1, 1]"]
    assert wrong.problems[LOST] == [] and wrong.problems[ERRORS] == []

    lost = tally(PIPELINE, due, customers, [Arrival(11.0, ANA, body(1, 1))])
    assert not lost.ok and lost.problems[LOST] == ["ticket 1 comentario 2", "ticket 2 comentario 1"]
    lost.problems[LOST].clear()
    lost.once = lost.expected
    lost.problems[ERRORS].append("el servidor web terminó con código 1")
    assert not lost.ok  # an error alone fails the run


def test_make_bench_followup_runs_the_subcommand() -> None:
    dry = subprocess.run(["make", "-n", "bench-followup"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert "-m bot bench followup" in dry.stdout
    listed = subprocess.run(["make", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert "make bench-followup" in listed.stdout


@pytest.mark.servers
def test_a_small_run_passes_reports_both_sides_and_leaves_nothing_behind() -> None:
    command = [sys.executable, "-m", "bot", "bench", "followup", "--comments", "20", "--tickets", "5", "--senders", "3"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=170, env=dict(os.environ))
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    header = next(line for line in output.splitlines() if "webhook → cola → proceso" in line)
    assert "envío directo (WhatsAppPush)" in header
    assert re.search(r"entregados una sola vez a su cliente\s+20/20\s+20/20", output)
    assert re.search(r"latencia p95 \(ms\)\s+\d+\s+\d+", output)
    assert re.search(r"registrados en la conversación \(Rasa\)\s+20/20", output)
    assert re.search(r"p50 ×\d+\.\d \(\d+ → \d+\), p95 ×", output)
    assert output.count("[OK]") == 2 and "[NO]" not in output
    scratch = re.search(r"datos en (\S+)\)", output)
    assert scratch is not None
    assert not Path(scratch.group(1)).exists()
    assert processes_using(scratch.group(1)) == []
