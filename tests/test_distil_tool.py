"""tools/distil_int8.py: distil on JAX (no TensorFlow), convert with zoo export on TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent
NO_TENSORFLOW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("this test runs without TensorFlow")
sys.meta_path.insert(0, Block())
"""


def _tool(*args, backend="tensorflow", env_extra=None):
    env = {**os.environ, "ZOO_DATA_DIR": str(DATA_DIR), "KERAS_BACKEND": backend, **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.distil_int8", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_a_state_distilled_on_jax_without_tensorflow_is_converted_by_the_export(tmp_path):
    pytest.importorskip("jax")
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    images, state = tmp_path / "images.npz", tmp_path / "state"
    out = _tool("prepare", "lenet5.mnist", "--data", "mnist", "--out", str(images))
    assert "10000 mnist train images" in out
    with pytest.raises(AssertionError, match="never replaces a file"):  # never replaces a file
        _tool("prepare", "lenet5.mnist", "--data", "mnist", "--out", str(images))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_TENSORFLOW)
    blocked = {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"}
    # the export's settings that change the distillation, given to both
    settings = ["--keep-kernels", "--calibration-images", "100", "--rounding", "sequential"]
    out = _tool(
        "run",
        "lenet5.mnist",
        "--images",
        str(images),
        "--steps",
        "6",
        "--checkpoint",
        str(state),
        *settings,
        backend="jax",
        env_extra=blocked,
    )
    assert out.startswith("jax: 10000 mnist images") and "distilled 6 steps" in out, out
    saved = (state / "distillation.npz").read_bytes()
    with np.load(state / "distillation.npz") as npz:
        assert int(npz["done"]) == 6 and str(npz["backend"]) == "jax"

    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--qat-steps", "6", "--evaluate"]
    args += ["--data-dir", str(DATA_DIR), "--qat-checkpoint", str(state), "--json"]
    args += ["--qat-keep-kernels", "--calibration-images", "100", "--rounding", "sequential"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "q.tflite")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert metrics["qat"].startswith("6 steps") and metrics["top1_agreement"] >= 99, metrics
    assert metrics["qat_state"] == "kept in --qat-checkpoint, last saved by Keras on jax", metrics
    assert (state / "distillation.npz").read_bytes() == saved  # read back, not trained again

    # another step count is another run: refused, the JAX state kept
    args[args.index("6")] = "7"
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "r.tflite")])
    assert result.exit_code != 0 and "another zoo distil-int8 run (steps: 6 -> 7)" in result.output
    assert (state / "distillation.npz").read_bytes() == saved and not (tmp_path / "r.tflite").exists()
