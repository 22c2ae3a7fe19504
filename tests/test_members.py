"""Campaign members: invitations, acceptance, roles, the last-owner rule (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from petition.models import AuditEntry, CampaignMember, Organiser, Role
from petition.organiser import invitations
from tests.conftest import Outbox
from tests.helpers import csrf_token, login, make_campaign, make_organiser

OWNER = "org@example.org"
PASSWORD = "correct horse battery"


def _invite_link(message) -> str:
    """The path of the invitation link in an email."""
    match = re.search(r"http://petition\.test(/organiser/invitations/\S+)", Outbox.text(message))
    assert match, "no invitation link in message"
    return match.group(1)


def _members_url(campaign) -> str:
    return f"/organiser/campaigns/{campaign.slug}/members"


def _post(client, campaign, **data):
    """Submit one of the members page's forms like a browser (page first, for the token)."""
    token = csrf_token(client, _members_url(campaign))
    return client.post(_members_url(campaign), data={"csrf_token": token, **data})


def _role(db, campaign, organiser) -> str | None:
    db.rollback()
    member = db.get(CampaignMember, (campaign.id, organiser.id))
    return member.role if member else None


def _audit(db, action: str | None = None) -> list[AuditEntry]:
    db.rollback()
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.scalars(query))


def _organiser(db, email: str) -> Organiser | None:
    db.rollback()
    return db.scalar(select(Organiser).where(Organiser.email == email))


def _make_organiser(db, **kwargs) -> Organiser:
    db.rollback()  # a fresh transaction: requests have written since the last read
    return make_organiser(db, **kwargs)


@pytest.fixture
def db(app):
    """A session of the test's own, with no app context held open.

    (The shared `db` fixture keeps an app context pushed, so all requests would share one
    `g`, and Flask-Login caches the logged-in user there: a second client would appear
    logged in as the first.)
    """
    session = app.extensions["petition.sessionmaker"]()
    yield session
    session.close()


@pytest.fixture
def campaign(app, db):
    """A campaign whose owner is OWNER."""
    with app.app_context():
        campaign = make_campaign(db, title="Free the detained")
    make_organiser(db, email=OWNER, campaign=campaign)
    return campaign


@pytest.fixture
def owner_client(client, campaign):
    login(client, OWNER)
    return client


def _invite_new(owner_client, campaign, outbox, email="new@example.org", role="editor") -> str:
    response = _post(owner_client, campaign, action="invite", email=email, role=role)
    assert response.status_code == 303, response.text
    return _invite_link(outbox.last())


# -- the page ----------------------------------------------------------------------------------


def test_owner_sees_members_with_roles(owner_client, db, campaign):
    _make_organiser(db, email="ed@example.org", campaign=campaign, role="editor")
    _make_organiser(db, email="vi@example.org", campaign=campaign, role="viewer")
    page = owner_client.get(_members_url(campaign))
    assert page.status_code == 200
    text = page.text
    for email in (OWNER, "ed@example.org", "vi@example.org"):
        assert email in text
    assert text.index(OWNER) < text.index("ed@example.org") < text.index("vi@example.org")
    assert 'aria-current="page"' in text  # the Members tab
    assert "The only owner" in text
    # Strict CSP: no inline script or style.
    assert not re.search(r"<script(?![^>]*\bsrc=)", text)
    assert " style=" not in text
    # Every per-member select has its own label.
    for select_id in re.findall(r'<select id="(role-\d+)"', text):
        assert f'for="{select_id}"' in text


# -- inviting ----------------------------------------------------------------------------------


