"""gunicorn under the project's gunicorn.conf.py on a free loopback port, and CPU accounting."""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "gunicorn.conf.py"
CLK = os.sysconf("SC_CLK_TCK")


def gunicorn_settings() -> dict[str, Any]:
    """workers, threads, worker_class ... as gunicorn.conf.py computes them on this machine."""
    conf = runpy.run_path(str(CONF))
    return {k: conf[k] for k in ("workers", "threads", "worker_class", "timeout", "keepalive",
                                 "max_requests", "accesslog") if k in conf}


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`gunicorn -c gunicorn.conf.py APP` with GUNICORN_BIND set to a free loopback port.

    The access log stays on (as in production) and goes to log_path with the error log.
    """

    def __init__(self, app_spec: str, env: dict[str, str], log_path: Path,
                 extra_args: tuple[str, ...] = (), ready_path: str = "/") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.app_spec, self.extra_args, self.ready_path = app_spec, extra_args, ready_path
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.env.setdefault("PETITION_PUBLIC_URL", self.base)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), *self.extra_args, self.app_spec],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=5) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("gunicorn did not answer in time") from None
                time.sleep(0.1)
        # Every worker imports the app after the fork: wait until all of them are up.
        expected = int(gunicorn_settings()["workers"])
        while len(self.worker_pids()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [pid for pid, info in _proc_table().items() if info.ppid == self.proc.pid]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class _Proc:
    comm: str
    ppid: int
    own: int  # utime + stime, clock ticks
    children: int  # cutime + cstime (reaped children)


def _proc_table() -> dict[int, _Proc]:
    table: dict[int, _Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        table[int(entry)] = _Proc(comm, int(fields[1]), int(fields[11]) + int(fields[12]),
                                  int(fields[13]) + int(fields[14]))
    return table


def _machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


def wait_quiet(threshold: float = 0.15, timeout: float = 20.0) -> dict[str, float]:
    """Wait (at most timeout s) until the machine is nearly idle before a measurement.

    The machine may be shared (other test runs): a load started while something else burns
    CPU measures that something as well. Returns how long it waited and the busy share seen.
    """
    start = time.monotonic()
    while True:
        busy0, total0 = _machine_busy()
        time.sleep(1.0)
        busy1, total1 = _machine_busy()
        share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        waited = time.monotonic() - start - 1.0
        if share <= threshold or waited >= timeout:
            return {"waited_s": round(waited, 1), "busy_share_before": round(share, 3)}


class CpuMeter:
    """CPU seconds used by the app server, PostgreSQL, nginx, the load generators and the rest."""

    def __init__(self, server: Server | None) -> None:
        self.server = server

    def _sample(self) -> dict[str, float]:
        table = _proc_table()
        app = 0
        if self.server is not None and self.server.proc is not None:
            master = self.server.proc.pid
            if master in table:
                app = table[master].own + table[master].children
                app += sum(p.own for p in table.values() if p.ppid == master)
        pg = sum(p.own for p in table.values() if p.comm == "postgres")
        proxy = sum(p.own for p in table.values() if p.comm == "nginx")
        pg += sum(p.children for pid, p in table.items()
                  if p.comm == "postgres" and table.get(p.ppid, _Proc("", 0, 0, 0)).comm != "postgres")
        import resource

        load = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy, total = _machine_busy()
        return {"app": app / CLK, "postgres": pg / CLK, "proxy": proxy / CLK,
                "load": load.ru_utime + load.ru_stime, "busy": busy / CLK, "wall": time.monotonic()}

    def __enter__(self) -> CpuMeter:
        self.before = self._sample()
        return self

    def __exit__(self, *_exc: object) -> None:
        after = self._sample()
        d = {k: after[k] - self.before[k] for k in after}
        capacity = d["wall"] * (os.cpu_count() or 1)
        other = max(0.0, d["busy"] - d["app"] - d["postgres"] - d["proxy"] - d["load"])
        self.result = {
            "wall_s": round(d["wall"], 2),
            "share_of_machine": {
                "app": round(d["app"] / capacity, 3),
                "postgres": round(d["postgres"] / capacity, 3),
                "load_generator": round(d["load"] / capacity, 3),
                "proxy": round(d["proxy"] / capacity, 3),  # nginx, in the "as deployed" run
                "other": round(other / capacity, 3),
                "idle": round(max(0.0, 1 - d["busy"] / capacity), 3),
            },
        }
