from __future__ import annotations

import os

import pytest

# The zoo's own cache (feature cache, output ledger, locks, sha256 pins) stays out of the user's
# home during tests; subprocesses inherit it.
if "ZOO_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["ZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-test-cache-")


# --- Keras backend ------------------------------------------------------------------------
def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``tensorflow_only`` unless Keras runs on TensorFlow, saying why."""
    from zoo.backend import keras_backend

    backend = keras_backend()
    if backend == "tensorflow":
        return
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is not None:
            why = marker.args[0] if marker.args else "needs the TensorFlow backend"
            item.add_marker(pytest.mark.skip(reason=f"{why} (KERAS_BACKEND={backend})"))


# --- local Hugging Face Hub (olah) -----------------------------------------------------
@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    """A running olah server (one per session). Add repos with ``local_hub.add_repo``."""
    try:
        import olah  # noqa: F401
    except ImportError as e:
        pytest.skip(f"olah is not importable ({e}); install the dev extra: pip install -e '.[dev]'")
    from tests.helpers.hubserver import LocalHub

    hub = LocalHub(tmp_path_factory.mktemp("localhub"))
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hf_env(local_hub, tmp_path, monkeypatch):
    """Point the (already imported) huggingface_hub at ``local_hub`` with an empty cache.

    Yields ``HfEnv(endpoint, hf_home, cache_dir)``; ``hf_env.set_offline(monkeypatch)``
    toggles HF_HUB_OFFLINE in-process. The server is (re)started if a test stopped it.
    """
    from tests.helpers.hubserver import point_hf_hub_at

    local_hub.start()
    yield point_hf_hub_at(monkeypatch, local_hub.endpoint, tmp_path / "hf_home")
    local_hub.start()  # leave the shared server running for the next test
    import huggingface_hub

    huggingface_hub.close_session()  # drop keep-alive connections to this test's endpoints


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE on for this test: only packaged or cached weights can load."""
    from tests.helpers.hubserver import set_hf_offline

    set_hf_offline(monkeypatch)


@pytest.fixture
def hf_fast_retries(monkeypatch):
    """Skip huggingface_hub's retry sleeps (~23 s when the Hub is down and nothing is cached)."""
    from tests.helpers.hubserver import disable_hf_retry_sleep

    disable_hf_retry_sleep(monkeypatch)
