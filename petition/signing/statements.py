"""The SQL of signing and confirming, built once per dialect (services.py runs them).

Signing is written so that a submission runs the same statements, with the same writes,
whether or not the address signed before: a new signature is an INSERT, a signature that
exists already is an UPDATE of that row by the same statement (ON CONFLICT DO UPDATE
emails_sent + 1, up to one past the cap), and the email goes into the outbox by one more statement that writes it
or, when nothing may be sent (the cap, an invalidated signature), the same statement
writes no row. So neither the time a submission takes nor the statements it sends tell
whether someone signed (docs/privacy.md, "No way to probe who signed").
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql import true

from petition.db import dialect_insert
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
)
from petition.signing import counts, emails

ROW = ("email_key", "email_domain_key", "name_enc", "email_enc", "postcode_enc", "country",
       "contact_consent", "public_consent", "source", "ip_hash")
# The same for every new online signature: constants in the SQL; created_at is v_now.
_NEW_ROW = {"status": SignatureStatus.PENDING, "emails_sent": 1, "channel": Channel.ONLINE}
# The message columns a sign statement takes as parameters: m_* (the confirmation email)
# and, for the one-statement path, a_* (the "you have already signed" note).
MESSAGE = ("kind", "subject", "body_text", "body_html")
# A signature asked for again gets an email in these states (up to the cap), in no other.
EMAILED = (SignatureStatus.PENDING, SignatureStatus.CONFIRMED)


def constant(value: str | int) -> ColumnElement[Any]:
    """A fixed value written into a cached statement's SQL, not sent as a parameter each time
    (a string is quoted as SQL quotes it: any ' doubled)."""
    if isinstance(value, int):
        return literal_column(str(int(value)))
    return literal_column("'" + str(value).replace("'", "''") + "'")


def takes_signatures(now: Any) -> list[ColumnElement[bool]]:
    """SQL conditions for "the demand (joined with its campaign) takes signatures at now",
    the same rules as services.closed_reason() (the statuses are constants in the SQL)."""
    return [
        Demand.status == constant(DemandStatus.OPEN),
        Campaign.status == constant(CampaignStatus.OPEN),
        or_(Demand.opens_at.is_(None), Demand.opens_at <= now),
        or_(Demand.closes_at.is_(None), Demand.closes_at > now),
    ]


def _emailed(now: Any) -> ColumnElement[bool]:
    """SQL, in the RETURNING of _upsert(): the row just written gets an email: it is new
    (created now), or it is pending or confirmed and its emails_sent, counted by the
    statement, is within the v_cap emails allowed per signature."""
    return and_(Signature.status.in_([constant(s) for s in EMAILED]),
                or_(Signature.created_at == now, Signature.emails_sent <= bindparam("v_cap")))


def _upsert(dialect: str, demands: ColumnElement[bool], *, in_order: bool = False) -> Any:
    """INSERT ... SELECT a signature on each demand matching `demands` that takes signatures;
    where this person signed it already (ON CONFLICT on demand and email key), the same
    statement UPDATEs that row instead: if it is pending or confirmed, emails_sent + 1 up to
    one past the v_cap emails allowed (so a row over the cap is still written). RETURNING
    (id, demand_id, status, created, emailed) of each row written, new or old: created if it
    was inserted now, emailed if it gets an email (_emailed); a demand that does not take
    signatures gets no row. in_order writes them in demand id order (the lock order).

    The check and the write are one statement: a demand closed a moment ago refuses at once,
    even when the page the signer saw (or the display cache) still said open.
    """
    columns = Signature.__table__.c
    values = [bindparam(f"v_{name}", type_=columns[name].type) for name in ROW]
    now = bindparam("v_now", type_=UTCDateTime())
    source = (
        select(Demand.id, *values, *map(constant, _NEW_ROW.values()), now)
        .join(Campaign, Campaign.id == Demand.campaign_id)
        .where(demands, *takes_signatures(now))
    )
    if in_order:
        source = source.order_by(Demand.id)
    sent = Signature.emails_sent
    counted = and_(Signature.status.in_([constant(s) for s in EMAILED]), sent <= bindparam("v_cap"))
    return (
        dialect_insert(dialect, Signature)
        .from_select(["demand_id", *ROW, *_NEW_ROW, "created_at"], source)
        .on_conflict_do_update(
            index_elements=["demand_id", "email_key"],
            set_={"emails_sent": case((counted, sent + constant(1)), else_=sent)},
        )
        .returning(Signature.id, Signature.demand_id, Signature.status,
                   (Signature.created_at == now).label("created"),
                   _emailed(now).label("emailed"))
    )


@cache
def upsert_each(dialect: str) -> Any:
    """_upsert() for a list of demands (v_demand_ids), in id order."""
    return _upsert(dialect, Demand.id.in_(bindparam("v_demand_ids", expanding=True)),
                   in_order=True)


_OUTBOX = ["recipient_enc", *MESSAGE, "links", "status", "attempts", "next_attempt_at",
           "created_at"]


def _queue(rows: Any) -> Any:
    """INSERT INTO outbox_messages the messages SELECTed by rows (recipient_enc, the MESSAGE
    columns and links), pending from v_now, RETURNING their ids."""
    return insert(OutboxMessage).from_select(_OUTBOX, rows).returning(OutboxMessage.id)


def _pending_from_now() -> list[ColumnElement[Any]]:
    """The status, attempts, next_attempt_at and created_at of a message queued at v_now."""
    now = bindparam("v_now", type_=UTCDateTime())
    return [constant(OutboxStatus.PENDING), constant(0), now, now]


@cache
def insert_message_if() -> Any:
    """INSERT the signing email (m_* parameters, links and the v_now time) into the outbox
    if m_wanted, else write nothing; RETURNING its id (no row when not wanted)."""
    columns = OutboxMessage.__table__.c
    values = [bindparam(f"m_{name}", type_=columns[name].type)
              for name in ("recipient_enc", *MESSAGE, "links")]
    return _queue(select(*values, *_pending_from_now()).where(
        bindparam("m_wanted", type_=Boolean)))


@cache
def sign_one() -> Any:
    """PostgreSQL: _upsert() on one demand (v_demand_id) and the email it earns, in ONE
    statement (data-modifying CTEs), atomic by itself in autocommit:

        WITH signed AS (INSERT INTO signatures ... ON CONFLICT DO UPDATE ... RETURNING ...),
             message AS (INSERT INTO outbox_messages SELECT ... FROM signed WHERE ...)
        SELECT signed.id, signed.status, signed.created, message.id
            FROM signed LEFT JOIN message ON true

    The email is the confirmation (m_* parameters, linking the signature to confirm and to
    withdraw) unless the signature is confirmed already: then the "already signed" note (a_*,
    linking only the withdrawal). No row: the demand does not take signatures; a NULL
    message id: no email may be sent.
    """
    signed = _upsert("postgresql", Demand.id == bindparam("v_demand_id")).cte("signed")
    columns = OutboxMessage.__table__.c
    confirmed = signed.c.status == constant(SignatureStatus.CONFIRMED)
    chosen = [case((confirmed, bindparam(f"a_{name}", type_=columns[name].type)),
                   else_=bindparam(f"m_{name}", type_=columns[name].type)) for name in MESSAGE]
    ids = func.json_build_array(signed.c.id)
    links = case(
        (confirmed, func.json_build_object(constant(emails.WITHDRAW), ids, type_=JSON)),
        else_=func.json_build_object(constant(emails.CONFIRM), ids, constant(emails.WITHDRAW),
                                     ids, type_=JSON),
    )
    rows = (
        select(bindparam("m_recipient_enc", type_=columns["recipient_enc"].type), *chosen, links,
               *_pending_from_now())
        .select_from(signed)
        .where(signed.c.emailed)
    )
    message = _queue(rows).cte("message")
    return select(signed.c.id, signed.c.status, signed.c.created, message.c.id).select_from(
        signed.outerjoin(message, true()))


@cache
def confirm_pending() -> Any:
    """UPDATE the link's pending signatures to confirmed, RETURNING their demand ids."""
    return (
        update(Signature)
        .where(Signature.id.in_(bindparam("c_ids", expanding=True)),
               Signature.status == constant(SignatureStatus.PENDING))
        .values(status=constant(SignatureStatus.CONFIRMED),
                confirmed_at=bindparam("c_now", type_=UTCDateTime()))
        .returning(Signature.demand_id)
    )


@cache
def confirm_and_count() -> Any:
    """PostgreSQL: confirm the link's pending signatures and add them to their demands'
    counts in ONE statement (a data-modifying CTE), atomic by itself in autocommit:

        WITH confirmed AS (UPDATE signatures ... WHERE status = 'pending' RETURNING demand_id)
        INSERT INTO demand_count_shards SELECT demand_id, 'online', :shard, count(*), :now
            FROM confirmed GROUP BY demand_id ORDER BY demand_id
        ON CONFLICT DO UPDATE SET count = count + excluded.count

    Only the rows this statement moved from pending are counted, so a link clicked twice at
    once counts once; demands are locked in id order (no lock-order deadlock)."""
    confirmed = confirm_pending().cte("confirmed")
    rows = (
        select(confirmed.c.demand_id, constant(Channel.ONLINE), bindparam("c_shard"),
               func.count(), bindparam("c_now", type_=UTCDateTime()))
        .group_by(confirmed.c.demand_id)
        .order_by(confirmed.c.demand_id)
    )
    statement = dialect_insert("postgresql", DemandCountShard).from_select(
        ["demand_id", "channel", "shard", "count", "updated_at"], rows
    )
    return counts.add_on_conflict(statement)


@cache
def shown_signatures() -> Any:
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
