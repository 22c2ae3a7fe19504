"""Kiosk mode: a tablet at a stall collects signatures for one event, one person after another.

An organiser starts it from the events page (petition/organiser/kiosk_views.py): that logs the
organiser out of this browser and leaves a kiosk marker (event and campaign id) in the session,
which Flask signs. The kiosk pages show the sign form of the event's petition (or the
campaign's multi-sign form), a thank-you screen and an exit link, nothing else; every response
is `Cache-Control: no-store` and the forms are `autocomplete="off"`, so neither the back button,
the back/forward cache nor form restoration brings back the previous signer's details.
Signatures go through the normal signing service with the event's code as their source.

A form submitted twice (a double tap, a replayed POST) signs once and sends one email:

- every form shown gets a one-time nonce kept in the session; a POST whose nonce is no longer
  open (already used) just shows the thank-you screen again;
- two submissions that arrive together both still hold the open nonce (the browser has not got
  the updated cookie yet); the signing service serialises them on the (demand, email) key, and
  the later one finds only signatures that this kiosk made after the form was shown: it is a
  repeat, and its transaction (the extra email included) is rolled back.

Leaving kiosk mode needs the email and password of an owner or editor of the campaign.
Starting and leaving it are recorded in the audit log (petition/organiser/kiosk_mode.py).
What a kiosk signs for and the repeat check are services in petition/events/kiosk_services.py.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as flask_session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import RequestLimit
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, HiddenField, PasswordField
from wtforms.validators import InputRequired, Length

from petition.db import UNAVAILABLE, get_session, rollback_if_reachable
from petition.errors import (
    RETRY_AFTER,
    database_unavailable,
    log_database_unavailable,
    render_error,
)
from petition.events.kiosk_services import (
    KioskMarker,
    KioskTarget,
    is_repeat,
    load_target,
    load_target_detached,
    text_without_links,
)
from petition.events.routes import bp
from petition.extensions import csrf, limit_key, limiter
from petition.mail import dispatch_after_commit
from petition.models import Demand, Event
from petition.signing import display
from petition.signing import services as signing
from petition.signing.forms import (
    CampaignSignForm,
    PetitionSignForm,
    SignatureForm,
    note_not_saved,
)
from petition.signing.limits import kiosk_key, note_breach

SESSION_KEY = "kiosk"
OPEN_FORMS_MAX = 5  # forms shown but not yet sent (another tab, a reload) that stay valid
THANKS_SECONDS = 6  # the thank-you screen returns to an empty form after this long
# A kiosk that cannot reach the database tries again this often (what Retry-After says).
OFFLINE_RETRY_SECONDS = int(RETRY_AFTER["Retry-After"])
KIOSK_ENDPOINTS = frozenset(
    {"events.kiosk_form", "events.kiosk_sign", "events.kiosk_thanks", "events.kiosk_exit"}
)


# --- forms -----------------------------------------------------------------------------------


class _NoAutocompleteMeta:
    """Form meta: text fields and selects render with autocomplete="off" (a shared device)."""

    def render_field(self, field: Field, render_kw: dict[str, Any]) -> Any:
        if field.type != "BooleanField":  # not a valid attribute on checkboxes
            render_kw = {**render_kw, "autocomplete": "off"}
        return super().render_field(field, render_kw)  # type: ignore[misc]


class KioskPetitionForm(PetitionSignForm):
    """The petition sign form at a kiosk; `form_nonce` makes each shown form usable once."""

    Meta = _NoAutocompleteMeta
    form_nonce = HiddenField()


class KioskCampaignForm(CampaignSignForm):
    """The campaign multi-sign form at a kiosk; `form_nonce` makes each shown form usable once."""

    Meta = _NoAutocompleteMeta
    form_nonce = HiddenField()


class KioskExitForm(FlaskForm):
    """An owner's or editor's login, to leave kiosk mode (nothing remembered by the browser)."""

    Meta = _NoAutocompleteMeta
    email = EmailField(_l("Organiser email address"), validators=[
        InputRequired(_l("Please enter your email address.")), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[
        InputRequired(_l("Please enter your password.")), Length(max=200)])


# --- the kiosk marker and form nonces in the (signed) session --------------------------------


def start_in_this_browser(event: Event) -> None:
    """Log this browser's organiser out and make it a kiosk for the event."""
    flask_session.clear()
    logout_user()
    flask_session[SESSION_KEY] = {"event": event.id, "campaign": event.campaign_id,
                                  "forms": {}}


def _marker() -> KioskMarker | None:
    raw = flask_session.get(SESSION_KEY)
    if not isinstance(raw, dict):
        return None
    event_id, campaign_id = raw.get("event"), raw.get("campaign")
    if not isinstance(event_id, int) or not isinstance(campaign_id, int):
        return None
    return KioskMarker(event_id, campaign_id)


