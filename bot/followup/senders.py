"""Building the follow-up worker's customer delivery from one ``Settings``, at the worker's start.

The channels get the same credentials Rasa gives them from credentials.yml
(``settings.followup``); a channel without its secrets gets a stand-in whose
messages wait with the reason, so a deployer who adds them later loses
nothing. Rasa's API is the local server the launcher starts.
"""

from __future__ import annotations

from typing import Iterable

from bot.channels.addresses import AddressBook
from bot.channels.common import missing_credentials
from bot.channels.http import LoopSession
from bot.channels.push import Sender, Unconfigured
from bot.channels.rasa_conversation import RasaConversations
from bot.channels.teams import BotConnector, TeamsConfig
from bot.channels.teams.channel import REQUIRED_CREDENTIALS as TEAMS_REQUIRED
from bot.channels.teams.output import CHANNEL_NAME as TEAMS
from bot.channels.teams.push import TeamsPush
from bot.channels.whatsapp.config import REQUIRED_CREDENTIALS as WHATSAPP_REQUIRED
from bot.channels.whatsapp.config import WhatsAppConfig
from bot.channels.whatsapp.content import Contents
from bot.channels.whatsapp.output import CHANNEL_NAME as WHATSAPP
from bot.channels.whatsapp.push import WhatsAppPush
from bot.followup.customer_delivery import CustomerDelivery
from bot.settings import Settings
from bot.settings.followup import TEAMS_VARIABLES, WHATSAPP_VARIABLES
from bot.thread import TicketThread


def _unconfigured(label: str, missing: list[str], variables: dict[str, str]) -> Unconfigured:
    names = ", ".join(variables[key] for key in missing)
    return Unconfigured(f"{label} no está configurado en el proceso de seguimiento: faltan {names}.")


def build_senders(settings: Settings) -> dict[str, Sender]:
    """The WhatsApp and Teams pushes, over the address book the channels write."""
    addresses = AddressBook(settings.tickets_db_url)
    followup = settings.followup
    senders: dict[str, Sender] = {}

    whatsapp = followup.whatsapp.as_credentials()
    missing = missing_credentials(whatsapp, WHATSAPP_REQUIRED)
    if missing:
        senders[WHATSAPP] = _unconfigured("WhatsApp", missing, WHATSAPP_VARIABLES)
    else:
        twilio = WhatsAppConfig.from_credentials(whatsapp)
        # The same contents table as the channel's: a list the chat created is reused by the worker, and back.
        contents = Contents.from_config(twilio, settings.tickets_db_url)
        senders[WHATSAPP] = WhatsAppPush(twilio, addresses, followup.whatsapp_content_sid, contents=contents)

    teams = followup.teams.as_credentials()
    missing = missing_credentials(teams, TEAMS_REQUIRED)
    if missing:
        senders[TEAMS] = _unconfigured("Microsoft Teams", missing, TEAMS_VARIABLES)
    else:
        config = TeamsConfig.from_credentials(teams, settings.teams)
        senders[TEAMS] = TeamsPush(BotConnector(config, LoopSession(trust_env=True)), addresses)
    return senders


def rasa_conversations(settings: Settings) -> RasaConversations:
    """The local Rasa server's API (the launcher starts it with ``--enable-api`` and this token)."""
    return RasaConversations(f"http://127.0.0.1:{settings.rasa_port}", settings.secrets.rasa_api_token)


def customer_delivery(settings: Settings, waiting_statuses: Iterable[str]) -> CustomerDelivery:
    """Everything the worker needs to deliver the help desk's messages to WhatsApp and Teams customers.

    ``waiting_statuses``: the catalog's (``catalog.waiting_statuses``).
    """
    return CustomerDelivery(
        TicketThread(settings.tickets_db_url),
        build_senders(settings),
        rasa_conversations(settings),
        waiting_statuses,
        settings=settings.followup,
    )
