"""Smoke tests of the local Hub (olah) with plain huggingface_hub calls (no zoo code).

They also pin down, as executable documentation, what huggingface_hub 2.4.0 raises for each
failure mode when talking to olah 0.5.4 (which differs from huggingface.co in places, noted).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path

import pytest

huggingface_hub = pytest.importorskip("huggingface_hub")
httpx2 = pytest.importorskip("httpx2")

from huggingface_hub import (  # noqa: E402
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (  # noqa: E402
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)

from tests.helpers.hubserver import TruncatingProxy, sha256_of  # noqa: E402

pytestmark = pytest.mark.hub

BIG = random.Random(1234).randbytes(5_000_000)  # ~5 MB binary, plain git blob
LFS = random.Random(5678).randbytes(3_000_000)  # stored git-lfs style
SMALL = b"hello hub\n"
BAD_SHA = "0123456789abcdef0123456789abcdef01234567"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module")
def repo(local_hub):
    """One repo shared by the read-only tests of this module."""
    repo_id = "smoke/model"
    sha = local_hub.add_repo(
        repo_id,
        {"README.md": b"# smoke\n", "small.txt": SMALL, "big.bin": BIG, "weights/w.lfs.bin": LFS},
        lfs=["weights/w.lfs.bin"],
    )
    return repo_id, sha


def test_hf_env_points_hub_at_local_server(hf_env, local_hub, repo):
    repo_id, sha = repo
    assert hf_env.endpoint == local_hub.endpoint == constants.ENDPOINT
    assert hf_hub_url(repo_id, "small.txt", revision=sha).startswith(local_hub.endpoint + "/")
    assert constants.HF_HUB_CACHE == str(hf_env.cache_dir)
    assert not any(hf_env.cache_dir.iterdir())  # fresh cache per test
    # the module-level HfApi behind huggingface_hub.model_info is patched too
    assert huggingface_hub.model_info(repo_id, revision=sha).sha == sha
    assert HfApi().list_repo_refs(repo_id).branches[0].target_commit == sha


def test_cold_download_exact_bytes(hf_env, repo):
    repo_id, sha = repo
    for name, data in [("small.txt", SMALL), ("big.bin", BIG), ("weights/w.lfs.bin", LFS)]:
        path = hf_hub_download(repo_id, name, revision=sha)
        assert Path(path).read_bytes() == data
        assert Path(path) == hf_env.cache_dir.resolve() / "models--smoke--model" / "snapshots" / sha / name
    # blob names = ETag: git blob sha1 for plain blobs, sha256 for LFS files (as on huggingface.co)
    blobs = {p.name for p in (hf_env.cache_dir / "models--smoke--model" / "blobs").iterdir()}
    assert blobs == {git_blob_sha1(SMALL), git_blob_sha1(BIG), sha256_of(LFS)}


def test_explicit_endpoint_argument(hf_env, local_hub, repo, tmp_path, monkeypatch):
    repo_id, sha = repo
    # `endpoint=` works while constants still point at the default endpoint ...
    monkeypatch.setattr(constants, "ENDPOINT", "https://huggingface.co")
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        "https://huggingface.co/{repo_id}/resolve/{revision}/{filename}",
    )
    path = hf_hub_download(
        repo_id, "small.txt", revision=sha, endpoint=local_hub.endpoint, cache_dir=tmp_path / "c1"
    )
    assert Path(path).read_bytes() == SMALL
    # ... but is silently ignored if ENDPOINT was patched without HUGGINGFACE_CO_URL_TEMPLATE
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    url = hf_hub_url(repo_id, "small.txt", revision=sha, endpoint=local_hub.endpoint)
    assert url.startswith("https://huggingface.co/")


def test_metadata_available_through_olah(hf_env, repo):
    repo_id, sha = repo
    api = HfApi()
    # HEAD /resolve: size + ETag (+ x-repo-commit); LFS ETag is the sha256 of the content
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "weights/w.lfs.bin", revision=sha))
    assert (meta.commit_hash, meta.etag, meta.size) == (sha, sha256_of(LFS), len(LFS))
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "big.bin", revision=sha))
    assert (meta.commit_hash, meta.etag, meta.size) == (sha, git_blob_sha1(BIG), len(BIG))

    # paths-info / tree: size, blob_id, and lfs.sha256 for LFS files (like huggingface.co)
    infos = {f.path: f for f in api.get_paths_info(repo_id, ["big.bin", "weights/w.lfs.bin"], revision=sha)}
    lfs = infos["weights/w.lfs.bin"]
    assert lfs.size == len(LFS) and lfs.lfs is not None
    assert (lfs.lfs.sha256, lfs.lfs.size) == (sha256_of(LFS), len(LFS))
    assert infos["big.bin"].size == len(BIG) and infos["big.bin"].lfs is None
    assert infos["big.bin"].blob_id == git_blob_sha1(BIG)
    tree = {
        f.path: f for f in api.list_repo_tree(repo_id, revision=sha, recursive=True) if hasattr(f, "size")
    }
    assert tree["weights/w.lfs.bin"].lfs.sha256 == sha256_of(LFS)

    # model_info(files_metadata=True): olah ignores ?blobs=true -> names only, no size/lfs
    info = api.model_info(repo_id, revision=sha, files_metadata=True)
    assert info.sha == sha
    sib = {s.rfilename: s for s in info.siblings}
    assert set(sib) == {"README.md", "small.txt", "big.bin", "weights/w.lfs.bin"}
    assert sib["weights/w.lfs.bin"].size is None and sib["weights/w.lfs.bin"].lfs is None
    # olah quirk: repo metadata *without* a revision is "not found" (pass revision=...)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo_id)
    assert not api.repo_exists(repo_id)


def test_cached_file_served_when_server_down(hf_env, local_hub, repo):
    repo_id, sha = repo
    first = hf_hub_download(repo_id, "big.bin", revision=sha)
    main = hf_hub_download(repo_id, "small.txt", revision="main")
    local_hub.stop()
    # pinned sha + file in cache -> no network call at all
    assert hf_hub_download(repo_id, "big.bin", revision=sha) == first
    assert hf_hub_download(repo_id, "big.bin", revision=sha, local_files_only=True) == first
    assert try_to_load_from_cache(repo_id, "big.bin", revision=sha) == first
    # branch name: HEAD fails (ConnectError, not retried) -> falls back to refs/main
    assert hf_hub_download(repo_id, "small.txt", revision="main") == main


def test_server_down_nothing_cached(hf_env, hf_fast_retries, local_hub, repo):
    repo_id, sha = repo
    local_hub.stop()
    with pytest.raises(LocalEntryNotFoundError) as exc:
        hf_hub_download(repo_id, "big.bin", revision=sha)
    assert isinstance(exc.value.__cause__, httpx2.ConnectError)
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(repo_id, "big.bin", revision=sha, local_files_only=True)
    # HfApi calls do not wrap transport errors: raw httpx2.ConnectError (not an OSError)
    with pytest.raises(httpx2.ConnectError):
        HfApi().model_info(repo_id, revision=sha)
    assert not (hf_env.cache_dir / "models--smoke--model" / "blobs").exists()


def test_wrong_revision(hf_env, hf_fast_retries, repo):
    repo_id, _ = repo
    # Unknown 40-hex sha: olah crashes (HTTP 500; the real Hub answers 404 RevisionNotFound),
    # hf_hub_download retries 5x with back-off, then LocalEntryNotFoundError from the 500.
    # Under load the 500 sometimes resets the connection instead, surfacing as a raw transport error.
    with pytest.raises(Exception) as exc:
        hf_hub_download(repo_id, "small.txt", revision=BAD_SHA)
    if isinstance(exc.value, LocalEntryNotFoundError):
        assert exc.value.__cause__.response.status_code == 500
    else:
        assert type(exc.value).__module__.startswith("httpx"), repr(exc.value)
    huggingface_hub.close_session()  # olah's 500s can leave a dead keep-alive connection
    # Unknown branch/tag name: olah answers 401 RepoNotFound
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "small.txt", revision="no-such-branch")


def test_unknown_repo_and_missing_file(hf_env, repo):
    repo_id, sha = repo
    # by branch: 401 RepoNotFound (as on huggingface.co)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("smoke/no-such-repo", "small.txt", revision="main")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("smoke/no-such-repo")
    # by pinned sha: olah answers 404 EntryNotFound (huggingface.co: 401 RepositoryNotFound)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("smoke/no-such-repo", "small.txt", revision=sha)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo_id, "no-such-file.bin", revision=sha)


def test_offline_mode_in_process(hf_env, monkeypatch, repo):
    repo_id, sha = repo
    cached = hf_hub_download(repo_id, "small.txt", revision=sha)
    # the env var alone is read only at import time -> no effect in-process
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hf_hub_download(repo_id, "big.bin", revision=sha)
    hf_env.set_offline(monkeypatch)  # patches huggingface_hub.constants.HF_HUB_OFFLINE
    assert constants.HF_HUB_OFFLINE and huggingface_hub.is_offline_mode()
    assert hf_hub_download(repo_id, "small.txt", revision=sha) == cached
    with pytest.raises(LocalEntryNotFoundError) as exc:  # immediate, no retries
        hf_hub_download(repo_id, "weights/w.lfs.bin", revision=sha)
    assert isinstance(exc.value.__cause__, OfflineModeIsEnabled)
    with pytest.raises(OfflineModeIsEnabled):  # a ConnectionError (OSError)
        HfApi().model_info(repo_id, revision=sha)


def test_second_commit(hf_env, local_hub):
    repo_id = "smoke/versions"
    v1 = local_hub.add_repo(repo_id, {"a.txt": b"one", "keep.txt": b"k"})
    v2 = local_hub.add_repo(repo_id, {"a.txt": b"two"})
    assert v1 != v2 and re.fullmatch(r"[0-9a-f]{40}", v2)
    read = lambda rev, name="a.txt": Path(hf_hub_download(repo_id, name, revision=rev)).read_bytes()  # noqa: E731
    assert (read(v1), read(v2), read("main")) == (b"one", b"two", b"two")
    assert read(v2, "keep.txt") == b"k"
    v3 = local_hub.add_repo(repo_id, {}, delete=["keep.txt"])
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo_id, "keep.txt", revision=v3)


def test_corrupt_lfs_object_is_not_detected_by_hf_hub(hf_env, local_hub):
    """Bytes differing from the LFS pointer's sha256 are served and cached without error."""
    repo_id = "smoke/corrupt"
    sha = local_hub.add_repo(repo_id, {"w.bin": LFS}, lfs=True)
    obj = local_hub.lfs_object_path(repo_id, sha256_of(LFS))
    bad = bytearray(LFS)
    bad[1000] ^= 0xFF
    obj.write_bytes(bytes(bad))
    path = hf_hub_download(repo_id, "w.bin", revision=sha)
    assert Path(path).read_bytes() == bytes(bad)
    # the expected digest is still visible via paths-info; the ETag/blob name is the served one
    (info,) = HfApi().get_paths_info(repo_id, ["w.bin"], revision=sha)
    assert info.lfs.sha256 == sha256_of(LFS) != sha256_of(Path(path))
    assert Path(os.path.realpath(path)).name == sha256_of(bytes(bad))


