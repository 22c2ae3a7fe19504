"""Forms for writing campaigns and demands, ordering demands and importing them."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    Field,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    AnyOf,
    DataRequired,
    InputRequired,
    Optional,
    StopValidation,
    ValidationError,
)

from petition.models import CampaignStatus, DemandStatus
from petition.organiser.importer import TITLE_MAX as IMPORT_TITLE_MAX
from petition.organiser.services import (
    BODY_MAX,
    CAMPAIGN_SUMMARY_MAX,
    CAMPAIGN_TITLE_MAX,
    DEMAND_TITLE_MAX,
    GOAL_MAX,
    ORGANISATION_MAX,
    SLUG_MAX,
    SLUG_PATTERN,
    TARGET_MAX,
)
from petition.signing.forms import MaxLength

MAX_PROPOSALS = 50
UPLOAD_TYPES = ("txt", "html", "htm")
# Invisible control characters (never typed; a NUL would also be refused by PostgreSQL).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: Any) -> Any:
    """Trim, use \\n line ends and drop control characters from text input."""
    if not isinstance(value, str):
        return value
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


def has_text(_form: Form, field: Field) -> None:
    """At least one letter or digit (not only spaces, punctuation or invisible marks)."""
    if field.data and not any(ch.isalnum() for ch in field.data):
        raise ValidationError(_("Please enter a title with at least one letter or digit."))


def _hint(field_id: str) -> dict[str, str]:
    """Point the input at the hint the page shows for it (id "<field id>-hint")."""
    return {"aria-describedby": f"{field_id}-hint"}


def _length(what: str, limit: int) -> MaxLength:
    messages = {
        "title": _l("The title can be at most %(max)d characters long.", max=limit),
        "summary": _l("The summary can be at most %(max)d characters long.", max=limit),
        "text": _l("The text can be at most %(max)d characters long.", max=limit),
        "organisation": _l("The organisation can be at most %(max)d characters long.", max=limit),
        "target": _l("The target can be at most %(max)d characters long.", max=limit),
        "slug": _l("The web address can be at most %(max)d characters long.", max=limit),
    }
    return MaxLength(max=limit, message=messages[what])


class SlugRules:
    """Slug syntax: lower-case letters, digits and single dashes; empty allowed if optional.

    A slug absent from the form (shown read-only once published) is not checked.
    """

    def __init__(self, *, required: bool) -> None:
        self.required = required

    def __call__(self, _form: Form, field: Field) -> None:
        if not field.raw_data:
            raise StopValidation()
        if not field.data:
            if self.required:
                raise StopValidation(_("Please enter a web address (slug)."))
            raise StopValidation()
        if len(field.data) > SLUG_MAX:
            raise StopValidation(
                _("The web address can be at most %(max)d characters long.", max=SLUG_MAX))
        if not SLUG_PATTERN.fullmatch(field.data):
            raise StopValidation(_(
                "Use only lower-case letters, digits and single dashes between them, e.g. "
                "free-them-all."))


def _slug_field(*, required: bool) -> StringField:
    return StringField(
        _l("Web address (slug)"),
        filters=[clean_text],
        validators=[SlugRules(required=required)],
        render_kw={"maxlength": SLUG_MAX, "autocapitalize": "none", "spellcheck": "false",
                   "autocomplete": "off", **_hint("slug")},
    )


class WholeNumberField(IntegerField):
    """An integer input whose parse error reads as advice."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_("Please enter a whole number, e.g. 1000.")) from exc


