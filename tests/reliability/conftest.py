"""Fixtures of the reliability suite: the case recorder, published weights, a bystander cache entry.

Every fault or hostile-input case runs inside ``record.case(name, category, watch=[...])``: it
hashes the watched folders (the user's data, the verified cache entries that existed before
the fault) before and after, counts the bytes destroyed or corrupted as data lost, and records
whether the zoo survived (recovered, or failed with a clear typed error, losing nothing).

With ``ZOO_RELIABILITY_REPORT`` set (to ``1`` or to a ``.json`` path) the session writes the
records to ``tests/reliability/results.json`` (or that path); ``python tools/reliability_table.py``
renders them into README.md. Without it nothing is written, so CI leaves the tree clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from tests.reliability._faults import PublishedWeights, lost_bytes, tree_state

RESULTS = Path(__file__).with_name("results.json")

#: Cases that other test files already cover; the table lists them instead of duplicating them.
REFERENCES = [
    {
        "name": "cache blob with flipped bytes is replaced",
        "category": "cache damage",
        "test": "tests/test_hub.py::test_corrupted_cache_file_is_replaced",
    },
    {
        "name": "manifest hash differs from the server's file: refused, removed, error says so",
        "category": "Hub faults",
        "test": "tests/test_hub.py::test_tampered_server_file_is_never_loaded",
    },
    {
        "name": "tampered LFS object refused against the Hub's own sha256",
        "category": "Hub faults",
        "test": "tests/test_hub.py::test_hub_hashes_reject_a_tampered_lfs_object",
    },
    {
        "name": "transfer cut short (well-formed short body)",
        "category": "Hub faults",
        "test": "tests/test_hub.py::test_truncated_download_leaves_nothing",
    },
    {
        "name": "dropped transfer resumes",
        "category": "Hub faults",
        "test": "tests/test_hub.py::test_dropped_transfer_resumes",
    },
    {
        "name": "Hub down, nothing cached",
        "category": "Hub faults",
        "test": "tests/test_hub.py::test_server_down_with_nothing_cached",
    },
    {
        "name": "`.keras` file with a Lambda layer refused in safe mode",
        "category": "hostile input",
        "test": "tests/test_transfer.py::test_load_keras_refuses_lambda_layers",
    },
    {
        "name": "`.pth` refused as pickle; weights of another head size refused",
        "category": "hostile input",
        "test": "tests/test_api.py::test_random_init_and_local_file",
    },
]


@dataclass
class Case:
    name: str
    category: str
    survived: bool = False
    data_lost_bytes: int = 0
    outcome: str = ""
    seconds: float = 0.0
    skipped: str = ""


class Recorder:
    """Collects :class:`Case` records over the session."""

    def __init__(self) -> None:
        self.cases: list[Case] = []

    @contextlib.contextmanager
    def case(self, name: str, category: str, *, watch: list[Path] | tuple[Path, ...] = ()) -> Iterator[Case]:
        """Run one case; it survives when the block passes and no watched byte was lost."""
        result = Case(name, category)
        before = tree_state(*[p for p in watch if Path(p).exists()])
        start = time.monotonic()
        try:
            yield result
        except pytest.skip.Exception as exc:
            result.skipped = str(exc.msg if hasattr(exc, "msg") else exc)
            self.cases.append(result)
            raise
        except BaseException as exc:
            result.survived = False
            result.outcome = result.outcome or f"FAILED: {type(exc).__name__}: {str(exc)[:160]}"
            result.data_lost_bytes = lost_bytes(before, tree_state(*[p for p in watch if Path(p).exists()]))
            result.seconds = round(time.monotonic() - start, 2)
            self.cases.append(result)
            raise
        result.seconds = round(time.monotonic() - start, 2)
        result.data_lost_bytes += lost_bytes(before, tree_state(*[p for p in watch if Path(p).exists()]))
        result.survived = result.data_lost_bytes == 0
        self.cases.append(result)
        assert result.data_lost_bytes == 0, f"{name}: {result.data_lost_bytes} bytes of user data lost"

    def write(self, path: Path) -> None:
        data = {
            "cases": [asdict(c) for c in self.cases],
            "references": REFERENCES,
            "environment": {
                "python": platform.python_version(),
                "platform": sys.platform,
                "euid": os.geteuid() if hasattr(os, "geteuid") else None,
            },
        }
        path.write_text(dump_results(data))


def dump_results(data: dict) -> str:
    """JSON with one case (and one reference) per line: small diffs between runs."""
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            rows = ",\n".join("    " + json.dumps(item, sort_keys=True) for item in value)
            parts.append(f'  "{key}": [\n{rows}\n  ]')
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


@pytest.fixture(scope="session")
def record():
    recorder = Recorder()
    yield recorder
    target = os.environ.get("ZOO_RELIABILITY_REPORT", "")
    if target and target != "0":
        recorder.write(Path(target) if target.endswith(".json") else RESULTS)


# --------------------------------------------------------------------------------------
# Weights on the local Hub
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lenet_files(tmp_path_factory):
    """Two different LeNet-5 weights files: the one under test and the bystander."""
    import keras

    import zoo

    folder = tmp_path_factory.mktemp("rel-weights")
    paths = []
    for seed, name in ((2, "lenet5.rel.weights.h5"), (3, "lenet5.bystander.weights.h5")):
        keras.utils.set_random_seed(seed)
        path = folder / name
        zoo.build("lenet5").save_weights(path)
        paths.append(path)
    return tuple(paths)


@pytest.fixture
def published(local_hub, hf_env, lenet_files, tmp_path, monkeypatch):
    """Weights on the local Hub named ``lenet5.hub``, and a verified ``lenet5.bystander`` cache entry."""
    import zoo

    weights, bystander = lenet_files
    pub = PublishedWeights(local_hub, weights, bystander, tmp_path).publish()
    monkeypatch.setenv("ZOO_MANIFEST", str(pub.manifest))
    zoo.pull("lenet5.bystander")  # a previously verified cache entry that faults must not touch
    return pub


@pytest.fixture
def user_data(tmp_path):
    """A folder of the user's own files (weights, images, a CSV) that must never be touched."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "user-data"
    (root / "images" / "cat").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        image = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        image.save(root / "images" / "cat" / f"{i}.png")
    (root / "notes.csv").write_text("text,label\nhello,a\nworld,b\n")
    (root / "my.weights.h5").write_bytes(rng.integers(0, 255, 4096, dtype=np.uint8).tobytes())
    return root
