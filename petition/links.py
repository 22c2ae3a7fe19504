"""Absolute links for emails, QR codes and share buttons, built from PUBLIC_URL."""

from __future__ import annotations

from typing import Any

from flask import current_app


def public_url(endpoint: str, **values: Any) -> str:
    """The absolute public URL of an endpoint; works without a request (CLI, workers)."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return base + path
