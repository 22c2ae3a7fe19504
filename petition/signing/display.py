"""What public pages show, kept per worker process for a second.

Petition pages, QR codes and count.json polls are read far more often than what they show
changes: a demand's text changes a few times in its life and its count at most a few hundred
times a second, while thousands of open pages poll. Each worker process keeps, for
DISPLAY_CACHE_SECONDS (default 1; 0 turns the cache off), a published demand (loaded in its
own short session, so the cached object is detached and only ever read), its count and its
count.json body. A page view or a poll then mostly costs no database query, and the database
sees at most one such read per demand per second per process, however many people watch and
however many app hosts serve them: when an entry expires, one thread reads it again while the
others asking for it wait for that read.

Only what is shown is cached, and the petition page itself (page(): rendered once, with each
visitor's CSRF token put back in). Writes never trust it: the sign POST shows and emails the
cached demand, but the INSERT checks in the database that the demand takes signatures
(services.sign), so a demand closed a moment ago refuses signatures even while a page still
shows its form. Misses (unknown slugs) are not cached, and the caches hold at most
DISPLAY_CACHE_SIZE and PAGE_CACHE_SIZE entries, so nobody can fill memory by asking for
made-up addresses.

While the database cannot be reached (a restart, a failover), what was read from it in the
last DISPLAY_STALE_SECONDS (default 300) is shown instead: public pages and count polls keep
answering with the last count they read, and a signature sent meanwhile gets its form back
with the details kept (503) rather than an error page. An edit made in this process, or a
confirmation or withdrawal it handled, drops the old values at once, as for the cache itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from cachetools import TTLCache
from flask import Flask, current_app
from flask import session as browser_session
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.http import parse_etags

from petition.db import UNAVAILABLE, get_session, new_session
from petition.http import SECURITY_HEADERS, JsonBody, json_body
from petition.models import Campaign, Demand, Event
from petition.signing import counts, services

T = TypeVar("T")

# Rendered pages are larger (about 15 kB) and their keys include ?src= codes, which anyone can
# vary: they get a cache of their own, bounded to a few MB per process.
PAGE_CACHE_SIZE = 512


# Set when a value shown in this context came from before the database became unavailable,
# so that what is built from it (a count.json body, a rendered page) is not kept as new.
_gave_old = ContextVar("display_gave_old", default=False)


class _Old:
    """A value kept in the cache for one ttl that was read before the database became
    unavailable (a hit on it marks the context, as the load that gave it did)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Load:
    """One load of a key in progress: the threads that ask meanwhile wait for its value."""

    __slots__ = ("done", "fresh", "loaded", "stale", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.loaded = False  # set when load() returned (not when it raised)
        self.stale = False  # the key was forgotten while loading: give the value, don't keep it
        self.fresh = True  # False: the value is from before the database became unavailable
        self.value: Any = None


class DisplayCache:
    """A small thread-safe TTL cache; with ttl 0 every lookup loads.

    A key is loaded by one thread at a time: when an entry expires on a busy page, the other
    threads of the process that ask for it meanwhile wait for that one load instead of each
    running the same query (and rendering the same page) at once. If that load finds the
    database unavailable, the value last loaded for the key in the past stale_seconds is
    given (and kept for another ttl) instead of the error.
    """

    # How long a thread waits for another's load before loading itself (a stuck query must
    # not hold every thread that asks for the same page).
    WAIT_SECONDS = 5.0

    def __init__(self, ttl: float, maxsize: int, timer: Callable[[], float] = time.monotonic,
                 stale_seconds: float = 0) -> None:
        self.ttl = ttl
        self._cache: TTLCache[Hashable, Any] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl, timer=timer) if ttl > 0 else None
        )
        # The last value loaded from the database for each key, for when it cannot be reached.
        self._last: TTLCache[Hashable, Any] | None = (
            TTLCache(maxsize=maxsize, ttl=stale_seconds, timer=timer)
            if ttl > 0 and stale_seconds > 0 else None
        )
        self._lock = threading.Lock()
        self._loading: dict[Hashable, _Load] = {}

    @property
    def enabled(self) -> bool:
        return self._cache is not None

    def get(self, key: Hashable, load: Callable[[], T | None]) -> T | None:
        """The cached value of key, else load() (cached unless it is None).

        Threads asking for a key another thread is loading get that load's value.
        """
        if self._cache is None:
            return load()
        with self._lock:
            value = self._cache.get(key)
            if value is not None:
                if type(value) is _Old:
                    _gave_old.set(True)
                    return value.value
                return value
            running = self._loading.get(key)
            if running is None:
                running = self._loading[key] = _Load()
                leader = True
            else:
                leader = False
        if not leader:
            if not running.done.wait(self.WAIT_SECONDS):
                return load()  # the other load is stuck: read on our own (and keep nothing)
            if running.loaded:
                if not running.fresh:
                    _gave_old.set(True)
                return running.value
            return self.get(key, load)  # the other load failed: one of us tries again
        outer = _gave_old.set(False)
        try:
            try:
                value = load()  # outside the lock: a slow query must not block other keys
                running.fresh = not _gave_old.get()  # not built from old values
            except UNAVAILABLE:
                value = self.last(key)
                if value is None:
                    raise
                running.fresh = False  # shown until the next try, one ttl on
            running.value, running.loaded = value, True
        finally:
            _gave_old.reset(outer)
            with self._lock:
                if self._loading.get(key) is running:
                    del self._loading[key]
                if running.loaded and running.value is not None and not running.stale:
                    if not running.fresh:
                        self._cache[key] = _Old(running.value)
                    else:
                        self._cache[key] = running.value
                        if self._last is not None:
                            self._last[key] = running.value
            running.done.set()
        if not running.fresh:
            _gave_old.set(True)
        return value

    def last(self, key: Hashable) -> Any:
        """The value last loaded for key within stale_seconds, or None: what to show while
        the database cannot be reached."""
        if self._last is None:
            return None
        with self._lock:
            return self._last.get(key)

    def peek(self, key: Hashable) -> Any:
        """The cached value of key, or None (never loads)."""
        if self._cache is None:
            return None
        with self._lock:
            value = self._cache.get(key)
        if type(value) is _Old:
            _gave_old.set(True)
            return value.value
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep value for key (a no-op when the cache is off)."""
        if self._cache is not None:
            with self._lock:
                self._cache[key] = value
                if self._last is not None:
                    self._last[key] = value

    def pop(self, key: Hashable) -> None:
        """Forget key, if cached. A load of it under way is not kept either, and whoever asks
        next loads afresh rather than wait for that older read."""
        if self._cache is not None:
            with self._lock:
                self._cache.pop(key, None)
                if self._last is not None:
                    self._last.pop(key, None)
                running = self._loading.pop(key, None)
                if running is not None:
                    running.stale = True

    def clear(self) -> None:
        """Forget everything (tests, and changes made by this process that must show at once),
        including what loads under way read before the change."""
        if self._cache is not None:
            with self._lock:
                self._cache.clear()
                if self._last is not None:
                    self._last.clear()
                for running in self._loading.values():
                    running.stale = True
                self._loading.clear()

    def __len__(self) -> int:
        if self._cache is None:
            return 0
        with self._lock:
            self._cache.expire()
            return len(self._cache)


def init_app(app: Flask) -> None:
    """Create the application's display cache; edits made in this process clear it at once."""
    ttl = float(app.config["DISPLAY_CACHE_SECONDS"])
    stale = float(app.config["DISPLAY_STALE_SECONDS"])
    app.extensions["petition.display_cache"] = DisplayCache(
        ttl, int(app.config["DISPLAY_CACHE_SIZE"]), stale_seconds=stale)
    app.extensions["petition.page_cache"] = DisplayCache(ttl, PAGE_CACHE_SIZE, stale_seconds=stale)
    factory = app.extensions["petition.sessionmaker"]

    @event.listens_for(factory, "after_flush")
    def _note_edits(session: Session, _context: Any) -> None:
        # new/dirty/deleted still show what this flush wrote.
        if any(isinstance(o, Campaign | Demand | Event)
               for o in (*session.new, *session.dirty, *session.deleted)):
            session.info["display_stale"] = True

    @event.listens_for(factory, "after_commit")
    def _forget_edits(session: Session) -> None:
        # An organiser who edits or closes a demand, or changes an event (a kiosk shows what
        # its event leads to), sees the public page change at once (other processes within
        # DISPLAY_CACHE_SECONDS).
        if session.info.pop("display_stale", False):
            app.extensions["petition.display_cache"].clear()
            app.extensions["petition.page_cache"].clear()

    @event.listens_for(factory, "after_rollback")
    def _drop_note(session: Session) -> None:
        session.info.pop("display_stale", None)


