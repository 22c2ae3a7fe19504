"""The HTTP benchmark suite: the app under gunicorn, loaded from separate processes over loopback.

    .venv/bin/python bench/run.py                      # PostgreSQL and SQLite, full size
    .venv/bin/python bench/run.py --quick              # shorter runs, growth to 100k
    .venv/bin/python bench/run.py --smoke --db sqlite  # a few hundred requests (tests)
    .venv/bin/python bench/run.py --docs --profile     # what `make bench` runs

For each database: a fresh database (SQLite file with WAL, or a dedicated PostgreSQL
database dropped and re-migrated with `flask init-db`), the baseline (bench/hello_app.py under
the same gunicorn.conf.py), then the app under gunicorn.conf.py with rate limits off and
MAIL_DELIVERY=worker, and the workloads: page, count, qr, sign, count while signing, confirm
(hot vs spread), growth (1k vs 1M signatures) and, if bench/export.py exists, export.
Prints a table, saves JSON under bench/results/ and with --docs rewrites docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import dataset  # noqa: E402
import dbwork  # noqa: E402
import loaders  # noqa: E402
import nginx  # noqa: E402
import pyspy  # noqa: E402
import report  # noqa: E402
from server import CpuMeter, Server, gunicorn_settings, wait_quiet  # noqa: E402

DEFAULT_PG = os.environ.get("BENCH_DATABASE_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/bench")

# Sizes per mode: seconds per load, request bounds, rows.
MODES: dict[str, dict[str, Any]] = {
    "full": {"get_s": 10, "sign_s": 15, "confirm_s": 8, "rounds": 2, "links": 12_000,
             "growth": (1_000, 1_000_000), "max": 10**7, "warmup_s": 2,
             "growth_s": 5, "growth_rounds": 5, "pair_rounds": 3,
             "export_sizes": "100000,1000000", "export_repeat": 3},
    "quick": {"get_s": 5, "sign_s": 8, "confirm_s": 5, "rounds": 1, "links": 8_000,
              "growth": (1_000, 100_000), "max": 10**7, "warmup_s": 1,
              "growth_s": 3, "growth_rounds": 3, "pair_rounds": 2,
              "export_sizes": "10000,100000", "export_repeat": 2},
    "smoke": {"get_s": 1, "sign_s": 1, "confirm_s": 1, "rounds": 1, "links": 128,
              "growth": (200, 1_000), "max": 60, "warmup_s": 0,
              "growth_s": 1, "growth_rounds": 1, "pair_rounds": 1,
              "export_sizes": "", "export_repeat": 1},
}
START = time.monotonic()
CONCURRENCY = 64  # page, qr, sign, confirm, baseline
POLLERS = 256  # count.json


class Bench:
    """One database's run: its server, its data and its results."""

    def __init__(self, kind: str, args: argparse.Namespace, tmp: Path) -> None:
        self.kind, self.args, self.tmp = kind, args, tmp
        self.mode = MODES[args.mode]
        self.loader = args.loader
        self.sign_loader = args.sign_loader
        self.out: dict[str, Any] = {}
        self.tag = secrets.token_hex(3)

    def log(self, message: str) -> None:
        print(f"[{self.kind} {time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)

    # --- helpers ---------------------------------------------------------------------------

    def quiet(self) -> dict[str, float] | None:
        """Before a measurement: wait for a quiet machine (not in smoke mode)."""
        if self.args.mode == "smoke":
            return None
        return wait_quiet()

    def _measure(self, server: Server | None, *starters: Any) -> list[dict[str, Any]]:
        """Start the loads (callables returning a Load) on a quiet machine, attach the CPU split."""
        quiet = self.quiet()
        with CpuMeter(server) as meter:
            loads = [start() for start in starters]
            results = [load.result() for load in loads]
        for result in results:
            result["cpu"] = meter.result
            result["quiet"] = quiet
        return results

    def get(self, server: Server, path: str, connections: int = CONCURRENCY,
            seconds: float | None = None) -> dict[str, Any]:
        seconds = seconds or self.mode["get_s"]
        if self.mode["warmup_s"]:  # untimed: every worker has its imports, templates, pool
            loaders.get(server.base + path, connections=connections, loader=self.loader,
                        duration=self.mode["warmup_s"], max_requests=self.mode["max"]).result()
        result = self._measure(server, lambda: loaders.get(
            server.base + path, connections=connections, loader=self.loader, duration=seconds,
            max_requests=self.mode["max"]))[0]
        result["path"] = path
        return result

    def sign_load(self, base: str, seconds: float) -> Any:
        """A starter of the sign load on base (see _measure); wrk's warm-up runs now, untimed."""
        warmup = CONCURRENCY if self.mode["warmup_s"] else 0
        if warmup and self.sign_loader == "wrk":
            loaders.sign_warmup(base, self.seed.sign_slug, concurrency=CONCURRENCY,
                                seconds=self.mode["warmup_s"], tag=f"w{self.tag}{secrets.token_hex(2)}")
            warmup = 0
        return lambda: loaders.sign(base, self.seed.sign_slug, concurrency=CONCURRENCY,
                                    duration=seconds, max_signatures=self.mode["max"],
                                    warmup=warmup, tag=f"{self.tag}{secrets.token_hex(2)}",
                                    loader=self.sign_loader)

    def alternately(self, a: Any, b: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """pair_rounds runs each of two measurements (callables; b may be None), alternating
        ABBA... so that a slow phase of a shared machine hits both alike."""
        runs: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        pair = [(runs[0], a), (runs[1], b)]
        for round_ in range(self.mode["pair_rounds"]):
            for into, measure in (pair if round_ % 2 == 0 else pair[::-1]):
                if measure is not None:
                    into.append(measure())
        return runs

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        pg_url = self.args.pg_url
        instance = self.tmp / "instance"
        self.log("creating and migrating the database")
        self.url = dataset.fresh_database(self.kind, self.tmp, pg_url)
        self.out["database"] = self.kind
        self.out["version"] = (dataset.pg_version(self.url) if self.kind == "postgresql"
                               else f"SQLite {sqlite3.sqlite_version} (WAL, busy_timeout 30 s)")
        self.app = dataset.make_app(self.url, instance)
        small, large = self.mode["growth"]
        self.seed = dataset.seed(self.app, page_signatures=1000 if self.args.mode != "smoke" else 100,
                                 growth_signatures=small)
        env = self.env = dataset.server_env(self.url, instance)

        self.log("baseline: bench/hello_app.py")
        only = set(self.args.only or [])
        with Server("hello_app:app", env, self.tmp / "hello.log",
                    extra_args=("--pythonpath", str(HERE))) as hello:
            self.hello = hello
            self.out["baseline"] = {"c64": self.get(hello, "/")}
            if only and "count" not in only:  # else measured alternately with count.json
                self.out["baseline"]["c256"] = self.get(hello, "/", connections=POLLERS)
            if self.sign_loader == "python":  # that client's own ceiling, for comparison
                self.out["baseline"]["python_c64"] = self._python_baseline(hello)

            floor: Server | None = None
            if not only or "sign" in only:  # measured alternately with the sign workload
                self.log("starting the sign flow's framework floor: bench/floor_app.py")
                floor = Server("floor_app:app", env, self.tmp / "floor.log",
                               extra_args=("--pythonpath", str(HERE)))
                floor.start()
            self.floor = floor
            try:
                self.log("starting the app (the baseline and the floor stay up, idle)")
                with Server("petition:create_app()", env, self.tmp / "server.log") as server:
                    self.server = server
                    self.workloads(server)
            finally:
                if floor is not None:
                    floor.stop()
        self.app.extensions["petition.engine"].dispose()
        if self.args.export:
            self.export()
        self.finish()
        return self.out

    def _python_baseline(self, hello: Server) -> dict[str, Any]:
        """The hello app through the same Python client as the sign load (client-matched)."""
        return self._measure(hello, lambda: loaders.get(
            hello.base + "/", connections=CONCURRENCY, loader="python",
            duration=self.mode["get_s"], max_requests=self.mode["max"]))[0]

    def workloads(self, server: Server) -> None:
        slug = self.seed.sign_slug
        only = set(self.args.only or [])

        def wanted(name: str) -> bool:
            return not only or name in only

        if wanted("page"):
            self.log("page")
            self.out["page"] = self.get(server, f"/petitions/{slug}")
            self.out["page"]["body_bytes"] = _body_bytes(server.base + f"/petitions/{slug}")
        if wanted("count"):
            # The ratio to the baseline: runs alternating between the two servers (ABBA...),
            # best of each, so a slow phase of a shared machine hits both alike.
            self.log("count (alone), alternating with the baseline at 256 connections")
            alone, base = self.alternately(
                lambda: self.get(server, f"/petitions/{slug}/count.json", connections=POLLERS),
                lambda: self.get(self.hello, "/", connections=POLLERS))
            self.out["count"] = {"alone": best_of(alone)}
            self.out["baseline"]["c256"] = best_of(base)
        if wanted("qr"):
            self.log("qr")
            path = f"/petitions/{slug}/qr.png"
            probe = _probe(server.base + path)
            if probe.get("status") == 200 and probe.get("type") == "image/png":
                self.out["qr"] = self.get(server, path)
                self.out["qr"]["body_bytes"] = probe["bytes"]
            else:
                self.out["qr"] = {"skipped": f"GET {path} answered {probe}"}
        if wanted("sign"):
            # The same load on bench/floor_app.py (the framework alone), alternating with the
            # app (ABBA...), best of each: how much of the stack's ceiling the app reaches.
            self.log("sign, alternating with the framework floor")
            def sign(target: Server) -> dict[str, Any]:
                return self._measure(target, self.sign_load(target.base, self.mode["sign_s"]))[0]

            floor = self.floor
            signs, floors = self.alternately(
                lambda: sign(server), None if floor is None else lambda: sign(floor))
            self.out["sign"] = best_of(signs, "signatures_per_s")
            if floors:
                self.out["sign_floor"] = best_of(floors, "signatures_per_s")
        if wanted("count"):
            self.log("count while signing")
            seconds = self.mode["get_s"]
            def poll() -> loaders.Load:
                return loaders.get(server.base + f"/petitions/{slug}/count.json",
                                   connections=POLLERS, loader=self.loader, duration=seconds,
                                   max_requests=self.mode["max"])

            signing = self.sign_load(server.base, seconds)
            polled, signed = self._measure(server, poll, signing)
            self.out["count"]["while_signing"] = polled
            self.out["count"]["sign_during"] = signed
            self.deployed()
        if wanted("confirm"):
            self.confirm(server)
        if self.args.profile and wanted("sign"):
            self.profile(server)
        if wanted("growth"):
            self.growth()

    def deployed(self) -> None:
        """count.json alone and while signing once more, as deployed: through deploy/nginx/
        (TLS, the count-poll cache) in front of a second app server set up as
        docs/operations.md says (PROXY_COUNT=1, the https public URL). Both loads go through
        nginx."""
        if not nginx.nginx_path():
            self.out["deployed"] = {"skipped": "nginx is not installed"}
            return
        if "wrk" not in (self.loader, self.sign_loader) or self.loader != self.sign_loader:
            self.out["deployed"] = {"skipped": "needs wrk for both loads (https, self-signed)"}
            return
        self.log("as deployed: count while signing, through nginx")
        app = Server("petition:create_app()", self.env, self.tmp / "deployed.log")
        proxy = nginx.Nginx(app.port, self.tmp / "nginx", workers=os.cpu_count() or 1)
        app.env.update(PETITION_PROXY_COUNT="1", PETITION_PUBLIC_URL=proxy.https_base)
        # At least 3 s, even in a smoke run: the TLS handshakes of 320 new connections and the
        # first requests of a fresh app server took more than a second on a slow machine,
        # and a 1-second window then saw no signature at all.
        seconds = max(self.mode["get_s"], 3)
        url = proxy.https_base + f"/petitions/{self.seed.sign_slug}/count.json"
        with app, proxy:
            def poll(duration: float = seconds) -> loaders.Load:
                return loaders.get(url, connections=POLLERS, loader=self.loader,
                                   duration=duration, max_requests=self.mode["max"])

            if self.mode["warmup_s"]:  # untimed: TLS sessions, the cache entry, the workers
                poll(self.mode["warmup_s"]).result()
            alone = self._measure(app, poll)[0]
            polled, signed = self._measure(app, poll, self.sign_load(proxy.https_base, seconds))
        self.out["deployed"] = {"proxy": f"{nginx.version()}, deploy/nginx/ (site, snippet, petition-main.conf), TLS",
                                "count_alone": alone, "count_while_signing": polled,
                                "sign_during": signed}

    def confirm(self, server: Server) -> None:
        """Confirmation links from 64 clients: all on one demand vs one demand per client."""
        self.log("confirm: generating pending signatures and links")
        rounds = []
        layouts = {"hot": [self.seed.hot_demand_id], "spread": self.seed.spread_demand_ids}
        files: list[dict[str, Path]] = []
        links = self.mode["links"]
        for r in range(self.mode["rounds"]):
            files.append({})
            for layout, ids in layouts.items():
                path = self.tmp / f"links-{layout}-{r}.txt"
                dataset.confirm_links(self.app, ids, links // len(ids), path)
                files[r][layout] = path
        for r in range(self.mode["rounds"]):
            row = {}
            for layout in ("hot", "spread"):
                self.log(f"confirm round {r + 1}: {layout}")
                result = self._measure(server, lambda f=files[r][layout]: loaders.paths(
                    server.base, f, connections=CONCURRENCY, duration=self.mode["confirm_s"],
                    loader=self.loader))[0]
                result["links"] = links
                result["exhausted"] = result["requests"] >= links
                row[layout] = result
            rounds.append(row)
        hot = sum(r["hot"]["rps"] for r in rounds) / len(rounds)
        spread = sum(r["spread"]["rps"] for r in rounds) / len(rounds)
        state = dataset.count_state(self.app, [self.seed.hot_demand_id, *self.seed.spread_demand_ids])
        ok_responses = sum(r[layout]["requests"] - r[layout]["errors"]["total"]
                           for r in rounds for layout in ("hot", "spread"))
        self.out["confirm"] = {
            "rounds": rounds,
            "hot_rps": round(hot, 1),
            "spread_rps": round(spread, 1),
            "hot_over_spread": round(hot / spread, 3) if spread else None,
            # A load stopped at its deadline may leave one request per connection in flight,
            # which the server still confirms: at most that many more than the 2xx answers.
            "counts": {**state, "ok_responses": ok_responses,
                       "matches_responses": ok_responses <= state["confirmed"]
                       <= ok_responses + CONCURRENCY * 2 * len(rounds)},
            "errors": {"total": sum(r[layout]["errors"]["total"]
                                    for r in rounds for layout in ("hot", "spread"))},
        }

    def profile(self, server: Server) -> None:
        """An extra sign run under py-spy (not the measured one: sampling costs CPU).

        Only samples of threads holding the GIL are kept (`--gil`): the Python CPU time of
        the workers, not the waits for the GIL, the database or the network.
        """
        self.log("profile: sign under py-spy")
        seconds = self.mode["sign_s"]
        raw = self.tmp / "sign-profile.txt"
        start_load = self.sign_load(server.base, seconds)  # its warm-up runs now, unsampled
        self.quiet()
        recorder = pyspy.start(server.proc.pid, seconds, raw)  # type: ignore[union-attr]
        if recorder is None:
            self.out["profile"] = {"skipped": "py-spy not installed (requirements-bench.txt)"}
            return
        time.sleep(0.5)
        with CpuMeter(server) as meter:
            result = start_load().result()
        result["cpu"] = meter.result
        _, err = recorder.communicate(timeout=seconds + 60)
        if not raw.exists():
            self.out["profile"] = {"skipped": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
            return
        keep = self.args.results / f"sign-profile-{self.kind}.txt"
        keep.write_bytes(raw.read_bytes())
        per_signature = report.app_cpu_ms(result, "signatures", os.cpu_count())
        self.out["profile"] = {
            "workload": "sign", "tool": f"py-spy record --subprocesses --gil --nonblocking --rate {pyspy.RATE}",
            "raw": str(keep.relative_to(ROOT)),
            "signatures_per_s_while_sampled": result.get("signatures_per_s"),
            "app_cpu_ms_per_signature_while_sampled": per_signature and round(per_signature, 3),
            **pyspy.summarise(raw),
        }

    def growth(self) -> None:
        """count.json and the petition page with few vs many signatures in the database.

        The many-signature side is a second database (the same seed, then bulk-loaded); each
        side gets a freshly started gunicorn, and the runs alternate between the two servers
        (ABA...), so a slow phase of a shared machine hits both sides alike instead of
        whichever ran first.
        """
        small, large = self.mode["growth"]
        slug = self.seed.growth_slug
        out: dict[str, Any] = {"demand": slug, "interleaved": True}
        self.log(f"growth: a second database with {large:,} signatures on the measured demand")
        instance = self.tmp / "instance"
        url = dataset.fresh_database(self.kind, self.tmp, self.args.pg_url, suffix="_growth")
        app = dataset.make_app(url, instance)
        seed = dataset.seed(app, page_signatures=1000 if self.args.mode != "smoke" else 100,
                            growth_signatures=small)
        if seed.growth_slug != slug:
            raise SystemExit(f"growth: the two databases differ ({seed.growth_slug} != {slug})")
        out["insert_s"] = round(dataset.add_signatures(
            app, seed.growth_demand_id, large - small, "confirmed", first=small), 1)
        for each in (self.app, app):  # both freshly analysed, as autovacuum would
            dataset.analyse(each)
        totals = {"small": dataset.signatures_total(self.app), "large": dataset.signatures_total(app)}
        app.extensions["petition.engine"].dispose()
        paths = {"count": f"/petitions/{slug}/count.json", "page": f"/petitions/{slug}"}
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {
            (label, what): [] for label in ("small", "large") for what in paths}
        try:
            # The database's own work per request on each side (deterministic; bench/dbwork.py).
            out["db_work"] = {"small": dbwork.per_request(self.url, instance, paths),
                              "large": dbwork.per_request(url, instance, paths)}
            # Two fresh servers: the main one has served every workload by now, and an older
            # process (bigger heap, more for the GC to walk) would make its side look slower.
            with Server("petition:create_app()", dataset.server_env(self.url, instance),
                        self.tmp / "server-growth-few.log") as few, \
                 Server("petition:create_app()", dataset.server_env(url, instance),
                        self.tmp / "server-growth-many.log") as many:
                sides = {"small": few, "large": many}
                for label in sides:
                    self.log(f"growth: {label} ({totals[label]:,} signatures in the database)")
                for round_ in range(self.mode["growth_rounds"]):
                    order = ("small", "large") if round_ % 2 == 0 else ("large", "small")
                    for label in order:
                        for what, path in paths.items():
                            runs[(label, what)].append(
                                self.get(sides[label], path, seconds=self.mode["growth_s"]))
        finally:
            dataset.drop_database(url)
        for label, size in (("small", small), ("large", large)):
            out[label] = {"demand_signatures": size, "database_signatures": totals[label]}
            for what in paths:
                # Best of the rounds on each side: a shared machine's noise only ever lowers
                # a run, and both sides get the same treatment.
                out[label][what] = best_of(runs[(label, what)])
        for what in paths:
            a, b = out["small"][what]["rps"], out["large"][what]["rps"]
            out[f"{what}_change_pct"] = round((b - a) / a * 100, 1) if a else None
        self.out["growth"] = out

    def export(self) -> None:
        """bench/export.py (another engineer's): CSV export rows/s and peak RSS, as it reports."""
        script = HERE / "export.py"
        sizes = self.mode["export_sizes"]
        if not script.exists() or not sizes:
            self.out["export"] = {"skipped": "bench/export.py missing" if not script.exists()
                                  else f"not run in {self.args.mode} mode"}
            return
        self.log(f"export: bench/export.py --sizes {sizes}")
        if self.kind == "postgresql":
            url = dataset.fresh_database(self.kind, self.tmp, self.args.pg_url)
        else:
            url = f"sqlite:///{self.tmp / 'export.sqlite3'}"
        cmd = [sys.executable, str(script), "--database-url", url, "--sizes", sizes,
               "--repeat", str(self.mode["export_repeat"])]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                              timeout=3600)
        command = "bench/export.py " + shlex.join(cmd[2:])
        if proc.returncode != 0:
            self.out["export"] = {"error": proc.stderr[-2000:], "command": command}
            return
        start = proc.stdout.find("\n{")
        text = proc.stdout if proc.stdout.startswith("{") else proc.stdout[start + 1:]
        try:
            self.out["export"] = {**json.loads(text), "command": command}
        except json.JSONDecodeError:
            self.out["export"] = {"error": "unreadable output", "stdout": proc.stdout[-2000:]}

    def finish(self) -> None:
        """Percentages of the baseline and the error total."""
        base = self.out.get("baseline", {})
        b64 = (base.get("c64") or {}).get("rps")
        b256 = (base.get("c256") or {}).get("rps")
        py64 = (base.get("python_c64") or {}).get("rps")

        def pct(value: float | None, of: float | None) -> float | None:
            return round(value / of * 100, 1) if value and of else None

        for name in ("page", "qr"):
            if "rps" in self.out.get(name, {}):
                self.out[name]["pct_of_baseline"] = pct(self.out[name]["rps"], b64)
        if "count" in self.out:
            for key, res in self.out["count"].items():
                if key != "sign_during" and "rps" in res:
                    res["pct_of_baseline"] = pct(res["rps"], b256)
        deployed = self.out.get("deployed") or {}
        for key in ("count_alone", "count_while_signing"):
            if "rps" in deployed.get(key, {}):
                deployed[key]["pct_of_baseline"] = pct(deployed[key]["rps"], b256)
        for res in (self.out.get("sign"), (self.out.get("count") or {}).get("sign_during"),
                    deployed.get("sign_during"), self.out.get("sign_floor")):
            if res:
                res["pct_of_baseline"] = pct(res.get("signatures_per_s"), b64)
                res["pct_of_python_baseline"] = pct(res.get("signatures_per_s"), py64)
        if self.out.get("sign") and self.out.get("sign_floor"):
            self.out["sign"]["pct_of_floor"] = pct(self.out["sign"].get("signatures_per_s"),
                                                   self.out["sign_floor"].get("signatures_per_s"))
        if "confirm" in self.out:
            for layout in ("hot_rps", "spread_rps"):
                self.out["confirm"][layout.replace("rps", "pct_of_baseline")] = pct(
                    self.out["confirm"][layout], b64)
        self.out["errors_total"] = _count_errors(self.out)


def best_of(runs: list[dict[str, Any]], key: str = "rps") -> dict[str, Any]:
    """The run with the highest throughput (key), with every run's throughput in rounds_rps
    and the errors of all runs counted (no failed run hides behind a good one)."""
    best = max(runs, key=lambda res: res[key] or 0)
    errors = {**(best.get("errors") or {}),
              "total": sum(int((res.get("errors") or {}).get("total") or 0) for res in runs)}
    return {**best, "errors": errors, "rounds_rps": [res[key] for res in runs]}


def _count_errors(tree: Any) -> int:
    """Sum of every errors.total in the results (export and profile excluded)."""
    if isinstance(tree, dict):
        total = 0
        for key, value in tree.items():
            if key in ("export", "profile"):
                continue
            if key == "errors" and isinstance(value, dict) and "total" in value:
                total += int(value["total"])
            elif key != "errors":
                total += _count_errors(value)
        return total
    if isinstance(tree, list):
        return sum(_count_errors(v) for v in tree)
    return 0


def _probe(url: str) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            return {"status": response.status, "type": response.headers.get_content_type(),
                    "bytes": len(body)}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code}
    except OSError as exc:
        return {"status": None, "error": str(exc)}


def _body_bytes(url: str) -> int | None:
    return _probe(url).get("bytes")


def machine() -> dict[str, Any]:
    """What this machine is: cores, memory, CPU model, OS, Python."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _loader(choice: str) -> str:
    """wrk or python for a --loader choice ("auto": wrk when installed)."""
    if choice == "auto":
        return "wrk" if loaders.wrk_path() else "python"
    if choice == "wrk" and not loaders.wrk_path():
        raise SystemExit("wrk is not installed: `make bench-deps` (apt-get install wrk)")
    return choice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", choices=["postgresql", "sqlite"],
                        help="database(s) to run on (repeatable; default both)")
    parser.add_argument("--pg-url", default=DEFAULT_PG,
                        help="a dedicated PostgreSQL database, dropped and re-created "
                             "(default $BENCH_DATABASE_URL or .../bench)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="shorter loads; growth to 100k signatures")
    size.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="a few hundred requests per workload (for the tests)")
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto",
                        help="GET workloads: wrk (default when installed) or the Python client")
    parser.add_argument("--sign-loader", choices=["auto", "wrk", "python"], default="auto",
                        help="the sign flow: wrk with bench/wrk/sign.lua (default when installed) "
                             "or bench/load.py")
    parser.add_argument("--only", action="append",
                        choices=["page", "count", "qr", "sign", "confirm", "growth"])
    parser.add_argument("--profile", action="store_true", help="py-spy on the sign workload")
    parser.add_argument("--no-export", dest="export", action="store_false",
                        help="skip bench/export.py")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/performance.md")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/bench-<time>.json)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.mode = args.mode or "full"
    args.db = args.db or ["postgresql", "sqlite"]
    args.loader, args.sign_loader = _loader(args.loader), _loader(args.sign_loader)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.mode == "smoke":  # only checks that everything runs: start fewer workers
        os.environ.setdefault("GUNICORN_WORKERS", "1")

    started = datetime.now(UTC)
    command = "python bench/run.py " + shlex.join(sys.argv[1:])
    results: dict[str, Any] = {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "mode": args.mode,
        "command": command.strip(),
        "machine": machine(),
        "gunicorn": gunicorn_settings(),
        "loaders": {"get": args.loader, "wrk": loaders.wrk_version(),
                    "sign": args.sign_loader},
        "settings": {"concurrency": CONCURRENCY, "pollers": POLLERS, **{
            k: v for k, v in MODES[args.mode].items() if k != "max"}},
        "databases": {},
    }
    for kind in args.db:
        with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
            bench = Bench(kind, args, Path(tmp))
            try:
                results["databases"][kind] = bench.run()
            except Exception:
                log = Path(tmp) / "server.log"
                if log.exists():
                    print(log.read_text()[-3000:], file=sys.stderr)
                raise
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["targets"] = report.targets(results)

    out = args.out or args.results / f"bench-{started:%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    out.write_text(text + "\n")
    if not args.out:
        (args.results / "latest.json").write_text(text + "\n")
    print(report.table(results))
    print(f"\nresults: {out}")
    if args.docs:
        path = ROOT / "docs" / "performance.md"
        report.write_docs(results, path)
        print(f"rewrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