def _open_forms() -> dict[str, float]:
    forms = flask_session[SESSION_KEY].get("forms")
    return forms if isinstance(forms, dict) else {}


def _issue_nonce() -> str:
    """A new one-time nonce for a form about to be shown (the oldest open ones expire)."""
    nonce = secrets.token_urlsafe(16)
    forms = dict(sorted(_open_forms().items(), key=lambda item: item[1])[-(OPEN_FORMS_MAX - 1):])
    forms[nonce] = time.time()
    flask_session[SESSION_KEY] = {**flask_session[SESSION_KEY], "forms": forms}
    return nonce


def _shown_at(nonce: str | None) -> datetime | None:
    """When the form with this nonce was shown, or None if it is not open (used, or unknown)."""
    issued = _open_forms().get(nonce or "")
    return datetime.fromtimestamp(issued, UTC) if isinstance(issued, int | float) else None


def _close_nonce(nonce: str) -> None:
    forms = {k: v for k, v in _open_forms().items() if k != nonce}
    flask_session[SESSION_KEY] = {**flask_session[SESSION_KEY], "forms": forms}


# --- views -----------------------------------------------------------------------------------


@bp.after_request
def _no_store(response: Response) -> Response:
    """Kiosk pages are never stored: the back button cannot show a previous signer's page."""
    if request.endpoint in KIOSK_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def _active_marker() -> KioskMarker | None:
    """The kiosk marker; an organiser logged in meanwhile is logged out (kiosk pages are public)."""
    marker = _marker()
    if marker is not None and current_user.is_authenticated:
        logout_user()
    return marker


def _not_a_kiosk() -> tuple[str, int]:
    return render_error(404, _("Kiosk mode is not running in this browser. An organiser starts "
                               "it from the events page of a campaign."))


def _shown_target(marker: KioskMarker) -> KioskTarget | None:
    """What the kiosk signs for, as public pages show their demand: at most
    DISPLAY_CACHE_SECONDS old (the signature's INSERT checks again that each demand takes
    signatures) and, while the database is unavailable, as last read, so the stall keeps its
    form and a signature sent meanwhile gets it back with the details kept."""
    key = ("kiosk", str(get_locale() or ""), marker.event_id, marker.campaign_id)
    return display.kept(key, lambda session: load_target_detached(session, marker))


def _make_form(target: KioskTarget) -> KioskPetitionForm | KioskCampaignForm:
    return KioskPetitionForm() if target.demand is not None else KioskCampaignForm()


def _render_form(target: KioskTarget, form: SignatureForm, status: int = 200) -> tuple[str, int]:
    return render_template("events/kiosk.html", target=target, form=form,
                           text_without_links=text_without_links), status


def _unavailable() -> tuple[str, int]:
    return render_template("events/kiosk_unavailable.html"), 404


def _kiosk_offline(exc: Exception) -> tuple[str, int, dict[str, str]]:
    """A kiosk page that found the database unavailable with nothing read before to show (a
    process started during the outage): a kiosk screen that tries again by itself, not the
    site's error page with its navigation. Other pages of the blueprint get the site's."""
    if request.endpoint not in KIOSK_ENDPOINTS:
        return database_unavailable(exc)
    log_database_unavailable(exc)
    again = "events.kiosk_form" if request.endpoint == "events.kiosk_sign" else request.endpoint
    return (render_template("events/kiosk_offline.html", seconds=OFFLINE_RETRY_SECONDS,
                            again=url_for(again)), 503, RETRY_AFTER)


for _unavailable_error in UNAVAILABLE:
    bp.register_error_handler(_unavailable_error, _kiosk_offline)


def _sign_limit() -> str:
    return current_app.config["RATELIMIT_SIGN"]


def _kiosk_key() -> str:
    """A kiosk counts its signatures per event and network, apart from the phones signing on
    the stall's Wi-Fi (a POST from a browser that is no kiosk: per network)."""
    marker = _marker()
    return kiosk_key(marker.event_id) if marker is not None else limit_key()


def _kiosk_sign_breached(breach: RequestLimit) -> Response | None:
    """Over the sign limit: the form back with the typed details and a message; the default
    429 page if not a kiosk."""
    marker = _active_marker()
    target = _shown_target(marker) if marker is not None else None
    if target is None:
        return None
    form = _make_form(target)
    headers = note_breach(form, breach, kiosk=True)
    return make_response(*_render_form(target, form, 429), headers)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.get("/kiosk")
def kiosk_form() -> tuple[str, int]:
    """An empty sign form for the next person at the stall."""
    marker = _active_marker()
    if marker is None:
        return _not_a_kiosk()
    target = _shown_target(marker)
    if target is None:
        return _unavailable()
    form = _make_form(target)
    form.form_nonce.data = _issue_nonce()
    return _render_form(target, form)


