"""Organiser accounts and campaign membership (services: no request access)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from petition.models import Campaign, CampaignMember, Organiser, Role

PASSWORD_MIN = 10
PASSWORD_MAX = 200
# Checked when no account matches, so a wrong address takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A clear, user-facing reason an account operation was refused."""


def normalise_login_email(email: str) -> str:
    """Organiser logins are case-insensitive and trimmed."""
    return email.strip().lower()


def check_password_rules(password: str) -> None:
    """Raise AccountError if the password is too short or too long."""
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"The password must be at least {PASSWORD_MIN} characters long.")
    if len(password) > PASSWORD_MAX:
        raise AccountError(f"The password can be at most {PASSWORD_MAX} characters long.")


def create_organiser(session: Session, email: str, password: str) -> Organiser:
    """Create an organiser account with a scrypt-hashed password."""
    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"This email address is not valid: {exc}") from exc
    check_password_rules(password)
    if session.scalar(select(Organiser.id).where(Organiser.email == email)) is not None:
        raise AccountError("An organiser with this email address already exists.")
    organiser = Organiser(email=email, password_hash=generate_password_hash(password))
    session.add(organiser)
    session.flush()
    return organiser


def authenticate(session: Session, email: str, password: str) -> Organiser | None:
    """The organiser if email and password match, else None (same cost either way)."""
    organiser = session.scalar(
        select(Organiser).where(Organiser.email == normalise_login_email(email))
    )
    if organiser is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(organiser.password_hash, password):
        return None
    return organiser


def change_password(organiser: Organiser, current: str, new: str) -> None:
    """Change the password after checking the current one; ends other sessions."""
    if not check_password_hash(organiser.password_hash, current):
        raise AccountError("The current password is not correct.")
    check_password_rules(new)
    organiser.password_hash = generate_password_hash(new)
    organiser.session_version += 1


def load_for_session(session: Session, user_id: str) -> Organiser | None:
    """The organiser for a Flask-Login session id "<id>:<session_version>"."""
    organiser_id, _, version = user_id.partition(":")
    if not organiser_id.isdigit() or not version.isdigit():
        return None
    organiser = session.get(Organiser, int(organiser_id))
    if organiser is None or organiser.session_version != int(version):
        return None
    return organiser


def membership(session: Session, organiser_id: int, slug: str) -> tuple[Campaign, str] | None:
    """The campaign and the organiser's role in it, or None if not a member."""
    row = session.execute(
        select(Campaign, CampaignMember.role)
        .join(CampaignMember, CampaignMember.campaign_id == Campaign.id)
        .where(Campaign.slug == slug, CampaignMember.organiser_id == organiser_id)
    ).one_or_none()
    return (row[0], row[1]) if row else None


def my_campaigns(session: Session, organiser_id: int) -> list[tuple[Campaign, str]]:
    """The campaigns the organiser is a member of, with the role, newest first."""
    rows = session.execute(
        select(Campaign, CampaignMember.role)
        .join(CampaignMember, CampaignMember.campaign_id == Campaign.id)
        .where(CampaignMember.organiser_id == organiser_id)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
    ).all()
    return [(c, r) for c, r in rows]


def set_role(session: Session, campaign: Campaign, organiser: Organiser, role: Role) -> None:
    """Make the organiser a member of the campaign with the role (or change the role)."""
    member = session.get(CampaignMember, (campaign.id, organiser.id))
    if member is None:
        session.add(CampaignMember(campaign_id=campaign.id, organiser_id=organiser.id, role=role))
    else:
        member.role = role
    session.flush()