def cache() -> DisplayCache:
    """The current application's display cache."""
    return current_app.extensions["petition.display_cache"]


@contextmanager
def _reading() -> Iterator[Session]:
    """A session to load what is cached: its own short one (so cached objects are detached
    and never attached to a request's session), or the request's when caching is off."""
    if not cache().enabled:
        yield get_session()
        return
    session = new_session()
    try:
        yield session
    finally:
        session.close()  # loaded objects stay loaded, detached and read-only


def kept(key: Hashable, load: Callable[[Session], T | None]) -> T | None:
    """What load(session) gives for key, from the display cache: read in a session of its
    own (so load() must load everything its value's users read), at most
    DISPLAY_CACHE_SECONDS old, and the last value while the database is unavailable."""

    def run() -> T | None:
        with _reading() as session:
            return load(session)

    return cache().get(key, run)


def public_demand(slug: str) -> Demand | None:
    """A published demand (with its campaign) to show, or None; never for writing."""
    return kept(("demand", slug), lambda session: services.get_public_demand(session, slug))


def public_campaign(slug: str) -> Campaign | None:
    """A published campaign with all its demands loaded, to show, or None; never for writing."""

    def load(session: Session) -> Campaign | None:
        campaign = services.get_public_campaign(session, slug)
        for demand in campaign.demands if campaign else ():
            _ = demand.campaign  # load it now (identity map): read after the session closes
        return campaign

    return kept(("campaign", slug), load)


