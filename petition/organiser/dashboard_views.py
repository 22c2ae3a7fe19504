"""Campaign and demand dashboards: counts, signatures per day, top countries and sources."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from flask_login import login_required

from petition.db import get_session
from petition.models import Campaign, Demand
from petition.organiser import bp, stats
from petition.organiser.access import campaign_for


def _render(template: str, campaign: Campaign, role: str, demands: list[Demand],
            **context: Any) -> str:
    days, adjusted = stats.clamp_days(request.args.get("days"))
    data = stats.dashboard(get_session(), demands, days)
    return render_template(
        template, campaign=campaign, role=role, stats=data, chart=stats.bar_chart(data.days),
        days=days, days_adjusted=adjusted, days_choices=stats.DAYS_CHOICES,
        days_min=stats.DAYS_MIN, days_max=stats.DAYS_MAX, **context,
    )


@bp.get("/campaigns/<slug>/")
@login_required
def dashboard(slug: str) -> str:
    """A campaign's numbers: per demand and in total, per day, by country and source."""
    campaign, role = campaign_for(slug)
    return _render("organiser/dashboard.html", campaign, role, list(campaign.demands))


@bp.get("/campaigns/<slug>/demands/<demand_slug>")
@login_required
def demand_dashboard(slug: str, demand_slug: str) -> str:
    """One demand's numbers (the demand must belong to the campaign)."""
    campaign, role = campaign_for(slug)
    demand = next((d for d in campaign.demands if d.slug == demand_slug), None)
    if demand is None:
        abort(404)
    return _render("organiser/demand_dashboard.html", campaign, role, [demand], demand=demand)
