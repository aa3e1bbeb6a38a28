"""Every slot the dialogue reads or writes, named once.

The names are the domain's (``domain.yml`` «slots»): a rename is an edit here
and there, and a typo is an unknown name instead of a slot Rasa silently
ignores. The catalog's field ids (ítem, description, e-mail, phone,
attachment) are slots of the same name, and button payloads and NLU entities
carry a slot's value under the slot's own name.
"""

from __future__ import annotations

from typing import Any

# The request and the form's own bookkeeping.
REQUEST_TYPE = "request_type"
REQUESTED_SLOT = "requested_slot"  # Rasa's: the slot the form asked for

# Catalog fields.
ITEM = "item"
DESCRIPTION = "description"
EMAIL = "email"
PHONE = "phone"
ATTACHMENT = "attachment"
COUNTRY = "country"  # never asked: decides ambiguous phones and the time zone shown

# The form's auxiliary slots.
PHONE_COUNTRY = "phone_country"  # asked when a phone is valid in more than one country
PHONE_CANDIDATES = "phone_candidates"  # country -> E.164, while that question is open
CORRECTION_FIELD = "correction_field"  # asked after «corregir» on the summary
AWAITING_CORRECTION = "awaiting_correction"
CONFIRMATION = "confirmation"
# Names one showing of the summary: set each time it is shown, it makes the
# ticket's idempotency key, so every «sí» to that summary (a retry after a
# lost reply included) finds the one ticket it created.
CONFIRMATION_ID = "confirmation_id"
EMAIL_QUESTIONED = "email_questioned"  # an address shown back as a likely typo
REDIRECTED_FROM = "redirected_from"  # the retired option that sent the customer here
ORIGINAL_TEXT = "original_text"  # the words that opened the request

# Outside the form.
OFFERED_TYPE = "offered_request_type"  # an offer waiting for «sí» / «no»
OFFERED_REDIRECT = "offered_redirect"
FALLBACK_COUNT = "fallback_count"  # low-confidence turns in a row
TICKET_KEY = "ticket_key"  # the last ticket created in this conversation

# The knowledge base (bot/dialogue/articles.py).
KB_OFFERED = "kb_offered"  # ids of the articles awaiting «me sirvió» / «sigo»; [] once searched with none shown
KB_ANSWER = "kb_answer"  # the form's question after the description: helpful / declined
KB_ARTICLES = "kb_articles"  # the articles shown for this request (title, links): listed in the ticket
KB_DECLINED = "kb_declined"  # «No, sigo con la solicitud» once: no more offers in this conversation
KB_RESOLVED = "kb_resolved"  # «Sí, esto me sirvió»: the request ended with no ticket (the review app counts it)

# The confirmation slot's value once the customer said «sí» to the summary.
CONFIRMED = "send"

# Slots reset when a new request starts; contact data is kept for the next one.
REQUEST_SLOTS = (
    ITEM,
    DESCRIPTION,
    ATTACHMENT,
    PHONE_COUNTRY,
    PHONE_CANDIDATES,
    CORRECTION_FIELD,
    AWAITING_CORRECTION,
    CONFIRMATION,
    REDIRECTED_FROM,
    EMAIL_QUESTIONED,
    CONFIRMATION_ID,
    KB_OFFERED,
    KB_ANSWER,
    KB_ARTICLES,
)


def empty(value: Any) -> bool:
    """A slot the form must still ask: Rasa's None, or what a cleared text or list slot holds."""
    return value is None or value == "" or value == []
