"""CSV export benchmark: rows per second and peak memory of the exporting process, by size.

For each size it bulk-inserts that many encrypted signatures on one demand, then runs the
export in a fresh subprocess (through the real view: login, GET export.csv, read the stream)
and reads that process's peak RSS (`ru_maxrss`) before and after the export. A streaming
export keeps the growth flat from the small run to the large one.

The ceiling is the database's own CSV dump of the same rows, measured in the same run after
the export (so on warm data, which can only make the ceiling faster): the columns the export
reads, raw, for the same demand, status and order, through `COPY (...) TO STDOUT WITH CSV`
read by psycopg on PostgreSQL and the `sqlite3 -csv` command on SQLite (Python's sqlite3
module and csv.writer if the command is not installed); the bytes are read and discarded.
"vs_dump_ratio" is the best export time over the best dump time ("within 3x" is <= 3).

Prints JSON and writes it to bench/results/export.json (or --out). Not part of `make test`.

    .venv/bin/python bench/export.py                                   # temporary SQLite
    .venv/bin/python bench/export.py --sizes 10000,100000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.dataset import DATA_KEY  # noqa: E402
from petition import create_app  # noqa: E402
from petition.cli import upgrade_database  # noqa: E402
from petition.db import new_session  # noqa: E402
from petition.models import Campaign, Role, Signature, SignatureStatus, utcnow  # noqa: E402
from petition.organiser.accounts import create_organiser, set_role  # noqa: E402
from petition.organiser.services import add_demand, create_campaign  # noqa: E402
from petition.signing import counts  # noqa: E402

PASSWORD = "bench-password-123"
NAMES = ["Ayşe Yılmaz", "Иван Петров", "ئابدۇرېھىم ئۆتكۈر", "王小明", "Marie Dubois",
         "John O'Neill", "=cmd|' /C calc'!A0", "Zoë Ünal"]
COUNTRIES = ["GB", "DE", "TR", "US", "NL", "FR", "KZ", "SE"]
SOURCES = [None, "newsletter", "stall-2026-10-17", "qr-poster"]
BATCH = 5000


def _app(database_url: str, instance: str, data_key: str) -> Any:
    return create_app({
        "DATABASE_URL": database_url,
        "DATA_KEY": data_key,
        "SECRET_KEY": "bench-secret",
        "MAIL_DELIVERY": "worker",
        "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False,
        "OUTBOX_DIR": os.path.join(instance, "outbox"),
    }, instance_path=instance)


def prepare(app: Any, size: int) -> tuple[str, str, float, int]:
    """A campaign whose one demand has `size` confirmed signatures.

    Returns (campaign slug, organiser email, insert seconds, demand id).
    """
    cipher = app.extensions["petition.cipher"]
    rng = random.Random(size)
    tag = secrets.token_hex(4)
    session = new_session()
    campaign = create_campaign(session, title=f"Export bench {size} {tag}", status="open")
    demand = add_demand(session, campaign, title="Bench demand", status="open")
    email = f"bench-{tag}@example.org"
    organiser = create_organiser(session, email, PASSWORD)
    set_role(session, campaign, organiser, Role.OWNER)
    session.commit()
    start = time.perf_counter()
    now = utcnow()
    for first in range(0, size, BATCH):
        rows = []
        for i in range(first, min(size, first + BATCH)):
            address = f"signer{i}@example.org"
            created = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            rows.append({
                "demand_id": demand.id,
                "email_key": cipher.email_key(address),
                "email_domain_key": cipher.domain_key(address),
                "name_enc": cipher.encrypt(f"{rng.choice(NAMES)} {i}", "signature.name"),
                "email_enc": cipher.encrypt(address, "signature.email"),
                "postcode_enc": cipher.encrypt(f"{rng.randrange(10000, 99999)}", "signature.postcode"),
                "country": rng.choice(COUNTRIES),
                "contact_consent": rng.random() < 0.4,
                "public_consent": rng.random() < 0.5,
                "source": rng.choice(SOURCES),
                "ip_hash": None,
                "status": SignatureStatus.CONFIRMED,
                "emails_sent": 1,
                "created_at": created,
                "confirmed_at": created + timedelta(minutes=3),
            })
        session.execute(insert(Signature), rows)
        session.commit()
    counts.add(session, demand.id, size)
    session.commit()
    demand_id = demand.id
    session.close()
    return campaign.slug, email, time.perf_counter() - start, demand_id


def dump_query(app: Any, demand_id: int) -> str:
    """The SELECT the dump runs: the raw columns the export reads, its rows in its order.

    Those of the default export (confirmed signatures of the demand, oldest first), with the
    values as stored: the dump neither decrypts nor formats. Only integers and a constant are
    inlined, so literal rendering is safe.
    """
    query = select(
        Signature.name_enc, Signature.email_enc, Signature.postcode_enc, Signature.country,
        Signature.source, Signature.created_at, Signature.confirmed_at, Signature.status,
        Signature.contact_consent,
    ).where(
        Signature.demand_id == demand_id, Signature.status == SignatureStatus.CONFIRMED.value,
    ).order_by(Signature.created_at, Signature.id)
    engine = app.extensions["petition.engine"]
    return str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def _count(chunks: Any) -> int:
    """Read and discard a dump's chunks; the bytes read."""
    return sum(len(chunk) for chunk in chunks)


