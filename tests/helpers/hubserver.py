"""A real, local Hugging Face Hub-compatible server for tests, backed by `olah`.

olah (https://github.com/vtuber-plan/olah) is a self-hosted HF mirror. With
``offline = true`` and ``mirrors-path`` set, it serves plain local git repositories
(``<mirrors>/models/<org>/<name>``, a normal work tree with a ``.git`` directory)
as Hub model repos: ``/api/models/...``, ``HEAD``/``GET /<org>/<name>/resolve/<rev>/<file>``,
``paths-info``, ``tree``, ``refs``.  ``huggingface_hub`` downloads from it unchanged.

What olah serves (olah 0.5.4, huggingface_hub 2.4.0):

* Plain git blobs (any size) are served as-is.  ``ETag`` = git blob sha1 of the
  content (like the real Hub for non-LFS files); no sha256 anywhere.
* "LFS" files work without the git-lfs binary: commit a git-lfs pointer blob and
  put the real bytes at ``.git/lfs/objects/<oid[:2]>/<oid[2:4]>/<oid>``.  olah then
  serves the real bytes with ``ETag`` = sha256 of the content, and
  ``paths-info``/``tree`` report ``lfs = {oid: sha256, size, pointerSize}``, exactly
  like the real Hub.  ``add_repo(..., lfs=...)`` does this for you.
* ``/api/models/<id>/revision/<rev>`` ignores ``?blobs=true``: ``model_info(...,
  files_metadata=True)`` lists sibling names only (``size``/``lfs``/``blob_id`` are None).
  Use ``HfApi.get_paths_info``/``list_repo_tree`` (size, blob_id, lfs.sha256) or the
  ``HEAD`` ``ETag`` (``get_hf_file_metadata``) instead.
* Quirks vs huggingface.co (offline olah): ``model_info``/``repo_info``/``repo_exists``
  *without* ``revision=`` answer 401 RepositoryNotFound; an unknown 40-hex revision makes
  olah raise (HTTP 500, may also poison the next keep-alive request); an unknown repo
  requested at a 40-hex revision answers 404 EntryNotFound instead of 401 RepoNotFound.
* olah re-reads the git repo on every request: new commits are visible without restart.

Pointing an *already imported* ``huggingface_hub`` at the server in-process:
see :func:`point_hf_hub_at` (used by the ``hf_env`` fixture in ``conftest.py``).
"""

from __future__ import annotations

import atexit
import hashlib
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LocalHub",
    "TruncatingProxy",
    "HfEnv",
    "point_hf_hub_at",
    "disable_hf_retry_sleep",
    "sha256_of",
]

# Fixed identity and dates: commits work in a clean container (no `git config user.*`),
# ignore the user's/system git config, and are reproducible.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Zoo Test",
    "GIT_AUTHOR_EMAIL": "zoo-test@example.invalid",
    "GIT_COMMITTER_NAME": "Zoo Test",
    "GIT_COMMITTER_EMAIL": "zoo-test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
_BASE_DATE = 1_700_000_000  # 2023-11-14; each further commit in a repo is 1 minute later

_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


