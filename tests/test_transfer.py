"""Transfer learning: feature extractors, cached features, two-phase fine-tuning, `zoo finetune`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zoo
from tests.helpers import DATA_DIR, numpy  # noqa: E402
from zoo.errors import InputError, WeightsFormatError
from zoo.train.engine import backbone_blocks, extract_features, feature_extractor, fine_tune, split_backbone


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 scans) as a user image folder."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    root = tmp_path_factory.mktemp("digits")
    digits = sklearn_datasets.load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        (root / str(label)).mkdir(exist_ok=True)
        Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    return root


def _random_data(n=64, shape=(32, 32, 3), classes=3, batch=16, seed=0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_feature_extractor_layers_stages_and_nested_models():
    model = zoo.build("resnet20")
    extractor = feature_extractor(model, ["layer1", "layer3", "pre_logits"])
    assert [tuple(o.shape) for o in extractor.outputs] == [(None, 32, 32, 16), (None, 8, 8, 64), (None, 64)]
    dcgan = zoo.build("dcgan")
    disc = dcgan.discriminator
    nested = feature_extractor(dcgan, [disc.layers[-2].name])
    assert nested.output.shape[-1] == disc.layers[-2].output.shape[-1]
    vae = zoo.build("vae")
    assert feature_extractor(vae).output.shape[-1] == vae.latent_dim
    with pytest.raises(InputError, match="no layer or stage"):
        feature_extractor(model, "layer9")
    with pytest.raises(InputError, match=r"no layer or stage 'zzz'; its layers: image, .*\(\d+ in all\)"):
        feature_extractor(model, "zzz")  # nothing close: the layers are listed (ResNet-20 has many)
    lenet = zoo.build("lenet5")
    with pytest.raises(
        InputError, match=r"its layers: image, c1, s2, c3, s4, c5, flatten, f6, pre_logits, head$"
    ):
        feature_extractor(lenet, "zzz")


def test_feature_extractor_reaches_into_a_nested_submodel():
    import keras

    inner = zoo.build("lenet5")
    inputs = keras.Input((32, 32, 1))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="new_head")(inner(inputs)), name="outer")
    extractor = feature_extractor(outer, ["lenet5/c5", "lenet5/pre_logits", "new_head"])
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    c5, pre, out = extractor(x)
    np.testing.assert_allclose(
        numpy(pre), numpy(keras.Model(inner.inputs, inner.get_layer("pre_logits").output)(x)), atol=1e-6
    )
    assert c5.shape == (2, 1, 1, 120) and out.shape == (2, 2)


class SpyExtractor:
    """Counts the batches run through the extractor's compiled forward function."""

    calls = 0

    @classmethod
    def wrap(cls, make):
        def counted_make(model, **kwargs):
            fn = make(model, **kwargs)

            def run(x):
                cls.calls += 1
                return fn(x)

            return run

        return counted_make


def test_extract_features_is_cached_by_weights_and_data(tmp_path, monkeypatch):
    import zoo.train.engine as transfer

    monkeypatch.setattr(transfer, "predict_fn", SpyExtractor.wrap(transfer.predict_fn))
    model = zoo.build("lenet5")
    data = _random_data(shape=(32, 32, 1), classes=10)
    SpyExtractor.calls = 0
    f1, y1 = extract_features(model, data, cache_dir=tmp_path)
    first = SpyExtractor.calls
    f2, y2 = extract_features(model, data, cache_dir=tmp_path)
    assert first > 0 and SpyExtractor.calls == first, "a cache hit must not run the backbone"
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(y1, y2)
    assert f1.shape == (64, 84)
    extract_features(model, _random_data(shape=(32, 32, 1), classes=10, seed=1), cache_dir=tmp_path)
    assert SpyExtractor.calls > first, "other data must miss the cache"
    calls = SpyExtractor.calls
    model.get_layer("c1").kernel.assign(model.get_layer("c1").kernel * 0.5)
    extract_features(model, data, cache_dir=tmp_path)
    assert SpyExtractor.calls > calls, "other weights must miss the cache"
    for cached in tmp_path.glob("*.npz"):  # a damaged entry is recomputed, not trusted
        cached.write_bytes(b"garbage")
    f3, _ = extract_features(model, data, cache_dir=tmp_path)
    assert f3.shape == (64, 84)


