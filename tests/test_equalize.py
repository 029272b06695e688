"""The channels of linear streams equalised before int8 (zoo.export.equalize)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers import numpy
from zoo.export import int8_simulation
from zoo.export.equalize import MAX_SCALE, equalized, linear_streams

#: Each stream channel's gamma: channel 0 a hundred times channel 3.
_GAMMAS = np.array([4.0, 1.0, 0.3, 0.04], "float32")


def _init(seed: int) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seed)


def _norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(name=name, gamma_initializer=keras.initializers.Constant(_GAMMAS))


def _residual_model(name: str = "residual") -> keras.Model:
    """A stem, then one stage of an inverted-residual network: its stream is bn_a, bn_b, drop and add."""
    x = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=_init(0), name="stem")(x)
    h = keras.layers.ReLU(6.0, name="stem_relu6")(h)
    a = keras.layers.Conv2D(4, 1, use_bias=False, kernel_initializer=_init(1), name="project_a")(h)
    a = _norm("bn_a")(a)
    b = keras.layers.Conv2D(16, 1, kernel_initializer=_init(2), name="expand")(a)
    b = keras.layers.ReLU(6.0, name="expand_relu6")(b)
    b = keras.layers.Conv2D(4, 1, use_bias=False, kernel_initializer=_init(3), name="project_b")(b)
    b = keras.layers.Dropout(0.2, name="drop")(_norm("bn_b")(b))
    s = keras.layers.Add(name="add")([b, a])
    t = keras.layers.Conv2D(8, 1, kernel_initializer=_init(4), name="head")(s)
    t = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU(6.0, name="head_relu6")(t))
    return keras.Model(x, keras.layers.Dense(5, kernel_initializer=_init(5), name="logits")(t), name=name)


def _images(n: int = 48) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(n, 8, 8, 3)).astype("float32")


def _names(layers: list) -> list[str]:
    return [layer.name for layer in layers]


def test_the_streams_are_found_from_the_graph():
    (stream,) = linear_streams(_residual_model())
    assert _names(stream.makers) == ["bn_a", "bn_b", "drop", "add"]
    assert _names(stream.readers) == ["expand", "head"]


def test_equalising_keeps_the_function_and_spreads_the_channels():
    model, images = _residual_model(), _images()
    copy, done = equalized(model, images)
    assert (done["streams"], done["tensors"], done["readers"]) == (1, 3, 2)
    (scale,) = done["scales"]
    assert scale[0] == 1.0 and np.all(scale[1:] > 1.0) and scale.max() <= MAX_SCALE
    assert scale[3] == MAX_SCALE  # a hundredth of the widest: capped
    assert done["max_diff"] < 1e-4
    np.testing.assert_allclose(numpy(copy(images)), numpy(model(images)), atol=1e-4)
    np.testing.assert_allclose(numpy(copy.get_layer("bn_a").gamma), _GAMMAS * scale, rtol=1e-6)
    np.testing.assert_allclose(numpy(model.get_layer("bn_a").gamma), _GAMMAS)  # the model is left as it was
    expand = numpy(model.get_layer("expand").kernel)
    np.testing.assert_allclose(numpy(copy.get_layer("expand").kernel), expand / scale[:, None], rtol=1e-6)
    # the stream's channels, scaled, span closer ranges
    stream = keras.Model(copy.input, copy.get_layer("add").output)
    before = keras.Model(model.input, model.get_layer("add").output)
    peaks = [np.abs(numpy(m(images))).reshape(-1, 4).max(0) for m in (before, stream)]
    assert peaks[1].max() / peaks[1].min() < peaks[0].max() / peaks[0].min() / 4


def test_equalising_brings_the_int8_model_closer_to_float():
    model, images = _residual_model(), _images(96)
    for reader in ("expand", "head"):  # the narrow channels weigh as much as the wide one downstream
        kernel = model.get_layer(reader).kernel
        kernel.assign(numpy(kernel) * (_GAMMAS.max() / _GAMMAS)[:, None])
    calibration, test = images[:48], images[48:]
    errors = []
    for candidate in (model, equalized(model, calibration)[0]):
        simulation = int8_simulation(candidate, calibration)
        errors.append(np.abs(numpy(simulation(test)) - numpy(model(test))).mean())
    assert errors[1] < errors[0] / 2, errors


def test_the_streams_of_a_nested_model_are_equalised_in_it():
    inner = _residual_model("backbone")
    x = keras.Input((8, 8, 3))
    outer = keras.Model(x, keras.layers.Dense(2, kernel_initializer=_init(6), name="new_head")(inner(x)))
    (stream,) = linear_streams(outer)
    assert stream.owner.name == "backbone"
    images = _images()
    copy, done = equalized(outer, images)
    assert done["scales"][0][3] == MAX_SCALE
    np.testing.assert_allclose(numpy(copy(images)), numpy(outer(images)), atol=1e-4)
    gamma = numpy(copy.get_layer("backbone").get_layer("bn_b").gamma)
    np.testing.assert_allclose(gamma, _GAMMAS * done["scales"][0], rtol=1e-6)


def test_a_kernel_that_reads_its_own_stream_takes_both_scales():
    """A linear convolution added back to the stream it reads: its kernel is scaled on both axes."""
    x = keras.Input((8, 8, 3))
    h = keras.layers.ReLU(6.0, name="stem_relu6")(keras.layers.Conv2D(4, 3, padding="same", name="stem")(x))
    a = _norm("bn_a")(
        keras.layers.Conv2D(4, 1, use_bias=False, kernel_initializer=_init(1), name="project")(h)
    )
    b = keras.layers.Conv2D(4, 1, kernel_initializer=_init(2), name="linear")(a)
    s = keras.layers.Add(name="add")([a, b])
    model = keras.Model(x, keras.layers.Conv2D(3, 1, kernel_initializer=_init(3), name="reader")(s))
    (stream,) = linear_streams(model)
    assert _names(stream.makers) == ["bn_a", "linear", "add"]
    assert _names(stream.readers) == ["linear", "reader"]
    images = _images()
    copy, done = equalized(model, images)
    assert done["scales"][0].max() > 1.0
    np.testing.assert_allclose(numpy(copy(images)), numpy(model(images)), rtol=1e-4, atol=1e-4)


def _stage(join: str) -> keras.Model:
    """A stem and two linear branches, joined as ``join`` says."""
    x = keras.Input((8, 8, 3))
    h = keras.layers.ReLU(6.0, name="stem_relu6")(keras.layers.Conv2D(4, 3, padding="same", name="stem")(x))
    a = _norm("bn_a")(keras.layers.Conv2D(4, 1, name="project_a")(h))
    b = _norm("bn_b")(keras.layers.Conv2D(4, 1, name="project_b")(h))
    if join == "add then relu":  # ResNet's: the sum is read by a ReLU
        y = keras.layers.ReLU(name="relu")(keras.layers.Add(name="add")([a, b]))
    elif join == "add to a relu":  # the sum takes a tensor that clips
        y = keras.layers.Conv2D(4, 1, name="reader")(keras.layers.Add(name="add")([a, h]))
    elif join == "depthwise reader":
        y = keras.layers.DepthwiseConv2D(3, name="reader")(keras.layers.Add(name="add")([a, b]))
    elif join == "an output":
        y = keras.layers.Add(name="add")([a, b])
    else:  # also read by something that is not a kernel
        s = keras.layers.Add(name="add")([a, b])
        y = keras.layers.Concatenate()(
            [keras.layers.Conv2D(4, 1, name="reader")(s), keras.layers.Activation("tanh")(s)]
        )
    return keras.Model(x, y)


@pytest.mark.parametrize(
    "join", ["add then relu", "add to a relu", "depthwise reader", "an output", "also read by a tanh"]
)
def test_tensors_that_are_not_streams_are_left_alone(join):
    assert linear_streams(_stage(join)) == []


def test_a_model_without_streams_is_left_as_it_is():
    model = _stage("add then relu")
    copy, done = equalized(model, _images(16))
    assert (done["streams"], done["scales"]) == (0, [])
    for a, b in zip(copy.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
