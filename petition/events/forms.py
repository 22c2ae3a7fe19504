"""Organiser form for creating and editing an event."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp, StopValidation

from petition.events.services import CODE_MAX, NAME_MAX, PLACE_MAX
from petition.models import Campaign, DemandStatus


def strip(value: Any) -> Any:
    """Trim surrounding whitespace of text input."""
    return value.strip() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    """Codes are lower-case; accept them typed in any case."""
    return value.lower() if isinstance(value, str) else value


def required_date(_form: FlaskForm, field: Field) -> None:
    """A date must be given (an unreadable one already has its own message)."""
    if field.data is None and not field.errors:
        raise StopValidation(_("Please enter the date of the event."))


class EventForm(FlaskForm):
    """Create or edit an event; call set_demands() before validating."""

    name = StringField(
        _l("Name of the event"),
        filters=[strip],
        validators=[
            DataRequired(_l("Please enter a name for the event.")),
            Length(max=NAME_MAX, message=_l("The name can be at most %(max)d characters long.",
                                            max=NAME_MAX)),
        ],
        render_kw={"maxlength": NAME_MAX},
    )
    date = DateField(
        _l("Date"),
        validators=[required_date],
        invalid_value_message=_l("Please enter the date as year-month-day, e.g. 2026-12-05."),
    )
    place = StringField(
        _l("Place (optional)"),
        filters=[strip],
        validators=[
            Length(max=PLACE_MAX, message=_l("The place can be at most %(max)d characters long.",
                                             max=PLACE_MAX)),
        ],
        render_kw={"maxlength": PLACE_MAX},
    )
    demand_id = SelectField(_l("Links lead to"), choices=[])
    code = StringField(
        _l("Source code (optional)"),
        filters=[strip, lower],
        validators=[
            Optional(),
            Length(max=CODE_MAX, message=_l("The code can be at most %(max)d characters long.",
                                            max=CODE_MAX)),
            Regexp(r"^[a-z0-9-]+$",
                   message=_l("The code can only contain letters a-z, digits and dashes.")),
        ],
        render_kw={"maxlength": CODE_MAX, "autocomplete": "off", "spellcheck": "false"},
    )

    def set_demands(self, campaign: Campaign) -> None:
        """Offer the campaign page and each of the campaign's demands as link targets."""
        choices: list[tuple[str, str]] = [("", _("The campaign page"))]
        for demand in campaign.demands:
            label = demand.title
            if demand.status == DemandStatus.DRAFT:
                label = _("%(title)s (draft: links go to the campaign page until it is published)",
                          title=demand.title)
            choices.append((str(demand.id), label))
        self.demand_id.choices = choices

    def selected_demand_id(self) -> int | None:
        """The chosen demand's id, or None for the campaign page."""
        return int(self.demand_id.data) if self.demand_id.data else None
