"""Benchmark data: a fresh database, the campaigns the workloads use, and fast bulk rows.

Rows are made the way the app makes them (the app's DataCipher encrypts name, email and
postcode and computes the keyed hashes; tokens come from petition.signing.tokens) but are
written with the database's own fast path: COPY on PostgreSQL, one executemany transaction on
SQLite. Everything here runs in the orchestrator, never in the load-generating process.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from petition import create_app  # noqa: E402
from petition.db import new_session  # noqa: E402
from petition.models import Signature, SignatureStatus, utcnow  # noqa: E402

# Fixed keys, so a run can be repeated and the orchestrator and the server agree.
DATA_KEY = "QmVuY2htYXJrLWRhdGEta2V5LTMyLWJ5dGVzLWxvbmc="  # 32 bytes, URL-safe base64
SECRET_KEY = "bench-secret-key-not-for-production"

NAMES = ["Ayşe Yılmaz", "Иван Петров", "ئابدۇرېھىم ئۆتكۈر", "王小明", "Marie Dubois",
         "John O'Neill", "Zoë Ünal", "Gulnara Ablikim", "Sam Taylor", "Nur Aziz"]
COUNTRIES = ["GB", "DE", "TR", "US", "NL", "FR", "KZ", "SE", "CA", "AU"]
SOURCES = [None, None, "newsletter", "stall-2026-12-05", "qr-poster"]
COLUMNS = ("demand_id", "email_key", "email_domain_key", "name_enc", "email_enc", "postcode_enc",
           "country", "contact_consent", "public_consent", "source", "ip_hash", "status",
           "emails_sent", "created_at", "confirmed_at")


def server_env(url: str, instance: Path, public_url: str = "http://127.0.0.1:5000") -> dict[str, str]:
    """The PETITION_* environment of the benchmarked app (and of `flask init-db`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))}
    env.pop("DATABASE_URL", None)
    env.update({
        "PETITION_INSTANCE_PATH": str(instance),
        "PETITION_DATABASE_URL": url,
        "PETITION_DATA_KEY": DATA_KEY,
        "PETITION_SECRET_KEY": SECRET_KEY,
        "PETITION_PUBLIC_URL": public_url,
        # The outbox row is written in the sign transaction as in production; the SMTP send
        # is left to `flask outbox-worker`, which the benchmark does not run.
        "PETITION_MAIL_DELIVERY": "worker",
        "PETITION_RATELIMIT_ENABLED": "false",
        "PETITION_OUTBOX_DIR": str(instance / "outbox"),
    })
    return env


def fresh_database(kind: str, tmp: Path, pg_url: str, suffix: str = "") -> str:
    """Create an empty database and migrate it with `flask init-db`; returns its URL.

    suffix names a second one beside it (PostgreSQL: the database name + suffix)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'bench{suffix}.sqlite3'}"
    else:
        parsed = make_url(pg_url)
        url = parsed.set(database=f"{parsed.database}{suffix}").render_as_string(hide_password=False)
        _recreate_pg(url)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "petition", "init-db"],
        cwd=ROOT, env=server_env(url, tmp / "instance"), check=True,
        stdout=subprocess.DEVNULL,
    )
    return url


def _recreate_pg(url: str, create: bool = True) -> None:
    """DROP and CREATE the benchmark database (never a test* database)."""
    import psycopg

    parsed = make_url(url)
    name = parsed.database or ""
    if not name or name.startswith("test") or name in {"postgres", "template0", "template1"}:
        raise SystemExit(f"refusing to drop database {name!r}: use a dedicated one such as 'bench'")
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    """Remove a database made by fresh_database (PostgreSQL database or SQLite file)."""
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        for extra in ("", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
    else:
        _recreate_pg(url, create=False)


def pg_version(url: str) -> str | None:
    """The server's version string, e.g. 'PostgreSQL 15.20 ...'."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            return str(conn.execute("SELECT version()").fetchone()[0])
    except psycopg.Error:
        return None


def make_app(url: str, instance: Path, **config: Any) -> Any:
    """The app object the orchestrator uses for setup (same keys as the server); config
    overrides settings."""
    return create_app({
        "DATABASE_URL": url,
        "DATA_KEY": DATA_KEY,
        "SECRET_KEY": SECRET_KEY,
        "MAIL_DELIVERY": "worker",
        "RATELIMIT_ENABLED": False,
        "OUTBOX_DIR": str(instance / "outbox"),
        **config,
    }, instance_path=str(instance))


