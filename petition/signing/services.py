"""Signing rules: who can sign what, dedup, confirmation, withdrawal (no request access here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from petition.crypto import DataCipher
from petition.db import begin_write
from petition.extensions import client_network
from petition.models import (
    Campaign,
    CampaignStatus,
    Demand,
    DemandStatus,
    Signature,
    SignatureStatus,
    utcnow,
)
from petition.signing import counts, emails, statements

PUBLIC_CAMPAIGN = (CampaignStatus.OPEN, CampaignStatus.CLOSED, CampaignStatus.ARCHIVED)
PUBLIC_DEMAND = (DemandStatus.OPEN, DemandStatus.CLOSED, DemandStatus.WON)
WITHDRAWABLE = (SignatureStatus.PENDING, SignatureStatus.CONFIRMED, SignatureStatus.INVALIDATED)


@dataclass(frozen=True)
class SignerInput:
    """What a supporter typed into a sign form, already validated."""

    name: str
    email: str
    country: str
    postcode: str | None = None
    contact_consent: bool = False
    public_consent: bool = False
    source: str | None = None


@dataclass
class SignOutcome:
    """What a submission did; never shown to the signer (the screen is always the same)."""

    created: list[int] = field(default_factory=list)
    pending_again: list[int] = field(default_factory=list)
    already_confirmed: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # demand ids that stopped taking signatures
    message_id: int | None = None


def cipher() -> DataCipher:
    """The application's PII cipher."""
    return current_app.extensions["petition.cipher"]


def list_public_campaigns(session: Session) -> list[Campaign]:
    """Open and closed campaigns for the index, newest first."""
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.status.in_((CampaignStatus.OPEN, CampaignStatus.CLOSED)))
            .options(selectinload(Campaign.demands))
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        )
    )


def get_public_campaign(session: Session, slug: str) -> Campaign | None:
    """A published campaign by slug, with its demands loaded, or None."""
    return session.scalars(
        select(Campaign)
        .where(Campaign.slug == slug, Campaign.status.in_(PUBLIC_CAMPAIGN))
        .options(selectinload(Campaign.demands))
    ).one_or_none()


def get_public_demand(session: Session, slug: str) -> Demand | None:
    """A published demand of a published campaign, by slug, or None."""
    return session.scalars(
        select(Demand)
        .join(Demand.campaign)
        .where(
            Demand.slug == slug,
            Demand.status.in_(PUBLIC_DEMAND),
            Campaign.status.in_(PUBLIC_CAMPAIGN),
        )
        .options(joinedload(Demand.campaign))
    ).one_or_none()


def public_demands(campaign: Campaign) -> list[Demand]:
    """The campaign's published demands in order."""
    return [d for d in campaign.demands if d.status in PUBLIC_DEMAND]


def closed_reason(demand: Demand, now: datetime | None = None) -> str | None:
    """Why the demand cannot be signed now, or None if it can."""
    now = now or utcnow()
    if demand.campaign.status != CampaignStatus.OPEN:
        return _("This campaign is closed and no longer collects signatures.")
    if demand.status == DemandStatus.WON:
        return _("This demand has been won and no longer collects signatures.")
    if demand.status != DemandStatus.OPEN:
        return _("This petition is closed and no longer accepts signatures.")
    if demand.opens_at and now < demand.opens_at:
        return _("This petition opens for signatures on %(date)s.", date=f"{demand.opens_at:%d %B %Y}")
    if demand.closes_at and now >= demand.closes_at:
        return _("This petition closed on %(date)s and no longer accepts signatures.",
                 date=f"{demand.closes_at:%d %B %Y}")
    return None


