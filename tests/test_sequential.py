"""Kernels rounded layer after layer on the int8 model's inputs (zoo.export.sequential)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers import numpy
from zoo.export import int8_simulation, int8_weights, rounded_weights, sequential
from zoo.export.sequential import _fitted, _moments, _shift, sequentially_rounded, unsupported


def _smooth(n: int, size: int, channels: int, seed: int = 1) -> np.ndarray:
    coarse = np.random.default_rng(seed).normal(size=(n, size // 4, size // 4, channels))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype("float32")


@pytest.mark.parametrize("depthwise", [False, True])
def test_the_fit_undoes_a_scaling_of_the_inputs(depthwise, monkeypatch):
    monkeypatch.setattr(sequential, "RIDGE", 0.0)
    init = keras.initializers.GlorotUniform(seed=0)
    layer = (
        keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, depthwise_initializer=init)
        if depthwise
        else keras.layers.Conv2D(5, 3, padding="same", kernel_initializer=init)
    )
    reference = np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype("float32")
    layer.build(reference.shape)
    kernel = numpy(layer.kernel).astype("float64")
    h, c, mean_q, mean_f, _ = _moments(layer, 2 * reference, reference)
    np.testing.assert_allclose(mean_q, 2 * mean_f)
    fit = _fitted(kernel, h, c, depthwise)
    np.testing.assert_allclose(fit, kernel / 2, rtol=1e-6, atol=1e-9)
    # the fitted kernel on the doubled inputs has no mean shift from the kernel on the reference
    np.testing.assert_allclose(_shift(kernel, fit, mean_q, mean_f, depthwise), 0, atol=1e-9)
    conv = keras.ops.depthwise_conv if depthwise else keras.ops.conv
    out = [
        numpy(conv(x, k.astype("float32"), padding="same"))
        for x, k in ((2 * reference, kernel), (reference, kernel))
    ]
    channels = out[0].shape[-1]
    want = out[0].reshape(-1, channels).mean(0) - out[1].reshape(-1, channels).mean(0)
    np.testing.assert_allclose(_shift(kernel, kernel, mean_q, mean_f, depthwise), want, rtol=1e-4, atol=1e-5)


def _network(seed: int = 0) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer=init, name="conv")(
        image
    )
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depthwise_initializer=init, name="depthwise")(x)
    x = keras.layers.Conv2D(8, 1, kernel_initializer=init, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(10, kernel_initializer=init, name="dense")(x))


def test_sequential_rounding_puts_every_kernel_on_the_grid_and_leaves_the_model_as_it_was():
    model = _network()
    calibration = _smooth(32, 16, 3)
    want = numpy(model(calibration))
    copy, counts = sequentially_rounded(model, calibration)
    assert counts == {"layers": 4, "corrected": 4, "fitted": 3}  # 32 reads of the dense layer's 8 inputs
    for name in ("conv", "depthwise", "project", "dense"):
        kernel, depthwise = numpy(copy.get_layer(name).kernel), name == "depthwise"
        np.testing.assert_allclose(int8_weights(kernel, depthwise), kernel, rtol=1e-6, atol=0)
        assert not np.array_equal(kernel, numpy(model.get_layer(name).kernel))
    np.testing.assert_array_equal(numpy(model(calibration)), want)
    assert np.std(numpy(copy(calibration)) - want) < 0.1 * np.std(want)


def test_a_layer_makes_up_for_what_the_int8_activation_before_it_loses():
    # three channels copied at 1/500 of their size: one int8 range for all six rounds the copies
    # to nothing, and only a layer fitted on the int8 inputs reads them from the large ones instead
    image = keras.Input((16, 16, 3))
    spread = keras.layers.Conv2D(6, 1, use_bias=False, name="spread")
    x = spread(image)
    read = keras.layers.Conv2D(4, 3, padding="same", name="read")
    model = keras.Model(image, keras.layers.GlobalAveragePooling2D()(read(x)))
    spread.kernel.assign(np.concatenate([np.eye(3), np.eye(3) / 500], -1)[None, None].astype("float32"))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 6, 4))
    kernel[:, :, 3:] *= 500
    read.kernel.assign(kernel.astype("float32"))
    calibration = _smooth(32, 16, 3)
    want = numpy(model(calibration))
    errors = {}
    with rounded_weights(model, calibration):
        errors["compensated"] = np.std(numpy(int8_simulation(model, calibration)(calibration)) - want)
    copy, _ = sequentially_rounded(model, calibration)
    errors["sequential"] = np.std(numpy(int8_simulation(copy, calibration)(calibration)) - want)
    assert errors["sequential"] < 0.2 * errors["compensated"], errors


def test_sequential_rounding_takes_plain_models_only():
    assert unsupported(_network()) is None
    inner = _network()
    image = keras.Input((16, 16, 3))
    assert unsupported(keras.Model(image, inner(image))).startswith("nests models")
    features = keras.Input((8, 8, 4))
    grouped = keras.Model(features, keras.layers.Conv2D(4, 3, groups=2)(features))
    assert unsupported(grouped).startswith("groups its convolutions")
    shared = keras.layers.Conv2D(4, 3, padding="same")
    assert unsupported(keras.Model(features, shared(shared(features)))).startswith("calls layers more")
    pair = [keras.Input((8, 8, 4)), keras.Input((8, 8, 4))]
    assert unsupported(keras.Model(pair, keras.layers.Add()(pair))) == "has several inputs"


def test_the_export_refuses_sequential_rounding_of_a_nested_model():
    from zoo.errors import InputError
    from zoo.export.image import _int8_weights

    inner = _network()
    image = keras.Input((16, 16, 3))
    nested = keras.Model(image, inner(image), name="finetuned")
    written = []
    weights = (None, nested, _smooth(4, 16, 3), None, None, None, {})
    with pytest.raises(InputError, match="finetuned nests models .*: leave out --rounding"):
        _int8_weights(weights, None, (1, 1, 1, "sequential"), written.append)
    assert not written


def _stem_then_depthwise(relu_after_depthwise: bool):
    """Stem, batch norm, ReLU6, depthwise convolution (with a batch norm and ReLU6 after it), 1x1, dense."""
    init = keras.initializers.GlorotUniform(seed=0)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, use_bias=False, kernel_initializer=init, name="stem")(image)
    x = keras.layers.ReLU(6.0, name="relu")(keras.layers.BatchNormalization(name="bn")(x))
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, depthwise_initializer=init, name="depthwise")(x)
    if relu_after_depthwise:
        x = keras.layers.ReLU(6.0, name="relu2")(keras.layers.BatchNormalization(name="bn2")(x))
    x = keras.layers.Conv2D(8, 1, kernel_initializer=init, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(10, kernel_initializer=init, name="dense")(x))


def _written(model, how):
    """What :func:`_int8_weights` returns, hands TFLite (the model and its kernels) and records."""
    from zoo.export.image import _int8_weights

    written, extra = [], {}

    def write(m):  # inside the rounding: the weights TFLite would convert
        written.append(
            (m, {layer.name: numpy(layer.kernel) for layer in m.layers if hasattr(layer, "kernel")})
        )

    given = _int8_weights((None, model, _smooth(32, 16, 3), None, None, None, extra), None, how, write)
    (held, kernels), *rest = written
    assert not rest
    return given, held, kernels, extra


@pytest.mark.parametrize("rounding", ["per-layer", "sequential"])
def test_the_export_holds_the_stem_in_pieces_over_rounded_weights(rounding):
    """Without distillation, either rounding hands TFLite the pieces model with int8-grid kernels."""
    model = _stem_then_depthwise(False)
    given, _, kernels, extra = _written(model, (2, 1, 1, rounding))
    assert given is None
    assert extra["stem_pieces"].startswith("the first activation held in 2 int8 pieces"), extra
    assert kernels["first_pieces"].shape == (3, 3, 3, 32) and kernels["pieces_added"].shape == (3, 3, 32, 16)
    for name in ("project", "dense"):
        np.testing.assert_allclose(int8_weights(kernels[name]), kernels[name], rtol=1e-6, atol=0)
    assert not np.array_equal(kernels["dense"], numpy(model.get_layer("dense").kernel))


@pytest.mark.parametrize("rounding", ["per-layer", "sequential"])
def test_the_export_holds_the_depthwise_activations_in_pieces_over_rounded_weights(rounding):
    """Either rounding hands TFLite the depthwise pieces with int8-grid kernels, and their ranges."""
    given, held, kernels, extra = _written(_stem_then_depthwise(True), (1, 2, 1, rounding))
    assert given == {"relu2": (0.0, 6.0)}
    assert extra["depthwise_pieces"].startswith("the activations after 1 depthwise convolution held in 2"), (
        extra
    )
    assert kernels["depthwise_pieces"].shape == (3, 3, 32, 1) and kernels["project"].shape == (1, 1, 32, 8)
    assert "depthwise" not in kernels and "bn2" not in {layer.name for layer in held.layers}
    np.testing.assert_allclose(
        int8_weights(kernels["depthwise_pieces"], depthwise=True),
        kernels["depthwise_pieces"],
        rtol=1e-5,
        atol=0,
    )
    for name in ("stem", "project", "dense"):
        np.testing.assert_allclose(int8_weights(kernels[name]), kernels[name], rtol=1e-5, atol=0)


def _with_expansion():
    """Stem, ReLU6, depthwise; then a block: 1x1 expansion, ReLU6, depthwise, ReLU6, 1x1 projection."""
    init = keras.initializers.GlorotUniform(seed=0)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False, kernel_initializer=init, name="stem")(image)
    x = keras.layers.ReLU(6.0, name="relu")(keras.layers.BatchNormalization(name="bn")(x))
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, depthwise_initializer=init, name="depthwise")(x)
    x = keras.layers.Conv2D(12, 1, use_bias=False, kernel_initializer=init, name="expand")(x)
    x = keras.layers.ReLU(6.0, name="relu2")(keras.layers.BatchNormalization(name="bn2")(x))
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, depthwise_initializer=init, name="depthwise2")(x)
    x = keras.layers.ReLU(6.0, name="relu3")(keras.layers.BatchNormalization(name="bn3")(x))
    x = keras.layers.Conv2D(8, 1, kernel_initializer=init, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(10, kernel_initializer=init, name="dense")(x))


@pytest.mark.parametrize("rounding", ["per-layer", "sequential"])
def test_the_export_holds_the_expansion_activations_in_pieces_over_rounded_weights(rounding):
    """Expansion pieces (the depthwise convolution made a grouped one) with depthwise pieces after
    them: TFLite gets both sets of ranges and int8-grid kernels; the first activation is left."""
    given, held, kernels, extra = _written(_with_expansion(), (1, 3, 2, rounding))
    assert given == {"relu2": (0.0, 6.0), "relu3": (0.0, 6.0)}
    assert extra["expansion_pieces"].startswith("the activations read by 1 depthwise convolution held in 2")
    assert extra["depthwise_pieces"].startswith("the activations after 1 depthwise convolution held in 3")
    assert kernels["expand_pieces"].shape == (1, 1, 8, 24) and kernels["depthwise"].shape == (3, 3, 8, 1)
    # the grouped convolution: 12 groups of 2 pieces in, 3 pieces out each
    assert kernels["depthwise2_pieces"].shape == (3, 3, 2, 36) and kernels["project"].shape == (1, 1, 36, 8)
    assert held.get_layer("depthwise2_pieces").groups == 12
    assert not {"bn2", "bn3", "expand", "depthwise2"} & {layer.name for layer in held.layers}
    for name in ("stem", "expand_pieces", "depthwise2_pieces", "project", "dense"):
        np.testing.assert_allclose(int8_weights(kernels[name]), kernels[name], rtol=1e-5, atol=0)


def test_the_frontier_runs_each_layer_once_with_the_weights_it_has_then():
    """What each layer reads, a segment at a time: a skip connection kept, later weights seen."""
    from zoo.export.sequential import _Frontier

    init = keras.initializers.GlorotUniform(seed=0)
    image = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=init, name="a")(image)
    b = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=init, name="b")(keras.layers.ReLU()(a))
    c = keras.layers.Conv2D(2, 1, kernel_initializer=init, name="c")(keras.layers.Add(name="add")([a, b]))
    model = keras.Model(image, c)
    x = np.random.default_rng(0).normal(size=(40, 8, 8, 3)).astype("float32")
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    run = _Frontier(model, x, order)
    np.testing.assert_array_equal(run.reads("a", order["a"]), x)
    np.testing.assert_allclose(
        run.reads("b", order["b"]), numpy(keras.ops.relu(model.get_layer("a")(x))), atol=1e-6
    )
    model.get_layer("b").kernel.assign(2 * numpy(model.get_layer("b").kernel))  # b has not run yet
    want = keras.Model(image, model.get_layer("c").input).predict(x, verbose=0)
    np.testing.assert_allclose(run.reads("c", order["c"]), want, rtol=1e-5, atol=1e-5)
    assert all(len(layer._inbound_nodes) == 1 for layer in model.layers)  # no graph added to the model
