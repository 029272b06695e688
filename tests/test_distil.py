"""Quantisation-aware distillation (zoo.export.distil_int8): checkpoints, resuming, refusals.

Backend-neutral: tests/backend_subset.txt runs this file on JAX and PyTorch too.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

STEPS = 4


def _model():
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((12, 12, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.ReLU(6.0, name="relu6")(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = keras.layers.ReLU(6.0, name="relu6_dw")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    return keras.Model(x, keras.layers.Dense(5, name="logits")(y), name="tiny")


def _images():
    return np.random.default_rng(1).integers(0, 256, (64, 12, 12, 3), np.uint8)


def _transform(x):
    return np.asarray(x, np.float32) / 127.5 - 1


def _inputs(images, steps=STEPS):
    from zoo.export import distillation_inputs

    entry = SimpleNamespace(name="tiny.synthetic", sha256="0" * 64, preprocessing={"type": "image"})
    return distillation_inputs(entry, images, steps=steps, data="synthetic")


def _distil(model, images, steps=STEPS, transform=_transform, **kwargs):
    from zoo.export import distil_int8

    calibration = _transform(images[:16])
    return distil_int8(model, images, calibration, steps=steps, transform=transform, progress=False, **kwargs)


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


class _Stop(Exception):
    pass


def _stopping_after(calls):
    """A transform that raises on its ``calls + 1``-th batch (a run cut off), counting batches."""
    seen = []

    def transform(x):
        if len(seen) == calls:
            raise _Stop
        seen.append(1)
        return _transform(x)

    transform.seen = seen
    return transform


@pytest.fixture
def every_two_steps(monkeypatch):
    import zoo.export.distil

    monkeypatch.setattr(zoo.export.distil, "QAT_CHECKPOINT_EVERY", 2)


def test_distillation_changes_the_weights_and_leaves_the_teacher_alone():
    model, images = _model(), _images()
    before = _weights(model)
    distilled = _distil(model, images)
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model), strict=True))
    changed = [not np.array_equal(a, b) for a, b in zip(before, _weights(distilled), strict=True)]
    assert any(changed) and distilled.name == model.name


def test_kept_kernels_keep_their_int8_values_and_the_norms_and_biases_train():
    """keep_kernels: from kernels on TFLite's grid, only gammas, betas and biases move."""
    import keras

    from zoo.export import int8_weights

    model, images = _model(), _images()
    start = keras.models.clone_model(model)
    start.set_weights(model.get_weights())
    for layer in start.layers:
        if hasattr(layer, "kernel"):
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            layer.kernel.assign(int8_weights(np.asarray(layer.kernel), depthwise))
    distilled = _distil(model, images, start=start, keep_kernels=True)
    trained = _distil(model, images, start=start)
    for name in ("conv", "dw", "logits"):
        np.testing.assert_array_equal(
            np.asarray(distilled.get_layer(name).kernel), np.asarray(start.get_layer(name).kernel)
        )
    assert not np.array_equal(
        np.asarray(trained.get_layer("conv").kernel), np.asarray(start.get_layer("conv").kernel)
    )
    moved = {
        f"{layer.name}/{i}"
        for layer in distilled.layers
        for i, (a, b) in enumerate(
            zip(layer.get_weights(), start.get_layer(layer.name).get_weights(), strict=True)
        )
        if not np.array_equal(a, b)
    }
    assert {"bn/0", "bn/1", "dw/1", "logits/1"} <= moved, moved  # gamma, beta, the biases
    assert not {"bn/2", "bn/3"} & moved  # the moving statistics stay


def test_activations_tflite_runs_apart_are_simulated_as_layers_of_their_own():
    """A convolution's sigmoid and a dense layer's tanh (ops of their own in TFLite): the simulation
    rounds the tensor before each and fixes the range after it; the distilled model keeps them inside."""
    import keras

    from zoo.export import FIXED_RANGES, int8_simulation, split_activations

    keras.utils.set_random_seed(0)
    x = keras.Input((12, 12, 3))
    y = keras.layers.Conv2D(8, 3, activation="sigmoid", name="conv")(x)
    y = keras.layers.AveragePooling2D(2, name="pool")(y)
    y = keras.layers.Flatten(name="flat")(y)
    y = keras.layers.Dense(6, activation="tanh", name="dense")(y)
    model = keras.Model(x, keras.layers.Dense(5, name="logits")(y), name="squashed")
    images = _images()
    split = split_activations(model)
    inputs = _transform(images[:8])
    np.testing.assert_allclose(split.predict_on_batch(inputs), model.predict_on_batch(inputs), atol=1e-5)
    simulation = int8_simulation(model, inputs)
    rounded = {layer.name: layer for layer in simulation.layers if layer.name.startswith("int8_")}
    assert {"int8_conv", "int8_conv_sigmoid", "int8_pool", "int8_dense", "int8_dense_tanh"} <= set(rounded)
    assert (rounded["int8_conv_sigmoid"].lo, rounded["int8_conv_sigmoid"].hi) == FIXED_RANGES["sigmoid"]
    assert (rounded["int8_pool"].lo, rounded["int8_pool"].hi) == FIXED_RANGES["sigmoid"]  # its input's scale
    assert (rounded["int8_dense_tanh"].lo, rounded["int8_dense_tanh"].hi) == FIXED_RANGES["tanh"]
    distilled = _distil(model, images)
    assert [layer.name for layer in distilled.layers[1:]] == [layer.name for layer in model.layers[1:]]
    assert distilled.get_layer("dense").activation.__name__ == "tanh"
    assert not np.array_equal(_weights(distilled)[0], _weights(model)[0])


