"""Hub faults and cache damage: each case recovers or fails with a clear typed zoo error.

Every case runs against the real ``huggingface_hub`` download path and a local olah Hub, with
a :class:`FaultProxy` in front of it where the fault is on the network side. After each case:
no unverified file is returned, no partial file is left in the cache, the snapshot path is
absent or verified, and neither the user's files nor the verified cache entry of another
model (the "bystander") lost a byte.

Timeouts are made small through huggingface_hub's own knobs (``constants.HF_HUB_DOWNLOAD_TIMEOUT``
and ``HF_HUB_ETAG_TIMEOUT``, read at call time; ``file_download._ETAG_RETRY_TIMEOUT``, the 60 s
timeout of its second metadata attempt when nothing is cached), and retry sleeps are skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zoo
import zoo.weights.resolve
from tests.helpers import numpy
from tests.reliability._faults import (
    Fault,
    FaultProxy,
    incomplete_files,
    make_read_only,
    read_only_bind,
    tmpfs,
    unprivileged,
    world_readable_tmpdir,
)
from zoo.errors import OfflineError, WeightsNotFoundError

pytestmark = pytest.mark.hub

HUB = "Hub faults"
CACHE = "cache damage"


@pytest.fixture
def fast(monkeypatch, hf_fast_retries):
    """Small huggingface_hub timeouts and no retry sleeps (zoo's nor huggingface_hub's)."""
    from huggingface_hub import constants, file_download

    import zoo.weights.resolve

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    monkeypatch.setattr(file_download, "_ETAG_RETRY_TIMEOUT", 1, raising=False)
    monkeypatch.setattr(zoo.weights.resolve, "RETRY_DELAY", 0)


def _sha256(path: Path) -> str:
    from tests.helpers.hubserver import sha256_of

    return sha256_of(path)


def assert_clean_cache(pub, cache_dir: Path) -> None:
    """No partial download anywhere; our snapshot path is absent or holds the published bytes."""
    assert incomplete_files(cache_dir) == [], "a partial download was left in the cache"
    snapshot = pub.snapshot_path(cache_dir)
    if snapshot.exists():
        assert _sha256(snapshot) == _sha256(pub.weights), "the cache holds unverified bytes"
    repo = pub.cache_folder(cache_dir)
    for blob in (repo / "blobs").glob("*") if repo.is_dir() else []:
        assert _sha256(blob) == _sha256(pub.weights), f"a bad blob stayed in the cache: {blob}"


def pull_ok(pub) -> Path:
    path = zoo.pull("lenet5.hub")[pub.weights.name]
    assert path.read_bytes() == pub.weights.read_bytes()
    return path


def watched(pub, hf_env, user_data):
    return [user_data, pub.bystander_dir(hf_env.cache_dir)]


# --------------------------------------------------------------------------------------
# Faults on the wire: 5xx, stalls, resets, a server that dies
# --------------------------------------------------------------------------------------


def _any(method: str, path: str) -> bool:
    return True


def _head(method: str, path: str) -> bool:
    return method == "HEAD"


TRANSIENT = [
    ("HTTP 503 twice on the metadata request", Fault("status", status=503, times=2, match=_head)),
    ("HTTP 500 once on the file body", Fault("status", status=500, times=1)),
    ("HTTP 502 once on the file body", Fault("status", status=502, times=1)),
    ("body stalls once after 50 kB (read timeout, resume)", Fault("stall", keep=50_000, times=1, seconds=10)),
    ("connection reset once after 50 kB", Fault("reset", keep=50_000, times=1)),
    ("connection reset once before the body", Fault("reset", keep=0, times=1)),
]


@pytest.mark.parametrize(("name", "fault"), TRANSIENT, ids=[n for n, _ in TRANSIENT])
def test_transient_fault_recovers(name, fault, published, hf_env, user_data, record, monkeypatch, fast):
    from tests.helpers.hubserver import point_hf_hub_at

    with record.case(f"{name}: recovered", HUB, watch=watched(published, hf_env, user_data)) as case:
        with FaultProxy(hf_env.endpoint, faults=[fault]) as proxy:
            point_hf_hub_at(monkeypatch, proxy.endpoint, hf_env.hf_home)
            pull_ok(published)
        assert fault.fired == fault.times, proxy.summary()
        assert_clean_cache(published, hf_env.cache_dir)
        case.outcome = "recovered"


PERSISTENT = [
    (
        "HTTP 503 on every request",
        Fault("status", status=503, times=None, match=_any),
        WeightsNotFoundError,
        r"HTTP 503 \(a server error\).*retry 'zoo pull lenet5\.hub' later",
    ),
    (
        "HTTP 500 on every file body",
        Fault("status", status=500, times=None),
        WeightsNotFoundError,
        r"HTTP 500 \(a server error\) while sending.*later",
    ),
    (
        "stalled server: the metadata request never answers",
        Fault("stall", keep=None, times=None, match=_any, seconds=15),
        OfflineError,
        r"cannot be reached.*zoo pull lenet5\.hub",
    ),
    (
        "stalled server: every body stalls after the headers",
        Fault("stall", keep=0, times=None, seconds=15),
        OfflineError,
        r"connection to the Hub .* failed.*timed out",
    ),
    (
        "connection reset after 50 kB, every time",
        Fault("reset", keep=50_000, times=None),
        OfflineError,
        r"connection to the Hub .* failed",
    ),
]


@pytest.mark.parametrize(("name", "fault", "error", "message"), PERSISTENT, ids=[p[0] for p in PERSISTENT])
def test_persistent_fault_is_a_clear_typed_error(
    name, fault, error, message, published, hf_env, user_data, record, monkeypatch, fast
):
    from tests.helpers.hubserver import point_hf_hub_at

    with record.case(f"{name}: typed error", HUB, watch=watched(published, hf_env, user_data)) as case:
        with FaultProxy(hf_env.endpoint, faults=[fault]) as proxy:
            point_hf_hub_at(monkeypatch, proxy.endpoint, hf_env.hf_home)
            start = time.monotonic()
            with pytest.raises(error, match=message) as err:
                zoo.pull("lenet5.hub")
            elapsed = time.monotonic() - start
        assert elapsed < 60, f"gave up after {elapsed:.0f}s"
        assert "\n" not in str(err.value)
        assert_clean_cache(published, hf_env.cache_dir)
        assert not published.snapshot_path(hf_env.cache_dir).exists()
        case.outcome = f"{type(err.value).__name__} after {elapsed:.1f}s"
    # and once the fault is gone, the same cache recovers
    point_hf_hub_at(monkeypatch, hf_env.endpoint, hf_env.hf_home)
    pull_ok(published)


def test_hub_killed_mid_transfer(published, hf_env, local_hub, user_data, record, monkeypatch, fast):
    """The server dies after sending 100 kB: connections reset, the port stops answering."""
    from tests.helpers.hubserver import point_hf_hub_at

    def kill_olah():
        proc = local_hub._proc
        if proc is not None:
            proc.kill()
            proc.wait(10)

    name = "Hub server killed mid-transfer, then restarted"
    with record.case(name, HUB, watch=watched(published, hf_env, user_data)) as case:
        fault = Fault("kill", keep=100_000, on_fire=kill_olah)
        with FaultProxy(hf_env.endpoint, faults=[fault]) as proxy:
            point_hf_hub_at(monkeypatch, proxy.endpoint, hf_env.hf_home)
            with pytest.raises(OfflineError, match="zoo pull lenet5.hub") as err:
                zoo.pull("lenet5.hub")
        assert fault.fired == 1 and not local_hub.running, proxy.summary()
        assert_clean_cache(published, hf_env.cache_dir)
        assert not published.snapshot_path(hf_env.cache_dir).exists()
        local_hub.start()
        point_hf_hub_at(monkeypatch, local_hub.endpoint, hf_env.hf_home)
        pull_ok(published)
        assert_clean_cache(published, hf_env.cache_dir)
        case.outcome = f"{type(err.value).__name__}, then recovered after the restart"


# --------------------------------------------------------------------------------------
# The local disk: full, read-only
# --------------------------------------------------------------------------------------


def test_disk_full_during_download(published, hf_env, user_data, record, tmp_path, monkeypatch, fast):
    from tests.helpers.hubserver import point_hf_hub_at

    home = tmp_path / "small-disk"
    room = published.bystander.stat().st_size + published.weights.stat().st_size // 2 + 64 * 1024
    with tmpfs(home, room):
        point_hf_hub_at(monkeypatch, hf_env.endpoint, home)
        zoo.pull("lenet5.bystander")  # a verified entry on the small disk, before it fills up
        cache = home / "hub"
        with record.case(
            "disk full during the download", HUB, watch=[user_data, published.bystander_dir(cache)]
        ) as case:
            with pytest.raises(WeightsNotFoundError, match=r"no room to save .*HF_HUB_CACHE") as err:
                zoo.pull("lenet5.hub")
            assert "No space left on device" in str(err.value)
            assert_clean_cache(published, cache)
            assert zoo.verify(["lenet5.bystander"])[0].status == "ok"
            case.outcome = f"{type(err.value).__name__} (no room), nothing partial kept"


def _corrupt(path: Path) -> None:
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize("state", ["empty", "verified", "corrupted"])
def test_read_only_cache(state, published, hf_env, user_data, record, monkeypatch, fast):
    """The cache on a read-only mount (EROFS, which binds root too)."""
    import numpy as np

    if state != "empty":
        path = pull_ok(published)
        if state == "corrupted":
            _corrupt(path)
    name = {
        "empty": "read-only cache, weights not cached",
        "verified": "read-only cache holding verified weights",
        "corrupted": "read-only cache holding corrupted weights",
    }[state]
    with (
        read_only_bind(hf_env.cache_dir),
        record.case(name, HUB, watch=watched(published, hf_env, user_data)) as case,
    ):
        if state == "verified":
            model = zoo.load("lenet5.hub")
            reference = zoo.build("lenet5")
            reference.load_weights(published.weights)
            x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
            np.testing.assert_array_equal(numpy(model(x)), numpy(reference(x)))
            case.outcome = "loaded and verified without writing"
        else:
            with pytest.raises(WeightsNotFoundError, match=r"cannot write .*Read-only file system") as err:
                zoo.load("lenet5.hub")
            what = "nothing written" if state == "empty" else "the bad copy never loaded"
            case.outcome = f"{type(err.value).__name__} (read-only file system), {what}"


UNPRIVILEGED_PULL = r"""
import sys
import zoo
from zoo.errors import ZooError
try:
    print(zoo.pull("lenet5.hub"))