def sha256_of(data: bytes | Path) -> str:
    """Hex sha256 of bytes or of a file's content."""
    h = hashlib.sha256()
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(data)
    else:
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalHub:
    """An olah process serving git repos under ``<root>/mirrors`` on 127.0.0.1.

    >>> hub = LocalHub(tmp_path)
    >>> sha = hub.add_repo("acme/tiny", {"w.bin": b"..."}, lfs=["w.bin"])
    >>> with hub:                      # start() ... stop()
    ...     hf_hub_download("acme/tiny", "w.bin", revision=sha, endpoint=hub.endpoint)
    """

    def __init__(self, root: Path | str, *, port: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.mirrors = self.root / "mirrors"
        self.config_path = self.root / "olah.toml"
        self.log_path = self.root / "olah.log"
        self.port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._commit_count: dict[str, int] = {}
        self.mirrors.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)

    # ------------------------------------------------------------------ repos
    def repo_path(self, repo_id: str) -> Path:
        org, sep, name = repo_id.partition("/")
        if not sep or not org or not name or "/" in name:
            raise ValueError(f"repo_id must be '<org>/<name>', got {repo_id!r}")
        return self.mirrors / "models" / org / name

    def _git(self, repo: Path, *args: str, extra_env: Mapping[str, str] | None = None) -> str:
        env = {**os.environ, **_GIT_ENV, **(extra_env or {})}
        res = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed in {repo}:\n{res.stderr}{res.stdout}")
        return res.stdout.strip()

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        lfs: Iterable[str] | bool = (),
        delete: Iterable[str] = (),
        message: str | None = None,
    ) -> str:
        """Create ``repo_id`` (or add a commit to it) and return the new 40-hex commit sha.

        ``files`` maps repo paths ("a/b.bin") to bytes or a local file to copy. Files of a
        previous commit are kept unless overwritten or listed in ``delete``.
        ``lfs``: paths (or True for all of ``files``) stored git-lfs style (pointer blob +
        ``.git/lfs/objects``), so the server reports their sha256 like the real Hub.
        The server need not be restarted to see new commits.
        """
        repo = self.repo_path(repo_id)
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            self._git(repo, "init", "-q")
            self._git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
        lfs_paths = set(files) if lfs is True else set(lfs or ())
        unknown = lfs_paths - set(files)
        if unknown:
            raise ValueError(f"lfs paths not in files: {sorted(unknown)}")

        for rel in delete:
            self._git(repo, "rm", "-q", "--", rel)
        for rel, content in files.items():
            if rel.startswith("/") or ".." in Path(rel).parts or rel.startswith(".git"):
                raise ValueError(f"bad repo path {rel!r}")
            dest = repo / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel in lfs_paths:
                oid = sha256_of(content)
                obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
                obj.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, (bytes, bytearray, memoryview)):
                    obj.write_bytes(bytes(content))
                else:
                    shutil.copyfile(content, obj)
                dest.write_text(_LFS_POINTER.format(oid=oid, size=obj.stat().st_size))
            elif isinstance(content, (bytes, bytearray, memoryview)):
                dest.write_bytes(bytes(content))
            else:
                shutil.copyfile(content, dest)
            self._git(repo, "add", "-f", "--", rel)

        n = self._commit_count.get(repo_id, 0)
        self._commit_count[repo_id] = n + 1
        date = f"@{_BASE_DATE + 60 * n} +0000"
        self._git(
            repo,
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "--no-gpg-sign",
            "-m",
            message or f"{repo_id}: commit {n + 1}",
            extra_env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
        )
        return self._git(repo, "rev-parse", "HEAD")

    def lfs_object_path(self, repo_id: str, oid: str) -> Path:
        """Where the real bytes of an LFS file live (to corrupt/truncate them in tests)."""
        return self.repo_path(repo_id) / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    # ----------------------------------------------------------------- server
    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalHub not started yet")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        def q(p: Path) -> str:
            return '"' + str(p).replace("\\", "\\\\").replace('"', '\\"') + '"'

        self.config_path.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f"repos-path = {q(self.root / 'olah-cache')}\n"
            f"mirrors-path = [{q(self.mirrors)}]\n"
            "metadata-cache-ttl = 0\n"
            "\n[accessibility]\n"
            "offline = true\n"
        )

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    def start(self, timeout: float = 30.0) -> LocalHub:
        """Start olah (no-op if running). Keeps the previous port on restart."""
        if self.running:
            return self
        if self.port is None or not _port_is_free(self.port):
            self.port = _free_port()
        self._write_config()
        self._log_file = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
        env.update(_GIT_ENV)
        env["PYTHONUNBUFFERED"] = "1"
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "olah.server",
                "-c",
                str(self.config_path),
                "--log-path",
                str(self.root / "olah-logs"),
            ],
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        url = self.endpoint + "/api/whoami-v2"  # any route; "/" renders an HTML template
        while True:
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self._cleanup()
                raise RuntimeError(f"olah exited with code {rc} during startup:\n{self.log_tail()}")
            try:
                with _NO_PROXY_OPENER.open(url, timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answered HTTP
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"olah did not answer on {self.endpoint} within {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout``). Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._cleanup()

    def _cleanup(self) -> None:
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> LocalHub:
        self.stop()
        return self.start()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{revision}/{filename}"


class TruncatingProxy:
    """HTTP proxy in front of a :class:`LocalHub` that cuts file downloads short.

    ``HEAD`` and API calls pass through unchanged. The first ``times`` ``GET``s whose path
    matches ``match`` (default: any ``/resolve/``) are cut after ``keep`` bytes:

    * ``mode="drop"``: announce the full ``Content-Length`` then close the connection
      (a dropped transfer; the client sees a protocol error and may resume/retry);
    * ``mode="short"``: a well-formed response that is just shorter than the ``HEAD`` size.

    Use its ``.endpoint`` instead of the hub's. ``times=None`` cuts every matching GET.
    """

    def __init__(
        self,
        upstream: str,
        *,
        keep: int = 1024,
        times: int | None = None,
        mode: str = "drop",
        match: Callable[[str], bool] | None = None,
    ) -> None:
        if mode not in ("drop", "short"):
            raise ValueError(f"mode must be 'drop' or 'short', got {mode!r}")
        self.upstream = upstream.rstrip("/")
        self.keep, self.times, self.mode = keep, times, mode
        self.match = match or (lambda path: "/resolve/" in path)
        self.cut_count = 0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("TruncatingProxy not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _should_cut(self, method: str, path: str) -> bool:
        if method != "GET" or not self.match(path):
            return False
        with self._lock:
            if self.times is not None and self.cut_count >= self.times:
                return False
            self.cut_count += 1
            return True

    def start(self) -> TruncatingProxy:
        proxy = self
        host, _, port = self.upstream.removeprefix("http://").partition(":")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                skip = {"host", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                conn = http.client.HTTPConnection(host, int(port or 80), timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    resp_headers = resp.getheaders()
                finally:
                    conn.close()
                cut = resp.status == 200 and proxy._should_cut(self.command, self.path)
                sent = data[: proxy.keep] if cut else data
                declared = len(data) if cut and proxy.mode == "drop" else len(sent)
                self.send_response(resp.status)
                for k, v in resp_headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                if self.command == "HEAD":
                    cl = dict((k.lower(), v) for k, v in resp_headers).get("content-length")
                    if cl is not None:
                        self.send_header("Content-Length", cl)
                else:
                    self.send_header("Content-Length", str(declared))
                if cut:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(sent)
                self.wfile.flush()

            do_GET = do_HEAD = do_POST = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TruncatingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------
# Pointing an already-imported huggingface_hub at an endpoint / cache, in-process.
# --------------------------------------------------------------------------------------
@dataclass
class HfEnv:
    endpoint: str
    hf_home: Path
    cache_dir: Path

    def set_offline(self, monkeypatch: Any, offline: bool = True) -> None:
        """Toggle HF_HUB_OFFLINE in-process (see :func:`set_hf_offline`)."""
        set_hf_offline(monkeypatch, offline)


def set_hf_offline(monkeypatch: Any, offline: bool = True) -> None:
    """Toggle HF_HUB_OFFLINE in-process (constants are read at import time) and for subprocesses."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")


def point_hf_hub_at(monkeypatch: Any, endpoint: str, hf_home: Path) -> HfEnv:
    """Make ``huggingface_hub`` (already imported) use ``endpoint`` and a cache under ``hf_home``.

    huggingface_hub 2.x reads env vars once, at import, into ``huggingface_hub.constants``:
    setting ``HF_ENDPOINT`` later has no effect by itself. Patched here (undone by monkeypatch):

    * ``constants.ENDPOINT`` *and* ``constants.HUGGINGFACE_CO_URL_TEMPLATE`` (``hf_hub_url``
      builds URLs from the template; ``endpoint=`` only rewrites URLs that start with
      ``constants.ENDPOINT``, so patching ENDPOINT alone silently breaks ``endpoint=``);
    * ``huggingface_hub.hf_api.api.endpoint``: the module-level ``HfApi`` behind
      ``huggingface_hub.model_info`` & co. captured the endpoint when it was created;
    * ``HF_HOME``/``HF_HUB_CACHE``/token paths (cache and token lookups) and
      ``HF_HUB_OFFLINE=False``; env vars are set too for subprocesses.
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub import hf_api as hf_api_mod

    endpoint = endpoint.rstrip("/")
    hf_home = Path(hf_home)
    cache = hf_home / "hub"
    cache.mkdir(parents=True, exist_ok=True)

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    no_proxy = os.environ.get("NO_PROXY", "")
    monkeypatch.setenv("NO_PROXY", ",".join(filter(None, [no_proxy, "127.0.0.1", "localhost"])))

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(hf_api_mod.api, "endpoint", endpoint)
    # The shared httpx client read proxy env vars when it was created: recreate it lazily.
    huggingface_hub.close_session()
    return HfEnv(endpoint=endpoint, hf_home=hf_home, cache_dir=cache)


def disable_hf_retry_sleep(monkeypatch: Any) -> None:
    """Make huggingface_hub's retry back-off instant (tests only).

    With the server down (or a 5xx) and nothing cached, ``hf_hub_download`` retries the
    HEAD 5 times sleeping 1+2+4+8+8 s (~23 s) before raising; a dropped GET is resumed up to
    5 times with 1 s sleeps. This keeps the retries but skips the sleeps.
    """
    import types

    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    fake_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    fake_time.sleep = lambda _s: None
    monkeypatch.setattr(_http, "time", fake_time)  # HEAD/API back-off (1, 2, 4, 8, 8 s)
    monkeypatch.setattr(file_download, "time", fake_time)  # GET resume retries (5 x 1 s)
