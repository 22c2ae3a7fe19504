"""The export filter form (a GET form: no CSRF token, nothing is changed by submitting it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import AnyOf, Length, Optional, ValidationError

from petition.models import Demand, SignatureStatus
from petition.organiser.exports import ALL_STATUSES, ExportFilters
from petition.signing.forms import country_choices

SOURCE_MAX = 64


class IsoDateField(DateField):
    """A date input (YYYY-MM-DD) with a clear message for anything else."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_l("Enter a date as YYYY-MM-DD, for example 2026-05-31.")) from exc


def _status_choices() -> list[tuple[str, Any]]:
    return [
        (SignatureStatus.CONFIRMED.value, _l("Confirmed (counted)")),
        (SignatureStatus.PENDING.value, _l("Pending confirmation")),
        (SignatureStatus.INVALIDATED.value, _l("Invalidated")),
        (SignatureStatus.WITHDRAWN.value, _l("Withdrawn (details erased)")),
        (ALL_STATUSES, _l("Any status")),
    ]


class ExportFilterForm(FlaskForm):
    """Filters of a CSV export; build it with for_campaign() so the demand list is known."""

    class Meta:
        csrf = False

    demand = SelectField(_l("Demand"), validate_choice=False)
    status = SelectField(
        _l("Status"), default=SignatureStatus.CONFIRMED.value, validate_choice=False,
        validators=[AnyOf([v for v, _label in _status_choices()],
                          message=_l("Choose one of the listed statuses."))])
    date_from = IsoDateField(_l("Signed on or after"), validators=[Optional()])
    date_to = IsoDateField(_l("Signed on or before"), validators=[Optional()])
    source = StringField(_l("Source code"), filters=[lambda v: v.strip() if v else v],
                         validators=[Optional(), Length(max=SOURCE_MAX)])
    country = SelectField(_l("Country"), validate_choice=False)
    excel = BooleanField(_l("Excel (UTF-8 with BOM)"))

    @classmethod
    def for_campaign(cls, demands: Sequence[Demand], formdata: Any = None) -> ExportFilterForm:
        """The form with the campaign's demands and the country list as choices."""
        form = cls(formdata=formdata)
        form.demand.choices = [("", _l("Whole campaign (all demands)"))] + [
            (d.slug, d.title) for d in demands
        ]
        form.status.choices = _status_choices()
        form.country.choices = [("", _l("Any country"))] + country_choices()
        return form

    def validate_demand(self, field: SelectField) -> None:
        if field.data and field.data not in {value for value, _label in field.choices or []}:
            raise ValidationError(_l("There is no such demand in this campaign."))

    def validate_country(self, field: SelectField) -> None:
        if field.data and field.data not in {value for value, _label in field.choices or []}:
            raise ValidationError(_l("Choose a country from the list."))

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))

    def filters(self, demands: Sequence[Demand]) -> ExportFilters:
        """The validated filters as a service value."""
        by_slug = {d.slug: d.id for d in demands}
        status = self.status.data
        return ExportFilters(
            demand_id=by_slug.get(self.demand.data) if self.demand.data else None,
            status=None if status == ALL_STATUSES else status,
            signed_from=self.date_from.data,
            signed_to=self.date_to.data,
            source=self.source.data or None,
            country=self.country.data or None,
            excel=bool(self.excel.data),
        )
