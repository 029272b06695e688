"""Fault-injection helpers of the reliability suite.

* :class:`FaultProxy`: an HTTP proxy in front of the local Hub (olah) that counts requests and
  injects faults (HTTP 5xx answers, stalls, connection resets, a server that dies
  mid-transfer) and can throttle file bodies, so that a transfer is slow enough to interrupt.
* :func:`tree_state` / :func:`lost_bytes`: hash a user's data folder or a verified cache entry
  before and after a fault, to measure the bytes the zoo destroyed or corrupted.
* :func:`tmpfs`, :func:`read_only_bind` and :func:`unprivileged`: privileged fixtures (a small
  tmpfs for a full disk, a read-only mount, a child process that drops root) that skip with
  the reason when this machine does not allow them.
* :class:`PublishedWeights`: LeNet-5 weights published in a fresh repo of the local Hub, with a
  temporary manifest (``ZOO_MANIFEST``) that names them, and a second, already verified
  "bystander" entry whose cache copy must survive every fault.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.server
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# --------------------------------------------------------------------------------------
# FaultProxy
# --------------------------------------------------------------------------------------

FAULT_MODES = ("status", "stall", "reset", "kill")


def is_file_get(method: str, path: str) -> bool:
    """Whether a request downloads a file body (``GET .../resolve/...``)."""
    return method == "GET" and "/resolve/" in path


@dataclass
class Fault:
    """One fault the proxy injects into the next ``times`` requests that ``match``.

    Modes:
        ``status``: answer ``status`` (default 503) without asking the upstream server.
        ``stall``: send the headers and ``keep`` bytes of the body (``keep=None``: not even
            the headers), then hold the connection open, silent, for ``seconds``.
        ``reset``: send the headers and ``keep`` bytes, then reset the connection (TCP RST).
        ``kill``: send the headers and ``keep`` bytes, then the whole server dies: every open
            connection is reset, the port stops listening and ``on_fire`` runs (e.g. to
            SIGKILL the olah process behind the proxy).
    """

    mode: str
    match: Callable[[str, str], bool] = is_file_get
    times: int | None = 1
    status: int = 503
    keep: int | None = 0
    seconds: float = 30.0
    on_fire: Callable[[], Any] | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}, got {self.mode!r}")


@dataclass
class Request:
    method: str
    path: str
    status: int | None = None
    body_bytes: int = 0
    fault: str | None = None


class FaultProxy:
    """An HTTP proxy in front of a local Hub that counts requests and injects :class:`Fault` s.

    >>> with FaultProxy(hub.endpoint, faults=[Fault("status", status=503, times=2)]) as proxy:
    ...     point_hf_hub_at(monkeypatch, proxy.endpoint, hf_home)
    ...     zoo.pull(...)
    >>> proxy.count("GET", "/resolve/")

    ``rate`` (bytes/s) throttles file bodies (``GET .../resolve/``), so that a transfer takes
    long enough to interrupt; ``progress`` then tells how many body bytes went out so far.
    Bodies are read from the upstream whole (the test files are small) and sent in 16 KiB
    chunks. Upstream connection errors answer 502.
    """

    CHUNK = 16 * 1024

    def __init__(
        self, upstream: str, *, faults: list[Fault] | None = None, rate: float | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults or [])
        self.rate = rate
        self.requests: list[Request] = []
        self.progress = 0  # file-body bytes sent, over all requests
        self.dead = False
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ queries
    @property
    def endpoint(self) -> str:
        if self._port is None:
            raise RuntimeError("FaultProxy not started")
        return f"http://127.0.0.1:{self._port}"

    def count(self, method: str, contains: str = "") -> int:
        """Requests received with ``method`` whose path contains ``contains``."""
        with self._lock:
            return sum(r.method == method and contains in r.path for r in self.requests)

    def summary(self) -> Counter[str]:
        with self._lock:
            return Counter(f"{r.method} {r.status} {r.fault or ''}".strip() for r in self.requests)

    # ------------------------------------------------------------------ control
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.times is None or fault.fired < fault.times) and fault.match(method, path):
                    fault.fired += 1
                    return fault
        return None

    def kill(self) -> None:
        """Die like a killed server: reset every open connection and stop listening."""
        self.dead = True
        self._release.set()
        server, self._server = self._server, None
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()
            server.socket.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _reset(conn)

    def start(self) -> FaultProxy:
        proxy = self
        host, _, port = self.upstream.removeprefix("http://").partition(":")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._conns.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._conns.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _upstream(self) -> tuple[int, list[tuple[str, str]], bytes]:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                skip = {"host", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                conn = http.client.HTTPConnection(host, int(port or 80), timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    return resp.status, resp.getheaders(), resp.read()
                finally:
                    conn.close()

            def _send_body(self, data: bytes, record: Request, limit: int | None) -> None:
                file_body = is_file_get(self.command, self.path)
                end = len(data) if limit is None else min(limit, len(data))
                sent = 0
                while sent < end:
                    chunk = data[sent : min(end, sent + proxy.CHUNK)]
                    if proxy.rate and file_body:
                        time.sleep(len(chunk) / proxy.rate)
                    if proxy.dead:
                        raise ConnectionResetError("the proxy was killed")
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    sent += len(chunk)
                    record.body_bytes = sent
                    if file_body:
                        with proxy._lock:
                            proxy.progress += len(chunk)

            def _handle(self) -> None:
                if proxy.dead:
                    _reset(self.connection)
                    return
                record = Request(self.command, self.path)
                with proxy._lock:
                    proxy.requests.append(record)
                fault = proxy._pick(self.command, self.path)
                record.fault = fault.mode if fault else None
                if fault is not None and fault.mode == "status":
                    record.status = fault.status
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", "15")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b"injected fault\n")
                    return
                if fault is not None and fault.mode == "stall" and fault.keep is None:
                    proxy._release.wait(fault.seconds)
                    self.close_connection = True
                    return
                try:
                    status, headers, data = self._upstream()
                except OSError:
                    status, headers, data = 502, [("Content-Type", "text/plain")], b"upstream down\n"
                record.status = status
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                if self.command == "HEAD":
                    cl = {k.lower(): v for k, v in headers}.get("content-length")
                    if cl is not None:
                        self.send_header("Content-Length", cl)
                else:
                    self.send_header("Content-Length", str(len(data)))
                if fault is not None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command == "HEAD":
                    self.wfile.flush()
                    return
                limit = None if fault is None else (fault.keep or 0)
                self._send_body(data, record, limit)
                if fault is None:
                    return
                if fault.mode == "stall":
                    proxy._release.wait(fault.seconds)
                elif fault.mode == "reset":
                    _reset(self.connection)
                elif fault.mode == "kill":  # first no more answers, then whatever else dies
                    proxy.kill()
                    if fault.on_fire is not None:
                        fault.on_fire()

            def _safe(self) -> None:
                try:
                    self._handle()
                except OSError:  # the client went away, or a reset/kill fault closed the socket
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = _safe

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._release.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _reset(conn: socket.socket) -> None:
    """Close a socket with a TCP RST (SO_LINGER 0) instead of a clean FIN."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.close()