def _dump_pg(app: Any, sql: str) -> int:
    raw = app.extensions["petition.engine"].raw_connection()
    try:
        with raw.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV") as copy:
            return _count(copy)
    finally:
        raw.rollback()
        raw.close()


def _dump_sqlite_cli(path: str, sql: str) -> int:
    # The shell's start (a few ms) is included: under 1% from 100k rows on.
    proc = subprocess.Popen(["sqlite3", "-csv", path, sql], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    size = _count(iter(lambda: proc.stdout.read(65536), b""))  # type: ignore[union-attr]
    if proc.wait() != 0:
        raise SystemExit(f"sqlite3 -csv failed with status {proc.returncode}")
    return size


class _Discard:
    """A file-like sink for csv.writer that only counts what it is given."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> None:
        self.size += len(text.encode())


def _dump_sqlite_module(path: str, sql: str) -> int:
    sink = _Discard()
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute(sql)
        writer = csv.writer(sink, lineterminator="\n")
        while rows := cursor.fetchmany(5000):
            writer.writerows(rows)
    finally:
        conn.close()
    return sink.size


def dump(app: Any, url: str, demand_id: int, repeat: int) -> dict[str, Any]:
    """Time the database's own CSV dump of the export's rows (best of `repeat`)."""
    sql = dump_query(app, demand_id)
    if url.startswith("postgresql"):
        tool = "COPY (SELECT ...) TO STDOUT WITH CSV, read by psycopg"
        run_once: Callable[[], int] = partial(_dump_pg, app, sql)
    else:
        path = make_url(url).database or ""
        if shutil.which("sqlite3"):
            version = subprocess.run(["sqlite3", "-version"], capture_output=True, text=True,
                                     check=False).stdout.split()[:1]
            tool = f"sqlite3 -csv (command-line shell {' '.join(version)})"
            run_once = partial(_dump_sqlite_cli, path, sql)
        else:
            tool = "Python sqlite3 module + csv.writer (the sqlite3 command is not installed)"
            run_once = partial(_dump_sqlite_module, path, sql)
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        size = run_once()
        timings.append(time.perf_counter() - start)
    return {"tool": tool, "bytes": size, "timings": timings}


def _vm_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB (ru_maxrss if absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(args: argparse.Namespace) -> None:
    """Run one export through the view and print its numbers as JSON (subprocess side)."""
    from petition.models import AuditEntry

    app = _app(args.database_url, args.instance, os.environ["BENCH_DATA_KEY"])
    client = app.test_client()
    # The parent logged in: a password check here (scrypt) would raise the peak RSS by itself.
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], os.environ["BENCH_SESSION"])
    client.get(f"/organiser/campaigns/{args.slug}/exports")  # warm up templates and imports
    rss_before = _vm_kb("VmRSS")
    # ru_maxrss is a high-water mark since process start (imports included); on Linux the
    # mark can be reset so the export's own peak shows (VmHWM), which is what is compared.
    reset = _reset_peak()
    timings = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        response = client.get(f"/organiser/campaigns/{args.slug}/export.csv")
        assert response.status_code == 200, response.status_code
        size = lines = 0
        for chunk in response.response:
            size += len(chunk)
            lines += chunk.count(b"\r\n")
        response.close()
        timings.append(time.perf_counter() - start)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = _vm_kb("VmHWM") if reset else maxrss
    with app.app_context():
        session = new_session()
        entry = session.query(AuditEntry).order_by(AuditEntry.id.desc()).first()
        audited = entry.row_count if entry else None
        session.close()
    rows = lines - 1
    best = min(timings)
    print(json.dumps({
        "rows": rows,
        "audited_rows": audited,
        "bytes": size,
        "export_s": [round(t, 3) for t in timings],
        "rows_per_s": round(rows / best) if best else None,
        "rows_per_s_median": round(rows / statistics.median(timings)),
        "ru_maxrss_mb": round(maxrss / 1024, 1),
        "rss_before_export_mb": round(rss_before / 1024, 1),
        "rss_peak_during_export_mb": round(peak / 1024, 1),
        "rss_growth_mb": round((peak - rss_before) / 1024, 1),
        "peak_measured_with": "VmHWM after clear_refs" if reset else "ru_maxrss",
    }))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare each size, export it in a subprocess, and collect the results."""
    tmp = tempfile.mkdtemp(prefix="bench-export-")
    url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    # The benchmarks' own key (bench/dataset.py): the database records the key it was filled
    # with and refuses another one (petition.keys), and the `bench` database is shared.
    data_key = DATA_KEY
    app = _app(url, tmp, data_key)
    results = []
    with app.app_context():
        upgrade_database()
    for size in sorted(args.sizes):
        with app.app_context():
            slug, email, insert_s, demand_id = prepare(app, size)
        client = app.test_client()
        login = client.post("/organiser/login", data={"email": email, "password": PASSWORD})
        assert login.status_code == 303, login.status_code
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--database-url", url, "--instance", tmp,
             "--slug", slug, "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "BENCH_DATA_KEY": data_key, "BENCH_SESSION": cookie.value},
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        result = {"signatures": size, "insert_s": round(insert_s, 2),
                  **json.loads(proc.stdout.strip().splitlines()[-1])}
        # After the export, so the dump reads warm data: the ceiling is never made slower.
        ceiling = dump(app, url, demand_id, args.repeat)
        best_dump = min(ceiling["timings"])
        rows = result["rows"]
        result.update({
            "dump_tool": ceiling["tool"],
            "dump_bytes": ceiling["bytes"],
            "dump_s": [round(t, 3) for t in ceiling["timings"]],
            "dump_seconds": round(best_dump, 3),
            "dump_rows_per_s": round(rows / best_dump) if best_dump else None,
            "vs_dump_ratio": (round(min(result["export_s"]) / best_dump, 2)
                              if best_dump else None),
        })
        results.append(result)
        if not args.keep:
            with app.app_context():
                session = new_session()
                session.execute(delete(Campaign).where(Campaign.slug == slug))
                session.commit()
                session.close()
    app.extensions["petition.engine"].dispose()
    small, large = results[0], results[-1]
    return {
        "database": url.split(":", 1)[0],
        "python": sys.version.split()[0],
        "runs": results,
        "rss_growth_large_minus_small_mb": round(large["rss_growth_mb"] - small["rss_growth_mb"], 1),
        "rows_per_s_ratio_large_to_small": (
            round(large["rows_per_s"] / small["rows_per_s"], 2) if small["rows_per_s"] else None
        ),
        "vs_dump_ratio_large": large["vs_dump_ratio"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--sizes", default="10000,100000",
                        type=lambda v: [int(x) for x in v.split(",") if x])
    parser.add_argument("--repeat", type=int, default=3, help="exports per size (best is used)")
    parser.add_argument("--keep", action="store_true", help="keep the generated campaigns")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "export.json",
                        help="where to write the JSON (default: bench/results/export.json)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
