"""Microsoft Teams, through the Bot Framework, as a channel of the assistant.

Replaces Rasa's ``botframework`` connector, which cannot serve this project:
it downloads Microsoft's signing keys when it is constructed (the assistant
could not start offline, or at all while login.botframework.com is slow),
only knows the multi-tenant token endpoint that new Azure bots no longer get,
blocks the event loop with ``requests`` and turns Teams button clicks into
empty messages.

Here nothing touches the network until traffic arrives. Incoming requests
are accepted only with a valid Bot Framework JWT bound to the activity's
``serviceUrl``, from Teams (``msteams``), from the bot's own tenant when it
is single-tenant, and with a ``serviceUrl`` on Microsoft's Bot Framework
hosts: replies carry the bot's access token, so a signed but unexpected host
must never receive one. Files are fetched only from Microsoft's hosts, never
following a redirect off them. Conversations are keyed by ``teams:<from.id>``
so a Teams customer's id can never collide with, or be claimed through,
another channel.

One module per job: ``hosts`` (allow-lists), ``config`` (credentials.yml and
the host settings), ``auth`` (the incoming JWT and what it does not vouch
for), ``activity`` (reading an activity), ``connector`` (token, replies,
downloads), ``cards`` (buttons as Adaptive Cards), ``output`` (replies as
activities), ``channel`` (the webhook). credentials.yml names
``bot.channels.teams.TeamsInput``.
"""

from bot.channels.http import UntrustedUrl
from bot.channels.teams.activity import FILE_DOWNLOAD_INFO, SENDER_PREFIX, ConversationReference
from bot.channels.teams.auth import ActivityRefused, Unauthorized
from bot.channels.teams.cards import ADAPTIVE_CARD, CHOICE_ID
from bot.channels.teams.channel import TeamsInput
from bot.channels.teams.config import TeamsConfig
from bot.channels.teams.connector import MAX_REDIRECTS, SEND_ATTEMPTS, BotConnector, TokenError
from bot.channels.teams.hosts import HostRule, trusted_url
from bot.channels.teams.output import HERO_CARD, TeamsOutput
from bot.settings.teams import DOWNLOAD_HOSTS_ENV, SERVICE_HOSTS_ENV

__all__ = [
    "ADAPTIVE_CARD",
    "CHOICE_ID",
    "DOWNLOAD_HOSTS_ENV",
    "FILE_DOWNLOAD_INFO",
    "HERO_CARD",
    "MAX_REDIRECTS",
    "SEND_ATTEMPTS",
    "SENDER_PREFIX",
    "SERVICE_HOSTS_ENV",
    "ActivityRefused",
    "BotConnector",
    "ConversationReference",
    "HostRule",
    "TeamsConfig",
    "TeamsInput",
    "TeamsOutput",
    "TokenError",
    "Unauthorized",
    "UntrustedUrl",
    "trusted_url",
]
