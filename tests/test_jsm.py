"""The JSM client, `jsm sync` and status lookups, against a local fake of JSM."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from actions.adapters import LiveJsm, TicketDesk
from bot.catalog import Catalog
from bot.dialogue import status
from bot.dialogue.turn import Turn
from bot.settings import Settings
from bot.settings.tickets import JsmSettings
from bot.tickets import TicketStore
from bot.tickets.errors import JsmAuthError, JsmConfigError, JsmRejected, JsmUnavailable
from bot.tickets.factory import live_status_client
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_mapping import JsmMapping, TypeMapping
from bot.tickets.jsm_sync import sync_mapping
from bot.tickets.outbox_queue import OutboxQueue
from tests.fake_jsm import AGENT, EMAIL, FakeJsmServer, Scripted, jsm_env, jsm_server, tickets_db_url  # noqa: F401 (fixtures)
from tests.test_tickets import new_ticket

REQUEST = "/rest/servicedeskapi/request"


def jsm_settings() -> JsmSettings:
    """JSM's settings as a process reads them from its environment at start-up."""
    return Settings.from_env().tickets.jsm


def client(timeout: float = 5.0) -> JsmClient:
    return JsmClient(jsm_settings(), timeout=timeout)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env={**os.environ, **env})


# ------------------------------------------------------------------ configuration
def test_configuration_comes_from_the_environment(jsm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = jsm_settings()
    assert (config.site_url, config.service_desk_id, config.email) == (jsm_env["JSM_SITE_URL"], "7", EMAIL)
    assert config.mapping_file == tmp_path / "jsm-mapping.yml"  # default under BOT_DATA_DIR
    assert not config.create_customers
    assert jsm_env["JSM_API_TOKEN"] not in repr(config)  # never in logs or tracebacks
    monkeypatch.setenv("JSM_CREATE_CUSTOMERS", "true")
    monkeypatch.setenv("JSM_MAPPING_FILE", str(tmp_path / "otro.yml"))
    assert jsm_settings().create_customers and jsm_settings().mapping_file == tmp_path / "otro.yml"
    monkeypatch.delenv("JSM_API_TOKEN")
    with pytest.raises(JsmConfigError, match="JSM_API_TOKEN"):
        JsmClient(jsm_settings())


def test_live_status_client_only_with_the_jsm_backend(jsm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    live = live_status_client(Settings.from_env().tickets)
    assert live is not None and live.timeout == 4.0
    monkeypatch.setenv("TICKETS_BACKEND", "local")
    assert live_status_client(Settings.from_env().tickets) is None
    monkeypatch.delenv("TICKETS_BACKEND")
    assert live_status_client(Settings.from_env().tickets) is None


# ------------------------------------------------------------------------ errors
def test_documented_errors_are_sorted_by_what_to_do(jsm_env: dict[str, str], jsm_server: FakeJsmServer) -> None:
    fake = jsm_server.fake
    body = {"serviceDeskId": "7", "requestTypeId": "30", "requestFieldValues": {}}
    fake.script("POST", REQUEST, Scripted(400, {"errorMessage": "Summary: You must specify a summary of the issue.",
                                                "i18nErrorMessage": {"i18nKey": "sd.validation", "parameters": []}}))
    with pytest.raises(JsmRejected, match="You must specify a summary") as rejected:
        client().create_request(body)
    assert rejected.value.status == 400 and not rejected.value.retryable

    fake.script("POST", REQUEST, Scripted(429, {"errorMessage": "Rate limit exceeded."}, {"Retry-After": "7"}))
    with pytest.raises(JsmUnavailable) as throttled:
        client().create_request(body)
    assert throttled.value.retry_after == 7 and throttled.value.retryable

    fake.script("POST", REQUEST, Scripted(500, {"errorMessage": "Internal server error"}))
    with pytest.raises(JsmUnavailable, match="500"):
        client().create_request(body)

    fake.script("POST", REQUEST, Scripted(201, {}, delay=6.0))
    with pytest.raises(JsmUnavailable, match="a tiempo"):
        client(timeout=0.5).create_request(body)

    bad = JsmClient(dataclasses.replace(jsm_settings(), api_token="equivocado"))
    with pytest.raises(JsmAuthError, match="401") as unauthorized:
        bad.service_desk()
    assert unauthorized.value.retryable  # a fixed token lets waiting tickets through

    jsm_server.down()
    with pytest.raises(JsmUnavailable, match="conectar"):
        client().service_desk()
    jsm_server.up()
    assert fake.create_posts == 0  # every scripted answer came before the handler


def test_paged_lists_are_read_to_the_end(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    jsm_server.fake.page_size = 5
    types = client().request_types()
    assert len(types) == len(catalog.request_types) == len({t["id"] for t in types})
    starts = [int(c[2]["start"]) for c in jsm_server.fake.called("GET", "/requesttype") if "start" in c[2]]
    assert starts[:3] == [0, 5, 10]


# -------------------------------------------------------------------------- sync
def test_jsm_sync_writes_the_mapping_and_reports_mismatches(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, tmp_path: Path) -> None:
    from tests.fake_jsm import desk_from_catalog

    desk_from_catalog(
        jsm_server.fake, catalog, skip=("solicitud_usuario",), extra=("Reportar una caída general",),
        without_description=("gestion_archivos",), drop_options=("falla_generacion_pagos",),
    )
    result = run_cli("jsm", "sync", env=jsm_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lacking = catalog.request_type("solicitud_usuario")
    assert f"{len(catalog.request_types) - 1} de {len(catalog.request_types)} tipos" in out
    assert "En el catálogo pero no en JSM" in out and f"{lacking.name}  [solicitud_usuario]" in out
    assert "En JSM pero no en el catálogo" in out and "Reportar una caída general" in out
    dropped = catalog.request_type("gestion_archivos").field("item").option("falla_generacion_pagos")
    assert f"Opción sin equivalente en JSM: Gestión de archivos / ítem / {dropped.name}" in out

    raw = yaml.safe_load((tmp_path / "jsm-mapping.yml").read_text(encoding="utf-8"))
    assert raw["service_desk_id"] == "7" and "solicitud_usuario" not in raw["request_types"]
    files = raw["request_types"]["gestion_archivos"]
    jsm_files = next(t for t in jsm_server.fake.request_types if t["name"] == "Gestión de archivos")
    assert files["jsm_request_type_id"] == jsm_files["id"]
    assert files["fields"] == {"summary": "summary", "item": "customfield_10050"}  # no description on that form
    valid = {v["label"]: v["value"] for v in jsm_server.fake.fields[jsm_files["id"]][1]["validValues"]}
    item = catalog.request_type("gestion_archivos").field("item")
    assert files["options"]["item"] == {o.id: valid[o.name] for o in item.options if o.id != "falla_generacion_pagos"}
    support = raw["request_types"]["acompanamiento_tecnico"]["fields"]
    assert support == {"summary": "summary", "description": "description", "phone": "customfield_10060"}

    strict = run_cli("jsm", "sync", "--strict", "--dry-run", env=jsm_env)
    assert strict.returncode == 1 and "Se escribiría" in strict.stdout


def test_jsm_sync_keeps_a_type_mapped_by_hand(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    renamed = next(t for t in jsm_server.fake.request_types if t["name"] == catalog.request_type("capacitaciones").name)
    renamed["name"] = "Formación a clientes"  # renamed in JSM after the deployer mapped it
    previous = JsmMapping("7", {"capacitaciones": TypeMapping(renamed["id"], "Formación a clientes")})
    report = sync_mapping(client(), catalog, previous)
    assert report.mapping.for_type("capacitaciones").request_type_id == renamed["id"]
    assert report.missing_in_jsm == [] and report.extra_in_jsm == []
    fresh = sync_mapping(client(), catalog, None)
    assert [rt.id for rt in fresh.missing_in_jsm] == ["capacitaciones"]
    assert [t["name"] for t in fresh.extra_in_jsm] == ["Formación a clientes"]


def test_jsm_sync_explains_missing_settings_and_bad_credentials(jsm_env: dict[str, str]) -> None:
    missing = run_cli("jsm", "sync", env={**jsm_env, "JSM_SITE_URL": ""})
    assert missing.returncode == 2 and "JSM_SITE_URL" in missing.stderr
    wrong = run_cli("jsm", "sync", env={**jsm_env, "JSM_API_TOKEN": "equivocado"})
    assert wrong.returncode == 1 and "401" in wrong.stderr and "JSM_API_TOKEN" in wrong.stderr


# ------------------------------------------------------------------ status lookup
def delivered_ticket(store: TicketStore, jsm_server: FakeJsmServer, **overrides: str):
    """A ticket whose JSM request exists (as the worker leaves it)."""
    ticket, _ = store.create(new_ticket(**overrides), f"k-{len(store.list())}")
    key = f"{jsm_server.fake.project_key}-{len(jsm_server.fake.requests) + 1}"
    now = datetime.now(timezone.utc)
    jsm_server.fake.requests[key] = {
        "issueId": "10001", "requestTypeId": "30", "fields": {"summary": f"[{ticket.key}] x"}, "reporter": AGENT,
        "created": now, "status": "Esperando por soporte", "status_at": now, "history": [], "ownership": None,
    }
    queue = OutboxQueue(store.url)  # what the worker records after creating it
    queue.requeue([ticket.key])
    (claim,) = queue.claim_due("trabajador")
    queue.record_progress(claim, jsm_key=key, jsm_status="Esperando por soporte")
    queue.mark_delivered(claim)
    return store.get(ticket.key), key


def ask(text: str, sender: str, store: TicketStore, catalog: Catalog, live: JsmClient, email: str | None = None):
    """The status answer, with the store and JSM handed to the dialogue as the action server hands them."""
    turn = Turn(text=text, sender_id=sender, channel="rest")
    return status.status(turn, {"email": email}, catalog, TicketDesk(store), live=LiveJsm(live), postman=None)


def test_status_comes_live_from_jsm_and_is_remembered(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, store: TicketStore) -> None:
    ticket, jsm_key = delivered_ticket(store, jsm_server, conversation_id="c-own", email="own@a.co")
    moved = datetime(2024, 5, 3, 15, 42, tzinfo=timezone.utc)
    jsm_server.fake.set_status(jsm_key, "En curso", moved)
    (say,) = ask(f"¿cómo va mi solicitud {ticket.key}?", "c-own", store, catalog, client())
    assert say.response == "utter_ticket_status_jsm"
    assert say.kwargs == {"key": ticket.key, "jsm_key": jsm_key, "request_type": ticket.request_type,
                          "status": "En curso", "updated": "03/05/2024 10:42 (hora de Colombia)"}
    assert (store.get(ticket.key).jsm_status, store.get(ticket.key).jsm_status_at) == ("En curso", moved)

    # Another conversation's ticket stays private even with JSM behind it,
    # and JSM is not asked (its delay would tell the key exists).
    lookups = len(jsm_server.fake.called("GET", f"/request/{jsm_key}"))
    (other,) = ask(f"estado de {ticket.key}", "c-intruso", store, catalog, client(), email="own@a.co")
    assert other.response == "utter_ticket_status_private"
    assert len(jsm_server.fake.called("GET", f"/request/{jsm_key}")) == lookups

    # JSM unreachable: the last status seen answers, without waiting long.
    jsm_server.down()
    started = datetime.now(timezone.utc)
    (offline,) = ask("quiero saber el estado de mi caso", "c-own", store, catalog, client(timeout=1))
    assert (datetime.now(timezone.utc) - started).total_seconds() < 3
    assert offline.response == "utter_ticket_status_jsm" and offline.kwargs["status"] == "En curso"


def test_status_of_a_ticket_not_yet_in_jsm_is_the_local_one(jsm_env: dict[str, str], catalog: Catalog, store: TicketStore) -> None:
    ticket, _ = store.create(new_ticket(conversation_id="c-1"), "k")
    (say,) = ask(f"como va el {ticket.key}", "c-1", store, catalog, client())
    assert say.response == "utter_ticket_status" and say.kwargs["status"] == ticket.status_label


def test_status_without_a_key_lists_this_conversations_tickets_from_jsm(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, store: TicketStore) -> None:
    first, first_jsm = delivered_ticket(store, jsm_server, conversation_id="c-9", email="ana@a.co")
    second, second_jsm = delivered_ticket(store, jsm_server, conversation_id="c-9", email="ana@a.co")
    delivered_ticket(store, jsm_server, conversation_id="c-otra", email="ana@a.co")  # same e-mail, another chat
    jsm_server.fake.set_status(second_jsm, "Resuelta")
    says = ask("quiero saber el estado de mi caso", "c-9", store, catalog, client(), email="ana@a.co")
    assert [(s.kwargs["key"], s.kwargs["jsm_key"], s.kwargs["status"]) for s in says] == [
        (second.key, second_jsm, "Resuelta"), (first.key, first_jsm, "Esperando por soporte"),
    ]


def test_status_reads_the_backend_from_the_environment(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, store: TicketStore) -> None:
    ticket, jsm_key = delivered_ticket(store, jsm_server, conversation_id="c-env")
    jsm_server.fake.set_status(jsm_key, "Esperando por el cliente")
    live = live_status_client(Settings.from_env().tickets)  # as the action server builds it at start-up
    assert live is not None
    turn = Turn(text=f"estado {ticket.key}", sender_id="c-env", channel="rest")
    (say,) = status.status(turn, {}, catalog, TicketDesk(store), live=LiveJsm(live))
    assert say.kwargs["status"] == "Esperando por el cliente"