def test_extract_features_streams_datasets_and_refuses_shuffled_ones(tmp_path):
    """A tf.data input is read twice (hash, then model), a one-shot iterator once; shuffling is refused."""
    model = zoo.build("lenet5")
    data = _random_data(shape=(32, 32, 1), classes=10)
    streamed, labels = extract_features(model, data, use_cache=False)
    once, once_labels = extract_features(model, iter(list(data)), use_cache=False)
    np.testing.assert_allclose(streamed, once, atol=1e-6)
    np.testing.assert_array_equal(labels, once_labels)
    shuffled = data.unbatch().shuffle(64, seed=0, reshuffle_each_iteration=True).batch(16)
    with pytest.raises(InputError, match="second pass"):
        extract_features(model, shuffled, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.npz")), "nothing is cached from inconsistent data"


def test_backbone_blocks_group_residual_blocks_and_batch_norm():
    backbone, head = split_backbone(zoo.build("resnet20"))
    blocks = backbone_blocks(backbone)
    assert [layer.name for layer in blocks[0]] == ["conv1", "bn1"]
    assert [layer.name for layer in blocks[-1]] == [
        "layer3_2_conv1",
        "layer3_2_bn1",
        "layer3_2_conv2",
        "layer3_2_bn2",
    ]
    assert head.name == "head"


def test_phase_one_keeps_batch_norm_statistics_frozen():
    model = zoo.build("resnet20", num_classes=3)
    bn_before = {la.name: [np.array(w) for w in la.weights] for la in model.layers if "bn" in la.name}
    head_before = np.array(model.get_layer("head").kernel)
    data = _random_data()
    result = fine_tune(model, data, data, strategy="head", epochs=2, verbose=0)
    for name, weights in bn_before.items():
        for before, after in zip(weights, model.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(before, np.array(after), err_msg=name)
    assert not np.array_equal(head_before, np.array(model.get_layer("head").kernel))
    assert result.history["phase"] == ["head", "head"]


def test_probe_trains_the_head_on_features_computed_once(tmp_path, monkeypatch):
    """The linear probe: backbone untouched, head fitted on features, one checkpointed phase."""
    from zoo.train import engine

    model = zoo.build("resnet20", num_classes=3)
    backbone_before = [np.array(w) for w in split_backbone(model)[0].weights]
    head_before = np.array(model.get_layer("head").kernel)
    calls = []
    original = engine._features_of
    monkeypatch.setattr(engine, "_features_of", lambda *a: calls.append(1) or original(*a))
    data, val = _random_data(), _random_data(seed=1)
    result = fine_tune(model, data, val, strategy="probe", checkpoint_dir=tmp_path, verbose=0)
    assert calls == [1, 1]  # one pass over the training data, one over the validation data
    for before, after in zip(backbone_before, split_backbone(model)[0].weights, strict=True):
        np.testing.assert_array_equal(before, np.array(after))
    assert not np.array_equal(head_before, np.array(model.get_layer("head").kernel))
    assert result.history["phase"] == ["probe"] and "val_accuracy" in result.history
    assert (tmp_path / "probe" / "done.weights.h5").is_file()
    # a rerun (a resumed fine-tune) reuses the finished probe: no features, the same head
    again = zoo.build("resnet20", num_classes=3)
    fine_tune(again, data, val, strategy="probe", checkpoint_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(model.get_layer("head").kernel, again.get_layer("head").kernel)
    assert calls == [1, 1], "a finished probe computes no features again"


def test_two_phase_starts_fine_tuning_from_the_probed_head():
    """LP-FT: on separable features, the probe alone already fits the training data."""
    model = zoo.build("lenet5", num_classes=3)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = np.zeros((96, 32, 32, 1), np.float32)
    for label in range(3):  # one bright quadrant per class
        x[y == label, label * 10 : label * 10 + 10, :10] = 1.0
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    result = fine_tune(model, data, data, strategy="two_phase", epochs=1, verbose=0)
    assert result.history["phase"] == ["probe", "fine-tune"]
    assert result.history["val_accuracy"][0] == 1.0  # after the probe, before any fine-tuning


def test_two_phase_unfreezes_only_the_top_blocks():
    model = zoo.build("resnet20", num_classes=3)
    data = _random_data()
    low = np.array(model.get_layer("layer1_0_conv1").kernel)
    top = np.array(model.get_layer("layer3_2_conv2").kernel)
    result = fine_tune(model, data, data, epochs=(1, 1), unfreeze=1, verbose=0, patience=None)
    np.testing.assert_array_equal(low, np.array(model.get_layer("layer1_0_conv1").kernel))
    assert not np.array_equal(top, np.array(model.get_layer("layer3_2_conv2").kernel))
    assert result.history["phase"] == ["probe", "head", "fine-tune"]


def test_load_keras_refuses_lambda_layers(tmp_path):
    import keras

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(WeightsFormatError, match="could not be loaded safely"):
        zoo.load_keras(path)


def _finetune_cmd(data, out, *extra):
    return [
        sys.executable,
        "-m",
        "zoo",
        "finetune",
        "lenet5",
        "--data",
        str(data),
        "--out",
        str(out),
        "--max-train",
        "200",
        "--batch-size",
        "32",
        "--lr",
        "3e-3",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_pretrained_backbone_beats_training_from_scratch(digits_folder, tmp_path):
    """LeNet-5's MNIST weights, fine-tuned on 200 real scikit-learn digits, beat random init."""
    from zoo.train.finetune import finetune

    common = {
        "epochs": 6,
        "strategy": "full",
        "batch_size": 32,
        "learning_rate": 3e-3,
        "max_train": 200,
        "verbose": 0,
    }
    scores = {"pretrained": [], "scratch": []}
    for seed in (0, 1):
        for kind, weights in (("pretrained", "default"), ("scratch", None)):
            summary = finetune(
                "lenet5", str(digits_folder), tmp_path / f"{kind}{seed}", seed=seed, weights=weights, **common
            )
            scores[kind].append(summary["metrics"]["top1_accuracy"])
    print("fine-tuned vs scratch validation accuracy:", scores)
    # 180 held-out images: one image is 0.56 points, so compare the means over the seeds
    assert np.mean(scores["pretrained"]) > np.mean(scores["scratch"])


@pytest.mark.slow
def test_finetune_killed_mid_epoch_resumes_and_writes_a_valid_folder(digits_folder, tmp_path):
    out = tmp_path / "run"
    cmd = _finetune_cmd(digits_folder, out, "--epochs", "6", "--save-every-steps", "2", "--strategy", "full")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    backup = out / "checkpoints" / "full" / "backup"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if backup.is_dir() and any(backup.rglob("*.json")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be interrupted: " + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.keras").exists()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "full fine-tune: resuming from epoch" in resumed.stderr, resumed.stderr[-2000:]
    assert "ran out of data" not in resumed.stderr  # one fit call per epoch is by design, not a warning
    assert json.loads((out / "card.json").read_text())["metrics"][0]["value"] > 50
    model = zoo.load_keras(out / "model.keras")
    assert model.output_shape == (None, 10)
    card = json.loads((out / "card.json").read_text())
    from zoo.weights.manifest import WeightsEntry
    from zoo.weights.resolve import check_file

    entry = WeightsEntry.from_dict("lenet5.finetuned", card)
    assert check_file(out / "model.keras", entry.files[0]) is None
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.glob(".*")] == [".zoo-output.json"], "no temporary files are left behind"
    marker = json.loads((out / ".zoo-output.json").read_text())
    assert not (out / "cache").exists() and "cache" not in marker.get("dirs", []), "image cache removed"


MIRRORED_SCRIPT = r"""
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, zoo
from zoo.train.distribute import distribution_scope
from zoo.train.engine import fine_tune
rng = np.random.default_rng(0)
x = rng.random((256, 32, 32, 1), dtype=np.float32)
y = (x[:, :16].mean(axis=(1, 2, 3)) > x[:, 16:].mean(axis=(1, 2, 3))).astype("int64")
train = tf.data.Dataset.from_tensor_slices((x[:192], y[:192])).batch(32)
val = tf.data.Dataset.from_tensor_slices((x[192:], y[192:])).batch(32)
keras.utils.set_random_seed(0)
with distribution_scope(sys.argv[1]) as replicas:
    model = zoo.load("lenet5", num_classes=2)
    result = fine_tune(model, train, val, strategy="full", epochs=4, patience=None, verbose=0)
print(json.dumps({"replicas": replicas, "val_loss": result.history["val_loss"],
                  "val_accuracy": result.history["val_accuracy"]}))
"""


@pytest.mark.slow
@pytest.mark.tensorflow_only("tf.distribute.MirroredStrategy is TensorFlow's")
def test_mirrored_strategy_matches_a_single_device():
    runs = {}
    for mode in ("none", "mirrored"):
        proc = subprocess.run(
            [sys.executable, "-c", MIRRORED_SCRIPT, mode], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs["none"]["replicas"] == 1 and runs["mirrored"]["replicas"] == 2
    print(runs)
    np.testing.assert_allclose(runs["mirrored"]["val_loss"], runs["none"]["val_loss"], rtol=0.05, atol=0.02)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "text" / "rt-polarity").is_dir(), reason=f"MR not found under {DATA_DIR}")
def test_finetune_lstm_text_classifier_writes_a_folder_with_its_vocabulary(tmp_path):
    """``zoo finetune`` takes a word-level LSTM classifier to a text dataset with its own vocabulary."""
    from zoo.train.finetune import finetune
    from zoo.weights.manifest import WeightsEntry
    from zoo.weights.resolve import check_file

    out = tmp_path / "lstm"
    summary = finetune(
        "lstm_classifier.mr",
        "mr",
        out,
        epochs=2,
        strategy="two_phase",
        unfreeze="all",
        max_train=1000,
        max_val=300,
        data_dir=str(DATA_DIR),
        verbose=0,
    )
    assert summary["metrics"]["num_examples"] == 300
    assert summary["metrics"]["top1_accuracy"] > 70  # starts from the packaged MR classifier
    card = json.loads((out / "card.json").read_text())
    entry = WeightsEntry.from_dict("lstm_classifier.finetuned", card)
    assert entry.preprocessing["vocab"] == "vocab.txt" and entry.input_shape is None
    for record in entry.files:
        assert check_file(out / record.filename, record) is None
    model = zoo.load_keras(out / "model.keras")
    assert model.get_layer("max_pool").__class__.__name__ == "MaskedGlobalMaxPooling1D"
    # the folder is a text classifier everywhere a name goes: the same prediction by folder and by model
    from click.testing import CliRunner

    from zoo.cli import cli

    texts = ["a moving, beautifully acted film", "a dull and lifeless mess"]
    shown = CliRunner().invoke(cli, ["predict", str(out), *texts, "--json", "-k", "1"])
    assert shown.exit_code == 0, shown.output
    by_folder = [row["top"][0]["label"] for row in json.loads(shown.stdout)]
    from zoo.tasks.text_classify import predict_texts

    folder_entry = zoo.weights_entry(str(out))
    assert by_folder == [p.labels[0] for p in predict_texts(model, folder_entry, texts, top_k=1)]


def test_one_epoch_policy_for_every_fine_tune():
    from zoo.errors import InputError
    from zoo.train.engine import split_epochs

    assert split_epochs("two_phase", 10) == (0, 10)  # after its probe, which counts no epochs
    assert split_epochs("two_phase", 1) == (0, 1)
    assert split_epochs("probe", 10) == (0, 0)
    assert split_epochs("head", 4) == (4, 0) and split_epochs("full", 4) == (0, 4)
    assert split_epochs("two_phase", (3, 5)) == (3, 5)
    for bad in (0, (0, 0), (-1, 2)):
        with pytest.raises(InputError):
            split_epochs("two_phase", bad)
    with pytest.raises(InputError, match="strategy"):
        split_epochs("sideways", 3)


def test_validation_split_picks_no_weights_by_default():
    """Fixed epochs: the weights after training are the last epoch's, whatever val_loss did."""
    import keras
    import numpy as np
    import tensorflow as tf

    from zoo.train.engine import fine_tune

    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 1), dtype=np.float32)
    y = rng.integers(0, 2, 64)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[:16], 1 - y[:16])).batch(16)  # gets worse as train improves
    keras.utils.set_random_seed(0)
    model = zoo.load("lenet5", weights=None, num_classes=2)
    result = fine_tune(model, train, val, strategy="full", epochs=4, learning_rate=3e-3, verbose=0)
    assert len(result.history["val_loss"]) == 4
    after = result.model.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert after == pytest.approx(result.history["val_loss"][-1], rel=1e-4), "last epoch's weights are kept"


