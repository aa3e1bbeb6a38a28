"""Messages written to break the assistant, shared by every channel's tests."""

HOSTILE_MESSAGES = [
    "",
    "   ",
    "\n\t",
    "a" * 9_000,
    "🙂🙃🔥" * 60,
    "\x00\x01\x02 hola \x1b[31m rojo",
    "<script>alert(1)</script>",
    "'; DROP TABLE tickets; --",
    "/affirm",
    '/inform{"email": "no-es-correo"}',
    '/inform{"phone": "+1 212 555 0000"}',
    '/choose_request_type{"request_type": "../../etc/passwd"}',
    '/inform{"item": "eliminacion_actualizacion_cartera"}',
    '/correct{"field": "password"}',
    "/intent_que_no_existe",
    "/action_create_ticket",
    '/choose_request_type{"request_type": ',
    "/" + "x" * 5000,
]
