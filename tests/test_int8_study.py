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
def test_int8_study_compares_both_ranges_and_int16_with_keras(tmp_path):
    from zoo.export import export

    given = tmp_path / "lenet5-int8.tflite"
    export("lenet5.mnist", "tflite", given, quantize="int8", data="mnist", data_dir=str(DATA_DIR))
    args = [
        "--file",
        str(given),
        "--builtin-kernels",
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
        "--activations",
        "--perturbations",
        "--float-first",
        "1,2",
        "--simulation",
        "--equalize",
        "1",
        "--quantiles",
        "1e-4,0.01",
        "--first-ranges",
        "0.01",
        "--sequential-finer",
        "2",
    ]
    env = {**os.environ, "ZOO_DATA_DIR": str(DATA_DIR)}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.int8_study", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "calibration: 200 mnist train images" in out
    assert re.search(r"^  its latency: batch 1 [\d.]+ ms, batch 64 [\d.]+ ms$", out, re.M), out
    agreement = dict(re.findall(r"^(.+?): top-1 agreement ([\d.]+)% of", out, re.M))
    row = r"^(.+?): top-1 agreement ([\d.]+)% of \d+, logit error std ([\d.]+), Keras' top-1 in its top 5 "
    row += r"on ([\d.]+)%, top-1 agreement ([\d.]+|nan)% on the ([\d.]+)% with a Keras gap of at least 0.3"
    rows = {label: values for label, *values in re.findall(row, out, re.M)}
    assert set(rows) == set(agreement), out
    assert all(float(top1) <= float(top5) for top1, _, top5, _, _ in rows.values()), out
    # the file zoo export wrote is the model the study rebuilds as zoo export makes it
    made = rows.pop("int8 as zoo export makes it: quantile ranges, weights rounded and bias-corrected")
    assert rows.pop(f"the int8 file {given} (no distillation)") == made, out
    # the same file on TFLite's builtin kernels: the same integers, rounded by other arithmetic
    builtin = rows.pop(f"the int8 file {given} (no distillation) on TFLite's builtin kernels")
    assert float(builtin[0]) >= 95 and abs(float(builtin[1]) - float(made[1])) <= 0.2 * float(made[1]), out
    agreement.pop(f"the int8 file {given} (no distillation) on TFLite's builtin kernels")
    # at the export's own quantile, the same file again
    at = "int8 as zoo export makes it, activation ranges cut at the {} quantiles"
    assert rows.pop(at.format("0.0001")) == made, out
    assert agreement.pop(at.format("0.0001")) == made[0], out
    narrower = rows.pop(at.format("0.01"))  # ranges cut 100 times as far in: another file
    assert float(narrower[0]) >= 95 and narrower[1] != made[1], out
    agreement.pop(at.format("0.01"))
    agreement.pop(f"the int8 file {given} (no distillation)")
    kept_float = [
        k for k in agreement if re.fullmatch(r"int8 quantile ranges, the [1-9]\d* FULLY_CONNECTED .*", k)
    ]
    rounded = [k for k in agreement if k.startswith("Keras with float weights, int8-rounded activations: ")]
    assert [k.split(": ", 1)[1] for k in rounded] == [
        next(k.split(": ", 1)[1] for k in rounded if re.fullmatch(r".*: the first \(\w+\) alone", k)),
        next(k.split(": ", 1)[1] for k in rounded if re.fullmatch(r".*: all [1-9]\d* but the first", k)),
        next(k.split(": ", 1)[1] for k in rounded if re.fullmatch(r".*: all [1-9]\d*", k)),
    ], out
    changes = ("one grey level of noise (-1, 0 or +1 per pixel)", "shifted one pixel right", "mirrored")
    moved = {f"Keras (float) on its images {change}" for change in changes}
    noise, mirrored = (f"Keras (float) on its images {changes[i]}" for i in (0, 2))
    assert moved <= set(agreement), out
    assert float(agreement[noise]) >= 95, out  # confident logits: noise below the eye's does not flip them
    assert float(agreement[mirrored]) < 100, out  # mirrored digits change
    agreement = {k: v for k, v in agreement.items() if k not in moved}
    cut = [k for k in agreement if re.fullmatch(r"Keras with float weights, only \w+ rounded, on \[.+\]", k)]
    assert len(cut) == 2 and cut[1].endswith(", 0.01]"), out  # the export's range, then the one asked for
    assert re.search(
        r"^\w+ on the calibration images: range \[.+\]; 50/90/99% quantiles .+ at or above its top$",
        out,
        re.M,
    )
    export_range, narrow = (float(agreement.pop(k)) for k in cut)
    assert narrow < export_range, out  # the values above 0.01 clipped: the model no longer follows Keras
    files = ("TFLite's calibrated ranges", "the simulation's")
    simulated = {
        "the int8 simulation distillation trains",
        *(f"the int8 file of those weights, {ranges}" for ranges in files),
    }
    assert simulated <= set(agreement), out
    pattern = r"^  its top-1 is the simulation's on ([\d.]+)%; logit difference std ([\d.]+)$"
    followed = re.findall(pattern, out, re.M)
    assert len(followed) == 2 and all(float(v) >= 95 for v, _ in followed), out
    (_, calibrated), (_, simulated_ranges) = followed  # the simulation's ranges: the file no further from it
    assert float(simulated_ranges) <= 1.2 * float(calibrated), out
    # the simulation stands for the file: nearer to it than Keras is (with LeNet-5's tanh left inside
    # its convolution, unsimulated, it was further: 0.243 against 0.220 on 1,000 images)
    keras_error = rows["the int8 file of those weights, the simulation's"][1]
    assert float(simulated_ranges) < 0.7 * float(keras_error), out
    # LeNet-5 has no ReLU6 before a depthwise convolution: its equalized copy is the model
    equalized = "equalized before 0 depthwise convolutions (margin 1)"
    assert agreement.pop(f"Keras {equalized}, float") == "100.00", out
    made = agreement.pop("int8 as zoo export makes it (bias-corrected)")
    assert agreement.pop(f"int8 as zoo export makes it, {equalized}") == made, out
    assert f"Keras {equalized}, float weights, int8-rounded activations" in agreement, out
    rounded.append(f"Keras {equalized}, float weights, int8-rounded activations")
    first = [k for k in agreement if re.fullmatch(r"int8 as zoo export makes it, the first [12] .*", k)]
    grid = [
        k
        for k in agreement
        if re.fullmatch(r"Keras logits on that model's int8 output grid \(step 0\.\d+\)", k)
    ]
    assert len(grid) == 1, out
    assert len(first) == 2, out
    # LeNet-5 has no depthwise convolution and no global pooling: the first, then all of them
    after = "int8 simulation, kernels rounded layer after layer, "
    sequential = [k for k in agreement if k.startswith(after)]
    assert [k.removeprefix(after) for k in sequential] == ["the first 2x finer", "all 11 2x finer"], out
    assert set(agreement) == {
        *simulated,
        *sequential,
        *first,
        *rounded,
        "int8, TFLite min/max ranges",
        "int8, quantile ranges, no bias correction",
        next(k for k in agreement if k.startswith("int16 activations")),
        *kept_float,
        *grid,
        "Keras with int8-rounded weights, 5 layers",
        "Keras with int8-rounded weights, 3 convolutions",
        "Keras with int8-rounded weights, 2 dense layers",
        "Keras with int8-rounded weights, 5 layers, biases corrected on 200 calibration images",
        "int8 as zoo export makes it: quantile ranges, weights rounded and bias-corrected",
    }
    assert len(kept_float) == 1, out
    assert all(float(v) >= 95 for v in agreement.values()), out  # LeNet-5 on MNIST: confident logits
    latency = r"^batch (1|64) latency: min/max ranges [\d.]+ ms, quantile ranges [\d.]+ ms$"
    assert re.findall(latency, out, re.M) == ["1", "64"]


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_int8_study_simulates_every_activation_finer_and_the_weights_alone():
    """--distilled-finer-all: the simulation with every activation finer, and the same weights on
    the int8 grid with float activations, which for the bias-corrected weights is --weights-only's
    bias-corrected model."""
    args = [
        "--entry",
        "lenet5.mnist",
        "--data",
        "mnist",
        "--images",
        "100",
        "--int16",
        "0",
        "--float-ops",
        "",
    ]
    args += ["--weights-only", "--simulation", "--distilled-finer", "2", "--distilled-finer-all"]
    env = {**os.environ, "ZOO_DATA_DIR": str(DATA_DIR)}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.int8_study", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict(
        re.findall(r"^(.+?): (top-1 agreement [\d.]+% of 100, logit error std [\d.]+)", proc.stdout, re.M)
    )
    finer = rows["the int8 simulation, every activation 2x finer"]
    assert float(re.search(r"agreement ([\d.]+)%", finer)[1]) >= 95, proc.stdout
    corrected = "Keras with int8-rounded weights, 5 layers, biases corrected on 200 calibration images"
    assert rows["those weights on the int8 grid, no activation rounded"] == rows[corrected], proc.stdout
    assert "bias-corrected weights:" in proc.stdout


