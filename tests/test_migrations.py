"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from petition.cli import alembic_config
from petition.models import Base


def test_migrations_match_models(app):
    engine = app.extensions["petition.engine"]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(tmp_path):
    """Every migration's downgrade works (on a private SQLite file; PostgreSQL is shared)."""
    from petition import create_app
    from tests.conftest import base_config

    url = f"sqlite:///{tmp_path / 'down.sqlite3'}"
    app = create_app(base_config(url, tmp_path), instance_path=str(tmp_path / "instance"))
    engine = app.extensions["petition.engine"]
    with app.app_context():
        cfg = alembic_config()
        command.upgrade(cfg, "head")
        assert inspect(engine).has_table("signatures")
        command.downgrade(cfg, "base")
        assert not inspect(engine).has_table("signatures")
        command.upgrade(cfg, "head")
        assert inspect(engine).has_table("signatures")
    engine.dispose()


def test_init_db_is_idempotent(runner):
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output


def test_upgrading_scrubs_addresses_from_stored_send_errors(tmp_path):
    """Errors stored before 0007 could hold a recipient's address in plain text."""
    from petition import create_app
    from tests.conftest import base_config

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    app = create_app(base_config(url, tmp_path), instance_path=str(tmp_path / "instance"))
    engine = app.extensions["petition.engine"]
    with app.app_context():
        cfg = alembic_config()
        command.upgrade(cfg, "0006")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO outbox_messages (kind, subject, body_text, body_html, status, "
                "attempts, next_attempt_at, created_at, last_error) VALUES "
                "('confirm', 's', '', '', 'pending', 1, '2026-12-01', '2026-12-01', :e)"),
                {"e": "SMTPRecipientsRefused: {'hidden.person@example.org': (550, "
                      "b'5.1.1 <hidden.person@example.org>: Recipient address rejected')}"})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT last_error FROM outbox_messages")).scalar_one()
    engine.dispose()
    assert stored == ("SMTPRecipientsRefused: {'[address]': (550, b'5.1.1 <[address]>: "
                      "Recipient address rejected')}")
