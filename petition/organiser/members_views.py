"""Campaign members (owners only) and accepting an emailed invitation."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from petition.db import get_session
from petition.mail import dispatch_after_commit
from petition.models import Campaign, Organiser, Role
from petition.organiser import bp, invitations, members
from petition.organiser.access import campaign_for
from petition.organiser.members_forms import (
    ROLE_CHOICES,
    AcceptInvitationForm,
    CancelInvitationForm,
    InviteForm,
    JoinForm,
    MemberRemoveForm,
    MemberRoleForm,
)

Outcome = Response | FlaskForm


def _actor() -> Organiser:
    return get_session().get_one(Organiser, current_user.id)


def _render_members(
    campaign: Campaign, role: str, invite_form: InviteForm, failed: FlaskForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = get_session()
    listed = members.list_members(session, campaign.id)
    problems = [str(e) for errors in failed.errors.values() for e in errors] if failed else []
    return render_template(
        "organiser/members.html",
        campaign=campaign,
        role=role,
        members=listed,
        owners=sum(1 for m in listed if m.role == Role.OWNER),
        pending=members.pending_invitations(session, campaign.id),
        invite_form=invite_form,
        problems=problems,
        role_choices=ROLE_CHOICES,
        role_label=members.role_label,
        format_date=format_date,
    ), status


def _invite(campaign: Campaign) -> Outcome:
    """Invite by email: a redirect with a notice, or the form with its errors."""
    form = InviteForm()
    if not form.validate_on_submit():
        return form
    try:
        result = members.invite(get_session(), campaign, _actor(), form.email.data, form.role.data)
    except members.MemberError as exc:
        get_session().rollback()
        field = getattr(form, exc.field) if exc.field else None
        if field is not None:
            field.errors = [*field.errors, str(exc)]
        else:
            form.form_errors.append(str(exc))
        return form
    get_session().commit()
    dispatch_after_commit([result.message_id] if result.message_id else [])
    values = {"email": result.email, "role": members.role_label(result.role)}
    if result.outcome == members.InviteOutcome.ADDED:
        flash(_("%(email)s already had an organiser account and is now a member (%(role)s). "
                "They have been told by email.", **values))
    elif result.outcome == members.InviteOutcome.INVITED:
        flash(_("An invitation was sent to %(email)s (%(role)s). The link in it is valid for "
                "%(days)d days.", days=invitations.INVITE_MAX_AGE.days, **values))
    elif result.outcome == members.InviteOutcome.ALREADY_MEMBER:
        flash(_("%(email)s is already a member of this campaign (%(role)s). Nothing was "
                "changed; change the role in the list of members if needed.", **values))
    else:
        flash(_("%(email)s has already been invited (%(role)s); that invitation is valid until "
                "%(date)s. No new email was sent. To send a new one, cancel the pending "
                "invitation first.", date=format_date(result.expires_at), **values))
    return redirect(url_for("organiser.members", slug=campaign.slug), 303)


def _member_change(campaign: Campaign, form: MemberRoleForm | MemberRemoveForm) -> Outcome:
    """Change a member's role or remove them: a redirect, or the form with its errors."""
    if not form.validate_on_submit():
        return form
    session = get_session()
    actor = _actor()
    try:
        if isinstance(form, MemberRoleForm):
            member = members.change_role(session, campaign, actor, form.member.data, form.role.data)
            message = _("%(email)s is now %(role)s.", email=member.email,
                        role=members.role_label(member.role))
        else:
            member = members.remove_member(session, campaign, actor, form.member.data)
            message = _("%(email)s is no longer a member of this campaign.", email=member.email)
    except members.MemberError as exc:
        session.rollback()
        form.form_errors.append(str(exc))
        return form
    session.commit()
    flash(message)
    if member.organiser_id == actor.id and (
        isinstance(form, MemberRemoveForm) or member.role != Role.OWNER
    ):
        return redirect(url_for("organiser.home"), 303)  # no longer allowed on this page
    return redirect(url_for("organiser.members", slug=campaign.slug), 303)


