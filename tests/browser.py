"""Debian's chromium for the browser tests (Playwright, sync API), shared by every module.

conftest.py registers the fixtures once, so the whole session has one Playwright driver and
one browser in the main thread (a second sync driver in the same thread is refused).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000  # a poll comes every 2 s; the rest is headroom for a busy machine


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver, once per session."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless, once per session (never a downloaded browser)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        yield browser
    finally:
        expect.set_options(timeout=5_000)
        browser.close()
