"""The sign profile's summary (bench/pyspy.py) and its table in docs/performance.md
(bench/report.py): shares of the samples taken inside requests, turned into milliseconds of
the app's CPU per signature with the share of all samples that fell inside requests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import pyspy  # noqa: E402
import report  # noqa: E402

SITE = "/work/.venv/lib/python3.11/site-packages"
HANDLE = "ThreadWorker.handle_request (gunicorn/workers/gthread.py:300)"
PARSE = "Parser.__next__ (gunicorn/http/parser.py:119)"
WSGI = f"Flask.wsgi_app ({SITE}/flask/app.py:1479)"
SIGN = "petition_sign (/work/main/petition/signing/routes.py:228)"
FORM = f"Form.__init__ ({SITE}/wtforms/form.py:277)"

# py-spy's raw format: "process ...;process ...;outermost;...;innermost COUNT"
MASTER, WORKER = 'process 11:"python -m gunicorn"', 'process 12:"python -m gunicorn"'
RAW = "\n".join([
    f"{MASTER};{WORKER};{HANDLE};{WSGI};{SIGN};{FORM} 3",
    f"{MASTER};{WORKER};{HANDLE};{WSGI};{SIGN} 3",
    f"{MASTER};{WORKER};{HANDLE};{WSGI} 2",
    f"{MASTER};{WORKER};{PARSE} 2",  # gunicorn's own work between requests
    "not a sample line",
])


def _summary(tmp_path: Path) -> dict:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    return pyspy.summarise(raw)


def test_summary_counts_request_samples_and_all_samples(tmp_path: Path) -> None:
    summary = _summary(tmp_path)
    assert summary["samples_in_requests"] == 8
    assert summary["samples_all"] == 10
    inclusive = {row["function"]: row["share"] for row in summary["inclusive"]}
    assert inclusive["Flask.wsgi_app (flask/app.py)"] == 1.0
    assert inclusive["petition_sign (petition/signing/routes.py)"] == 0.75
    assert "Parser.__next__ (gunicorn/http/parser.py)" not in inclusive  # outside a request
    own = {row["function"]: row["share"] for row in summary["self"]}
    assert own == {"Form.__init__ (wtforms/form.py)": 0.375,
                   "petition_sign (petition/signing/routes.py)": 0.375,
                   "Flask.wsgi_app (flask/app.py)": 0.25}


def test_profile_table_gives_each_share_in_ms_per_signature(tmp_path: Path) -> None:
    # 2 ms of app CPU per signature, 80% of the samples in requests: 1.6 ms in requests
    prof = {**_summary(tmp_path), "raw": "bench/results/sign-profile-postgresql.txt",
            "signatures_per_s_while_sampled": 500.0,
            "app_cpu_ms_per_signature_while_sampled": 2.0}
    text = report._profile_md("postgresql", prof)
    assert "the app's CPU 2.0 ms per signature, 80% of it in requests" in text
    assert "| `petition_sign (petition/signing/routes.py)` | 75.0% | 1.200 |" in text
    assert "| `Flask.wsgi_app (flask/app.py)` | 100.0% | 1.600 |" in text


def test_profile_table_without_cpu_keeps_the_shares(tmp_path: Path) -> None:
    """Results saved before the CPU was measured render as before: shares only."""
    prof = {**_summary(tmp_path), "raw": "r.txt", "signatures_per_s_while_sampled": 1.0}
    text = report._profile_md("sqlite", prof)
    assert "| function | inclusive |\n|---|---|" in text
    assert "| `petition_sign (petition/signing/routes.py)` | 75.0% |" in text
