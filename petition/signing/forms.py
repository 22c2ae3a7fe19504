"""Sign forms: one petition, or several demands of a campaign at once."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

import pycountry
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

NAME_MAX = 120
EMAIL_MAX = 254
POSTCODE_MAX = 16
SOURCE_MAX = 64

_URL = re.compile(
    r"(://|www\.|\b[\w-]+\.(com|net|org|info|biz|io|ru|cn|xyz|top|online|site|ly|me|co)\b)",
    re.IGNORECASE,
)
_POSTCODE = re.compile(r"^[^\W_]+(?:[ -]?[^\W_]+)*$")
_SOURCE_CHARS = re.compile(r"[^A-Za-z0-9._:-]")
# Bidirectional overrides and isolates can make a name display as something else.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def strip(value: Any) -> Any:
    """Trim surrounding whitespace of text input."""
    return value.strip() if isinstance(value, str) else value


def clean_source(value: Any) -> str | None:
    """Reduce a ?src= code to safe characters and length; never rejects a signature."""
    if not isinstance(value, str):
        return None
    value = _SOURCE_CHARS.sub("", value.strip())[:SOURCE_MAX]
    return value or None


@cache
def country_choices() -> list[tuple[str, str]]:
    """Every ISO 3166-1 country as (alpha-2 code, name), sorted by name."""
    countries = sorted(
        pycountry.countries, key=lambda c: unicodedata.normalize("NFKD", _country_name(c))
    )
    return [(c.alpha_2, _country_name(c)) for c in countries]


def _country_name(country: Any) -> str:
    return getattr(country, "common_name", None) or country.name


@cache
def country_codes() -> frozenset[str]:
    """The set of valid alpha-2 codes."""
    return frozenset(code for code, _name in country_choices())


def _unreadable(value: str) -> bool:
    return "\ufffd" in value


def validate_name(_form: FlaskForm, field: Field) -> None:
    """Names: printable text, no markup, no web addresses."""
    value: str = field.data or ""
    if _unreadable(value):
        raise ValidationError(_("Your name contains characters that could not be read; please retype it."))
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in value):
        raise ValidationError(_("Your name contains invisible control characters; please retype it."))
    if "<" in value or ">" in value:
        raise ValidationError(_("Your name cannot contain the characters < or >."))
    if _URL.search(value):
        raise ValidationError(_("Please enter just your name, without web addresses."))


def validate_email_address(_form: FlaskForm, field: Field) -> None:
    """Syntax check with email-validator; replaces the data with the normalised address."""
    value: str = field.data or ""
    if _unreadable(value):
        raise ValidationError(_("Your email address contains characters that could not be read."))
    try:
        result = validate_email(
            value,
            check_deliverability=bool(current_app.config["EMAIL_CHECK_DELIVERABILITY"]),
        )
    except EmailNotValidError as exc:
        raise ValidationError(
            _("This email address is not valid: %(reason)s", reason=str(exc))
        ) from exc
    field.data = result.normalized


def validate_country(_form: FlaskForm, field: Field) -> None:
    """The country must be one of the ISO 3166-1 codes offered."""
    if field.data not in country_codes():
        raise ValidationError(_("Please choose your country from the list."))


def validate_postcode(_form: FlaskForm, field: Field) -> None:
    """Postcodes: letters, digits, single spaces and dashes."""
    if field.data and not _POSTCODE.match(field.data):
        raise ValidationError(
            _("A postcode can only contain letters, digits, spaces and dashes.")
        )


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SignatureForm(FlaskForm):
    """The signer's details, shared by both sign forms."""

    class Meta:
        csrf_field_name = "csrf_token"

    name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[
            InputRequired(_l("Please enter your name.")),
            Length(min=1, max=NAME_MAX, message=_l("Your name can be at most %(max)d characters long.", max=NAME_MAX)),
            validate_name,
        ],
        render_kw={"maxlength": NAME_MAX, "autocomplete": "name"},
    )
    email = EmailField(
        _l("Email address"),
        filters=[strip],
        validators=[
            InputRequired(_l("Please enter your email address.")),
            Length(max=EMAIL_MAX, message=_l("An email address can be at most %(max)d characters long.", max=EMAIL_MAX)),
            validate_email_address,
        ],
        render_kw={"maxlength": EMAIL_MAX, "autocomplete": "email", "inputmode": "email"},
    )
    country = SelectField(
        _l("Country"),
        choices=lambda: [("", _l("Choose your country"))] + country_choices(),
        validate_choice=False,
        validators=[InputRequired(_l("Please choose your country.")), validate_country],
        render_kw={"autocomplete": "country"},
    )
    postcode = StringField(
        _l("Postcode (optional)"),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=POSTCODE_MAX, message=_l("A postcode can be at most %(max)d characters long.", max=POSTCODE_MAX)),
            validate_postcode,
        ],
        render_kw={"maxlength": POSTCODE_MAX, "autocomplete": "postal-code"},
    )
    contact_consent = BooleanField(_l("Keep me updated about this campaign by email"))
    public_consent = BooleanField(_l("Show my first name and country publicly as a signer"))
    src = HiddenField(filters=[clean_source])


class PetitionSignForm(SignatureForm):
    """Sign one demand."""


class CampaignSignForm(SignatureForm):
    """Sign several demands of a campaign at once."""

    demands = MultiCheckboxField(
        _l("Demands to sign"),
        coerce=int,
        validate_choice=False,
        validators=[InputRequired(_l("Please tick at least one demand to sign."))],
    )
