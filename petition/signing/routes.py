"""Public routes: thin views over petition.signing.services."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter import RequestLimit

from petition.db import UNAVAILABLE, commit_if_begun, get_session, rollback_if_reachable
from petition.errors import RETRY_AFTER
from petition.extensions import csrf, limiter
from petition.http import json_response
from petition.mail import dispatch_after_commit
from petition.models import Campaign, Demand, SignatureStatus
from petition.signing import counts, display, limits, services, tokens
from petition.signing.forms import (
    CampaignSignForm,
    PetitionSignForm,
    SignatureForm,
    clean_source,
    note_not_saved,
)

bp = Blueprint("signing", __name__)


def _petition_sign_breached(breach: RequestLimit) -> Response:
    demand = _shown_demand((request.view_args or {}).get("slug", ""))
    form = PetitionSignForm()
    headers = limits.note_breach(form, breach)
    return make_response(*_render_petition(demand, form, 429), headers)


def _campaign_sign_breached(breach: RequestLimit) -> Response:
    campaign = _shown_campaign((request.view_args or {}).get("slug", ""))
    form = CampaignSignForm()
    headers = limits.note_breach(form, breach)
    return make_response(*_render_campaign(campaign, form, 429), headers)


def _signer(form: SignatureForm) -> services.SignerInput:
    return services.SignerInput(
        name=form.name.data,
        email=form.email.data,
        country=form.country.data,
        postcode=form.postcode.data or None,
        contact_consent=bool(form.contact_consent.data),
        public_consent=bool(form.public_consent.data),
        source=form.src.data,
    )


def _explain_csrf(form: SignatureForm) -> None:
    """Replace the CSRF library message with one a supporter understands."""
    if form.csrf_token.errors:
        form.csrf_token.errors = [
            _("This form was open for too long or in another browser session. Your details "
              "are kept below: please check them and sign again.")
        ]


@bp.get("/")
def index() -> str:
    """The list of published campaigns."""
    session = get_session()
    campaigns = services.list_public_campaigns(session)
    demand_ids = [d.id for c in campaigns for d in services.public_demands(c)]
    return render_template(
        "signing/index.html",
        src=clean_source(request.args.get("src")),  # an unknown short link's code is kept
        campaigns=campaigns,
        counts=counts.get_many(session, demand_ids),
        public_demands=services.public_demands,
    )


def _load_campaign(slug: str) -> Campaign:
    campaign = services.get_public_campaign(get_session(), slug)
    if campaign is None:
        abort(404)
    return campaign


def _shown_campaign(slug: str) -> Campaign:
    """The published campaign to show (from the display cache: read only, maybe 1 s old)."""
    campaign = display.public_campaign(slug)
    if campaign is None:
        abort(404)
    return campaign


def _render_campaign(campaign: Campaign, form: CampaignSignForm, status: int = 200) -> tuple[str, int]:
    demands = services.public_demands(campaign)
    open_ids = [d.id for d in demands if services.closed_reason(d) is None]
    return render_template(
        "signing/campaign.html",
        campaign=campaign,
        demands=demands,
        open_ids=open_ids,
        counts=display.counts_of([d.id for d in demands]),
        form=form,
        closed_reason=services.closed_reason,
    ), status


@bp.get("/campaigns/<slug>")
def campaign(slug: str) -> str:
    """A campaign with its listed demands, counts and a multi-demand sign form."""
    campaign = _shown_campaign(slug)
    src = clean_source(request.args.get("src"))
    shown = display.counts_of([d.id for d in services.public_demands(campaign)])
    return display.page(
        ("campaign", campaign, src, tuple(shown.items())),
        lambda: _render_campaign(campaign, CampaignSignForm(src=src))[0],
    )


def _note_closed(form: CampaignSignForm, demand: Demand) -> bool:
    """Explain on the form that a ticked demand no longer takes signatures (True if so)."""
    reason = services.closed_reason(demand)
    if reason is not None:
        form.demands.errors = [*form.demands.errors, f"{demand.title}: {reason}"]
    return reason is not None


@bp.post("/campaigns/<slug>/sign")
@csrf.exempt  # the form checks its own CSRF token, so a stale one keeps the typed details
@limiter.limit(limits.sign_limit, key_func=limits.sign_key, on_breach=_campaign_sign_breached)
def campaign_sign(slug: str) -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Sign the ticked demands of a campaign at once (one email for all)."""
    campaign = _shown_campaign(slug)  # the INSERT checks again that each takes signatures
    form = CampaignSignForm()
    by_id = {d.id: d for d in services.public_demands(campaign)}
    valid = form.validate_on_submit()
    chosen: list[Demand] = []
    for demand_id in form.demands.data or []:
        demand = by_id.get(demand_id)
        if demand is None:
            form.demands.errors = [*form.demands.errors, _("One of the ticked demands does not exist.")]
            valid = False
        elif _note_closed(form, demand):
            valid = False
        else:
            chosen.append(demand)
    if not valid:
        _explain_csrf(form)
        return _render_campaign(campaign, form, 400)
    session = get_session()
    try:
        outcome = services.sign(session, chosen, _signer(form), request.remote_addr)
        if not outcome.refused:
            commit_if_begun(session)
    except UNAVAILABLE:
        rollback_if_reachable(session)
        note_not_saved(form)
        return *_render_campaign(campaign, form, 503), RETRY_AFTER
    if outcome.refused:  # closed a moment ago: say so from the database's own state
        session.rollback()
        campaign = _load_campaign(slug)
        for demand in services.public_demands(campaign):
            if demand.id in outcome.refused:
                _note_closed(form, demand)
        return _render_campaign(campaign, form, 409)
    dispatch_after_commit([outcome.message_id] if outcome.message_id else [])
    return redirect(url_for("signing.campaign_signed", slug=campaign.slug), 303)


