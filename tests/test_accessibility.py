"""Accessibility: every page a person can reach, checked by axe-core in Debian's chromium.

axe-core (bundled by axe-playwright-python, no network) runs the WCAG 2.2 A and AA rules and
its best practices on each page as a person sees it: signing forms empty and with errors,
the confirmation and withdrawal pages, the big screen and kiosk, and every organiser page,
on a phone and on a desktop. A test fails with each violation's rule, help text and the
elements it found, so the message says what to mend.

What axe cannot judge is tested here by hand: every tab stop visibly focused, signing with
the keyboard alone, where the focus lands after a mistake, and no sideways scrolling at 320
CSS pixels. Pages without JavaScript are tested by the view tests and test_browser.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from petition.db import get_session
from petition.events import services as events
from petition.models import DemandStatus, Signature
from tests import test_browser as shared
from tests.browser import CHROMIUM, TIMEOUT_MS
from tests.helpers import make_campaign, make_organiser
from tests.test_browser import Server, fill_signer

# The server fixture of test_browser.py, used here under the same name (the browser is
# conftest.py's).
server = shared.server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")

PASSWORD = "correct horse battery"
OWNER = "a11y-owner@example.org"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices (landmarks, one main
# heading, headings in order, ...).
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
AXE = Axe()


@dataclass
class Pages:
    """A campaign with every kind of page to visit, arranged once for the module.

    One supporter signed publicly and confirmed (the pages list and count them), one has
    a confirmation link still to open, one a withdrawal link; an organiser was invited.
    """

    base: str
    campaign: str
    demand: str
    closed_demand: str
    event_id: int
    event_code: str
    confirm: str = ""
    withdraw: str = ""
    invitation: str = ""
    pending_id: int = 0


def _link(server: Server, to: str, kind: str) -> str:
    messages = [m for m in server.outbox.messages() if m["To"] == to]
    assert messages, f"no email was sent to {to}"
    body = messages[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(rf"{re.escape(server.base)}(/\S*{kind}/\S+)", body)
    assert match, f"no {kind} link in the message to {to}"
    return match.group(1)


def _sign(page: Page, pages: Pages, name: str, email: str, *, public: bool = False) -> None:
    page.goto(pages.base + f"/petitions/{pages.demand}")
    fill_signer(page, name=name, email=email)
    if public:
        page.get_by_label("Show my first name and country publicly as a signer").check()
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("check your email")


@pytest.fixture(scope="module")
def pages(server: Server, browser: Browser) -> Pages:
    with server.app.app_context():
        db = get_session()
        campaign = make_campaign(db, title="Accessible campaign", demands=3, goal=50)
        make_organiser(db, email=OWNER, password=PASSWORD, campaign=campaign, role="owner")
        event = events.create_event(db, campaign, events.EventInput(
            name="Stall at the square", date=dt.date(2026, 12, 5), code="a11y-stall",
            demand_id=campaign.demands[0].id), organiser_id=None)
        db.commit()
        closed = campaign.demands[2]
        closed.status = DemandStatus.CLOSED.value
        db.commit()
        found = Pages(server.base, campaign.slug, campaign.demands[0].slug, closed.slug,
                      event.id, event.code)

    context = browser.new_context()
    try:
        page = context.new_page()
        _sign(page, found, "Ayşe Yılmaz", "ayse.a11y@example.org", public=True)
        page.goto(server.base + _link(server, "ayse.a11y@example.org", "confirm"))
        expect(page.locator(".results")).to_contain_text("confirmed and counted")
        _sign(page, found, "Bora Demir", "bora.a11y@example.org")
        found.confirm = _link(server, "bora.a11y@example.org", "confirm")
        _sign(page, found, "Cem Kaya", "cem.a11y@example.org")
        found.withdraw = _link(server, "cem.a11y@example.org", "withdraw")
        with server.app.app_context():
            found.pending_id = get_session().scalars(  # Bora's
                select(Signature.id).where(Signature.source.is_(None))
                .order_by(Signature.id)).all()[1]

        _log_in(page, server.base)
        page.goto(server.base + f"/organiser/campaigns/{found.campaign}/members")
        page.get_by_label("Email address").fill("a11y-invitee@example.org")
        page.get_by_role("button", name="Invite", exact=True).click()
        found.invitation = _link(server, "a11y-invitee@example.org", "invitations")
    finally:
        context.close()
    return found


def _log_in(page: Page, base: str) -> None:
    page.goto(base + "/organiser/login")
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/organiser/login"))


@pytest.fixture(params=list(VIEWPORTS), scope="module")
def viewport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def visitor(browser: Browser, viewport: str) -> Iterator[BrowserContext]:
    """A supporter's browser: no cookies beyond what the pages set."""
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture(scope="module")
def organiser(browser: Browser, viewport: str, pages: Pages) -> Iterator[BrowserContext]:
    """The campaign owner's browser, logged in."""
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    _log_in(page, pages.base)
    page.close()
    yield context
    context.close()


