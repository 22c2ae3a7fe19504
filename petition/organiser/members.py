"""Campaign members: inviting, roles, removal and accepting an invitation (services: no
request access). The signed invitation links themselves are petition.organiser.invitations.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from petition import mail
from petition.db import begin_write
from petition.links import public_url
from petition.models import AuditEntry, Campaign, CampaignMember, Organiser, Role, utcnow
from petition.organiser import accounts, audit, invitations
from petition.organiser.invitations import INVITE_MAX_AGE, Invitation, InvitationExpired

EMAIL_MAX = 254
ROLE_LABELS = {Role.OWNER: _l("Owner"), Role.EDITOR: _l("Editor"), Role.VIEWER: _l("Viewer")}
_ROLE_ORDER = {Role.OWNER: 0, Role.EDITOR: 1, Role.VIEWER: 2}


class MemberError(ValueError):
    """A clear, user-facing reason a membership change was refused (field: the form field)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AccountExists(Exception):
    """An account for the invited address exists: the invitee should log in instead."""


class InviteOutcome(enum.StrEnum):
    ADDED = "added"  # an existing organiser became a member (and got a notice)
    INVITED = "invited"  # an invitation link was emailed to a new address
    ALREADY_MEMBER = "already-member"
    ALREADY_INVITED = "already-invited"


@dataclass(frozen=True)
class Member:
    organiser_id: int
    email: str
    role: Role


@dataclass(frozen=True)
class PendingInvitation:
    email: str
    role: Role
    invited_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class InviteResult:
    outcome: InviteOutcome
    email: str
    role: Role
    message_id: int | None = None
    expires_at: datetime | None = None


def role_label(role: str) -> str:
    """The translated name of a role."""
    return str(ROLE_LABELS.get(Role(role), role))


def parse_role(value: str | None) -> Role:
    """The Role for a submitted value; raises MemberError for anything else."""
    try:
        return Role(value or "")
    except ValueError:
        raise MemberError(_("Please choose a role: owner, editor or viewer."), "role") from None


def normalise_email(value: str) -> str:
    """A syntactically valid, lower-cased address; raises MemberError otherwise."""
    value = value.strip()
    if not value or len(value) > EMAIL_MAX:
        raise MemberError(_("Please enter a valid email address, like name@example.org."), "email")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise MemberError(
            _("Please enter a valid email address, like name@example.org."), "email"
        ) from None


# -- reading -----------------------------------------------------------------------------------


def list_members(session: Session, campaign_id: int) -> list[Member]:
    """The campaign's members, owners first, then by address."""
    rows = session.execute(
        select(Organiser.id, Organiser.email, CampaignMember.role)
        .join(CampaignMember, CampaignMember.organiser_id == Organiser.id)
        .where(CampaignMember.campaign_id == campaign_id)
    ).all()
    members = [Member(organiser_id, email, Role(role)) for organiser_id, email, role in rows]
    return sorted(members, key=lambda m: (_ROLE_ORDER[m.role], m.email))


def pending_invitations(session: Session, campaign_id: int) -> list[PendingInvitation]:
    """Invitations sent in the last 7 days not yet accepted, cancelled or superseded."""
    since = utcnow() - INVITE_MAX_AGE
    entries = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.campaign_id == campaign_id,
            AuditEntry.action.in_(("member.invite", "member.remove")),
            AuditEntry.created_at >= since,
        )
        .order_by(AuditEntry.id)
    )
    pending: dict[str, PendingInvitation] = {}
    for entry in entries:
        email = entry.detail.get("email")
        if not isinstance(email, str):
            continue
        if entry.action == "member.invite" and entry.detail.get("outcome") == "invited":
            pending[email] = PendingInvitation(
                email=email,
                role=Role(entry.detail.get("role", Role.VIEWER)),
                invited_at=entry.created_at,
                expires_at=entry.created_at + INVITE_MAX_AGE,
            )
        else:
            pending.pop(email, None)
    members = {m.email for m in list_members(session, campaign_id)}
    return sorted((p for p in pending.values() if p.email not in members), key=lambda p: p.email)


