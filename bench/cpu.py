"""CPU time per request, in process: the app's own cost with no network, server or client.

    python bench/cpu.py [--database-url URL] [-n 300] [--only NAME ...] [--profile NAME]

Drives the WSGI app directly (Flask's test client, one thread) against a fresh benchmark
database and prints the process CPU time per request for the bare "hello" app, the petition
page, count.json (first poll and a 304 re-poll) and the sign flow (GET the page, POST a
valid signature with a unique email, exactly as bench/load.py does over HTTP);
"sign_campaign" is the same on the campaign page with three of its demands ticked (one
email for the three); "sign_limited" is "sign" with the rate limits on, as in production
(counted in Redis with --redis-url); "floor" is the
same flow on bench/floor_app.py (the framework alone), so sign minus floor is what the app
adds to the stack's own cost. CPU time of
one process is far steadier than throughput on a shared machine, so this is the number to
watch while optimising; the throughput tables come from `make bench`. With --profile, the
named workload is run under cProfile and the top functions are printed; with --only, just
the named workloads (and hello) are measured. bench/instructions.py runs this under valgrind
for a count of machine instructions per request, which does not vary run to run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import dataset  # noqa: E402
import floor_app  # noqa: E402
import hello_app  # noqa: E402

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
WORKLOADS = ("hello", "page", "count", "count_304", "sign", "floor", "signed", "confirm",
             "sign_campaign", "sign_limited")


def _measure(fn: Callable[[int], None], n: int) -> float:
    """CPU milliseconds per call of fn(i), after a short warm-up."""
    for i in range(min(20, n)):
        fn(-1 - i)
    start = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - start) / n * 1000


def expect(response: Any, status: int) -> Any:
    if response.status_code != status:
        raise SystemExit(f"{response.request.path}: {response.status_code}, expected {status}")
    return response


def form(i: int) -> dict[str, str]:
    return {"name": "Ayşe Yılmaz", "email": f"cpu-{time.time_ns()}-{i}@example.org",
            "country": "TR", "postcode": "34000", "contact_consent": "y",
            "public_consent": "y", "src": "qr-poster"}


def sign_flow(flask_app: Any, page_url: str) -> Callable[[int], None]:
    """A new supporter: GET the page for its CSRF token, POST a valid signature (303)."""

    def do_sign(i: int) -> None:
        client = flask_app.test_client()  # a first visit: no cookie
        page = expect(client.get(page_url), 200)
        token = CSRF.search(page.get_data(as_text=True))
        data = form(i) | {"csrf_token": token.group(1) if token else ""}
        expect(client.post(f"{page_url}/sign", data=data), 303)

    return do_sign


def workloads(app: Any, seed: dataset.Seed, tmp: Path, confirms: int = 0) -> dict[str, Callable[[int], None]]:
    """The measured request sequences, each a function of a unique number.

    confirms: how many confirmation links to make for "confirm" (each is clicked once, so
    it needs one per call; 0 leaves the workload out)."""
    slug = seed.sign_slug
    page_url = f"/petitions/{slug}"
    count_url = f"/petitions/{slug}/count.json"
    hello = hello_app.app.test_client()

    def do_hello(_i: int) -> None:
        expect(hello.get("/"), 200)

    def do_page(_i: int) -> None:
        expect(app.test_client().get(page_url), 200)

    def do_count(_i: int) -> None:
        expect(app.test_client().get(count_url), 200)

    etag = app.test_client().get(count_url).headers["ETag"]

    def do_count_304(_i: int) -> None:
        expect(app.test_client().get(count_url, headers={"If-None-Match": etag}), 304)

    def do_signed(_i: int) -> None:  # where the browser goes after signing (the 303)
        expect(app.test_client().get(f"{page_url}/signed"), 200)

    campaign_url = f"/campaigns/{seed.campaign_slug}"
    ticked = [str(i) for i in seed.campaign_demand_ids[:3]]

    def do_sign_campaign(i: int) -> None:  # three demands ticked on the campaign page
        client = app.test_client()
        page = expect(client.get(campaign_url), 200)
        token = CSRF.search(page.get_data(as_text=True))
        data = form(i) | {"csrf_token": token.group(1) if token else "", "demands": ticked}
        expect(client.post(f"{campaign_url}/sign", data=data), 303)

    runs = {"hello": do_hello, "page": do_page, "count": do_count,
            "count_304": do_count_304, "sign": sign_flow(app, page_url), "signed": do_signed,
            "floor": sign_flow(floor_app.app, page_url),  # the same flow on bench/floor_app.py
            "sign_campaign": do_sign_campaign}
    if confirms:
        # A supporter's first click on their emailed link: one pending signature each, on
        # the confirm campaign's hot demand (as `make bench`'s confirm workload).
        path = tmp / "confirm-links.txt"
        dataset.confirm_links(app, [seed.hot_demand_id], confirms, path)
        links = iter(path.read_text().split())

        def do_confirm(_i: int) -> None:
            expect(app.test_client().get(next(links)), 200)

        runs["confirm"] = do_confirm
    return runs


def limited_signer(url: str, tmp: Path, redis_url: str, page_url: str) -> Callable[[int], None]:
    """The sign flow as production runs it: rate limits on, counted in Redis if given (as on
    several hosts), else in the process's memory; the defaults' shape (a minute and an hour)
    set too high to refuse anything. The app is made at the first call: Flask-Limiter's
    settings are one object's in a process, so it must come after the other workloads."""
    flow: Callable[[int], None] | None = None

    def do_sign_limited(i: int) -> None:
        nonlocal flow
        if flow is None:
            app = dataset.make_app(url, tmp / "instance", RATELIMIT_ENABLED=True,
                                   RATELIMIT_SIGN="1000000 per minute;10000000 per hour",
                                   REDIS_URL=redis_url,
                                   RATELIMIT_KEY_PREFIX=f"bench-cpu-{os.getpid()}")
            flow = sign_flow(app, page_url)
        flow(i)

    return do_sign_limited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="a database to DROP and re-create (default: a temporary SQLite file)")
    parser.add_argument("-n", type=int, default=300, help="requests (or signatures) per workload")
    parser.add_argument("--profile", choices=WORKLOADS)
    parser.add_argument("--only", choices=WORKLOADS,
                        action="append", help="measure only these workloads (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--redis-url", default="",
                        help="Redis for sign_limited's rate-limit counters (default: memory)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    kind = "sqlite" if not args.database_url or args.database_url.startswith("sqlite") else "postgresql"
    url = dataset.fresh_database(kind, tmp, args.database_url or "")
    app = dataset.make_app(url, tmp / "instance")
    seed = dataset.seed(app, page_signatures=1000, growth_signatures=0, spread=1)
    wanted = {args.profile} if args.profile else set(args.only or WORKLOADS)
    runs = workloads(app, seed, tmp, confirms=args.n + 20 if "confirm" in wanted else 0)
    if "sign_limited" in wanted:
        runs["sign_limited"] = limited_signer(url, tmp, args.redis_url, f"/petitions/{seed.sign_slug}")

    if args.profile:
        profiler = cProfile.Profile(time.process_time)  # CPU time: waits on the database are not cost
        profiler.enable()
        ms = _measure(runs[args.profile], args.n)
        profiler.disable()
        print(f"{args.profile}: {ms:.2f} ms CPU per request (with cProfile overhead)")
        pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(45)
        return

    results = {name: round(_measure(fn, args.n), 3) for name, fn in runs.items()
               if not args.only or name in args.only or name == "hello"}
    if args.json:
        print(json.dumps({"database": kind, "n": args.n, "cpu_ms": results}))
        return
    print(f"CPU ms per request, in process ({kind}, n={args.n}):")
    for name, ms in results.items():
        print(f"  {name:10} {ms:7.2f} ms  ({ms / results['hello']:.1f}x hello)")


if __name__ == "__main__":
    main()