def test_int8_study_refuses_a_file_that_is_not_an_int8_export_of_the_entry(tmp_path):
    from tools.int8_study import given_file
    from zoo.export import export

    path = tmp_path / "lenet5.tflite"
    export("lenet5.mnist", "tflite", path)  # float32

    def refuse(message: str) -> None:
        raise SystemExit(message)

    with pytest.raises(SystemExit, match="not an int8 zoo export of lenet5.mnist"):
        given_file(str(path), "lenet5.mnist", [], print, refuse)
    with pytest.raises(SystemExit, match="not an int8 zoo export of resnet20.cifar10"):
        given_file(str(path), "resnet20.cifar10", [], print, refuse)


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_train_images_compared_are_the_ones_distillation_draws_from(monkeypatch):
    import numpy as np

    import zoo
    from tools.int8_study import compared_images
    from zoo.export._write import _export_resize, _image_contract, _real_images
    from zoo.export.image import _calibration_inputs, _data_parts

    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    entry = zoo.weights_entry("lenet5.mnist")
    geometry = _export_resize(entry)
    train = compared_images(entry, "mnist", "train", 250)
    assert [len(b) for b in train] == [100, 100]  # whole batches of 100
    baked, shape = _image_contract(entry)
    parts = _data_parts(entry, "mnist", None)
    calibration, source = _calibration_inputs(entry, shape, baked, True, parts, None, required=True)
    assert source == "200 mnist train images"
    np.testing.assert_array_equal(np.concatenate(train), calibration)  # the first 200 calibrate
    pool = _real_images(entry, 300, "mnist", None, "train", geometry=False)  # what --qat-images 300 draws
    np.testing.assert_array_equal(np.concatenate(train), np.asarray(geometry(pool[:200])))
    test = compared_images(entry, "mnist", "test", 200)
    assert [b.shape for b in test] == [b.shape for b in train]
    assert not np.array_equal(test[0], train[0])


