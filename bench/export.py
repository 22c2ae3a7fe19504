"""CSV export benchmark: rows per second and peak memory of the exporting process, by size.

For each size it bulk-inserts that many encrypted signatures on one demand, then runs the
export in a fresh subprocess (through the real view: login, GET export.csv, read the stream)
and reads that process's peak RSS (`ru_maxrss`) before and after the export. A streaming
export keeps the growth flat from the small run to the large one. Prints JSON and writes it
to bench/results/export.json. Not part of `make test`.

    .venv/bin/python bench/export.py                                   # temporary SQLite
    .venv/bin/python bench/export.py --sizes 10000,100000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert  # noqa: E402

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


def prepare(app: Any, size: int) -> tuple[str, str, float]:
    """A campaign whose one demand has `size` confirmed signatures; (slug, organiser, s)."""
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
    session.close()
    return campaign.slug, email, time.perf_counter() - start


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
    data_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    app = _app(url, tmp, data_key)
    results = []
    with app.app_context():
        upgrade_database()
    for size in sorted(args.sizes):
        with app.app_context():
            slug, email, insert_s = prepare(app, size)
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
        results.append({"signatures": size, "insert_s": round(insert_s, 2),
                        **json.loads(proc.stdout.strip().splitlines()[-1])})
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--sizes", default="10000,100000",
                        type=lambda v: [int(x) for x in v.split(",") if x])
    parser.add_argument("--repeat", type=int, default=3, help="exports per size (best is used)")
    parser.add_argument("--keep", action="store_true", help="keep the generated campaigns")
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
    out = ROOT / "bench" / "results" / "export.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
