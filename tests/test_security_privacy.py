"""Card numbers stay out of stored events and file names, without breaking the files.

A customer may paste a card number anywhere a channel keeps what they sent
(message metadata) and may name a file after one. The tracker store masks
every event before it is written; the attachment store masks the file name
when it stores the file, so the path, the name shown and every copy agree.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from sanic_testing import TestManager

from bot.attachments import CARD_FILE_MASK, AttachmentPolicy, AttachmentStore, safe_filename
from bot.catalog import Catalog
from bot.channels.web_session import SessionSigner
from bot.dialogue import submit
from bot.dialogue.turn import Turn
from bot.privacy import CARD_MASK, mask_cards, mask_sender
from bot.settings import Settings
from bot.stores import mask_event
from actions.adapters import TicketDesk
from bot.catalog import get_catalog
from bot.settings.tickets import OutboxSettings
from bot.tickets.delivery import TicketDelivery
from bot.tickets.delivery_text import transcripts_from
from bot.tickets.factory import build_ticket_store
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_mapping import MappingFile
from bot.tickets.jsm_sync import sync_mapping
from bot.tickets.outbox_queue import OutboxQueue
from bot.tickets.worker import Worker
from bot.transcripts import TrackerReader
from bot.web.app import create_app
from tests.cards import CARD, shows_card
from tests.fake_jsm import FakeJsmServer, jsm_env, jsm_server, tickets_db_url  # noqa: F401 (fixtures)

PDF = b"%PDF-1.4\n" + b"0" * 64
_names = itertools.count()


# ------------------------------------------------------------ event metadata
def test_card_numbers_in_event_metadata_are_masked() -> None:
    references = [{"id": "AbCdEfGhIjKlMnOpQrStUvWx", "name": "comprobante.pdf", "size": 10}]
    user = UserUttered(
        "/attach", intent={"name": "attach"},
        metadata={"profile_name": f"Ana {CARD}", "attachments": references, "nota": [{"texto": f"tarjeta {CARD}"}]},
    )
    bot = BotUttered("listo", metadata={"eco": f"recibí {CARD}"})
    action = ActionExecuted("action_listen", metadata={"nota": CARD})
    for event in (user, bot, action):
        mask_event(event)
    assert not shows_card(str(user.metadata)) and not shows_card(str(bot.metadata)) and not shows_card(str(action.metadata))
    assert user.metadata["profile_name"] == f"Ana {CARD_MASK}"
    assert user.metadata["attachments"] == references  # ids and ordinary names untouched
    assert user.as_dict()["metadata"]["nota"] == [{"texto": f"tarjeta {CARD_MASK}"}]  # what the store writes


def test_events_without_metadata_are_left_alone() -> None:
    user = UserUttered("hola", intent={"name": "greet"})
    mask_event(user)
    assert user.metadata == {} and user.text == "hola"


# ---------------------------------------------------------------- file names
@pytest.mark.parametrize(
    "name",
    [f"{CARD}.pdf", "4111-1111-1111-1111.pdf", "4111_1111_1111_1111.pdf", "4111.1111.1111.1111.pdf",
     "4111111111111111.pdf", f"factura {CARD} marzo.pdf", f"C:\\Users\\ana\\{CARD}.pdf", "4111 1111 1111.1111",
     "+4111 1111 1111 1111.pdf"],
)
def test_a_card_number_never_reaches_a_stored_file_name(name: str) -> None:
    safe = safe_filename(name)
    assert not shows_card(safe) and CARD_FILE_MASK in safe
    assert mask_cards(safe) == safe  # nothing left for later masking to change


@pytest.mark.parametrize(
    "name, expected",
    [("reporte ñandú.xlsx", "reporte ñandú.xlsx"), ("factura 2024-03 #15.pdf", "factura 2024-03 _15.pdf"),
     ("+57 315 777 8899.png", "57 315 777 8899.png"), ("v1.2_final.pdf", "v1.2_final.pdf")],
)
def test_ordinary_file_names_keep_their_digits(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_mask_cards_takes_the_marker() -> None:
    assert mask_cards(f"pagué con {CARD}") == f"pagué con {CARD_MASK}"
    assert mask_cards(f"pagué con {CARD}", marker="X") == "pagué con X"


# --------------------------------------------------------------------- logs
@pytest.mark.parametrize(
    "sender, logged",
    [("whatsapp:+573157778899", "whatsapp:+57•••••••899"), ("+573157778899", "+57•••••••899"),
     ("web:AbCdEfGhIjKlMnOpQrStUvWx", "web:AbCdEfGhIjKlMnOpQrStUvWx"), ("teams:29:1AbC-dEf", "teams:29:1AbC-dEf"), ("", "")],
)
def test_senders_are_logged_without_their_phone_number(sender: str, logged: str) -> None:
    assert mask_sender(sender) == logged
    assert "3157778899" not in mask_sender(sender)


# ----------------------------- a card-named file, from upload to JSM, intact
@pytest.fixture
def mapped(jsm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("WEB_ALLOWED_ORIGINS", "https://www.cliente.com.co")
    for name in ("PROXIES_COUNT", "UPLOAD_RATE_PER_MINUTE", "UPLOAD_MAX_FILES_PER_CONVERSATION",
                 "UPLOAD_MAX_BYTES_PER_CONVERSATION", "WEB_SESSION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    config = Settings.from_env().tickets.jsm
    sync_mapping(JsmClient(config), get_catalog()).mapping.dump(config.mapping_file)
    return jsm_env


def test_a_file_named_like_a_card_number_reaches_jsm_masked_and_whole(
    mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog
) -> None:
    settings = Settings.from_env()
    token = SessionSigner(settings.secrets.web_session_secret).issue()
    sender = token.rsplit(".", 1)[0]
    web = create_app(settings, name=f"privacy_test_{next(_names)}")
    TestManager(web)
    _, response = web.test_client.post(
        "/api/adjuntos", files={"archivo": (f"{CARD}.pdf", PDF, "application/pdf")}, data={"sesion": token}
    )
    assert response.status == 201, response.json
    assert response.json["name"] == f"{CARD_FILE_MASK}.pdf"  # what the widget shows

    # The action resolves it, the slot is stored by the tracker store (masked), and the ticket is made from it.
    store = AttachmentStore.from_settings(catalog, settings)
    (record,) = store.resolve([{"id": response.json["id"]}], owner=sender)
    assert not shows_card(str(record))
    slot = SlotSet("attachment", [record])
    mask_event(slot)
    assert slot.value == [record] and Path(slot.value[0]["path"]).read_bytes() == PDF

    tickets = build_ticket_store(settings, catalog)
    values: dict[str, Any] = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": "ana@empresa.com",
        "confirmation": "send", "original_text": "no me carga el archivo de cartera", "attachment": slot.value,
    }
    updates, says = submit.submit(values, Turn(text="/affirm", sender_id=sender, message_id="m-1", channel="socketio"),
                                  catalog, TicketDesk(tickets), store)
    assert says[0].response == "utter_ticket_created", says
    config = settings.tickets.jsm
    fast = OutboxSettings(poll_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.2, lease_seconds=10)
    queue = OutboxQueue(tickets.url)
    delivery = TicketDelivery(
        queue, JsmClient(config, timeout=2.0), MappingFile(config.mapping_file), catalog=catalog,
        attachments=store, transcripts=transcripts_from(TrackerReader(settings.tracker_db_url)), settings=fast,
    )
    assert Worker(queue, delivery, fast).run_once() == 1

    fake = jsm_server.fake
    (key,) = fake.requests
    assert [(a["filename"], a["data"]) for a in fake.attachments[key]] == [(f"{CARD_FILE_MASK}.pdf", PDF)]
    assert "ya no estaba disponible" not in fake.comments[key][0]["body"]
    assert not any(shows_card(str(call)) for call in fake.calls)


def test_the_store_never_writes_a_card_number_to_disk(tmp_path: Path, catalog: Catalog) -> None:
    store = AttachmentStore(tmp_path, AttachmentPolicy(catalog.attachment_field))
    stored = store.save(f"{CARD}.pdf", "application/pdf", PDF, owner="web:conversacion-de-ana-01")
    written = [str(p) for p in tmp_path.rglob("*")] + [p.read_text("utf-8") for p in tmp_path.rglob("*.json")]
    assert not any(shows_card(text) for text in written)
    assert Path(stored.path).read_bytes() == PDF