@dataclass
class Seed:
    """What the workloads need to know about the generated data."""

    sign_slug: str = ""
    sign_demand_id: int = 0
    campaign_slug: str = ""  # the sign demand's campaign, with the five demo demands
    campaign_demand_ids: list[int] = field(default_factory=list)
    growth_slug: str = ""
    growth_demand_id: int = 0
    hot_demand_id: int = 0
    spread_demand_ids: list[int] = field(default_factory=list)


def seed(app: Any, *, page_signatures: int, growth_signatures: int, spread: int = 64) -> Seed:
    """The campaigns: a demo-like one (sign, page, count, qr, growth) and a confirm one."""
    from petition.demo import CAMPAIGN_BODY, DEMANDS
    from petition.organiser.services import add_demand, create_campaign

    out = Seed()
    with app.app_context():
        session = new_session()
        campaign = create_campaign(
            session, title="Free the detained: a benchmark campaign", body=CAMPAIGN_BODY,
            summary="Demands for the families of the detained.", organisation="Bench Org",
            status="open",
        )
        demands = []
        for spec in DEMANDS[:5]:
            demands.append(add_demand(
                session, campaign, title=str(spec["title"]), body=str(spec["body"]),
                target=str(spec["target"]), goal=int(spec["goal"]), status="open"))  # type: ignore[call-overload]
        growth = add_demand(session, campaign, title="Growth: end transnational repression",
                            body=str(DEMANDS[3]["body"]), target="Parliament", goal=1_000_000,
                            status="open")
        confirm_campaign = create_campaign(session, title="Confirm bench", status="open")
        hot = add_demand(session, confirm_campaign, title="Hot demand", status="open")
        spread_ids = [
            add_demand(session, confirm_campaign, title=f"Spread demand {i}", status="open").id
            for i in range(spread)
        ]
        session.commit()
        out.sign_slug, out.sign_demand_id = demands[0].slug, demands[0].id
        out.campaign_slug, out.campaign_demand_ids = campaign.slug, [d.id for d in demands]
        out.growth_slug, out.growth_demand_id = growth.slug, growth.id
        out.hot_demand_id, out.spread_demand_ids = hot.id, spread_ids
        session.close()
    add_signatures(app, out.sign_demand_id, page_signatures, SignatureStatus.CONFIRMED)
    add_signatures(app, out.growth_demand_id, growth_signatures, SignatureStatus.CONFIRMED)
    return out


def _rows(app: Any, demand_id: int, first: int, n: int, status: str,
          sqlite: bool) -> Iterator[tuple[Any, ...]]:
    """n signature rows made as services.sign makes them (encrypted, keyed hashes)."""
    cipher = app.extensions["petition.cipher"]
    rng = random.Random(demand_id * 1_000_003 + first)
    now = utcnow().replace(tzinfo=None)
    ip_hash = cipher.ip_hash("127.0.0.1")
    confirmed = status == SignatureStatus.CONFIRMED
    true, false = (1, 0) if sqlite else (True, False)
    for i in range(first, first + n):
        email = f"signer.{demand_id}.{i}@example.org"
        created = now - timedelta(seconds=rng.randrange(90 * 86400))
        postcode = f"{rng.randrange(10000, 99999)}" if rng.random() < 0.5 else None
        row = (
            demand_id,
            cipher.email_key(email),
            cipher.domain_key(email),
            cipher.encrypt(f"{NAMES[i % len(NAMES)]} {i}", "signature.name"),
            cipher.encrypt(email, "signature.email"),
            cipher.encrypt(postcode, "signature.postcode") if postcode else None,
            COUNTRIES[i % len(COUNTRIES)],
            true if rng.random() < 0.4 else false,
            true if rng.random() < 0.5 else false,
            SOURCES[i % len(SOURCES)],
            ip_hash,
            status,
            1,
            created,
            created + timedelta(minutes=3) if confirmed else None,
        )
        if sqlite:  # the text format SQLAlchemy's DateTime uses on SQLite
            row = (*row[:13], _sqlite_time(row[13]), _sqlite_time(row[14]))
        yield row


