"""Issue 10 on Microsoft Teams: a valid Bot Framework token is not enough.

Microsoft signs activities of every channel and tenant that talks to the bot,
and the bot's access token goes wherever an activity's ``serviceUrl`` points,
so the channel also checks who the activity is from, where replies go and
where files come from. Everything goes through the real webhook, with tokens
signed by the fake Microsoft of ``test_teams.py``; a second fake on another
loopback port plays an attacker's (or an intranet) server and records any
request it gets.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.channels import teams
from bot.channels.identity import owning_channel
from bot.channels.teams import (
    SENDER_PREFIX,
    ConversationReference,
    TeamsConfig,
    TeamsInput,
    TeamsOutput,
    trusted_url,
)
from tests.test_teams import (  # noqa: F401 - fixtures are used by name
    PNG,
    TENANT,
    FakeMicrosoft,
    Harness,
    SigningKey,
    activity_for,
    answer_with,
    bot,
    credentials,
    data_dir,
    file_info,
    harness_for,
    key,
    make_key,
    microsoft,
    token_for,
)

NOT_FROM_TEAMS = "No pude descargar el archivo «{}»: no viene de Microsoft Teams."


@pytest.fixture
def attacker() -> Iterator[FakeMicrosoft]:
    """Another server on loopback: what an activity must not make us call."""
    with FakeMicrosoft([]) as fake:
        fake.files["secreto.pdf"] = b"%PDF-1.4 confidencial"
        yield fake


@pytest.fixture(autouse=True)
def no_host_lists_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults are Microsoft's unless a test sets the variables itself."""
    monkeypatch.delenv(teams.SERVICE_HOSTS_ENV, raising=False)
    monkeypatch.delenv(teams.DOWNLOAD_HOSTS_ENV, raising=False)


def nothing_happened(harness: Harness, microsoft: FakeMicrosoft) -> bool:
    return harness.rasa.messages == [] and microsoft.activities == [] and microsoft.token_calls == []


def stored_contents(data_dir: Path) -> list[bytes]:
    """Everything written under the data directory, whatever the store's layout.

    The address book writes its notes in the background: SQLite's journal may come and go while this looks.
    """
    contents = []
    for path in data_dir.rglob("*"):
        try:
            contents.append(path.read_bytes())
        except (FileNotFoundError, IsADirectoryError):
            continue
    return contents