def counts_of(demand_ids: list[int]) -> dict[int, counts.Count]:
    """The counts to show of several demands (at most DISPLAY_CACHE_SECONDS old), with one
    query for all those not cached."""
    store = cache()
    found = {i: store.peek(("count", i)) for i in demand_ids}
    missing = [i for i, value in found.items() if value is None]
    if missing:
        try:
            with _reading() as session:
                loaded = counts.get_many(session, missing)
        except UNAVAILABLE:
            last = {i: store.last(("count", i)) for i in missing}
            if any(value is None for value in last.values()):
                raise
            _gave_old.set(True)
            found.update(last)
            return found
        for i in missing:
            found[i] = loaded[i]
            store.put(("count", i), loaded[i])
    return found


def count(demand_id: int) -> counts.Count:
    """The demand's count to show (at most DISPLAY_CACHE_SECONDS old)."""
    found = kept(("count", demand_id), lambda session: counts.get(session, demand_id))
    assert found is not None  # every demand has a count, 0 if none was stored
    return found


def forget(*demands: Demand | services.ShownDemand) -> None:
    """Drop this process's cached counts of these demands (after a confirmation or withdrawal).

    Other processes catch up within DISPLAY_CACHE_SECONDS; this one (often the one the
    signer's next page view reaches, always with a single-process server) at once.
    """
    store = cache()
    for demand in demands:
        store.pop(("count", demand.id))
        store.pop(("count.json", demand.slug))
        store.pop(("counts.json", demand.campaign.slug))