@pytest.mark.parametrize(
    ("mode", "times", "expected"),
    [
        ("drop", None, httpx2.RemoteProtocolError),  # resumed 5x, then the raw httpx2 error
        ("short", None, OSError),  # "Consistency check failed: file should be of size ..."
        ("drop", 1, None),  # a transient drop is resumed transparently
    ],
)
def test_truncated_download(hf_env, hf_fast_retries, local_hub, repo, monkeypatch, mode, times, expected):
    repo_id, sha = repo
    with TruncatingProxy(local_hub.endpoint, keep=4096, times=times, mode=mode) as proxy:
        if expected is None:
            path = hf_hub_download(repo_id, "big.bin", revision=sha, endpoint=proxy.endpoint)
            assert Path(path).read_bytes() == BIG
            return
        with pytest.raises(expected) as exc:
            hf_hub_download(repo_id, "big.bin", revision=sha, endpoint=proxy.endpoint)
        assert proxy.cut_count >= 1
    if mode == "short":
        assert "Consistency check failed" in str(exc.value)
    assert try_to_load_from_cache(repo_id, "big.bin", revision=sha) is None
    blobs = hf_env.cache_dir / "models--smoke--model" / "blobs"
    assert not blobs.exists() or not any(blobs.iterdir())  # no partial file left behind
