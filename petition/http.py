"""Small HTTP helpers shared by the feature packages."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, jsonify, request


def cacheable_json(payload: dict[str, Any], max_age: int) -> Response:
    """JSON with a content ETag and a short public cache lifetime; 304 when unchanged.

    Pages poll these endpoints; an unchanged poll costs a 304 with no body.
    """
    response = jsonify(payload)
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    return response.make_conditional(request)
