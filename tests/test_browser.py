"""Browser tests: Debian's chromium (Playwright, sync API) against a real gunicorn server.

They run on SQLite only: the browser sees the same pages on every backend, and the
database behaviour is covered by the other tests on both backends.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from petition import create_app
from petition.db import get_session
from tests.browser import CHROMIUM, TIMEOUT_MS
from tests.conftest import Outbox, base_config
from tests.helpers import make_campaign
from tests.liveserver import live_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")


def wait_until_serving(base: str, seconds: float = 60) -> None:
    """Wait until a gunicorn worker has booted the app and answers (it binds the port first)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(base + "/", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            exc.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not answer within {seconds} s")
        time.sleep(0.2)


@dataclass
class Server:
    """A gunicorn server on a SQLite copy of the migrated template, and an app to arrange data."""

    base: str
    app: Flask
    outbox: Outbox


@pytest.fixture(scope="module")
def server(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live server per module (its workers take ~2 s to boot), polling counts every 2 s."""
    tmp = tmp_path_factory.mktemp("browser")
    path = tmp / "test.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    app = create_app(base_config(url, tmp), instance_path=str(tmp / "instance"))
    try:
        with live_server(url, tmp, COUNT_POLL_SECONDS="2", KIOSK_IDLE_SECONDS="6") as base:
            wait_until_serving(base)
            yield Server(base, app, Outbox(tmp / "outbox"))
    finally:
        app.extensions["petition.engine"].dispose()


@dataclass
class Site:
    """The live server and a fresh open campaign of three demands (goal 10) for one test."""

    base: str
    campaign_title: str
    campaign_slug: str
    demand_slugs: list[str]
    outbox: Outbox

    def url(self, path: str) -> str:
        return self.base + path

    def confirm_link(self, to: str) -> str:
        """The confirmation link of the last email sent to an address."""
        messages = [m for m in self.outbox.messages() if m["To"] == to]
        assert messages, f"no email was sent to {to}"
        match = re.search(rf"{re.escape(self.base)}/signatures/confirm/\S+",
                          Outbox.text(messages[-1]))
        assert match, "no confirm link in the message"
        return match.group(0)


@pytest.fixture
def site(server: Server, request: pytest.FixtureRequest) -> Site:
    """A campaign of its own for each test, so counts start at 0 (emails differ per test).

    The test's name in the title is a long unbreakable word: titles must wrap on a phone.
    """
    title = f"Free the journalists {request.node.name}"
    with server.app.app_context():
        campaign = make_campaign(get_session(), title=title, goal=10)
        campaign_slug = campaign.slug
        demand_slugs = [d.slug for d in campaign.demands]
    return Site(server.base, title, campaign_slug, demand_slugs, server.outbox)


def fill_signer(page: Page, *, name: str, email: str, country: str = "Germany") -> None:
    """Fill the signer's details by their visible labels, like a person."""
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Country", exact=True).select_option(label=country)


def test_live_counts_follow_a_signature_made_in_another_tab(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        watcher = context.new_page()
        watcher.goto(site.url(f"/campaigns/{site.campaign_slug}"))
        watcher.evaluate("window.__notReloaded = true")
        first, second, third = (watcher.locator(f"#demand-{slug}") for slug in site.demand_slugs)
        for card in (first, third):
            expect(card.locator("[data-count]")).to_have_text("0")
            expect(card.locator("progress")).to_have_js_property("value", 0)

        signer = context.new_page()
        signer.goto(site.url(f"/campaigns/{site.campaign_slug}"))
        signer.get_by_label("Demand number 1").check()
        signer.get_by_label("Demand number 3").check()
        fill_signer(signer, name="Ayşe Yılmaz", email="ayse@example.org")
        signer.get_by_role("button", name="Sign the ticked demands").click()
        expect(signer.get_by_role("heading", level=1)).to_contain_text("check your email")

        signer.goto(site.confirm_link("ayse@example.org"))
        expect(signer.locator(".results li")).to_have_count(2)
        for item in signer.locator(".results li").all():
            expect(item).to_contain_text("confirmed")

        # The first tab was never reloaded: its polling picks up the new counts.
        for card in (first, third):
            expect(card.locator("[data-count]")).to_have_text("1", timeout=TIMEOUT_MS)
            expect(card.locator("progress")).to_have_js_property("value", 1, timeout=TIMEOUT_MS)
        expect(second.locator("[data-count]")).to_have_text("0")
        expect(second.locator("progress")).to_have_js_property("value", 0)
        assert watcher.evaluate("window.__notReloaded") is True
    finally:
        context.close()


def test_a_bad_email_is_explained_and_nothing_typed_is_lost(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(site.url(f"/petitions/{site.demand_slugs[0]}"))
        fill_signer(page, name="Ayşe Yılmaz", email="ayse@@example")
        page.get_by_role("button", name="Sign", exact=True).click()

        summary = page.locator("#error-summary")
        expect(summary).to_be_visible()
        expect(summary).to_contain_text("Please check the form")
        expect(summary.get_by_role("link")).to_contain_text("This email address is not valid")
        email = page.get_by_label("Email address")
        expect(page.locator("#email-error")).to_contain_text("This email address is not valid")
        expect(email).to_have_attribute("aria-invalid", "true")
        expect(email).to_have_attribute("aria-describedby", re.compile(r"\bemail-error\b"))
        expect(page.get_by_label("Full name")).to_have_value("Ayşe Yılmaz")
        expect(email).to_have_value("ayse@@example")
        expect(page.get_by_label("Country", exact=True)).to_have_value("DE")

        # The summary links to the field; the keyboard goes from name to email.
        summary.get_by_role("link").click()
        expect(page).to_have_url(re.compile(r"#email$"))
        page.get_by_label("Full name").focus()
        page.keyboard.press("Tab")
        expect(email).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_label("Country", exact=True)).to_be_focused()
    finally:
        context.close()


def test_signing_works_without_javascript(browser: Browser, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        petition = site.url(f"/petitions/{site.demand_slugs[1]}")
        page.goto(petition)
        expect(page.locator("[data-count]")).to_have_text("0")
        expect(page.locator(".count")).to_contain_text("signatures")
        expect(page.locator(".count")).to_contain_text("of 10 goal")

        fill_signer(page, name="Nur Ahmet", email="nur@example.org", country="Türkiye")
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("check your email")

        page.goto(site.confirm_link("nur@example.org"))
        expect(page.locator(".results")).to_contain_text("confirmed and counted")
        expect(page.locator(".results")).to_contain_text("It now has 1 signature.")
        # Back on the petition (no JavaScript: only a reload updates it). The other worker
        # may answer from its display cache for up to DISPLAY_CACHE_SECONDS (1 s).
        deadline = time.monotonic() + 3
        page.goto(petition)
        while page.locator("[data-count]").inner_text() != "1" and time.monotonic() < deadline:
            time.sleep(0.2)
            page.goto(petition)
        expect(page.locator("[data-count]")).to_have_text("1")
        expect(page.locator("progress")).to_have_attribute("value", "1")
    finally:
        context.close()


def test_no_third_party_requests_and_no_csp_violations(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    documents: list[Response] = []
    failed: list[str] = []
    console: list[ConsoleMessage] = []
    page_errors: list[str] = []
    # Listen for CSP violations from the first script on; Playwright's init scripts are
    # not subject to the page's CSP.
    context.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("response", lambda r: documents.append(r) if r.request.resource_type == "document" else None)
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("console", lambda m: console.append(m))
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        violations: list[str] = []

        def visit_done() -> None:
            violations.extend(page.evaluate("window.__cspViolations"))

        page.goto(site.url("/"))
        card = page.locator("article").filter(has_text=site.campaign_title)
        expect(card).to_have_count(1)
        visit_done()
        card.get_by_role("link", name="Read and sign").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(site.campaign_title)
        visit_done()
        page.get_by_role("link", name="Demand number 2").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Demand number 2")
        # Stay for a poll: the live count's fetch is allowed by the CSP and stays local.
        with page.expect_request(lambda r: r.url.endswith("/count.json"), timeout=TIMEOUT_MS):
            pass
        visit_done()
        fill_signer(page, name="Dilnur Kerim", email="dilnur@example.org")
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("check your email")
        visit_done()
        page.goto(site.confirm_link("dilnur@example.org"))
        expect(page.locator(".results")).to_contain_text("confirmed and counted")
        visit_done()
    finally:
        context.close()

    origin = urlsplit(site.base)
    assert requests
    foreign = [u for u in requests
               if urlsplit(u)[:2] != (origin.scheme, origin.netloc) and not u.startswith("data:")]
    assert foreign == []
    assert {urlsplit(r.url).path for r in documents} >= {
        "/", f"/campaigns/{site.campaign_slug}", f"/petitions/{site.demand_slugs[1]}",
        f"/petitions/{site.demand_slugs[1]}/signed",
    }
    assert any("/signatures/confirm/" in r.url for r in documents)
    for response in documents:
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, response.url
        assert "script-src 'self'" in csp, response.url
    assert violations == []
    assert [m.text for m in console if "Content Security Policy" in m.text] == []
    # Chromium asks for /favicon.ico by itself; the site has none (a 404, not a third party).
    failed = [f for f in failed if not f.endswith(f"{site.base}/favicon.ico")]
    assert failed == []
    assert [f"{m.text} {m.location}" for m in console if m.type in ("error", "warning")
            and not m.location.get("url", "").endswith("/favicon.ico")] == []
    assert page_errors == []


def _unlabelled_controls(page: Page) -> list[str]:
    """Visible form controls without a label element, aria-label or aria-labelledby."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length)
                          && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.outerHTML)"""
    )


@pytest.mark.parametrize("which", ["petition", "campaign"])
def test_mobile_layout_fits_and_every_field_is_labelled(
    browser: Browser, site: Site, tmp_path: Path, which: str
) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        path = (f"/petitions/{site.demand_slugs[0]}" if which == "petition"
                else f"/campaigns/{site.campaign_slug}")
        page.goto(site.url(path))
        expect(page.locator("form input:not([type=hidden])").first).to_be_visible()
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        assert widths[1] == 375

        controls = page.locator("form input:not([type=hidden]), form select")
        assert controls.count() >= 6
        for control in controls.all():
            labelled = control.evaluate(
                "el => (el.labels && el.labels.length > 0) || !!el.getAttribute('aria-label')"
            )
            assert labelled, control.evaluate("el => el.outerHTML")
        assert _unlabelled_controls(page) == []

        # Errors must not widen the page either (long messages, the summary box).
        fill_signer(page, name="A" * 20, email="x" * 60 + "@@example")
        page.get_by_role("button", name=re.compile(r"^Sign")).tap()
        # The reloaded page opens at the form, so the errors are on screen, not below the fold.
        expect(page.locator("#error-summary")).to_be_in_viewport()
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        page.screenshot(path=tmp_path / f"{which}-mobile-errors.png", full_page=True)
        page.goto(site.url(path))
        page.screenshot(path=tmp_path / f"{which}-mobile.png", full_page=True)
    finally:
        context.close()