def test_equalized_channels_reach_six_and_leave_the_model_as_it_was():
    import keras
    import numpy as np

    from tools.int8_study import equalized

    keras.utils.set_random_seed(0)  # which channels reach 3 below depends on the stem's weights
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="stem")(image)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = keras.layers.ReLU(6.0, name="second")(x)  # no batch norm before it: left alone
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="after_second")(x)
    model = keras.Model(image, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    rng = np.random.default_rng(0)
    norm = model.get_layer("bn")
    norm.gamma.assign(np.array([0.05, 0.2, 1.0, 3.0, 0.001, 1.0], np.float32))  # channels far under 6
    norm.beta.assign(np.array([0.0, 0.1, 0.0, 2.0, 0.0, -50.0], np.float32))  # the last one never fires
    seen = rng.normal(size=(40, 8, 8, 3)).astype(np.float32)
    copy, count = equalized(model, seen, 1.0)
    assert count == 1
    np.testing.assert_allclose(
        copy.predict_on_batch(seen), model.predict_on_batch(seen), rtol=1e-4, atol=1e-5
    )
    before = keras.Model(model.input, model.get_layer("relu6").output).predict_on_batch(seen).max((0, 1, 2))
    after = keras.Model(copy.input, copy.get_layer("relu6").output).predict_on_batch(seen).max((0, 1, 2))
    scale = np.clip(6 / np.maximum(before, 1e-6), 1, 16)
    np.testing.assert_allclose(after, before * scale, rtol=1e-4, atol=1e-6)
    assert np.all((after > 5.99) | (scale == 16) | (before >= 6)), after
    assert after[-1] == 0 and (scale == 16).any()  # at most 16 times: a dead channel stays as it was
    np.testing.assert_array_equal(
        copy.get_layer("after_second").get_weights()[0], model.get_layer("after_second").get_weights()[0]
    )
    halved, _ = equalized(model, seen, 2.0)  # margin 2: each channel reaches 3 on these images
    top = keras.Model(halved.input, halved.get_layer("relu6").output).predict_on_batch(seen).max((0, 1, 2))
    np.testing.assert_allclose(
        top, before * np.clip(3 / np.maximum(before, 1e-6), 1, 16), rtol=1e-4, atol=1e-6
    )
    assert (np.abs(top - 3) < 1e-3).sum() == 2  # the others: over 3 already, capped at 16 times, or dead


def test_the_first_activation_in_pieces_is_the_same_function_rounded_finer_in_int8(tmp_path):
    """in_pieces keeps the float model's outputs, and its int8 file holds the stem's output in
    twice the steps: closer to Keras than the int8 file of the model as it is."""
    import keras
    import numpy as np

    from tools.int8_study import run_batches
    from zoo.errors import InputError
    from zoo.export import CLIP_QUANTILE, first_in_pieces, quantized_outputs, tflite_interpreter
    from zoo.export._write import _write_savedmodel
    from zoo.export.quantize import _int8_files

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(6.0, name="second")(x)
    model = keras.Model(image, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    norm = model.get_layer("bn")
    norm.gamma.assign(np.full(8, 20.0, np.float32))  # the stem's output fills [0, 6]
    seen = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype(np.float32)
    pieces = first_in_pieces(model, 2)
    assert pieces.get_layer("first_pieces").kernel.shape == (3, 3, 3, 16)
    assert pieces.get_layer("pieces_added").kernel.shape == (3, 3, 16, 8)
    assert quantized_outputs(pieces)[0].name == "relu6"
    want = np.asarray(model.predict_on_batch(seen))
    np.testing.assert_allclose(np.asarray(pieces.predict_on_batch(seen)), want, atol=2e-5)
    errors, held = [], []
    for i, m in enumerate((model, pieces)):
        _write_savedmodel(m, None, (16, 16, 3), tmp_path / f"m{i}")
        blob = _int8_files(tmp_path / f"m{i}", seen, [CLIP_QUANTILE])[0]
        errors.append(np.std(np.asarray(run_batches(blob, [seen])) - want))
        interpreter = tflite_interpreter(model_content=blob)
        held.append(
            sorted(
                (int(t["shape"][-1]), round(float(t["quantization"][0]) * 255, 3))
                for t in interpreter.get_tensor_details()
                if t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][1] == 8
            )
        )
    # the stem's output: 8 channels of [0, 6] in int8, then 16 (two pieces) of [0, 6], each piece
    # holding half the range magnified twice; every tensor still int8
    assert (8, 6.0) in held[0] and (16, 6.0) in held[1] and (16, 6.0) not in held[0]
    assert errors[1] < 2 * errors[0], errors
    plain = keras.Model(image, keras.layers.Dense(3)(keras.layers.Flatten()(image)), name="plain")
    with pytest.raises(InputError, match="plain does not start so: leave out --stem-pieces"):
        first_in_pieces(plain, 2)
    x = keras.layers.Conv2D(8, 3, use_bias=False)(image)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
    x = keras.layers.DepthwiseConv2D(3, dilation_rate=2, use_bias=False)(x)  # not one full convolution's taps
    with pytest.raises(InputError, match="dilated does not start so"):
        first_in_pieces(keras.Model(image, x, name="dilated"), 2)


def test_depthwise_activations_in_pieces_are_the_same_function_in_float():
    """depthwise_in_pieces keeps the float model's outputs; refusals say what to leave out."""
    import keras
    import numpy as np

    from zoo.errors import InputError
    from zoo.export import depthwise_in_pieces, int8_ranges
    from zoo.export.pieces import depthwise_levels

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = keras.layers.ReLU(6.0, name="relu6")(keras.layers.BatchNormalization(name="bn")(x))
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = keras.layers.ReLU(6.0, name="second")(keras.layers.BatchNormalization(name="bn2")(x))
    x = keras.layers.Conv2D(6, 1, name="project")(x)
    model = keras.Model(image, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    for name, gamma in (("bn", 4.0), ("bn2", 3.0)):  # activations spread over [0, 6]
        model.get_layer(name).gamma.assign(np.full(8, gamma, np.float32))
    seen = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(seen))
    assert depthwise_levels(model, 2) == {"second": 511} and depthwise_levels(model, 1) == {}
    same, given = depthwise_in_pieces(model, 2, {"second": (0.0, 6.0)})
    assert given == {"second": (0.0, 6.0)}
    assert same.get_layer("depthwise_pieces").kernel.shape == (3, 3, 16, 1)
    assert same.get_layer("project").kernel.shape == (1, 1, 16, 6)
    np.testing.assert_allclose(np.asarray(same.predict_on_batch(seen)), want, atol=2e-5)
    ranges = int8_ranges(model, seen)
    assert ranges["second"][1] < 6.0  # then the pieces hold [0, hi], clipped there as int8 clips
    clipped = np.asarray(depthwise_in_pieces(model, 2, ranges)[0].predict_on_batch(seen))
    assert 0 < np.abs(clipped - want).max() < 1e-2
    plain = keras.Model(image, keras.layers.Dense(3)(keras.layers.Flatten()(image)), name="plain")
    with pytest.raises(InputError, match="plain has none: leave out --depthwise-pieces"):
        depthwise_in_pieces(plain, 2, {})
    with pytest.raises(InputError, match="depthwise pieces must be a whole number from 1 to 8, got 9"):
        depthwise_in_pieces(model, 9, ranges)


def _held_in_file(pieces, given, seen, folder, channels: int):
    """The int8 file of ``pieces`` (``given`` its ranges): ``second``'s int8 tensor's scale and its
    values, dequantised, on the first 16 of ``seen``."""
    import numpy as np

    from zoo.export import CLIP_QUANTILE, tflite_interpreter
    from zoo.export._write import _write_savedmodel
    from zoo.export.quantize import _int8_files

    _write_savedmodel(pieces, None, (8, 8, 3), folder)
    blob = _int8_files(folder, seen, [CLIP_QUANTILE], given or None)[0]
    interpreter = tflite_interpreter(model_content=blob, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    (held,) = [
        t
        for t in interpreter.get_tensor_details()
        if "second" in t["name"] and t["dtype"] == np.int8 and t["shape"][1:3].tolist() == [8, 8]
    ]
    assert held["shape"][-1] == channels
    scale, zero = held["quantization"]
    got = []
    for i in range(16):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], seen[i : i + 1])
        interpreter.invoke()
        got.append((interpreter.get_tensor(held["index"]).astype(np.float32) - zero) * scale)
    return scale, np.concatenate(got)