@bp.get("/campaigns/<slug>/signed")
def campaign_signed(slug: str) -> str:
    """The same "check your email" page after every submission."""
    campaign = _shown_campaign(slug)
    return display.same_for_everyone(
        ("signed", campaign.slug),
        lambda: render_template("signing/signed.html", campaign=campaign, demand=None),
    )


@bp.get("/campaigns/<slug>/counts.json")
def campaign_counts_json(slug: str) -> Response:
    """Counts of all the campaign's demands, for polling by open campaign pages."""
    document = display.campaign_counts_json(slug)
    if document is None:
        abort(404)
    return json_response(document, display.POLL_MAX_AGE)


def _load_demand(slug: str) -> Demand:
    """The published demand from the database, as it is now."""
    demand = services.get_public_demand(get_session(), slug)
    if demand is None:
        abort(404)
    return demand


def _shown_demand(slug: str) -> Demand:
    """The published demand to show (from the display cache: read only, maybe 1 s old)."""
    demand = display.public_demand(slug)
    if demand is None:
        abort(404)
    return demand


def _render_petition(demand: Demand, form: PetitionSignForm, status: int = 200) -> tuple[str, int]:
    return render_template(
        "signing/petition.html",
        demand=demand,
        campaign=demand.campaign,
        count=display.count(demand.id),
        form=form,
        closed=services.closed_reason(demand),
    ), status


@bp.get("/petitions/<slug>")
def petition(slug: str) -> str:
    """One demand presented as a petition, with its count and sign form."""
    demand = _shown_demand(slug)
    src = clean_source(request.args.get("src"))
    return display.page(
        ("petition", demand, src, display.count(demand.id)),
        lambda: _render_petition(demand, PetitionSignForm(src=src))[0],
    )


