"""Load: 8 processes load the same not-yet-cached model at the same moment through the local Hub.

A counting, throttling :class:`FaultProxy` sits in front of olah, so the server side sees every
request and the transfer lasts long enough (~5 s) for all 8 processes to be inside it at once.
A watcher thread polls the final cache paths the whole time: whenever one exists, its bytes
must hash to the published sha256 (no partial file is ever visible there).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import numpy
from tests.reliability._faults import FaultProxy, incomplete_files

pytestmark = [pytest.mark.hub, pytest.mark.slow]

PROCESSES = 8

CHILD = r"""
import hashlib, json, sys, time
from pathlib import Path
import numpy as np
import keras  # the slow imports happen before the barrier, so the loads really overlap
import zoo
zoo.build("lenet5")
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
deadline = time.time() + 300
while not go.exists():
    if time.time() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)
start = time.time()
model = zoo.load("lenet5.hub")
seconds = time.time() - start
x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
out = keras.ops.convert_to_numpy(model(x, training=False))  # a torch tensor requires grad
path = zoo.pull("lenet5.hub")["lenet5.rel.weights.h5"]
print(json.dumps({"out": out.tolist(), "path": str(path), "seconds": seconds, "start": start,
                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
"""


class Watcher(threading.Thread):
    """Polls the final cache paths; every time one exists its bytes must be the published ones."""

    def __init__(self, paths: list[Path], blobs: Path, expected: str) -> None:
        super().__init__(daemon=True)
        self.paths, self.blobs, self.expected = paths, blobs, expected
        self.seen = 0
        self.bad: list[str] = []
        self.stop = threading.Event()

    def check(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed between exists() and open(): not a partial file
            return
        self.seen += 1
        if hashlib.sha256(data).hexdigest() != self.expected:
            self.bad.append(f"{path.name}: {len(data)} bytes")

    def run(self) -> None:
        while not self.stop.is_set():
            for path in self.paths:
                if path.exists():
                    self.check(path)
            if self.blobs.is_dir():
                for blob in self.blobs.iterdir():
                    # partial downloads, and huggingface_hub's empty umask probe ``tmp_<uuid>``
                    # (file_download._chmod_and_move), which is never a blob
                    if ".incomplete" not in blob.name and not blob.name.startswith("tmp_"):
                        self.check(blob)
            time.sleep(0.01)


def test_eight_processes_load_the_same_uncached_model(published, hf_env, user_data, record, tmp_path):
    import zoo

    expected = hashlib.sha256(published.weights.read_bytes()).hexdigest()
    reference = zoo.build("lenet5")
    reference.load_weights(published.weights)
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    want = numpy(reference(x, training=False))

    snapshot = published.snapshot_path(hf_env.cache_dir)
    blobs = published.cache_folder(hf_env.cache_dir) / "blobs"
    assert not snapshot.exists()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    name = f"{PROCESSES} processes load the same uncached model at once"
    with (
        record.case(name, "load", watch=[user_data, published.bystander_dir(hf_env.cache_dir)]) as case,
        FaultProxy(hf_env.endpoint, rate=60_000) as proxy,
    ):
        env = published.child_env(
            proxy.endpoint,
            hf_env.hf_home,
            TF_NUM_INTRAOP_THREADS="1",
            TF_NUM_INTEROP_THREADS="1",
            OMP_NUM_THREADS="1",
        )
        go = tmp_path / "go"
        children = []
        for i in range(PROCESSES):
            ready = tmp_path / f"ready-{i}"
            proc = subprocess.Popen(
                [sys.executable, str(script), str(ready), str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            children.append((ready, proc))
        deadline = time.monotonic() + 300
        while not all(ready.exists() for ready, _ in children):
            failed = [proc for _, proc in children if proc.poll() is not None]
            assert not failed, failed[0].stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the children did not start in time"
            time.sleep(0.05)
        watcher = Watcher([snapshot], blobs, expected)
        watcher.start()
        go.touch()
        results = []
        for _, proc in children:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        watcher.stop.set()
        watcher.join()

        gets = proxy.count("GET", "/resolve/")
        heads = proxy.count("HEAD", "/resolve/")
        assert gets == 1, f"{gets} downloads of the file: {proxy.summary()}"
        assert heads == PROCESSES, proxy.summary()
        first_done = min(r["start"] + r["seconds"] for r in results)
        late = [r["start"] - first_done for r in results if r["start"] >= first_done]
        assert late == [], f"{len(late)} process(es) started after the first load had finished"
        for r in results:
            assert r["sha256"] == expected and r["path"] == str(snapshot)
            # the children run one thread each: the same bits among them; this process's thread
            # count may sum in another order (seen: 6e-8 apart), so against it within float32 rounding
            np.testing.assert_array_equal(np.asarray(r["out"]), np.asarray(results[0]["out"]))
            np.testing.assert_allclose(np.asarray(r["out"], np.float32), want, rtol=1e-5, atol=1e-6)
        assert watcher.seen > 0 and watcher.bad == [], watcher.bad
        assert incomplete_files(hf_env.cache_dir) == []
        case.outcome = (
            f"1 GET for {PROCESSES} overlapping loads, identical outputs; {watcher.seen} reads "
            "of the final paths during the run, all complete"
        )
