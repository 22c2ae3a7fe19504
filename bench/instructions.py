"""Machine instructions per request, counted by valgrind: the steadiest cost measure here.

    python bench/instructions.py [--database-url URL [--database-url URL2]] [--only sign]
                                 [--small 20] [--large 220]

Runs bench/cpu.py twice under `valgrind --tool=callgrind`, with --small and --large requests
per workload, and prints (large - small) / (large - small requests): the instructions one
more request costs, with start-up, seeding and warm-up cancelled out. Unlike CPU time, the
count does not move when other processes share the machine: two runs of the same code give
the same figure to about 0.01%, so a change of 1% is seen at once (wall-clock and CPU-time
figures on these shared 2-core machines vary by 10-30% run to run).

To be repeatable the runs fix what would otherwise vary: PYTHONHASHSEED=0 (set iteration
order), and a display cache that does not expire during the run (under valgrind a request
takes about 50 times longer, so the default 1-second cache would be reloaded every few
requests instead of once in thousands as under real load). Each run drops and re-creates its
database; give two PostgreSQL URLs to run the two counts side by side, one URL to run them
one after the other. Takes one to three minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cpu import WORKLOADS  # noqa: E402

COLLECTED = re.compile(r"Collected : (\d+)")


def _command(n: int, url: str | None, only: list[str], out: Path) -> list[str]:
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               sys.executable, str(HERE / "cpu.py"), "-n", str(n)]
    if url:
        command += ["--database-url", url]
    for name in only:
        command += ["--only", name]
    return command


def _collected(stderr: str) -> int:
    found = COLLECTED.search(stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no instruction count:\n{stderr[-2000:]}")
    return int(found.group(1))


def count(urls: list[str | None], only: list[str], small: int, large: int) -> dict[str, float]:
    """Instructions for the small and large runs, and per request of the measured workloads."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PETITION_DISPLAY_CACHE_SECONDS": "86400"}
    tmp = Path(tempfile.mkdtemp(prefix="bench-icount-"))

    def start(n: int, url: str | None) -> subprocess.Popen[str]:
        return subprocess.Popen(_command(n, url, only, tmp / f"callgrind.{n}"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    try:
        if len(urls) == 2:  # two databases: both runs at once
            running = {n: start(n, url) for n, url in zip((small, large), urls, strict=True)}
            totals = {n: _finish(process) for n, process in running.items()}
        else:  # one database: one run after the other
            totals = {n: _finish(start(n, urls[0])) for n in (small, large)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"small": totals[small], "large": totals[large],
            "per_request": (totals[large] - totals[small]) / (large - small)}


def _finish(process: subprocess.Popen[str]) -> int:
    _stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"bench/cpu.py under valgrind failed ({process.returncode}):\n{stderr[-2000:]}")
    return _collected(stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", action="append", default=[],
                        help="a database to DROP and re-create; twice to run both counts at once "
                             "(default: temporary SQLite files, run at once)")
    parser.add_argument("--only", choices=WORKLOADS, action="append", default=[],
                        help="workloads to run (repeatable; hello always runs; default: all)")
    parser.add_argument("--small", type=int, default=20, help="requests per workload, first run")
    parser.add_argument("--large", type=int, default=220, help="requests per workload, second run")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if len(args.database_url) > 2:
        parser.error("give at most two --database-url")
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    urls: list[str | None] = list(args.database_url) or [None, None]
    result = count(urls, args.only, args.small, args.large)
    measured = " + ".join(["hello", *[n for n in args.only if n != "hello"]] if args.only else WORKLOADS)
    print(f"instructions: {result['small']:,} (n={args.small}), {result['large']:,} (n={args.large})")
    print(f"per request of {measured}: {result['per_request'] / 1e6:.3f} M instructions")


if __name__ == "__main__":
    main()