except ZooError as exc:
    print(type(exc).__name__, exc, file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.parametrize("state", ["empty", "verified"])
def test_cache_not_writable_for_this_user(state, published, hf_env, user_data, record):
    """Permission bits (not a read-only mount): a child process that is not root."""
    prefix, drop = unprivileged()
    home = world_readable_tmpdir("zoo-ro-home-")
    try:
        cache = home / "hub"
        cache.mkdir(mode=0o755)
        manifest = home / "manifest.json"
        manifest.write_text(published.manifest.read_text())
        manifest.chmod(0o644)
        env = published.child_env(hf_env.endpoint, home, ZOO_MANIFEST=str(manifest), HOME=str(home))
        if state == "verified":
            subprocess.run(
                [sys.executable, "-c", UNPRIVILEGED_PULL],
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
            )
        make_read_only(cache)
        name = {
            "empty": "cache not writable by the user, weights not cached",
            "verified": "cache not writable by the user, verified weights cached",
        }[state]
        how = "as nobody" if drop else ("without CAP_DAC_OVERRIDE" if prefix else "as this user")
        with record.case(f"{name} ({how})", HUB, watch=[user_data, cache]) as case:
            proc = subprocess.run(
                [*prefix, sys.executable, "-c", UNPRIVILEGED_PULL],
                env=env,
                **drop,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if state == "verified":
                assert proc.returncode == 0, proc.stderr[-2000:]
                assert published.weights.name in proc.stdout
                case.outcome = "verified and returned without writing"
            else:
                assert proc.returncode == 1, proc.stderr[-2000:]
                last = proc.stderr.strip().splitlines()[-1]
                assert last.startswith("WeightsNotFoundError") and "cannot write" in last, last
                assert "Permission denied" in last, last
                case.outcome = "WeightsNotFoundError (permission denied)"
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(home)], check=False)
        subprocess.run(["rm", "-rf", str(home)], check=False)