def test_depthwise_activations_in_pieces_are_rounded_k_times_finer_in_int8(tmp_path):
    """The int8 file holds the pieces on [0, 6] each; added back, they follow Keras' activation
    k times more closely. Inputs and kernels lie on int8's grid, so nothing else is rounded first."""
    import keras
    import numpy as np

    from zoo.export import depthwise_in_pieces, int8_ranges

    rng = np.random.default_rng(0)
    image = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(image)
    second = keras.layers.ReLU(6.0, name="second")(keras.layers.BatchNormalization(name="bn")(x))
    model = keras.Model(image, keras.layers.Conv2D(4, 1, name="project")(second))
    taps = rng.integers(-127, 128, (3, 3, 3, 1)).astype(np.float32)
    taps[1, 1] = 127
    model.get_layer("depthwise").set_weights([taps * 6 / (127 * 255 * 2)])
    seen = rng.integers(0, 256, (64, 8, 8, 3)).astype(np.float32)
    seen[0, 0, 0], seen[0, 0, 1] = 0, 255
    want = np.asarray(keras.Model(image, second).predict_on_batch(seen[:16]))
    ranges = int8_ranges(model, seen)
    errors = []
    for k in (1, 2):
        pieces, given = depthwise_in_pieces(model, k, ranges)
        scale, values = _held_in_file(pieces, given, seen, tmp_path / f"m{k}", 3 * k)
        got = values.reshape(16, 8, 8, k, 3).sum(-2) * ranges["second"][1] / (6 * k)
        if k == 2:
            assert round(scale * 255, 3) == 6.0
        errors.append(np.std(got - np.minimum(want, ranges["second"][1])))
    assert 0.4 < errors[1] / errors[0] < 0.6, errors


