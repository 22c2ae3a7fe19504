"""The Python load generator (a separate process): asyncio + aiohttp over loopback.

Modes, each bounded by a request count and a duration, printing one JSON object:

    load.py sign  --base URL --slug SLUG [-c 64] [--duration S] [--max N]
        The real form flow, one new supporter per signature: GET the petition page (no
        cookie, as a first visit), take the CSRF token from the form and the session cookie
        from Set-Cookie, POST a valid signature with a unique email; the 303 is not followed.
    load.py get   --url URL [-c 64] [--duration S] [--max N]
        The same URL again and again (used for the client-matched baseline, or when wrk is
        missing).
    load.py paths --base URL --file FILE [-c 64] [--duration S]
        Each path of the file once (confirmation links); worker i takes lines i, i+c, ...

Errors: any response outside 200-399 (and, for the sign POST, anything but 303) and any
connection error or timeout; they are counted by kind, never retried.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections import Counter
from typing import Any

import aiohttp

CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
NAMES = ["Ayşe Yılmaz", "Иван Петров", "ئابدۇرېھىم ئۆتكۈر", "王小明", "Marie Dubois",
         "John O'Neill", "Zoë Ünal", "Gulnara Ablikim", "Sam Taylor", "Nur Aziz"]
COUNTRIES = ["GB", "DE", "TR", "US", "NL", "FR", "KZ", "SE", "CA", "AU"]
DOMAINS = ["example.org", "example.com", "gmail.com", "posteo.de", "proton.me"]
POSTCODES = ["SW1A 1AA", "10115", "34000", "1012 AB", "M5V 2T6"]
SOURCES = ["stall-2026-12-05", "qr-poster"]


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of latencies in seconds, as milliseconds (nearest rank)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(p / 100 * len(ordered) + 0.5) - 1))] * 1000, 2)

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99),
            "max": round(ordered[-1] * 1000, 2), "mean": round(sum(ordered) / len(ordered) * 1000, 2)}


class Stats:
    """Counters shared by the workers of one run."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.bytes = 0
        self.done = 0

    def record(self, kind: str, seconds: float) -> None:
        self.latency.setdefault(kind, []).append(seconds)


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False,
    )


def _status_ok(status: int) -> bool:
    return 200 <= status < 400


async def _sign_one(http: aiohttp.ClientSession, base: str, slug: str, email: str,
                    rng: random.Random, stats: Stats | None) -> bool:
    """One supporter: GET the page, POST the form. Returns True if the signature was accepted."""
    src = rng.choice(SOURCES) if rng.random() < 0.3 else ""
    page = f"{base}/petitions/{slug}" + (f"?src={src}" if src else "")
    t0 = time.perf_counter()
    async with http.get(page, allow_redirects=False) as response:
        body = await response.read()
        status = response.status
        cookies = [c.split(";", 1)[0] for c in response.headers.getall("Set-Cookie", [])]
    t1 = time.perf_counter()
    if stats is not None:
        stats.record("get", t1 - t0)
        stats.statuses[f"GET {status}"] += 1
        stats.bytes += len(body)
    if not _status_ok(status):
        if stats is not None:
            stats.errors[f"GET {status}"] += 1
        return False
    match = CSRF.search(body)
    if match is None or not cookies:
        if stats is not None:
            stats.errors["no CSRF token or cookie"] += 1
        return False
    form = {
        "csrf_token": match.group(1).decode(),
        "src": src,
        "name": rng.choice(NAMES),
        "email": email,
        "country": rng.choice(COUNTRIES),
        "postcode": rng.choice(POSTCODES) if rng.random() < 0.5 else "",
    }
    if rng.random() < 0.4:
        form["contact_consent"] = "y"
    if rng.random() < 0.5:
        form["public_consent"] = "y"
    async with http.post(f"{base}/petitions/{slug}/sign", data=form, allow_redirects=False,
                         headers={"Cookie": "; ".join(cookies)}) as response:
        body = await response.read()
        status = response.status
    t2 = time.perf_counter()
    if stats is not None:
        stats.record("post", t2 - t1)
        stats.record("flow", t2 - t0)
        stats.statuses[f"POST {status}"] += 1
        stats.bytes += len(body)
        if status != 303:
            stats.errors[f"POST {status}"] += 1
    return status == 303


