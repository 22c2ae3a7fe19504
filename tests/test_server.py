"""Real servers: concurrent signing under gunicorn, SMTP delivery, outbox retries, PII at rest."""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.cookiejar
import logging
import random
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from petition import create_app, mail
from petition.models import OutboxMessage, OutboxStatus, Signature, SignatureStatus, utcnow
from petition.signing import counts
from tests.conftest import Outbox, base_config
from tests.helpers import make_campaign, sign_campaign, sign_petition
from tests.liveserver import free_port, live_server

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                   r'type="hidden" name="csrf_token" value="([^"]+)"')


# --- helpers -----------------------------------------------------------------------------------


class Collector:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)  # widens the window in which two workers overlap
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [m for _rcpt, m in self.received]

    def wait_for(self, n: int, timeout: float = 10) -> list[EmailMessage]:
        """Wait until at least n messages arrived (bounded); returns all of them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        messages = self.messages
        assert len(messages) >= n, f"expected {n} messages, got {len(messages)} in {timeout} s"
        return messages


@contextmanager
def smtp_server(port: int | None = None, *, delay: float = 0.0) -> Iterator[tuple[Collector, int]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), stopped on exit."""
    handler = Collector(delay)
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@contextmanager
def session_of(app: Flask) -> Iterator[Session]:
    """A session on the app's database inside an app context, closed afterwards."""
    with app.app_context():
        session: Session = app.extensions["petition.sessionmaker"]()
        try:
            yield session
        finally:
            session.close()


def outbox_rows(app: Flask) -> list[OutboxMessage]:
    with session_of(app) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def make_due(app: Flask) -> None:
    """Move every pending message's next attempt into the past."""
    with session_of(app) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .values(next_attempt_at=utcnow() - timedelta(minutes=1))
        )
        session.commit()


def run_worker_once(app: Flask) -> str:
    """`flask outbox-worker --once` through the CLI runner; returns its output."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = app.test_cli_runner().invoke(args=["outbox-worker", "--once"])
    finally:
        for sig, handler in saved.items():  # the command installs its own handlers
            signal.signal(sig, handler)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def wait_until(check: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def smtp_app(make_app: Callable[..., Flask], port: int, **extra: object) -> Flask:
    return make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                    SMTP_TIMEOUT=5, **extra)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # report the 303 itself, as a browser's network panel would


def browser() -> urllib.request.OpenerDirector:
    """A cookie-keeping HTTP client that does not follow redirects."""
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
    )


def fetch(opener: urllib.request.OpenerDirector, url: str, data: list[tuple[str, str]] | None = None
          ) -> tuple[int, str, str]:
    """GET (or POST form data); returns status, Location header and body."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=60) as response:
            return response.status, response.headers.get("Location", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Location", ""), exc.read().decode(errors="replace")


# --- 1. concurrency on a live server -----------------------------------------------------------


def submit_at_once(
    base: str, campaign_slug: str, demands: dict[str, tuple[int, str]],
    plan: list[tuple[str, str, str]],
) -> list[tuple[int, str] | BaseException]:
    """Each (person, email, target) in its own browser: load the form, then all POST together.

    target is a demand letter (its petition page) or several letters (the campaign form).
    """
    barrier = threading.Barrier(len(plan))
    results: list[tuple[int, str] | BaseException] = [RuntimeError("not run")] * len(plan)

    def submit(i: int) -> None:
        person, address, target = plan[i]
        opener = browser()
        try:
            page = f"{base}/campaigns/{campaign_slug}" if len(target) > 1 else \
                f"{base}/petitions/{demands[target][1]}"
            status, _location, html = fetch(opener, page)
            assert status == 200, status
            match = TOKEN.search(html)
            assert match, "no CSRF token"
            fields = [("csrf_token", match.group(1) or match.group(2)),
                      ("name", f"Signer {person}"), ("email", address), ("country", "DE"),
                      ("postcode", "10115")]
            if len(target) > 1:
                fields += [("demands", str(demands[letter][0])) for letter in target]
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            barrier.abort()
            results[i] = exc
            return
        barrier.wait(timeout=60)  # all POSTs leave together
        try:
            results[i] = fetch(opener, page + "/sign", fields)[:2]
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(plan))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a submission hung"
    return results


