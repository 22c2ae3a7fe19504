"""Access checks for organiser views: non-members get 404, never a hint a campaign exists."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from petition.db import get_session
from petition.models import Campaign, Role

CAN_EDIT = (Role.OWNER, Role.EDITOR)
CAN_VIEW = (Role.OWNER, Role.EDITOR, Role.VIEWER)


def campaign_for(slug: str, roles: tuple[Role, ...] = CAN_VIEW) -> tuple[Campaign, str]:
    """The campaign if the current organiser is a member (404 if not, 403 if the role is too low)."""
    from petition.organiser.accounts import membership

    found = membership(get_session(), current_user.id, slug)
    if found is None:
        abort(404)
    campaign, role = found
    if role not in roles:
        abort(403)
    return campaign, role
