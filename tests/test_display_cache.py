"""The per-process display cache (petition/signing/display.py), on SQLite and PostgreSQL.

Other tests run with DISPLAY_CACHE_SECONDS=0 so they can read what they just wrote; here the
cache is on, with a clock the test moves by hand.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event, func, inspect, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from petition.db import new_session
from petition.models import Demand, DemandStatus, Signature
from petition.signing import counts, display
from tests.helpers import csrf_token, make_campaign, sign_petition, signer


class Clock:
    """A monotonic clock the test advances."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cached_app(make_app, clock: Clock) -> Flask:  # noqa: ANN001
    app = make_app(DISPLAY_CACHE_SECONDS=1.0)
    app.extensions["petition.display_cache"] = display.DisplayCache(1.0, 64, timer=clock)
    app.extensions["petition.page_cache"] = display.DisplayCache(1.0, 64, timer=clock)
    return app


@contextmanager
def session_of(app: Flask) -> Iterator[Session]:
    with app.app_context():
        session = new_session()
        try:
            yield session
        finally:
            session.close()


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    engine = app.extensions["petition.engine"]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _demand(app: Flask, **kwargs: object):  # noqa: ANN202
    with session_of(app) as session:
        return make_campaign(session, **kwargs).demands[0]  # type: ignore[arg-type]


def test_count_json_is_served_from_cache_until_it_expires(cached_app: Flask, clock: Clock) -> None:
    demand = _demand(cached_app)
    client = cached_app.test_client()
    url = f"/petitions/{demand.slug}/count.json"
    assert client.get(url).json["signature_count"] == 0

    with session_of(cached_app) as session:
        counts.add(session, demand.id, 5)
        session.commit()
    with statements(cached_app) as sql:
        stale = client.get(url)
    assert stale.json["signature_count"] == 0  # still inside the second
    assert sql == []  # a cache hit costs no query

    clock.now += 1.5
    fresh = client.get(url)
    assert fresh.json["signature_count"] == 5
    assert fresh.headers["ETag"] != stale.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": fresh.headers["ETag"]}).status_code == 304


def test_petition_page_hit_runs_no_query(cached_app: Flask, clock: Clock) -> None:
    demand = _demand(cached_app)
    client = cached_app.test_client()
    page = f"/petitions/{demand.slug}"
    assert client.get(page).status_code == 200
    with statements(cached_app) as sql:
        again = cached_app.test_client().get(page)
    assert again.status_code == 200 and demand.title in again.text
    assert sql == []

    with session_of(cached_app) as session:
        counts.add(session, demand.id, 1234)
        session.commit()
    assert "1,234" not in client.get(page).text  # within the second
    clock.now += 2
    assert "1,234" in client.get(page).text


def test_confirming_shows_the_exact_count_and_refreshes_this_process(
    cached_app: Flask, outbox  # noqa: ANN001
) -> None:
    demand = _demand(cached_app)
    client = cached_app.test_client()
    poll = f"/petitions/{demand.slug}/count.json"
    assert client.get(poll).json["signature_count"] == 0  # cached now
    assert "0" in client.get(f"/petitions/{demand.slug}").text
    assert sign_petition(client, demand).status_code == 303
    confirmed = client.get(outbox.link(outbox.last(), "confirm"))
    assert "confirmed and counted" in confirmed.text
    assert "It now has 1 signature." in confirmed.text
    # This process forgot its cached counts of the demand: no second of staleness here.
    assert client.get(poll).json["signature_count"] == 1
    assert '<span class="count-value" data-count>1</span>' in client.get(f"/petitions/{demand.slug}").text

    withdraw = outbox.link(outbox.last(), "withdraw")
    response = client.post(withdraw, data={"csrf_token": csrf_token(client, withdraw)})
    assert response.status_code == 303
    assert client.get(poll).json["signature_count"] == 0


def test_cached_demand_is_detached_and_read_only(cached_app: Flask) -> None:
    demand = _demand(cached_app)
    with cached_app.test_request_context():
        shown = display.public_demand(demand.slug)
        assert shown is not None and inspect(shown).detached
        assert shown.campaign.title == "Test campaign"  # loaded with it, no lazy load
        assert display.public_demand(demand.slug) is shown


