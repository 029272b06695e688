"""Registry names, the load path (build, resolve, verify, load, adapt) and its errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import zoo
from tests._records import lenet_record, write_manifest_file
from zoo.errors import (
    InputError,
    NoPretrainedWeightsError,
    UnknownModelError,
    WeightsFormatError,
    WeightsNotFoundError,
    WeightsVerificationError,
)


@pytest.fixture(scope="module")
def trained_lenet_file(tmp_path_factory):
    """A LeNet-5 weights file with non-default values, so loading is observable."""
    import keras

    keras.utils.set_random_seed(1)
    model = zoo.build("lenet5")
    path = tmp_path_factory.mktemp("weights") / "lenet5.test.weights.h5"
    model.save_weights(path)
    return path


@pytest.fixture()
def packaged(tmp_path, monkeypatch, trained_lenet_file):
    """A private package dir and manifest holding ``lenet5.test`` as packaged weights."""
    pkg = tmp_path / "pkg"
    folder = pkg / "pretrained" / "lenet5.test"
    folder.mkdir(parents=True)
    shutil.copy(trained_lenet_file, folder / trained_lenet_file.name)
    manifest = write_manifest_file(
        tmp_path / "manifest.json", {"lenet5.test": lenet_record(trained_lenet_file)}
    )
    monkeypatch.setattr("zoo.weights.resolve.PACKAGE_DIR", pkg)
    monkeypatch.setenv("ZOO_MANIFEST", str(manifest))
    return folder / trained_lenet_file.name


@pytest.mark.parametrize("name", ["lenet5", "LeNet-5", "lenet_5", " LENET 5 ", "lenet", "lenet5.mnist"])
def test_forgiving_names(name):
    assert zoo.info(name).architecture == "lenet5"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError) as err:
        zoo.info("lenett5")
    assert "lenet5" in err.value.suggestions
    assert "zoo list" in str(err.value)


def test_list_models_wildcards_and_tasks():
    assert "lenet5" in zoo.list_models("LENET*")
    assert "lenet5" in zoo.list_models(task="image-classification")
    assert zoo.list_models("nothing-like-this*") == []
    with pytest.raises(UnknownModelError, match="unknown task"):
        zoo.list_models(task="juggling")
    with pytest.raises(InputError, match="pattern must be a wildcard string"):  # was AttributeError
        zoo.list_models(3)


def test_info_is_read_only(packaged):
    info = zoo.info("lenet5")
    assert info.default_weights == "lenet5.test"
    with pytest.raises(AttributeError):
        info.task = "x"


def test_load_verifies_and_loads_packaged_weights(packaged, trained_lenet_file):
    model = zoo.load("lenet5")
    reference = zoo.build("lenet5")
    reference.load_weights(trained_lenet_file)
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), reference.predict(x, verbose=0))
    assert zoo.list_weights("LeNet-5") == ["lenet5.test"]
    assert zoo.load("lenet5.test") is not None
    assert zoo.load("lenet5", weights="test") is not None


def test_corrupted_packaged_file_is_refused_and_kept(packaged):
    data = bytearray(packaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    packaged.write_bytes(bytes(data))
    with pytest.raises(WeightsVerificationError, match="corrupted.*sha256"):
        zoo.load("lenet5")
    assert packaged.exists(), "a packaged file is the user's install: report, never delete"


def test_truncated_packaged_file_is_refused(packaged):
    packaged.write_bytes(packaged.read_bytes()[:100])
    with pytest.raises(WeightsVerificationError, match="size"):
        zoo.pull("lenet5")


def test_missing_packaged_file(packaged):
    packaged.unlink()
    with pytest.raises(WeightsNotFoundError):
        zoo.pull("lenet5")


def test_unknown_tag_and_no_weights(packaged, tmp_path, monkeypatch):
    with pytest.raises(UnknownModelError, match="no weights tagged 'tset'.*'test'"):
        zoo.load("lenet5", weights="tset")
    monkeypatch.setenv("ZOO_MANIFEST", str(write_manifest_file(tmp_path / "empty.json", {})))
    with pytest.raises(NoPretrainedWeightsError, match="weights=None"):
        zoo.load("lenet5")


def test_head_swap_keeps_backbone(packaged):
    base = zoo.load("lenet5")
    model = zoo.load("lenet5", num_classes=3)
    assert model.get_layer("head").units == 3
    for name in ("c1", "c3", "c5", "f6"):
        for a, b in zip(model.get_layer(name).get_weights(), base.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_features_without_top(packaged):
    model = zoo.load("lenet5", include_top=False, pooling="avg")
    assert model.output_shape == (None, 120)


def test_rgb_adaptation_matches_greyscale(packaged):
    grey = zoo.load("lenet5")
    rgb = zoo.load("lenet5", input_shape=(32, 32, 3))
    x = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(
        rgb.predict(np.repeat(x, 3, axis=-1), verbose=0), grey.predict(x, verbose=0), atol=1e-5
    )


def test_random_init_and_local_file(trained_lenet_file, tmp_path):
    assert zoo.load("lenet5", weights=None).count_params() == 61706
    model = zoo.load("lenet5", weights=trained_lenet_file)
    assert model.count_params() == 61706
    pickle = tmp_path / "evil.pth"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(WeightsFormatError, match="pickle"):
        zoo.load("lenet5", weights=pickle)
    wrong = tmp_path / "wrong.weights.h5"
    zoo.build("lenet5", num_classes=4).save_weights(wrong)
    with pytest.raises(WeightsFormatError, match="does not fit"):
        zoo.load("lenet5", weights=wrong)


def test_bad_builder_argument():
    with pytest.raises(InputError, match="does not take 'depth'"):
        zoo.build("lenet5", depth=3)


def test_an_input_shape_without_channels_is_refused_saying_what_it_is():
    """(32, 32) reached Keras, whose refusal spoke of ndim and layer 'c1'."""
    with pytest.raises(InputError, match=r"lenet5's input_shape is \(height, width, channels\)"):
        zoo.build("lenet5", input_shape=(32, 32))


def test_an_input_too_small_for_the_network_is_refused_with_keras_reason():
    with pytest.raises(InputError) as refused:
        zoo.build("lenet5", input_shape=(5, 5, 1))
    message = str(refused.value)
    assert message.startswith("cannot build lenet5 with {") and "\n" not in message
    assert "}: AveragePooling2D: Computed output size would be zero or negative." in message
    assert "\x1b" not in message  # Keras' bold, for its own traceback, stays out


PLAIN_INPUTS = r"""
import numpy as np
ids = np.array([[2, 5, 7, 3, 0, 0]], "int32")
INPUTS = {
    "resnet20": np.full((1, 32, 32, 3), 0.5, "float32"),
    "vae": np.full((1, 28, 28, 1), 0.5, "float32"),
    "bert_tiny": {
        "input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": (ids > 0).astype("int32")
    },
}
"""

SAVE_SCRIPT = (
    PLAIN_INPUTS
    + r"""