# ------------------------------------------------------------------ channel
@pytest.mark.parametrize("channel", ["webchat", "directline", "emulator", "MSTEAMS", "", None, ["msteams"]])
def test_activities_of_other_channels_are_refused_even_with_a_valid_token(
    channel: Any, bot: Harness, microsoft: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    any_channel = make_key("key-any-channel", endorsements=())  # a key that may sign for every channel
    microsoft.keys.append(any_channel.jwk)
    answer_with(bot, {"text": "no debería salir"})
    token = token_for(any_channel, microsoft.base)

    with caplog.at_level(logging.WARNING, logger="bot.channels.teams"):
        reply = bot.post(activity_for(microsoft.base, channelId=channel), token=token)
    assert reply.status == 403
    assert nothing_happened(bot, microsoft)
    assert any("channel" in r.getMessage() and "is not msteams" in r.getMessage() for r in caplog.records)

    assert bot.post(activity_for(microsoft.base), token=token).status == 200  # the same key, from Teams
    assert [m.text for m in bot.rasa.messages] == ["hola"]


def test_a_key_endorsed_for_web_chat_cannot_bring_web_chat_in(bot: Harness, microsoft: FakeMicrosoft) -> None:
    both = make_key("key-both", endorsements=("msteams", "webchat"))
    microsoft.keys.append(both.jwk)
    reply = bot.post(activity_for(microsoft.base, channelId="webchat"), token=token_for(both, microsoft.base))
    assert reply.status == 403
    assert nothing_happened(bot, microsoft)


# ------------------------------------------------------------------- tenant
OTHER = "tenant-ajeno"


@pytest.mark.parametrize(
    "fields",
    [
        {"conversation": {"id": "a:conv;1", "tenantId": OTHER}, "channelData": {"tenant": {"id": OTHER}}},
        {"conversation": {"id": "a:conv;1"}, "channelData": {"tenant": {"id": OTHER}}},
        {"conversation": {"id": "a:conv;1", "tenantId": OTHER}, "channelData": {}},
        {"conversation": {"id": "a:conv;1", "tenantId": TENANT}, "channelData": {"tenant": {"id": OTHER}}},
        {"conversation": {"id": "a:conv;1"}, "channelData": {}},
        {"conversation": None, "channelData": None},
        {"conversation": {"id": "a:conv;1", "tenantId": [TENANT]}, "channelData": {"tenant": TENANT}},
        {"conversation": {"id": "a:conv;1", "tenantId": "  "}, "channelData": "texto"},
    ],
    ids=["other", "other-in-channel-data", "other-in-conversation", "conflicting", "missing", "null", "not-strings", "blank"],
)
def test_a_single_tenant_bot_refuses_other_or_missing_tenants(
    fields: dict[str, Any], bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    answer_with(bot, {"text": "no debería salir"})
    reply = bot.post(activity_for(microsoft.base, **fields), token=token_for(key, microsoft.base))
    assert reply.status == 403
    assert nothing_happened(bot, microsoft)


def test_the_tenant_id_is_compared_without_case(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    fields = {"conversation": {"id": "a:conv;1", "tenantId": TENANT.upper()}, "channelData": None}
    assert bot.post(activity_for(microsoft.base, **fields), token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in bot.rasa.messages] == ["hola"]


def test_a_multi_tenant_bot_accepts_any_tenant(microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path) -> None:
    harness = harness_for(TeamsInput.from_credentials(credentials(microsoft, tenant_id="")), microsoft)
    answer_with(harness, {"text": "Recibido."})
    for fields in (
        {"conversation": {"id": "a:conv;1", "tenantId": OTHER}, "channelData": {"tenant": {"id": OTHER}}},
        {"conversation": {"id": "a:conv;1"}, "channelData": None},
    ):
        assert harness.post(activity_for(microsoft.base, **fields), token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in harness.rasa.messages] == ["hola", "hola"]
    assert [a["text"] for a in microsoft.activities] == ["Recibido.", "Recibido."]


# -------------------------------------------------------- serviceurl claim
@pytest.mark.parametrize("service_url", [None, ""])
def test_a_token_without_the_serviceurl_claim_is_refused(
    service_url: Any, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    answer_with(bot, {"text": "no debería salir"})
    reply = bot.post(activity_for(microsoft.base), token=token_for(key, service_url))
    assert reply.status == 401
    assert nothing_happened(bot, microsoft)


def test_an_activity_without_service_url_is_refused(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    reply = bot.post(activity_for(microsoft.base, serviceUrl=None), token=token_for(key, microsoft.base))
    assert reply.status == 401
    assert nothing_happened(bot, microsoft)


# --------------------------------------------------- serviceUrl allow-list
def test_a_signed_service_url_off_the_list_never_gets_the_token(
    bot: Harness, microsoft: FakeMicrosoft, attacker: FakeMicrosoft, key: SigningKey
) -> None:
    """The token and the activity agree on the attacker's host: the host itself is refused."""
    answer_with(bot, {"text": "¡Hola!"})
    activity = activity_for(attacker.base)
    reply = bot.post(activity, token=token_for(key, attacker.base))
    assert reply.status == 403
    assert nothing_happened(bot, microsoft)
    assert attacker.requests == []


@pytest.mark.parametrize(
    "service_url",
    [
        "http://localhost:{port}/",  # the fake's port under a name that is not listed
        "https://127.0.0.1:{port}/",  # the listed origin is http, not https
        "http://user:pw@127.0.0.1:{port}/",
        "http://127.0.0.1:{port}@evil.example/",
        "http://127.0.0.1/",
        "http://127.0.0.1:{port}\\@evil.example/",
    ],
)
def test_service_urls_that_only_look_like_the_allowed_one_are_refused(
    service_url: str, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    url = service_url.format(port=microsoft.port)
    answer_with(bot, {"text": "no debería salir"})
    reply = bot.post(activity_for(url), token=token_for(key, url))
    assert reply.status == 403
    assert nothing_happened(bot, microsoft)


def default_hosts_bot(microsoft: FakeMicrosoft) -> Harness:
    """The channel with Microsoft's own host lists (only keys and tokens come from the fake)."""
    settings = credentials(microsoft)
    del settings["allowed_service_hosts"], settings["allowed_download_hosts"]
    return harness_for(TeamsInput.from_credentials(settings), microsoft)


@pytest.mark.parametrize(
    "service_url",
    [
        "https://smba.trafficmanager.net/amer/",
        "https://smba.trafficmanager.net/teams/",
        "https://SMBA.trafficmanager.net:443/emea/",
        "https://smba.infra.gcc.teams.microsoft.com/gcc",
        "https://smba.infra.gov.teams.microsoft.us/gcch",
        "https://smba.infra.dod.teams.microsoft.us/dod",
    ],
)
def test_microsofts_service_hosts_are_accepted_by_default(
    service_url: str, microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path
) -> None:
    harness = default_hosts_bot(microsoft)  # Rasa does not answer: nothing leaves for Microsoft
    assert harness.post(activity_for(service_url), token=token_for(key, service_url)).status == 200
    assert [m.text for m in harness.rasa.messages] == ["hola"]


@pytest.mark.parametrize(
    "service_url",
    [
        "https://evil.trafficmanager.net/amer/",  # anyone can create a trafficmanager.net host
        "https://smba.trafficmanager.net.evil.com/amer/",
        "https://smba.trafficmanager.net./amer/",
        "http://smba.trafficmanager.net/amer/",
        "https://smba.trafficmanager.net:8443/amer/",
        "https://user:pw@smba.trafficmanager.net/amer/",
        "https://evilbotframework.com/",
        "https://botframework.com.evil.com/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://2130706433/",
        "https://smba.trafficmanager.net\\@evil.com/",
        "https://smba.trafficmanager.net /amer/",
        "ftp://smba.trafficmanager.net/amer/",
        "//smba.trafficmanager.net/amer/",
        "http://127.0.0.1:{port}/",  # the fake: only allowed when a test lists it
    ],
)
def test_other_service_hosts_are_refused_by_default(
    service_url: str, microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path
) -> None:
    url = service_url.format(port=microsoft.port)
    harness = default_hosts_bot(microsoft)
    answer_with(harness, {"text": "no debería salir"})
    assert harness.post(activity_for(url), token=token_for(key, url)).status == 403
    assert nothing_happened(harness, microsoft)


def test_the_service_host_list_comes_from_the_environment(
    microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(teams.SERVICE_HOSTS_ENV, f" smba.trafficmanager.net , {microsoft.base} ,")
    harness = default_hosts_bot(microsoft)
    answer_with(harness, {"text": "Recibido."})
    assert harness.post(activity_for(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    assert [a["text"] for a in microsoft.activities] == ["Recibido."]


@pytest.mark.parametrize("entry", ["*", "*.com", "*.127.0.0.1", "ftp://x.example", "x.example/ruta", "a@x.example", "x.example:99999"])
def test_bad_host_entries_are_skipped_and_never_widen_the_list(entry: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.channels.teams"):
        config = TeamsConfig.from_credentials({"app_id": "a", "app_password": "p", "allowed_service_hosts": f"{entry},h.example"})
    assert [r.host for r in config.service_hosts] == ["h.example"]
    assert any(repr(entry) in r.getMessage() for r in caplog.records)
    assert trusted_url("https://evil.com/", config.service_hosts) is None


def test_a_reply_is_never_sent_to_a_host_off_the_list(
    microsoft: FakeMicrosoft, attacker: FakeMicrosoft, data_dir: Path
) -> None:
    """Whatever builds a conversation reference, the connector checks the host where the token leaves."""
    channel = TeamsInput.from_credentials(credentials(microsoft))
    reference = ConversationReference(attacker.base, "a:conv;1", {"id": "28:bot-1"}, {"id": "29:user-1"})

    async def reply() -> bool:
        try:
            return await channel.connector.send(reference, TeamsOutput(channel.connector, reference).activity(text="hola"))
        finally:
            await channel.http.close()

    assert asyncio.run(reply()) is False
    assert attacker.requests == [] and microsoft.token_calls == []


# ------------------------------------------------------ attachment downloads
def post_files(harness: Harness, microsoft: FakeMicrosoft, key: SigningKey, attachments: list[dict[str, Any]]) -> Any:
    activity = activity_for(microsoft.base, text="", attachments=attachments)
    return harness.post(activity, token=token_for(key, microsoft.base))


@pytest.mark.parametrize(
    "url",
    [
        "{attacker}/files/secreto.pdf",  # another port on loopback: the intranet
        "http://localhost:{port}/files/secreto.pdf",
        "https://127.0.0.1:{port}/files/secreto.pdf",
        "http://user:pw@127.0.0.1:{port}/files/secreto.pdf",
        "http://127.0.0.1:{port}@127.0.0.1:{attacker_port}/files/secreto.pdf",
        "{base}/redirect/fuga",  # an allowed host redirecting to the intranet
        "file:///etc/passwd",
        "secreto.pdf",
    ],
)
def test_files_off_the_download_list_are_refused_in_spanish_and_never_fetched(
    url: str, bot: Harness, microsoft: FakeMicrosoft, attacker: FakeMicrosoft, key: SigningKey, data_dir: Path
) -> None:
    microsoft.files["secreto.pdf"] = b"%PDF-1.4 del fake"
    microsoft.redirects["fuga"] = f"{attacker.base}/files/secreto.pdf"
    target = url.format(attacker=attacker.base, base=microsoft.base, port=microsoft.port, attacker_port=attacker.port)
    reply = post_files(bot, microsoft, key, [file_info(target, "secreto.pdf")])

    assert reply.status == 200
    assert bot.rasa.messages == []
    assert [a["text"] for a in microsoft.activities] == [NOT_FROM_TEAMS.format("secreto.pdf")]
    assert attacker.requests == [] and microsoft.paths("/files") == []
    assert not any(b"%PDF" in content for content in stored_contents(data_dir))


def test_a_redirect_within_the_allowed_hosts_is_followed(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path
) -> None:
    microsoft.files["captura.png"] = PNG
    microsoft.redirects["sharepoint"] = "/files/captura.png"  # relative, same host
    assert post_files(bot, microsoft, key, [file_info(f"{microsoft.base}/redirect/sharepoint", "captura.png")]).status == 200
    [message] = bot.rasa.messages
    assert message.text == "/attach" and message.metadata["attachments"][0]["size"] == len(PNG)
    stored = bot.channel.attachment_store.get(message.metadata["attachments"][0]["id"])
    assert stored is not None and stored.owner == message.sender_id == "teams:29:user-1"
    assert [auth for _, path, auth in microsoft.requests if path.startswith(("/redirect", "/files"))] == [None, None]
    assert PNG in stored_contents(data_dir)


def test_a_redirect_loop_stops_without_a_crash(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    microsoft.redirects["bucle"] = "/redirect/bucle"
    assert post_files(bot, microsoft, key, [file_info(f"{microsoft.base}/redirect/bucle", "bucle.pdf")]).status == 200
    assert bot.rasa.messages == []
    assert [a["text"] for a in microsoft.activities] == [NOT_FROM_TEAMS.format("bucle.pdf")]
    assert len(microsoft.paths("/redirect")) == teams.MAX_REDIRECTS + 1


@pytest.mark.parametrize("url", ["{attacker}/v3/attachments/x/views/original", "{base}/redirect/fuga"])
def test_a_pasted_image_off_the_list_is_not_fetched_and_gets_no_token(
    url: str, bot: Harness, microsoft: FakeMicrosoft, attacker: FakeMicrosoft, key: SigningKey
) -> None:
    microsoft.redirects["fuga"] = f"{attacker.base}/v3/attachments/x/views/original"
    image = {"contentType": "image/*", "contentUrl": url.format(attacker=attacker.base, base=microsoft.base)}
    assert post_files(bot, microsoft, key, [image]).status == 200

    assert bot.rasa.messages == []
    assert [a["text"] for a in microsoft.activities] == [NOT_FROM_TEAMS.format("imagen")]
    assert attacker.requests == []  # neither the request nor the bot's token reached it


@pytest.mark.parametrize(
    "url, pasted",
    [
        ("http://169.254.169.254/latest/meta-data/iam/", False),
        ("https://10.0.0.5/secreto.pdf", False),
        ("https://contoso.sharepoint.com.evil.com/secreto.pdf", False),
        ("https://sharepoint.com/secreto.pdf", False),
        ("http://contoso.sharepoint.com/secreto.pdf", False),
        ("https://contoso.sharepoint.com:8443/secreto.pdf", False),
        ("https://a:b@contoso.sharepoint.com/secreto.pdf", False),
        ("https://smba.trafficmanager.net/amer/v3/attachments/x/views/original", False),  # a file is never on the Bot Connector
        ("https://evil.trafficmanager.net/amer/v3/attachments/x/views/original", True),
        ("https://smba.trafficmanager.net.evil.com/v3/attachments/x/views/original", True),
        ("https://evil.skype.com/v1/objects/x/views/imgo", True),
        ("https://contoso.sharepoint.com/secreto.png", True),  # SharePoint never gets the bot's token
    ],
)
def test_microsofts_default_download_lists_refuse_other_hosts(
    url: str, pasted: bool, microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path
) -> None:
    """Replies go to the fake; files are judged by Microsoft's own lists (no network reached)."""
    settings = credentials(microsoft)
    del settings["allowed_download_hosts"]
    harness = harness_for(TeamsInput.from_credentials(settings), microsoft)
    attachment = {"contentType": "image/*", "contentUrl": url} if pasted else file_info(url, "secreto.pdf")
    assert post_files(harness, microsoft, key, [attachment]).status == 200

    assert harness.rasa.messages == []
    assert [a["text"] for a in microsoft.activities] == [NOT_FROM_TEAMS.format("imagen" if pasted else "secreto.pdf")]


def test_microsofts_own_file_hosts_are_on_the_default_lists() -> None:
    """The hosts Teams really uses, as the default configuration judges them."""
    config = TeamsConfig.from_credentials({"app_id": "a", "app_password": "p"})
    assert trusted_url("https://contoso-my.sharepoint.com/personal/ana/_layouts/15/download.aspx?UniqueId=1&tempauth=x", config.download_hosts)
    assert trusted_url("https://contoso.sharepoint.us/sites/x/download.aspx?UniqueId=1", config.download_hosts)
    assert trusted_url("https://smba.trafficmanager.net/amer/v3/attachments/0-eus-d1/views/original", config.image_hosts)
    assert trusted_url("https://us-api.asm.skype.com/v1/objects/0-eus-d1/views/imgo", config.image_hosts)
    assert not trusted_url("https://us-api.asm.skype.com/v1/objects/0-eus-d1/views/imgo", config.service_hosts)


def test_the_download_host_list_comes_from_the_environment(
    microsoft: FakeMicrosoft, key: SigningKey, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(teams.DOWNLOAD_HOSTS_ENV, microsoft.base)
    settings = credentials(microsoft)
    del settings["allowed_download_hosts"]
    harness = harness_for(TeamsInput.from_credentials(settings), microsoft)
    microsoft.files["captura.png"] = PNG
    assert post_files(harness, microsoft, key, [file_info(f"{microsoft.base}/files/captura.png", "captura.png")]).status == 200
    assert [m.text for m in harness.rasa.messages] == ["/attach"]


# ---------------------------------------------------------------- sender id
def test_conversations_are_keyed_by_the_teams_prefix_and_replies_reach_each_customer(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    assert SENDER_PREFIX == "teams:"
    answer_with(bot, {"text": "Recibido."})
    for user in ("29:ana", "29:luis"):
        activity = activity_for(microsoft.base, **{"from": {"id": user, "name": user}})
        activity["conversation"]["id"] = f"a:conv-{user}"
        assert bot.post(activity, token=token_for(key, microsoft.base)).status == 200

    assert [m.sender_id for m in bot.rasa.messages] == ["teams:29:ana", "teams:29:luis"]
    assert [owning_channel(m.sender_id) for m in bot.rasa.messages] == ["teams", "teams"]
    assert [(a["_conversation"], a["recipient"]["id"]) for a in microsoft.activities] == [
        ("a:conv-29:ana", "29:ana"),
        ("a:conv-29:luis", "29:luis"),
    ]


@pytest.mark.parametrize(
    "sender",
    [None, "29:ana", {"name": "Ana"}, {"id": ""}, {"id": 42}, {"id": ["29:ana"]}, {"id": "29:a b"}, {"id": "29:ana\n"}, {"id": "2" * 201}],
)
def test_a_message_without_a_usable_sender_id_is_refused(
    sender: Any, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    """Otherwise every such message would share one conversation keyed ``teams:``."""
    answer_with(bot, {"text": "no debería salir"})
    reply = bot.post(activity_for(microsoft.base, **{"from": sender}), token=token_for(key, microsoft.base))
    assert reply.status == 400
    assert nothing_happened(bot, microsoft)


# ------------------------------------------------------- card submits (Adaptive Cards)
@pytest.mark.parametrize(
    "value, expected",
    [
        ({"payload": {"intent": "menu"}}, ["hola"]),
        ({"choice": ["/menu"]}, ["hola"]),
        ({"choice": 42}, ["hola"]),
        ({"choice": None}, ["hola"]),
        ({"choice": {"payload": "/menu"}}, ["hola"]),
        ({"choice": "   "}, ["hola"]),
        ({"choice": "/" + "a" * 100_000}, ["hola"]),  # over the cap: ignored whole, never cut
        ({"payload": "/affirm", "choice": "/deny"}, ["hola"]),  # two different payloads: neither
        ({"payload": "/menu", "choice": "/menu"}, ["/menu"]),
        ({"choice": "/menu", "extra": {"deep": [1, 2, 3]}}, ["/menu"]),
        ("{no es json", ["hola"]),
        ("{\"choice\": " + "[" * 994 + "]" * 994 + "}", ["hola"]),  # as deep as fits the size cap
        ('{"payload": "/menu"}', ["/menu"]),
        ([{"payload": "/menu"}], ["hola"]),
        (12.5, ["hola"]),
    ],
    ids=[
        "payload object", "choice list", "choice number", "choice null", "choice object", "choice blank",
        "choice huge", "conflict", "same twice", "extra fields", "broken json text", "deep json text",
        "json text", "list", "number",
    ],
)
def test_hostile_card_submits_never_get_a_5xx_nor_a_guessed_payload(
    value: Any, expected: list[str], bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    reply = bot.post(activity_for(microsoft.base, text="hola", value=value), token=token_for(key, microsoft.base))
    assert reply.status == 200
    assert [m.text for m in bot.rasa.messages] == expected


def test_an_empty_list_submit_reaches_nobody_and_is_logged(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    """An old client that ignores isRequired submits no choice: nothing to process, and the log says why."""
    with caplog.at_level(logging.INFO, logger="bot.channels.teams"):
        empty = activity_for(microsoft.base, text="", value={"choice": ""})
        reply = bot.post(empty, token=token_for(key, microsoft.base))
    assert reply.status == 200 and bot.rasa.messages == [] and microsoft.activities == []
    assert "empty 'choice'" in caplog.text