def test_held_back_share_is_a_fixed_draw_apart_from_the_rest():
    import tensorflow as tf

    from zoo.train.finetune import EpochBatches

    ds = tf.data.Dataset.from_tensor_slices((np.arange(50), np.arange(50) % 5))
    train = EpochBatches(ds, 50, 8, seed=3, buffer=50)
    rest, held = train.carve(0.2)
    held_ids = [int(i) for x, _ in held for i in x]
    rest_ids = [int(i) for x, _ in rest(0) for i in x]
    assert len(held_ids) == 10 and rest.count == 40 and len(rest_ids) == 40
    assert sorted(held_ids + rest_ids) == list(range(50))
    assert held_ids != list(range(10)), "a random draw, not the first examples"
    again_rest, again_held = train.carve(0.2)
    assert [int(i) for x, _ in again_held for i in x] == held_ids
    assert sorted(int(i) for x, _ in rest(1) for i in x) == sorted(rest_ids), "epochs reorder the same rest"


def test_phase2_choice_ranks_by_accuracy_then_loss_and_resumes_from_its_record(tmp_path, monkeypatch):
    """Scores already recorded are not measured again: an interrupted choice resumes."""
    import tensorflow as tf

    import zoo.train.finetune as ft

    monkeypatch.setattr(ft, "PHASE2_CANDIDATES", ((2, 0.02), ("all", 0.04), (2, 0.08)))
    record = tmp_path / "selection.json"
    scores = {
        "2@0.02": {"accuracy": 90.0, "loss": 0.30},
        "all@0.04": {"accuracy": 92.5, "loss": 0.25},
        "2@0.08": {"accuracy": 92.5, "loss": 0.20},
    }
    record.write_text(json.dumps(scores))
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((40, 4)), np.zeros(40)))
    train = ft.EpochBatches(ds, 40, 8, seed=0, buffer=40)

    def no_training():
        raise AssertionError("a recorded candidate was trained again")

    settings = {"fine_tune_learning_rate": None, "distribute": "none", "seed": 0, "epochs": 1}
    unfreeze, rate, selection = ft.choose_phase2(no_training, train, settings, record=record, verbose=0)
    assert (unfreeze, rate) == (2, 0.08)  # tied on accuracy, lower loss
    assert selection["scores"] == scores and "8 held-back" in selection["chosen_by"]
    # a fixed rate leaves only the blocks to choose; one candidate is taken untried
    settings["fine_tune_learning_rate"] = 0.01
    monkeypatch.setattr(ft, "PHASE2_CANDIDATES", ((2, 0.02), (2, 0.08)))
    assert ft.choose_phase2(no_training, train, settings, record=record, verbose=0)[:2] == (2, 0.01)
    settings.update(fine_tune_learning_rate=None, distribute="data-parallel")
    assert ft.choose_phase2(no_training, train, settings, record=record, verbose=0)[2] == {
        "chosen_by": "default (a distributed run)"
    }
    # --max-train 1: no held-back examples to choose on ('the evaluation dataset is empty')
    settings["distribute"] = "none"
    few = ft.EpochBatches(ds.take(ft.SELECT_MIN_TRAIN - 1), ft.SELECT_MIN_TRAIN - 1, 8, seed=0, buffer=40)
    assert ft.choose_phase2(no_training, few, settings, record=tmp_path / "none.json", verbose=0) == (
        2,
        0.02,
        {"chosen_by": f"default (under {ft.SELECT_MIN_TRAIN} training examples)"},
    )


