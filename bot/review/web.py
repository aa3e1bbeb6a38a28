"""The leads' review pages, mounted under /revision on the project's web server.

The blueprint's handlers find their services on ``app.ctx.review`` (a
``ReviewRoom`` built once at start-up from the settings), so mounting it takes
two lines::

    app.ctx.review = ReviewRoom.build(settings, catalog, tickets, proxies)
    app.blueprint(review_blueprint())

Modules: ``auth`` (login, logout, the guard of every other page), ``pages``
(list, transcript, ticket, overview), ``thread_pages`` (a ticket's thread,
CSAT), ``article_pages`` (the knowledge base's figures), ``intake_pages``
(funnel, effort, understanding, containment), ``report_pages`` (the weekly
reports), ``exports`` (CSV
and JSON), ``views`` (templates, masking, the words for codes), ``room``
(the services).
"""

from __future__ import annotations

from sanic import Blueprint

from bot.review import article_pages, auth, exports, intake_pages, links, pages, report_pages, thread_pages


def review_blueprint() -> Blueprint:
    """A new blueprint per app: Sanic binds a blueprint to the apps it is registered on."""
    bp = Blueprint("revision", url_prefix=links.PREFIX)
    auth.register(bp)
    exports.register(bp)
    pages.register(bp)
    thread_pages.register(bp)
    article_pages.register(bp)
    intake_pages.register(bp)  # embudo, esfuerzo, comprensión, contención (issue 15)
    report_pages.register(bp)  # the weekly reports written by ``python -m bot review report``
    return bp