def _sqlite_time(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def add_signatures(app: Any, demand_id: int, n: int, status: str, *, first: int = 0,
                   batch: int = 50_000) -> float:
    """Bulk-insert n signatures on a demand (confirmed ones are added to its count); seconds."""
    if n <= 0:
        return 0.0
    from petition.signing import counts

    start = time.perf_counter()
    with app.app_context():
        engine = app.extensions["petition.engine"]
        sqlite = engine.dialect.name == "sqlite"
        for offset in range(first, first + n, batch):
            size = min(batch, first + n - offset)
            rows = _rows(app, demand_id, offset, size, status, sqlite)
            raw = engine.raw_connection()
            try:
                if sqlite:
                    cur = raw.cursor()
                    # A bulk load's index pages stay in memory (this connection only).
                    cur.execute("PRAGMA cache_size=-262144")
                    cur.execute("BEGIN IMMEDIATE")
                    cur.executemany(
                        f"INSERT INTO signatures ({', '.join(COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(COLUMNS))})", rows)
                    cur.execute("COMMIT")
                else:
                    with raw.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                        with cur.copy(f"COPY signatures ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                    raw.commit()
            finally:
                raw.close()
        if status == SignatureStatus.CONFIRMED:
            # Over every shard, as n confirmations one at a time would leave it (each adds to
            # a random shard: past a few dozen, all of them have a row). One add() of n would
            # leave 1 row or 2 at random, and count.json's work would differ by that row.
            session = new_session()
            shards = int(app.config["COUNT_SHARDS"])
            statement = counts._add_statement(engine.dialect.name)  # the app's own upsert
            for shard in range(shards):
                session.execute(statement, {
                    "c_demand_id": demand_id, "c_channel": "online", "c_shard": shard,
                    "c_count": n // shards + (1 if shard < n % shards else 0),
                    "c_updated_at": utcnow()})
            session.commit()
            session.close()
    return time.perf_counter() - start


def analyse(app: Any) -> None:
    """PostgreSQL: VACUUM ANALYZE signatures, as autovacuum would after a bulk load."""
    with app.app_context():
        engine = app.extensions["petition.engine"]
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM (ANALYZE) signatures"))


def confirm_links(app: Any, demand_ids: Sequence[int], per_demand: int, path: Path) -> int:
    """Pending signatures on each demand and a file of their confirmation paths, interleaved.

    Line j belongs to demand_ids[j % len(demand_ids)], so wrk's thread t (which takes lines
    t, t+N, ...) with N = len(demand_ids) threads always confirms on its own demand.
    """
    from petition.signing import tokens

    per_id: dict[int, list[int]] = {}
    with app.app_context():
        session = new_session()
        for demand_id in demand_ids:
            before = session.scalar(select(func.count()).select_from(Signature)
                                    .where(Signature.demand_id == demand_id)) or 0
            session.rollback()
            add_signatures(app, demand_id, per_demand, SignatureStatus.PENDING, first=before + 10_000_000)
            per_id[demand_id] = list(session.scalars(
                select(Signature.id)
                .where(Signature.demand_id == demand_id, Signature.status == SignatureStatus.PENDING)
                .order_by(Signature.id)))
            session.rollback()
        session.close()
        lines = []
        for j in range(per_demand * len(demand_ids)):
            demand_id = demand_ids[j % len(demand_ids)]
            sig_id = per_id[demand_id][j // len(demand_ids)]
            lines.append(f"/signatures/confirm/{tokens.make(tokens.CONFIRM, [sig_id])}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def count_state(app: Any, demand_ids: Sequence[int]) -> dict[str, Any]:
    """Confirmed and pending rows of the demands, and whether every stored count is exact.

    A load stopped by its deadline leaves requests in flight that the server still commits:
    wait until two readings agree before judging.
    """
    previous: dict[str, Any] = {}
    for _ in range(20):
        state = _count_state(app, demand_ids)
        if state == previous:
            break
        previous = state
        time.sleep(0.5)
    return state


def _count_state(app: Any, demand_ids: Sequence[int]) -> dict[str, Any]:
    from petition.signing import counts

    with app.app_context():
        session = new_session()
        confirmed = session.scalar(
            select(func.count()).select_from(Signature)
            .where(Signature.demand_id.in_(demand_ids), Signature.status == SignatureStatus.CONFIRMED)
        ) or 0
        pending = session.scalar(
            select(func.count()).select_from(Signature)
            .where(Signature.demand_id.in_(demand_ids), Signature.status == SignatureStatus.PENDING)
        ) or 0
        drift = [d for d in demand_ids if counts.recount(session, d, repair=False) is not None]
        stored = sum(c.value for c in counts.get_many(session, demand_ids).values())
        session.rollback()
        session.close()
    return {"confirmed": confirmed, "pending": pending, "stored_count": stored,
            "exact": not drift and stored == confirmed}


def signatures_total(app: Any, demand_id: int | None = None) -> int:
    """Rows in the signatures table (of one demand)."""
    with app.app_context():
        session = new_session()
        query = select(func.count()).select_from(Signature)
        if demand_id is not None:
            query = query.where(Signature.demand_id == demand_id)
        n = session.scalar(query) or 0
        session.close()
    return n
