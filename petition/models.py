"""Typed SQLAlchemy 2 models: campaigns, demands, signatures, counters, organisers, outbox."""

from __future__ import annotations

import datetime as dt
import enum
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _check_in(column: str, enum_cls: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum_cls)})"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"


class DemandStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    WON = "won"


class SignatureStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    INVALIDATED = "invalidated"
    WITHDRAWN = "withdrawn"


class Role(enum.StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class Channel(enum.StrEnum):
    """How a signature was collected: signed online, or typed in from a paper sheet."""

    ONLINE = "online"
    PAPER = "paper"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(_check_in("status", CampaignStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    demands: Mapped[list[Demand]] = relationship(
        back_populates="campaign", order_by="Demand.ordinal", cascade="all, delete-orphan"
    )


class Demand(Base):
    __tablename__ = "demands"
    __table_args__ = (
        CheckConstraint(_check_in("status", DemandStatus), name="status"),
        CheckConstraint("goal >= 0", name="goal_non_negative"),
        Index(None, "campaign_id", "ordinal"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(String(200), default="")
    goal: Mapped[int] = mapped_column(Integer, default=1000)
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=DemandStatus.DRAFT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="demands")


class DemandCountShard(Base):
    """One of a small fixed set of counter rows per demand and channel; the count is their sum.

    The total of a demand sums both channels; the paper rows alone give the paper count.
    """

    __tablename__ = "demand_count_shards"
    __table_args__ = (CheckConstraint(_check_in("channel", Channel), name="channel"),)

    demand_id: Mapped[int] = mapped_column(
        ForeignKey("demands.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(
        String(8), primary_key=True, default=Channel.ONLINE, server_default=Channel.ONLINE.value
    )
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Signature(Base):
    """One supporter on one demand; name, email and postcode are AES-GCM ciphertexts."""

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("demand_id", "email_key"),
        CheckConstraint(_check_in("status", SignatureStatus), name="status"),
        CheckConstraint(_check_in("channel", Channel), name="channel"),
        Index(None, "demand_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demands.id", ondelete="CASCADE"))
    # NULL once withdrawn, so the person may sign again later.
    email_key: Mapped[str | None] = mapped_column(String(64))
    # Keyed hash of the address's domain, for moderation filters (fraud from one domain).
    email_domain_key: Mapped[str | None] = mapped_column(String(64), index=True)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    postcode_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    country: Mapped[str | None] = mapped_column(String(2))
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    public_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(64))
    # Paper signatures are typed in by organisers (source "paper:<event code>"); kept apart
    # from the source, which a signer's link can set to anything.
    channel: Mapped[str] = mapped_column(
        String(8), default=Channel.ONLINE, server_default=Channel.ONLINE.value
    )
    ip_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SignatureStatus.PENDING)
    # Emails sent about this signature; one past MAX_EMAILS_PER_SIGNATURE once the cap has
    # stopped one (signing writes the row every time: petition/signing/statements.py).
    emails_sent: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    demand: Mapped[Demand] = relationship()


class Organiser(UserMixin, Base):
    """An organiser account (Flask-Login user); the email is stored lower-cased."""

    __tablename__ = "organisers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Changes on password change, so other sessions of the account are logged out.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class CampaignMember(Base):
    __tablename__ = "campaign_members"
    __table_args__ = (CheckConstraint(_check_in("role", Role), name="role"),)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    organiser_id: Mapped[int] = mapped_column(
        ForeignKey("organisers.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), default=Role.VIEWER)


class AuditEntry(Base):
    """Who exported, invalidated or changed what, and when."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index(None, "campaign_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    organiser_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisers.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    row_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organiser: Mapped[Organiser | None] = relationship()


class OutboxMessage(Base):
    """An email to send; recipient and bodies are erased once it is delivered."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_check_in("status", OutboxStatus), name="status"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    # Links put into the bodies when the message is sent (signing.emails): which signature
    # ids each one names. No working link is ever stored.
    links: Mapped[dict[str, list[int]] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Base):
    """An organiser-made event (stall, rally, screening) whose code is carried as ?src=."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "campaign_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    date: Mapped[dt.date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(200), default="")
    # The source code: [a-z0-9-], at most 48 characters, unique across all campaigns.
    code: Mapped[str] = mapped_column(String(48), unique=True)
    # The petition the event's links point to; NULL means the campaign page.
    demand_id: Mapped[int | None] = mapped_column(ForeignKey("demands.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship()
    demand: Mapped[Demand | None] = relationship()


class KeyFingerprint(Base):
    """The fingerprint of a key the stored data depends on (name "data_key"): see petition.keys."""

    __tablename__ = "key_fingerprints"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
