"""Small HTTP helpers shared by the feature packages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, current_app, request
from werkzeug.wrappers import Response as BaseResponse

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    # same-origin: other sites learn nothing; our own CSRF check (strict over https) still
    # gets the Referer it needs.
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


T = TypeVar("T")


def once_per_request(name: str, make: Callable[[], T]) -> T:
    """make()'s value, made at most once per request and kept on the request itself.

    Not on flask.g: g belongs to the app context, which requests share when one was pushed
    around them (a test's, a CLI command's), so a value of one request would answer the next.
    """
    key = f"petition.{name}"
    environ = request.environ
    if key not in environ:
        environ[key] = make()
    return environ[key]


_SECURITY_HEADERS_BY_KEY = tuple((name.lower(), name, value) for name, value in SECURITY_HEADERS)


def add_security_headers(response: BaseResponse) -> BaseResponse:
    """Every response's security headers (a view may set its own stricter ones first).

    One pass over the headers the response has and one extend (this runs on every response:
    a lookup and a set per header cost twice as much).
    """
    present = {name.lower() for name in response.headers.keys()}
    response.headers.extend(
        [(name, value) for key, name, value in _SECURITY_HEADERS_BY_KEY if key not in present]
    )
    return response


@dataclass(frozen=True)
class JsonBody:
    """A serialised JSON document and its content ETag (cheap to keep and to serve again)."""

    body: bytes
    etag: str


def json_body(payload: dict[str, Any]) -> JsonBody:
    """Serialise payload the way jsonify does, with an ETag of the content."""
    body = current_app.json.dumps(payload).encode()
    return JsonBody(body, hashlib.sha256(body).hexdigest()[:32])


def json_response(document: JsonBody, max_age: int) -> Response:
    """The document with a short public cache lifetime; 304 when the client has it.

    Pages poll these endpoints; an unchanged poll costs a 304 with no body.
    """
    response = Response(document.body, mimetype="application/json")
    response.set_etag(document.etag)
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    return response.make_conditional(request)


def cacheable_json(payload: dict[str, Any], max_age: int) -> Response:
    """JSON with a content ETag and a short public cache lifetime; 304 when unchanged."""
    return json_response(json_body(payload), max_age)
