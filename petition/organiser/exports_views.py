"""Exports: the filter page, the streamed CSV and the delivery report PDF.

Owners and editors may export; viewers get 403 (an export holds signers' personal data),
non-members 404. Every export and report is recorded in the audit log.
"""

from __future__ import annotations

from flask import Response, abort, render_template, request, stream_with_context
from flask_login import current_user, login_required
from sqlalchemy import select

from petition.db import get_session
from petition.models import Campaign, Demand
from petition.organiser import bp, exports, report
from petition.organiser.access import CAN_EDIT, campaign_for
from petition.organiser.exports_forms import ExportFilterForm


def _page(campaign: Campaign, role: str, form: ExportFilterForm, status: int = 200
          ) -> tuple[str, int]:
    return render_template("organiser/exports.html", campaign=campaign, role=role, form=form,
                           demands=campaign.demands), status


def _download_headers(filename: str) -> dict[str, str]:
    # The filename is built from slugs and a date only ([A-Za-z0-9._-]), so quoting is safe.
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }


@bp.get("/campaigns/<slug>/exports", endpoint="exports")
@login_required
def exports_page(slug: str) -> tuple[str, int]:
    """The export filter form and links to each demand's delivery report."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    return _page(campaign, role, ExportFilterForm.for_campaign(campaign.demands))


@bp.get("/campaigns/<slug>/export.csv")
@login_required
def export_csv(slug: str) -> Response | tuple[str, int]:
    """Stream the filtered signatures as CSV; bad filters get the form again with 400."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    form = ExportFilterForm.for_campaign(campaign.demands, formdata=request.args)
    if not form.validate():
        return _page(campaign, role, form, 400)
    filters = form.filters(campaign.demands)
    demands = exports.export_demands(campaign, filters)
    chosen = demands[0] if filters.demand_id is not None else None
    filename = exports.export_filename(campaign, chosen, filters)
    entry_id = exports.start_export(get_session(), campaign, current_user.id, filters)
    body = exports.stream_csv([(d.id, d.title) for d in demands], filters, entry_id)
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers=_download_headers(filename),
    )


@bp.get("/campaigns/<slug>/demands/<demand_slug>/report.pdf")
@login_required
def delivery_report(slug: str, demand_slug: str) -> Response:
    """The delivery report of one demand as a PDF (names only of those who agreed)."""
    campaign, _role = campaign_for(slug, CAN_EDIT)
    session = get_session()
    demand = session.scalar(
        select(Demand).where(Demand.campaign_id == campaign.id, Demand.slug == demand_slug)
    )
    if demand is None:
        abort(404)
    built = report.build_delivery_report(session, demand)
    report.record_report(session, demand, current_user.id, built)
    session.commit()
    return Response(built.pdf, mimetype="application/pdf",
                    headers=_download_headers(f"{demand.slug}-delivery-report.pdf"))
