"""Organiser account forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import EqualTo, InputRequired, Length

from petition.organiser.accounts import PASSWORD_MAX, PASSWORD_MIN


class LoginForm(FlaskForm):
    """Organiser login."""

    email = EmailField(_l("Email address"), validators=[
        InputRequired(_l("Please enter your email address.")), Length(max=254)],
        render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[
        InputRequired(_l("Please enter your password.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"})


class PasswordChangeForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField(_l("Current password"), validators=[
        InputRequired(_l("Please enter your current password."))],
        render_kw={"autocomplete": "current-password"})
    new = PasswordField(_l("New password"), validators=[
        InputRequired(_l("Please choose a new password.")),
        Length(min=PASSWORD_MIN, max=PASSWORD_MAX,
               message=_l("The password must be %(min)d to %(max)d characters long.",
                          min=PASSWORD_MIN, max=PASSWORD_MAX))],
        render_kw={"autocomplete": "new-password"})
    repeat = PasswordField(_l("New password again"), validators=[
        InputRequired(_l("Please repeat the new password.")),
        EqualTo("new", message=_l("The two new passwords do not match."))],
        render_kw={"autocomplete": "new-password"})