def _chosen(target: KioskTarget, form: SignatureForm) -> tuple[list[Demand], bool]:
    """The demands to sign and whether the choice is valid (errors go on the form)."""
    if not isinstance(form, KioskCampaignForm):
        return list(target.demands), True
    by_id = {d.id: d for d in target.demands}
    chosen: list[Demand] = []
    valid = True
    for demand_id in form.demands.data or []:
        demand = by_id.get(demand_id)
        if demand is None:
            form.demands.errors = [*form.demands.errors,
                                   _("One of the ticked demands cannot be signed here.")]
            valid = False
        else:
            chosen.append(demand)
    return chosen, valid


def _signer(form: SignatureForm, source: str) -> signing.SignerInput:
    return signing.SignerInput(
        name=form.name.data, email=form.email.data, country=form.country.data,
        postcode=form.postcode.data or None, contact_consent=bool(form.contact_consent.data),
        public_consent=bool(form.public_consent.data), source=source,
    )


@bp.post("/kiosk")
@csrf.exempt  # the form checks its own CSRF token, so a stale one keeps the typed details
@limiter.limit(_sign_limit, key_func=_kiosk_key, on_breach=_kiosk_sign_breached)
def kiosk_sign() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Sign at the kiosk: once per shown form, then the thank-you screen (303)."""
    marker = _active_marker()
    if marker is None:
        return _not_a_kiosk()
    target = _shown_target(marker)
    if target is None:
        return _unavailable()
    form = _make_form(target)
    nonce = form.form_nonce.data or ""
    shown_at = _shown_at(nonce)
    if shown_at is None:
        # This form was sent already (double tap, replayed POST): the next person must not
        # see an error, and nothing is signed twice.
        return redirect(url_for("events.kiosk_thanks"), 303)
    if target.closed is not None:
        return _render_form(target, form, 409)
    valid = form.validate_on_submit()
    chosen, choice_valid = _chosen(target, form)
    if not (valid and choice_valid):
        if form.csrf_token.errors:
            form.csrf_token.errors = [_("This form was open for too long. Your details are "
                                        "kept below: please check them and sign again.")]
        return _render_form(target, form, 400)
    signer = _signer(form, target.event.code)
    session = get_session()
    try:
        # In a transaction (autocommit=False): a repeat of the same form is rolled back.
        outcome = signing.sign(session, chosen, signer, request.remote_addr, autocommit=False)
        repeat = not outcome.refused and is_repeat(session, outcome, target.event.code, shown_at)
        if not (outcome.refused or repeat):
            session.commit()
    except UNAVAILABLE:
        rollback_if_reachable(session)
        note_not_saved(form)
        return *_render_form(target, form, 503), RETRY_AFTER
    if outcome.refused:  # closed a moment ago: show why, with the typed details kept
        session.rollback()
        target = load_target(session, marker)
        if target is None:
            return _unavailable()
        return _render_form(target, form, 409)
    if repeat:
        session.rollback()
    else:
        dispatch_after_commit([outcome.message_id] if outcome.message_id else [])
    _close_nonce(nonce)
    return redirect(url_for("events.kiosk_thanks"), 303)


@bp.get("/kiosk/thanks")
def kiosk_thanks() -> tuple[str, int]:
    """Thank you (nothing of the signer shown); back to an empty form after a few seconds."""
    if _active_marker() is None:
        return _not_a_kiosk()
    return render_template("events/kiosk_thanks.html", seconds=THANKS_SECONDS), 200


@bp.route("/kiosk/exit", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def kiosk_exit() -> Response | tuple[str, int]:
    """Leave kiosk mode with an owner's or editor's login; back to the events page."""
    marker = _active_marker()
    if marker is None:
        return redirect(url_for("organiser.login"), 303)
    form = KioskExitForm()
    status = 200
    if form.validate_on_submit():
        # Imported here: importing petition.organiser loads its views, which import this module.
        from petition.organiser.kiosk_mode import end_kiosk

        session = get_session()
        ended = end_kiosk(session, marker, form.email.data, form.password.data)
        if ended is not None:
            organiser, campaign = ended
            session.commit()  # the audit entry
            flask_session.clear()
            login_user(organiser)
            flash(_("Kiosk mode has ended and you are logged in again."))
            if campaign is None:
                return redirect(url_for("organiser.home"), 303)
            return redirect(url_for("organiser.events", slug=campaign.slug), 303)
        form.form_errors.append(_("The email address or password is not correct, or this "
                                  "account is not an owner or editor of the campaign."))
        status = 400
    elif form.is_submitted():
        status = 400
    return render_template("events/kiosk_exit.html", form=form), status
