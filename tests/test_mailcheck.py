"""`flask --app petition send-test-email ADDRESS` against real SMTP servers (aiosmtpd) that
accept, refuse and misbehave: each failure gets its own message, naming what to change."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from flask import Flask

from bench import nginx as bench_nginx
from tests.liveserver import free_port
from tests.test_server import Collector, smtp_server

# The checks use only the app's configuration, never its database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _run(app: Flask, address: str = "organiser@example.org") -> Any:
    return app.test_cli_runner().invoke(args=["send-test-email", address])


def _smtp(make_app: Any, port: int, **config: Any) -> Flask:
    return make_app(**{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False,
                       "MAIL_FROM": "Campaign <petitions@campaign.example>", **config})


def test_a_server_that_accepts_gets_the_message(make_app: Any) -> None:
    with smtp_server() as (collector, port):
        app = _smtp(make_app, port)
        result = _run(app, "  Organiser@Example.org ")
        assert result.exit_code == 0, result.output
        assert result.output == (f"127.0.0.1:{port} accepted the test message to "
                                 "Organiser@example.org. Check that it arrived in the inbox, "
                                 "not in spam.\n")
        (message,) = collector.wait_for(1)
    assert message["To"] == "Organiser@example.org"
    assert message["From"] == "Campaign <petitions@campaign.example>"
    assert message["Subject"] == "Test message from the petition site"
    assert message["Message-ID"].endswith("@campaign.example>")
    assert "mail settings of http://petition.test" in message.get_content()


def test_without_a_server_it_says_the_message_was_not_sent(app: Flask) -> None:
    result = _run(app)
    assert result.exit_code == 0
    assert "No PETITION_SMTP_HOST is set: the message was printed above and saved in" in result.output
    assert [p.name for p in Path(app.config["OUTBOX_DIR"]).iterdir()] == ["00000000-test.eml"]


@pytest.mark.parametrize(("address", "reason"), [
    ("organiser", "An email address must have an @-sign."),
    ("organiser@", "There must be something after the @-sign."),
    ("", "An email address must have an @-sign."),
    ("organiser@@example.org", "The part after the @-sign contains invalid characters"),
])
def test_a_bad_address_is_refused_before_connecting(app: Flask, address: str,
                                                    reason: str) -> None:
    result = _run(app, address)
    assert result.exit_code == 2
    assert reason in result.output
    assert not Path(app.config["OUTBOX_DIR"]).exists()


def test_nothing_listening(make_app: Any) -> None:
    port = free_port()
    result = _run(_smtp(make_app, port))
    assert result.exit_code == 1
    assert result.output == (f"Error: The test message was not sent: 127.0.0.1:{port} refused "
                             "the connection: check PETITION_SMTP_HOST and PETITION_SMTP_PORT.\n")


def test_an_unknown_host(make_app: Any) -> None:
    app = make_app(SMTP_HOST="smtp.invalid", SMTP_PORT=587)
    result = _run(app)
    assert result.exit_code == 1
    assert "PETITION_SMTP_HOST 'smtp.invalid' was not found" in result.output


def test_a_server_without_starttls(make_app: Any) -> None:
    with smtp_server() as (collector, port):
        result = _run(_smtp(make_app, port, SMTP_STARTTLS=True))
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} does not offer STARTTLS. Use its TLS port with " \
        "PETITION_SMTP_SSL=true" in result.output
    assert collector.messages == []


def test_tls_to_a_plain_port(make_app: Any) -> None:
    with smtp_server() as (_collector, port):
        result = _run(_smtp(make_app, port, SMTP_SSL=True))
    assert result.exit_code == 1
    assert f"TLS with 127.0.0.1:{port} failed" in result.output
    assert "the port must expect TLS from the start (usually 465)" in result.output


def _refuse_login(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
                  _data: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


@contextmanager
def _controller(handler: Any, **kwargs: Any) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def test_a_login_the_server_refuses(make_app: Any) -> None:
    with _controller(Collector(), authenticator=_refuse_login, auth_require_tls=False) as port:
        result = _run(_smtp(make_app, port, SMTP_USER="campaign", SMTP_PASSWORD="wrong"))
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} refused the login of PETITION_SMTP_USER 'campaign': 535" \
        in result.output
    assert "Check the user and password." in result.output
    assert "wrong" not in result.output


class _Refusing(Collector):
    async def handle_MAIL(self, _server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          _options: Any) -> str:
        if address.endswith("@campaign.example"):
            return "553 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str,  # noqa: N802
                          _options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_sender_or_recipient_the_server_refuses(make_app: Any) -> None:
    with _controller(_Refusing()) as port:
        result = _run(_smtp(make_app, port))
        assert result.exit_code == 1
        assert (f"127.0.0.1:{port} refused the sender PETITION_MAIL_FROM "
                "'Campaign <petitions@campaign.example>': 553 5.7.1 Sender address rejected: "
                "not owned by user. Use an address the server may send from.") in result.output
        app = _smtp(make_app, port, MAIL_FROM="petitions@allowed.example")
        result = _run(app, "nobody@example.org")
        assert result.exit_code == 1
        assert f"127.0.0.1:{port} refused the recipient: 550 5.1.1 No such user." in result.output


def test_a_server_that_never_answers(make_app: Any) -> None:
    """Accepts the connection and says nothing, as a port expecting TLS at once does."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    accepting = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    accepting.start()
    try:
        port = listener.getsockname()[1]
        result = _run(_smtp(make_app, port, SMTP_TIMEOUT=0.5))
    finally:
        for conn in held:
            conn.close()
        listener.close()
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} did not answer within 0.5 s" in result.output
    assert "needs PETITION_SMTP_SSL=true" in result.output


def test_a_certificate_this_host_does_not_trust(make_app: Any, tmp_path: Path) -> None:
    cert, key = bench_nginx.self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    collector = Collector()
    with _controller(collector, tls_context=context) as port:
        result = _run(_smtp(make_app, port, SMTP_STARTTLS=True))
    assert result.exit_code == 1
    assert (f"127.0.0.1:{port}'s TLS certificate was not accepted (self-signed certificate). "
            "It must be issued for the name in PETITION_SMTP_HOST by an authority this host "
            "trusts.") in result.output
    assert collector.messages == []
