"""Signing rules: who can sign what, dedup, confirmation, withdrawal (no request access here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    ColumnElement,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, joinedload, selectinload

from petition import mail
from petition.crypto import DataCipher
from petition.db import begin_write, dialect_insert
from petition.models import (
    Campaign,
    CampaignStatus,
    Channel,
    Demand,
    DemandCountShard,
    DemandStatus,
    OutboxMessage,
    OutboxStatus,
    Signature,
    SignatureStatus,
    UTCDateTime,
    utcnow,
)
from petition.signing import counts, emails

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


def _constant(value: str | int) -> ColumnElement[Any]:
    """A fixed value written into a cached statement's SQL, not sent as a parameter each time
    (a string is quoted as SQL quotes it: any ' doubled)."""
    if isinstance(value, int):
        return literal_column(str(int(value)))
    return literal_column("'" + str(value).replace("'", "''") + "'")


def takes_signatures(now: Any) -> list[ColumnElement[bool]]:
    """SQL conditions for "the demand (joined with its campaign) takes signatures at now",
    the same rules as closed_reason() (the statuses are constants in the SQL)."""
    return [
        Demand.status == _constant(DemandStatus.OPEN),
        Campaign.status == _constant(CampaignStatus.OPEN),
        or_(Demand.opens_at.is_(None), Demand.opens_at <= now),
        or_(Demand.closes_at.is_(None), Demand.closes_at > now),
    ]


_ROW = ("email_key", "email_domain_key", "name_enc", "email_enc", "postcode_enc", "country",
        "contact_consent", "public_consent", "source", "ip_hash")
# The same for every new online signature: constants in the SQL; created_at is v_now.
_NEW_ROW = {"status": SignatureStatus.PENDING, "emails_sent": 1, "channel": Channel.ONLINE}


def _insert_new(dialect: str, demands: ColumnElement[bool], *, in_order: bool = False) -> Any:
    """INSERT ... SELECT a new signature on each demand matching `demands` that takes
    signatures, at most one per person and demand (ON CONFLICT DO NOTHING), RETURNING the new
    rows' (id, demand_id); in_order inserts them in demand id order (the lock order).

    The check and the insert are one statement: a demand closed a moment ago refuses at once,
    even when the page the signer saw (or the display cache) still said open.
    """
    columns = Signature.__table__.c
    values = [bindparam(f"v_{name}", type_=columns[name].type) for name in _ROW]
    now = bindparam("v_now", type_=UTCDateTime())
    source = (
        select(Demand.id, *values, *map(_constant, _NEW_ROW.values()), now)
        .join(Campaign, Campaign.id == Demand.campaign_id)
        .where(demands, *takes_signatures(now))
    )
    if in_order:
        source = source.order_by(Demand.id)
    return (
        dialect_insert(dialect, Signature)
        .from_select(["demand_id", *_ROW, *_NEW_ROW, "created_at"], source)
        .on_conflict_do_nothing(index_elements=["demand_id", "email_key"])
        .returning(Signature.id, Signature.demand_id)
    )


@cache
def _insert_each_if_open(dialect: str) -> Any:
    """_insert_new() for a list of demands (v_demand_ids), in id order; built once."""
    return _insert_new(dialect, Demand.id.in_(bindparam("v_demand_ids", expanding=True)),
                       in_order=True)


_MESSAGE = ("kind", "recipient_enc", "subject", "body_text", "body_html")


def _message_from(new: Any, *, all_of: bool) -> Any:
    """INSERT the signing email (m_* parameters) naming the signatures of the CTE `new` in
    its links: one message per row of new, or (all_of) one naming all of them, written only
    if new holds v_expected rows (every demand signed anew)."""
    columns = OutboxMessage.__table__.c
    values = [bindparam(f"m_{name}", type_=columns[name].type) for name in _MESSAGE]
    ids = (func.json_agg(aggregate_order_by(new.c.id, new.c.id)) if all_of
           else func.json_build_array(new.c.id))
    links = func.json_build_object(
        _constant(emails.CONFIRM), ids, _constant(emails.WITHDRAW), ids, type_=JSON)
    now = bindparam("v_now", type_=UTCDateTime())
    pending = [_constant(OutboxStatus.PENDING), _constant(0), now, now]
    rows = select(*values, links, *pending).select_from(new)
    if all_of:
        rows = rows.having(func.count() == bindparam("v_expected"))
    return (
        insert(OutboxMessage)
        .from_select([*_MESSAGE, "links", "status", "attempts", "next_attempt_at", "created_at"],
                     rows)
        .returning(OutboxMessage.id)
        .cte("message")
    )


@cache
def _sign_and_queue() -> Any:
    """PostgreSQL: _insert_new() for one demand (v_demand_id) and, if it inserted, the
    signing email naming the new signature, in ONE statement (data-modifying CTEs):

        WITH new AS (INSERT INTO signatures ... ON CONFLICT DO NOTHING RETURNING id),
             message AS (INSERT INTO outbox_messages ... SELECT ... FROM new RETURNING id)
        SELECT new.id, message.id FROM new JOIN message ON true

    Run outside a transaction, it is atomic by itself: one round trip instead of BEGIN, two
    INSERTs and COMMIT. It returns no row when nothing was inserted (already signed, or
    closed), and then wrote nothing.
    """
    new = _insert_new("postgresql", Demand.id == bindparam("v_demand_id")).cte("new")
    message = _message_from(new, all_of=False)
    return select(new.c.id, message.c.id).select_from(new.join(message, true()))


@cache
def _sign_each_and_queue() -> Any:
    """PostgreSQL, in the caller's transaction: _insert_each_if_open() and, if every demand
    was signed anew, the email naming all the new signatures, in ONE statement; returns
    (id, demand_id, message id or NULL) per new signature. With no message (someone had
    signed some already, or one is closed) sign() goes on in the same transaction."""
    new = _insert_each_if_open("postgresql").cte("new")
    message = _message_from(new, all_of=True)
    return select(new.c.id, new.c.demand_id, message.c.id).select_from(
        new.outerjoin(message, true()))


def sign(
    session: Session, demands: Sequence[Demand], signer: SignerInput, ip_address: str | None
) -> SignOutcome:
    """Sign each demand once per person (race-safe) and queue one email about all of them.

    The demands may come from the display cache (read only): whether each still takes
    signatures is checked by the database in the same statement that inserts. New signatures
    are inserted with ON CONFLICT DO NOTHING on (demand_id, email_key); for an existing one
    the address gets the confirmation again (pending) or an "already signed" note
    (confirmed), at most MAX_EMAILS_PER_SIGNATURE emails per signature. A demand that no
    longer takes signatures is listed in outcome.refused: the caller then rolls back and
    explains. Otherwise the caller commits.

    On PostgreSQL a new signature on one demand (the common case) and its email are written
    by one statement in autocommit (_sign_and_queue). Otherwise, in a transaction, one
    statement inserts the new signatures on all the demands (on PostgreSQL with their email
    when all are new: _sign_each_and_queue); then the demands signed before are looked up.
    """
    c = cipher()
    now = utcnow()
    email_key = c.email_key(signer.email)
    row = {
        "v_email_key": email_key,
        "v_email_domain_key": c.domain_key(signer.email),
        "v_name_enc": c.encrypt(signer.name, "signature.name"),
        "v_email_enc": c.encrypt(signer.email, "signature.email"),
        "v_postcode_enc": c.encrypt(signer.postcode, "signature.postcode") if signer.postcode else None,
        "v_country": signer.country,
        "v_contact_consent": signer.contact_consent,
        "v_public_consent": signer.public_consent,
        "v_source": signer.source,
        "v_ip_hash": c.ip_hash(ip_address),
        "v_now": now,
    }
    dialect = session.get_bind().dialect.name
    alone = dialect == "postgresql" and len(demands) == 1 and not session.in_transaction()
    if alone:
        outcome = _sign_new_in_one_statement(session, demands[0], signer.email, row)
        if outcome is not None:
            return outcome
    begin_write(session)
    by_demand = {d.id: d for d in demands}
    each = {**row, "v_demand_ids": sorted(by_demand)}
    outcome = SignOutcome()
    if dialect == "postgresql" and not alone:  # (alone: it signed nothing new just now)
        listed = sorted(by_demand.values(), key=lambda d: d.ordinal)  # as the email lists them
        message = _signing_message(signer.email, to_confirm=listed, already=[])
        each |= {"v_expected": len(by_demand), **_message_params(message)}
        written = session.connection().execute(_sign_each_and_queue(), each).all()
        outcome.message_id = written[0][2] if written else None
    else:
        written = session.connection().execute(_insert_each_if_open(dialect), each).all()
    new = {demand_id: new_id for new_id, demand_id, *_ in written}
    by_id = {new[demand_id]: by_demand[demand_id] for demand_id in sorted(new)}
    outcome.created = list(by_id)
    if outcome.message_id is not None:
        return outcome
    _again(session, [d for d in by_demand.values() if d.id not in new], email_key, now,
           outcome, by_id)
    if by_id and not outcome.refused:
        outcome.message_id = _queue_signing_email(session, signer.email, outcome, by_id)
    return outcome


def _again(session: Session, demands: Sequence[Demand], email_key: str, now: datetime,
           outcome: SignOutcome, by_id: dict[int, Demand]) -> None:
    """The signer's earlier signatures on the demands no new one was written for (locked in
    demand order): each gets the confirmation again (pending) or an "already signed" note
    (confirmed), up to the cap; a demand with none is closed (outcome.refused)."""
    if not demands:
        return
    earlier = {
        signature.demand_id: signature
        for signature in session.scalars(
            select(Signature)
            .join(Demand, Demand.id == Signature.demand_id)
            .join(Campaign, Campaign.id == Demand.campaign_id)
            .where(Signature.demand_id.in_([d.id for d in demands]),
                   Signature.email_key == email_key, *takes_signatures(now))
            .order_by(Signature.demand_id)
            .with_for_update(of=Signature)
            .execution_options(populate_existing=True)  # the locked rows, not older copies
        )
    }
    cap = int(current_app.config["MAX_EMAILS_PER_SIGNATURE"])
    for demand in sorted(demands, key=lambda d: d.id):
        existing = earlier.get(demand.id)
        if existing is None:
            outcome.refused.append(demand.id)  # no new row and no old one: it is closed
            continue
        if existing.emails_sent >= cap:
            continue
        if existing.status == SignatureStatus.PENDING:
            outcome.pending_again.append(existing.id)
        elif existing.status == SignatureStatus.CONFIRMED:
            outcome.already_confirmed.append(existing.id)
        else:
            continue  # invalidated: say nothing
        existing.emails_sent += 1
        by_id[existing.id] = demand


def _sign_new_in_one_statement(
    session: Session, demand: Demand, email: str, row: dict[str, Any]
) -> SignOutcome | None:
    """A new signature on one demand and its email in one autocommitted statement, or None
    (nothing written: the signer had signed already, or the demand is closed)."""
    message = _signing_message(email, to_confirm=[demand], already=[])
    params = {**row, "v_demand_id": demand.id, **_message_params(message)}
    with session.get_bind().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        written = connection.execute(_sign_and_queue(), params).first()
    if written is None:
        return None
    return SignOutcome(created=[written[0]], message_id=written[1])


def _message_params(message: dict[str, Any]) -> dict[str, Any]:
    """A message_row() as the m_* parameters of the statements that write it (_message_from)."""
    return {f"m_{name}": message[name] for name in _MESSAGE}


def _queue_signing_email(
    session: Session, email: str, outcome: SignOutcome, by_id: dict[int, Demand]
) -> int:
    to_confirm = sorted(outcome.created + outcome.pending_again, key=lambda i: by_id[i].ordinal)
    already = sorted(outcome.already_confirmed, key=lambda i: by_id[i].ordinal)
    message = _signing_message(
        email, to_confirm=[by_id[i] for i in to_confirm], already=[by_id[i] for i in already],
        links=emails.links(to_confirm, list(by_id)),
    )
    return mail.insert_message(session, message)


def _signing_message(
    email: str, *, to_confirm: Sequence[Demand], already: Sequence[Demand],
    links: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """The outbox row of the signing email (the links are made when it is sent)."""
    email_parts = emails.signing_email(
        str(get_locale() or ""),
        int(current_app.config["CONFIRM_MAX_AGE_DAYS"]),
        tuple(emails.listed(d.title, d.campaign.title) for d in to_confirm),
        tuple(emails.listed(d.title, d.campaign.title) for d in already),
    )
    return mail.message_row(kind=email_parts.kind, recipient=email, subject=email_parts.subject,
                            text=email_parts.text, html=email_parts.html, links=links)


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


@cache
def _confirm_pending() -> Any:
    """UPDATE the link's pending signatures to confirmed, RETURNING their demand ids."""
    return (
        update(Signature)
        .where(Signature.id.in_(bindparam("c_ids", expanding=True)),
               Signature.status == _constant(SignatureStatus.PENDING))
        .values(status=_constant(SignatureStatus.CONFIRMED),
                confirmed_at=bindparam("c_now", type_=UTCDateTime()))
        .returning(Signature.demand_id)
    )


@cache
def _confirm_and_count() -> Any:
    """PostgreSQL: confirm the link's pending signatures and add them to their demands'
    counts in ONE statement (a data-modifying CTE), atomic by itself in autocommit:

        WITH confirmed AS (UPDATE signatures ... WHERE status = 'pending' RETURNING demand_id)
        INSERT INTO demand_count_shards SELECT demand_id, 'online', :shard, count(*), :now
            FROM confirmed GROUP BY demand_id ORDER BY demand_id
        ON CONFLICT DO UPDATE SET count = count + excluded.count

    Only the rows this statement moved from pending are counted, so a link clicked twice at
    once counts once; demands are locked in id order (no lock-order deadlock)."""
    confirmed = _confirm_pending().cte("confirmed")
    rows = (
        select(confirmed.c.demand_id, _constant(Channel.ONLINE), bindparam("c_shard"),
               func.count(), bindparam("c_now", type_=UTCDateTime()))
        .group_by(confirmed.c.demand_id)
        .order_by(confirmed.c.demand_id)
    )
    insert = dialect_insert("postgresql", DemandCountShard).from_select(
        ["demand_id", "channel", "shard", "count", "updated_at"], rows
    )
    return counts.add_on_conflict(insert)


@cache
def _shown_signatures() -> Any:
    """The link's signatures with their demands, campaigns and counts, in one SELECT."""
    count = (
        select(func.coalesce(func.sum(DemandCountShard.count), 0))
        .where(DemandCountShard.demand_id == Demand.id)
        .scalar_subquery()
    )
    return (
        select(Signature.id, Signature.status, Demand.id, Demand.slug, Demand.title,
               Campaign.slug, Campaign.title, count)
        .join(Demand, Demand.id == Signature.demand_id)
        .join(Campaign, Campaign.id == Demand.campaign_id)
        .where(Signature.id.in_(bindparam("c_ids", expanding=True)))
        .order_by(Demand.campaign_id, Demand.ordinal)
    )


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
    (_confirm_and_count) and the page's rows one more on the same connection; on SQLite the
    session's write transaction does the UPDATE and the counter rows, then commits."""
    params = {"c_ids": list(signature_ids), "c_now": utcnow()}
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        with session.get_bind().connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(_confirm_and_count(), {**params, "c_shard": counts.shard()})
            return _shown(connection.execute(_shown_signatures(), params))
    begin_write(session)
    confirmed = session.connection().execute(_confirm_pending(), params)
    counts.add_many(session, confirmed.scalars().all(), +1)
    session.commit()
    return _shown(session.connection().execute(_shown_signatures(), params))


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