def test_signing_checks_the_database_not_the_cache(cached_app: Flask) -> None:
    demand = _demand(cached_app)
    client = cached_app.test_client()
    assert "Sign this petition" in client.get(f"/petitions/{demand.slug}").text  # now cached

    # Closed by another process (a plain UPDATE: this process's cache does not hear of it).
    with session_of(cached_app) as session:
        session.execute(update(Demand).where(Demand.id == demand.id)
                        .values(status=DemandStatus.CLOSED))
        session.commit()
    response = sign_petition(client, demand)  # the page (from cache) still shows the form
    assert response.status_code == 409
    assert "no longer accepts signatures" in response.text
    with session_of(cached_app) as session:
        assert session.scalar(select(func.count()).select_from(Signature)) == 0


def test_unknown_slugs_are_not_cached(cached_app: Flask) -> None:
    client = cached_app.test_client()
    store = cached_app.extensions["petition.display_cache"]
    for i in range(20):
        assert client.get(f"/petitions/made-up-{i}/count.json").status_code == 404
        assert client.get(f"/petitions/made-up-{i}").status_code == 404
    assert len(store) == 0
    # A demand published after a 404 shows at once.
    demand = _demand(cached_app)
    assert client.get(f"/petitions/{demand.slug}/count.json").status_code == 200


def test_campaign_counts_json_is_cached_too(cached_app: Flask, clock: Clock) -> None:
    with session_of(cached_app) as session:
        campaign = make_campaign(session)
        slug, first_id = campaign.slug, campaign.demands[0].id
    client = cached_app.test_client()
    url = f"/campaigns/{slug}/counts.json"
    assert [d["signature_count"] for d in client.get(url).json["demands"]] == [0, 0, 0]
    with session_of(cached_app) as session:
        counts.add(session, first_id, 2)
        session.commit()
    with statements(cached_app) as sql:
        assert client.get(url).json["demands"][0]["signature_count"] == 0
    assert sql == []
    clock.now += 1.1
    assert client.get(url).json["demands"][0]["signature_count"] == 2


def test_size_is_bounded_and_zero_seconds_turns_it_off(clock: Clock) -> None:
    bounded = display.DisplayCache(10, 3, timer=clock)
    for i in range(10):
        assert bounded.get(i, lambda i=i: f"value {i}") == f"value {i}"
    assert len(bounded) == 3

    loads: list[int] = []
    off = display.DisplayCache(0, 3)
    assert not off.enabled
    for _ in range(3):
        off.get("key", lambda: loads.append(1) or "value")
    assert len(loads) == 3 and len(off) == 0


def test_configuration_reaches_the_cache(make_app) -> None:  # noqa: ANN001
    app = make_app(DISPLAY_CACHE_SECONDS=2.5, DISPLAY_CACHE_SIZE=7)
    store = app.extensions["petition.display_cache"]
    assert store.enabled and store.ttl == 2.5
    assert not make_app().extensions["petition.display_cache"].enabled  # tests default: off


def _flask_requests(app: Flask) -> list[str]:
    """Paths that reached Flask (the poll fast path answers before it)."""
    seen: list[str] = []

    @app.before_request
    def _count() -> None:
        from flask import request

        seen.append(request.path)

    return seen