def _cancel(campaign: Campaign) -> Outcome:
    """Cancel a pending invitation (idempotent)."""
    form = CancelInvitationForm()
    if not form.validate_on_submit():
        return form
    session = get_session()
    cancelled = members.cancel_invitation(session, campaign, _actor(), form.email.data)
    session.commit()
    if cancelled:
        flash(_("The invitation to %(email)s was cancelled; its link no longer works.",
                email=form.email.data))
    else:
        flash(_("There is no pending invitation for %(email)s (it may have been accepted or "
                "cancelled already).", email=form.email.data))
    return redirect(url_for("organiser.members", slug=campaign.slug), 303)


_ACTIONS: dict[str, Callable[[Campaign], Outcome]] = {
    "invite": _invite,
    "role": lambda campaign: _member_change(campaign, MemberRoleForm()),
    "remove": lambda campaign: _member_change(campaign, MemberRemoveForm()),
    "cancel": _cancel,
}


@bp.route("/campaigns/<slug>/members", methods=["GET", "POST"], endpoint="members")
@login_required
def members_page(slug: str) -> Response | tuple[str, int]:
    """List members and pending invitations; invite, change roles, remove (owners only)."""
    campaign, role = campaign_for(slug, (Role.OWNER,))
    if request.method == "GET":
        return _render_members(campaign, role, InviteForm(formdata=None))
    handler = _ACTIONS.get(request.form.get("action", ""))
    if handler is None:
        abort(400)
    outcome = handler(campaign)
    if isinstance(outcome, Response):
        return outcome
    if isinstance(outcome, InviteForm):
        return _render_members(campaign, role, outcome, status=400)
    return _render_members(campaign, role, InviteForm(formdata=None), outcome, status=400)


def _render_invitation(state: str, status: int, **context: object) -> tuple[str, int]:
    return render_template(
        "organiser/accept_invitation.html", state=state, role_label=members.role_label,
        **context,
    ), status


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Response | tuple[str, int]:
    """Accept an emailed invitation: create the account, or join with the existing one."""
    session = get_session()
    try:
        invitation, campaign = invitations.open_link(session, token)
    except invitations.InvitationExpired:
        return _render_invitation("expired", 410)
    except invitations.InvitationInvalid:
        return _render_invitation("invalid", 404)
    context = {"campaign": campaign, "invitation": invitation}
    if current_user.is_authenticated:
        return _join(invitation, context)
    login_url = url_for("organiser.login", next=url_for("organiser.accept_invitation", token=token))
    if members.account_for(session, invitation.email) is not None:
        return _render_invitation("login", 200, login_url=login_url, **context)
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            organiser = members.accept_with_new_account(session, invitation, form.password.data)
        except invitations.InvitationExpired:
            session.rollback()
            return _render_invitation("expired", 410)
        except members.AccountExists:
            session.rollback()
            return _render_invitation("login", 409, login_url=login_url, **context)
        except members.MemberError as exc:
            session.rollback()
            form.password.errors = [*form.password.errors, str(exc)]
        else:
            session.commit()
            login_user(organiser)
            flash(_("Welcome! Your account has been created and you are now a member of "
                    "“%(title)s”.", title=campaign.title))
            return redirect(url_for("organiser.home"), 303)
    status = 400 if form.is_submitted() else 200
    return _render_invitation("create", status, form=form, **context)


def _join(invitation: invitations.Invitation, context: dict[str, object]) -> Response | tuple[str, int]:
    """The invitation page for a logged-in organiser: join with this account."""
    session = get_session()
    campaign = context["campaign"]
    assert isinstance(campaign, Campaign)
    if current_user.email != invitation.email:
        return _render_invitation("other-account", 403, **context)
    if members.is_member(session, campaign.id, current_user.id):
        return _render_invitation("member", 200, **context)
    form = JoinForm()
    if form.validate_on_submit():
        try:
            members.join(session, invitation, _actor())
        except invitations.InvitationExpired:
            session.rollback()
            return _render_invitation("expired", 410)
        session.commit()
        flash(_("You are now a member of “%(title)s”.", title=campaign.title))
        return redirect(url_for("organiser.home"), 303)
    return _render_invitation("join", 400 if form.is_submitted() else 200, form=form, **context)