def test_expansion_activations_in_pieces_are_the_same_function_in_float():
    """expansion_in_pieces keeps the float model's outputs, alone and under depthwise pieces; the
    first activation is left to --stem-pieces; refusals say what to leave out."""
    import keras
    import numpy as np

    from zoo.errors import InputError
    from zoo.export import depthwise_in_pieces, expansion_in_pieces, int8_ranges
    from zoo.export.pieces import expansion_levels

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = keras.layers.ReLU(6.0, name="relu6")(keras.layers.BatchNormalization(name="bn")(x))
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = keras.layers.Conv2D(12, 1, use_bias=False, name="expand")(x)
    x = keras.layers.ReLU(6.0, name="expanded")(keras.layers.BatchNormalization(name="bn2")(x))
    x = keras.layers.DepthwiseConv2D(5, strides=2, padding="same", use_bias=False, name="depthwise2")(x)
    x = keras.layers.ReLU(6.0, name="second")(keras.layers.BatchNormalization(name="bn3")(x))
    x = keras.layers.Conv2D(6, 1, name="project")(x)
    model = keras.Model(image, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    for name, gamma, n in (("bn", 4.0, 8), ("bn2", 1.5, 12), ("bn3", 3.0, 12)):  # spread over [0, 6]
        model.get_layer(name).gamma.assign(np.full(n, gamma, np.float32))
    seen = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(seen))
    assert expansion_levels(model, 2) == {"expanded": 511} and expansion_levels(model, 1) == {}
    six = {name: (0.0, 6.0) for name in ("expanded", "second")}
    same, given = expansion_in_pieces(model, 2, six)
    assert given == {"expanded": (0.0, 6.0)}
    assert same.get_layer("expand_pieces").kernel.shape == (1, 1, 8, 24)
    grouped = same.get_layer("depthwise2")
    assert grouped.groups == 12 and grouped.kernel.shape == (5, 5, 2, 12)
    np.testing.assert_allclose(np.asarray(same.predict_on_batch(seen)), want, atol=2e-5)
    both, more = depthwise_in_pieces(same, 3, six)
    assert more == {"second": (0.0, 6.0)}
    assert both.get_layer("depthwise2_pieces").kernel.shape == (5, 5, 2, 36)
    np.testing.assert_allclose(np.asarray(both.predict_on_batch(seen)), want, atol=2e-5)
    ranges = int8_ranges(model, seen)
    assert ranges["expanded"][1] < 6.0  # then the pieces hold [0, hi], clipped there as int8 clips
    clipped = np.asarray(expansion_in_pieces(model, 2, ranges)[0].predict_on_batch(seen))
    assert 0 < np.abs(clipped - want).max() < 1e-2
    stem_only = keras.Model(image, model.get_layer("depthwise").output, name="stem_only")
    with pytest.raises(InputError, match="stem_only has none past its first activation: leave out"):
        expansion_in_pieces(stem_only, 2, {})
    with pytest.raises(InputError, match="expansion pieces must be a whole number from 1 to 8, got 0"):
        expansion_levels(model, 0)


