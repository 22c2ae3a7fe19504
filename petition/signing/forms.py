"""Sign forms: one petition, or several demands of a campaign at once."""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from typing import Any
from urllib.parse import parse_qsl

import pycountry
from babel import support
from email_validator import EmailNotValidError, validate_email
from flask import current_app, request
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.i18n import messages_path
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget, Select, html_params

from petition.http import once_per_request

NAME_MAX = 120
EMAIL_MAX = 254
POSTCODE_MAX = 16
SOURCE_MAX = 64

_URL = re.compile(
    r"(://|www\.|\b[\w-]+\.(com|net|org|info|biz|io|ru|cn|xyz|top|online|site|ly|me|co)\b)",
    re.IGNORECASE,
)
# Runs of letters/digits separated by spaces or dashes. Each separator run is required, so
# the match is linear (the former `[ -]?` made it backtrack exponentially on long input).
_POSTCODE = re.compile(r"^[^\W_]+(?:[ -]+[^\W_]+)*$")
_SOURCE_CHARS = re.compile(r"[^A-Za-z0-9._:-]")
# Bidirectional overrides and isolates can make a name display as something else.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Control characters, and line/paragraph separators that break a name over lines.
_CONTROL_CATEGORIES = {"Cc", "Zl", "Zp"}
_FORM_URLENCODED = "application/x-www-form-urlencoded"
_SUBMIT_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


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


def decode_form_body(body: bytes) -> MultiDict[str, str]:
    """Parse a urlencoded body, turning bytes that are not UTF-8 into U+FFFD.

    Werkzeug keeps such bytes as literal "%FF" text (which would pass validation and store a
    garbled name) and drops the whole form if the raw body is not UTF-8; replacing them lets
    the validators name the unreadable field while the other fields keep what was typed.
    """
    pairs = parse_qsl(
        body.decode("utf-8", "replace"), keep_blank_values=True, encoding="utf-8",
        errors="replace",
    )
    return ImmutableMultiDict(pairs)


def submitted_form() -> MultiDict[str, str] | None:
    """The request's HTML form body as the sign forms read it (see decode_form_body), from
    the body kept by the request and decoded once per request: what reads it before the
    form (a rate limit's key) leaves it for the form. None for JSON or anything else
    (treated as an empty form)."""
    return once_per_request("submitted_form", _decode_submitted_form)


def _decode_submitted_form() -> MultiDict[str, str] | None:
    if request.mimetype == _FORM_URLENCODED:
        return decode_form_body(request.get_data(cache=True))
    if request.mimetype == "multipart/form-data":
        return request.form  # Werkzeug decodes multipart text with replacement already
    return None


class MaxLength(Length):
    """Length that stops the validation chain, so an overlong value gets one message."""

    def __call__(self, form: FlaskForm, field: Field) -> None:
        try:
            super().__call__(form, field)
        except ValidationError as exc:
            raise StopValidation(str(exc)) from exc


