"""Command-line tools: `flask --app petition <command>`."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from sqlalchemy import inspect, select

from petition.db import KeyMismatch, get_session
from petition.models import Demand

F = TypeVar("F", bound=Callable[..., Any])

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at migrations/ and the app's database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", current_app.config["DATABASE_URL"].replace("%", "%%"))
    cfg.attributes["engine"] = current_app.extensions["petition.engine"]
    return cfg


def upgrade_database() -> str:
    """Apply all migrations (idempotent), then record the data key's fingerprint (see
    petition.keys; raises KeyMismatch if stored data was made with another key). Returns
    what happened to the fingerprint: "unchanged", "recorded" or "replaced"."""
    from petition import keys

    command.upgrade(alembic_config(), "head")
    return keys.record(get_session(), current_app.extensions["petition.cipher"])


def refuses_wrong_key(func: F) -> F:
    """A command run with the wrong data key ends with the reason, not a traceback (exit 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyMismatch as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _minutes(seconds: float) -> str:
    """A duration for people: "under a minute", "1 minute", "12 minutes", "3 hours"."""
    if seconds < 60:
        return "under a minute"
    if seconds < 2 * 3600:
        n = int(seconds // 60)
        return f"{n} minute" + ("s" if n != 1 else "")
    return f"{int(seconds // 3600)} hours"


def _count(n: int, one: str, many: str | None = None) -> str:
    """"1 signature", "3 signatures"."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def database_is_empty() -> bool:
    """True if no campaign exists yet (or the schema is missing)."""
    engine = current_app.extensions["petition.engine"]
    if not inspect(engine).has_table("campaigns"):
        return True
    from petition.models import Campaign

    return get_session().scalar(select(Campaign.id).limit(1)) is None


def init_app(app: Flask) -> None:
    """Register the commands."""

    @app.cli.command("init-db")
    @refuses_wrong_key
    def init_db() -> None:
        """Create or upgrade the database schema (Alembic migrations)."""
        fingerprint = upgrade_database()
        if fingerprint == "replaced":
            click.echo("The data key changed; nothing stored depended on the old one. "
                       "The new key is recorded.")
        click.echo("Database is up to date.")

    @app.cli.command("demo")
    @refuses_wrong_key
    @click.option("--if-empty", is_flag=True, help="Only if the database has no campaign yet.")
    @click.option("--signatures", default=400, show_default=True, help="Generated signatures.")
    def demo(if_empty: bool, signatures: int) -> None:
        """Load a demo campaign with demands and generated confirmed signatures."""
        from petition.demo import create_demo

        upgrade_database()
        if if_empty and not database_is_empty():
            click.echo("Database already has campaigns; demo not loaded.")
            login = Path(current_app.instance_path) / "demo-login.txt"
            if login.exists():
                click.echo(login.read_text(), nl=False)
            return
        from petition.demo import DEMO_ORGANISER, create_demo_organiser

        session = get_session()
        campaign = create_demo(session, signatures=signatures)
        password = create_demo_organiser(session, campaign)
        session.commit()
        login = Path(current_app.instance_path) / "demo-login.txt"
        login.write_text(
            f"Organiser login: {current_app.config['PUBLIC_URL']}/organiser/login\n"
            f"  email:    {DEMO_ORGANISER}\n  password: {password}\n"
        )
        login.chmod(0o600)
        click.echo(f"Demo campaign loaded: {current_app.config['PUBLIC_URL']}/campaigns/{campaign.slug}")
        click.echo(login.read_text(), nl=False)

    @app.cli.command("create-organiser")
    @refuses_wrong_key
    @click.argument("email")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    def create_organiser_command(email: str, password_stdin: bool) -> None:
        """Create an organiser account (asks for the password)."""
        from petition.organiser.accounts import AccountError, create_organiser

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        session = get_session()
        try:
            organiser = create_organiser(session, email, password)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"Organiser {organiser.email} created.")

    @app.cli.command("backup")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    def backup_command(file: Path) -> None:
        """Copy the database to FILE while the app runs (SQLite's online backup, or pg_dump's
        custom format for pg_restore). The data key is not in it: keep the key apart."""
        from petition.backup import BackupError, backup

        try:
            made = backup(current_app.extensions["petition.engine"], file,
                          float(current_app.config["DB_BUSY_TIMEOUT_SECONDS"]))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        what = f"{made.signatures} signatures, " if made.signatures is not None else ""
        size = f"{made.bytes / 1e6:.1f} MB" if made.bytes >= 1e6 else f"{made.bytes / 1e3:.0f} kB"
        click.echo(f"Backed up to {made.path} ({what}{size}, readable by this user only).")
        click.echo("It holds the signer data encrypted, not the key: keep PETITION_DATA_KEY "
                   "(or instance/data.key) safe apart from it. Without the key the backup "
                   "cannot be read.")

    @app.cli.command("send-test-email")
    @click.argument("address")
    def send_test_email_command(address: str) -> None:
        """Send one test message to ADDRESS through the mail settings, now (not through the
        outbox; nothing is stored), and say why if it fails."""
        from email_validator import EmailNotValidError, validate_email

        from petition.mailcheck import MailCheckFailed, send_test_email

        try:
            address = validate_email(address.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise click.BadParameter(f"{address!r}: {exc}", param_hint="'ADDRESS'") from exc
        try:
            where = send_test_email(address)
        except MailCheckFailed as exc:
            raise click.ClickException(f"The test message was not sent: {exc}") from exc
        if where == "console":
            click.echo("No PETITION_SMTP_HOST is set: the message was printed above and saved "
                       f"in {current_app.config['OUTBOX_DIR']}, not sent.")
        else:
            click.echo(f"{where} accepted the test message to {address}. Check that it arrived "
                       "in the inbox, not in spam.")

    @app.cli.command("recount")
    @refuses_wrong_key
    @click.option("--check", is_flag=True, help="Only report drift, do not repair it.")
    def recount(check: bool) -> None:
        """Compare every demand's stored count with a recount of confirmed signatures."""
        from petition.db import begin_write
        from petition.signing.counts import recount as recount_demand

        session = get_session()
        demand_ids = session.scalars(select(Demand.id).order_by(Demand.id)).all()
        drifted = 0
        for demand_id in demand_ids:
            begin_write(session)
            drift = recount_demand(session, demand_id, repair=not check)
            session.commit()
            if drift:
                drifted += 1
                action = "found" if check else "repaired"
                click.echo(f"demand {drift.demand_id}: stored {drift.stored} (paper {drift.stored_paper}), "
                           f"actual {drift.actual} (paper {drift.actual_paper}) ({action})")
        click.echo(f"{len(demand_ids)} demands checked, {drifted} with drift.")
        if check and drifted:
            raise SystemExit(1)

    @app.cli.command("outbox-worker")
    @refuses_wrong_key
    @click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
    @click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
    def outbox_worker(once: bool, interval: float) -> None:
        """Deliver queued emails, retrying failures with backoff (safe to run several)."""
        from petition.mail import run_worker

        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            sent = run_worker(once=once, interval=interval, stop=stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        click.echo(f"Outbox worker stopped; {_count(sent, 'message')} sent.")

    @app.cli.command("outbox-status")
    @refuses_wrong_key
    @click.option("--max-age", "max_age", type=click.IntRange(min=1), metavar="MINUTES",
                  help="Exit with status 1 if a message has waited longer than this.")
    def outbox_status(max_age: int | None) -> None:
        """How many emails wait, retry, were given up or sent; for monitoring (cron)."""
        from petition.mail import report

        found = report(get_session())
        click.echo(f"Outbox at {found.now:%Y-%m-%d %H:%M} UTC:")
        waited = "" if found.oldest_age is None else \
            f", the oldest queued {_minutes(found.oldest_age.total_seconds())} ago"
        click.echo(f"  waiting to be sent:          {found.waiting + found.retrying:,}{waited}")
        if found.retrying:
            due = (found.next_retry - found.now).total_seconds() if found.next_retry else 0
            when = f"in {_minutes(due)}" if due > 0 else "due now"
            click.echo(f"    of which after a failure:  {found.retrying:,} (next try {when}; "
                       f"last error: {found.last_error})")
        click.echo(f"  given up in the last 7 days: {found.given_up_week:,}")
        click.echo(f"  sent in the last 24 hours:   {found.sent_day:,}")
        age = found.oldest_age
        if max_age is not None and age is not None and age.total_seconds() > max_age * 60:
            raise click.ClickException(
                f"an email has waited {_minutes(age.total_seconds())}, longer than "
                f"{max_age} minutes: is an outbox worker running, and can it reach the mail "
                "server? (flask --app petition send-test-email ADDRESS)")

    @app.cli.command("rotate-data-key")
    @refuses_wrong_key
    @click.argument("new_key_file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Do not ask whether the app is stopped.")
    def rotate_data_key(new_key_file: Path, yes: bool) -> None:
        """Re-encrypt the stored signer data with the key in NEW_KEY_FILE (made there, mode
        0600, if the file does not exist). Stop every app host and outbox worker first."""
        from petition.crypto import DataCipher
        from petition.rekey import RekeyError, new_cipher, next_step, other_clients, rekey

        old: DataCipher = current_app.extensions["petition.cipher"]
        try:
            new, made = new_cipher(new_key_file, current_app.config["DOTLESS_EMAIL_DOMAINS"],
                                   old)
        except RekeyError as exc:
            raise click.ClickException(str(exc)) from exc
        if made:
            click.echo(f"A new key was written to {new_key_file} (readable by this user only).")
        current_app.extensions["petition.engine"].dispose()  # this process's idle connections
        session = get_session()
        clients = other_clients(session)
        session.rollback()
        if clients:
            raise click.ClickException(
                "Other clients are connected to the database: stop every app host and outbox "
                "worker (and close other sessions) first, so none of them goes on writing "
                "with the old key:\n  " + "\n  ".join(clients))
        if not yes:
            click.confirm("Every app host and outbox worker must be stopped, or they would go "
                          "on writing with the old key. Is everything stopped?", abort=True)

        def progress(done: int) -> None:
            if done % 50_000 == 0:
                click.echo(f"  {done} signatures so far")

        try:
            result = rekey(session, old, new, progress)
        except RekeyError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(
            f"The data key is changed: {_count(result.signatures, 'signature')}, "
            f"{_count(result.outbox_messages, 'queued email')} and "
            f"{_count(result.audit_entries, 'audit entry', 'audit entries')} rewritten with the "
            f"new key; {_count(result.ip_hashes_erased, 'IP address hash', 'IP address hashes')} "
            "erased.")
        step = next_step(current_app.instance_path, str(current_app.config["DATA_KEY"]),
                         new_key_file)
        click.echo(
            f"Next: {step} on every app host and outbox worker, then start them; a process "
            "started with the old key now refuses to run. Backups made before now need the "
            "old key: keep it with them, or destroy both.")

    @app.cli.command("anonymise")
    @refuses_wrong_key
    @click.option("--closed-before", "closed_before", required=True, metavar="YYYY-MM-DD",
                  help="Anonymise signatures of demands whose closing date is before this day.")
    @click.option("--dry-run", is_flag=True, help="Only print what would be anonymised.")
    def anonymise_command(closed_before: str, dry_run: bool) -> None:
        """Erase signers' personal data on demands that closed before a date (see docs/privacy.md)."""
        import re
        from datetime import date

        from petition.organiser.retention import anonymise, cutoff

        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", closed_before):
                raise ValueError(closed_before)
            day = date.fromisoformat(closed_before)
            cutoff(day)
        except ValueError as exc:
            reason = "it is in the future" if "future" in str(exc) else "use YYYY-MM-DD"
            raise click.BadParameter(f"{closed_before!r}: {reason}.",
                                     param_hint="'--closed-before'") from exc
        result = anonymise(get_session(), day, dry_run=dry_run)
        for demand, n in result.demands:
            click.echo(f"demand {demand.slug}: {n} signatures")
        for demand in result.skipped:
            click.echo(f"skipped demand {demand.slug}: no longer collecting but has no closing date")
        if dry_run:
            click.echo(f"Dry run: {result.signatures} signatures on {len(result.demands)} demands "
                       "would be anonymised; nothing was changed.")
        else:
            click.echo(f"{result.signatures} signatures on {len(result.demands)} demands anonymised.")
