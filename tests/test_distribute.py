"""Data-parallel fine-tuning on the engines Keras documents, with several processes for real."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import DATA_DIR
from zoo.errors import InputError
from zoo.train.distribute import DISTRIBUTE, check_distribute, join_processes, process_count

FINETUNE = [
    "lenet5",
    "--data",
    "mnist",
    "--max-train",
    "512",
    "--max-val",
    "256",
    "--epochs",
    "2",
    "--strategy",
    "full",
    "--batch-size",
    "64",
    "--distribute",
    "data-parallel",
]


def test_choices_and_refusals(monkeypatch):
    assert DISTRIBUTE == ("none", "data-parallel", "mirrored")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(InputError, match="no distribution API for torch: set KERAS_BACKEND=jax"):
        check_distribute("data-parallel")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert check_distribute("data-parallel") == "data-parallel" and check_distribute(None) == "none"
    with pytest.raises(InputError, match="needs KERAS_BACKEND=tensorflow"):
        check_distribute("mirrored")
    with pytest.raises(InputError, match="spelled --distribute data-parallel"):
        check_distribute("multiworker")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    with pytest.raises(InputError, match="TensorFlow's workers read TF_CONFIG"):
        check_distribute("data-parallel")
    monkeypatch.delenv("KERAS_DISTRIBUTION_NUM_PROCESSES")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"index": 3}}')
    with pytest.raises(InputError, match="one machine's; with TF_CONFIG set use --distribute data-parallel"):
        check_distribute("mirrored")
    with pytest.raises(InputError, match="task index 3 is not one of its 1 workers"):
        join_processes("data-parallel")
    monkeypatch.setenv("TF_CONFIG", "workers: a, b")
    with pytest.raises(InputError, match="TF_CONFIG must be JSON like"):
        join_processes("data-parallel")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "two")
    with pytest.raises(InputError, match="positive whole number"):
        process_count()


def test_cli_refuses_multiworker_with_the_reason():
    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["finetune", "lenet5", "--data", "mnist", "--distribute", "multiworker"])
    assert result.exit_code != 0 and "multiworker" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(folder):
    import keras

    import zoo  # noqa: F401  (registers the zoo's layers for plain Keras)

    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "jax",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("jax") is None, reason="needs JAX: pip install -e '.[dev]'"
            ),
        ),
        "tensorflow",
    ],
)
def test_two_processes_train_like_one(tmp_path, backend):
    """Two processes on loopback, one CPU device each, against one process with the same global batch.

    JAX: keras.distribution (KERAS_DISTRIBUTION_*); TensorFlow: MultiWorkerMirroredStrategy (TF_CONFIG).
    """
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"needs the shared MNIST data under {DATA_DIR}")
    env = {**os.environ, "KERAS_BACKEND": backend, "ZOO_DATA_DIR": str(DATA_DIR)}
    for key in ("TF_CONFIG", "KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES"):
        env.pop(key, None)
    zoo_cmd = [sys.executable, "-m", "zoo", "finetune", *FINETUNE]
    single = subprocess.run(
        [*zoo_cmd, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr[-3000:]

    if backend == "jax":
        port = _free_port()
        envs = [
            {
                **env,
                "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
                "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                "KERAS_DISTRIBUTION_PROCESS_ID": str(i),
            }
            for i in range(2)
        ]
    else:
        workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
        envs = [
            {
                **env,
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
                ),
            }
            for i in range(2)
        ]
    procs = [
        subprocess.Popen(
            [*zoo_cmd, "--out", str(tmp_path / f"p{i}")],
            env=envs[i],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    one = _weights(tmp_path / "one")
    held_out = _held_out(tmp_path / "one")
    for i in range(2):
        assert _held_out(tmp_path / f"p{i}") == held_out, "every process measures the same held-out subset"
        for a, b in zip(one, _weights(tmp_path / f"p{i}"), strict=True):
            np.testing.assert_allclose(b, a, atol=1e-5)


def _held_out(folder) -> float:
    card = json.loads((folder / "card.json").read_text())
    return next(m["value"] for m in card["metrics"] if m["name"] == "top1_accuracy")