import sys, numpy as np, zoo, keras
out = sys.argv[1]
for name in ("resnet20", "vae", "bert_tiny"):
    model = zoo.build(name)
    model.save(f"{out}/{name}.keras")
    np.save(f"{out}/{name}.npy", keras.ops.convert_to_numpy(keras.tree.flatten(model(INPUTS[name]))[0]))
"""
)

LOAD_SCRIPT = (
    PLAIN_INPUTS
    + r"""
import sys, numpy as np
first, out = sys.argv[1], sys.argv[2]
if first == "keras":
    import keras, zoo
else:
    import zoo, keras
for name in ("resnet20", "vae", "bert_tiny"):
    model = keras.saving.load_model(f"{out}/{name}.keras", safe_mode=True)
    got = keras.ops.convert_to_numpy(keras.tree.flatten(model(INPUTS[name]))[0])
    np.testing.assert_allclose(got, np.load(f"{out}/{name}.npy"), atol=1e-5)
print("ok")
"""
)


@pytest.mark.slow
def test_plain_keras_loads_zoo_models_after_import_zoo(tmp_path):
    """`import zoo` (before or after keras) is all keras.saving.load_model needs, in safe mode."""
    import subprocess
    import sys

    saved = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert saved.returncode == 0, saved.stderr[-2000:]
    # Both import orders, each in its own fresh process, side by side.
    loads = {
        first: subprocess.Popen(
            [sys.executable, "-c", LOAD_SCRIPT, first, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in ("zoo", "keras")
    }
    for first, process in loads.items():
        out, err = process.communicate()
        assert process.returncode == 0 and "ok" in out, (first, err[-2000:])


@pytest.mark.parametrize("name", [123, None, 1.5])
def test_a_name_that_is_not_a_string_is_a_clear_type_error(name):
    for call in (zoo.load, zoo.weights_entry, zoo.info):
        with pytest.raises(TypeError, match=r"named by a string \('lenet5'\) or a folder path, got"):
            call(name)
