"""Surges: thousands of visitors at once, through the shipped nginx config, as deployed.

    python bench/surge.py [--database-url URL] [--visitors 2000,4000,8000] [--duration 15]
                          [--signers 64] [--out FILE]

A QR code on a big screen or a post that goes round brings thousands of phones to the
petition page at once. This script starts the app under gunicorn (gunicorn.conf.py) behind
nginx with deploy/nginx/ (TLS, the shipped top-level file, set up by bench/nginx.py as in
the other "as deployed" runs) on a fresh benchmark database (a temporary SQLite file by
default, or the PostgreSQL database given, dropped and re-created). For each number of
visitors, wrk keeps that many connections asking for the petition page (each a visitor who
asks again as soon as the page has come) while `--signers` supporters sign through the same
nginx (wrk with bench/wrk/sign.lua, the full form flow): once with Debian's stock
`worker_connections 768` and once with what docs/operations.md has an install set
(bench/nginx.py's WORKER_CONNECTIONS). Every load is bounded by `--duration` and by wrk's
10-second timeout per request.

It prints and writes to bench/results/surge.json (or --out), per run: pages/s and their
latency, wrk's socket errors (connections refused or cut off, timeouts) and answers other
than 2xx/3xx, the signatures/s meanwhile and their errors, whether every signature that got
its 303 is in the database, and how often nginx logged that its connections ran out.
docs/performance.md ("Surges") keeps the results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import dataset  # noqa: E402
import loaders  # noqa: E402
import nginx  # noqa: E402
from server import Server, wait_quiet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from petition.db import new_session  # noqa: E402
from petition.models import Signature  # noqa: E402


def _rows_after(app: Any, demand_id: int, last_id: int) -> tuple[int, int, int]:
    """(new rows, the submissions they took beyond the first, the highest id) of a demand
    since the row last_id: an address sent again adds one to its row's emails_sent."""
    with app.app_context():
        session = new_session()
        rows, extra, top = session.execute(
            select(func.count(), func.coalesce(func.sum(Signature.emails_sent - 1), 0),
                   func.coalesce(func.max(Signature.id), last_id))
            .where(Signature.demand_id == demand_id, Signature.id > last_id)).one()
        session.close()
    return int(rows), int(extra), int(top)


def _answered_303(log: Path) -> int:
    """Sign POSTs the app answered with its 303 (its access log, which the proxy cannot fake)."""
    return sum(1 for line in log.read_text().splitlines() if '"POST /petitions/' in line
               and '/sign HTTP/1.1" 303 ' in line)


