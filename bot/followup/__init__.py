"""The follow-up worker: what the help desk says after the ticket, delivered to the customer's channel.

``worker`` (the loop: one round of each kind of work, a heartbeat),
``customer_delivery`` (claims the thread's messages for WhatsApp and Teams,
sends them, records them in the Rasa conversation, marks them), ``senders``
(builds the channels' pushes and the Rasa client from ``Settings``). Level 3:
it uses the thread (L1), the dialogue's notices (L1) and the channels (L2).
"""
