"""Forms of the members page and of the invitation page."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, EqualTo, InputRequired, Length
from wtforms.widgets import HiddenInput

from petition.models import Role
from petition.organiser.accounts import PASSWORD_MAX, PASSWORD_MIN
from petition.organiser.members import EMAIL_MAX, ROLE_LABELS

ROLE_CHOICES = [SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _role_field() -> SelectField:
    # validate_choice=False: AnyOf gives a clearer message than WTForms' "Not a valid choice".
    return SelectField(
        _l("Role"),
        choices=ROLE_CHOICES,
        default=Role.VIEWER.value,
        validate_choice=False,
        validators=[
            InputRequired(_l("Please choose a role: owner, editor or viewer.")),
            AnyOf([r.value for r in Role],
                  message=_l("Please choose a role: owner, editor or viewer.")),
        ],
    )


def _member_field() -> IntegerField:
    return IntegerField(widget=HiddenInput(), validators=[
        InputRequired(_l("The member to change is missing. Reload the page and try again."))])


class InviteForm(FlaskForm):
    """Invite an organiser by email with a role."""

    email = EmailField(_l("Email address"), filters=[_strip], validators=[
        InputRequired(_l("Please enter the email address to invite.")),
        Length(max=EMAIL_MAX, message=_l("An email address can be at most %(max)d characters.",
                                         max=EMAIL_MAX))],
        render_kw={"autocomplete": "off", "spellcheck": "false"})
    role = _role_field()


class MemberRoleForm(FlaskForm):
    """Change one member's role."""

    member = _member_field()
    role = _role_field()


class MemberRemoveForm(FlaskForm):
    """Remove one member from the campaign."""

    member = _member_field()


class CancelInvitationForm(FlaskForm):
    """Cancel a pending invitation (its link stops working)."""

    email = HiddenField(validators=[
        InputRequired(_l("The invitation to cancel is missing. Reload the page and try again.")),
        Length(max=EMAIL_MAX)])


class AcceptInvitationForm(FlaskForm):
    """Create the invited account: choose a password."""

    password = PasswordField(_l("Choose a password"), validators=[
        InputRequired(_l("Please choose a password.")),
        Length(min=PASSWORD_MIN, max=PASSWORD_MAX,
               message=_l("The password must be %(min)d to %(max)d characters long.",
                          min=PASSWORD_MIN, max=PASSWORD_MAX))],
        render_kw={"autocomplete": "new-password"})
    repeat = PasswordField(_l("The same password again"), validators=[
        InputRequired(_l("Please repeat the password.")),
        EqualTo("password", message=_l("The two passwords do not match."))],
        render_kw={"autocomplete": "new-password"})


class JoinForm(FlaskForm):
    """Join the campaign with the account one is logged in with (CSRF only)."""