def _peak_rss_mb(pids: list[int]) -> float:
    """The peak resident memory of these processes, summed."""
    total = 0
    for pid in pids:
        try:
            status = (Path("/proc") / str(pid) / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        total += int(status.split("VmHWM:", 1)[1].split()[0])
    return round(total / 1024, 1)


def _run(env: dict[str, str], directory: Path, seed: dataset.Seed, app: Any, *, visitors: int,
         worker_connections: int, duration: float, signers: int, tag: str) -> dict[str, Any]:
    """One surge through a fresh app server and nginx with the given events limit."""
    directory.mkdir(parents=True)
    srv = Server("petition:create_app()", env, directory / "server.log")
    proxy = nginx.Nginx(srv.port, directory / "nginx", workers=os.cpu_count() or 1,
                        worker_connections=worker_connections)
    # As docs/operations.md says for a host behind nginx.
    srv.env.update(PETITION_PROXY_COUNT="1", PETITION_PUBLIC_URL=proxy.https_base)
    last_id = _rows_after(app, seed.sign_demand_id, 0)[2]
    with srv, proxy:
        # Untimed: the workers' first pages and TLS sessions.
        loaders.get(f"{proxy.https_base}/petitions/{seed.sign_slug}", connections=8,
                    duration=1, max_requests=10**9, loader="wrk").result()
        wait_quiet()
        page = loaders.get(f"{proxy.https_base}/petitions/{seed.sign_slug}",
                           connections=visitors, duration=duration, max_requests=10**9,
                           loader="wrk")
        sign = loaders.sign(proxy.https_base, seed.sign_slug, concurrency=signers,
                            duration=duration, max_signatures=10**6, warmup=0, tag=tag,
                            loader="wrk") if signers else None
        pages = page.result()
        signed = sign.result() if sign else None
        nginx_mb = _peak_rss_mb(proxy.worker_pids())
    log = (directory / "nginx" / "error.log").read_text()
    stored, again, _top = _rows_after(app, seed.sign_demand_id, last_id)
    answered = _answered_303(directory / "server.log")
    return {
        "visitors": visitors,
        "worker_connections": worker_connections,
        "pages": pages,
        "sign": signed,
        # Every 303 the app sent is a new row or one more submission of an address already
        # stored (the same supporter again), so nothing was lost.
        "app_answered_303": answered,
        "signatures_stored": stored,
        "sent_again": again,
        "every_303_stored": stored + again == answered,
        "nginx_ran_out_of_connections": log.count("worker_connections are not enough"),
        "nginx_workers_peak_rss_mb": nginx_mb,
    }


def _line(run: dict[str, Any]) -> str:
    pages, sign = run["pages"], run["sign"]
    errors = ", ".join(f"{k} {v:,}" for k, v in pages["errors"].items() if k != "total") or "none"
    text = (f"{run['visitors']:>6,} visitors, worker_connections {run['worker_connections']:>5}: "
            f"{pages['rps']:>8,.0f} pages/s, p50 {pages['latency_ms']['p50']} ms, "
            f"p99 {pages['latency_ms']['p99']} ms, errors: {errors}")
    if sign is not None:
        text += (f"; {sign['signatures_per_s']:,.0f} signatures/s meanwhile "
                 f"({sign['errors']['total']:,} errors; the app's {run['app_answered_303']:,} 303s: "
                 f"{run['signatures_stored']:,} new rows + {run['sent_again']:,} sent again, "
                 f"nothing lost: {run['every_303_stored']})")
    text += f"; nginx's workers at most {run['nginx_workers_peak_rss_mb']:,} MB"
    if run["nginx_ran_out_of_connections"]:
        text += f"; nginx ran out of connections {run['nginx_ran_out_of_connections']:,} times"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL database to DROP and re-create (default: a temporary SQLite file)")
    parser.add_argument("--visitors", default="2000,4000,8000",
                        help="comma-separated numbers of visitors at once")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    parser.add_argument("--signers", type=int, default=64, help="supporters signing meanwhile")
    parser.add_argument("--worker-connections", default=None,
                        help=f"comma-separated events limits (default: Debian's "
                             f"{nginx.DEBIAN_WORKER_CONNECTIONS} and the documented "
                             f"{nginx.WORKER_CONNECTIONS})")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "surge.json")
    args = parser.parse_args()
    if not nginx.nginx_path() or not loaders.wrk_path():
        sys.exit("bench/surge.py needs nginx and wrk (make chromium bench-deps installs them)")
    limits = ([int(x) for x in args.worker_connections.split(",")] if args.worker_connections
              else [nginx.DEBIAN_WORKER_CONNECTIONS, nginx.WORKER_CONNECTIONS])

    tmp = Path(tempfile.mkdtemp(prefix="bench-surge-"))
    kind = "sqlite" if not args.database_url or args.database_url.startswith("sqlite") else "postgresql"
    url = dataset.fresh_database(kind, tmp, args.database_url or "")
    app = dataset.make_app(url, tmp / "instance")
    seed = dataset.seed(app, page_signatures=1000, growth_signatures=0, spread=1)
    env = dataset.server_env(url, tmp / "instance")
    runs = []
    for visitors in [int(x) for x in args.visitors.split(",")]:
        for limit in limits:
            run = _run(env, tmp / f"run-{visitors}-{limit}", seed, app, visitors=visitors,
                       worker_connections=limit, duration=args.duration,
                       signers=args.signers, tag=f"surge{visitors}x{limit}")
            print(_line(run), flush=True)
            runs.append(run)
    report = {"database": kind, "duration_s": args.duration, "signers": args.signers,
              "nginx": nginx.version(), "wrk": loaders.wrk_version(), "cpus": os.cpu_count(),
              "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