# --------------------------------------------------------------------------------------
# Data-loss accounting
# --------------------------------------------------------------------------------------


def tree_state(*roots: Path) -> dict[str, tuple[str, int]]:
    """``{path: (sha256 or 'link:<target>', size)}`` of every file and symlink under ``roots``."""
    state: dict[str, tuple[str, int]] = {}
    for root in roots:
        root = Path(root)
        paths = [root] if root.is_file() or root.is_symlink() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_symlink():
                target = os.readlink(path)
                size = path.stat().st_size if path.exists() else 0
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
                state[str(path)] = (f"link:{target}:{digest}", size)
            elif path.is_file():
                state[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
    return state


def lost_bytes(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]) -> int:
    """Bytes of ``before`` that are gone or changed in ``after`` (new files do not count)."""
    return sum(size for path, (digest, size) in before.items() if after.get(path, (None,))[0] != digest)


def leftovers(cache_dir: Path, min_size: int = 1000) -> list[Path]:
    """Files in an HF cache that hold weights-sized data: blobs, snapshots, temporaries."""
    return sorted(
        p
        for p in Path(cache_dir).rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_size >= min_size
    )


def incomplete_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in Path(cache_dir).rglob("*") if ".incomplete" in p.name)


# --------------------------------------------------------------------------------------
# Privileged helpers (skip with a reason when not allowed)
# --------------------------------------------------------------------------------------


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("mount") is None:
        return subprocess.CompletedProcess(["mount"], 127, "", "no mount binary")
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes on ``path`` (created), or skip the test with the reason."""
    path.mkdir(parents=True, exist_ok=True)
    size = max(4096, size // 4096 * 4096)
    res = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if res.returncode != 0:
        reason = res.stderr.strip() or res.returncode
        pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {reason}")
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only_bind(path: Path) -> Iterator[Path]:
    """Make ``path`` a read-only bind mount of itself (EROFS even for root), or skip."""
    res = _mount("--bind", str(path), str(path))
    if res.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs CAP_SYS_ADMIN): {res.stderr.strip() or res.returncode}")
    try:
        res = _mount("-o", "remount,bind,ro", str(path))
        if res.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {res.stderr.strip() or res.returncode}")
        probe = path / f".probe-{uuid.uuid4().hex[:6]}"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("a read-only remount still accepts writes on this machine")
        yield path
    finally:
        _umount(path)


DROP_DAC = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def unprivileged() -> tuple[list[str], dict[str, Any]]:
    """``(command prefix, subprocess kwargs)`` that run a child to which permission bits apply.

    Not root: nothing to do. Root: run as ``nobody`` when ``nobody`` can run this Python;
    else stay root but drop ``CAP_DAC_OVERRIDE``/``CAP_DAC_READ_SEARCH`` with ``setpriv``
    (then a folder without the owner's write bit refuses writes). Skips the test with the
    reason when neither works here.
    """
    if os.geteuid() != 0:
        return [], {}
    import pwd

    reasons = []
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        reasons.append("no 'nobody' user")
    else:
        kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        try:
            probe = subprocess.run(
                [sys.executable, "-c", "pass"], capture_output=True, timeout=60, check=False, **kwargs
            )
        except OSError as exc:
            reasons.append(f"'nobody' cannot run {sys.executable} ({exc.strerror})")
        else:
            if probe.returncode == 0:
                return [], kwargs
            reasons.append(f"'nobody' cannot run {sys.executable} (rc {probe.returncode})")
    if shutil.which("setpriv"):
        probe = subprocess.run(
            [*DROP_DAC, sys.executable, "-c", "pass"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return DROP_DAC, {}
        reasons.append(f"setpriv failed ({probe.stderr.decode(errors='replace').strip()[:120]})")
    else:
        reasons.append("no setpriv binary")
    pytest.skip(
        "running as root and cannot drop the privilege to ignore permission bits: " + "; ".join(reasons)
    )


def make_read_only(root: Path) -> None:
    """Remove every write bit under ``root`` (folders stay listable)."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod(0o555 if path.is_dir() else 0o444)


def world_readable_tmpdir(prefix: str) -> Path:
    """A temporary folder that an unprivileged child can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------------------
# Weights published on the local Hub, with a temporary manifest
# --------------------------------------------------------------------------------------


@dataclass
class PublishedWeights:
    """LeNet-5 weights in a fresh local Hub repo, named ``lenet5.hub`` by a temporary manifest.

    The manifest also names ``lenet5.bystander``: other weights in another repo, pulled and
    verified before the fault, whose cache entry (:attr:`bystander_dir`) must come through
    every fault intact.
    """

    hub: Any
    weights: Path
    bystander: Path
    workdir: Path
    repo_id: str = ""
    revision: str = ""
    bystander_repo: str = ""
    bystander_revision: str = ""
    manifest: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def publish(self) -> PublishedWeights:
        tag = uuid.uuid4().hex[:8]
        self.repo_id = f"zoo-rel/lenet5-{tag}"
        self.revision = self.hub.add_repo(self.repo_id, {self.weights.name: self.weights.read_bytes()})
        self.bystander_repo = f"zoo-rel/bystander-{tag}"
        self.bystander_revision = self.hub.add_repo(
            self.bystander_repo, {self.bystander.name: self.bystander.read_bytes()}
        )
        return self.write_manifest()

    def write_manifest(
        self,
        *,
        record_file: Path | None = None,
        revision: str | None = None,
        sha256_source: str | None = None,
    ) -> PublishedWeights:
        from tests._records import lenet_record, write_manifest_file

        record = lenet_record(
            record_file or self.weights,
            tag="hub",
            sources=[{"type": "hf", "repo_id": self.repo_id, "revision": revision or self.revision}],
        )
        if record_file is not None and record_file.name != self.weights.name:
            record["files"][0]["filename"] = self.weights.name
        if sha256_source == "hub":
            record["files"][0].update({"sha256": None, "size": None, "sha256_source": "hub"})
        bystander = lenet_record(
            self.bystander,
            tag="bystander",
            default=False,
            sources=[{"type": "hf", "repo_id": self.bystander_repo, "revision": self.bystander_revision}],
        )
        self.manifest = write_manifest_file(
            self.workdir / f"manifest-{uuid.uuid4().hex[:6]}.json",
            {"lenet5.hub": record, "lenet5.bystander": bystander},
        )
        return self

    def cache_folder(self, cache_dir: Path, repo_id: str | None = None) -> Path:
        return Path(cache_dir) / ("models--" + (repo_id or self.repo_id).replace("/", "--"))

    def snapshot_path(self, cache_dir: Path) -> Path:
        return self.cache_folder(cache_dir) / "snapshots" / self.revision / self.weights.name

    def bystander_dir(self, cache_dir: Path) -> Path:
        return self.cache_folder(cache_dir, self.bystander_repo)

    def child_env(self, endpoint: str, hf_home: Path, **extra: str) -> dict[str, str]:
        """Environment of a child process that uses ``endpoint`` and the cache under ``hf_home``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().endswith("_PROXY") and not k.startswith(("HF_", "HUGGING"))
        }
        env.update(
            {
                "ZOO_MANIFEST": str(self.manifest),
                "HF_ENDPOINT": endpoint,
                "HF_HOME": str(hf_home),
                "HF_HUB_CACHE": str(Path(hf_home) / "hub"),
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "NO_PROXY": "127.0.0.1,localhost",
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env
