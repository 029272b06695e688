"""Error-compensating rounding of kernels to TFLite's int8 grid (zoo.export.rounding)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers import numpy
from zoo.export import int8_weights, rounded_weights
from zoo.export.rounding import _patches, compensated_rounding, input_moments


@pytest.mark.parametrize(
    ("padding", "stride", "rate"), [("same", 1, 1), ("same", 2, 1), ("valid", 2, 1), ("same", 1, 2)]
)
def test_the_patches_are_what_each_convolution_reads(padding, stride, rate):
    x = np.random.default_rng(0).normal(size=(2, 9, 10, 3)).astype("float32")
    conv = keras.layers.Conv2D(4, 3, strides=stride, padding=padding, dilation_rate=rate, use_bias=False)
    want = numpy(conv(x)).reshape(-1, 4)
    patches = _patches(conv, x)
    got = patches.reshape(len(patches), -1) @ numpy(conv.kernel).reshape(-1, 4)
    np.testing.assert_allclose(got, want, atol=1e-5)
    depthwise = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding=padding, dilation_rate=rate, depth_multiplier=2, use_bias=False
    )
    want = numpy(depthwise(x)).reshape(-1, 6)
    patches = _patches(depthwise, x)
    got = np.einsum("mkc,kcj->mcj", patches, numpy(depthwise.kernel).reshape(9, 3, 2))
    np.testing.assert_allclose(got.reshape(len(patches), 6), want, atol=1e-5)


def _smooth(n: int, size: int, channels: int) -> np.ndarray:
    """Images like photos upscaled for a bigger network: neighbouring values nearly equal."""
    coarse = np.random.default_rng(1).normal(size=(n, size // 4, size // 4, channels))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype("float32")


@pytest.mark.parametrize("depthwise", [False, True])
def test_compensated_rounding_stays_on_tflites_grid_and_errs_less_on_the_inputs(depthwise):
    x = _smooth(16, 16, 32)
    init = keras.initializers.GlorotUniform(seed=0)
    layer = (
        keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, depthwise_initializer=init)
        if depthwise
        else keras.layers.Conv2D(32, 3, padding="same", use_bias=False, kernel_initializer=init)
    )
    layer.build(x.shape)
    kernel = numpy(layer.kernel)
    rounded = compensated_rounding(kernel, input_moments(layer, x), depthwise)
    assert rounded.shape == kernel.shape and rounded.dtype == kernel.dtype
    # on the grid: TFLite's own rounding moves nothing (but float32's last bit); a step is ~1e-2 of it
    np.testing.assert_allclose(int8_weights(rounded, depthwise), rounded, rtol=1e-6, atol=0)
    nearest = int8_weights(kernel, depthwise)
    assert not np.array_equal(rounded, nearest)
    conv = keras.ops.depthwise_conv if depthwise else keras.ops.conv
    exact = numpy(conv(x, kernel, padding="same"))
    errors = [np.std(numpy(conv(x, k, padding="same")) - exact) for k in (nearest, rounded)]
    assert errors[1] < (0.9 if depthwise else 0.7) * errors[0], errors  # 0.85 and 0.55 when written


def test_rounded_weights_compensate_with_calibration_and_round_to_nearest_without():
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(image)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    model = keras.Model(image, keras.layers.Dense(4, name="dense")(keras.layers.GlobalAveragePooling2D()(x)))
    calibration = _smooth(16, 16, 3)
    kernels = [numpy(model.get_layer(n).kernel) for n in ("conv", "depthwise", "dense")]
    with rounded_weights(model, calibration) as rounded:
        assert [layer.name for layer in rounded["compensated"]] == ["conv", "depthwise", "dense"]
        compensated = [numpy(layer.kernel) for layer in rounded["compensated"]]
    with rounded_weights(model, calibration, compensate=False) as rounded:
        assert rounded["compensated"] == []
        nearest = [numpy(model.get_layer(n).kernel) for n in ("conv", "depthwise", "dense")]
    for kernel, near, comp, depthwise in zip(
        kernels, nearest, compensated, (False, True, False), strict=True
    ):
        np.testing.assert_array_equal(near, int8_weights(kernel, depthwise))
        np.testing.assert_allclose(comp, int8_weights(comp, depthwise), rtol=1e-6, atol=0)
    for name, kernel in zip(("conv", "depthwise", "dense"), kernels, strict=True):
        np.testing.assert_array_equal(numpy(model.get_layer(name).kernel), kernel)  # the float ones again