def page(key: Hashable, render: Callable[[], str]) -> str:
    """A public page with a sign form, rendered once per key, language and cache lifetime.

    The page is the same for every visitor but for the form's CSRF token (one per browser
    session), so it is kept as the parts around that token and each visitor gets their own
    token put back in: the HTML is byte for byte what render() gives for them. Put what the
    page shows in key (a count, say), so a change makes a new entry. A visitor with a one-off
    notice waiting (a flashed message) gets a page rendered for them alone.
    """
    if browser_session.get("_flashes"):
        return render()
    token = generate_csrf()  # the visitor's token; render() puts the same one in the form
    return token.join(_kept(key, lambda: tuple(render().split(token))))


def same_for_everyone(key: Hashable, render: Callable[[], str]) -> str:
    """A public page with no form and nothing personal (the "check your email" page), rendered
    once per key, language and cache lifetime. A visitor with a one-off notice waiting (a
    flashed message) gets a page rendered for them alone."""
    if browser_session.get("_flashes"):
        return render()
    return _kept(key, render)


def _kept(key: Hashable, make: Callable[[], T]) -> T:
    """The page cache's entry for key in the visitor's language, made on a miss."""
    pages: DisplayCache = current_app.extensions["petition.page_cache"]
    found = pages.get((str(get_locale() or ""), key), make)
    assert found is not None  # make() always gives a page
    return found


def count_payload(demand: Demand, current: counts.Count) -> dict[str, object]:
    """What count.json says about one demand."""
    return {
        "slug": demand.slug,
        "signature_count": current.value,
        "goal": demand.goal,
        "updated_at": current.updated_at.isoformat() if current.updated_at else None,
    }


def count_json(slug: str) -> JsonBody | None:
    """The count.json document of a published demand, or None if there is no such demand."""

    def load() -> JsonBody | None:
        demand = public_demand(slug)
        if demand is None:
            return None
        return json_body(count_payload(demand, count(demand.id)))

    return cache().get(("count.json", slug), load)


def campaign_counts_json(slug: str) -> JsonBody | None:
    """The counts.json document of a published campaign (all its published demands), or None."""

    def load(session: Session) -> JsonBody | None:
        campaign = services.get_public_campaign(session, slug)
        if campaign is None:
            return None
        demands = services.public_demands(campaign)
        current = counts.get_many(session, [d.id for d in demands])
        return json_body({
            "slug": campaign.slug,
            "demands": [count_payload(d, current[d.id]) for d in demands],
        })

    return kept(("counts.json", slug), load)


POLL_MAX_AGE = 2  # seconds browsers and proxies may reuse a count poll's answer
_POLL_PATH = re.compile(r"^/(?:(petitions)/([^/]+)/count|(campaigns)/([^/]+)/counts)\.json$")


class PollFastPath:
    """WSGI middleware: answers count polls that are in the display cache without Flask.

    count.json and counts.json are the busiest URLs (every open page polls them). When the
    document is cached, building a Flask request context, session and routing costs more than
    the answer itself; this serves it with the same headers (ETag, Cache-Control, 304 on
    If-None-Match, the security headers). Anything else, and every miss, goes to the app,
    whose view fills the cache.
    """

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            match = _POLL_PATH.match(environ.get("PATH_INFO", ""))
            if match:
                key = ("count.json", match[2]) if match[1] else ("counts.json", match[4])
                document = self.app.extensions["petition.display_cache"].peek(key)
                if document is not None:
                    return _answer(document, environ, start_response)
        return self.wsgi_app(environ, start_response)


_POLL_HEADERS = [("Cache-Control", f"public, max-age={POLL_MAX_AGE}"), *SECURITY_HEADERS]


def _answer(document: JsonBody, environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The cached document as json_response() would answer it (200, or 304 to a matching
    If-None-Match), written straight to WSGI: building a Response object would be most of
    the cost of a poll."""
    etag = f'"{document.etag}"'
    headers = [("ETag", etag), *_POLL_HEADERS]
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match and parse_etags(if_none_match).contains_weak(document.etag):
        start_response("304 NOT MODIFIED", headers)
        return []
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(document.body))), *headers])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [document.body]
