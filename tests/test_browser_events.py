"""Browser tests for events: the big screen follows confirmations, the kiosk cycle forgets.

Debian's chromium through Playwright against a real gunicorn server, on SQLite only, with the
server fixtures of tests/test_browser.py (one server per module). Each test drives a chromium
of its own in a thread of its own: Playwright's sync API allows one instance per thread, and
the session-wide one of test_browser.py may already be running in the main thread.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import select

from petition import create_app
from petition.db import get_session
from petition.events import services as events
from petition.models import Campaign, Signature
from petition.organiser.services import add_demand
from tests import test_browser as shared
from tests.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS
from tests.conftest import base_config
from tests.helpers import make_campaign, make_organiser
from tests.liveserver import live_server
from tests.test_browser import Server, Site, fill_signer

# The server fixtures of test_browser.py, used here under the same names.
server = shared.server
site = shared.site

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


def in_browser(check: Callable[[Browser], None]) -> None:
    """Run check(browser) with a headless chromium of its own, in a thread of its own."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    check(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(exc)

    expect.set_options(timeout=TIMEOUT_MS)
    try:
        thread = threading.Thread(target=run, name="playwright")
        thread.start()
        thread.join()
    finally:
        expect.set_options(timeout=5_000)
    if failure:
        raise failure[0]


def new_context(browser: Browser, **options: object) -> BrowserContext:
    """A browser context that records CSP violations (see test_browser.py)."""
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    return context


def scroll_sizes(page: Page) -> dict[str, int]:
    return page.evaluate(
        """() => ({sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
                   sh: document.documentElement.scrollHeight, ch: document.documentElement.clientHeight})"""
    )


def assert_no_scrollbars(page: Page) -> None:
    sizes = scroll_sizes(page)
    assert sizes["sw"] <= sizes["cw"] and sizes["sh"] <= sizes["ch"], sizes


def sign_and_confirm(context: BrowserContext, site: Site, slug: str, *, name: str, email: str,
                     country: str = "Germany", public: bool = True) -> float:
    """Sign a petition in a tab of its own and open the confirmation link; returns the time."""
    page = context.new_page()
    try:
        page.goto(site.url(f"/petitions/{slug}"))
        fill_signer(page, name=name, email=email, country=country)
        if public:
            page.get_by_label("Show my first name and country publicly as a signer").check()
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("check your email")
        page.goto(site.confirm_link(email))
        expect(page.locator(".results")).to_contain_text("confirmed and counted")
        return time.monotonic()
    finally:
        page.close()


def test_big_screen_follows_a_confirmation_within_five_seconds(site: Site, tmp_path: Path) -> None:
    in_browser(lambda browser: _screen_follows(browser, site, tmp_path))


def _screen_follows(browser: Browser, site: Site, tmp_path: Path) -> None:
    context = new_context(browser, viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    try:
        screen = context.new_page()
        screen.on("pageerror", lambda exc: errors.append(str(exc)))
        screen.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        slug = site.demand_slugs[0]
        screen.goto(site.url(f"/petitions/{slug}/screen?src=hall-screen"))
        screen.evaluate("window.__notReloaded = true")
        expect(screen.locator("[data-total]")).to_have_text("0")
        expect(screen.get_by_role("heading", level=1)).to_have_text("Demand number 1")
        expect(screen.locator(".screen-qr figcaption")).to_contain_text("Scan to sign")
        qr = screen.locator(".screen-qr img")
        assert qr.get_attribute("src") == f"/petitions/{slug}/qr.svg?src=hall-screen"
        expect(qr).to_have_js_property("complete", True)
        assert qr.evaluate("img => img.naturalWidth") > 0
        box = qr.bounding_box()
        assert box and box["width"] >= 500  # large enough to scan from the back of a hall
        assert_no_scrollbars(screen)

        # Not listed: counted, but the name never appears.
        sign_and_confirm(context, site, slug, name="Bora Demir", email="bora.screen@example.org",
                         public=False)
        expect(screen.locator("[data-total]")).to_have_text("1", timeout=5_000)
        expect(screen.locator("[data-recent-empty]")).to_be_visible()

        confirmed_at = sign_and_confirm(context, site, slug, name="Ayşe Yılmaz",
                                        email="ayse.screen@example.org")
        expect(screen.locator("[data-total]")).to_have_text("2", timeout=5_000)
        names = screen.locator("[data-recent] .screen-name")
        expect(names).to_have_text(["Ayşe"], timeout=5_000)
        assert time.monotonic() - confirmed_at < 5.5
        expect(screen.locator("[data-recent] li").first).to_contain_text("Germany")
        expect(screen.locator("[data-recent-empty]")).to_be_hidden()
        expect(screen.locator(".screen-count > progress")).to_have_js_property("value", 2)
        expect(screen.locator("[data-percent]")).to_have_text("20")
        body = screen.locator("body").inner_text()
        assert "Yılmaz" not in body and "Bora" not in body and "@" not in body
        assert screen.evaluate("window.__notReloaded") is True  # JS polling, not a reload
        assert_no_scrollbars(screen)
        screen.screenshot(path=tmp_path / "screen-after-signing.png")
        assert screen.evaluate("window.__cspViolations") == []
        assert errors == []
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [(1920, 1080), (1280, 720)])
def test_big_screens_fit_without_scrolling(server: Server, tmp_path: Path,
                                           viewport: tuple[int, int]) -> None:
    """Long titles, a big count, six demands and five long country names still fit."""
    in_browser(lambda browser: _screens_fit(browser, server, tmp_path, viewport))