def test_concurrent_signing_and_confirming_on_a_live_server(make_app, database_url, tmp_path):
    app = make_app()
    with session_of(app) as session:
        campaign = make_campaign(session, demands=3)
        slug = campaign.slug
        demands = {letter: (d.id, d.slug) for letter, d in zip("ABC", campaign.demands, strict=True)}

    same = ["Same.Person@gmail.com", "sameperson@gmail.com", "SAME.PERSON+news@gmail.com",
            "s.a.m.e.person@googlemail.com", "SamePerson@GMail.com", "same.person+x@GOOGLEMAIL.com"]
    # (person, email as typed, demand letter or "AB" = the campaign form with both ticked)
    plan: list[tuple[str, str, str]] = []
    plan += [("same", same[i % len(same)], "A") for i in range(10)]
    plan += [("same", same[(i + 2) % len(same)], "B") for i in range(8)]
    plan += [("same", same[(i + 4) % len(same)], "AB") for i in range(6)]
    plan += [(f"p{i}", f"person.{i}@example.org", "A") for i in range(8)]
    plan += [(f"p{i}", f"Person.{i}@Example.org", "B") for i in range(4, 10)]  # p4-p7 on both
    plan += [(f"q{i}", f"q{i}@example.net", "AB") for i in range(6)]
    plan += [("q0", "Q0@EXAMPLE.NET", "A"), ("q1", "q1@example.net", "B")]  # overlap the form
    random.Random(7).shuffle(plan)
    # First-use costs (imports, template compilation) would spread the real burst out.
    warm_up = [(f"w{i}", f"warm.up.{i}@example.org", "C") for i in range(16)]

    expected: dict[int, set[str]] = {demand_id: set() for demand_id, _slug in demands.values()}
    for person, _address, target in plan + warm_up:
        for letter in target:
            expected[demands[letter][0]].add(person)

    with live_server(database_url, tmp_path, workers=2, threads=8) as base:
        log = tmp_path / "server.log"
        results = submit_at_once(base, slug, demands, warm_up) + \
            submit_at_once(base, slug, demands, plan)
        failures = [(person, r) for person, r in zip(warm_up + plan, results, strict=True)
                    if isinstance(r, BaseException) or r[0] != 303 or not r[1].endswith("/signed")]
        assert not failures, f"{failures}\n{log.read_text()[-4000:]}"

        # Exactly one signature per (demand, person): none lost, none doubled.
        with session_of(app) as session:
            rows = session.execute(
                select(Signature.demand_id, Signature.email_key, Signature.emails_sent,
                       Signature.status)
            ).all()
            outbox_statuses = Counter(session.scalars(select(OutboxMessage.status)))
        per_pair = Counter((r.demand_id, r.email_key) for r in rows)
        assert all(n == 1 for n in per_pair.values()), per_pair
        assert dict(Counter(r.demand_id for r in rows)) == \
            {d: len(people) for d, people in expected.items()}
        assert all(r.status == SignatureStatus.PENDING for r in rows)
        # 1-3 emails (the cap), or one past it once the cap stopped one (statements.py)
        assert all(1 <= r.emails_sent <= 3 + 1 for r in rows), [r.emails_sent for r in rows]
        assert set(outbox_statuses) == {OutboxStatus.SENT}, outbox_statuses

        messages = Outbox(tmp_path / "outbox").messages()
        assert len(messages) == outbox_statuses[OutboxStatus.SENT]
        # Sixteen of the same person's submissions name A and fourteen B: each signature gets
        # its 3 emails (the cap), some of which name both, so 3 to 6 emails in all, each to
        # the address as typed then, its domain lowercased ("s.a.m.e.person@..." is one).
        typed = {address.lower() for address in same}
        to_same = [m for m in messages if m["To"].lower() in typed]
        assert 3 <= len(to_same) <= 6, len(to_same)
        link = re.compile(rf"{re.escape(base)}(/signatures/confirm/\S+)")
        links = [match.group(1) for m in messages for match in [link.search(Outbox.text(m))]
                 if match]
        assert len(links) == len(messages)  # everything was pending, so every email confirms
        work = links + links[::3]  # a third of the links opened twice (mail scanners)
        random.Random(11).shuffle(work)

        confirm_barrier = threading.Barrier(32)
        statuses: list[int | BaseException] = []
        lock = threading.Lock()

        def confirm(chunk: list[str]) -> None:
            opener = browser()
            confirm_barrier.wait(timeout=60)
            for path in chunk:
                try:
                    status: int | BaseException = fetch(opener, base + path)[0]
                except BaseException as exc:  # noqa: BLE001 - reported below
                    status = exc
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=confirm, args=(work[i::32],)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a confirmation hung"
        assert statuses == [200] * len(work), \
            f"{Counter(map(str, statuses))}\n{log.read_text()[-4000:]}"
        # Polls are answered from a per-process cache at most DISPLAY_CACHE_SECONDS (1 s)
        # old: once that has passed since the last confirmation, every worker is exact.
        time.sleep(1.2)
        for letter, (demand_id, demand_slug) in demands.items():
            status, _location, body = fetch(browser(), f"{base}/petitions/{demand_slug}/count.json")
            assert status == 200
            assert f'"signature_count":{len(expected[demand_id])}' in body.replace(" ", ""), \
                (letter, body)

    with session_of(app) as session:
        confirmed = dict(
            session.execute(
                select(Signature.demand_id, func.count())
                .where(Signature.status == SignatureStatus.CONFIRMED)
                .group_by(Signature.demand_id)
            ).all()
        )
        assert confirmed == {d: len(people) for d, people in expected.items()}
        for demand_id in expected:
            assert counts.get(session, demand_id).value == confirmed[demand_id]
    result = app.test_cli_runner().invoke(args=["recount", "--check"])
    assert result.exit_code == 0, result.output
    assert "0 with drift" in result.output