def assert_accessible(page: Page) -> None:
    """axe-core's verdict on the page as it is now; the message lists every violation."""
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": RULES},
                                     "resultTypes": ["violations"]})
    problems = []
    for violation in results.response["violations"]:
        targets = "; ".join(" ".join(map(str, n["target"])) for n in violation["nodes"][:5])
        summary = violation["nodes"][0].get("failureSummary", "").replace("\n", " ")
        problems.append(f"{violation['id']} ({violation['impact']}): {violation['help']} "
                        f"at {targets}. {summary}")
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


# Public pages: name -> path, from what the fixture arranged.
PUBLIC = {
    "home": lambda p: "/",
    "campaign": lambda p: f"/campaigns/{p.campaign}",
    "petition": lambda p: f"/petitions/{p.demand}",
    "closed petition": lambda p: f"/petitions/{p.closed_demand}",
    "petition signed": lambda p: f"/petitions/{p.demand}/signed",
    "campaign signed": lambda p: f"/campaigns/{p.campaign}/signed",
    "confirmation": lambda p: p.confirm,
    "withdrawal": lambda p: p.withdraw,
    "invalid link": lambda p: "/signatures/confirm/not-a-real-token",
    "not found": lambda p: "/petitions/no-such-demand",
    "petition screen": lambda p: f"/petitions/{p.demand}/screen",
    "campaign screen": lambda p: f"/campaigns/{p.campaign}/screen",
    "short link": lambda p: f"/e/{p.event_code}",
    "organiser login": lambda p: "/organiser/login",
    "invitation": lambda p: p.invitation,
}


@pytest.mark.parametrize("name", list(PUBLIC))
def test_public_page_is_accessible(name: str, visitor: BrowserContext, pages: Pages) -> None:
    page = visitor.new_page()
    try:
        page.goto(pages.base + PUBLIC[name](pages))
        assert_accessible(page)
    finally:
        page.close()


def test_petition_form_with_errors_is_accessible(visitor: BrowserContext, pages: Pages) -> None:
    page = visitor.new_page()
    try:
        page.goto(pages.base + f"/petitions/{pages.demand}")
        fill_signer(page, name="Ayşe Yılmaz", email="ayse@@example")
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.locator("#error-summary")).to_be_visible()
        assert_accessible(page)
    finally:
        page.close()


def test_campaign_form_with_errors_is_accessible(visitor: BrowserContext, pages: Pages) -> None:
    page = visitor.new_page()
    try:
        page.goto(pages.base + f"/campaigns/{pages.campaign}")
        fill_signer(page, name="", email="not an address")
        page.get_by_role("button", name="Sign the ticked demands").click()
        expect(page.locator("#error-summary")).to_be_visible()
        assert_accessible(page)
    finally:
        page.close()


def test_login_with_a_wrong_password_is_accessible(visitor: BrowserContext, pages: Pages) -> None:
    page = visitor.new_page()
    try:
        page.goto(pages.base + "/organiser/login")
        page.get_by_label("Email address").fill(OWNER)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("[role=alert], .error, #error-summary").first).to_be_visible()
        assert_accessible(page)
    finally:
        page.close()


