"""Smoke test of bench/rekey.py: a tiny run per database gives well-formed results.

No timing assertions: only that the real `flask rotate-data-key` ran on the generated
signatures and queued emails, and that the script checked the new key afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent
SIZES = (300, 2500)


@pytest.mark.parametrize("kind", ["sqlite"] + (["postgresql"] if PG_URL else []))
def test_rekey_bench_times_the_real_command(kind: str, tmp_path: Path) -> None:
    out = tmp_path / "rekey.json"
    url = PG_URL.rsplit("/", 1)[0] + "/bench_smoke" if kind == "postgresql" else ""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rekey.py"), "--database-url", url,
         "--sizes", ",".join(map(str, SIZES)), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))},
    )
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    results = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == results
    assert results["database"] == kind
    assert [run["signatures"] for run in results["runs"]] == list(SIZES)
    for run in results["runs"]:
        assert run["rotate_s"] > 0 and run["signatures_per_s"] > 0 and run["load_s"] >= 0
        emails = max(1, run["signatures"] // 1000)
        assert run["output"][0] == (
            f"The data key is changed: {run['signatures']} signatures, {emails} queued "
            f"email{'s' if emails != 1 else ''} and 0 audit entries rewritten with the new key; "
            f"{run['signatures']} IP address hashes erased.")
