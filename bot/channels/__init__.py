"""Input/output channels beyond Rasa's own REST and socket.io: WhatsApp, Teams."""