# Organiser pages (the owner logged in): name -> path.
ORGANISER = {
    "home": lambda p: "/organiser/",
    "new campaign": lambda p: "/organiser/campaigns/new",
    "dashboard": lambda p: f"/organiser/campaigns/{p.campaign}/",
    "demand dashboard": lambda p: f"/organiser/campaigns/{p.campaign}/demands/{p.demand}",
    "edit campaign": lambda p: f"/organiser/campaigns/{p.campaign}/edit",
    "edit demand": lambda p: f"/organiser/campaigns/{p.campaign}/demands/{p.demand}/edit",
    "new demand": lambda p: f"/organiser/campaigns/{p.campaign}/demands/new",
    "import demands": lambda p: f"/organiser/campaigns/{p.campaign}/import",
    "events": lambda p: f"/organiser/campaigns/{p.campaign}/events",
    "new event": lambda p: f"/organiser/campaigns/{p.campaign}/events/new",
    "edit event": lambda p: f"/organiser/campaigns/{p.campaign}/events/{p.event_id}",
    "paper entry": lambda p: f"/organiser/campaigns/{p.campaign}/events/{p.event_id}/paper",
    "signatures": lambda p: f"/organiser/campaigns/{p.campaign}/signatures",
    "invalidate": lambda p: f"/organiser/campaigns/{p.campaign}/invalidate",
    "invalidate one": lambda p: (f"/organiser/campaigns/{p.campaign}/invalidate"
                                 f"?signature={p.pending_id}"),
    "exports": lambda p: f"/organiser/campaigns/{p.campaign}/exports",
    "exports with errors": lambda p: (f"/organiser/campaigns/{p.campaign}/export.csv"
                                      "?date_from=2026-12-05&date_to=2026-12-01"),
    "members": lambda p: f"/organiser/campaigns/{p.campaign}/members",
    "audit log": lambda p: f"/organiser/campaigns/{p.campaign}/audit",
    "password": lambda p: "/organiser/password",
}


@pytest.mark.parametrize("name", list(ORGANISER))
def test_organiser_page_is_accessible(name: str, organiser: BrowserContext, pages: Pages) -> None:
    page = organiser.new_page()
    try:
        page.goto(pages.base + ORGANISER[name](pages))
        if name.endswith("with errors"):
            expect(page.locator("#error-summary")).to_be_visible()
        assert_accessible(page)
    finally:
        page.close()


# Organiser forms sent empty or wrong: (path, the submit button's name).
ORGANISER_ERRORS = {
    "new campaign": (lambda p: "/organiser/campaigns/new", "Save"),
    "new demand": (lambda p: f"/organiser/campaigns/{p.campaign}/demands/new", "Save"),
    "new event": (lambda p: f"/organiser/campaigns/{p.campaign}/events/new", "Add event"),
    "paper entry": (lambda p: f"/organiser/campaigns/{p.campaign}/events/{p.event_id}/paper",
                    "Add row"),
    "import demands": (lambda p: f"/organiser/campaigns/{p.campaign}/import", "Find demands"),
    "invite": (lambda p: f"/organiser/campaigns/{p.campaign}/members", "Invite"),
    "password": (lambda p: "/organiser/password", "Change password"),
}


@pytest.mark.parametrize("name", list(ORGANISER_ERRORS))
def test_organiser_form_with_errors_is_accessible(
    name: str, organiser: BrowserContext, pages: Pages
) -> None:
    path, button = ORGANISER_ERRORS[name]
    page = organiser.new_page()
    try:
        page.goto(pages.base + path(pages))
        page.get_by_role("button", name=button, exact=True).click()
        expect(page.locator("#error-summary, .field-errors").first).to_be_visible()
        if name == "paper entry":  # fast entry: the focus goes back to the row's first field
            expect(page.locator("form input:not([type=hidden])").first).to_be_focused()
        elif name == "invite":  # the answer scrolls to the form (#invite): Tab reaches the list
            # from where the fragment put the reader, once the page has loaded (on a busy
            # machine a Tab pressed before that starts from the top of the page)
            expect(page).to_have_url(re.compile(r"#invite$"))
            page.wait_for_load_state("load")
            page.keyboard.press("Tab")
            expect(page.locator("#error-summary a").first).to_be_focused()
        else:  # the reader starts at the list of what to mend
            expect(page.locator("#error-summary")).to_be_focused()
        assert_accessible(page)
    finally:
        page.close()