class DayField(DateField):
    """A date input (YYYY-MM-DD) whose parse error reads as advice."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_("Please enter a date as YYYY-MM-DD, e.g. 2026-12-10.")) from exc


def stop_if_unreadable(_form: Form, field: Field) -> None:
    """Keep only the parse error when the input could not be read at all."""
    if field.process_errors:
        raise StopValidation()


def goal_in_range(_form: Form, field: Field) -> None:
    """The goal: a whole number from 1 to GOAL_MAX."""
    if field.data is None or not 1 <= field.data <= GOAL_MAX:
        raise ValidationError(_("The goal must be a whole number from 1 to %(max)s.",
                                max=format_number(GOAL_MAX)))


def plausible_year(_form: Form, field: Field) -> None:
    """Dates between the years 2000 and 2100 (catches typos such as 0226)."""
    if field.data is not None and not 2000 <= field.data.year <= 2100:
        raise ValidationError(_("Please enter a date between the years 2000 and 2100."))


def _status_field(statuses: dict[str, Any]) -> SelectField:
    return SelectField(
        _l("Status"),
        choices=[SelectChoice(value, label) for value, label in statuses.items()],
        validate_choice=False,
        validators=[
            InputRequired(_l("Please choose a status.")),
            AnyOf(list(statuses), message=_l("Please choose one of the statuses listed.")),
        ],
    )


CAMPAIGN_STATUSES = {
    CampaignStatus.DRAFT.value: _l("Draft: not public yet"),
    CampaignStatus.OPEN.value: _l("Open: public and collecting signatures"),
    CampaignStatus.CLOSED.value: _l("Closed: public, no longer collecting signatures"),
    CampaignStatus.ARCHIVED.value: _l("Archived: kept for the record"),
}
DEMAND_STATUSES = {
    DemandStatus.DRAFT.value: _l("Draft: not public yet"),
    DemandStatus.OPEN.value: _l("Open: collecting signatures"),
    DemandStatus.CLOSED.value: _l("Closed: no longer collecting signatures"),
    DemandStatus.WON.value: _l("Won: the demand was met"),
}


class _CampaignFields(FlaskForm):
    title = StringField(
        _l("Title"), filters=[clean_text],
        validators=[DataRequired(_l("Please enter a title.")),
                    _length("title", CAMPAIGN_TITLE_MAX), has_text],
        render_kw={"maxlength": CAMPAIGN_TITLE_MAX})
    summary = TextAreaField(
        _l("Summary"), filters=[clean_text],
        validators=[_length("summary", CAMPAIGN_SUMMARY_MAX)],
        render_kw={"maxlength": CAMPAIGN_SUMMARY_MAX, "rows": 3, **_hint("summary")})
    body = TextAreaField(
        _l("Text (Markdown)"), filters=[clean_text],
        validators=[_length("text", BODY_MAX)],
        render_kw={"maxlength": BODY_MAX, "rows": 14, **_hint("body")})
    organisation = StringField(
        _l("Organisation"), filters=[clean_text],
        validators=[_length("organisation", ORGANISATION_MAX)],
        render_kw={"maxlength": ORGANISATION_MAX, "autocomplete": "organization"})
    status = _status_field(CAMPAIGN_STATUSES)
    save = SubmitField(_l("Save"))
    preview = SubmitField(_l("Preview"))


class NewCampaignForm(_CampaignFields):
    """Create a campaign (the slug is made from the title if left empty)."""

    slug = _slug_field(required=False)


class EditCampaignForm(_CampaignFields):
    """Edit a campaign (the slug is only posted while the campaign is a draft)."""

    slug = _slug_field(required=True)


class _DemandFields(FlaskForm):
    title = StringField(
        _l("Title"), filters=[clean_text],
        validators=[DataRequired(_l("Please enter a title.")),
                    _length("title", DEMAND_TITLE_MAX), has_text],
        render_kw={"maxlength": DEMAND_TITLE_MAX})
    body = TextAreaField(
        _l("Text (Markdown)"), filters=[clean_text],
        validators=[_length("text", BODY_MAX)],
        render_kw={"maxlength": BODY_MAX, "rows": 10, **_hint("body")})
    target = StringField(
        _l("Addressed to (target)"), filters=[clean_text],
        validators=[_length("target", TARGET_MAX)],
        render_kw={"maxlength": TARGET_MAX, **_hint("target")})
    goal = WholeNumberField(
        _l("Goal (number of signatures)"),
        validators=[InputRequired(_l("Please enter a goal.")), stop_if_unreadable, goal_in_range],
        render_kw={"min": 1, "max": GOAL_MAX, "step": 1, "inputmode": "numeric"})
    opens_on = DayField(
        _l("Opens on (optional)"),
        validators=[Optional(), stop_if_unreadable, plausible_year],
        render_kw=_hint("opens_on"))
    closes_on = DayField(
        _l("Closes on (optional)"),
        validators=[Optional(), stop_if_unreadable, plausible_year],
        render_kw=_hint("closes_on"))
    status = _status_field(DEMAND_STATUSES)
    save = SubmitField(_l("Save"))
    preview = SubmitField(_l("Preview"))


class NewDemandForm(_DemandFields):
    """Add a demand to a campaign (the slug is made from the title if left empty)."""

    slug = _slug_field(required=False)


class EditDemandForm(_DemandFields):
    """Edit a demand (the slug is only posted while nothing of it is public)."""

    slug = _slug_field(required=True)


class MoveDemandForm(FlaskForm):
    """Move a demand one place up or down in its campaign's list."""

    direction = StringField(validators=[
        InputRequired(_l("Choose up or down.")),
        AnyOf(["up", "down"], message=_l("Choose up or down."))])