def test_finetune_help_states_the_held_back_share():
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.train.finetune import SELECT_FRACTION

    result = CliRunner().invoke(cli, ["finetune", "--help"], terminal_width=400)
    assert f"{SELECT_FRACTION:.0%} of the training set held back" in " ".join(result.output.split())


def test_held_back_scores_weigh_each_batch_by_its_size():
    """Accuracy and loss over uneven batches are per example, through classification_metrics."""
    import keras

    from zoo.train.finetune import _held_back_scores

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, use_bias=False)])
    model.layers[0].set_weights([np.eye(2, dtype="float32")])  # logits = inputs
    x = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]], np.float32)
    y = np.array([0, 0, 0])
    scores = _held_back_scores(model, [(x[:2], y[:2]), (x[2:], y[2:])])
    right, wrong = -np.log(1 / (1 + np.exp(-2.0))), -np.log(np.exp(-2.0) / (1 + np.exp(-2.0)))
    assert scores["accuracy"] == pytest.approx(200 / 3, abs=1e-3)
    assert scores["loss"] == pytest.approx((2 * right + wrong) / 3, rel=1e-4)


@pytest.mark.slow
def test_finetune_chooses_phase2_on_held_back_training_images(digits_folder, tmp_path):
    """The default tries each candidate on 80% of the training set, scores it on the other 20%, and
    records the choice and every score in the card; a fixed --unfreeze tries nothing."""
    import zoo.train.finetune as ft

    common = {"epochs": 1, "max_train": 100, "max_val": 50, "batch_size": 32, "verbose": 0}
    summary = ft.finetune("lenet5", str(digits_folder), tmp_path / "auto", **common)
    notes = json.loads(json.loads(Path(summary["card"]).read_text())["recipe"]["notes"])
    phase2 = notes["phase2"]
    assert phase2["chosen_by"].startswith("accuracy on 20 held-back training examples")
    assert set(phase2["scores"]) == {f"{u}@{r:g}" for u, r in ft.PHASE2_CANDIDATES}
    best = max(phase2["scores"].values(), key=lambda s: (s["accuracy"], -s["loss"]))
    assert phase2["scores"][f"{phase2['unfreeze']}@{phase2['learning_rate']:g}"] == best
    assert not (tmp_path / "auto" / "checkpoints").exists(), "the trials' record goes with the checkpoints"
    assert f"chosen by {phase2['chosen_by']}" in (tmp_path / "auto" / "README.md").read_text()
    fixed = ft.finetune("lenet5", str(digits_folder), tmp_path / "fixed", unfreeze=2, **common)
    notes = json.loads(json.loads(Path(fixed["card"]).read_text())["recipe"]["notes"])
    assert "phase2" not in notes and notes["unfreeze"] == 2