def test_kiosk_pages_are_accessible(browser: Browser, viewport: str, pages: Pages) -> None:
    """The stall's tablet: the kiosk form (empty, warning before it empties itself, and with
    errors), the thanks page and the organiser's exit page."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(pages.base + "/kiosk")
        assert_accessible(page)  # no kiosk started on this browser

        _log_in(page, pages.base)
        page.goto(pages.base + f"/organiser/campaigns/{pages.campaign}/events")
        page.locator(f'form[action$="/events/{pages.event_id}/kiosk"] button').click()
        expect(page).to_have_url(pages.base + "/kiosk")
        assert_accessible(page)

        # Left alone with something typed, the form warns before it empties itself.
        page.get_by_label("Full name").fill("Ayşe")
        warning = page.locator("[data-idle-warning]")
        expect(warning).to_be_visible(timeout=10_000)
        assert_accessible(page)
        page.keyboard.press("Enter")  # "I am still here"
        expect(warning).to_be_hidden()

        fill_signer(page, name="Ayşe Yılmaz", email="ayse@@example")
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.locator("#error-summary")).to_be_visible()
        assert_accessible(page)

        page.get_by_label("Email address").fill(f"kiosk.{viewport}@example.org")
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page).to_have_url(pages.base + "/kiosk/thanks")
        assert_accessible(page)

        page.goto(pages.base + "/kiosk/exit")
        assert_accessible(page)
    finally:
        context.close()


# What the focused element is, and whether a sighted keyboard user can see that it is.
_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(), id: el.id, type: el.type || "",
    text: (el.getAttribute("aria-label") || el.innerText || el.value || el.name || "").trim().slice(0, 60),
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    shadow: style.boxShadow !== "none",
    onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
              && box.top < innerHeight && box.left < innerWidth,
  };
}"""


