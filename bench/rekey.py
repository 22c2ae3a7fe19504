"""How long `flask rotate-data-key` takes: the downtime of changing the data key, per size.

For each size it makes a fresh database (`flask init-db`), bulk-loads that many confirmed,
encrypted signatures (bench/dataset.py, the benchmarks' own key) with one queued email per
thousand, and runs the real command in a subprocess, as an operator would, timing it from
start to exit. Then it checks that the new key decrypts a signature and that the database
records the new key. Prints JSON and writes it to bench/results/rekey.json (or --out).

    .venv/bin/python bench/rekey.py                                      # temporary SQLite
    .venv/bin/python bench/rekey.py --sizes 100000,1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select  # noqa: E402

from bench import dataset  # noqa: E402
from petition.crypto import DataCipher  # noqa: E402
from petition.db import new_session  # noqa: E402
from petition.mail import insert_message, message_row  # noqa: E402
from petition.models import KeyFingerprint, Signature  # noqa: E402
from petition.organiser.services import add_demand, create_campaign  # noqa: E402


def prepare(url: str, instance: Path, size: int) -> float:
    """The database filled with `size` signatures on one demand; the load's seconds."""
    app = dataset.make_app(url, instance)
    with app.app_context():
        session = new_session()
        campaign = create_campaign(session, title="Rekey bench", status="open")
        demand = add_demand(session, campaign, title="Bench demand", status="open")
        session.commit()
        demand_id = demand.id
        for i in range(max(1, size // 1000)):
            insert_message(session, message_row(kind="confirm", recipient=f"q{i}@example.org",
                                                subject="Please confirm", text="...", html=""))
        session.commit()
        session.close()
    seconds = dataset.add_signatures(app, demand_id, size, "confirmed")
    if url.startswith("postgresql"):
        dataset.analyse(app)
    app.extensions["petition.engine"].dispose()
    return seconds


def rotate(url: str, instance: Path, key_file: Path) -> tuple[float, str]:
    """Run the command; (seconds, its output)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "petition", "rotate-data-key", str(key_file),
         "--yes"], cwd=ROOT, env=dataset.server_env(url, instance), capture_output=True,
        text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    return seconds, proc.stdout


def check(url: str, key_file: Path) -> None:
    """The new key is recorded and decrypts what is stored."""
    new = DataCipher(key_file.read_text())
    engine = create_engine(url)  # not the app's: it would refuse the old key, as it should
    with engine.connect() as conn:
        recorded = conn.scalar(select(KeyFingerprint.fingerprint))
        email = conn.scalar(select(Signature.email_enc).order_by(Signature.id.desc()).limit(1))
    engine.dispose()
    if recorded != new.fingerprint or not new.decrypt(email, "signature.email"):
        raise SystemExit("the new key is not the one recorded, or does not decrypt")


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rekey-"))
    kind = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    runs = []
    for size in sorted(args.sizes):
        url = dataset.fresh_database(kind, tmp, args.database_url)
        load_s = prepare(url, tmp / "instance", size)
        key_file = tmp / f"new-{size}.key"
        seconds, output = rotate(url, tmp / "instance", key_file)
        check(url, key_file)
        dataset.drop_database(url)
        runs.append({"signatures": size, "load_s": round(load_s, 2),
                     "rotate_s": round(seconds, 2),
                     "signatures_per_s": round(size / seconds) if seconds else None,
                     "output": output.strip().splitlines()[-2:]})
    return {"database": kind, "python": sys.version.split()[0], "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database of its own (dropped and re-created); "
                             "default: a temporary SQLite file")
    parser.add_argument("--sizes", default="10000,100000",
                        type=lambda v: [int(x) for x in v.split(",") if x])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rekey.json",
                        help="where to write the JSON (default: bench/results/rekey.json)")
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
