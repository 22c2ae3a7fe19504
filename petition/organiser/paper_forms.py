"""Forms for typing in paper signature sheets: one row at a time, or a CSV file.

A row is validated with the same validators as an online signature (name, email, postcode,
country codes); only the messages about missing fields speak to the organiser, not to the
signer. The email address is required on paper too: it is the dedup key (one signature per
person per demand), and a row without one could not be told apart from a second signature
of the same person.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Any

from flask import current_app
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, EmailField, Field, StringField, SubmitField
from wtforms.validators import DataRequired, Optional, ValidationError

from petition.signing.forms import (
    EMAIL_MAX,
    NAME_MAX,
    POSTCODE_MAX,
    MaxLength,
    country_codes,
    strip,
    validate_email_address,
    validate_name,
    validate_postcode,
)

CSV_MAX_BYTES_DEFAULT = 512 * 1024
COUNTRY_MAX = 60
ROW_FIELDS = ("name", "email", "country", "postcode", "contact_consent", "public_consent")


def _fold(value: str) -> str:
    """Case- and accent-insensitive form of a country name."""
    decomposed = unicodedata.normalize("NFKD", value.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# Names and codes people write that ISO 3166 spells otherwise (or does not use).
_ALIASES = {
    "uk": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "usa": "US", "america": "US", "turkey": "TR",
    "russia": "RU", "syria": "SY", "iran": "IR", "vietnam": "VN", "south korea": "KR",
    "north korea": "KP", "czech republic": "CZ", "holland": "NL", "ivory coast": "CI",
    "burma": "MM", "swaziland": "SZ", "macedonia": "MK", "cape verde": "CV", "laos": "LA",
}


@cache
def _country_lookup() -> dict[str, str]:
    """Folded English country names (common, official and short) to alpha-2 codes."""
    import pycountry

    names: dict[str, str] = dict(_ALIASES)
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(country, attr, None)
            if value:
                names.setdefault(_fold(value), country.alpha_2)
        names.setdefault(_fold(country.alpha_3), country.alpha_2)
    return names


def resolve_country(value: Any) -> Any:
    """A country as typed from a sheet (DE, de, DEU, Germany) as its alpha-2 code.

    Anything unknown is returned unchanged (trimmed), for the validator to name.
    """
    if not isinstance(value, str):
        return value
    value = value.strip()
    if value.upper() in country_codes():
        return value.upper()
    return _country_lookup().get(_fold(value), value)


def validate_paper_country(_form: FlaskForm, field: Field) -> None:
    """The country must resolve to an ISO 3166-1 code."""
    if field.data not in country_codes():
        raise ValidationError(
            _("“%(value)s” is not a country we know. Use a two-letter code such as DE, or the "
              "English name.", value=str(field.data)[:COUNTRY_MAX]))


class PaperRowForm(FlaskForm):
    """One row of a paper sheet, in the sheet's column order."""

    name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[
            DataRequired(_l("The name is missing.")),
            MaxLength(max=NAME_MAX, message=_l("A name can be at most %(max)d characters long.",
                                               max=NAME_MAX)),
            validate_name,
        ],
        render_kw={"maxlength": NAME_MAX, "autocomplete": "off"},
    )
    email = EmailField(
        _l("Email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("The email address is missing. Paper signatures need one too, so "
                            "that nobody is counted twice.")),
            MaxLength(max=EMAIL_MAX, message=_l("An email address can be at most %(max)d "
                                                "characters long.", max=EMAIL_MAX)),
            validate_email_address,
        ],
        render_kw={"maxlength": EMAIL_MAX, "autocomplete": "off", "inputmode": "email",
                   "spellcheck": "false"},
    )
    country = StringField(
        _l("Country (code or name)"),
        filters=[resolve_country],
        validators=[
            DataRequired(_l("The country is missing.")),
            MaxLength(max=COUNTRY_MAX, message=_l("A country can be at most %(max)d characters "
                                                  "long.", max=COUNTRY_MAX)),
            validate_paper_country,
        ],
        render_kw={"maxlength": COUNTRY_MAX, "autocomplete": "off", "list": "country-list",
                   "spellcheck": "false"},
    )
    postcode = StringField(
        _l("Postcode (optional)"),
        filters=[strip],
        validators=[
            Optional(),
            MaxLength(max=POSTCODE_MAX, message=_l("A postcode can be at most %(max)d "
                                                   "characters long.", max=POSTCODE_MAX)),
            validate_postcode,
        ],
        render_kw={"maxlength": POSTCODE_MAX, "autocomplete": "off"},
    )
    contact_consent = BooleanField(_l("Keep me updated"))
    public_consent = BooleanField(_l("List my name publicly"))


class PaperEntryForm(PaperRowForm):
    """The keyboard form: one sheet row per submit."""

    add = SubmitField(_l("Add row"))


def validate_row(values: dict[str, str]) -> tuple[PaperRowForm | None, list[str]]:
    """Validate one CSV row like a typed one: (the valid form, []) or (None, reasons)."""
    data = MultiDict({k: v for k, v in values.items() if k in ROW_FIELDS and v})
    form = PaperRowForm(formdata=data, meta={"csrf": False})
    if form.validate():
        return form, []
    reasons = [
        f"{form[name].label.text}: {message}"
        for name in ("name", "email", "country", "postcode")
        for message in form[name].errors
    ]
    return None, reasons


def csv_max_bytes() -> int:
    """The largest CSV file accepted, in bytes (PAPER_CSV_MAX_BYTES, default 512 KB)."""
    return int(current_app.config.get("PAPER_CSV_MAX_BYTES", CSV_MAX_BYTES_DEFAULT))


class PaperImportForm(FlaskForm):
    """Upload a CSV file of sheet rows."""

    file = FileField(
        _l("CSV file"),
        render_kw={"accept": ".csv,text/csv"},
    )
    upload = SubmitField(_l("Import rows"))

    content: bytes = b""

    def validate_file(self, field: Field) -> None:
        """A file was chosen, it is not empty and not over the size limit."""
        upload = field.data
        if upload is None or not getattr(upload, "filename", ""):
            raise ValidationError(_("Please choose a CSV file."))
        limit = csv_max_bytes()
        data = upload.stream.read(limit + 1)
        if len(data) > limit:
            raise ValidationError(
                _("The file is larger than %(size)s KB. Please split it into smaller files.",
                  size=format_number(limit // 1024)))
        if not data.strip():
            raise ValidationError(_("The file is empty."))
        self.content = data
