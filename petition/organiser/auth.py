"""Organiser login, logout and password change (Flask-Login)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from petition.db import get_session
from petition.extensions import limiter
from petition.models import Organiser
from petition.organiser import accounts, bp
from petition.organiser.forms import LoginForm, PasswordChangeForm


class _LoginManager(LoginManager):
    """Flask-Login with "strong" session protection for organisers only.

    Flask-Login checks every non-empty session, so a supporter's session (which holds only
    the CSRF token) "failed" it on each page: the session was rewritten and a remember-me
    cookie the supporter never had was cleared, two Set-Cookie headers per page for nothing.
    A session with no logged-in organiser has nothing to protect.
    """

    def _session_protection_failed(self) -> bool:
        if "_user_id" not in cookie_session:
            return False
        return bool(super()._session_protection_failed())


login_manager = _LoginManager()
login_manager.login_view = "organiser.login"
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_user(user_id: str) -> Organiser | None:
    return accounts.load_for_session(get_session(), user_id)


@login_manager.unauthorized_handler
def _unauthorized() -> Response:
    flash(_("Please log in to continue."))
    return redirect(url_for("organiser.login", next=request.full_path.rstrip("?")))


def init_app(app: Flask) -> None:
    """Set up Flask-Login and its cookie settings."""
    login_manager.init_app(app)
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])


def _safe_next(target: str | None) -> str:
    """Only follow a `next` that stays inside the organiser workspace."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/organiser/"):
            return target
    return url_for("organiser.home")


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _login_account_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_ACCOUNT"]


def _login_account_key() -> str:
    return "login:" + accounts.normalise_login_email(request.form.get("email", ""))[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_account_limit, methods=["POST"], key_func=_login_account_key)
def login() -> Response | tuple[str, int]:
    """Log in with email and password (one message for any mismatch)."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        organiser = accounts.authenticate(get_session(), form.email.data, form.password.data)
        if organiser is not None:
            login_user(organiser)
            return redirect(_safe_next(request.args.get("next")), 303)
        form.form_errors.append(_("The email address or password is not correct."))
        status = 400
    elif form.is_submitted():
        status = 400
    return render_template("organiser/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Log out."""
    logout_user()
    flash(_("You are logged out."))
    return redirect(url_for("organiser.login"), 303)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Response | tuple[str, int]:
    """Change one's own password (other sessions of the account are logged out)."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        session = get_session()
        organiser = session.get(Organiser, current_user.id)
        try:
            accounts.change_password(organiser, form.current.data, form.new.data)
        except accounts.AccountError as exc:
            form.current.errors = [*form.current.errors, str(exc)]
        else:
            session.commit()
            login_user(organiser)  # re-issue this session with the new session version
            flash(_("Your password has been changed."))
            return redirect(url_for("organiser.home"), 303)
    status = 400 if form.is_submitted() else 200
    return render_template("organiser/password.html", form=form), status