def test_expansion_activations_in_pieces_are_rounded_k_times_finer_in_int8(tmp_path):
    """The int8 file holds the expansion's pieces on [0, 6] each and runs the grouped convolution
    reading them; added back, they follow Keras' activation k times more closely."""
    import keras
    import numpy as np

    from zoo.export import expansion_in_pieces, int8_ranges

    rng = np.random.default_rng(0)
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="stem")(image)
    x = keras.layers.ReLU(6.0, name="first")(x)  # exact on int8's grid, given [0, 6]
    x = keras.layers.Conv2D(4, 1, use_bias=False, name="expand")(x)
    second = keras.layers.ReLU(6.0, name="second")(keras.layers.BatchNormalization(name="bn")(x))
    out = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="reader")(second)
    model = keras.Model(image, out)
    model.get_layer("stem").set_weights([np.eye(3, dtype=np.float32)[None, None] * 6 / 255])
    taps = rng.integers(-127, 128, (1, 1, 3, 4)).astype(np.float32)
    taps[0, 0, 0] = 127
    model.get_layer("expand").set_weights([taps * 3 / (18 * 127)])  # the activation within [0, 3]
    seen = rng.integers(0, 256, (64, 8, 8, 3)).astype(np.float32)
    seen[0, 0, 0], seen[0, 0, 1] = 0, 255
    want = np.asarray(keras.Model(image, second).predict_on_batch(seen[:16]))
    ranges = int8_ranges(model, seen)
    errors = []
    for k in (1, 2):
        pieces, given = expansion_in_pieces(model, k, ranges)
        given = {**given, "first": (0.0, 6.0)}
        scale, values = _held_in_file(pieces, given, seen, tmp_path / f"m{k}", 4 * k)
        added = values.reshape(16, 8, 8, 4, k).sum(-1) * ranges["second"][1] / (6 * k)
        if k == 2:
            assert round(scale * 255, 3) == 6.0
        errors.append(np.std((added if k > 1 else values) - np.minimum(want, ranges["second"][1])))
    assert 0.4 < errors[1] / errors[0] < 0.6, errors


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--first-ranges", "4,x", "expected comma-separated numbers"),
        ("--first-ranges", "4,-1", "each value must be above 0"),
        ("--float-first", "1.5", "expected comma-separated whole numbers"),
        ("--equalize", "0", "each value must be above 0"),
        ("--quantiles", "1e-4,0.7", "each value must be between 0 and 0.5"),
        ("--finer-first", "1", "each value must be above 1"),
        ("--first-pieces", "2.5", "expected comma-separated whole numbers"),
    ],
)
def test_int8_study_refuses_bad_lists_before_it_loads_anything(option, value, says):
    proc = subprocess.run(
        [sys.executable, "-m", "tools.int8_study", option, value],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and f"argument {option}: '{value}': {says}" in proc.stderr, proc.stderr


def test_int8_study_number_lists_parse_to_numbers():
    from tools.int8_study import numbers

    assert numbers(float, 0)("4, 3,2") == [4.0, 3.0, 2.0]
    assert numbers(int, 0)("") == [] and numbers(int, 0)("1,2") == [1, 2]


def test_int8_study_streams_studies_the_equalised_model():
    """--streams: every study runs on the model as zoo export --equalize makes it, the same function."""
    import numpy as np

    from tests.helpers import numpy
    from tests.test_equalize import _images, _residual_model
    from tools.int8_study import studied

    model, seen = _residual_model(), _images()
    assert studied(model, seen, False) is model
    copy = studied(model, seen, True)
    assert copy is not model
    assert not np.allclose(numpy(copy.get_layer("bn_a").gamma), numpy(model.get_layer("bn_a").gamma))
    np.testing.assert_allclose(numpy(copy(seen)), numpy(model(seen)), atol=1e-4)
