"""`flask --app petition send-test-email ADDRESS`: one message through the configured mail
settings, sent now, and when it fails the reason in words an operator can act on.

Confirmation emails are how every signature gets counted, so the mail settings are worth
checking before a campaign launches (docs/operations.md, "Mail"). The message does not go
through the outbox and nothing about it is stored.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app

from petition import mail


class MailCheckFailed(Exception):
    """The test message was not accepted; the message says why and what to check."""


def send_test_email(recipient: str) -> str:
    """Send the test message to recipient; returns where it went ("host:port", or "console"
    without PETITION_SMTP_HOST). Raises MailCheckFailed."""
    config = current_app.config
    email = EmailMessage()
    email["From"] = config["MAIL_FROM"]
    email["To"] = recipient
    email["Subject"] = "Test message from the petition site"
    email["Message-ID"] = make_msgid(domain=mail.from_domain())
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(
        f"This message checks the mail settings of {config['PUBLIC_URL']}.\n\n"
        "If it arrived in the inbox (not in spam), supporters' confirmation emails can "
        "arrive too. If it went to spam, publish SPF, DKIM and DMARC records for the "
        "sender's domain (docs/operations.md, \"Mail\").\n"
    )
    try:
        mail.send_now(email, 0, "test")
    except OSError as exc:  # smtplib's errors and ssl's are OSErrors too
        raise MailCheckFailed(describe(exc)) from exc
    if not config["SMTP_HOST"]:
        return "console"
    return f"{config['SMTP_HOST']}:{config['SMTP_PORT']}"


def describe(exc: BaseException) -> str:
    """What went wrong talking to the configured SMTP server, and what to check."""
    config = current_app.config
    server = f"{config['SMTP_HOST']}:{config['SMTP_PORT']}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (f"{server} refused the login of PETITION_SMTP_USER "
                f"{config['SMTP_USER']!r}: {_reply(exc)}. Check the user and password.")
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # starttls() on a server without it
        return (f"{server} does not offer STARTTLS. Use its TLS port with "
                "PETITION_SMTP_SSL=true (usually 465), or, on a network you trust, "
                "PETITION_SMTP_STARTTLS=false.")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return (f"{server} refused the sender PETITION_MAIL_FROM {config['MAIL_FROM']!r}: "
                f"{_reply(exc)}. Use an address the server may send from.")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(mail.reply_text(code, text) for code, text in exc.recipients.values())
        return f"{server} refused the recipient: {replies}."
    if isinstance(exc, TimeoutError) or (isinstance(exc, smtplib.SMTPServerDisconnected)
                                         and isinstance(exc.__context__, TimeoutError)):
        return (f"{server} did not answer within {config['SMTP_TIMEOUT']} s: check the host, "
                "the port and the firewall between them. A port that expects TLS from the "
                "start (usually 465) needs PETITION_SMTP_SSL=true.")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return (f"{server} closed the connection ({exc or 'no reason given'}). If it expects "
                "TLS from the start (usually port 465), set PETITION_SMTP_SSL=true.")
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{server} answered {_reply(exc)}."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{server}'s TLS certificate was not accepted ({exc.verify_message}). It must "
                "be issued for the name in PETITION_SMTP_HOST by an authority this host "
                "trusts.")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS with {server} failed ({exc.reason or exc}). With PETITION_SMTP_SSL=true "
                "the port must expect TLS from the start (usually 465); with STARTTLS, "
                "usually 587.")
    if isinstance(exc, socket.gaierror):
        return f"PETITION_SMTP_HOST {config['SMTP_HOST']!r} was not found ({exc.strerror})."
    if isinstance(exc, ConnectionRefusedError):
        return f"{server} refused the connection: check PETITION_SMTP_HOST and PETITION_SMTP_PORT."
    if isinstance(exc, OSError):
        return f"could not talk to {server}: {exc.strerror or exc}."
    return f"{server}: {exc}."


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return mail.reply_text(exc.smtp_code, exc.smtp_error)