def account_for(session: Session, email: str) -> Organiser | None:
    """The organiser account with this (lower-cased) address, if any."""
    return session.scalar(select(Organiser).where(Organiser.email == email))


def is_member(session: Session, campaign_id: int, organiser_id: int) -> bool:
    """True if the organiser is a member of the campaign."""
    return session.get(CampaignMember, (campaign_id, organiser_id)) is not None


# -- writing -----------------------------------------------------------------------------------


def _lock_campaign(session: Session, campaign_id: int) -> None:
    """Serialise membership changes of one campaign (SQLite: begin_write already does)."""
    begin_write(session)
    session.execute(select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())


def _locked_members(session: Session, campaign_id: int) -> dict[int, CampaignMember]:
    rows = session.scalars(
        select(CampaignMember)
        .where(CampaignMember.campaign_id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {m.organiser_id: m for m in rows}


def _clean_subject(text: str) -> str:
    return " ".join(text.split())[:300]


def _queue_mail(
    session: Session, *, kind: str, recipient: str, subject: str, **context: object
) -> int:
    return mail.enqueue(
        session,
        kind=kind,
        recipient=recipient,
        subject=_clean_subject(subject),
        text=render_template("mail/invitation.txt", **context),
        html=render_template("mail/invitation.html", **context),
    )


def invite(
    session: Session, campaign: Campaign, inviter: Organiser, email: str, role: str
) -> InviteResult:
    """Add an existing organiser to the campaign, or email an invitation to a new address.

    Idempotent: an address that is already a member, or already has a pending invitation,
    gets no second email. Raises MemberError for bad input (including inviting oneself).
    """
    address = normalise_email(email)
    wanted = parse_role(role)
    if address == inviter.email:
        raise MemberError(_("You cannot invite yourself: you are already a member."), "email")
    _lock_campaign(session, campaign.id)
    members = _locked_members(session, campaign.id)
    context = {
        "campaign": campaign,
        "inviter": inviter.email,
        "role": role_label(wanted),
        "days": INVITE_MAX_AGE.days,
    }
    organiser = account_for(session, address)
    if organiser is not None:
        if organiser.id in members:
            return InviteResult(InviteOutcome.ALREADY_MEMBER, address, Role(members[organiser.id].role))
        accounts.set_role(session, campaign, organiser, wanted)
        audit.record(
            session, campaign_id=campaign.id, organiser_id=inviter.id, action="member.invite",
            detail={"email": address, "role": wanted.value, "outcome": InviteOutcome.ADDED.value,
                    "member": organiser.id},
        )
        message_id = _queue_mail(
            session, kind="member-added", recipient=address,
            subject=_("You were added to “%(title)s”", title=campaign.title),
            accept_url=None, home_url=public_url("organiser.home"), **context,
        )
        return InviteResult(InviteOutcome.ADDED, address, wanted, message_id)
    pending = next((p for p in pending_invitations(session, campaign.id) if p.email == address), None)
    if pending is not None:
        return InviteResult(
            InviteOutcome.ALREADY_INVITED, address, pending.role, expires_at=pending.expires_at
        )
    entry = audit.record(
        session, campaign_id=campaign.id, organiser_id=inviter.id, action="member.invite",
        detail={"email": address, "role": wanted.value, "outcome": InviteOutcome.INVITED.value},
    )
    token = invitations.make_token(Invitation(campaign.id, address, wanted, entry.id))
    message_id = _queue_mail(
        session, kind="member-invite", recipient=address,
        subject=_("Invitation to organise “%(title)s”", title=campaign.title),
        accept_url=public_url("organiser.accept_invitation", token=token), home_url=None,
        **context,
    )
    return InviteResult(
        InviteOutcome.INVITED, address, wanted, message_id, utcnow() + INVITE_MAX_AGE
    )


def _last_owner_error() -> MemberError:
    return MemberError(
        _("A campaign needs at least one owner. Make another member an owner first, then "
          "change or remove this one.")
    )


def change_role(
    session: Session, campaign: Campaign, actor: Organiser, organiser_id: int, role: str
) -> Member:
    """Change a member's role; the last owner cannot be demoted. Returns the member."""
    wanted = parse_role(role)
    _lock_campaign(session, campaign.id)
    members = _locked_members(session, campaign.id)
    member = members.get(organiser_id)
    if member is None:
        raise MemberError(_("This organiser is not a member of the campaign."))
    email = session.get_one(Organiser, organiser_id).email
    old = Role(member.role)
    if old == wanted:
        return Member(organiser_id, email, wanted)
    owners = sum(1 for m in members.values() if m.role == Role.OWNER)
    if old == Role.OWNER and owners <= 1:
        raise _last_owner_error()
    member.role = wanted
    session.flush()
    audit.record(
        session, campaign_id=campaign.id, organiser_id=actor.id, action="member.role",
        detail={"member": organiser_id, "email": email, "from": old.value, "to": wanted.value},
    )
    return Member(organiser_id, email, wanted)


def remove_member(
    session: Session, campaign: Campaign, actor: Organiser, organiser_id: int
) -> Member:
    """Remove a member from the campaign; the last owner cannot be removed."""
    _lock_campaign(session, campaign.id)
    members = _locked_members(session, campaign.id)
    member = members.get(organiser_id)
    if member is None:
        raise MemberError(_("This organiser is not a member of the campaign."))
    email = session.get_one(Organiser, organiser_id).email
    owners = sum(1 for m in members.values() if m.role == Role.OWNER)
    if member.role == Role.OWNER and owners <= 1:
        raise _last_owner_error()
    old = Role(member.role)
    session.delete(member)
    session.flush()
    audit.record(
        session, campaign_id=campaign.id, organiser_id=actor.id, action="member.remove",
        detail={"member": organiser_id, "email": email, "role": old.value},
    )
    return Member(organiser_id, email, old)


def cancel_invitation(session: Session, campaign: Campaign, actor: Organiser, email: str) -> bool:
    """Cancel the pending invitation of an address (its links stop working); False if none."""
    address = email.strip().lower()
    _lock_campaign(session, campaign.id)
    pending = next((p for p in pending_invitations(session, campaign.id) if p.email == address), None)
    if pending is None:
        return False
    audit.record(
        session, campaign_id=campaign.id, organiser_id=actor.id, action="member.remove",
        detail={"email": address, "role": pending.role.value, "invitation": "cancelled"},
    )
    return True


def _add_invited(session: Session, invitation: Invitation, organiser: Organiser) -> bool:
    """Add the membership an invitation names (lock held); False if already a member."""
    if invitations.revoked(session, invitation):
        raise InvitationExpired
    campaign = session.get_one(Campaign, invitation.campaign_id)
    if session.get(CampaignMember, (campaign.id, organiser.id)) is not None:
        return False
    accounts.set_role(session, campaign, organiser, invitation.role)
    audit.record(
        session, campaign_id=campaign.id, organiser_id=organiser.id, action="member.invite",
        detail={"email": invitation.email, "role": invitation.role.value, "outcome": "accepted",
                "member": organiser.id},
    )
    return True


def accept_with_new_account(session: Session, invitation: Invitation, password: str) -> Organiser:
    """Create the invited account with the password and add the membership.

    Raises AccountExists if the address has an account by now, MemberError for a password
    that breaks the rules, InvitationExpired if the invitation was cancelled meanwhile.
    """
    try:
        accounts.check_password_rules(password)
    except accounts.AccountError as exc:
        raise MemberError(str(exc), "password") from exc
    _lock_campaign(session, invitation.campaign_id)
    if account_for(session, invitation.email) is not None:
        raise AccountExists
    try:
        organiser = accounts.create_organiser(session, invitation.email, password)
    except IntegrityError as exc:  # created concurrently by another request
        session.rollback()
        raise AccountExists from exc
    except accounts.AccountError as exc:
        raise MemberError(str(exc), "password") from exc
    _add_invited(session, invitation, organiser)
    return organiser


def join(session: Session, invitation: Invitation, organiser: Organiser) -> bool:
    """Add the invited membership to the organiser's existing account; False if already in."""
    if organiser.email != invitation.email:
        raise MemberError(_("This invitation is for another email address."))
    _lock_campaign(session, invitation.campaign_id)
    return _add_invited(session, invitation, organiser)