async def run_sign(args: argparse.Namespace) -> dict[str, Any]:
    """Signatures from `concurrency` supporters at once until max or the duration is reached."""
    stats = Stats()
    tag = args.tag or f"{random.randrange(36 ** 6):06x}"
    async with _session(args.concurrency) as http:
        if args.warmup:  # each connection once, untimed: imports, templates, pools are warm
            rng = random.Random(0)
            await asyncio.gather(*(
                _sign_one(http, args.base, args.slug, f"warm.{tag}.{i}@example.org", rng, None)
                for i in range(args.warmup)))
        start = time.perf_counter()
        deadline = start + args.duration
        issued = 0
        finished: list[float] = []

        async def worker(w: int) -> None:
            nonlocal issued
            rng = random.Random(w)
            while time.perf_counter() < deadline and issued < args.max:
                issued += 1
                # A hyphen between the numbers: Gmail ignores dots, and so does the app's
                # duplicate check, which took supporter.T.1.23 and .12.3 as one address.
                email = f"supporter.{tag}.{w}-{issued}@{DOMAINS[issued % len(DOMAINS)]}"
                try:
                    if await _sign_one(http, args.base, args.slug, email, rng, stats):
                        stats.done += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    stats.errors[type(exc).__name__] += 1
            finished.append(time.perf_counter())

        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        elapsed = max(finished) - start
    return _result(stats, elapsed, signatures=stats.done, requests=sum(stats.statuses.values()),
                   latency_ms={k: percentiles(v) for k, v in stats.latency.items()},
                   signatures_per_s=round(stats.done / elapsed, 1) if elapsed else None)


async def run_get(args: argparse.Namespace) -> dict[str, Any]:
    """The same URL from `concurrency` connections."""
    stats = Stats()
    async with _session(args.concurrency) as http:
        start = time.perf_counter()
        deadline = start + args.duration
        issued = 0
        finished: list[float] = []

        async def worker() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and issued < args.max:
                issued += 1
                t0 = time.perf_counter()
                try:
                    async with http.get(args.url, allow_redirects=False) as response:
                        body = await response.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    stats.errors[type(exc).__name__] += 1
                    continue
                stats.record("get", time.perf_counter() - t0)
                stats.bytes += len(body)
                stats.statuses[str(response.status)] += 1
                if not _status_ok(response.status):
                    stats.errors[str(response.status)] += 1
            finished.append(time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = max(finished) - start
    return _result(stats, elapsed, requests=sum(stats.statuses.values()),
                   latency_ms=percentiles(stats.latency.get("get", [])))


async def run_paths(args: argparse.Namespace) -> dict[str, Any]:
    """Each path of the file once; worker i takes lines i, i+c, i+2c, ..."""
    paths = [line.strip() for line in open(args.file, encoding="ascii") if line.strip()]
    stats = Stats()
    async with _session(args.concurrency) as http:
        start = time.perf_counter()
        deadline = start + args.duration
        finished: list[float] = []

        async def worker(w: int) -> None:
            for path in paths[w::args.concurrency]:
                if time.perf_counter() >= deadline:
                    break
                t0 = time.perf_counter()
                try:
                    async with http.get(args.base + path, allow_redirects=False) as response:
                        body = await response.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    stats.errors[type(exc).__name__] += 1
                    continue
                stats.record("get", time.perf_counter() - t0)
                stats.bytes += len(body)
                stats.statuses[str(response.status)] += 1
                if not _status_ok(response.status):
                    stats.errors[str(response.status)] += 1
            finished.append(time.perf_counter())

        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        elapsed = max(finished) - start
    return _result(stats, elapsed, requests=sum(stats.statuses.values()),
                   latency_ms=percentiles(stats.latency.get("get", [])),
                   exhausted=sum(stats.statuses.values()) + sum(stats.errors.values()) >= len(paths))


def _result(stats: Stats, elapsed: float, **extra: Any) -> dict[str, Any]:
    requests = extra.get("requests", 0)
    return {
        "loader": "python",
        "duration_s": round(elapsed, 3),
        "rps": round(requests / elapsed, 1) if elapsed else None,
        "bytes_per_response": round(stats.bytes / requests) if requests else None,
        "errors": {"total": sum(stats.errors.values()), **dict(stats.errors)},
        "statuses": dict(stats.statuses),
        "client_cpu_s": round(time.process_time(), 2),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["sign", "get", "paths"])
    parser.add_argument("--base", help="http://127.0.0.1:PORT (sign, paths)")
    parser.add_argument("--slug", help="petition slug (sign)")
    parser.add_argument("--url", help="URL to GET (get)")
    parser.add_argument("--file", help="file of paths (paths)")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds, at most")
    parser.add_argument("--max", type=int, default=10**9, help="requests/signatures, at most")
    parser.add_argument("--warmup", type=int, default=0, help="untimed signatures first (sign)")
    parser.add_argument("--tag", default="", help="makes emails unique across runs (sign)")
    args = parser.parse_args()
    runner = {"sign": run_sign, "get": run_get, "paths": run_paths}[args.mode]
    result = asyncio.run(runner(args))
    result["concurrency"] = args.concurrency
    print(json.dumps(result))


if __name__ == "__main__":
    main()
