"""Can the time a submission takes tell whether an address had signed? A timing probe.

    python bench/probe.py [--database-url URL] [-n 1000] [--out FILE]

Someone who wants to know whether a person signed can submit the sign form with that
person's address and time the answer: the screen is the same whatever happened (DESIGN.md
rule 2), so the time is all that could differ. This script is that attacker, in process
with no network in between (which would only add noise): it drives the app's WSGI
interface (Flask's test client) against a fresh database (a temporary SQLite file by
default, or the PostgreSQL database given, dropped and re-created) and times the sign POST
of the petition form, wall clock, for an address in each earlier state: new, pending,
confirmed, at the email cap, invalidated. The states are submitted in a shuffled order in
every round, so a slow moment of the machine hits them alike. The email goes to the outbox
only (MAIL_DELIVERY=worker), as in production with the outbox worker; rate limits are off.

It prints, per state, the median and the 10th and 90th percentiles, the median's
difference from a new address, and the probability that a submission of that state takes
longer than one of a new address (0.5: indistinguishable; 0 or 1: one timing tells). JSON
is written to bench/results/probe-<database>.json (or --out). docs/privacy.md keeps the
results ("No way to probe who signed").
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

from bench import dataset  # noqa: E402

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CAP = 3
# The earlier states, each made from a fresh pending signature (an UPDATE of its row).
STATES: dict[str, dict[str, Any]] = {
    "pending": {},
    "confirmed": {"status": "confirmed"},
    "at the cap": {"emails_sent": CAP},
    "invalidated": {"status": "invalidated"},
}


def _submit(app: Any, page: str, email: str) -> float:
    """GET the petition (for a fresh session and CSRF token), then time the sign POST."""
    client = app.test_client()
    token = CSRF.search(client.get(page).get_data(as_text=True))
    data = {"name": "Ayşe Yılmaz", "email": email, "country": "TR", "postcode": "34000",
            "contact_consent": "y", "public_consent": "y", "src": "probe",
            "csrf_token": token.group(1) if token else ""}
    start = time.perf_counter()
    response = client.post(f"{page}/sign", data=data)
    seconds = time.perf_counter() - start
    if response.status_code != 303:
        raise SystemExit(f"{email}: {response.status_code}, expected 303")
    return seconds


def _slower_than(sample: list[float], reference: list[float]) -> float:
    """P(a value of sample > a value of reference), ties counted half (the AUC)."""
    ordered = sorted(reference)
    wins = 0.0
    for value in sample:
        below = bisect.bisect_left(ordered, value)
        equal = bisect.bisect_right(ordered, value) - below
        wins += below + equal / 2
    return wins / (len(sample) * len(ordered))


def _summary(ms: list[float], new: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "median_ms": round(statistics.median(ordered), 4),
        "p10_ms": round(ordered[len(ordered) // 10], 4),
        "p90_ms": round(ordered[9 * len(ordered) // 10], 4),
        "median_minus_new_us": round((statistics.median(ordered) - statistics.median(new)) * 1000, 1),
        "p_slower_than_new": round(_slower_than(ms, new), 3),
    }


def run(database_url: str, rounds: int, warm_up: int) -> dict[str, Any]:
    """Time `rounds` submissions of each state (after `warm_up` untimed rounds)."""
    from petition.db import new_session
    from petition.models import Signature
    from petition.signing.services import cipher

    tmp = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    kind = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    url = dataset.fresh_database(kind, tmp, database_url)
    app = dataset.make_app(url, tmp / "instance")
    app.config["MAX_EMAILS_PER_SIGNATURE"] = CAP
    seed = dataset.seed(app, page_signatures=1000, growth_signatures=0, spread=1)
    page = f"/petitions/{seed.sign_slug}"
    addresses = {state: f"probe-{i}@example.org" for i, state in enumerate(STATES)}
    for state, address in addresses.items():
        _submit(app, page, address)
        with app.app_context():
            session = new_session()
            values = STATES[state]
            if values:
                session.execute(update(Signature).where(
                    Signature.email_key == cipher().email_key(address)).values(**values))
            session.commit()
            session.close()
    times: dict[str, list[float]] = {"new": [], **{state: [] for state in STATES}}
    shuffle = random.Random(5)
    for i in range(warm_up + rounds):
        order = list(times)
        shuffle.shuffle(order)
        for state in order:
            email = f"new-{i}-{time.time_ns()}@example.org" if state == "new" else addresses[state]
            seconds = _submit(app, page, email)
            if i >= warm_up:
                times[state].append(seconds * 1000)
    app.extensions["petition.engine"].dispose()
    dataset.drop_database(url)
    new = times["new"]
    return {"database": kind, "rounds": rounds, "cap": CAP,
            "python": sys.version.split()[0],
            "states": {state: _summary(ms, new) for state, ms in times.items()},
            "p_confirmed_slower_than_pending": round(
                _slower_than(times["confirmed"], times["pending"]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database of its own (dropped and re-created); "
                             "default: a temporary SQLite file")
    parser.add_argument("-n", type=int, default=1000, help="timed submissions per state")
    parser.add_argument("--warm-up", type=int, default=50, help="untimed rounds first")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default: bench/results/probe-<database>.json)")
    args = parser.parse_args()
    report = run(args.database_url, args.n, args.warm_up)
    out = args.out or ROOT / "bench" / "results" / f"probe-{report['database']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"sign POST wall time by the address's earlier state ({report['database']}, "
          f"{args.n} each, in process):")
    print(f"  {'state':12} {'median':>9} {'p10':>9} {'p90':>9} {'vs new':>9}  P(slower than new)")
    for state, row in report["states"].items():
        print(f"  {state:12} {row['median_ms']:8.3f}ms {row['p10_ms']:8.3f}ms "
              f"{row['p90_ms']:8.3f}ms {row['median_minus_new_us']:+7.1f}us  "
              f"{row['p_slower_than_new']:.3f}")
    print(f"  P(confirmed slower than pending): {report['p_confirmed_slower_than_pending']:.3f}")


if __name__ == "__main__":
    main()