class ImportTextForm(FlaskForm):
    """Step 1 of the import: a pasted text or an uploaded .txt/.html file."""

    text = TextAreaField(
        _l("Campaign text"), filters=[clean_text], render_kw={"rows": 14})
    file = FileField(
        _l("Or upload a file (.txt or .html)"),
        render_kw={"accept": ".txt,.html,.htm,text/plain,text/html", **_hint("file")})
    find = SubmitField(_l("Find demands"))

    # Filled by validation: the text to search and whether it is HTML.
    source_text: str = ""
    source_is_html: bool = False

    def _limit(self) -> int:
        return int(current_app.config["IMPORT_MAX_BYTES"])

    def _limit_message(self, what: str) -> str:
        size = format_number(self._limit() // 1024)
        if what == "file":
            return _("The file is larger than %(size)s KB. Please upload a shorter one.", size=size)
        return _("The text is longer than %(size)s KB. Please paste a shorter one.", size=size)

    def validate_text(self, field: Field) -> None:
        """The pasted text fits the import limit."""
        if field.data and len(field.data.encode("utf-8")) > self._limit():
            raise ValidationError(self._limit_message("text"))

    def validate_file(self, field: Field) -> None:
        """A .txt or .html file, UTF-8, not empty and not over the import limit."""
        upload = field.data
        if upload is None:
            return
        name = (upload.filename or "").lower()
        if not name.endswith(tuple("." + ext for ext in UPLOAD_TYPES)):
            raise ValidationError(_("Please choose a .txt or .html file."))
        data = upload.stream.read(self._limit() + 1)
        if len(data) > self._limit():
            raise ValidationError(self._limit_message("file"))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(_(
                "The file is not UTF-8 text. Please save it as UTF-8 (or copy and paste its "
                "text) and try again.")) from exc
        if "\x00" in text:
            raise ValidationError(_("This file is not a text file. Please choose a .txt or "
                                    ".html file."))
        if not text.strip():
            raise ValidationError(_("The file is empty."))
        self.source_text = text
        self.source_is_html = not name.endswith(".txt")

    def validate(self, extra_validators: Any = None) -> bool:
        """Exactly one of the pasted text and the file."""
        if not super().validate(extra_validators):
            return False
        if self.text.data and self.file.data is not None:
            self.form_errors.append(
                _("Please either paste a text or upload a file, not both."))
            return False
        if not self.text.data and self.file.data is None:
            self.form_errors.append(_("Please paste a campaign text or upload a file."))
            return False
        if self.text.data:
            self.source_text = self.text.data
        return True


class ImportItemForm(Form):
    """One proposed demand: ticked, its title, and its full text when the title was cut."""

    selected = BooleanField(_l("Create this demand"))
    title = StringField(_l("Title"), filters=[clean_text],
                        render_kw={"maxlength": IMPORT_TITLE_MAX})
    body = HiddenField(filters=[clean_text, lambda v: v[:BODY_MAX] if isinstance(v, str) else v])


class ImportChooseForm(FlaskForm):
    """Step 2 of the import: the proposed demands to create, in order."""

    items = FieldList(FormField(ImportItemForm), max_entries=MAX_PROPOSALS)
    create = SubmitField(_l("Create the ticked demands"))

    def chosen(self) -> list[tuple[str, str]]:
        """The (title, body) of the ticked items, in order."""
        return [(entry.form.title.data, entry.form.body.data or "")
                for entry in self.items if entry.form.selected.data]

    def validate(self, extra_validators: Any = None) -> bool:
        """Each ticked item has a title of at most 200 characters; at least one is ticked."""
        valid = super().validate(extra_validators)
        ticked = [entry.form for entry in self.items if entry.form.selected.data]
        if not ticked:
            self.form_errors.append(_("Please tick at least one demand to create."))
            return False
        for item in ticked:
            if not item.title.data:
                item.title.errors = [_("Please enter a title, or untick this demand.")]
                valid = False
            elif len(item.title.data) > DEMAND_TITLE_MAX:
                item.title.errors = [_("The title can be at most %(max)d characters long.",
                                       max=DEMAND_TITLE_MAX)]
                valid = False
        return valid