def test_the_same_seed_distils_the_same_weights_and_another_seed_others():
    model, images = _model(), _images()
    first, again = _weights(_distil(model, images)), _weights(_distil(model, images))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # bit for bit
    other = _weights(_distil(model, images, seed=1))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_a_cut_off_distillation_resumes_to_the_same_weights(tmp_path, every_two_steps):
    model, images = _model(), _images()
    straight = _weights(_distil(model, images))
    folder, inputs = tmp_path / "state", _inputs(images)
    with pytest.raises(_Stop):
        _distil(model, images, transform=_stopping_after(3), checkpoint=folder, inputs=inputs)
    with np.load(folder / "distillation.npz") as saved:
        assert int(saved["done"]) == 2
    rest = _stopping_after(10)
    resumed = _weights(_distil(model, images, transform=rest, checkpoint=folder, inputs=inputs))
    assert len(rest.seen) == STEPS - 2  # the two saved steps are not trained again
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with np.load(folder / "distillation.npz") as saved:
        assert int(saved["done"]) == STEPS


def test_a_finished_distillation_is_read_back_without_training(tmp_path):
    model, images = _model(), _images()
    folder, inputs = tmp_path / "state", _inputs(images)
    first = _weights(_distil(model, images, checkpoint=folder, inputs=inputs))
    never = _stopping_after(0)
    again = _weights(_distil(model, images, transform=never, checkpoint=folder, inputs=inputs))
    assert not never.seen
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_another_runs_state_is_refused_and_kept(tmp_path):
    from zoo.errors import InputError

    model, images = _model(), _images()
    folder = tmp_path / "state"
    _distil(model, images, checkpoint=folder, inputs=_inputs(images))
    saved = (folder / "distillation.npz").read_bytes()
    with pytest.raises(InputError, match=r"another zoo distil-int8 run \(steps: 4 -> 6\)"):
        _distil(model, images, steps=6, checkpoint=folder, inputs=_inputs(images, steps=6))
    other = images.copy()
    other[0, 0, 0, 0] ^= 1  # one value of one image: other inputs
    with pytest.raises(InputError, match="another zoo distil-int8 run"):
        _distil(model, other, checkpoint=folder, inputs=_inputs(other))
    assert (folder / "distillation.npz").read_bytes() == saved
    _distil(model, images, steps=6, checkpoint=folder, inputs=_inputs(images, steps=6), overwrite=True)
    with np.load(folder / "distillation.npz") as replaced:  # asked for: zoo's own state replaced
        assert int(replaced["done"]) == 6


def test_a_folder_of_the_users_files_is_refused(tmp_path):
    from zoo.errors import InputError

    model, images = _model(), _images()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="already holds files zoo did not write"):
        _distil(model, images, checkpoint=folder, inputs=_inputs(images))
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    with pytest.raises(InputError, match="needs the run's inputs"):
        _distil(model, images, checkpoint=tmp_path / "new")


def test_the_inputs_name_the_images_by_content():
    images = _images()
    a, b = _inputs(images), _inputs(images.copy())
    assert a == b and a["images"]["count"] == len(images) and len(a["images"]["sha256"]) == 64
    assert _inputs(images[:-1])["images"]["sha256"] != a["images"]["sha256"]


def test_the_tools_keras_ops_resize_matches_tensorflows():
    """tools/distil_int8.py off TensorFlow: the export's resize, crop and normalisation in keras.ops."""
    import zoo
    from tools.distil_int8 import transforms

    entry = zoo.weights_entry("efficientnet_lite0.in1k")  # bicubic to 256, centre crop 224
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), np.uint8)
    (resize, normalise), (ops_resize, ops_normalise) = transforms(entry, False), transforms(entry, True)
    want, got = np.asarray(resize(images)).astype(int), np.asarray(ops_resize(images)).astype(int)
    assert got.shape == want.shape == (6, 224, 224, 3)
    assert np.abs(got - want).max() <= 1 and np.mean(got != want) < 1e-4  # rounding ties at most
    x = want.astype(np.uint8)
    np.testing.assert_allclose(np.asarray(ops_normalise(x)), np.asarray(normalise(x)), atol=1e-6)