def _screens_fit(browser: Browser, server: Server, tmp_path: Path,
                 viewport: tuple[int, int]) -> None:
    n = next(_serial)
    with server.app.app_context():
        db = get_session()
        campaign = make_campaign(db, title=f"Free all the imprisoned journalists and human rights "
                                 f"defenders of the region now {n}", demands=6, goal=2_500_000)
        for demand in campaign.demands:
            demand.title = (f"{demand.title}: release everyone detained for peaceful protest "
                            "and end the surveillance of their families abroad")
        db.commit()
        slugs = (campaign.slug, campaign.demands[0].slug)
        draft = add_demand(db, campaign, title="Draft", target="", goal=1, body="")
        db.commit()
        assert draft.status == "draft"
    width, height = viewport
    context = new_context(browser, viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        for path in (f"/campaigns/{slugs[0]}/screen", f"/petitions/{slugs[1]}/screen"):
            page.goto(server.base + path)
            expect(page.locator("[data-total]")).to_have_text("0")
            if path.startswith("/campaigns/"):  # the draft demand is left out
                expect(page.locator(".screen-demands li")).to_have_count(6)
            # Make the page as full as it gets: a seven-digit count and five long names.
            page.evaluate(
                """() => {
                  document.querySelector('[data-total]').textContent = '1,234,567';
                  document.querySelector('.screen-number').classList.add('long');
                  const list = document.querySelector('[data-recent]');
                  for (let i = 0; i < 5; i++) {
                    const li = document.createElement('li');
                    li.innerHTML = '<span class="screen-name">Maximiliana-Josephine</span>' +
                      '<span class="screen-where">Bosnia and Herzegovina</span>';
                    list.appendChild(li);
                  }
                  document.querySelector('[data-recent-empty]').hidden = true;
                }"""
            )
            assert_no_scrollbars(page)
            title = page.locator(".screen-title").bounding_box()
            number = page.locator(".screen-number").bounding_box()
            assert title and number
            assert number["height"] >= height * 0.09  # readable from across a room
            page.screenshot(path=tmp_path / f"screen-{width}{path.replace('/', '-')}.png")
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()


def test_big_screen_without_javascript_shows_the_values(site: Site) -> None:
    in_browser(lambda browser: _screen_without_js(browser, site))


def _screen_without_js(browser: Browser, site: Site) -> None:
    context = new_context(browser, java_script_enabled=False,
                          viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(site.url(f"/campaigns/{site.campaign_slug}/screen"))
        expect(page.locator("[data-total]")).to_have_text("0")
        expect(page.locator(".screen-demands li")).to_have_count(3)
        expect(page.locator("[data-recent-empty]")).to_be_visible()
        refresh = page.locator('meta[http-equiv="refresh"]')
        expect(refresh).to_have_attribute("content", "30")
        assert_no_scrollbars(page)
    finally:
        context.close()


def _kiosk_setup(server: Server, site: Site) -> tuple[str, int, str]:
    """An organiser of the site's campaign and an event for its first demand."""
    n = next(_serial)
    email, code = f"kiosk-org-{n}@example.org", f"stall-browser-{n}"
    with server.app.app_context():
        db = get_session()
        campaign = db.scalars(select(Campaign).where(Campaign.slug == site.campaign_slug)).one()
        make_organiser(db, email=email, password=PASSWORD, campaign=campaign, role="owner")
        event = events.create_event(db, campaign, events.EventInput(
            name=f"Stall {n}", date=dt.date(2026, 12, 5), code=code,
            demand_id=campaign.demands[0].id), organiser_id=None)
        db.commit()
        return email, event.id, code


def _start_kiosk(page: Page, site: Site, email: str, event_id: int) -> None:
    """Log in as the organiser and start the kiosk for the event on this page."""
    page.goto(site.url("/organiser/login"))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(site.url(f"/organiser/campaigns/{site.campaign_slug}/events"))
    page.locator(f'form[action$="/events/{event_id}/kiosk"] button').click()
    expect(page).to_have_url(site.url("/kiosk"))


def _field_values(page: Page) -> list[str]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('input, select, textarea'))"
        ".map(el => el.value || '')"
    )


