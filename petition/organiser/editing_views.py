"""Writing campaigns and demands: create, edit with preview, reorder, import from a text."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from markupsafe import Markup
from werkzeug.wrappers import Response

from petition import markdown
from petition.db import get_session
from petition.errors import render_error
from petition.models import Campaign, CampaignStatus, Demand, DemandStatus
from petition.organiser import bp, importer, services
from petition.organiser.access import CAN_EDIT, campaign_for
from petition.organiser.editing_forms import (
    MAX_PROPOSALS,
    EditCampaignForm,
    EditDemandForm,
    ImportChooseForm,
    ImportTextForm,
    MoveDemandForm,
    NewCampaignForm,
    NewDemandForm,
)

Page = Response | tuple[str, int]
CampaignForm = NewCampaignForm | EditCampaignForm
DemandForm = NewDemandForm | EditDemandForm

_EDIT_ENDPOINTS = {
    "organiser.new_campaign", "organiser.edit_campaign", "organiser.new_demand",
    "organiser.edit_demand",
}


@bp.url_value_preprocessor
def _allow_longer_texts(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Raise the request size limit for the editing and import pages only.

    This runs before the app's before_request handlers, where CSRFProtect first reads the
    form, so the per-request limit (Flask 3.1) is the one that applies. The import page
    takes a file up to twice its limit, so a too-big file gets the form's own message.
    """
    config = current_app.config
    if endpoint in _EDIT_ENDPOINTS:
        request.max_content_length = max(config["EDIT_MAX_BYTES"], config["MAX_CONTENT_LENGTH"])
    elif endpoint == "organiser.import_demands":
        request.max_content_length = 2 * config["IMPORT_MAX_BYTES"] + config["EDIT_MAX_BYTES"]


def _preview(text: str) -> Markup:
    # The uncached renderer: previews are one-off texts that should not fill the cache.
    return markdown.render.__wrapped__(text or "")


def _refuse(form: Any, exc: services.EditError) -> None:
    """Show a refused edit next to its field (or above the form)."""
    field = form._fields.get(exc.field)
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _status(form: Any, preview: bool) -> int:
    return 400 if form.is_submitted() and not preview else 200


def _campaign_input(form: CampaignForm) -> services.CampaignInput:
    return services.CampaignInput(
        title=form.title.data, summary=form.summary.data or "", body=form.body.data or "",
        organisation=form.organisation.data or "", status=CampaignStatus(form.status.data),
        slug=form.slug.data or None,
    )


def _campaign_page(
    form: CampaignForm, campaign: Campaign | None, role: str | None, *, preview: bool = False
) -> tuple[str, int]:
    return render_template(
        "organiser/campaign_form.html", form=form, campaign=campaign, role=role,
        slug_editable=campaign is None or services.slug_editable(campaign),
        preview_html=_preview(form.body.data) if preview else None,
    ), _status(form, preview)


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required
def new_campaign() -> Page:
    """Create a campaign; the organiser who creates it becomes its owner."""
    form = NewCampaignForm()
    if form.is_submitted() and form.preview.data:
        return _campaign_page(form, None, None, preview=True)
    if form.validate_on_submit():
        session = get_session()
        try:
            campaign = services.new_campaign(session, current_user.id, _campaign_input(form))
        except services.EditError as exc:
            _refuse(form, exc)
        else:
            session.commit()
            flash(_("The campaign was created. Add its demands below."))
            return redirect(url_for("organiser.edit_campaign", slug=campaign.slug), 303)
    return _campaign_page(form, None, None)