def test_resized_images_resize_only_what_is_drawn():
    """ResizedImages: a drawn batch (and a slice) equals resizing the whole set, then indexing it."""
    from zoo.export import ResizedImages

    calls = []

    def resize(x):
        calls.append(len(x))
        return np.repeat(np.repeat(np.asarray(x), 2, axis=1), 2, axis=2)

    images = _images()
    lazy, whole = ResizedImages(images, resize), resize(images)
    drawn = np.random.default_rng(0).integers(0, len(images), 32)
    calls.clear()
    assert len(lazy) == len(images)
    np.testing.assert_array_equal(lazy[drawn], whole[drawn])
    np.testing.assert_array_equal(lazy[:5], whole[:5])
    assert calls == [32, 5]


@pytest.mark.parametrize("count", ["0", "-1", "31"])
def test_the_tool_refuses_fewer_images_than_a_batch(tmp_path, monkeypatch, capsys, count):
    """prepare --images below one batch: a usage error, and no file (-1 would take the whole split)."""
    from tools import distil_int8

    out = tmp_path / "x.npz"
    argv = ["distil_int8", "prepare", "efficientnet_lite0.in1k", "--data", "cifar10", "--out", str(out)]
    monkeypatch.setattr("sys.argv", [*argv, "--images", count])
    with pytest.raises(SystemExit) as stop:
        distil_int8.main()
    assert stop.value.code == 2 and "at least one batch (32)" in capsys.readouterr().err
    assert not out.exists()


def test_finer_levels_name_the_stem_or_every_int8_activation():
    """tools.distil_int8's levels: --finer-first K alone is the stem --stem-pieces holds; with
    --finer-all every int8 activation, each on 255 K + 1 steps; K = 1 is plain int8."""
    from tools.distil_int8 import finer_levels
    from zoo.export import quantized_outputs
    from zoo.export.pieces import pieces_levels
    from zoo.models.efficientnet import efficientnet_lite0

    model = efficientnet_lite0(input_shape=(32, 32, 3), num_classes=10)
    names = [layer.name for layer in quantized_outputs(model)]
    assert finer_levels(model, 2) == pieces_levels(model, 2) == {"stem_relu6": 511}
    every = finer_levels(model, 4, every=True)
    assert list(every) == names and len(names) > 40 and set(every.values()) == {1021}
    assert finer_levels(model, 1) is None and finer_levels(model, 1, every=True) is None


def test_the_tool_refuses_finer_all_without_a_factor(tmp_path, monkeypatch, capsys):
    from tools import distil_int8

    argv = ["distil_int8", "run", "efficientnet_lite0.in1k", "--images", "x.npz", "--steps", "10"]
    monkeypatch.setattr("sys.argv", [*argv, "--checkpoint", str(tmp_path / "c"), "--finer-all"])
    with pytest.raises(SystemExit) as stop:
        distil_int8.main()
    assert stop.value.code == 2 and "--finer-all needs --finer-first K (K > 1)" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("extra", "code", "says"),
    [
        (["--equalize"], "--equalize scales the channels of linear streams", "lenet5.mnist has none"),
        (
            ["--depthwise-pieces", "2"],
            "--depthwise-pieces holds ReLU6 outputs",
            "leave out --depthwise-pieces",
        ),
        (
            ["--expansion-pieces", "2"],
            "--expansion-pieces holds ReLU6 outputs",
            "leave out --expansion-pieces",
        ),
        (["--depthwise-pieces", "9"], 2, "invalid choice: 9"),
        (["--calibration-images", "0"], 2, "invalid choice: 0"),
    ],
)
def test_the_tool_refuses_what_the_export_refuses_before_it_reads_the_images(
    tmp_path, monkeypatch, capsys, extra, code, says
):
    from tools import distil_int8

    argv = ["distil_int8", "run", "lenet5.mnist", "--images", str(tmp_path / "none.npz"), "--steps", "1"]
    monkeypatch.setattr("sys.argv", [*argv, "--checkpoint", str(tmp_path / "c"), *extra])
    with pytest.raises(SystemExit) as stop:
        distil_int8.main()
    said = str(stop.value.code) + capsys.readouterr().err
    assert (stop.value.code == 2 if code == 2 else code in said) and says in said, said
    assert not (tmp_path / "c").exists()
