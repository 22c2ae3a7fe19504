"""Organiser workspace under /organiser/: accounts, editing, dashboards, moderation, exports.

Views live in modules named `*_views.py` (plus `auth.py`); each registers its routes on `bp`
when imported, and all of them are imported here.
"""

import importlib
import pkgutil

from flask import Blueprint

bp = Blueprint("organiser", __name__, url_prefix="/organiser")

from petition.organiser import auth  # noqa: E402, F401

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module.endswith("_views"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["bp"]