@bp.post("/petitions/<slug>/sign")
@csrf.exempt  # the form checks its own CSRF token, so a stale one keeps the typed details
@limiter.limit(limits.sign_limit, key_func=limits.sign_key, on_breach=_petition_sign_breached)
def petition_sign(slug: str) -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Sign one demand."""
    demand = _shown_demand(slug)  # the INSERT checks again that it takes signatures
    form = PetitionSignForm()
    if services.closed_reason(demand) is not None:
        return _render_petition(demand, form, 409)
    if not form.validate_on_submit():
        _explain_csrf(form)
        return _render_petition(demand, form, 400)
    session = get_session()
    try:
        outcome = services.sign(session, [demand], _signer(form), request.remote_addr)
        if not outcome.refused:
            commit_if_begun(session)
    except UNAVAILABLE:
        rollback_if_reachable(session)
        note_not_saved(form)
        return *_render_petition(demand, form, 503), RETRY_AFTER
    if outcome.refused:  # closed a moment ago: say so from the database's own state
        session.rollback()
        return _render_petition(_load_demand(slug), form, 409)
    dispatch_after_commit([outcome.message_id] if outcome.message_id else [])
    return redirect(url_for("signing.petition_signed", slug=demand.slug), 303)


@bp.get("/petitions/<slug>/signed")
def petition_signed(slug: str) -> str:
    """The same "check your email" page after every submission."""
    demand = _shown_demand(slug)
    return display.same_for_everyone(
        ("signed", demand.campaign.slug, demand.slug),
        lambda: render_template("signing/signed.html", campaign=demand.campaign, demand=demand),
    )


@bp.get("/petitions/<slug>/count.json")
def count_json(slug: str) -> Response:
    """The live count of one demand (ETag and a short cache lifetime make polling cheap)."""
    document = display.count_json(slug)
    if document is None:
        abort(404)
    return json_response(document, display.POLL_MAX_AGE)


def _confirm_max_age() -> int:
    return int(current_app.config["CONFIRM_MAX_AGE_DAYS"]) * 86400


@bp.get("/signatures/confirm/<token>")
def confirm(token: str) -> tuple[str, int]:
    """Confirm the signatures named by an emailed link (idempotent, safe for mail scanners)."""
    session = get_session()
    try:
        ids = tokens.load(tokens.CONFIRM, token, _confirm_max_age())
    except tokens.TokenExpired as exc:
        signatures = services.load_signatures(session, exc.signature_ids)
        return render_template("signing/link_expired.html", signatures=signatures), 410
    except tokens.TokenInvalid:
        return render_template("signing/link_invalid.html"), 404
    # Each with its demand's exact count, read after the commit: the signer sees their
    # signature counted here even while public pages may show the count of a second ago.
    signatures = services.confirm(session, ids)
    if not signatures:
        return render_template("signing/link_invalid.html"), 404
    display.forget(*(s.demand for s in signatures))
    return render_template("signing/confirmed.html", signatures=signatures, Status=SignatureStatus), 200


@bp.route("/signatures/withdraw/<token>", methods=["GET", "POST"])
def withdraw(token: str) -> Response | tuple[str, int]:
    """Show what a withdrawal link would withdraw (GET); withdraw it (POST)."""
    session = get_session()
    try:
        ids = tokens.load(tokens.WITHDRAW, token)
    except (tokens.TokenInvalid, tokens.TokenExpired):
        return render_template("signing/link_invalid.html"), 404
    if request.method == "POST":
        withdrawn = services.withdraw(session, ids)
        signatures = services.load_signatures(session, ids)
        if not withdrawn and not signatures:
            return render_template("signing/link_invalid.html"), 404
        session.commit()
        display.forget(*(s.demand for s in signatures))
        flash(_("Your signature has been withdrawn and your details erased."))
        return redirect(url_for("signing.withdraw", token=token), 303)
    signatures = services.load_signatures(session, ids)
    if not signatures:
        return render_template("signing/link_invalid.html"), 404
    active = [s for s in signatures if s.status in services.WITHDRAWABLE]
    return render_template(
        "signing/withdraw.html", signatures=signatures, active=active, token=token
    ), 200
