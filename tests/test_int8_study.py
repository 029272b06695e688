"""tools/int8_study.py end to end on LeNet-5 and real MNIST images."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import DATA_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_int8_study_compares_both_ranges_and_int16_with_keras():
    args = [
        "--entry",
        "lenet5.mnist",
        "--data",
        "mnist",
        "--images",
        "200",
        "--int16",
        "100",
        "--float-ops",
        "FULLY_CONNECTED",
        "--weights-only",
    ]
    env = {**os.environ, "ZOO_DATA_DIR": str(DATA_DIR)}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.int8_study", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "calibration: 200 mnist train images" in out
    agreement = dict(re.findall(r"^(.+?): top-1 agreement ([\d.]+)% of", out, re.M))
    kept_float = [
        k for k in agreement if re.fullmatch(r"int8 quantile ranges, the [1-9]\d* FULLY_CONNECTED .*", k)
    ]
    assert set(agreement) == {
        "int8, TFLite min/max ranges",
        "int8, zoo quantile ranges",
        next(k for k in agreement if k.startswith("int16 activations")),
        *kept_float,
        "Keras with int8-rounded weights, 5 layers",
        "Keras with int8-rounded weights, 3 convolutions",
        "Keras with int8-rounded weights, 2 dense layers",
        "Keras with int8-rounded weights, 5 layers, biases corrected on 200 calibration images",
        "int8 quantile ranges, weights rounded and bias-corrected before converting",
    }
    assert len(kept_float) == 1, out
    assert all(float(v) >= 95 for v in agreement.values()), out  # LeNet-5 on MNIST: confident logits
    latency = r"^batch (1|64) latency: min/max ranges [\d.]+ ms, quantile ranges [\d.]+ ms$"
    assert re.findall(latency, out, re.M) == ["1", "64"]


def test_int8_weights_lie_on_one_symmetric_grid_per_output_channel():
    import numpy as np

    from tools.int8_study import int8_weights

    rng = np.random.default_rng(0)
    for kernel, depthwise in ((rng.normal(size=(3, 3, 4, 5)), False), (rng.normal(size=(3, 3, 4, 2)), True)):
        kernel = kernel.astype(np.float32) * rng.uniform(0.01, 10, size=kernel.shape[-1]).astype(np.float32)
        got = int8_weights(kernel, depthwise)
        channels = (
            got.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
            if depthwise
            else got.reshape(-1, got.shape[-1])
        )
        source = kernel.reshape(channels.shape)
        scale = np.abs(source).max(axis=0) / 127
        steps = channels / scale
        assert np.allclose(steps, np.round(steps), atol=1e-3)  # integer steps of the channel's own scale
        assert np.allclose(np.abs(steps).max(axis=0), 127, atol=1e-3)  # the largest weight keeps its value
        assert np.all(np.abs(channels - source) <= scale / 2 + 1e-6)  # rounded to the nearest step


@pytest.mark.parametrize("kind", ["dense", "conv_bn", "depthwise_bn"])
def test_bias_correction_gives_back_the_float_mean_output_on_the_calibration_inputs(kind):
    import keras
    import numpy as np

    from tools.int8_study import bias_corrections

    keras.utils.set_random_seed(0)
    if kind == "dense":
        inputs = keras.Input((16,))
        layer = keras.layers.Dense(4)
        outputs = layer(inputs)
    else:
        inputs = keras.Input((9, 9, 3))
        if kind == "conv_bn":
            layer = keras.layers.Conv2D(5, 3, strides=2, padding="same", use_bias=False)
        else:
            layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)
        norm = keras.layers.BatchNormalization()
        outputs = norm(layer(inputs))
        norm.moving_mean.assign(np.full(norm.moving_mean.shape, 0.3, "float32"))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    calibration = (rng.random((40, *inputs.shape[1:])) + 0.5).astype("float32")  # a non-zero mean to shift
    kernel = np.array(layer.kernel.numpy())
    rounded = np.round(kernel * 4) / 4  # a coarse grid, so that rounding visibly shifts the outputs
    want = np.asarray(model(calibration)).mean(axis=tuple(range(len(outputs.shape) - 1)))
    changes = bias_corrections(model, [layer], [kernel], [rounded], calibration)
    layer.kernel.assign(rounded)
    before = np.asarray(model(calibration)).mean(axis=tuple(range(len(outputs.shape) - 1)))
    assert not np.allclose(before, want, atol=1e-3)  # rounding moved the mean output
    assert len(changes) == 1
    for variable, value in changes:
        variable.assign(value)
    after = np.asarray(model(calibration)).mean(axis=tuple(range(len(outputs.shape) - 1)))
    np.testing.assert_allclose(after, want, atol=1e-4)
