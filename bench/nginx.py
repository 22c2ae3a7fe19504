"""nginx in front of a running app with the shipped config (deploy/nginx/), on loopback ports.

Used by tests/test_nginx.py and by the benchmarks' "as deployed" run. The top-level file
(petition-main.conf) is included as it is; the site file is used as it is, with only what an
install changes put in: the upstream address, the listen ports, the cache directory, the
certificate (a throwaway self-signed one), the snippet and static paths. A change to the
file that removes one of those lines fails loudly here.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "petition.conf"
SNIPPET = ROOT / "deploy" / "nginx" / "petition-proxy.conf"
MAIN = ROOT / "deploy" / "nginx" / "petition-main.conf"  # top-level directives, included as shipped
# What docs/operations.md ("Surges") has an install set in nginx.conf's events block, which
# an include cannot change. Debian ships 768, and each request passed to the app takes two
# connections (the visitor's and the app's).
WORKER_CONNECTIONS = 16384
DEBIAN_WORKER_CONNECTIONS = 768


def nginx_path() -> str | None:
    """The nginx binary (Debian's is in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def version() -> str:
    """e.g. "nginx/1.22.1" (nginx -v writes it to stderr)."""
    binary = nginx_path()
    if binary is None:
        return "nginx (not installed)"
    out = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    return out.rsplit(": ", 1)[-1] or "nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 valid for a day, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def render_site(*, upstream_port: int, https_port: int, http_port: int, cache_dir: Path,
                cert: Path, key: Path) -> str:
    """deploy/nginx/petition.conf with this machine's ports and paths put in."""
    text = SITE.read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/var/cache/nginx/petition-counts": str(cache_dir),
        "/etc/ssl/petition/fullchain.pem": str(cert),
        "/etc/ssl/petition/privkey.pem": str(key),
        "/etc/nginx/snippets/petition-proxy.conf": str(SNIPPET),
        "/srv/petition/static/": f"{ROOT / 'static'}/",
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{SITE} no longer contains {old!r}: update bench/nginx.py")
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx (master and `workers` worker processes) serving the site file in `directory`.

    https_base is https://127.0.0.1:PORT (the app's public URL), http_base the plain-HTTP
    port that redirects to it.
    """

    def __init__(self, upstream_port: int, directory: Path, *, workers: int = 1,
                 worker_connections: int = WORKER_CONNECTIONS) -> None:
        self.directory = directory
        self.https_port, self.http_port = _free_port(), _free_port()
        self.https_base = f"https://127.0.0.1:{self.https_port}"
        self.http_base = f"http://127.0.0.1:{self.http_port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed(directory)
        site = render_site(upstream_port=upstream_port, https_port=self.https_port,
                           http_port=self.http_port, cache_dir=directory / "cache",
                           cert=self.cert, key=key)
        (directory / "petition.conf").write_text(site)
        temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        # Run as root (CI), nginx's workers would switch to "nobody", who cannot read the
        # temporary directory: keep them as the user that started it.
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf = directory / "nginx.conf"
        self.conf.write_text(f"""
{user}
worker_processes {workers};
include {MAIN};
daemon off;
pid {directory / 'nginx.pid'};
error_log {directory / 'error.log'} warn;
events {{ worker_connections {worker_connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {directory / 'petition.conf'};
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self, *extra: str) -> list[str]:
        binary = nginx_path()
        if binary is None:
            raise RuntimeError("nginx is not installed (make chromium installs Debian's nginx-light)")
        return [binary, "-p", str(self.directory), "-e", str(self.directory / "error.log"),
                "-c", str(self.conf), *extra]

    def __enter__(self) -> Nginx:
        check = subprocess.run(self._command("-t"), capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{check.stderr}")
        self.proc = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.directory / 'error.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen within 20 s") from None
                time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def worker_pids(self) -> list[int]:
        """nginx's worker processes: the children of its master that serve requests (the
        cache manager and loader are children too)."""
        if self.proc is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    serving = b"worker process" in (entry / "cmdline").read_bytes()
                except (OSError, IndexError):
                    continue  # gone meanwhile
                if parent == self.proc.pid and serving:
                    found.append(int(entry.name))
        return found

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this run's certificate (and checks it)."""
        return ssl.create_default_context(cafile=str(self.cert))
