"""Moderation pages: the signature list and search, invalidation by filter, the audit log."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from petition.db import get_session
from petition.organiser import audit, bp, moderation, search
from petition.organiser.access import CAN_EDIT, campaign_for
from petition.organiser.moderation_forms import (
    InvalidateForm,
    SignatureSearchForm,
    UndoInvalidationForm,
)


@bp.get("/campaigns/<slug>/signatures")
@login_required
def signatures(slug: str) -> tuple[str, int]:
    """List and search the campaign's signatures (decrypted names, masked emails)."""
    campaign, role = campaign_for(slug)
    form = SignatureSearchForm(campaign, formdata=request.args)
    page = None
    status = 200
    if form.validate():
        page = search.search(
            get_session(), campaign, form.to_filter(), request.args.get("page", 1, type=int)
        )
    else:
        status = 400
    # The search, kept for pagination links (url_for gets the slug and page separately).
    query = {k: v for k, v in request.args.items() if k not in ("slug", "page") and v}
    return render_template(
        "organiser/signatures.html", campaign=campaign, role=role, form=form, page=page,
        can_edit=role in CAN_EDIT, query=query,
    ), status


@bp.route("/campaigns/<slug>/invalidate", methods=["GET", "POST"])
@login_required
def invalidate(slug: str) -> Response | tuple[str, int]:
    """Invalidate signatures by filter: a first POST previews, the confirming POST acts."""
    campaign, role = campaign_for(slug, CAN_EDIT)
    if request.method == "POST":
        form = InvalidateForm(campaign)
    else:  # prefilled from links such as "same IP" in the signature list
        form = InvalidateForm(campaign, data={
            "ip_hash": request.args.get("ip", ""),
            "source": request.args.get("source", ""),
            "signature_id": request.args.get("signature", type=int),
        })
    session = get_session()
    preview = None
    status = 200
    if form.validate_on_submit():
        filt = form.to_filter()
        try:
            if form.confirm.data and form.fingerprint.data:
                entry = moderation.invalidate(
                    session, campaign, filt, organiser_id=current_user.id,
                    expected_fingerprint=form.fingerprint.data,
                )
                session.commit()
                flash(ngettext(
                    "%(num)d signature was invalidated.", "%(num)d signatures were invalidated.",
                    entry.row_count or 0))
                return redirect(url_for("organiser.audit", slug=campaign.slug), 303)
            preview = moderation.preview(session, campaign, filt)
        except moderation.PreviewOutdated as exc:
            session.rollback()
            preview = exc.preview
            form.form_errors.append(str(exc))
            status = 409
        except moderation.ModerationError as exc:
            session.rollback()
            form.form_errors.append(str(exc))
            status = 400
        if preview is not None:
            form.fingerprint.data = preview.fingerprint
    elif form.is_submitted():
        status = 400
    return render_template(
        "organiser/invalidate.html", campaign=campaign, role=role, form=form, preview=preview,
    ), status


@bp.post("/campaigns/<slug>/audit/<int(max=2147483647):entry_id>/undo")
@login_required
def undo_invalidation(slug: str, entry_id: int) -> Response:
    """Undo an invalidation: restore its signatures that are still invalidated."""
    campaign, _role = campaign_for(slug, CAN_EDIT)
    form = UndoInvalidationForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    result = moderation.undo_invalidation(
        session, campaign, entry_id, organiser_id=current_user.id
    )
    if result is None:
        session.rollback()
        abort(404)
    session.commit()
    if result.already_undone:
        flash(_("This invalidation was already undone; nothing was changed."))
    else:
        flash(ngettext(
            "%(num)d signature was restored.", "%(num)d signatures were restored.",
            result.restored))
    return redirect(url_for("organiser.audit", slug=campaign.slug), 303)


@bp.get("/campaigns/<slug>/audit", endpoint="audit")
@login_required
def audit_log(slug: str) -> str:
    """The campaign's audit log: who exported or invalidated what, when, how many rows."""
    campaign, role = campaign_for(slug)
    entries = audit.entries(get_session(), campaign.id)
    demands = {d.id: d for d in campaign.demands}
    return render_template(
        "organiser/audit.html", campaign=campaign, role=role, entries=entries,
        describe=lambda entry: moderation.describe_filter(entry.detail, demands),
        counted=moderation.counted_delta, can_edit=role in CAN_EDIT,
    )
