"""Organiser workspace under /organiser/: accounts, editing, dashboards, moderation, exports."""

from flask import Blueprint

bp = Blueprint("organiser", __name__, url_prefix="/organiser")

# Route modules register their views on bp when imported.
from petition.organiser import auth, routes  # noqa: E402, F401

__all__ = ["bp"]