# --- 2. mail through a real SMTP server --------------------------------------------------------


def test_confirmation_mail_through_real_smtp_server(make_app):
    with smtp_server() as (smtp, port):
        app = smtp_app(make_app, port, MAIL_DELIVERY="thread",
                       MAIL_FROM="Petitions <petitions@example.org>")
        with session_of(app) as session:
            demand = make_campaign(session).demands[0]
        client = app.test_client()
        response = sign_petition(client, demand, email="Smtp.Signer@example.org")
        assert response.status_code == 303

        [message] = smtp.wait_for(1)
        # The background thread records the delivery after the SMTP transaction.
        wait_until(lambda: outbox_rows(app)[0].status == OutboxStatus.SENT, what="delivery record")
        [(recipients, _msg)] = smtp.received
        assert recipients == ["Smtp.Signer@example.org"]

    assert message["From"] == "Petitions <petitions@example.org>"
    assert message["To"] == "Smtp.Signer@example.org"
    assert message["Subject"] == "Please confirm your signature"
    assert message["Message-ID"].endswith("@example.org>")
    assert message.is_multipart()
    assert message.get_body(("plain",)) is not None
    html = message.get_body(("html",))
    assert html is not None
    path = Outbox.link(message, "confirm")
    assert f'href="http://petition.test{path}"' in html.get_content()
    assert demand.title in Outbox.text(message)

    with session_of(app) as session:
        [signature] = session.scalars(select(Signature)).all()
        assert signature.status == SignatureStatus.PENDING
        assert counts.get(session, demand.id).value == 0
    page = client.get(path)
    assert page.status_code == 200
    assert "confirmed and counted" in page.text
    with session_of(app) as session:
        [signature] = session.scalars(select(Signature)).all()
        assert signature.status == SignatureStatus.CONFIRMED
        assert signature.confirmed_at is not None
        assert counts.get(session, demand.id).value == 1
    [row] = outbox_rows(app)
    assert row.recipient_enc is None and row.body_text == "" and row.body_html == ""