def note_rate_limited(form: FlaskForm, wait: int | None = None, *, kiosk: bool = False) -> None:
    """Say on a sign form (typed details kept) that too many signatures came from this
    network (or kiosk): the answer to a rate-limited POST (429) on every sign form.

    wait: None for a limit per minute; else the seconds until a longer limit (e.g. 600 an
    hour) lets the network sign again, which the message gives in minutes or hours."""
    if wait is None:
        if kiosk:
            first = _("Too many signatures were sent from this kiosk in the last minute.")
        else:
            first = _("Too many signatures were sent from your network in the last minute (at "
                      "events many people share one connection).")
        second = _("Your details are kept below: please wait a minute and sign again.")
    else:
        if kiosk:
            first = _("Too many signatures were sent from this kiosk recently.")
        else:
            first = _("Too many signatures were sent from your network recently (at events many "
                      "people share one connection).")
        minutes = -(-wait // 60)
        if minutes <= 90:
            second = ngettext("Your details are kept below: please sign again in %(num)d minute.",
                              "Your details are kept below: please sign again in %(num)d minutes.",
                              minutes)
        else:
            hours = -(-minutes // 60)
            second = ngettext("Your details are kept below: please sign again in %(num)d hour.",
                              "Your details are kept below: please sign again in %(num)d hours.",
                              hours)
    form.form_errors.append(f"{first} {second}")


def note_not_saved(form: FlaskForm) -> None:
    """Say on a sign form (typed details kept) that the database could not take the
    signature just now (a restart, a failover) and nothing was stored: the answer (503) to a
    sign POST that found it unavailable. Sending the form again is safe: a signature that did
    reach the database is found again by its email address."""
    form.form_errors.append(_(
        "Your signature could not be saved just now: the site cannot reach its database. "
        "Your details are kept below: please send the form again in a minute."))


def validate_name(_form: FlaskForm, field: Field) -> None:
    """Names: printable text, no markup, no web addresses."""
    value: str = field.data or ""
    if _unreadable(value):
        raise ValidationError(_("Your name contains characters that could not be read; please retype it."))
    if any(unicodedata.category(ch) in _CONTROL_CATEGORIES or ch in _BIDI_CONTROLS for ch in value):
        raise ValidationError(_("Your name contains invisible control characters; please retype it."))
    if "<" in value or ">" in value:
        raise ValidationError(_("Your name cannot contain the characters < or >."))
    if _URL.search(value):
        raise ValidationError(_("Please enter just your name, without web addresses."))
    if not any(ch.isalnum() for ch in value):
        # e.g. only zero-width spaces or punctuation: nothing that reads as a name
        raise ValidationError(_("Please enter your name."))


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
    """Postcodes: letters and digits, separated by spaces or dashes."""
    if field.data and _unreadable(field.data):
        raise ValidationError(_("Your postcode contains characters that could not be read; please retype it."))
    if field.data and not _POSTCODE.match(field.data):
        raise ValidationError(
            _("A postcode can only contain letters, digits, spaces and dashes.")
        )


@cache
def _country_options_html(locale: str) -> str:
    """The <option> list of all countries for one locale (rendered once, reused)."""
    options = [("", str(_l("Choose your country"))), *country_choices()]
    return "".join(
        f'<option value="{escape(code)}">{escape(name)}</option>' for code, name in options
    )


class CountrySelect(Select):
    """A country <select> from a cached option list.

    Rendering ~250 options through WTForms took most of a petition page's render time.
    """

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        if "required" not in kwargs and "required" in getattr(field, "flags", []):
            kwargs["required"] = True
        options = _country_options_html(str(get_locale() or ""))
        if field.data:
            value = f'value="{escape(field.data)}"'
            options = options.replace(value, f"selected {value}", 1)
        return Markup(f"<select {html_params(name=field.name, **kwargs)}>{options}</select>")


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DemandsField(MultiCheckboxField):
    """Ticked demand ids: each id once; a value that is not an id gets a clear message."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        ids: list[int] = []
        junk = False
        for value in valuelist:
            if value == "":
                continue
            try:
                ids.append(int(value))
            except (TypeError, ValueError):
                junk = True
        self.data = list(dict.fromkeys(ids))
        if junk:
            raise ValueError(_("One of the ticked demands does not exist."))


@lru_cache(maxsize=64)
def _wtforms_translations(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class SignatureForm(FlaskForm):
    """The signer's details, shared by both sign forms."""

    class Meta:
        csrf_field_name = "csrf_token"

        def get_translations(self, form: FlaskForm) -> Any:
            """WTForms' own messages in the request's language, loaded once per language.

            (Flask-WTF reads the catalogue from disk for every request that builds a form.)
            """
            return _wtforms_translations(str(get_locale() or "en"))

        def wrap_formdata(self, form: FlaskForm, formdata: Any) -> Any:
            """Read only HTML form bodies: text fields, never uploads or JSON."""
            if hasattr(formdata, "getlist") or not (request and request.method in _SUBMIT_METHODS):
                return super().wrap_formdata(form, formdata)  # type: ignore[misc]
            return submitted_form()

    name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Please enter your name.")),
            MaxLength(max=NAME_MAX, message=_l("Your name can be at most %(max)d characters long.", max=NAME_MAX)),
            validate_name,
        ],
        render_kw={"maxlength": NAME_MAX, "autocomplete": "name"},
    )
    email = EmailField(
        _l("Email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Please enter your email address.")),
            MaxLength(max=EMAIL_MAX, message=_l("An email address can be at most %(max)d characters long.", max=EMAIL_MAX)),
            validate_email_address,
        ],
        render_kw={"maxlength": EMAIL_MAX, "autocomplete": "email", "inputmode": "email"},
    )
    country = SelectField(
        _l("Country"),
        choices=lambda: [("", _l("Choose your country"))] + country_choices(),
        widget=CountrySelect(),
        validate_choice=False,
        validators=[InputRequired(_l("Please choose your country.")), validate_country],
        render_kw={"autocomplete": "country"},
    )
    postcode = StringField(
        _l("Postcode (optional)"),
        filters=[strip],
        validators=[
            Optional(),
            MaxLength(max=POSTCODE_MAX, message=_l("A postcode can be at most %(max)d characters long.", max=POSTCODE_MAX)),
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

    demands = DemandsField(
        _l("Demands to sign"),
        coerce=int,
        validate_choice=False,
        validators=[InputRequired(_l("Please tick at least one demand to sign."))],
    )
