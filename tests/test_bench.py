"""Smoke test of the benchmark suite: a tiny `bench/run.py --smoke` run, well-formed results.

No timing assertions: only that every workload ran, produced the expected keys, and that
no request failed. SQLite always (with wrk for the GET loads and the sign flow when installed);
PostgreSQL too when PETITION_TEST_DATABASE_URL is set, with the Python client for every load,
on a database of its own (bench_smoke on the same server: the bench drops and re-creates it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench import nginx as bench_nginx
from tests.conftest import BACKENDS, PG_URL

ROOT = Path(__file__).resolve().parent.parent

import aiohttp  # noqa: E402, F401 - the benchmark client must be installed (requirements-dev.txt)


def _bench_pg_url() -> str:
    return make_url(PG_URL).set(database="bench_smoke").render_as_string(hide_password=False)


def _run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"bench-{len(list(tmp_path.glob('bench-*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--no-export",
         "--results", str(tmp_path / "results"), "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "== Targets" in proc.stdout
    return json.loads(out.read_text())


def _check(db: dict, kind: str, workloads: set[str], sign_loader: str) -> None:
    assert db["database"] == kind
    # the Python client's own ceiling is measured only when it runs the sign flow
    baselines = ("c64", "c256", "python_c64") if sign_loader == "python" else ("c64", "c256")
    assert set(db["baseline"]) == set(baselines)
    for key in baselines:
        assert db["baseline"][key]["rps"] > 0
    gets = []
    if "page" in workloads:
        gets.append(db["page"])
        assert db["page"]["body_bytes"] > 1000
    if "count" in workloads:
        gets += [db["count"]["alone"], db["count"]["while_signing"]]
        # count.json and the 256-connection baseline are measured alternately, best of each
        assert len(db["count"]["alone"]["rounds_rps"]) == len(db["baseline"]["c256"]["rounds_rps"]) >= 1
        deployed = db["deployed"]  # behind deploy/nginx: wrk only (https, self-signed)
        if sign_loader == "wrk":
            gets += [deployed["count_alone"], deployed["count_while_signing"]]
            assert deployed["proxy"].startswith("nginx/")
            assert deployed["count_while_signing"]["cpu"]["share_of_machine"]["proxy"] > 0
            during = deployed["sign_during"]
            assert during["signatures"] > 0 and during["errors"]["total"] == 0
            assert during["statuses"].get("POST 303") == during["signatures"]
        else:
            assert deployed == {"skipped": "needs wrk for both loads (https, self-signed)"}
    for res in gets:
        assert res["requests"] > 0 and res["rps"] > 0
        assert set(res["latency_ms"]) >= {"p50", "p99"}
        assert res["errors"]["total"] == 0
        assert 0 < res["pct_of_baseline"]
        assert set(res["cpu"]["share_of_machine"]) >= {"app", "postgres", "load_generator", "idle"}
    if "qr" in workloads:
        assert "rps" in db["qr"] or "skipped" in db["qr"]
    if "sign" in workloads:
        sign = db["sign"]
        assert sign["loader"] == ("wrk" if sign_loader == "wrk" else "python")
        assert sign["signatures"] > 0 and sign["signatures_per_s"] > 0
        assert set(sign["latency_ms"]) == {"get", "post", "flow"}
        assert sign["errors"]["total"] == 0
        assert sign["statuses"].get("POST 303") == sign["signatures"]
        assert sign["statuses"].get("GET 200", 0) >= sign["signatures"]
        assert all(sign["latency_ms"][phase]["p50"] > 0 for phase in ("get", "post", "flow"))
        # the same load on the framework alone (bench/floor_app.py), alternating with the app
        floor = db["sign_floor"]
        assert floor["signatures"] > 0 and floor["errors"]["total"] == 0
        assert floor["statuses"].get("POST 303") == floor["signatures"]
        assert sign["pct_of_floor"] == round(
            sign["signatures_per_s"] / floor["signatures_per_s"] * 100, 1)
    if "confirm" in workloads:
        confirm = db["confirm"]
        assert confirm["hot_rps"] > 0 and confirm["spread_rps"] > 0
        assert confirm["hot_over_spread"] > 0
        assert confirm["counts"]["exact"] is True
        assert confirm["counts"]["matches_responses"] is True
    if "growth" in workloads:
        growth = db["growth"]
        assert growth["small"]["demand_signatures"] < growth["large"]["demand_signatures"]
        assert growth["large"]["database_signatures"] > growth["small"]["database_signatures"]
        assert growth["count_change_pct"] is not None and growth["page_change_pct"] is not None
        # The database's own count of its work per request: no timing, the same every run,
        # and equal on both sides as long as no query reads the signatures table.
        work = growth["db_work"]
        assert work["small"]["unit"] == work["large"]["unit"] == (
            "VM instructions" if kind == "sqlite" else "buffer blocks")
        for what in ("count", "page"):
            assert work["small"][what] > 0
            assert work["small"][what] == work["large"][what], (what, work)
    assert db["errors_total"] == 0


ALL = {"page", "count", "qr", "sign", "confirm", "growth"}


def _check_run(results: dict, kind: str, workloads: set[str] = ALL) -> None:
    assert results["schema"] == 1 and results["mode"] == "smoke"
    assert results["machine"]["nproc"] >= 1
    assert results["gunicorn"]["workers"] >= 1
    _check(results["databases"][kind], kind, workloads, results["loaders"]["sign"])
    names = {t["target"] for t in results["targets"]}
    assert any(name.startswith("sign >= 1,000") for name in names)
    if "growth" in workloads:
        assert {"growth: count.json's database work per request changes < 10% (200 vs 1k)",
                "growth: page's database work per request changes < 10% (200 vs 1k)"} <= names
    assert all(t["met"] in (True, False, None) for t in results["targets"])


def test_bench_smoke_sqlite(tmp_path: Path) -> None:
    """The whole suite on SQLite; every load from wrk when installed (`make bench-deps`)."""
    results = _run(tmp_path, "--db", "sqlite")
    _check_run(results, "sqlite")
    loader = "wrk" if shutil.which("wrk") else "python"
    assert results["loaders"]["get"] == results["loaders"]["sign"] == loader

    # `--docs` rewrites the tables of docs/performance.md and keeps its hand-written sections.
    from bench import report

    docs = tmp_path / "performance.md"
    shutil.copy(ROOT / "docs" / "performance.md", docs)
    before = report._kept(docs.read_text())
    assert set(before) == set(report.KEPT_SECTIONS)
    report.write_docs(results, docs)
    text = docs.read_text()
    assert "mode `smoke`" in text
    for name, section in before.items():
        assert section.strip() in text, name


@pytest.mark.skipif(not PG_URL, reason="PETITION_TEST_DATABASE_URL not set")
def test_bench_smoke_postgresql(tmp_path: Path) -> None:
    """The writing workloads on PostgreSQL (COPY setup, sign, sharded confirm, count polling).

    The Python client for every load; page, qr and growth are the same code on both
    databases and run in the SQLite test, which keeps this file under a minute.
    """
    workloads = {"sign", "confirm", "count"}
    only = [arg for name in sorted(workloads) for arg in ("--only", name)]
    results = _run(tmp_path, "--db", "postgresql", "--pg-url", _bench_pg_url(),
                   "--loader", "python", "--sign-loader", "python", *only)
    _check_run(results, "postgresql", workloads)
    assert results["loaders"]["get"] == results["loaders"]["sign"] == "python"


@pytest.mark.parametrize("backend", BACKENDS)
def test_timing_probe_smoke(tmp_path: Path, backend: str) -> None:
    """bench/probe.py times a few submissions per state and writes well-formed results."""
    out = tmp_path / "probe.json"
    url = ["--database-url", _bench_pg_url()] if backend == "postgresql" else []
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "probe.py"), "-n", "12", "--warm-up", "2",
         "--out", str(out), *url],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["database"] == backend and report["rounds"] == 12
    assert set(report["states"]) == {"new", "pending", "confirmed", "at the cap", "invalidated"}
    for row in report["states"].values():
        assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
        assert 0 <= row["p_slower_than_new"] <= 1
    assert report["states"]["new"]["p_slower_than_new"] == 0.5  # against itself
    assert "P(confirmed slower than pending)" in proc.stdout


def test_surge_smoke(tmp_path: Path) -> None:
    """bench/surge.py runs a small surge through nginx with both events limits (Debian's and
    the documented one) and writes well-formed results; with the documented limit no visitor
    is refused and every signature the app accepted is in the database."""
    out = tmp_path / "surge.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "surge.py"), "--visitors", "300", "--duration", "2",
         "--signers", "4", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["database"] == "sqlite" and report["nginx"].startswith("nginx/")
    runs = {run["worker_connections"]: run for run in report["runs"]}
    assert set(runs) == {bench_nginx.DEBIAN_WORKER_CONNECTIONS, bench_nginx.WORKER_CONNECTIONS}
    for run in runs.values():
        assert run["visitors"] == 300
        assert run["pages"]["requests"] > 0 and run["pages"]["rps"] > 0
        assert run["sign"]["signatures"] > 0
        assert run["every_303_stored"] is True
        assert run["signatures_stored"] + run["sent_again"] == run["app_answered_303"] > 0
    documented = runs[bench_nginx.WORKER_CONNECTIONS]
    assert documented["sent_again"] == 0  # every signer's address is new (bench/wrk/sign.lua)
    assert documented["pages"]["errors"] == {"total": 0}
    assert documented["nginx_ran_out_of_connections"] == 0
    assert f"300 visitors, worker_connections {bench_nginx.WORKER_CONNECTIONS:>5}" in proc.stdout
