"""WhatsApp through Twilio, replacing Rasa's own ``twilio`` connector.

Rasa's connector rewrites "¡" as "@", ignores media, trusts any caller and
sends with Twilio's blocking client. This one checks Twilio's signature,
keeps the text exactly as the customer wrote it, stores media in the
project's ``AttachmentStore``, sends buttons as WhatsApp's reply buttons
or lists (Twilio's Content API; numbered text when they cannot go) and
talks to Twilio's REST API with aiohttp.

One module per job: ``config`` (credentials.yml, parsed once), ``incoming``
(the webhook's fields), ``kinds`` (locations, contact cards and stickers,
answered in Spanish), ``replies`` (bodies and numbered choices),
``interactive`` (buttons as reply buttons or a list, taps mapped back),
``content`` (the Content API and its shared cache), ``output`` (sending),
``channel`` (the webhook). credentials.yml names
``bot.channels.whatsapp.WhatsAppInput``.
"""

from bot.channels.whatsapp.channel import DOWNLOAD_FAILED, WhatsAppInput
from bot.channels.whatsapp.config import DEFAULT_API_URL, WhatsAppConfig
from bot.channels.whatsapp.output import WhatsAppOutput
from bot.channels.whatsapp.replies import CHOICE_HINT, MAX_BODY, choose_button, numbered_choices, split_body

__all__ = [
    "CHOICE_HINT",
    "DEFAULT_API_URL",
    "DOWNLOAD_FAILED",
    "MAX_BODY",
    "WhatsAppConfig",
    "WhatsAppInput",
    "WhatsAppOutput",
    "choose_button",
    "numbered_choices",
    "split_body",
]