# --- 3. outbox worker: retries, concurrency, giving up -----------------------------------------


def test_outbox_worker_retries_after_smtp_outage(make_app):
    port = free_port()  # nothing listens here yet
    app = smtp_app(make_app, port)
    with session_of(app) as session:
        demand = make_campaign(session).demands[0]
    before = utcnow()
    response = sign_petition(app.test_client(), demand, email="retry.me@example.org")
    assert response.status_code == 303  # the SMTP failure does not fail the signing

    with session_of(app) as session:
        [signature] = session.scalars(select(Signature)).all()
        assert signature.status == SignatureStatus.PENDING
    [row] = outbox_rows(app)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.last_error and "refused" in row.last_error.lower(), row.last_error
    assert row.next_attempt_at > before + timedelta(seconds=10)
    assert row.recipient_enc is not None
    assert row.locked_until is None

    with smtp_server(port) as (smtp, _port):
        assert "0 messages sent" in run_worker_once(app)  # not due yet: backoff is respected
        assert smtp.messages == []
        make_due(app)
        assert "1 message sent" in run_worker_once(app)
        [message] = smtp.wait_for(1)
        assert "0 messages sent" in run_worker_once(app)
        time.sleep(0.2)
        assert len(smtp.messages) == 1  # delivered exactly once

    assert message["To"] == "retry.me@example.org"
    assert "/signatures/confirm/" in Outbox.text(message)
    [row] = outbox_rows(app)
    assert row.status == OutboxStatus.SENT
    assert row.attempts == 2
    assert row.last_error is None
    assert row.sent_at is not None
    assert row.recipient_enc is None
    assert row.body_text == "" and row.body_html == ""


def test_two_outbox_workers_deliver_each_message_once(make_app):
    with smtp_server(delay=0.02) as (smtp, port):
        app = smtp_app(make_app, port, MAIL_DELIVERY="worker")
        with session_of(app) as session:
            for i in range(20):
                mail.enqueue(session, kind="test", recipient=f"r{i}@example.org",
                             subject=f"Message {i}", text=f"Body {i}", html=f"<p>Body {i}</p>")
            session.commit()

        barrier = threading.Barrier(2)
        sent = [0, 0]
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with app.app_context():
                    barrier.wait(timeout=10)
                    for _ in range(50):  # bounded: 20 messages in batches of 3
                        delivered = mail.deliver(limit=3)
                        sent[n] += delivered
                        if delivered == 0:
                            break
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a worker hung"
        assert not errors, errors
        smtp.wait_for(20)
        time.sleep(0.2)  # any duplicate would arrive now
        messages = smtp.messages

    assert sum(sent) == 20, sent
    assert Counter(m["Subject"] for m in messages) == {f"Message {i}": 1 for i in range(20)}
    assert sorted(m["To"] for m in messages) == sorted(f"r{i}@example.org" for i in range(20))
    rows = outbox_rows(app)
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.SENT, 1)] * 20


def test_message_that_keeps_failing_is_given_up(make_app):
    port = free_port()  # nothing listens here
    app = smtp_app(make_app, port, OUTBOX_MAX_ATTEMPTS=3)
    with session_of(app) as session:
        demand = make_campaign(session).demands[0]
    assert sign_petition(app.test_client(), demand).status_code == 303
    assert outbox_rows(app)[0].attempts == 1

    make_due(app)
    assert "0 messages sent" in run_worker_once(app)
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 2)

    make_due(app)
    run_worker_once(app)
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)
    assert row.last_error
    assert row.recipient_enc is None

    make_due(app)
    with smtp_server(port) as (smtp, _port):
        assert "0 messages sent" in run_worker_once(app)  # a failed message is not retried
        assert smtp.messages == []
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)


class _RejectsRecipients(Collector):
    """Refuses every recipient the way Postfix does: its reply names the address."""

    async def handle_RCPT(self, _server: Any, _session: Any, _envelope: Any, address: str,  # noqa: N802
                          _options: Any) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