@bp.route("/campaigns/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit_campaign(slug: str) -> Page:
    """Edit a campaign (owners and editors), with its demands listed for editing and ordering."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    form = EditCampaignForm(obj=campaign)
    if form.is_submitted() and form.preview.data:
        return _campaign_page(form, campaign, role, preview=True)
    if form.validate_on_submit():
        session = get_session()
        try:
            changed = services.update_campaign(
                session, campaign, current_user.id, _campaign_input(form))
        except services.EditError as exc:
            _refuse(form, exc)
        else:
            session.commit()
            flash(_("The campaign was saved.") if changed else _("There were no changes to save."))
            return redirect(url_for("organiser.edit_campaign", slug=campaign.slug), 303)
    return _campaign_page(form, campaign, role)


def _demand_or_404(campaign: Campaign, demand_slug: str) -> Demand:
    demand = services.demand_of(get_session(), campaign, demand_slug)
    if demand is None:
        abort(404)
    return demand


def _demand_input(form: DemandForm) -> services.DemandInput:
    return services.DemandInput(
        title=form.title.data, body=form.body.data or "", target=form.target.data or "",
        goal=form.goal.data, status=DemandStatus(form.status.data),
        opens_on=form.opens_on.data, closes_on=form.closes_on.data,
        slug=form.slug.data or None,
    )


def _demand_page(
    form: DemandForm, campaign: Campaign, role: str, demand: Demand | None, *,
    preview: bool = False,
) -> tuple[str, int]:
    return render_template(
        "organiser/demand_form.html", form=form, campaign=campaign, role=role, demand=demand,
        slug_editable=demand is None or services.slug_editable(demand),
        preview_html=_preview(form.body.data) if preview else None,
    ), _status(form, preview)


@bp.route("/campaigns/<slug>/demands/new", methods=["GET", "POST"])
@login_required
def new_demand(slug: str) -> Page:
    """Add a demand at the end of the campaign's list (owners and editors)."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    form = NewDemandForm(data={"goal": 1000, "status": DemandStatus.DRAFT.value})
    if form.is_submitted() and form.preview.data:
        return _demand_page(form, campaign, role, None, preview=True)
    if form.validate_on_submit():
        session = get_session()
        try:
            services.new_demand(session, campaign, current_user.id, _demand_input(form))
        except services.EditError as exc:
            _refuse(form, exc)
        else:
            session.commit()
            flash(_("The demand was added."))
            return redirect(
                url_for("organiser.edit_campaign", slug=campaign.slug, _anchor="demands"), 303)
    return _demand_page(form, campaign, role, None)


@bp.route("/campaigns/<slug>/demands/<demand_slug>/edit", methods=["GET", "POST"])
@login_required
def edit_demand(slug: str, demand_slug: str) -> Page:
    """Edit one of the campaign's demands (owners and editors)."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    demand = _demand_or_404(campaign, demand_slug)
    form = EditDemandForm(data={
        "title": demand.title, "slug": demand.slug, "body": demand.body,
        "target": demand.target, "goal": demand.goal, "status": demand.status,
        "opens_on": demand.opens_at.date() if demand.opens_at else None,
        "closes_on": demand.closes_at.date() if demand.closes_at else None,
    })
    if form.is_submitted() and form.preview.data:
        return _demand_page(form, campaign, role, demand, preview=True)
    if form.validate_on_submit():
        session = get_session()
        try:
            changed = services.update_demand(session, demand, current_user.id, _demand_input(form))
        except services.EditError as exc:
            _refuse(form, exc)
        else:
            session.commit()
            flash(_("The demand was saved.") if changed else _("There were no changes to save."))
            return redirect(url_for("organiser.edit_demand", slug=campaign.slug,
                                    demand_slug=demand.slug), 303)
    return _demand_page(form, campaign, role, demand)


@bp.post("/campaigns/<slug>/demands/<demand_slug>/move")
@login_required
def move_demand(slug: str, demand_slug: str) -> Page:
    """Move a demand one place up or down in the campaign's list (owners and editors)."""
    campaign, _role = campaign_for(slug, CAN_EDIT)
    demand = _demand_or_404(campaign, demand_slug)
    form = MoveDemandForm()
    if not form.validate_on_submit():
        return render_error(400, _("Please use the Move up or Move down button."))
    session = get_session()
    if services.move_demand(session, campaign, demand, current_user.id, form.direction.data):
        session.commit()
        flash(_("“%(title)s” was moved up.", title=demand.title) if form.direction.data == "up"
              else _("“%(title)s” was moved down.", title=demand.title))
    else:
        flash(_("“%(title)s” is already at that end of the list.", title=demand.title))
    return redirect(url_for("organiser.edit_campaign", slug=campaign.slug, _anchor="demands"), 303)


@bp.route("/campaigns/<slug>/import", methods=["GET", "POST"])
@login_required
def import_demands(slug: str) -> Page:
    """Find demands in a pasted or uploaded campaign text, then create the ticked ones."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    page = "organiser/import.html"
    if request.method == "POST" and "create" in request.form:
        choose = ImportChooseForm()
        if choose.validate_on_submit():
            session = get_session()
            try:
                created = services.import_demands(
                    session, campaign, current_user.id, choose.chosen())
            except services.EditError as exc:
                choose.form_errors.append(exc.message)
            else:
                session.commit()
                flash(ngettext("%(num)d demand was created as a draft.",
                               "%(num)d demands were created as drafts.", len(created)))
                return redirect(
                    url_for("organiser.edit_campaign", slug=campaign.slug, _anchor="demands"),
                    303)
        return render_template(page, campaign=campaign, role=role, choose=choose), 400

    form = ImportTextForm()
    if form.validate_on_submit():
        found = importer.demands_in(form.source_text, is_html=form.source_is_html)
        if found:
            items = []
            for text in found[:MAX_PROPOSALS]:
                title, body = importer.split_title(text)
                items.append({"selected": True, "title": title, "body": body})
            choose = ImportChooseForm(formdata=None, data={"items": items})
            return render_template(page, campaign=campaign, role=role, choose=choose,
                                   more=len(found) - len(items)), 200
        form.form_errors.append(_(
            "No demands were found in this text. Demands are recognised in numbered or "
            "bulleted lists and in sentences such as “We call on … to …”, “We demand …” or "
            "“We urge …”. Nothing was created."))
        return render_template(page, campaign=campaign, role=role, form=form), 200
    return render_template(page, campaign=campaign, role=role, form=form), _status(form, False)