def sign(
    session: Session, demands: Sequence[Demand], signer: SignerInput, ip_address: str | None,
    *, autocommit: bool = True,
) -> SignOutcome:
    """Sign each demand once per person (race-safe) and queue one email about all of them.

    The demands may come from the display cache (read only): whether each still takes
    signatures is checked by the database in the same statement that writes. A new signature
    is inserted; for one that exists on (demand_id, email_key) the same statement updates it
    instead, and the address gets the confirmation again (pending) or an "already signed"
    note (confirmed), at most MAX_EMAILS_PER_SIGNATURE emails per signature. Either way the
    same statements run and the signature's row is written, so a submission takes as long
    whether or not the address signed before (statements.py). A demand that no longer takes
    signatures is listed in outcome.refused: the caller then rolls back and explains.
    Otherwise the caller commits.

    On PostgreSQL one demand (the common case) and its email are one statement in autocommit
    (statements.sign_one; not with autocommit=False, for a caller that may roll back).
    Otherwise, in a transaction, one statement writes the signatures on all the demands and
    one more the email.
    """
    c = cipher()
    now = utcnow()
    row = {
        "v_email_key": c.email_key(signer.email),
        "v_email_domain_key": c.domain_key(signer.email),
        "v_name_enc": c.encrypt(signer.name, "signature.name"),
        "v_email_enc": c.encrypt(signer.email, "signature.email"),
        "v_postcode_enc": c.encrypt(signer.postcode, "signature.postcode") if signer.postcode else None,
        "v_country": signer.country,
        "v_contact_consent": signer.contact_consent,
        "v_public_consent": signer.public_consent,
        "v_source": signer.source,
        # Of the network (an IPv6 /64), as rate limits count: one client's signatures
        # group together for moderation however it steps through its addresses.
        "v_ip_hash": c.ip_hash(client_network(ip_address)) if ip_address else None,
        "v_now": now,
        "v_cap": int(current_app.config["MAX_EMAILS_PER_SIGNATURE"]),
        "m_recipient_enc": c.encrypt(signer.email, "outbox.recipient"),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(demands) == 1 and autocommit and not session.in_transaction():
        return _sign_one(session, demands[0], row)
    begin_write(session)
    by_demand = {d.id: d for d in demands}
    written = session.connection().execute(
        statements.upsert_each(dialect), {**row, "v_demand_ids": sorted(by_demand)}).all()
    outcome = SignOutcome(refused=sorted(set(by_demand) - {r.demand_id for r in written}))
    if outcome.refused:
        return outcome
    emailed: dict[int, Demand] = {}
    for signature_id, demand_id, status, created, gets_email in sorted(
            written, key=lambda r: r.demand_id):
        if not gets_email:
            continue  # capped, or invalidated: say nothing
        if created:
            outcome.created.append(signature_id)
        elif status == SignatureStatus.PENDING:
            outcome.pending_again.append(signature_id)
        else:
            outcome.already_confirmed.append(signature_id)
        emailed[signature_id] = by_demand[demand_id]
    to_confirm = sorted(outcome.created + outcome.pending_again, key=lambda i: emailed[i].ordinal)
    already = sorted(outcome.already_confirmed, key=lambda i: emailed[i].ordinal)
    parts = _email_parts(demands, [emailed[i] for i in to_confirm], [emailed[i] for i in already])
    message = {**row, **_message_params("m", parts), "m_wanted": bool(emailed),
               "m_links": emails.links(to_confirm, list(emailed))}
    outcome.message_id = session.connection().execute(
        statements.insert_message_if(), message).scalar()
    return outcome


def _sign_one(session: Session, demand: Demand, row: dict[str, Any]) -> SignOutcome:
    """PostgreSQL: sign one demand and queue its email in one autocommitted statement."""
    confirm, note = _single_demand_emails(demand)
    params = {**row, "v_demand_id": demand.id, **_message_params("m", confirm),
              **_message_params("a", note)}
    with session.get_bind().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        written = connection.execute(statements.sign_one(), params).first()
    if written is None:
        return SignOutcome(refused=[demand.id])
    signature_id, status, created, message_id = written
    outcome = SignOutcome(message_id=message_id)
    if created:
        outcome.created.append(signature_id)
    elif message_id is not None:
        again = (outcome.pending_again if status == SignatureStatus.PENDING
                 else outcome.already_confirmed)
        again.append(signature_id)
    return outcome


def _message_params(prefix: str, parts: emails.SigningEmail) -> dict[str, Any]:
    """The email's parts as the parameters of a sign statement (statements.MESSAGE)."""
    return {f"{prefix}_kind": parts.kind, f"{prefix}_subject": parts.subject,
            f"{prefix}_body_text": parts.text, f"{prefix}_body_html": parts.html}


def _listed(demands: Sequence[Demand]) -> tuple[emails.Listed, ...]:
    return tuple(emails.listed(d.title, d.campaign.title) for d in demands)


def _single_demand_emails(demand: Demand) -> tuple[emails.SigningEmail, emails.SigningEmail]:
    """The confirmation and the "already signed" note for one demand, both made (from the
    cache) on every submission, whichever is sent."""
    locale, days = str(get_locale() or ""), int(current_app.config["CONFIRM_MAX_AGE_DAYS"])
    item = _listed([demand])
    return (emails.signing_email(locale, days, item, ()),
            emails.signing_email(locale, days, (), item))


def _email_parts(demands: Sequence[Demand], to_confirm: Sequence[Demand],
                 already: Sequence[Demand]) -> emails.SigningEmail:
    """The signing email about these demands, made at the same cost whichever of them the
    person signed before: for one demand both kinds come from the cache, for several the
    email is rendered every time (a cache would be slower to fill for a rarer mix, and so
    tell it). With nothing to send, one is made all the same and not written."""
    if len(demands) == 1:
        confirm, note = _single_demand_emails(demands[0])
        return note if already and not to_confirm else confirm
    if not (to_confirm or already):
        to_confirm = sorted(demands, key=lambda d: d.ordinal)
    days = int(current_app.config["CONFIRM_MAX_AGE_DAYS"])
    return emails.render_signing_email(str(get_locale() or ""), days, _listed(to_confirm),
                                       _listed(already))


@dataclass(frozen=True)
class ShownCampaign:
    """The campaign as the confirmation page names and links it."""

    slug: str
    title: str


@dataclass(frozen=True)
class ShownDemand:
    """The demand as the confirmation page names and links it."""

    id: int
    slug: str
    title: str
    campaign: ShownCampaign


@dataclass(frozen=True)
class ConfirmedSignature:
    """A signature named by a confirmation link, after the click: its status and its
    demand's count (paper included), both read after the commit."""

    id: int
    status: str
    demand: ShownDemand
    count: int


def _shown(rows: Any) -> list[ConfirmedSignature]:
    return [
        ConfirmedSignature(id_, status, ShownDemand(demand_id, slug, title,
                                                    ShownCampaign(campaign_slug, campaign_title)),
                           int(count))
        for id_, status, demand_id, slug, title, campaign_slug, campaign_title, count in rows
    ]


def confirm(session: Session, signature_ids: list[int]) -> list[ConfirmedSignature]:
    """Confirm the pending signatures among the ids (idempotent) and commit; returns all of
    them (none if the ids name no signature), with the counts read after the commit, so the
    signer sees their signature counted.

    On PostgreSQL the confirmation and the count are one autocommitted statement
    (statements.confirm_and_count) and the page's rows one more on the same connection; on SQLite the
    session's write transaction does the UPDATE and the counter rows, then commits."""
    params = {"c_ids": list(signature_ids), "c_now": utcnow()}
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        with session.get_bind().connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(statements.confirm_and_count(), {**params, "c_shard": counts.shard()})
            return _shown(connection.execute(statements.shown_signatures(), params))
    begin_write(session)
    confirmed = session.connection().execute(statements.confirm_pending(), params)
    counts.add_many(session, confirmed.scalars().all(), +1)
    session.commit()
    return _shown(session.connection().execute(statements.shown_signatures(), params))


def load_signatures(session: Session, signature_ids: list[int]) -> list[Signature]:
    """The signatures with their demands and campaigns, in demand order."""
    signatures = session.scalars(
        select(Signature)
        .where(Signature.id.in_(signature_ids))
        .options(joinedload(Signature.demand).joinedload(Demand.campaign))
        .execution_options(populate_existing=True)
    ).all()
    return sorted(signatures, key=lambda s: (s.demand.campaign_id, s.demand.ordinal))


def withdraw(session: Session, signature_ids: list[int]) -> int:
    """Withdraw signatures: erase the signer's data and take confirmed ones off the count."""
    begin_write(session)
    signatures = session.scalars(
        select(Signature)
        .where(Signature.id.in_(signature_ids), Signature.status.in_(WITHDRAWABLE))
        .with_for_update()
    ).all()
    was_counted = [
        (s.demand_id, s.channel) for s in signatures if s.status == SignatureStatus.CONFIRMED
    ]
    now = utcnow()
    for signature in signatures:
        signature.status = SignatureStatus.WITHDRAWN
        signature.withdrawn_at = now
        signature.email_key = None
        signature.email_domain_key = None
        signature.name_enc = None
        signature.email_enc = None
        signature.postcode_enc = None
        signature.ip_hash = None
        signature.country = None
        signature.contact_consent = False
        signature.public_consent = False
    session.flush()
    counts.add_many(session, was_counted, -1)
    return len(signatures)
