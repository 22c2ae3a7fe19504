"""Typing in paper signature sheets: a keyboard-only row form and a CSV upload (editors)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from petition.db import get_session
from petition.events import services as events
from petition.extensions import csrf
from petition.models import Campaign, Demand, Event
from petition.organiser import bp, paper, paper_csv
from petition.organiser.access import CAN_EDIT, campaign_for
from petition.organiser.paper_forms import (
    ROW_FIELDS,
    PaperEntryForm,
    PaperImportForm,
    csv_max_bytes,
)
from petition.signing import counts
from petition.signing.forms import country_choices
from petition.signing.services import closed_reason

Page = Response | tuple[str, int]
_REMEMBER = "paper_entries"
_REMEMBER_MAX = 50


@bp.url_value_preprocessor
def _allow_csv_upload(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Let the CSV upload exceed MAX_CONTENT_LENGTH (up to twice its own limit, so a file a
    little too big gets the form's message rather than the generic 413 page)."""
    if endpoint == "organiser.paper_import":
        request.max_content_length = 2 * csv_max_bytes() + 16 * 1024


@bp.context_processor
def _count_helpers() -> dict[str, Any]:
    """count_split(demands): their confirmed total with its online and paper parts (O(1));
    event_paper_counts(campaign): confirmed paper signatures per source paper:<code>."""
    return {"count_split": _count_split, "event_paper_counts": _event_paper_counts}


def _count_split(demands: Iterable[Demand]) -> counts.Count:
    found = counts.get_many(get_session(), [d.id for d in demands]).values()
    return counts.Count(sum(c.value for c in found), None, sum(c.paper for c in found))


def _event_paper_counts(campaign: Campaign) -> dict[str, int]:
    return paper.paper_counts_by_source(get_session(), campaign)


def _load(slug: str, event_id: int) -> tuple[Campaign, str, Event, Demand | None]:
    """Campaign (owners and editors), event and the chosen demand; 404 for unknown ones."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    event = events.get_event(get_session(), campaign, event_id)
    if event is None:
        abort(404)
    demand = paper.entry_demand(campaign, event, request.args.get("demand"))
    if demand is None and request.args.get("demand"):
        abort(404)
    return campaign, role, event, demand


def _remembered(event: Event) -> list[tuple[int, str]]:
    """This browser session's entries for the event (signature ids only, never PII)."""
    stored = session.get(_REMEMBER) or {}
    if stored.get("event") != event.id:
        return []
    return [(int(i), str(o)) for i, o in stored.get("entries", [])]


def _remember(event: Event, result: paper.EntryResult) -> None:
    if result.signature_id is None:
        return
    entries = [[i, o] for i, o in _remembered(event)]
    entries.insert(0, [result.signature_id, str(result.outcome)])
    session[_REMEMBER] = {"event": event.id, "entries": entries[:_REMEMBER_MAX]}


def _focus(form: PaperEntryForm) -> str:
    """The field to focus: the first with an error, else the first field."""
    for name in ("name", "email", "country", "postcode"):
        if form[name].errors:
            return name
    return "name"


def _page(campaign: Campaign, role: str, event: Event, demand: Demand | None, *,
          form: PaperEntryForm | None = None, import_form: PaperImportForm | None = None,
          report: paper.ImportReport | None = None, file_error: str | None = None,
          status: int = 200) -> tuple[str, int]:
    db = get_session()
    context: dict[str, Any] = {}
    if demand is not None:
        form = form or PaperEntryForm(formdata=None)
        context = {
            "form": form, "focus": _focus(form),
            "import_form": import_form or PaperImportForm(formdata=None),
            "count": counts.get(db, demand.id),
            "event_paper": paper.event_paper_count(db, demand, event),
            "entries": paper.entry_views(db, campaign, _remembered(event)),
            "closed": closed_reason(demand), "countries": country_choices(),
            "csv_max_kb": csv_max_bytes() // 1024, "csv_max_rows": paper_csv.CSV_MAX_ROWS,
            "columns": ROW_FIELDS, "describe": paper.describe_duplicate,
            "report": report, "file_error": file_error,
            "demand_arg": request.args.get("demand") or None,
        }
    return render_template(
        "organiser/paper.html", campaign=campaign, role=role, event=event, demand=demand,
        source=paper.paper_source(event), **context,
    ), status


@bp.route("/campaigns/<slug>/events/<int:event_id>/paper", methods=["GET", "POST"])
@csrf.exempt  # the form checks its own token, so an expired one keeps the typed row
@login_required
def paper_entry(slug: str, event_id: int) -> Page:
    """Type in one sheet row per submit; then an empty form again, the new row listed below."""
    campaign, role, event, demand = _load(slug, event_id)
    if demand is None:
        if request.method == "POST":
            abort(400)
        return _page(campaign, role, event, None)  # choose the petition first
    form = PaperEntryForm()
    if not form.validate_on_submit():
        return _page(campaign, role, event, demand, form=form,
                     status=400 if form.is_submitted() else 200)
    db = get_session()
    result = paper.enter_row(db, demand, event, paper_csv.PaperRow.from_form(form),
                             organiser_id=current_user.id)
    db.commit()
    _remember(event, result)
    if result.outcome == paper.Outcome.ADDED:
        flash(_("Row added. Type the next one."))
    else:
        flash(_("Not added: this email address has already signed this petition (see the "
                "list below)."))
    return redirect(url_for("organiser.paper_entry", slug=campaign.slug, event_id=event.id,
                            demand=request.args.get("demand") or None), 303)


@bp.post("/campaigns/<slug>/events/<int:event_id>/paper/import")
@csrf.exempt  # the form checks its own token and says so on the page
@login_required
def paper_import(slug: str, event_id: int) -> Page:
    """Import sheet rows from a CSV file: good rows are added, each bad one is reported."""
    campaign, role, event, demand = _load(slug, event_id)
    if demand is None:
        abort(400)
    form = PaperImportForm()
    if not form.validate_on_submit():
        return _page(campaign, role, event, demand, import_form=form, status=400)
    db = get_session()
    try:
        report = paper.import_csv(db, demand, event, form.content, organiser_id=current_user.id)
    except paper_csv.PaperFileError as exc:
        db.rollback()
        return _page(campaign, role, event, demand, import_form=form, file_error=str(exc),
                     status=400)
    db.commit()
    return _page(campaign, role, event, demand, report=report)
