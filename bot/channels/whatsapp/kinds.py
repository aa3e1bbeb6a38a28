"""WhatsApp messages that are not text nor a file for a request: locations, contact cards, stickers.

The assistant cannot use them, and read as text they would only confuse the
NLU, so the channel answers them itself, in Spanish, saying what it handles.
Voice notes and videos are files: they are stored like any attachment and the
dialogue decides (kept inside a form, answered outside one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOCATION_ANSWER = (
    "Recibí una ubicación, pero por aquí solo atiendo solicitudes de ecollect: cuéntame qué necesitas por escrito."
)
CONTACT_ANSWER = (
    "Recibí una tarjeta de contacto, pero no puedo leerla. Si quieres que use otro correo o teléfono, "
    "escríbemelo en un mensaje."
)
STICKER_ANSWER = "Por ahora no puedo ver stickers; cuéntame por escrito qué necesitas."

CONTACT_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory"})
STICKER_TYPE = "image/webp"
# Twilio's MessageType for a file WhatsApp sent as a document: a .webp sent so is an image, not a sticker.
DOCUMENT_MESSAGE = "document"


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


@dataclass
class Screened:
    """A message's media split into files to store and the answers for what cannot be used."""

    files: list[tuple[str, str]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)


def screen_media(media: list[tuple[str, str]], message_type: str) -> Screened:
    """Contact cards and stickers are answered (never downloaded); every other file is kept."""
    screened = Screened()
    for url, declared in media:
        kind = base_type(declared)
        if kind in CONTACT_TYPES:
            answer = CONTACT_ANSWER
        elif kind == STICKER_TYPE and message_type.strip().lower() != DOCUMENT_MESSAGE:
            answer = STICKER_ANSWER
        else:
            screened.files.append((url, declared))
            continue
        if answer not in screened.answers:
            screened.answers.append(answer)
    return screened
