"""Organiser home: the campaigns one is a member of."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user, login_required

from petition.db import get_session
from petition.organiser import accounts, bp


@bp.get("/")
@login_required
def home() -> str:
    """The campaigns the organiser is a member of."""
    return render_template(
        "organiser/home.html", memberships=accounts.my_campaigns(get_session(), current_user.id)
    )