class _RejectsData(Collector):
    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        return f"554 5.7.1 Message to {envelope.rcpt_tos[0]} refused as spam"


@pytest.mark.parametrize("handler", [_RejectsRecipients, _RejectsData])
def test_a_refused_send_keeps_no_address_in_the_outbox_or_the_log(
        make_app, handler, caplog: pytest.LogCaptureFixture) -> None:
    """The recipient is stored encrypted; a server's reply naming it must not undo that."""
    controller = Controller(handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        app = smtp_app(make_app, controller.port)
        with session_of(app) as session:
            demand = make_campaign(session).demands[0]
        with caplog.at_level(logging.WARNING, logger="petition.mail"):
            response = sign_petition(app.test_client(), demand, email="hidden.person@example.org")
        assert response.status_code == 303
    finally:
        controller.stop()
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    code = ("SMTPRecipientsRefused: 550 5.1.1 <[address]>: Recipient address rejected"
            if handler is _RejectsRecipients
            else "SMTPDataError: 554 5.7.1 Message to [address] refused as spam")
    assert code in row.last_error, row.last_error
    assert "hidden" not in row.last_error and "example.org" not in row.last_error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert code in logged
    assert "hidden" not in logged and "example.org" not in logged


# --- 4. PII at rest ----------------------------------------------------------------------------


def test_database_file_holds_no_plaintext_pii(sqlite_template, tmp_path):
    """SQLite only by construction: it reads the raw database file (and its WAL)."""
    path = tmp_path / "pii.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}", tmp_path),
                     instance_path=str(tmp_path / "instance"))
    try:
        name = "Quillon Zwyxbarth"
        address = "Quillon.Zwyxbarth-Private@Example.org"
        postcode = "ZQ9 7XW"
        with session_of(app) as session:
            campaign = make_campaign(session, demands=2)
        client = app.test_client()
        outbox = Outbox(Path(app.config["OUTBOX_DIR"]))
        response = sign_campaign(client, campaign, [d.id for d in campaign.demands],
                                 name=name, email=address, postcode=postcode)
        assert response.status_code == 303
        assert client.get(outbox.link(outbox.last(), "confirm")).status_code == 200
        # A duplicate submission queues an "already signed" email: still nothing in clear.
        assert sign_petition(client, campaign.demands[0], name=name, email=address.upper(),
                             postcode=postcode).status_code == 303

        cipher = app.extensions["petition.cipher"]
        with session_of(app) as session:
            signatures = session.scalars(select(Signature)).all()
            assert len(signatures) == 2
            assert {s.status for s in signatures} == {SignatureStatus.CONFIRMED}
            assert {cipher.decrypt(s.name_enc, "signature.name") for s in signatures} == {name}
            assert {cipher.decrypt(s.postcode_enc, "signature.postcode") for s in signatures} == \
                {postcode}
            messages = session.scalars(select(OutboxMessage)).all()
        assert len(messages) == 2
        for message in messages:
            assert message.status == OutboxStatus.SENT
            assert message.recipient_enc is None
            stored = f"{message.subject} {message.body_text} {message.body_html}".lower()
            assert "zwyxbarth" not in stored and "@example.org" not in stored
        # Recent writes live in the WAL until a checkpoint: look at it while it exists.
        wal = Path(f"{path}-wal")
        contents = {"wal (open)": wal.read_bytes().lower()} if wal.exists() else {}
    finally:
        app.extensions["petition.engine"].dispose()

    needles = {address.lower(), address.split("@")[0].lower(), name.lower(), "zwyxbarth",
               postcode.lower(), postcode.replace(" ", "").lower()}
    files = [p for p in (path, wal, Path(f"{path}-journal")) if p.exists()]
    contents.update({p.name: p.read_bytes().lower() for p in files})
    assert b"demand number 1" in contents[path.name]  # the file does hold the data, in clear
    for file_name, data in contents.items():
        for needle in needles:
            assert needle.encode() not in data, f"{needle!r} found in {file_name}"
