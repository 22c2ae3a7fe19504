"""Retention: erase signers' personal data once the demand they signed has closed.

The rule is deliberately simple: a demand's signatures are anonymised when the demand has a
closing date (`closes_at`) earlier than the given date, which may not lie in the future. From
that moment the demand accepted no signatures, whatever its status. Demands without a closing
date are never anonymised by this rule; the ones that no longer collect (demand closed or won,
or campaign closed or archived) are reported so an organiser can give them a closing date.

Anonymising erases name, email, postcode, dedup key, domain key and IP hash; the status,
country, source, consents and times stay, so counts and statistics do not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from petition.db import begin_write
from petition.models import Campaign, CampaignStatus, Demand, DemandStatus, Signature, utcnow
from petition.organiser import audit

ANONYMISE_ACTION = "anonymise"
PII_COLUMNS = ("name_enc", "email_enc", "postcode_enc", "email_key", "email_domain_key", "ip_hash")


@dataclass
class RetentionResult:
    """What an anonymise run did (or, in a dry run, would do)."""

    # (demand, signatures with personal data still present), in id order.
    demands: list[tuple[Demand, int]] = field(default_factory=list)
    # Demands that no longer collect but have no closing date, so were left alone.
    skipped: list[Demand] = field(default_factory=list)

    @property
    def signatures(self) -> int:
        """Signatures anonymised (or to anonymise)."""
        return sum(n for _demand, n in self.demands)


def cutoff(closed_before: date, now: datetime | None = None) -> datetime:
    """The start of the given day (UTC); ValueError if it lies in the future."""
    moment = datetime.combine(closed_before, time.min, tzinfo=UTC)
    if moment > (now or utcnow()):
        raise ValueError("the date must not be in the future")
    return moment


def _has_pii() -> object:
    return or_(*(getattr(Signature, column).is_not(None) for column in PII_COLUMNS))


def anonymise(session: Session, closed_before: date, *, dry_run: bool = False) -> RetentionResult:
    """Erase the PII of signatures on demands that closed before the date; commits."""
    moment = cutoff(closed_before)
    if not dry_run:
        begin_write(session)
    demands = list(session.scalars(
        select(Demand).where(Demand.closes_at.is_not(None), Demand.closes_at < moment)
        .order_by(Demand.id)
    ))
    result = RetentionResult()
    if demands:
        pending = dict(session.execute(
            select(Signature.demand_id, func.count())
            .where(Signature.demand_id.in_([d.id for d in demands]), _has_pii())
            .group_by(Signature.demand_id)
        ).all())
        result.demands = [(d, int(pending.get(d.id, 0))) for d in demands if pending.get(d.id)]
    result.skipped = list(session.scalars(
        select(Demand).join(Demand.campaign)
        .where(Demand.closes_at.is_(None), or_(
            Demand.status.in_((DemandStatus.CLOSED, DemandStatus.WON)),
            Campaign.status.in_((CampaignStatus.CLOSED, CampaignStatus.ARCHIVED)),
        ))
        .order_by(Demand.id)
    ))
    if dry_run or not result.demands:
        session.rollback()
        return result
    ids = [d.id for d, _n in result.demands]
    session.execute(
        update(Signature)
        .where(Signature.demand_id.in_(ids), _has_pii())
        .values({column: None for column in PII_COLUMNS}),
        execution_options={"synchronize_session": False},
    )
    per_campaign: dict[int, list[tuple[Demand, int]]] = {}
    for demand, n in result.demands:
        per_campaign.setdefault(demand.campaign_id, []).append((demand, n))
    for campaign_id, items in per_campaign.items():
        audit.record(
            session,
            campaign_id=campaign_id,
            organiser_id=None,
            action=ANONYMISE_ACTION,
            detail={"closed_before": closed_before.isoformat(),
                    "demands": {d.slug: n for d, n in items}},
            row_count=sum(n for _d, n in items),
        )
    session.commit()
    return result
