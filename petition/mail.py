"""Transactional outbox: messages written with the data, delivered after commit, retried."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from petition.db import UNAVAILABLE, begin_write, new_session, unavailable_reason
from petition.models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

LOCK_SECONDS = 120
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


_INSERT_MESSAGE = insert(OutboxMessage).returning(OutboxMessage.id)


def enqueue(
    session: Session, *, kind: str, recipient: str, subject: str, text: str, html: str
) -> int:
    """Add a message to the outbox in the caller's transaction; returns its id."""
    return insert_message(session, message_row(kind=kind, recipient=recipient, subject=subject,
                                                text=text, html=html))


def insert_message(session: Session, row: dict[str, Any]) -> int:
    """Insert a message_row() in the caller's transaction; returns its id. A plain INSERT ...
    RETURNING on the session's connection (no ORM unit of work, the statement built once)."""
    return session.connection().execute(_INSERT_MESSAGE, row).scalar_one()


def message_row(
    *, kind: str, recipient: str, subject: str, text: str, html: str,
    links: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """The outbox_messages columns of a new pending message (recipient encrypted)."""
    cipher = current_app.extensions["petition.cipher"]
    now = utcnow()
    return {
        "kind": kind,
        "recipient_enc": cipher.encrypt(recipient, "outbox.recipient"),
        "subject": subject,
        "body_text": text,
        "body_html": html,
        "links": links,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def dispatch_after_commit(message_ids: list[int]) -> None:
    """Deliver just-committed messages now, per MAIL_DELIVERY (thread, inline or worker)."""
    if not message_ids:
        return
    mode = current_app.config["MAIL_DELIVERY"]
    if mode == "inline":
        try:
            deliver(message_ids)
        except Exception:  # the data is committed; the worker retries what is left pending
            log.exception("inline delivery failed")
    elif mode == "thread":
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        _get_executor().submit(_deliver_in_app, app, list(message_ids))


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox")
        return _executor


def _deliver_in_app(app: Flask, message_ids: list[int]) -> None:
    with app.app_context():
        try:
            deliver(message_ids)
        except Exception:  # the worker retries whatever is left pending
            log.exception("delivery after commit failed")


def deliver(message_ids: list[int] | None = None, *, limit: int = 50) -> int:
    """Claim and send due messages (the given ids, or any due ones); returns how many were sent."""
    sent = 0
    session = new_session()
    try:
        for message_id in _claim(session, message_ids, limit):
            error: Exception | None = None
            try:
                message = session.get_one(OutboxMessage, message_id)
                email = _build(message)
                kind = message.kind
                session.rollback()  # hold no transaction (or SQLite lock) while talking SMTP
                send_now(email, message_id, kind)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                session.rollback()
                error = exc
            begin_write(session)
            message = session.get_one(OutboxMessage, message_id)
            if error is None:
                _record_success(message)
                sent += 1
            else:
                _record_failure(message, error)
            session.commit()
    finally:
        session.close()
    return sent


def _claim(session: Session, message_ids: list[int] | None, limit: int) -> list[int]:
    """Lock due messages for this process; safe with many workers (SKIP LOCKED + lease)."""
    now = utcnow()
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if message_ids is not None:
        query = query.where(OutboxMessage.id.in_(message_ids))
    else:
        query = query.where(OutboxMessage.next_attempt_at <= now)
    claimed: list[int] = []
    begin_write(session)
    for message_id in session.scalars(query).all():
        result = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == OutboxStatus.PENDING,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            )
            .values(locked_until=now + timedelta(seconds=LOCK_SECONDS))
        )
        if result.rowcount == 1:
            claimed.append(message_id)
    session.commit()
    return claimed


def _record_success(message: OutboxMessage) -> None:
    message.status = OutboxStatus.SENT
    message.sent_at = utcnow()
    message.attempts += 1
    message.locked_until = None
    message.last_error = None
    # Minimal data: once delivered, the address and the links are no longer kept.
    message.recipient_enc = None
    message.body_text = ""
    message.body_html = ""
    message.links = None


# An email address in an error's text (a server's reply often names the recipient).
_ADDRESS = re.compile(r"[^\s<>()\[\]{}'\",;:]+@[^\s<>()\[\]{}'\",;:]+")


def reply_text(code: int, text: bytes | str) -> str:
    """An SMTP server's reply as one line: "550 5.1.1 No such user"."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return f"{code} {text}".strip()


def failure_text(exc: BaseException) -> str:
    """What is kept and logged of a failed send: the error's kind and the server's reply,
    with every email address replaced by [address], so the recipient stays encrypted."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):  # its text is {address: reply}
        detail = "; ".join(reply_text(code, text) for code, text in exc.recipients.values())
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = reply_text(exc.smtp_code, exc.smtp_error)
    else:
        detail = str(exc)
    return _ADDRESS.sub("[address]", f"{type(exc).__name__}: {detail}")[:500]


def _record_failure(message: OutboxMessage, exc: Exception) -> None:
    message.attempts += 1
    message.locked_until = None
    message.last_error = failure_text(exc)
    if message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        message.status = OutboxStatus.FAILED
        message.recipient_enc = None
        message.body_text = ""  # the links in it are capabilities; keep nothing
        message.body_html = ""
        message.links = None
        log.error("giving up on outbox message %s after %s attempts", message.id, message.attempts)
    else:
        delay = min(30 * 2 ** (message.attempts - 1), 6 * 3600)
        message.next_attempt_at = utcnow() + timedelta(seconds=delay)
        log.warning("outbox message %s failed (%s); retry in %ss", message.id,
                    message.last_error, delay)