def test_invite_existing_organiser_adds_membership_and_notifies(owner_client, db, campaign, outbox):
    other = _make_organiser(db, email="other@example.org")
    response = _post(owner_client, campaign, action="invite", email=" Other@Example.ORG ",
                     role="editor")
    assert response.status_code == 303
    page = owner_client.get(response.headers["Location"])
    assert "already had an organiser account and is now a member" in page.text
    assert _role(db, campaign, other) == Role.EDITOR

    [entry] = _audit(db, "member.invite")
    assert entry.detail["email"] == "other@example.org"
    assert entry.detail["outcome"] == "added"
    assert entry.campaign_id == campaign.id

    message = outbox.last()
    assert message["To"] == "other@example.org"
    assert "Free the detained" in message["Subject"]
    text = Outbox.text(message)
    assert "http://petition.test/organiser/" in text
    assert "/organiser/invitations/" not in text
    assert message.get_body(("html",)) is not None


def test_invite_new_address_then_accept_creates_account(owner_client, app, db, campaign, outbox):
    response = _post(owner_client, campaign, action="invite", email="New@Example.org",
                     role="viewer")
    assert response.status_code == 303
    page = owner_client.get(response.headers["Location"])
    assert "An invitation was sent to new@example.org" in page.text
    assert "Pending invitations" in page.text
    assert _organiser(db, "new@example.org") is None

    message = outbox.last()
    assert message["To"] == "new@example.org"
    assert "Invitation to organise" in message["Subject"]
    assert "valid for 7 days" in Outbox.text(message)
    link = _invite_link(message)

    invitee = app.test_client()
    page = invitee.get(link)
    assert page.status_code == 200
    assert "Free the detained" in page.text
    assert "new@example.org" in page.text
    assert 'name="password"' in page.text and 'name="repeat"' in page.text

    token = csrf_token(invitee, link)
    response = invitee.post(link, data={"csrf_token": token, "password": "a long new password",
                                        "repeat": "a long new password"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/organiser/"
    home = invitee.get("/organiser/")
    assert home.status_code == 200
    assert "Free the detained" in home.text
    assert "new@example.org" in home.text  # logged in as the new account

    organiser = _organiser(db, "new@example.org")
    assert organiser is not None
    assert _role(db, campaign, organiser) == Role.VIEWER
    outcomes = [e.detail["outcome"] for e in _audit(db, "member.invite")]
    assert outcomes == ["invited", "accepted"]
    assert "Pending invitations" not in owner_client.get(_members_url(campaign)).text

    # The link again: already a member, nothing changes.
    again = invitee.get(link)
    assert again.status_code == 200
    assert "already a member" in again.text


@pytest.mark.parametrize(
    ("password", "repeat", "message"),
    [
        ("short", "short", "must be 10 to 200 characters"),
        ("a long new password", "another long password", "The two passwords do not match."),
        ("", "", "Please choose a password."),
    ],
)
def test_accept_rejects_bad_passwords(owner_client, app, db, campaign, outbox,
                                      password, repeat, message):
    link = _invite_new(owner_client, campaign, outbox)
    invitee = app.test_client()
    token = csrf_token(invitee, link)
    response = invitee.post(link, data={"csrf_token": token, "password": password,
                                        "repeat": repeat})
    assert response.status_code == 400
    assert message in response.text
    assert _organiser(db, "new@example.org") is None


def test_accept_without_csrf_is_refused(owner_client, app, db, campaign, outbox):
    link = _invite_new(owner_client, campaign, outbox)
    response = app.test_client().post(link, data={"password": "a long new password",
                                                  "repeat": "a long new password"})
    assert response.status_code == 400
    assert _organiser(db, "new@example.org") is None


def test_account_created_meanwhile_logs_in_then_joins(owner_client, app, db, campaign, outbox):
    link = _invite_new(owner_client, campaign, outbox, email="late@example.org", role="editor")
    late = _make_organiser(db, email="late@example.org", password="the late password")

    invitee = app.test_client()
    page = invitee.get(link)
    assert page.status_code == 200
    assert "already an organiser account" in page.text
    assert 'name="password"' not in page.text
    login_url = unquote(re.search(r'href="(/organiser/login\?next=[^"]+)"', page.text).group(1))
    assert login_url == f"/organiser/login?next={link}"

    token = csrf_token(invitee, login_url)
    response = invitee.post(login_url, data={"csrf_token": token, "email": "late@example.org",
                                             "password": "the late password"})
    assert response.status_code == 303
    assert response.headers["Location"] == link
    page = invitee.get(link)
    assert page.status_code == 200
    assert "Join this campaign" in page.text
    assert _role(db, campaign, late) is None  # a GET changes nothing

    response = invitee.post(link, data={"csrf_token": csrf_token(invitee, link)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/organiser/"
    assert _role(db, campaign, late) == Role.EDITOR
    assert _audit(db, "member.invite")[-1].detail["outcome"] == "accepted"


def test_invitation_opened_while_logged_in_as_someone_else(owner_client, db, campaign, outbox):
    link = _invite_new(owner_client, campaign, outbox)
    page = owner_client.get(link)  # the owner is logged in, the link is for new@example.org
    assert page.status_code == 403
    assert "invitation is for another address" in page.text
    response = owner_client.post(link, data={"csrf_token": csrf_token(owner_client,
                                                                      _members_url(campaign))})
    assert response.status_code == 403
    assert _organiser(db, "new@example.org") is None


def test_duplicate_invitation_is_idempotent(owner_client, db, campaign, outbox):
    _invite_new(owner_client, campaign, outbox)
    response = _post(owner_client, campaign, action="invite", email="NEW@example.org",
                     role="owner")
    assert response.status_code == 303
    page = owner_client.get(response.headers["Location"])
    assert "has already been invited" in page.text
    assert "No new email was sent" in page.text
    assert len(outbox.messages()) == 1
    assert len(_audit(db, "member.invite")) == 1


def test_inviting_a_member_again_changes_nothing(owner_client, db, campaign, outbox):
    viewer = _make_organiser(db, email="vi@example.org", campaign=campaign, role="viewer")
    response = _post(owner_client, campaign, action="invite", email="vi@example.org",
                     role="owner")
    assert response.status_code == 303
    page = owner_client.get(response.headers["Location"])
    assert "is already a member of this campaign" in page.text
    assert _role(db, campaign, viewer) == Role.VIEWER
    assert outbox.messages() == []
    assert _audit(db) == []


@pytest.mark.parametrize(
    ("email", "role", "message"),
    [
        ("not-an-email", "editor", "Please enter a valid email address"),
        ("someone@", "editor", "Please enter a valid email address"),
        ("a" * 250 + "@example.org", "editor", "at most 254 characters"),
        ("", "editor", "Please enter the email address to invite."),
        ("new@example.org", "admin", "Please choose a role: owner, editor or viewer."),
        ("new@example.org", "", "Please choose a role: owner, editor or viewer."),
        (" ORG@example.org", "editor", "You cannot invite yourself"),
    ],
)
def test_invite_rejects_bad_input(owner_client, db, campaign, outbox, email, role, message):
    response = _post(owner_client, campaign, action="invite", email=email, role=role)
    assert response.status_code == 400
    assert message in response.text
    assert "Please check the form" in response.text
    if email.strip():
        assert f'value="{email.strip()}"' in response.text  # what was typed is kept
    assert outbox.messages() == []
    assert _audit(db) == []


def test_post_without_csrf_token_is_400(owner_client, db, campaign, outbox):
    editor = _make_organiser(db, email="ed@example.org", campaign=campaign, role="editor")
    url = _members_url(campaign)
    for data in (
        {"action": "invite", "email": "new@example.org", "role": "editor"},
        {"action": "role", "member": str(editor.id), "role": "viewer"},
        {"action": "remove", "member": str(editor.id)},
    ):
        response = owner_client.post(url, data=data)
        assert response.status_code == 400
        assert "This form expired" in response.text
    assert _role(db, campaign, editor) == Role.EDITOR
    assert outbox.messages() == []
    assert _audit(db) == []


def test_unknown_action_is_400(owner_client, campaign):
    assert _post(owner_client, campaign, action="promote").status_code == 400
    assert _post(owner_client, campaign).status_code == 400


# -- roles and removal -------------------------------------------------------------------------


def test_change_role_and_remove_are_audited(owner_client, db, campaign):
    editor = _make_organiser(db, email="ed@example.org", campaign=campaign, role="editor")
    response = _post(owner_client, campaign, action="role", member=str(editor.id), role="viewer")
    assert response.status_code == 303
    assert "ed@example.org is now Viewer." in owner_client.get(response.headers["Location"]).text
    assert _role(db, campaign, editor) == Role.VIEWER
    [entry] = _audit(db, "member.role")
    assert entry.detail == {"member": editor.id, "email": "ed@example.org", "from": "editor",
                            "to": "viewer"}

    response = _post(owner_client, campaign, action="remove", member=str(editor.id))
    assert response.status_code == 303
    assert "no longer a member" in owner_client.get(response.headers["Location"]).text
    assert _role(db, campaign, editor) is None
    [entry] = _audit(db, "member.remove")
    assert entry.detail["email"] == "ed@example.org"
    assert entry.detail["role"] == "viewer"


def test_bad_role_change_input(owner_client, db, campaign):
    editor = _make_organiser(db, email="ed@example.org", campaign=campaign, role="editor")
    stranger = _make_organiser(db, email="stranger@example.org")
    response = _post(owner_client, campaign, action="role", member=str(editor.id), role="god")
    assert response.status_code == 400
    assert "Please choose a role" in response.text
    response = _post(owner_client, campaign, action="role", member=str(stranger.id),
                     role="viewer")
    assert response.status_code == 400
    assert "not a member of the campaign" in response.text
    response = _post(owner_client, campaign, action="remove", member="abc")
    assert response.status_code == 400
    assert _role(db, campaign, editor) == Role.EDITOR
    assert _role(db, campaign, stranger) is None
    assert _audit(db) == []


def test_last_owner_cannot_be_demoted_or_removed(owner_client, db, campaign):
    owner = _organiser(db, OWNER)
    for data in ({"action": "role", "role": "editor"}, {"action": "remove"}):
        response = _post(owner_client, campaign, member=str(owner.id), **data)
        assert response.status_code == 400
        assert "A campaign needs at least one owner" in response.text
        assert _role(db, campaign, owner) == Role.OWNER
    assert _audit(db) == []


def test_with_two_owners_one_may_step_down(owner_client, db, campaign):
    owner = _organiser(db, OWNER)
    second = _make_organiser(db, email="second@example.org", campaign=campaign, role="owner")
    response = _post(owner_client, campaign, action="role", member=str(second.id), role="editor")
    assert response.status_code == 303
    assert _role(db, campaign, second) == Role.EDITOR
    # Now the first owner is the last one again.
    response = _post(owner_client, campaign, action="remove", member=str(owner.id))
    assert response.status_code == 400
    # Promote back, then step down oneself: the page is no longer ours, so we land at home.
    _post(owner_client, campaign, action="role", member=str(second.id), role="owner")
    response = _post(owner_client, campaign, action="role", member=str(owner.id), role="viewer")
    assert response.status_code == 303
    assert response.headers["Location"] == "/organiser/"
    assert _role(db, campaign, owner) == Role.VIEWER
    assert owner_client.get(_members_url(campaign)).status_code == 403


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_owners_manage_members(client, db, campaign, outbox, role):
    member = _make_organiser(db, email="m@example.org", campaign=campaign, role=role)
    owner = _organiser(db, OWNER)
    login(client, "m@example.org")
    assert client.get(_members_url(campaign)).status_code == 403
    token = csrf_token(client, "/organiser/password")
    for data in (
        {"action": "invite", "email": "new@example.org", "role": "owner"},
        {"action": "role", "member": str(member.id), "role": "owner"},
        {"action": "remove", "member": str(owner.id)},
    ):
        response = client.post(_members_url(campaign), data={"csrf_token": token, **data})
        assert response.status_code == 403
    assert _role(db, campaign, member) == role
    assert _role(db, campaign, owner) == Role.OWNER
    assert outbox.messages() == []


def test_non_members_get_404_and_anonymous_must_log_in(client, db, campaign):
    _make_organiser(db, email="outsider@example.org")
    anonymous = client.get(_members_url(campaign))
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/organiser/login")
    login(client, "outsider@example.org")
    assert client.get(_members_url(campaign)).status_code == 404
    assert client.get("/organiser/campaigns/no-such-campaign/members").status_code == 404


# -- invitation links --------------------------------------------------------------------------


def test_tampered_invitation_link_is_404(owner_client, app, campaign, outbox):
    link = _invite_new(owner_client, campaign, outbox)
    prefix, token = link.rsplit("/", 1)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    anonymous = app.test_client()
    for bad in (flipped, token[:-10], token + "x", "garbage", token.replace(".", "", 1)):
        page = anonymous.get(f"{prefix}/{bad}")
        assert page.status_code == 404, bad
        assert "This invitation link is not valid" in page.text
    assert anonymous.post(f"{prefix}/{flipped}", data={}).status_code in (400, 404)


def test_token_of_another_purpose_is_404(app, owner_client, campaign):
    from petition.signing import tokens

    with app.test_request_context():
        token = tokens.make(tokens.CONFIRM, [1])
    assert app.test_client().get(f"/organiser/invitations/{token}").status_code == 404


def _backdated_serializer(app, seconds: int):
    """Invitation tokens made as if `seconds` ago (for the expiry tests)."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds

    return lambda: URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=invitations.INVITE_SALT,
                                          signer=Backdated)


def test_expired_invitation_is_410(owner_client, app, db, campaign, outbox, monkeypatch):
    monkeypatch.setattr(invitations, "_serializer", _backdated_serializer(app, 7 * 86400 + 60))
    old_link = _invite_new(owner_client, campaign, outbox)
    _post(owner_client, campaign, action="cancel", email="new@example.org")
    monkeypatch.setattr(invitations, "_serializer", _backdated_serializer(app, 6 * 86400))
    recent_link = _invite_new(owner_client, campaign, outbox)
    monkeypatch.undo()

    invitee = app.test_client()
    page = invitee.get(old_link)
    assert page.status_code == 410
    assert "This invitation has expired" in page.text
    assert invitee.get(recent_link).status_code == 200  # six days old: still valid
    # A genuine but expired token with a broken signature is "not valid", not "expired".
    broken = old_link[:-3] + ("A" if old_link[-3] != "A" else "B") + old_link[-2:]
    assert invitee.get(broken).status_code == 404


def test_cancelled_invitation_is_410(owner_client, app, db, campaign, outbox):
    link = _invite_new(owner_client, campaign, outbox)
    response = _post(owner_client, campaign, action="cancel", email="new@example.org")
    assert response.status_code == 303
    assert "was cancelled" in owner_client.get(response.headers["Location"]).text
    [entry] = _audit(db, "member.remove")
    assert entry.detail["email"] == "new@example.org"

    invitee = app.test_client()
    assert invitee.get(link).status_code == 410
    # A fresh invitation works, the old link stays dead.
    new_link = _invite_new(owner_client, campaign, outbox)
    assert invitee.get(new_link).status_code == 200
    assert invitee.get(link).status_code == 410


def test_removed_member_cannot_rejoin_with_old_link(owner_client, app, db, campaign, outbox):
    link = _invite_new(owner_client, campaign, outbox)
    invitee = app.test_client()
    invitee.post(link, data={"csrf_token": csrf_token(invitee, link),
                             "password": "a long new password", "repeat": "a long new password"})
    member = _organiser(db, "new@example.org")
    assert _role(db, campaign, member) == Role.EDITOR
    response = _post(owner_client, campaign, action="remove", member=str(member.id))
    assert response.status_code == 303

    assert invitee.get(link).status_code == 410
    response = invitee.post(link, data={"csrf_token": csrf_token(invitee, "/organiser/password")})
    assert response.status_code == 410
    assert _role(db, campaign, member) is None