def test_kiosk_cycle_never_shows_the_previous_signer(server: Server, site: Site) -> None:
    email, event_id, code = _kiosk_setup(server, site)
    in_browser(lambda browser: _kiosk_cycle(browser, site, email, event_id))
    with server.app.app_context():
        rows = get_session().scalars(select(Signature).where(Signature.source == code)).all()
        assert len(rows) == 2
    assert [m["To"] for m in server.outbox.messages()
            if m["To"] in ("ayse.kiosk@example.org", "bora.kiosk@example.org")] == [
        "ayse.kiosk@example.org", "bora.kiosk@example.org"]


def _kiosk_cycle(browser: Browser, site: Site, email: str, event_id: int) -> None:
    context = new_context(browser, viewport={"width": 800, "height": 1280}, has_touch=True)
    try:
        page = context.new_page()
        _start_kiosk(page, site, email, event_id)
        expect(page.get_by_role("heading", level=1)).to_have_text("Demand number 1")
        assert page.get_by_role("link").all_inner_texts() == ["Organisers: leave kiosk mode"]

        # The first person signs.
        fill_signer(page, name="Ayşe Yılmaz", email="ayse.kiosk@example.org")
        page.get_by_label("Postcode (optional)").fill("10115")
        page.get_by_label("Show my first name and country publicly as a signer").check()
        page.get_by_role("button", name="Sign", exact=True).tap()
        expect(page).to_have_url(site.url("/kiosk/thanks"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for signing!")
        for secret in ("Ayşe", "Yılmaz", "ayse.kiosk", "10115"):
            assert secret not in page.content()

        # After a few seconds the kiosk is back at an empty form by itself.
        expect(page).to_have_url(site.url("/kiosk"), timeout=12_000)
        expect(page.get_by_label("Full name")).to_have_value("")
        expect(page.get_by_label("Email address")).to_have_value("")
        expect(page.get_by_label("Country", exact=True)).to_have_value("")
        expect(page.get_by_label("Show my first name and country publicly as a signer")).not_to_be_checked()

        # The next person presses Back (maybe twice): nothing of the first signer comes back.
        for _ in range(2):
            page.go_back()
            page.wait_for_load_state()
            assert "/kiosk" in page.url, page.url
            values = " ".join(_field_values(page))
            content = page.content()
            for secret in ("Ayşe", "Yılmaz", "ayse.kiosk", "10115"):
                assert secret not in values and secret not in content, page.url
            for box in page.locator("input[type=checkbox]").all():
                expect(box).not_to_be_checked()

        # The second person signs; "Next person" brings the empty form at once.
        page.goto(site.url("/kiosk"))
        fill_signer(page, name="Bora Demir", email="bora.kiosk@example.org", country="Türkiye")
        page.get_by_role("button", name="Sign", exact=True).tap()
        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for signing!")
        page.get_by_role("link", name="Next person").tap()
        expect(page).to_have_url(site.url("/kiosk"))
        expect(page.get_by_label("Full name")).to_have_value("")
        page.go_back()
        page.go_back()
        assert "Bora" not in " ".join(_field_values(page)) and "Bora" not in page.content()

        # Organiser pages need a login now; leaving the kiosk needs the password.
        page.goto(site.url("/organiser/"))
        expect(page).to_have_url(re.compile(r"/organiser/login"))
        page.goto(site.url("/kiosk"))
        page.get_by_role("link", name="Organisers: leave kiosk mode").click()
        page.get_by_label("Organiser email address").fill(email)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log in and leave kiosk mode").click()
        expect(page.locator("#error-summary")).to_contain_text("not correct")
        page.get_by_label("Organiser email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in and leave kiosk mode").click()
        expect(page).to_have_url(site.url(f"/organiser/campaigns/{site.campaign_slug}/events"))
        expect(page.locator(".notice")).to_contain_text("Kiosk mode has ended")
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()


def test_kiosk_clears_a_form_left_half_filled(server: Server, site: Site) -> None:
    """Someone walks away mid-form: after KIOSK_IDLE_SECONDS (6 s here) the form is empty."""
    email, event_id, _code = _kiosk_setup(server, site)

    def check(browser: Browser) -> None:
        context = new_context(browser, viewport={"width": 800, "height": 1280}, has_touch=True)
        try:
            page = context.new_page()
            _start_kiosk(page, site, email, event_id)
            page.get_by_label("Full name").fill("Walked Away")
            page.get_by_label("Email address").fill("walked.away@example.org")
            started = time.monotonic()
            expect(page.get_by_label("Full name")).to_have_value("", timeout=20_000)
            assert time.monotonic() - started >= 5, "cleared before the idle time"
            expect(page.get_by_label("Email address")).to_have_value("")
            assert "Walked Away" not in page.content()
        finally:
            context.close()

    in_browser(check)


def test_kiosk_thanks_screen_stays_when_asked(server: Server, site: Site) -> None:
    """A slow reader presses "Stay on this screen": the thank-you screen no longer goes back
    to the form by itself (WCAG 2.2.1); "Next person" still does."""
    email, event_id, _code = _kiosk_setup(server, site)

    def check(browser: Browser) -> None:
        context = new_context(browser, viewport={"width": 800, "height": 1280}, has_touch=True)
        try:
            page = context.new_page()
            _start_kiosk(page, site, email, event_id)
            fill_signer(page, name="Cem Kaya", email="cem.kiosk@example.org")
            page.get_by_role("button", name="Sign", exact=True).tap()
            expect(page).to_have_url(site.url("/kiosk/thanks"))
            stay = page.get_by_role("button", name="Stay on this screen")
            expect(stay).to_be_visible()
            stay.tap()
            expect(stay).to_be_hidden()
            expect(page.get_by_text("This screen stays until you press Next person.")).to_be_visible()
            expect(page.get_by_role("link", name="Next person")).to_be_focused()
            page.wait_for_timeout(9_000)  # past the 6 s after which it would have gone back
            expect(page).to_have_url(site.url("/kiosk/thanks"))
            page.get_by_role("link", name="Next person").tap()
            expect(page).to_have_url(site.url("/kiosk"))
            expect(page.get_by_label("Full name")).to_have_value("")
            assert page.evaluate("window.__cspViolations") == []
        finally:
            context.close()

    in_browser(check)


def test_kiosk_thanks_screen_goes_back_without_javascript(server: Server, site: Site) -> None:
    """With JavaScript off the thank-you screen still returns to an empty form by itself, and
    offers no "Stay" button that could not work."""
    email, event_id, _code = _kiosk_setup(server, site)

    def check(browser: Browser) -> None:
        context = new_context(browser, viewport={"width": 800, "height": 1280},
                              java_script_enabled=False)
        try:
            page = context.new_page()
            _start_kiosk(page, site, email, event_id)
            fill_signer(page, name="Deniz Aydın", email="deniz.kiosk@example.org")
            page.get_by_role("button", name="Sign", exact=True).click()
            expect(page).to_have_url(site.url("/kiosk/thanks"))
            expect(page.get_by_role("button", name="Stay on this screen")).to_be_hidden()
            expect(page).to_have_url(site.url("/kiosk"), timeout=12_000)
            expect(page.get_by_label("Full name")).to_have_value("")
        finally:
            context.close()

    in_browser(check)


def test_kiosk_warns_before_emptying_a_form_and_keeps_it_on_one_press(
    server: Server, site: Site
) -> None:
    """Someone still reading is warned before the idle reset (3 s into the 6 s here) and
    keeps everything typed with one key press (WCAG 2.2.1); left alone, the form empties."""
    email, event_id, _code = _kiosk_setup(server, site)

    def check(browser: Browser) -> None:
        context = new_context(browser, viewport={"width": 800, "height": 1280}, has_touch=True)
        try:
            page = context.new_page()
            _start_kiosk(page, site, email, event_id)
            warning = page.locator("[data-idle-warning]")
            expect(warning).to_be_hidden()
            name = page.get_by_label("Full name")
            name.fill("Still Here")
            started = time.monotonic()
            expect(warning).to_be_visible(timeout=10_000)
            assert time.monotonic() - started >= 2, "warned before half the idle time"
            expect(warning).to_contain_text("this form empties itself")
            keep = page.get_by_role("button", name="I am still here")
            expect(keep).to_be_focused()
            page.keyboard.press("Enter")
            expect(warning).to_be_hidden()
            expect(name).to_be_focused()
            page.wait_for_timeout(4_500)  # past the moment the form would have been emptied
            expect(name).to_have_value("Still Here")
            # Nobody answers this time: warned again, then emptied.
            expect(warning).to_be_visible(timeout=10_000)
            expect(name).to_have_value("", timeout=10_000)
            expect(page.locator("[data-idle-warning]")).to_be_hidden()
            assert page.evaluate("window.__cspViolations") == []
        finally:
            context.close()

    in_browser(check)


def test_a_rally_on_one_network_signs_through_the_event_qr_code(
        sqlite_template: Path, tmp_path: Path) -> None:
    """At a rally the phones share the venue's Wi-Fi (here: one address). Through the event's
    QR code (its short link) on its day they share the event's allowance, counted apart from
    the network's own limit; past it, a phone gets its form back with what was typed and
    when to try again. One worker, so the limits' memory counters are one site's."""
    path = tmp_path / "rally.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    app = create_app(base_config(url, tmp_path), instance_path=str(tmp_path / "instance"))
    try:
        with app.app_context():
            db = get_session()
            campaign = make_campaign(db, title="Rally campaign", goal=10)
            demand = campaign.demands[0]
            events.create_event(db, campaign, events.EventInput(
                name="Rally", date=dt.datetime.now(dt.UTC).date(), code="rally-today",
                demand_id=demand.id), organiser_id=None)
            db.commit()
            petition = f"/petitions/{demand.slug}"
        with live_server(url, tmp_path, workers=1, threads=4, RATELIMIT_ENABLED="true",
                         RATELIMIT_SIGN="1 per minute", RATELIMIT_SIGN_EVENT="2 per minute") as base:
            shared.wait_until_serving(base)
            outcomes: list[str] = []
            in_browser(lambda browser: _rally(browser, base, petition, outcomes))
        assert outcomes == ["signed", "signed", "refused", "signed", "refused"]
        with app.app_context():
            sources = get_session().scalars(select(Signature.source)).all()
        assert sorted(sources, key=lambda s: s or "") == [None, "rally-today", "rally-today"]
    finally:
        app.extensions["petition.engine"].dispose()


def _rally(browser: Browser, base: str, petition: str, outcomes: list[str]) -> None:
    people = [("Ayşe Yılmaz", True), ("Bora Demir", True), ("Cem Kaya", True),
              ("Deniz Arslan", False), ("Elif Şahin", False)]
    for name, scanned in people:
        context = new_context(browser, viewport={"width": 390, "height": 844}, has_touch=True,
                              is_mobile=True)
        try:
            page = context.new_page()
            page.goto(base + ("/e/rally-today" if scanned else petition))
            expect(page).to_have_url(re.compile(re.escape(petition) + (r"\?src=rally-today$" if scanned else "$")))
            email = name.split()[0].lower() + "@example.org"
            fill_signer(page, name=name, email=email)
            page.get_by_role("button", name="Sign", exact=True).tap()
            heading = page.get_by_role("heading", level=1)
            expect(heading).not_to_have_text("")
            if "check your email" in heading.inner_text():
                outcomes.append("signed")
                continue
            outcomes.append("refused")
            message = ("Too many signatures were sent from your network in the last minute (at "
                       "events many people share one connection). Your details are kept below: "
                       "please wait a minute and sign again.")
            expect(page.get_by_role("link", name=message)).to_be_visible()  # the error summary
            expect(page.get_by_role("paragraph").filter(has_text=message)).to_be_visible()
            expect(page.get_by_label("Full name")).to_have_value(name)
            expect(page.get_by_label("Email address")).to_have_value(email)
            assert page.evaluate("window.__cspViolations") == []
        finally:
            context.close()
