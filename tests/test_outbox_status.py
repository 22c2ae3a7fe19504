"""`flask --app petition outbox-status [--max-age MINUTES]`: the email backlog for monitoring.

Confirmation emails stuck in the outbox (no worker running, the mail server down) mean
signatures that never count; the command shows the backlog and, with --max-age, exits 1
when an email has waited too long, so cron or a monitor can alert.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from petition import mail
from petition.db import get_session
from petition.models import OutboxMessage, OutboxStatus, utcnow
from tests.helpers import make_campaign, sign_petition
from tests.liveserver import free_port
from tests.test_server import smtp_app, smtp_server


def _status(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["outbox-status", *args])


def _lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()[1:]]


def test_an_empty_outbox(app: Flask) -> None:
    result = _status(app, "--max-age", "5")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Outbox at ") and " UTC:\n" in result.output
    assert _lines(result.output) == ["waiting to be sent:          0",
                                     "given up in the last 7 days: 0",
                                     "sent in the last 24 hours:   0"]


def test_waiting_retrying_given_up_and_sent(make_app: Any) -> None:
    with smtp_server() as (collector, port):
        app = smtp_app(make_app, port)
        with app.app_context():
            demand = make_campaign(get_session()).demands[0]
        assert sign_petition(app.test_client(), demand, email="sent@example.org").status_code == 303
        collector.wait_for(1)
    down = smtp_app(make_app, free_port(), OUTBOX_MAX_ATTEMPTS=2)  # nothing listens
    for who in ("first", "second"):
        assert sign_petition(down.test_client(), demand,
                             email=f"{who}@example.org").status_code == 303
    with down.app_context():
        session = get_session()
        mail.enqueue(session, kind="test", recipient="queued@example.org", subject="s",
                     text="t", html="")
        session.commit()
        # The first failed one is tried once more and given up (OUTBOX_MAX_ATTEMPTS=2).
        first = session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING,
                                           OutboxMessage.attempts == 1)
            .order_by(OutboxMessage.id).limit(1)).one()
        session.execute(update(OutboxMessage).where(OutboxMessage.id == first)
                        .values(next_attempt_at=utcnow() - timedelta(minutes=1)))
        session.commit()
        mail.deliver([first])
        session.execute(update(OutboxMessage)
                        .where(OutboxMessage.status == OutboxStatus.PENDING)
                        .values(created_at=utcnow() - timedelta(minutes=30)))
        session.commit()

    result = _status(down)
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert lines[0] == "waiting to be sent:          2, the oldest queued 30 minutes ago"
    assert lines[1].startswith("of which after a failure:  1 (next try in ")
    assert "last error: ConnectionRefusedError: [Errno 111] Connection refused)" in lines[1]
    assert lines[2:] == ["given up in the last 7 days: 1", "sent in the last 24 hours:   1"]
    assert "example.org" not in result.output

    stuck = _status(down, "--max-age", "15")
    assert stuck.exit_code == 1
    assert stuck.output.endswith(
        "Error: an email has waited 30 minutes, longer than 15 minutes: is an outbox worker "
        "running, and can it reach the mail server? (flask --app petition send-test-email "
        "ADDRESS)\n")
    assert _status(down, "--max-age", "45").exit_code == 0


@pytest.mark.parametrize("value", ["0", "-5", "soon", "1.5"])
def test_a_bad_max_age_is_refused(app: Flask, value: str) -> None:
    result = _status(app, "--max-age", value)
    assert result.exit_code == 2
    assert "Invalid value for '--max-age'" in result.output