# --------------------------------------------------------------------------------------
# The downloading process killed
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_process_killed_mid_download_then_a_fresh_process_completes(published, hf_env, user_data, record):
    with record.case(
        "downloading process SIGKILLed mid-transfer, then rerun",
        HUB,
        watch=watched(published, hf_env, user_data),
    ) as case:
        with FaultProxy(hf_env.endpoint, rate=40_000) as proxy:  # ~7 s for the 277 kB file
            env = published.child_env(proxy.endpoint, hf_env.hf_home)
            child = subprocess.Popen(
                [sys.executable, "-m", "zoo", "pull", "lenet5.hub"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            deadline = time.monotonic() + 120
            while proxy.progress < 100_000 and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert child.poll() is None, child.stdout.read()
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
        snapshot = published.snapshot_path(hf_env.cache_dir)
        assert not snapshot.exists(), "a killed download must not appear at the final path"
        partial = incomplete_files(hf_env.cache_dir)
        env = published.child_env(hf_env.endpoint, hf_env.hf_home)
        rerun = subprocess.run(
            [sys.executable, "-m", "zoo", "pull", "lenet5.hub"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert _sha256(snapshot) == _sha256(published.weights)
        assert_clean_cache(published, hf_env.cache_dir)  # the killed process's partial file is gone too
        case.outcome = (
            f"killed with {len(partial)} partial file(s) left; the rerun verified the file and swept them"
        )


# --------------------------------------------------------------------------------------
# Damaged cache entries
# --------------------------------------------------------------------------------------


def _truncate(pub, path, tmp_path):
    blob = path.resolve()
    blob.write_bytes(blob.read_bytes()[:1000])


def _empty(pub, path, tmp_path):
    path.resolve().write_bytes(b"")


def _link_to_user_file(pub, path, tmp_path):
    target = tmp_path / "user-data" / "my.weights.h5"
    path.unlink()
    os.symlink(target, path)


def _link_to_bystander(pub, path, tmp_path):
    bystander = zoo.pull("lenet5.bystander")[pub.bystander.name].resolve()
    path.unlink()
    os.symlink(bystander, path)


def _dangling(pub, path, tmp_path):
    path.resolve().unlink()


def _regular_file(pub, path, tmp_path):
    path.unlink()
    path.write_bytes(b"not the weights" * 100)


DAMAGE = [
    ("blob truncated to 1000 bytes", _truncate),
    ("blob emptied", _empty),
    ("snapshot link pointed at a user's file", _link_to_user_file),
    ("snapshot link pointed at another model's verified blob", _link_to_bystander),
    ("snapshot link dangling (blob deleted)", _dangling),
    ("snapshot link replaced by a regular file of garbage", _regular_file),
]


@pytest.mark.parametrize(("name", "damage"), DAMAGE, ids=[n for n, _ in DAMAGE])
def test_damaged_cache_entry_is_replaced(name, damage, published, hf_env, user_data, record, tmp_path):
    import numpy as np

    path = pull_ok(published)
    with record.case(f"{name}: replaced", CACHE, watch=watched(published, hf_env, user_data)) as case:
        damage(published, path, tmp_path)
        model = zoo.load("lenet5.hub")
        reference = zoo.build("lenet5")
        reference.load_weights(published.weights)
        x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
        np.testing.assert_array_equal(numpy(model(x)), numpy(reference(x)))
        assert_clean_cache(published, hf_env.cache_dir)
        case.outcome = "detected, re-downloaded, verified"


def test_hub_hash_entry_refuses_a_link_to_another_verified_blob(
    published, hf_env, user_data, record, monkeypatch
):
    """``sha256_source: hub`` cache hits are checked against the blob's own name; a link moved to
    another (intact, hash-named) blob must not pass as the file."""
    published.write_manifest(sha256_source="hub")
    monkeypatch.setenv("ZOO_MANIFEST", str(published.manifest))
    path = pull_ok(published)
    name = "hub-hash entry whose link points at another model's verified blob: replaced"
    with record.case(name, CACHE, watch=watched(published, hf_env, user_data)) as case:
        _link_to_bystander(published, path, None)
        results = zoo.verify(["lenet5.hub"])
        assert results[0].status == "bad" and "outside its repo" in results[0].detail
        pull_ok(published)
        assert_clean_cache(published, hf_env.cache_dir)
        case.outcome = "verify says bad; pull re-downloaded and verified"


def test_cache_damaged_and_offline_is_a_typed_error(published, hf_env, user_data, record, monkeypatch):
    path = pull_ok(published)
    with record.case(
        "blob truncated while offline: typed error", CACHE, watch=watched(published, hf_env, user_data)
    ) as case:
        _truncate(published, path, None)
        hf_env.set_offline(monkeypatch)
        with pytest.raises(OfflineError, match="zoo pull lenet5.hub") as err:
            zoo.load("lenet5.hub")
        assert not path.exists(), "the bad copy must not stay behind"
        case.outcome = f"{type(err.value).__name__}; the bad copy removed"
