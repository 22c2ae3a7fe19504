"""Smoke test of bench/export.py: a tiny run on each test database, well-formed results.

No timing assertions: only that the export ran through the view, was audited, and that the
database's own dump (the ceiling) was measured next to it under the keys bench/report.py reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (300, 1200)
DUMP_KEYS = {"dump_tool", "dump_bytes", "dump_s", "dump_seconds", "dump_rows_per_s",
             "vs_dump_ratio"}


def _bench(tmp_path: Path, database_url: str, env: dict[str, str] | None = None) -> dict:
    out = tmp_path / "export.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "export.py"), "--database-url", database_url,
         "--sizes", ",".join(map(str, SIZES)), "--repeat", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=env or {k: v for k, v in os.environ.items()
                    if not k.startswith(("PETITION_", "GUNICORN_"))},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    printed = json.loads(proc.stdout)  # bench/run.py reads the JSON from stdout
    assert json.loads(out.read_text()) == printed
    return printed


def _check(results: dict, kind: str) -> None:
    assert results["database"].startswith(kind)
    runs = results["runs"]
    assert [run["signatures"] for run in runs] == list(SIZES)
    for run in runs:
        assert run["rows"] == run["audited_rows"] == run["signatures"]
        assert run["rows_per_s"] > 0 and run["rss_peak_during_export_mb"] > 0
        assert DUMP_KEYS <= set(run)
        assert run["dump_bytes"] > 0 and run["dump_seconds"] > 0 and run["dump_rows_per_s"] > 0
        assert run["vs_dump_ratio"] > 0  # export time / dump time (timings are rounded)
    assert results["vs_dump_ratio_large"] == runs[-1]["vs_dump_ratio"]
    # bench/report.py takes a large run's key with "dump" and "rows_per_s" as the ceiling.
    assert [k for k in runs[-1] if "dump" in k and "rows_per_s" in k] == ["dump_rows_per_s"]


def test_export_bench_measures_the_dump_ceiling(tmp_path: Path, database_url: str) -> None:
    """SQLite (the sqlite3 shell if installed) and PostgreSQL (COPY) when configured."""
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    results = _bench(tmp_path, database_url)
    _check(results, kind)
    tool = results["runs"][-1]["dump_tool"]
    assert ("COPY" in tool) if kind == "postgresql" else ("sqlite3" in tool)


def test_export_bench_without_the_sqlite3_shell(tmp_path: Path) -> None:
    """Without the `sqlite3` command the ceiling is Python's sqlite3 module writing CSV."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))}
    env["PATH"] = str(tmp_path / "empty-bin")  # no sqlite3 on it
    results = _bench(tmp_path, f"sqlite:///{tmp_path / 'bench.sqlite3'}", env)
    _check(results, "sqlite")
    assert "Python sqlite3 module" in results["runs"][-1]["dump_tool"]


def test_the_report_names_each_export_of_a_best_of_several() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import report

    run = {"rows": 1_000_000, "export_s": [8.0, 5.0, 10.0], "dump_tool": "COPY",
           "dump_rows_per_s": 200_000, "vs_dump_ratio": 1.0}
    note = report._dump_note(run)
    assert note.endswith("; best of 3: 125,000, 200,000, 100,000 rows/s")
    assert "best of" not in report._dump_note({**run, "export_s": [5.0]})
