"""Data-parallel fine-tuning on the engines Keras documents, with several processes for real."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import DATA_DIR
from zoo.errors import InputError
from zoo.train.distribute import DISTRIBUTE, check_distribute, process_count

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
    with pytest.raises(InputError, match="keras-team/keras#20585"):
        check_distribute("multiworker")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    with pytest.raises(InputError, match="several processes need KERAS_BACKEND=jax"):
        check_distribute("data-parallel")
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
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX: pip install -e '.[dev]'")
def test_two_jax_processes_train_like_one(tmp_path):
    """Two processes on loopback, one CPU device each, against one process with the same global batch."""
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"needs the shared MNIST data under {DATA_DIR}")
    env = {**os.environ, "KERAS_BACKEND": "jax", "ZOO_DATA_DIR": str(DATA_DIR)}
    for key in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES"):
        env.pop(key, None)
    zoo_cmd = [sys.executable, "-m", "zoo", "finetune", *FINETUNE]
    single = subprocess.run(
        [*zoo_cmd, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr[-3000:]

    cluster = {
        **env,
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{_free_port()}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
    }
    procs = [
        subprocess.Popen(
            [*zoo_cmd, "--out", str(tmp_path / f"p{i}")],
            env={**cluster, "KERAS_DISTRIBUTION_PROCESS_ID": str(i)},
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
    for i in range(2):
        for a, b in zip(one, _weights(tmp_path / f"p{i}"), strict=True):
            np.testing.assert_allclose(b, a, atol=1e-5)
