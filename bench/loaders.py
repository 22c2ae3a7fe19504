"""Start load-generating processes (wrk with bench/wrk/*.lua, or bench/load.py) and read results.

Every loader is a separate process talking to the server over loopback; every one is bounded
by a duration (and the Python one also by a request count) and stops by itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WRK_DIR = HERE / "wrk"


def wrk_path() -> str | None:
    """The wrk binary (Debian's package), or None."""
    return shutil.which("wrk")


def wrk_version() -> str | None:
    path = wrk_path()
    if not path:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("Copyright")[0].strip() or None


class Load:
    """One running load process; result() waits for it and returns the normalised JSON."""

    def __init__(self, cmd: list[str], kind: str, timeout: float, **meta: Any) -> None:
        self.cmd, self.kind, self.timeout, self.meta = cmd, kind, timeout, meta
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise RuntimeError(f"load process did not stop in time: {self.cmd}") from None
        if self.proc.returncode != 0:
            raise RuntimeError(f"{self.cmd} failed ({self.proc.returncode}):\n{err[-2000:]}")
        if self.kind == "wrk":
            return {**_parse_wrk(out), **self.meta}
        if self.kind == "wrk-sign":
            return {**_parse_wrk_sign(out), **self.meta}
        return {**json.loads(out.strip().splitlines()[-1]), **self.meta}


def _parse_wrk(out: str) -> dict[str, Any]:
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"no result from wrk:\n{out[-2000:]}")
    raw = json.loads(line[len("WRKJSON "):])
    seconds = raw["duration_us"] / 1e6
    requests = raw["requests"]
    errors = {k: v for k, v in raw["errors"].items() if v}
    return {
        "loader": "wrk",
        "duration_s": round(seconds, 3),
        "requests": requests,
        "rps": round(requests / seconds, 1) if seconds else None,
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
        "bytes_per_response": round(raw["bytes"] / requests) if requests else None,
        "errors": {"total": sum(errors.values()), **errors},
    }


def _parse_wrk_sign(out: str) -> dict[str, Any]:
    """sign.lua's summary in the shape of bench/load.py's sign result."""
    line = next((x for x in out.splitlines() if x.startswith("WRKSIGN ")), None)
    if line is None:
        raise RuntimeError(f"no result from wrk (sign.lua):\n{out[-2000:]}")
    raw = json.loads(line[len("WRKSIGN "):])
    seconds = raw["duration_us"] / 1e6
    requests = raw["requests"]
    return {
        "loader": "wrk",
        "duration_s": round(seconds, 3),
        "requests": requests,
        "rps": round(requests / seconds, 1) if seconds else None,
        "signatures": raw["signatures"],
        "signatures_per_s": round(raw["signatures"] / seconds, 1) if seconds else None,
        "latency_ms": raw["latency_ms"],
        "bytes_per_response": round(raw["bytes"] / requests) if requests else None,
        "errors": {"total": sum(raw["errors"].values()), **raw["errors"]},
        "statuses": raw["statuses"],
    }


def get(url: str, *, connections: int, duration: float, max_requests: int, loader: str,
        threads: int = 2) -> Load:
    """GET one URL repeatedly from `connections` keep-alive connections."""
    if loader == "wrk":
        cmd = [wrk_path() or "wrk", "-t", str(min(threads, connections)), "-c", str(connections),
               "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(WRK_DIR / "get.lua"), url]
        return Load(cmd, "wrk", duration + 30, connections=connections)
    cmd = [sys.executable, str(HERE / "load.py"), "get", "--url", url, "-c", str(connections),
           "--duration", str(duration), "--max", str(max_requests)]
    return Load(cmd, "python", duration + 60)


def paths(base: str, file: Path, *, connections: int, duration: float, loader: str) -> Load:
    """GET every path of a file once (confirmation links); one connection per wrk thread."""
    if loader == "wrk":
        cmd = [wrk_path() or "wrk", "-t", str(connections), "-c", str(connections),
               "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(WRK_DIR / "paths.lua"), base, "--", str(file), str(connections)]
        return Load(cmd, "wrk", duration + 30, connections=connections)
    cmd = [sys.executable, str(HERE / "load.py"), "paths", "--base", base, "--file", str(file),
           "-c", str(connections), "--duration", str(duration)]
    return Load(cmd, "python", duration + 60)


def _wrk_sign_cmd(base: str, slug: str, *, concurrency: int, seconds: float, tag: str,
                  per_thread: int) -> list[str]:
    """wrk running bench/wrk/sign.lua with one connection per thread."""
    return [wrk_path() or "wrk", "-t", str(concurrency), "-c", str(concurrency),
            "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(WRK_DIR / "sign.lua"), base, "--", slug, tag, str(per_thread)]


def sign_warmup(base: str, slug: str, *, concurrency: int, seconds: float, tag: str) -> None:
    """Untimed signatures through wrk before a measured sign load (one per connection, within
    `seconds`): every worker has its imports, templates and database pool warm."""
    cmd = _wrk_sign_cmd(base, slug, concurrency=concurrency, seconds=seconds, tag=tag, per_thread=1)
    _parse_wrk_sign(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                   timeout=seconds + 30).stdout)


def sign(base: str, slug: str, *, concurrency: int, duration: float, max_signatures: int,
         warmup: int, tag: str, loader: str) -> Load:
    """The sign form flow: wrk with bench/wrk/sign.lua (one connection per thread, so each
    thread is one supporter with its own cookie) or bench/load.py; the same request mix."""
    if loader == "wrk":  # (its warm-up is sign_warmup(), run before the measurement)
        cmd = _wrk_sign_cmd(base, slug, concurrency=concurrency, seconds=duration, tag=tag,
                            per_thread=-(-max_signatures // concurrency))
        return Load(cmd, "wrk-sign", duration + 30, concurrency=concurrency)
    cmd = [sys.executable, str(HERE / "load.py"), "sign", "--base", base, "--slug", slug,
           "-c", str(concurrency), "--duration", str(duration), "--max", str(max_signatures),
           "--warmup", str(warmup), "--tag", tag]
    return Load(cmd, "python", duration + 120)