def _build(message: OutboxMessage) -> EmailMessage:
    cipher = current_app.extensions["petition.cipher"]
    recipient = cipher.decrypt(message.recipient_enc, "outbox.recipient")
    if not recipient:
        raise ValueError("message has no recipient")
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = recipient
    email["Subject"] = message.subject
    email["Message-ID"] = make_msgid(domain=from_domain())
    email["Auto-Submitted"] = "auto-generated"
    text, html = message.body_text, message.body_html
    if message.links:
        from petition.signing import emails  # here: petition.signing imports this module

        text, html = emails.fill(text, html, message.links, message.created_at)
    email.set_content(text)
    if html:
        email.add_alternative(html, subtype="html")
    return email


def from_domain() -> str:
    """The domain of PETITION_MAIL_FROM (for Message-IDs)."""
    address = current_app.config["MAIL_FROM"].rsplit("<", 1)[-1].rstrip(">")
    return address.rpartition("@")[2] or "localhost"


def send_now(email: EmailMessage, message_id: int, kind: str) -> None:
    """Send through the configured SMTP server (or the console transport without one)."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        _send_to_console(email, message_id, kind)
        return
    host, port, timeout = config["SMTP_HOST"], int(config["SMTP_PORT"]), config["SMTP_TIMEOUT"]
    smtp: smtplib.SMTP
    if config["SMTP_SSL"]:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if config["SMTP_STARTTLS"] and not config["SMTP_SSL"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
        smtp.send_message(email)


def _send_to_console(email: EmailMessage, message_id: int, kind: str) -> None:
    """Development transport: print the plain-text message and keep a copy in OUTBOX_DIR."""
    folder = Path(current_app.config["OUTBOX_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{message_id:08d}-{kind}.eml"
    path.write_bytes(bytes(email))
    body = email.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    rule = "-" * 72
    print(
        f"\n{rule}\nEmail to {email['To']}: {email['Subject']}\n{rule}\n"
        f"{text}\n{rule}\n(saved as {path})\n",
        file=sys.stderr,
        flush=True,
    )


def run_worker(*, once: bool, interval: float, stop: Any = None) -> int:
    """Deliver due messages until stopped (or one pass with once=True); returns messages sent.

    While the database cannot be reached (a restart, a failover) the worker logs it once and
    keeps trying every interval; what was queued is sent when it is back. A single pass
    (once=True) raises instead, so that a cron job's exit status shows the failure."""
    total = 0
    down = False
    while True:
        while True:
            try:
                sent = deliver()
            except UNAVAILABLE as exc:
                if once:
                    raise
                if not down:
                    log.warning("outbox worker: database unavailable (%s); trying again every %s s",
                                unavailable_reason(exc), interval)
                down = True
                break
            if down:
                log.warning("outbox worker: database reachable again")
                down = False
            total += sent
            if sent == 0:
                break
        if once or (stop is not None and stop.wait(interval)):
            return total
        if stop is None:
            threading.Event().wait(interval)


@dataclass(frozen=True)
class OutboxReport:
    """What `flask outbox-status` shows: the outbox's backlog, for monitoring."""

    now: datetime
    waiting: int  # pending, never tried (MAIL_DELIVERY=worker, or a send still under way)
    retrying: int  # pending after at least one failed try
    oldest_pending: datetime | None  # when the longest-waiting pending message was queued
    next_retry: datetime | None
    last_error: str | None  # of the most recently failed pending message (no address in it)
    given_up_week: int  # given up, queued in the last 7 days
    sent_day: int  # sent in the last 24 hours

    @property
    def oldest_age(self) -> timedelta | None:
        return None if self.oldest_pending is None else self.now - self.oldest_pending


def report(session: Session) -> OutboxReport:
    """Count the outbox by state (a few aggregate queries on indexed columns)."""
    now = utcnow()
    pending = OutboxMessage.status == OutboxStatus.PENDING
    waiting, retrying, oldest = session.execute(
        select(func.count().filter(OutboxMessage.attempts == 0),
               func.count().filter(OutboxMessage.attempts > 0),
               func.min(OutboxMessage.created_at)).where(pending)).one()
    failing = session.execute(
        select(OutboxMessage.next_attempt_at, OutboxMessage.last_error)
        .where(pending, OutboxMessage.attempts > 0)
        .order_by(OutboxMessage.next_attempt_at).limit(1)).first()
    given_up = session.scalar(select(func.count()).where(
        OutboxMessage.status == OutboxStatus.FAILED,
        OutboxMessage.created_at >= now - timedelta(days=7)))
    sent = session.scalar(select(func.count()).where(
        OutboxMessage.status == OutboxStatus.SENT,
        OutboxMessage.sent_at >= now - timedelta(hours=24)))
    return OutboxReport(now=now, waiting=waiting, retrying=retrying, oldest_pending=oldest,
                        next_retry=failing.next_attempt_at if failing else None,
                        last_error=failing.last_error if failing else None,
                        given_up_week=given_up or 0, sent_day=sent or 0)