def tab_stops(page: Page, limit: int = 80) -> list[dict[str, object]]:
    """Press Tab from the top of the page until focus leaves the page; each stop's facts."""
    page.locator("body").focus()
    stops: list[dict[str, object]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None or (stops and focused == stops[0]):
            return stops
        stops.append(focused)
    raise AssertionError(f"more than {limit} tab stops: {stops[-5:]}")


def assert_focus_visible(stops: list[dict[str, object]]) -> None:
    hidden = [s for s in stops if not (s["outline"] or s["shadow"]) or not s["onScreen"]]
    assert not hidden, f"focused but not visibly so (no outline, or off screen): {hidden}"


@pytest.mark.parametrize("path", [
    lambda p: f"/petitions/{p.demand}", lambda p: f"/campaigns/{p.campaign}",
], ids=["petition", "campaign"])
def test_every_tab_stop_shows_where_the_focus_is(visitor: BrowserContext, pages: Pages,
                                                  path) -> None:  # noqa: ANN001
    page = visitor.new_page()
    try:
        page.goto(pages.base + path(pages))
        stops = tab_stops(page)
        assert stops[0]["text"] == "Skip to content"
        assert any(s["id"] == "name" for s in stops) and any(s["id"] == "email" for s in stops)
        assert_focus_visible(stops)
    finally:
        page.close()


def test_organiser_tab_stops_show_where_the_focus_is(organiser: BrowserContext,
                                                     pages: Pages) -> None:
    page = organiser.new_page()
    try:
        page.goto(pages.base + f"/organiser/campaigns/{pages.campaign}/signatures")
        stops = tab_stops(page)
        assert stops[0]["text"] == "Skip to content"
        assert any(s["id"] == "signatures-caption" or "Invalidate" in str(s["text"])
                   for s in stops), stops
        assert_focus_visible(stops)
    finally:
        page.close()


def test_a_supporter_signs_with_the_keyboard_alone(visitor: BrowserContext, pages: Pages,
                                                   viewport: str) -> None:
    """Tab, type, Space and Enter only: after a mistake the next Tab is the error summary's
    link, which leads back to the field, and the corrected form is sent."""
    page = visitor.new_page()
    try:
        page.goto(pages.base + f"/petitions/{pages.demand}")
        page.locator("body").focus()
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "name":
                break
        else:
            raise AssertionError("Tab never reached the name field")
        keys = page.keyboard
        keys.type("Ayşe Yılmaz")
        keys.press("Tab")
        keys.type("ayse.keyboard@@example.org")
        keys.press("Tab")
        keys.type("Germany")  # a select takes the typed name
        assert page.evaluate("document.activeElement.value") == "DE"
        keys.press("Tab")  # postcode, left empty
        keys.press("Tab")
        keys.press("Space")  # show my first name publicly
        keys.press("Enter")  # sends the form from a focused field

        # The answer scrolls to the form's heading (the action's #sign-heading), so the next
        # Tab is the error summary's link, right below it.
        summary = page.locator("#error-summary")
        expect(summary).to_be_in_viewport()
        keys.press("Tab")
        expect(summary.get_by_role("link")).to_be_focused()
        keys.press("Enter")
        expect(page).to_have_url(re.compile(r"#email$"))
        email = page.get_by_label("Email address")
        expect(email).to_have_value("ayse.keyboard@@example.org")
        email.focus()  # where the link's target puts the reader; keys from here on
        keys.press("Control+A")
        keys.type(f"ayse.keyboard.{viewport}@example.org")
        expect(page.get_by_label("Show my first name and country publicly as a signer")).to_be_checked()
        keys.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_contain_text("check your email")
    finally:
        page.close()


_WIDTHS = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


def test_every_page_reflows_at_320_css_pixels(browser: Browser, pages: Pages) -> None:
    """WCAG 1.4.10: at 320 CSS pixels (a small phone, or 1280 at 400% zoom) no page scrolls
    sideways; a wide table scrolls inside its own region instead."""
    too_wide = []
    for paths, log_in in ((PUBLIC, False), (ORGANISER, True)):
        context = browser.new_context(viewport={"width": 320, "height": 640})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            if log_in:
                _log_in(page, pages.base)
            for name, path in paths.items():
                page.goto(pages.base + path(pages))
                scroll, client = page.evaluate(_WIDTHS)
                if scroll > client:
                    too_wide.append(f"{name} ({path(pages)}): {scroll} px wide in {client}")
        finally:
            context.close()
    assert not too_wide, "\n".join(too_wide)


def test_withdrawal_done_is_accessible(visitor: BrowserContext, pages: Pages) -> None:
    page = visitor.new_page()
    try:
        page.goto(pages.base + pages.withdraw)
        withdraw = page.get_by_role("button", name="Withdraw my signature")
        if withdraw.count():  # the phone withdraws; the desktop sees the link used
            withdraw.click()
            expect(page.locator("main")).to_contain_text("withdrawn")
        assert_accessible(page)
    finally:
        page.close()


def test_invitation_with_errors_is_accessible(visitor: BrowserContext, pages: Pages) -> None:
    page = visitor.new_page()
    try:
        page.goto(pages.base + pages.invitation)
        page.get_by_role("button", name="Create my account and join").click()
        expect(page.locator("#error-summary")).to_be_focused()
        assert_accessible(page)
    finally:
        page.close()


# Organiser pages after pressing a button that shows more: (path, the button's name).
ORGANISER_PREVIEWS = {
    "campaign preview": (lambda p: f"/organiser/campaigns/{p.campaign}/edit", "Preview"),
    "invalidation preview": (lambda p: (f"/organiser/campaigns/{p.campaign}/invalidate"
                                        f"?signature={p.pending_id}"), "Preview"),
}


@pytest.mark.parametrize("name", list(ORGANISER_PREVIEWS))
def test_organiser_preview_is_accessible(name: str, organiser: BrowserContext,
                                         pages: Pages) -> None:
    path, button = ORGANISER_PREVIEWS[name]
    page = organiser.new_page()
    try:
        page.goto(pages.base + path(pages))
        page.get_by_role("button", name=button, exact=True).click()
        expect(page.get_by_role("heading", name="Preview")).to_be_visible()
        assert_accessible(page)
    finally:
        page.close()
