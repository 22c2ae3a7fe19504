"""Smoke test of the in-process cost measures: bench/cpu.py --only and bench/instructions.py
(valgrind's instruction count per request). Well-formed output only, no timing assertions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PETITION_")}


def _run(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.mark.parametrize(("only", "extra"), [
    (["count"], []),
    (["sign", "floor"], []),
    (["signed", "confirm", "sign_campaign"], []),
    (["sign_limited"], []),  # rate limits on, counted in memory
    (["sign", "sign_limited"], ["--redis-url", "redis://127.0.0.1:6379/0"]),  # in Redis
])
def test_cpu_measures_only_the_named_workloads_and_hello(only: list[str], extra: list[str]) -> None:
    # cpu.py stops with an error when a response is not the expected one (a signature that is
    # not a 303, on the app or on the framework floor, or one refused by a rate limit), so
    # this also checks the flows work.
    args = [a for name in only for a in ("--only", name)] + extra
    proc = _run("bench/cpu.py", "-n", "3", *args, "--json", timeout=300)
    result = json.loads(proc.stdout)
    assert result["n"] == 3
    assert set(result["cpu_ms"]) == {"hello", *only}
    assert all(ms > 0 for ms in result["cpu_ms"].values())


def test_instruction_count_per_request_is_the_difference_of_two_runs() -> None:
    proc = _run("bench/instructions.py", "--only", "hello", "--small", "1", "--large", "3",
                timeout=900)
    totals = re.search(r"instructions: ([\d,]+) \(n=1\), ([\d,]+) \(n=3\)", proc.stdout)
    assert totals, proc.stdout
    small, large = (int(t.replace(",", "")) for t in totals.groups())
    assert large > small > 1_000_000
    per = re.search(r"per request of hello: ([\d.]+) M instructions", proc.stdout)
    assert per, proc.stdout
    assert abs(float(per.group(1)) - (large - small) / 2 / 1e6) < 0.001


THREE_DATABASES = [f"--database-url=postgresql+psycopg://postgres@127.0.0.1:5432/cg{i}"
                   for i in (1, 2, 3)]


@pytest.mark.parametrize(("args", "message"), [
    (["--small", "5", "--large", "5"], "--large must be more than --small"),
    (THREE_DATABASES, "give at most two --database-url"),
])
def test_instruction_count_refuses_bad_arguments(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "bench/instructions.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 2
    assert message in proc.stderr
