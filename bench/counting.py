"""Hot-row benchmark for the sharded counters: one hot demand vs. many, 1 shard vs. 16.

Runs confirm-like transactions (UPDATE a signature to confirmed + add to a counter shard)
from many threads against PostgreSQL (or SQLite) and prints throughput per configuration,
all in one run so the ratios are comparable. Writes JSON to bench/results/counting.json.
It empties the database it is given (DROP SCHEMA public): use the benchmarks' own, never the
tests' or a real one.

    .venv/bin/python bench/counting.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text, update  # noqa: E402

from bench.dataset import DATA_KEY  # noqa: E402
from petition import create_app  # noqa: E402
from petition.cli import upgrade_database  # noqa: E402
from petition.db import begin_write, new_session  # noqa: E402
from petition.models import Signature, SignatureStatus, utcnow  # noqa: E402
from petition.organiser.services import add_demand, create_campaign  # noqa: E402
from petition.signing import counts  # noqa: E402


def prepare(app, demands: int, per_demand: int) -> list[list[int]]:  # noqa: ANN001
    """Create demands with pending signatures; returns signature ids per demand."""
    session = new_session()
    campaign = create_campaign(session, title="Bench", status="open")
    ids: list[list[int]] = []
    for d in range(demands):
        demand = add_demand(session, campaign, title=f"Bench demand {d}", status="open")
        rows = [
            {"demand_id": demand.id, "email_key": f"{demand.id}-{i}", "country": "GB",
             "status": SignatureStatus.PENDING, "emails_sent": 1, "created_at": utcnow(),
             "contact_consent": False, "public_consent": False}
            for i in range(per_demand)
        ]
        ids.append(list(session.scalars(insert(Signature).returning(Signature.id), rows)))
    session.commit()
    session.close()
    return ids


def confirm_all(app, work: list[int], threads: int) -> float:  # noqa: ANN001
    """Confirm the signature ids from `threads` threads; returns confirmations per second."""
    lock = threading.Lock()
    queue = list(work)

    def worker() -> None:
        with app.app_context():
            session = new_session()
            while True:
                with lock:
                    if not queue:
                        break
                    sig_id = queue.pop()
                begin_write(session)
                demand_id = session.scalar(
                    update(Signature)
                    .where(Signature.id == sig_id, Signature.status == SignatureStatus.PENDING)
                    .values(status=SignatureStatus.CONFIRMED, confirmed_at=utcnow())
                    .returning(Signature.demand_id)
                )
                counts.add(session, demand_id, 1)
                session.commit()
            session.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(work) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--confirms", type=int, default=3000)
    args = parser.parse_args()

    results = []
    for shards in (1, 16):
        for layout in ("hot", "spread"):
            tmp = tempfile.mkdtemp()
            if args.database_url.startswith("postgresql"):
                # Emptied before the app connects: the app refuses a database holding data
                # made with another data key (petition.keys).
                plain = create_engine(args.database_url)
                with plain.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
                plain.dispose()
            app = create_app({"DATABASE_URL": args.database_url, "COUNT_SHARDS": shards,
                              "SECRET_KEY": "bench", "DATA_KEY": DATA_KEY}, instance_path=tmp)
            with app.app_context():
                upgrade_database()
                demands = 1 if layout == "hot" else 64
                ids = prepare(app, demands, args.confirms // demands)
                work = [i for group in ids for i in group]
                rate = confirm_all(app, work, args.threads)
                session = new_session()
                total = sum(counts.get(session, d).value for d in
                            session.scalars(text("SELECT id FROM demands")).all())
                session.close()
                assert total == len(work), (total, len(work))
            app.extensions["petition.engine"].dispose()
            results.append({"shards": shards, "layout": layout, "confirms_per_s": round(rate, 1)})
            print(f"shards={shards:2d} {layout:6s} {rate:8.1f} confirms/s", flush=True)
    for shards in (1, 16):
        hot = next(r for r in results if r["shards"] == shards and r["layout"] == "hot")
        spread = next(r for r in results if r["shards"] == shards and r["layout"] == "spread")
        print(f"shards={shards:2d}: hot/spread = {hot['confirms_per_s'] / spread['confirms_per_s']:.0%}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "counting.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
