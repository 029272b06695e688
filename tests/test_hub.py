"""The zoo's Hub download path against a real Hub-compatible server (olah) on loopback."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from tests._records import lenet_record, write_manifest_file
from zoo.cli import cli
from zoo.errors import OfflineError, WeightsNotFoundError, WeightsVerificationError

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def weights_bytes(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(2)
    path = tmp_path_factory.mktemp("w") / "lenet5.hub.weights.h5"
    zoo.build("lenet5").save_weights(path)
    return path


class HubModel:
    """A LeNet-5 weights entry published in a fresh repo of the local Hub."""

    def __init__(self, hub, weights_file, tmp_path, monkeypatch):
        self.hub, self.file, self.tmp_path, self.monkeypatch = hub, weights_file, tmp_path, monkeypatch
        self.repo_id = f"zoo-test/lenet5-{uuid.uuid4().hex[:8]}"
        self.revision = hub.add_repo(self.repo_id, {weights_file.name: weights_file.read_bytes()})
        self.use()

    def use(self, *, repo_id=None, revision=None, record_file=None):
        source = {"type": "hf", "repo_id": repo_id or self.repo_id, "revision": revision or self.revision}
        record = lenet_record(record_file or self.file, tag="hub", sources=[source])
        manifest = write_manifest_file(
            self.tmp_path / f"m-{uuid.uuid4().hex[:6]}.json", {"lenet5.hub": record}
        )
        self.monkeypatch.setenv("ZOO_MANIFEST", str(manifest))

    def cached_files(self, cache_dir):
        return sorted(
            p
            for p in cache_dir.rglob("*")
            if p.is_file() and p.name.endswith(".h5") or p.parent.name == "blobs"
        )


@pytest.fixture
def hub_model(local_hub, hf_env, weights_bytes, tmp_path, monkeypatch):
    return HubModel(local_hub, weights_bytes, tmp_path, monkeypatch)


def test_cold_download_then_cache_hit_with_server_stopped(hub_model, hf_env, local_hub):
    paths = zoo.pull("lenet5.hub")
    path = paths[hub_model.file.name]
    assert str(path).startswith(str(hf_env.cache_dir))
    assert path.read_bytes() == hub_model.file.read_bytes()
    local_hub.stop()
    model = zoo.load("lenet5.hub")
    reference = zoo.build("lenet5")
    reference.load_weights(hub_model.file)
    x = np.ones((1, 32, 32, 1), np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), reference.predict(x, verbose=0))


def test_corrupted_cache_file_is_replaced(hub_model):
    path = zoo.pull("lenet5.hub")[hub_model.file.name]
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF  # same size, different content
    blob.write_bytes(bytes(data))
    again = zoo.pull("lenet5.hub")[hub_model.file.name]
    assert again.read_bytes() == hub_model.file.read_bytes()


def test_tampered_server_file_is_never_loaded(hub_model, hf_env, tmp_path):
    tampered = tmp_path / hub_model.file.name
    data = bytearray(hub_model.file.read_bytes())
    data[-10] ^= 0xFF
    tampered.write_bytes(bytes(data))
    hub_model.use(record_file=tampered)  # manifest hash of other bytes than the server has
    with pytest.raises(WeightsVerificationError, match="failed verification twice"):
        zoo.load("lenet5.hub")
    leftovers = [p for p in hf_env.cache_dir.rglob("*") if p.is_file() and p.stat().st_size > 1000]
    assert leftovers == [], "the bad download must not stay in the cache"


def test_truncated_download_leaves_nothing(hub_model, hf_env, monkeypatch, hf_fast_retries):
    from tests.helpers.hubserver import TruncatingProxy, point_hf_hub_at

    with TruncatingProxy(hf_env.endpoint, keep=2000, mode="short") as proxy:
        point_hf_hub_at(monkeypatch, proxy.endpoint, hf_env.hf_home)
        with pytest.raises((WeightsNotFoundError, WeightsVerificationError)):
            zoo.pull("lenet5.hub")
    leftovers = [p for p in hf_env.cache_dir.rglob("*") if p.is_file() and p.stat().st_size > 1000]
    assert leftovers == []


def test_dropped_transfer_resumes(hub_model, hf_env, monkeypatch, hf_fast_retries):
    from tests.helpers.hubserver import TruncatingProxy, point_hf_hub_at

    with TruncatingProxy(hf_env.endpoint, keep=5000, times=1, mode="drop") as proxy:
        point_hf_hub_at(monkeypatch, proxy.endpoint, hf_env.hf_home)
        path = zoo.pull("lenet5.hub")[hub_model.file.name]
    assert path.read_bytes() == hub_model.file.read_bytes()


def test_wrong_revision(hub_model, hf_fast_retries):
    hub_model.use(revision="0" * 40)
    with pytest.raises(WeightsNotFoundError, match="0{40}"):
        zoo.pull("lenet5.hub")


def test_unknown_repo(hub_model, hf_fast_retries):
    hub_model.use(repo_id="zoo-test/does-not-exist")
    with pytest.raises(WeightsNotFoundError, match="does-not-exist"):
        zoo.pull("lenet5.hub")


def test_server_down_with_nothing_cached(hub_model, local_hub):
    import time

    local_hub.stop()
    start = time.monotonic()  # no retry back-off: one connection attempt says it
    with pytest.raises(OfflineError, match=r"cannot be reached.*HF_ENDPOINT"):
        zoo.load("lenet5.hub")
    assert time.monotonic() - start < 5


def test_offline_mode(hub_model, hf_env, monkeypatch):
    hf_env.set_offline(monkeypatch)
    with pytest.raises(OfflineError) as err:
        zoo.load("lenet5")
    message = str(err.value)
    assert "lenet5.hub" in message and hub_model.repo_id in message and "zoo pull lenet5.hub" in message
    hf_env.set_offline(monkeypatch, False)
    zoo.pull("lenet5.hub")
    hf_env.set_offline(monkeypatch)
    assert zoo.load("lenet5").count_params() == 61706


def test_cli_pull_and_verify(hub_model, hf_env):
    runner = CliRunner()
    result = runner.invoke(cli, ["verify", "lenet5.hub"])
    assert result.exit_code == 0 and "MISSING" in result.output
    result = runner.invoke(cli, ["pull", "lenet5.hub"])
    assert result.exit_code == 0, result.output
    assert str(hf_env.cache_dir) in result.output
    result = runner.invoke(cli, ["verify", "lenet5.hub", "--json"])
    assert result.exit_code == 0 and '"status": "ok"' in result.output
    blob = next(p for p in (hf_env.cache_dir).rglob("blobs/*"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    result = runner.invoke(cli, ["verify", "lenet5.hub"])
    assert result.exit_code == 1 and "failed verification" in result.output


# --- third-party files verified against the Hub's own hashes (sha256_source "hub") ---------


@pytest.fixture
def third_party(local_hub, hf_env, weights_bytes, tmp_path, monkeypatch):
    """A repo with an LFS weights file and a plain-git text file, recorded without hashes."""
    repo_id = f"third-party/lenet5-{uuid.uuid4().hex[:8]}"
    notes = b"config of a third-party checkpoint\n"
    revision = local_hub.add_repo(
        repo_id,
        {weights_bytes.name: weights_bytes.read_bytes(), "notes.txt": notes},
        lfs=[weights_bytes.name],
    )
    record = lenet_record(
        weights_bytes, tag="hub", sources=[{"type": "hf", "repo_id": repo_id, "revision": revision}]
    )
    record["files"] = [
        {
            "filename": weights_bytes.name,
            "sha256": None,
            "size": None,
            "format": "keras.weights.h5",
            "sha256_source": "hub",
        },
        {"filename": "notes.txt", "sha256": None, "size": None, "format": "config", "sha256_source": "hub"},
    ]
    manifest = write_manifest_file(tmp_path / "third.json", {"lenet5.hub": record})
    monkeypatch.setenv("ZOO_MANIFEST", str(manifest))
    return local_hub, repo_id, weights_bytes


def test_hub_hashes_verify_downloads_and_offline_cache_hits(third_party, hf_env, monkeypatch):
    hub, repo_id, weights = third_party
    paths = zoo.pull("lenet5.hub")
    assert paths[weights.name].read_bytes() == weights.read_bytes()
    hub.stop()
    hf_env.set_offline(monkeypatch)
    assert zoo.load("lenet5.hub").count_params() == 61706
    results = zoo.verify(["lenet5.hub"])
    assert [r.status for r in results] == ["ok", "ok"]
    blob = paths["notes.txt"].resolve()
    blob.write_bytes(b"tampered config of a third-party checkpoint\n")
    assert {r.filename: r.status for r in zoo.verify(["lenet5.hub"])}["notes.txt"] == "bad"
    with pytest.raises(OfflineError):  # the bad copy is removed, and offline it cannot come back
        zoo.pull("lenet5.hub")
    assert not blob.exists()


def test_hub_hashes_reject_a_tampered_lfs_object(third_party, hf_env):
    hub, repo_id, weights = third_party
    from tests.helpers.hubserver import sha256_of

    obj = hub.lfs_object_path(repo_id, sha256_of(weights))
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    with pytest.raises(WeightsVerificationError, match="LFS sha256"):
        zoo.pull("lenet5.hub")
    leftovers = [p for p in hf_env.cache_dir.rglob("*") if p.is_file() and p.stat().st_size > 1000]
    assert leftovers == []
