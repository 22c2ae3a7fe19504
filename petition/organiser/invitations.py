"""Signed invitation links: what they name, and whether they still hold (no request access).

Invitations to addresses without an account are not stored in a table of their own: the
audit entry that records the invitation is the invitation. Its id travels in the signed
link, so a later "member.remove" entry for the same address (a cancelled invitation or a
removed member) revokes every link issued before it. petition.organiser.members issues the
links and turns an accepted one into a membership.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.config import signing_keys
from petition.models import AuditEntry, Campaign, Role

INVITE_SALT = "organiser-invite-v1"
INVITE_MAX_AGE = timedelta(days=7)


class InvitationInvalid(Exception):
    """The invitation link was tampered with, truncated, or names no campaign."""


class InvitationExpired(Exception):
    """The invitation link is genuine but too old, or was cancelled since."""


@dataclass(frozen=True)
class Invitation:
    """What an invitation link names; entry_id is the audit entry that recorded it."""

    campaign_id: int
    email: str
    role: Role
    entry_id: int


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_keys(current_app.config), salt=INVITE_SALT)


def make_token(invitation: Invitation) -> str:
    """A signed, expiring token naming campaign, address, role and the invitation entry."""
    return _serializer().dumps(
        [invitation.campaign_id, invitation.email, invitation.role.value, invitation.entry_id]
    )


def load_token(token: str) -> Invitation:
    """The invitation in a token; raises InvitationInvalid or InvitationExpired."""
    try:
        payload = _serializer().loads(token, max_age=int(INVITE_MAX_AGE.total_seconds()))
    except SignatureExpired as exc:  # only raised once the signature itself checked out
        raise InvitationExpired from exc
    except (BadSignature, ValueError, UnicodeError) as exc:
        raise InvitationInvalid from exc
    if not (
        isinstance(payload, list)
        and len(payload) == 4
        and all(isinstance(payload[i], int) and not isinstance(payload[i], bool) for i in (0, 3))
        and isinstance(payload[1], str)
        and payload[2] in {r.value for r in Role}
    ):
        raise InvitationInvalid
    return Invitation(payload[0], payload[1], Role(payload[2]), payload[3])


def open_link(session: Session, token: str) -> tuple[Invitation, Campaign]:
    """The invitation and its campaign; raises InvitationInvalid or InvitationExpired."""
    invitation = load_token(token)
    campaign = session.get(Campaign, invitation.campaign_id)
    if campaign is None:
        raise InvitationInvalid
    if revoked(session, invitation):
        raise InvitationExpired
    return invitation, campaign


def revoked(session: Session, invitation: Invitation) -> bool:
    """True if the address was removed or its invitation cancelled after the link was made."""
    later = session.scalars(
        select(AuditEntry).where(
            AuditEntry.campaign_id == invitation.campaign_id,
            AuditEntry.action == "member.remove",
            AuditEntry.id > invitation.entry_id,
        )
    )
    return any(entry.detail.get("email") == invitation.email for entry in later)