def test_bert_fine_tune_refuses_a_phase2_rate():
    from zoo.train.finetune import finetune

    with pytest.raises(InputError, match="set the learning rate instead"):
        finetune("minilm_l6.sentence", "mr", "never-written", fine_tune_learning_rate=0.01)


def test_finetune_on_too_few_images_says_how_many_and_shows_skipped_files_once(digits_folder, tmp_path):
    """Eight real scans and a broken file: one 'Warning:' line for it, one error line, nothing written."""
    import shutil

    from click.testing import CliRunner

    from zoo.cli import cli

    data = tmp_path / "few"
    for label in ("1", "7"):
        (data / label).mkdir(parents=True)
        for path in sorted((digits_folder / label).glob("*.png"))[:4]:
            shutil.copyfile(path, data / label / path.name)
    (data / "1" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["finetune", "lenet5", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("Warning: skipped 1 file(s)") and "broken.png" in lines[0]
    assert sum(line.startswith("Warning:") for line in lines) == 1  # scanned twice, shown once
    assert lines[-1].startswith("Error: ") and "has 8 usable example(s)" in lines[-1]
    assert "at least 10" in lines[-1] and "validation/" in lines[-1]
    assert not out.exists()


_TRAIN_ONLY_BUILDER = '''
import sys
import numpy as np
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits


class ZooDigitsTrainOnly(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's real digit scans as a tfds dataset with a train split only."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(names=[str(i) for i in range(10)]),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        digits = load_digits()
        for i, (image, label) in enumerate(zip(digits.images, digits.target)):
            yield i, {"image": (image * 16).clip(0, 255).astype(np.uint8)[..., None], "label": int(label)}


from zoo.cli import main
sys.argv = ["zoo", *sys.argv[1:]]
main()
'''


@pytest.mark.slow
def test_finetune_on_an_unprepared_tfds_dataset_with_only_a_train_split(tmp_path):
    """tfds prepares it first (its splits are unknown until then); a tenth of train validates."""
    pytest.importorskip("sklearn.datasets")
    pytest.importorskip("tensorflow_datasets")
    script = tmp_path / "zoo_with_builder.py"
    script.write_text(_TRAIN_ONLY_BUILDER)
    out = tmp_path / "ft"
    args = ["finetune", "lenet5", "--data", "tfds:zoo_digits_train_only", "--out", str(out)]
    args += ["--epochs", "1", "--max-train", "200", "--unfreeze", "2"]
    env = {**os.environ, "TFDS_DATA_DIR": str(tmp_path / "tfds")}
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning: preparing 'zoo_digits_train_only' with tensorflow-datasets" in proc.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["dataset"]["split"] == "train[:10%]"  # validated on the first tenth, trained on the rest
    [metric] = card["metrics"]
    assert metric["split"] == "train[:10%]" and metric["value"] > 50  # ten classes of real digits


def test_evaluating_a_text_classifier_on_user_data_scores_its_labels_by_name(tmp_path, monkeypatch):
    """A CSV with only 'pos' rows numbers 'pos' 0, the model's 'neg': the score must follow the names."""
    from zoo.errors import DataError
    from zoo.tasks.evaluate import evaluate
    from zoo.tasks.predict import predict

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    texts = [
        "a gripping, beautifully acted film",
        "one of the most moving stories of the year",
        "a dull, lifeless and tedious mess",
        "funny, warm and wonderfully made",
        "i loved every minute of it",
    ]
    data = tmp_path / "pos.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",pos\n' for t in texts))
    predicted = [p.labels[0] for p in predict("lstm_classifier.mr", texts)]
    assert "pos" in predicted  # the packaged model calls at least one of them positive
    scores = evaluate("lstm_classifier.mr", data=str(data))  # the file's only split, by default
    assert scores["num_examples"] == len(texts)
    assert scores["top1_accuracy"] == pytest.approx(100 * predicted.count("pos") / len(texts))
    other = tmp_path / "other.csv"
    other.write_text('text,label\n"fine",positive\n')
    with pytest.raises(DataError, match="classes 'positive' are not labels of lstm_classifier.mr"):
        evaluate("lstm_classifier.mr", data=str(other))


def test_unknown_classes_are_met_with_advice_for_the_kind_of_data(tmp_path):
    """A folder's classes are renamed, a table's label values changed; a named dataset is neither."""
    from zoo.errors import DataError
    from zoo.tasks.classify import label_mapping

    table = tmp_path / "t.csv"
    table.write_text("text,label\nx,great\n")
    for data, advice in [
        (str(tmp_path), "name the class folders after the model's labels"),
        (str(table), "use the model's labels in the label column"),
        ("mnist", "evaluate on data with the model's labels"),
    ]:
        with pytest.raises(DataError, match=f"'great' are not labels of m .*; {advice}, or fine-tune"):
            label_mapping(["great"], ["neg", "pos"], data, "m")
    assert label_mapping(["pos", "neg"], ["neg", "pos"], "mnist", "m") == [1, 0]


def test_extract_reads_text_files_with_the_vocabulary_beside_the_weights(tmp_path, monkeypatch):
    """It looked for the vocabulary inside the data path ('reviews.csv/vocab.txt')."""
    from zoo.train.engine import extract_to_file

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    data = tmp_path / "reviews.csv"
    data.write_text('text,label\n"a gripping film",pos\n"dull",neg\n"wonderful acting",pos\n')
    path, shapes = extract_to_file("lstm_classifier.mr", str(data), tmp_path / "f.npz", layers=["pre_logits"])
    assert shapes == {"features": (3, 128), "labels": (3,)}
    with np.load(path) as saved:
        assert saved["labels"].tolist() == [1, 0, 1]  # the file's labels by name: neg 0, pos 1
        assert np.isfinite(saved["features"]).all() and np.ptp(saved["features"], axis=0).max() > 0


def test_extract_reads_a_table_without_labels(tmp_path, monkeypatch):
    """zoo extract on a CSV of texts alone said it 'has no column(s) ['label']'; features need none."""
    from zoo.errors import DataError
    from zoo.train.engine import extract_to_file

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    texts = tmp_path / "texts.csv"
    texts.write_text('text\n"a gripping film"\n"dull"\n"wonderful acting"\n')
    _, shapes = extract_to_file("lstm_classifier.mr", str(texts), tmp_path / "f.npz", layers=["pre_logits"])
    assert shapes == {"features": (3, 128)}
    labelled = tmp_path / "reviews.csv"
    labelled.write_text('text,label\n"a gripping film",pos\n"dull",neg\n"wonderful acting",pos\n')
    with np.load(extract_to_file("lstm_classifier.mr", str(labelled), tmp_path / "g.npz")[0]) as a:
        with np.load(tmp_path / "f.npz") as b:
            np.testing.assert_allclose(a["features"], b["features"], atol=1e-6)  # the same texts
    other = tmp_path / "other.csv"
    other.write_text("sentence\nhello\n")
    with pytest.raises(DataError, match=r"has no column\(s\) \['text', 'label'\]"):
        extract_to_file("lstm_classifier.mr", str(other), tmp_path / "h.npz")
    columns = {"text_column": "sentence", "label_column": "label"}
    _, shapes = extract_to_file("lstm_classifier.mr", str(other), tmp_path / "h.npz", columns=columns)
    assert shapes == {"features": (1, 128)}


def test_zoo_extract_refuses_a_character_model(tmp_path):
    """zoo extract lstm_charlm said 'as_supervised=True needs them'."""
    from click.testing import CliRunner

    from zoo.cli import cli

    out = tmp_path / "f.npz"
    result = CliRunner().invoke(cli, ["extract", "lstm_charlm", "--data", "mnist", "--out", str(out)])
    assert result.exit_code == 1 and "has no features for zoo extract" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(("name", "width"), [("vae", 32), ("dcgan", 6272)])
def test_zoo_extract_reads_the_generative_models_image_readers(name, width, tmp_path):
    """zoo extract dcgan ended in a traceback ('DCGAN' object has no attribute 'input_shape'), then was
    refused, though a VAE's latent means and a GAN's discriminator features are what feature_extractor
    gives."""
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli
    from zoo.train.engine import feature_extractor

    rng = np.random.default_rng(0)
    for label in ("3", "8"):
        (tmp_path / "digits" / label).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "digits" / label / f"{i}.png")
    out = tmp_path / "f.npz"
    result = CliRunner().invoke(cli, ["extract", name, "--data", str(tmp_path / "digits"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as saved:
        assert saved["features"].shape == (6, width) and saved["labels"].tolist() == [0, 0, 0, 1, 1, 1]
        first = np.asarray(Image.open(tmp_path / "digits" / "3" / "0.png"), np.float32)[None, :, :, None]
        scaled = first / 255 if name == "vae" else first / 127.5 - 1  # the entries' preprocessing
        expected = numpy(feature_extractor(zoo.load(name))(scaled))
        np.testing.assert_allclose(saved["features"][0], expected[0], atol=1e-4)


def test_zoo_extract_json_names_the_file_and_its_arrays(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from zoo.cli import cli

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    data = _reviews(tmp_path / "reviews.csv")
    out = tmp_path / "f.npz"
    args = ["extract", "lstm_classifier.mr", "--data", str(data), "--out", str(out), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (
        summary["out"] == str(out)
        and summary["split"] == "train"
        and summary["weights"] == "lstm_classifier.mr"
    )
    assert summary["arrays"] == {"features": [24, 128], "labels": [24]}
    with np.load(out) as saved:
        assert list(saved["features"].shape) == summary["arrays"]["features"]
    bare = tmp_path / "feats"
    refused = CliRunner().invoke(
        cli, ["extract", "lstm_classifier.mr", "--data", str(data), "--out", str(bare)]
    )
    assert refused.exit_code == 1 and f"the features file must end in .npz, got '{bare}'" in refused.output
    assert not bare.exists()


def test_training_curves_mark_each_phase_on_whole_epochs(tmp_path):
    import matplotlib.pyplot as plt

    from zoo.train.schedules import history_figure, plot_history

    history = {
        "accuracy": [0.65, 0.73, 0.76],
        "loss": [0.97, 0.70, 0.63],
        "val_accuracy": [0.66, 0.68, 0.68],
        "val_loss": [0.92, 0.86, 0.84],
        "phase": ["probe", "phase2", "phase2"],
    }
    fig = history_figure(history, "lenet5 on fashion_mnist")
    try:
        accuracy, loss = fig.axes[:2]
        assert [accuracy.get_title(), loss.get_title()] == ["accuracy", "loss"]
        assert all(float(t).is_integer() for t in accuracy.get_xticks())  # no epoch 1.25
        boundaries = [line.get_xdata()[0] for line in accuracy.get_lines() if line.get_linestyle() == "--"]
        assert boundaries == [1.5]
        top = accuracy.child_axes[0]  # the phase names above the panel
        assert [t.get_text() for t in top.get_xticklabels()] == ["linear probe", "fine-tune"]
        assert list(top.get_xticks()) == [1.0, 2.5]
    finally:
        plt.close(fig)
    assert plot_history(history, tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def _reviews(path: Path, extra: str = "") -> Path:
    good = ["a gripping, beautifully acted film", "moving and warm", "i loved every minute of it"]
    bad = ["a dull, lifeless mess", "tedious and flat", "boring from start to end"]
    rows = [(t, "pos") for t in good] * 4 + [(t, "neg") for t in bad] * 4
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows) + extra)
    return path


def test_a_table_file_edited_in_place_is_other_data_to_a_finetune_run(tmp_path):
    """A fine-tune resumes only on the same data: a CSV file was known by its name alone."""
    from zoo.train.finetune import _data_fingerprint

    data = _reviews(tmp_path / "reviews.csv")
    before = _data_fingerprint(str(data), None)
    assert _data_fingerprint(str(data), None) == before
    _reviews(data, extra='"one more",pos\n')
    after = _data_fingerprint(str(data), None)
    assert after != before and after["file"] == before["file"] == str(data.resolve())


@pytest.mark.slow
def test_finetune_refuses_to_resume_on_an_edited_table_file(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from zoo.cli import cli

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    data, out = _reviews(tmp_path / "reviews.csv"), tmp_path / "out"
    args = ["finetune", "lstm_classifier.mr", "--data", str(data), "--out", str(out), "--epochs", "1"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output[-2000:]
    card = (out / "card.json").read_text()
    _reviews(data, extra='"one more",pos\n')
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "holds the output of another zoo finetune run (data:" in again.output
    assert "--overwrite" in again.output and (out / "card.json").read_text() == card


def test_table_columns_are_part_of_a_finetune_runs_data(tmp_path):
    from zoo.data import table_columns
    from zoo.train.finetune import _data_fingerprint

    data = _reviews(tmp_path / "reviews.csv")
    assert table_columns() == table_columns("text", "label") == {}
    chosen = table_columns("review", "stars")
    assert chosen == {"text_column": "review", "label_column": "stars"}
    plain = _data_fingerprint(str(data), None)
    assert _data_fingerprint(str(data), None, {}) == plain  # runs made before columns resume as they were
    assert _data_fingerprint(str(data), None, chosen) == {**plain, "columns": chosen}


@pytest.mark.slow
def test_finetune_and_evaluate_read_the_columns_they_are_given(tmp_path, monkeypatch):
    """The CLI read only 'text' and 'label' columns; a table's own names had to be edited in."""
    from click.testing import CliRunner

    from zoo.cli import cli

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    plain = _reviews(tmp_path / "plain.csv").read_text().splitlines()
    data, out = tmp_path / "reviews.csv", tmp_path / "out"
    data.write_text(
        "\n".join(["id,review,sentiment", *(f"{i},{row}" for i, row in enumerate(plain[1:]))]) + "\n"
    )
    monkeypatch.chdir(tmp_path)  # the data and the folder named as a user in that folder names them
    args = ["finetune", "lstm_classifier.mr", "--data", "reviews.csv", "--out", "out", "--epochs", "1"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "its columns are ['id', 'review', 'sentiment']" in refused.output
    assert "--text-column and --label-column" in refused.output and not out.exists()
    chosen = ["--text-column", "review", "--label-column", "sentiment"]
    first = CliRunner().invoke(cli, [*args, *chosen, "--json"])
    assert first.exit_code == 0, first.output[-2000:]
    card = json.loads((out / "card.json").read_text())
    assert card["dataset"]["columns"] == {"text": "review", "label": "sentiment"}
    # the card names the data as it is found from anywhere (it kept 'reviews.csv')
    assert card["dataset"]["name"] == card["metrics"][0]["dataset"] == str(data.resolve())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert card["labels"] == ["neg", "pos"]
    held_out = card["metrics"][0]["value"]
    shown = CliRunner().invoke(cli, ["info", str(out)])
    assert "(test; fold 0 of 10 held out; columns 'review' and 'sentiment')" in shown.output, shown.output
    own = CliRunner().invoke(cli, ["evaluate", str(out), "--json"])  # the card says how to read its data
    assert own.exit_code == 0, own.output[-2000:]
    assert json.loads(own.output)["measured"]["top1_accuracy"] == pytest.approx(held_out, abs=1e-3)
    other = CliRunner().invoke(
        cli, ["evaluate", "lstm_classifier.mr", "--data", str(data), *chosen, "--json"]
    )
    assert other.exit_code == 0, other.output[-2000:]
    assert json.loads(other.output)["measured"]["num_examples"] == 24
    absolute = ["finetune", "lstm_classifier.mr", "--data", str(data), "--out", str(out), "--epochs", "1"]
    same = CliRunner().invoke(cli, [*absolute, *chosen, "--json"])  # the same run, named from elsewhere
    assert same.exit_code == 0, same.output[-2000:]
    assert json.loads(same.stdout)["metrics"]["top1_accuracy"] == pytest.approx(held_out, abs=1e-3)
    again = CliRunner().invoke(cli, [*absolute, "--text-column", "id", "--label-column", "sentiment"])
    assert again.exit_code == 1 and "holds the output of another zoo finetune run (data:" in again.output
    named = CliRunner().invoke(cli, ["evaluate", "lenet5", "--data", "mnist", "--text-column", "t"])
    assert named.exit_code == 1 and "table columns are for text classifiers" in named.output
    features = tmp_path / "f.npz"
    extract = [
        "extract",
        "lstm_classifier.mr",
        "--data",
        str(data),
        "--layer",
        "pre_logits",
        "--out",
        str(features),
    ]
    extracted = CliRunner().invoke(cli, [*extract, *chosen])
    assert extracted.exit_code == 0, extracted.output[-2000:]
    with np.load(features) as saved:
        assert saved["features"].shape == (24, 128) and sorted(set(saved["labels"].tolist())) == [0, 1]
    images = CliRunner().invoke(
        cli, ["extract", "lenet5", "--data", str(data), "--out", str(tmp_path / "g.npz"), *chosen]
    )
    assert (
        images.exit_code == 1
        and "lenet5.mnist reads images: table columns are for text models" in images.output
    )
