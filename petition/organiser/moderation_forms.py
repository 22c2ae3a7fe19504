"""Moderation forms: searching signatures, invalidating by filter, undoing an invalidation."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date
from functools import cache
from typing import Any

import pycountry
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import Length, NumberRange, Optional, Regexp, ValidationError

from petition.models import Campaign, SignatureStatus
from petition.organiser.moderation import InvalidationFilter
from petition.organiser.search import SearchFilter

SOURCE_MAX = 64
IP_HASH_PATTERN = r"^[0-9a-f]{64}$"
_DOMAIN = re.compile(r"^[^\s@]+\.[^\s@]+$")


DATE_MESSAGE = _l("Enter a real date as YYYY-MM-DD, e.g. 2026-05-01.")
NUMBER_MESSAGE = _l("Enter the signature's number from the list, e.g. 1234.")
DATETIME_MESSAGE = _l("Enter a real date and time as YYYY-MM-DD HH:MM, e.g. 2026-05-01 14:30.")
# The first format is the one rendered: what a datetime-local input expects.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _blank(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


@cache
def country_choices() -> list[tuple[str, str]]:
    """Every ISO 3166-1 country as (alpha-2 code, name), sorted by name."""
    names = [
        (c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries
    ]
    return sorted(names, key=lambda item: unicodedata.normalize("NFKD", item[1]))


def demand_choices(campaign: Campaign, any_label: str) -> list[tuple[str, str]]:
    """The campaign's demands as select choices, with an "any" choice first."""
    return [("", any_label)] + [(str(d.id), f"{d.ordinal}. {d.title}") for d in campaign.demands]


def _status_choices() -> list[tuple[str, Any]]:
    return [
        ("", _l("Any status")),
        (SignatureStatus.CONFIRMED.value, _l("confirmed")),
        (SignatureStatus.PENDING.value, _l("pending")),
        (SignatureStatus.INVALIDATED.value, _l("invalidated")),
        (SignatureStatus.WITHDRAWN.value, _l("withdrawn")),
    ]


class SignatureSearchForm(FlaskForm):
    """Search a campaign's signatures (a GET form: no CSRF token, nothing is changed)."""

    class Meta:
        csrf = False

    email = EmailField(_l("Email address (exact)"), filters=[_blank], validators=[
        Optional(), Length(max=254, message=_l("An email address has at most 254 characters."))])
    source = StringField(_l("Source"), filters=[_blank], validators=[
        Optional(), Length(max=SOURCE_MAX, message=_l("A source has at most 64 characters."))])
    country = SelectField(_l("Country"), validators=[Optional()])
    date_from = DateField(_l("Signed on or after"), validators=[Optional()],
                          invalid_value_message=DATE_MESSAGE)
    date_to = DateField(_l("Signed on or before"), validators=[Optional()],
                        invalid_value_message=DATE_MESSAGE)
    status = SelectField(_l("Status"), validators=[Optional()])
    demand = SelectField(_l("Demand"), validators=[Optional()])
    ip = HiddenField(_l("IP filter"), validators=[Optional(), Regexp(IP_HASH_PATTERN, message=_l(
        "This IP filter is not valid; remove it and try again."))])

    def __init__(self, campaign: Campaign, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.country.choices = [("", str(_l("Any country")))] + country_choices()
        self.status.choices = _status_choices()
        self.demand.choices = demand_choices(campaign, str(_l("All demands")))

    def validate_date_to(self, field: DateField) -> None:
        """The end date may not be before the start date."""
        start: date | None = self.date_from.data
        if field.data and start and field.data < start:
            raise ValidationError(_l("The end date is before the start date."))

    def to_filter(self) -> SearchFilter:
        """The validated fields as a service filter."""
        return SearchFilter(
            email=self.email.data or None,
            source=self.source.data or None,
            country=self.country.data or None,
            date_from=self.date_from.data,
            date_to=self.date_to.data,
            status=self.status.data or None,
            demand_id=int(self.demand.data) if self.demand.data else None,
            ip_hash=self.ip.data or None,
        )


class InvalidateForm(FlaskForm):
    """Invalidate signatures matching filters: "preview" counts, "confirm" invalidates."""

    ip_hash = StringField(_l("IP address (hash)"), filters=[_blank], validators=[
        Optional(), Regexp(IP_HASH_PATTERN, message=_l(
            "Use the “same IP” link of a signature in the list; this is not a valid IP hash."))])
    email_domain = StringField(_l("Email domain"), filters=[_blank], validators=[
        Optional(), Length(max=254, message=_l("A domain has at most 254 characters."))])
    source = StringField(_l("Source"), filters=[_blank], validators=[
        Optional(), Length(max=SOURCE_MAX, message=_l("A source has at most 64 characters."))])
    created_from = DateTimeLocalField(
        _l("Signed from (UTC)"), validators=[Optional()], format=DATETIME_FORMATS, tz=UTC,
        invalid_value_message=DATETIME_MESSAGE)
    created_before = DateTimeLocalField(
        _l("Signed before (UTC)"), validators=[Optional()], format=DATETIME_FORMATS, tz=UTC,
        invalid_value_message=DATETIME_MESSAGE)
    demand = SelectField(_l("Demand"), validators=[Optional()])
    signature_id = IntegerField(_l("Single signature (number)"), validators=[
        Optional(), NumberRange(min=1, max=2**31 - 1, message=NUMBER_MESSAGE)],
        invalid_value_message=NUMBER_MESSAGE)
    fingerprint = HiddenField()
    preview = SubmitField(_l("Preview"))
    confirm = SubmitField(_l("Invalidate these signatures"))

    def __init__(self, campaign: Campaign, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.demand.choices = demand_choices(campaign, str(_l("All demands")))

    def validate_email_domain(self, field: StringField) -> None:
        """A domain such as example.org, or a whole address (its domain is used)."""
        if field.data and not _DOMAIN.match(field.data.rpartition("@")[2]):
            raise ValidationError(_l("Enter a domain such as example.org (or a whole address)."))

    def validate_created_before(self, field: DateTimeLocalField) -> None:
        """The end of the time window must come after its start."""
        start = self.created_from.data
        if field.data and start and field.data <= start:
            raise ValidationError(_l("The end of the time window must be after its start."))

    def to_filter(self) -> InvalidationFilter:
        """The validated fields as a service filter (times read as UTC)."""
        return InvalidationFilter(
            ip_hash=self.ip_hash.data or None,
            email_domain=self.email_domain.data or None,
            source=self.source.data or None,
            created_from=self.created_from.data,
            created_before=self.created_before.data,
            demand_id=int(self.demand.data) if self.demand.data else None,
            signature_id=self.signature_id.data,
        )


class UndoInvalidationForm(FlaskForm):
    """Undo an invalidation (only the CSRF token)."""
