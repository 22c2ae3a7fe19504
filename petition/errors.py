"""Error pages: a clear page with the right status, never a bare 5xx."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from petition.db import UNAVAILABLE, unavailable_reason

log = logging.getLogger(__name__)

# Sent with a 503: when to try again.
RETRY_AFTER = {"Retry-After": "30"}


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Bad request"), _("Something in that request could not be understood.")),
        403: (_("Not allowed"), _("Your role in this campaign does not allow this. Ask one of its owners.")),
        404: (_("Not found"), _("There is no page at this address. Check the link, or start from the list of campaigns.")),
        405: (_("Not allowed"), _("This page cannot be used that way.")),
        410: (_("Link expired"), _("This link is no longer valid.")),
        413: (_("Too much data"), _("What was sent is larger than this site accepts. Please shorten it and try again.")),
        429: (_("Too many requests"), _("Too many requests came from your network in a short time. Please wait a minute and try again.")),
        500: (_("Something went wrong"), _("Sorry, something went wrong on our side. Nothing you did caused it; please try again in a moment.")),
        503: (_("Temporarily unavailable"), _("The site cannot reach its database just now. Nothing you did caused it; please try again in a minute.")),
    }


def render_error(status: int, detail: str | None = None) -> tuple[str, int]:
    """Render the error page for a status, with an optional specific explanation."""
    title, text = _messages().get(status, (_("Error"), _("The request could not be completed.")))
    if request.path.endswith(".json"):
        return {"error": title, "detail": detail or text}, status  # type: ignore[return-value]
    return render_template("errors/error.html", status=status, title=title, text=detail or text), status


def _route() -> str:
    """The request's route for the log ("/signatures/confirm/<token>"), not its path: the
    paths of emailed links carry their token, which would let a log reader use them."""
    return request.url_rule.rule if request.url_rule is not None else "(no route)"


def log_database_unavailable(exc: Exception) -> None:
    """Log a request that found the database unavailable (its route and the reason)."""
    log.error("database unavailable on %s %s: %s", request.method, _route(),
              unavailable_reason(exc))


def database_unavailable(exc: Exception) -> tuple[str, int, dict[str, str]]:
    """The answer to a request that found the database unavailable: 503, try again later."""
    log_database_unavailable(exc)
    return *render_error(503), RETRY_AFTER


def init_app(app: Flask) -> None:
    """Register handlers for HTTP errors, CSRF failures and unexpected exceptions."""

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> tuple[str, int]:
        return render_error(
            400,
            _("This form expired or did not come from this site. Go back, reload the page and "
              "try again."),
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int] | BaseResponse:
        if exc.response is not None:  # a view's own answer (e.g. the sign form on a 429)
            return exc.response
        return render_error(exc.code or 500)

    for unavailable in UNAVAILABLE:
        app.register_error_handler(unavailable, database_unavailable)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, _route())
        return render_error(500)