def test_cached_polls_skip_flask_with_the_same_headers(cached_app: Flask, clock: Clock) -> None:
    reached = _flask_requests(cached_app)
    demand = _demand(cached_app)
    client = cached_app.test_client()
    url = f"/petitions/{demand.slug}/count.json"
    by_flask = client.get(url)
    fast = client.get(url)
    assert reached == [url]  # the second poll never reached Flask
    assert fast.status_code == 200 and fast.data == by_flask.data
    for header in ("Content-Type", "Content-Length", "ETag", "Cache-Control",
                   "Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options",
                   "X-Frame-Options", "Permissions-Policy"):
        assert fast.headers.get(header) == by_flask.headers.get(header), header
    assert "Set-Cookie" not in fast.headers

    unchanged = client.get(url, headers={"If-None-Match": fast.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert "ETag" in unchanged.headers and "Content-Security-Policy" in unchanged.headers
    etag = fast.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).data == by_flask.data
    head = client.head(url)
    assert head.status_code == 200 and head.data == b""
    assert client.post(url).status_code == 405  # other methods go to Flask
    assert reached == [url, url]

    clock.now += 1.5  # expired: Flask answers (and refills) again
    client.get(url)
    assert reached == [url, url, url]


def test_fast_path_serves_campaign_counts_and_never_unknown_slugs(cached_app: Flask) -> None:
    reached = _flask_requests(cached_app)
    with session_of(cached_app) as session:
        slug = make_campaign(session).slug
    client = cached_app.test_client()
    url = f"/campaigns/{slug}/counts.json"
    first, second = client.get(url), client.get(url)
    assert second.json == first.json and reached == [url]
    for bad in ("/petitions/nope/count.json", "/petitions/nope/count.json",
                f"/campaigns/{slug}/count.json", f"/petitions/{slug}/counts.json"):
        assert client.get(bad).status_code == 404
    assert len(reached) == 5  # every miss went to Flask


def test_edits_committed_in_this_process_show_at_once(cached_app: Flask) -> None:
    demand = _demand(cached_app)
    client = cached_app.test_client()
    page = f"/petitions/{demand.slug}"
    assert "Demand number 1" in client.get(page).text  # cached now

    with session_of(cached_app) as session:  # an edit that is rolled back changes nothing
        session.get(Demand, demand.id).title = "Never saved"  # type: ignore[union-attr]
        session.flush()
        session.rollback()
    store = cached_app.extensions["petition.display_cache"]
    assert len(store) > 0

    with session_of(cached_app) as session:  # a counter update is not an edit: cache kept
        counts.add(session, demand.id, 3)
        session.commit()
    assert len(store) > 0 and "Demand number 1" in client.get(page).text

    with session_of(cached_app) as session:  # an organiser renames it: shown at once
        session.get(Demand, demand.id).title = "Renamed by the organiser"  # type: ignore[union-attr]
        session.commit()
    text = client.get(page).text
    assert "Renamed by the organiser" in text and "Never saved" not in text

    with session_of(cached_app) as session:  # and closes it: the form goes at once
        session.get(Demand, demand.id).status = DemandStatus.CLOSED  # type: ignore[union-attr]
        session.commit()
    assert "Signing is closed" in client.get(page).text


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match[1]


def test_cached_page_gives_each_visitor_their_own_token(cached_app: Flask, outbox) -> None:  # noqa: ANN001
    demand = _demand(cached_app)
    page = f"/petitions/{demand.slug}"
    first, second = cached_app.test_client(), cached_app.test_client()
    html_1 = first.get(page).text
    with statements(cached_app) as sql:
        html_2 = second.get(page).text  # a hit: no query, no rendering
    assert sql == []
    token_1, token_2 = _token(html_1), _token(html_2)
    assert token_1 != token_2
    assert html_1.replace(token_1, "TOKEN") == html_2.replace(token_2, "TOKEN")
    assert html_2.count(token_2) == 1

    # Each token works in its own browser session and in no other.
    swapped = second.post(f"{page}/sign", data={"csrf_token": token_1, **signer(email="b@example.org")})
    assert swapped.status_code == 400 and "open for too long" in swapped.text
    assert "b@example.org" in swapped.text  # the typed details are kept
    ok = second.post(f"{page}/sign", data={"csrf_token": token_2, **signer(email="b@example.org")})
    assert ok.status_code == 303
    assert first.post(f"{page}/sign", data={"csrf_token": token_1, **signer()}).status_code == 303
    assert len(outbox.messages()) == 2


def test_cached_page_is_the_page_rendered_without_the_cache(
    cached_app: Flask, make_app  # noqa: ANN001
) -> None:
    demand = _demand(cached_app)
    page = f"/petitions/{demand.slug}?src=stall-3"
    cached_app.test_client().get(page)
    html = cached_app.test_client().get(page).text  # from the cache
    plain_app = make_app(DATABASE_URL=cached_app.config["DATABASE_URL"])
    assert not plain_app.extensions["petition.page_cache"].enabled
    plain = plain_app.test_client().get(page).text
    assert html.replace(_token(html), "T") == plain.replace(_token(plain), "T")


def test_cached_page_keeps_src_codes_apart(cached_app: Flask) -> None:
    demand = _demand(cached_app)
    page = f"/petitions/{demand.slug}"
    client = cached_app.test_client()
    for _ in range(2):  # the second round comes from the cache
        assert 'name="src" type="hidden" value="stall-3"' in client.get(f"{page}?src=stall-3").text
        assert 'name="src" type="hidden" value="poster-a4"' in client.get(f"{page}?src=poster-a4").text
        assert 'name="src" type="hidden" value=""' in client.get(page).text
    # ?src= is cleaned before it is part of the key: a hostile value is neither shown nor kept
    html = client.get(f'{page}?src="><script>x</script>').text
    assert "<script>x" not in html


def test_cached_page_still_shows_a_visitors_notice(cached_app: Flask) -> None:
    demand = _demand(cached_app)
    page = f"/petitions/{demand.slug}"
    cached_app.test_client().get(page)  # cached, without a notice
    client = cached_app.test_client()
    with client.session_transaction() as browser:
        browser["_flashes"] = [("message", "A notice for this visitor only")]
    assert "A notice for this visitor only" in client.get(page).text
    assert "A notice for this visitor only" not in client.get(page).text  # shown once
    assert "A notice for this visitor only" not in cached_app.test_client().get(page).text



@pytest.mark.parametrize("kind", ["petition", "campaign"])
def test_check_your_email_page_is_rendered_once_and_is_the_uncached_page(
    cached_app: Flask, make_app, clock: Clock, kind: str  # noqa: ANN001
) -> None:
    from flask import template_rendered

    with session_of(cached_app) as session:
        campaign = make_campaign(session, demands=2)
        demand, other = campaign.demands
        page = (f"/petitions/{demand.slug}/signed" if kind == "petition"
                else f"/campaigns/{campaign.slug}/signed")
        other_page = f"/petitions/{other.slug}/signed"
        campaign_slug, demand_slug = campaign.slug, demand.slug
    rendered: list[str] = []

    def record(_app, template, **_extra) -> None:  # noqa: ANN001
        rendered.append(template.name)

    template_rendered.connect(record, cached_app)
    try:
        first = cached_app.test_client().get(page)
        second = cached_app.test_client().get(page)  # another visitor, from the cache
        with statements(cached_app) as sql:
            third = cached_app.test_client().get(page)
        assert rendered.count("signing/signed.html") == 1 and sql == []
        # Another demand's page is its own entry (its "Back to the petition" link).
        assert f'href="/petitions/{other.slug}"' in cached_app.test_client().get(other_page).text
        assert rendered.count("signing/signed.html") == 2
        clock.now += 2  # expired: rendered again
        cached_app.test_client().get(page)
        assert rendered.count("signing/signed.html") == 3
    finally:
        template_rendered.disconnect(record, cached_app)
    assert first.status_code == second.status_code == third.status_code == 200
    assert first.data == second.data == third.data
    assert "check your email" in first.text
    assert f'href="/campaigns/{campaign_slug}"' in first.text
    assert (f'href="/petitions/{demand_slug}"' in first.text) is (kind == "petition")
    plain_app = make_app(DATABASE_URL=cached_app.config["DATABASE_URL"])
    assert plain_app.test_client().get(page).data == first.data


def test_check_your_email_page_still_shows_a_visitors_notice(cached_app: Flask) -> None:
    demand = _demand(cached_app)
    page = f"/petitions/{demand.slug}/signed"
    cached_app.test_client().get(page)  # cached, without a notice
    client = cached_app.test_client()
    with client.session_transaction() as browser:
        browser["_flashes"] = [("message", "A notice for this visitor only")]
    assert "A notice for this visitor only" in client.get(page).text
    assert "A notice for this visitor only" not in client.get(page).text  # shown once
    assert "A notice for this visitor only" not in cached_app.test_client().get(page).text


def test_check_your_email_page_of_an_unknown_slug_is_404(cached_app: Flask) -> None:
    _demand(cached_app)
    client = cached_app.test_client()
    assert client.get("/petitions/no-such-demand/signed").status_code == 404
    assert client.get("/campaigns/no-such-campaign/signed").status_code == 404


def test_campaign_page_is_cached_with_each_visitors_token(
    cached_app: Flask, clock: Clock, outbox  # noqa: ANN001
) -> None:
    with session_of(cached_app) as session:
        campaign = make_campaign(session, demands=3)
        slug, ids = campaign.slug, [d.id for d in campaign.demands]
    page = f"/campaigns/{slug}?src=rally"
    first, second = cached_app.test_client(), cached_app.test_client()
    html_1 = first.get(page).text
    with statements(cached_app) as sql:
        html_2 = second.get(page).text
    assert sql == []  # campaign, counts and page all from the cache
    token_1, token_2 = _token(html_1), _token(html_2)
    assert token_1 != token_2 and html_1.replace(token_1, "T") == html_2.replace(token_2, "T")
    assert 'name="src" type="hidden" value="rally"' in html_2

    # Signing from the cached page: the INSERT checks the database, the email names both.
    response = second.post(f"/campaigns/{slug}/sign", data={
        "csrf_token": token_2, "demands": [str(ids[0]), str(ids[2])], **signer()})
    assert response.status_code == 303
    assert "Demand number 1" in outbox.text(outbox.last()) and "Demand number 3" in outbox.text(outbox.last())
    assert second.get(outbox.link(outbox.last(), "confirm")).status_code == 200
    # This process forgot those counts: the campaign page shows them at once.
    html = second.get(f"/campaigns/{slug}").text
    assert html.count('<span class="count-value" data-count>1</span>') == 2

    with session_of(cached_app) as session:  # closed behind the app: the page catches up
        session.execute(update(Demand).where(Demand.id == ids[1]).values(status=DemandStatus.CLOSED))
        session.commit()
    assert f'id="demands-{ids[1]}"' in second.get(page).text  # within the second
    clock.now += 2
    assert f'id="demands-{ids[1]}"' not in second.get(page).text


# One load per key at a time (no stampede when a busy entry expires).

def _ask_at_once(store: display.DisplayCache, key: str, load, threads: int = 8) -> list:  # noqa: ANN001
    """What threads asking store for key at the same moment get."""
    answers: list = [None] * threads
    start = threading.Barrier(threads)

    def ask(i: int) -> None:
        start.wait()
        try:
            answers[i] = store.get(key, load)
        except RuntimeError as exc:
            answers[i] = exc

    workers = [threading.Thread(target=ask, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    return answers


def test_threads_asking_at_once_share_one_load(clock: Clock) -> None:
    store = display.DisplayCache(1.0, 8, timer=clock)
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        time.sleep(0.2)  # every other thread asks while this load runs
        return "page"

    assert _ask_at_once(store, "key", load) == ["page"] * 8
    assert len(loads) == 1
    clock.now += 1.1  # expired: the next wave loads once more
    assert _ask_at_once(store, "key", load) == ["page"] * 8
    assert len(loads) == 2


def test_a_failed_load_lets_the_waiting_threads_load_themselves(clock: Clock) -> None:
    store = display.DisplayCache(1.0, 8, timer=clock)
    calls: list[int] = []
    lock = threading.Lock()

    def load() -> str:
        with lock:
            calls.append(1)
            first = len(calls) == 1
        if first:
            time.sleep(0.2)
            raise RuntimeError("database went away")
        return "page"

    answers = _ask_at_once(store, "key", load, threads=4)
    assert answers.count("page") == 3  # the three that waited loaded on their own
    assert [str(a) for a in answers if a != "page"] == ["database went away"]
    assert store.peek("key") == "page"


def test_a_stuck_load_does_not_hold_the_others(clock: Clock) -> None:
    store = display.DisplayCache(1.0, 8, timer=clock)
    store.WAIT_SECONDS = 0.05
    release = threading.Event()
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        if len(calls) == 1:
            release.wait(5)
            return "slow"
        return "fast"

    first = threading.Thread(target=store.get, args=("key", load))
    first.start()
    while not calls:
        time.sleep(0.001)
    assert store.get("key", load) == "fast"  # waited 0.05 s, then loaded on its own
    release.set()
    first.join(5)


@pytest.mark.parametrize("forget", ["pop", "clear"])
def test_a_load_under_way_when_the_key_is_forgotten_is_not_kept(clock: Clock, forget: str) -> None:
    # An organiser's edit commits (clear) or a confirmation lands (pop) while another thread
    # is reading the old value: that value must not be cached after the change.
    store = display.DisplayCache(1.0, 8, timer=clock)
    reading, release = threading.Event(), threading.Event()

    def old() -> str:
        reading.set()
        release.wait(5)
        return "before the edit"

    answer: list[str | None] = []
    loader = threading.Thread(target=lambda: answer.append(store.get("key", old)))
    loader.start()
    reading.wait(5)
    store.pop("key") if forget == "pop" else store.clear()
    # Whoever asks now (the organiser's next page, the confirmer's count) reads afresh
    # at once, without waiting for the older read.
    assert store.get("key", lambda: "after the edit") == "after the edit"
    release.set()
    loader.join(5)
    assert answer == ["before the edit"]  # the thread that read it still shows it
    assert store.peek("key") == "after the edit"  # the older read did not replace it


# --- while the database cannot be reached ------------------------------------------------------


def _down() -> str:
    raise OperationalError("SELECT ...", {}, Exception("connection refused"))


def test_while_the_database_is_down_the_last_value_is_shown_for_a_while(clock: Clock) -> None:
    store = display.DisplayCache(1.0, 8, timer=clock, stale_seconds=300)
    assert store.get("key", lambda: "read at 1000") == "read at 1000"
    clock.now += 2  # expired
    assert store.get("key", _down) == "read at 1000"
    clock.now += 0.5  # kept for one more lifetime: no new try meanwhile
    assert store.get("key", lambda: pytest.fail("tried again within the lifetime")) == "read at 1000"
    clock.now += 1
    assert store.get("key", lambda: "read at 1003.5") == "read at 1003.5"  # back
    clock.now += 2
    assert store.get("key", _down) == "read at 1003.5"
    clock.now += 300  # too old now: the error is the answer
    with pytest.raises(OperationalError):
        store.get("key", _down)
    with pytest.raises(OperationalError):
        store.get("never read", _down)
    with pytest.raises(RuntimeError):  # only an unavailable database, not any failure
        store.get("key", lambda: (_ for _ in ()).throw(RuntimeError("a bug")))


def test_an_old_value_stays_no_longer_than_stale_seconds_however_long_the_outage(clock: Clock) -> None:
    store = display.DisplayCache(1.0, 8, timer=clock, stale_seconds=10)
    store.get("key", lambda: "read")
    for _ in range(9):  # shown each time it is asked again, but not kept as if read again
        clock.now += 1.1
        assert store.get("key", _down) == "read"
    clock.now += 1.1
    with pytest.raises(OperationalError):
        store.get("key", _down)


@pytest.mark.parametrize("forget", ["pop", "clear"])
def test_a_forgotten_key_has_no_old_value_to_show(clock: Clock, forget: str) -> None:
    # An edit (clear) or a confirmation (pop) made here: what was shown before must not come
    # back during an outage (an organiser may have taken something down).
    store = display.DisplayCache(1.0, 8, timer=clock, stale_seconds=300)
    store.get("key", lambda: "before the edit")
    store.pop("key") if forget == "pop" else store.clear()
    with pytest.raises(OperationalError):
        store.get("key", _down)


def test_what_is_built_from_old_values_is_not_kept_as_new(clock: Clock) -> None:
    # A count.json body or a page made from an old count is shown, but while the database is
    # down it must not become the "last value read" that outlives stale_seconds.
    store = display.DisplayCache(1.0, 8, timer=clock, stale_seconds=10)
    store.get("count", lambda: 7)
    store.get("page", lambda: f"count {store.get('count', _down)}")
    clock.now += 5
    assert store.get("page", lambda: f"count {store.get('count', _down)}") == "count 7"
    for _ in range(3):  # the page is rebuilt from the old count (cached, then not)
        clock.now += 1.1
        assert store.get("page", lambda: f"count {store.get('count', _down)}") == "count 7"
    clock.now += 9  # both read over 10 s ago (the page was built since, from the old count)
    with pytest.raises(OperationalError):
        store.get("page", lambda: f"count {store.get('count', _down)}")


def test_without_stale_seconds_the_error_is_the_answer(clock: Clock) -> None:
    store = display.DisplayCache(1.0, 8, timer=clock)
    store.get("key", lambda: "read")
    clock.now += 2
    with pytest.raises(OperationalError):
        store.get("key", _down)
