"""Campaign events: list (all members), create and edit (owners and editors; audited)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from petition.db import get_session
from petition.events import services
from petition.events.forms import EventForm
from petition.links import public_url
from petition.models import Campaign, Event
from petition.organiser import bp
from petition.organiser.access import CAN_EDIT, campaign_for


def _links(event: Event) -> dict[str, str | None]:
    """The short link, its QR codes, and the direct QR codes (None while unpublished)."""
    target = services.event_target(event)
    direct_endpoint = {"signing.petition": "events.petition_qr",
                       "signing.campaign": "events.campaign_qr"}
    links: dict[str, str | None] = {
        "short": public_url("events.short_link", code=event.code),
        "short_svg": url_for("events.short_link_qr", code=event.code, fmt="svg"),
        "short_png": url_for("events.short_link_qr", code=event.code, fmt="png", size=20),
        "target": None, "direct_svg": None, "direct_png": None,
    }
    if target is not None:
        qr_endpoint = direct_endpoint[target.endpoint]
        links["target"] = public_url(target.endpoint, **target.values)
        links["direct_svg"] = url_for(qr_endpoint, fmt="svg", **target.values)
        links["direct_png"] = url_for(qr_endpoint, fmt="png", size=20, **target.values)
    return links


@bp.get("/campaigns/<slug>/events")
@login_required
def events(slug: str) -> str:
    """The campaign's events with their short links and QR codes."""
    campaign, role = campaign_for(slug)
    listed = services.list_events(get_session(), campaign)
    return render_template(
        "organiser/events.html", campaign=campaign, role=role, events=listed,
        links={e.id: _links(e) for e in listed}, can_edit=role in CAN_EDIT,
        format_date=format_date,
    )


def _save(campaign: Campaign, role: str, form: EventForm, event: Event | None) -> Response | tuple[str, int]:
    """Validate and save the form; the form page again (400) with messages if it fails."""
    if form.validate_on_submit():
        data = services.EventInput(
            name=form.name.data, date=form.date.data, place=form.place.data or "",
            code=form.code.data or "", demand_id=form.selected_demand_id(),
        )
        session = get_session()
        try:
            if event is None:
                event = services.create_event(session, campaign, data,
                                              organiser_id=current_user.id)
                flash(_("The event %(name)s was added.", name=event.name))
            else:
                services.update_event(session, campaign, event, data,
                                      organiser_id=current_user.id)
                flash(_("The event %(name)s was saved.", name=event.name))
        except services.EventError as exc:
            session.rollback()
            form[exc.field].errors = [*form[exc.field].errors, str(exc)]
        else:
            session.commit()
            return redirect(url_for("organiser.events", slug=campaign.slug), 303)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "organiser/event_form.html", campaign=campaign, role=role, form=form, event=event
    ), status


@bp.route("/campaigns/<slug>/events/new", methods=["GET", "POST"])
@login_required
def new_event(slug: str) -> Response | tuple[str, int]:
    """Add an event; its code is suggested from name and date when left empty."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    form = EventForm()
    form.set_demands(campaign)
    return _save(campaign, role, form, None)


@bp.route("/campaigns/<slug>/events/<int:event_id>", methods=["GET", "POST"])
@login_required
def edit_event(slug: str, event_id: int) -> Response | tuple[str, int]:
    """Edit an event's details, target or code."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    event = services.get_event(get_session(), campaign, event_id)
    if event is None:
        abort(404)
    form = EventForm(obj=event)
    form.set_demands(campaign)
    return _save(campaign, role, form, event)
