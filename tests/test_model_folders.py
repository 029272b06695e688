"""A fine-tuned folder is a zoo model: every command and the Python API take it where a name goes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from tests.helpers import numpy
from zoo.backend import keras_backend
from zoo.cli import cli
from zoo.errors import InputError, WeightsVerificationError


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """scikit-learn's real 8x8 digit scans 1, 3 and 8 as a user image folder."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    root = tmp_path_factory.mktemp("digits")
    data = sklearn_datasets.load_digits()
    for i, (image, label) in enumerate(zip(data.images, data.target, strict=True)):
        if label in (1, 3, 8):
            (root / str(label)).mkdir(exist_ok=True)
            Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def finetuned(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "FT"
    # a fixed phase 2 (the choice among settings is tested in test_transfer.py)
    _run("finetune", "lenet5", "--data", digits, "--out", out, "--epochs", "3", "--unfreeze", "2")
    return out


def test_every_command_takes_a_finetuned_folder(finetuned, digits, tmp_path):
    card = json.loads((finetuned / "card.json").read_text())
    image = sorted((digits / "3").glob("*.png"))[0]
    shown = _run("predict", finetuned, image, "--json")
    top = json.loads(shown)[0]["top"][0]
    assert top["label"] in card["labels"]
    evaluated = json.loads(_run("evaluate", finetuned, "--data", digits, "--json"))
    assert evaluated["measured"]["top1_accuracy"] > 40  # chance is 33.3%
    # on its own data, the fold the card says it held out (it asked for a 'test' split the folder lacks)
    assert card["dataset"]["kfold"] == [10, 0] and card["dataset"]["split"] == "test"
    own = json.loads(_run("evaluate", finetuned, "--json"))
    assert own["measured"]["top1_accuracy"] == pytest.approx(card["metrics"][0]["value"], abs=1e-3)
    assert own["measured"]["num_examples"] < 0.2 * evaluated["measured"]["num_examples"]
    shown = _run("info", finetuned)
    assert "local folder" in shown and f"dataset {digits} (test; fold 0 of 10 held out)" in shown
    # --golden on weights without a golden pair says the check was skipped (it printed nothing of it)
    checked = json.loads(_run("verify", finetuned, "--golden", "--json"))
    assert [r["status"] for r in checked] == ["ok", "skipped"]
    assert checked[1]["detail"] == "no golden input/output pair recorded"
    _run("extract", finetuned, "--data", digits, "--out", tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as features:
        assert features["features"].shape[1] == 84
    if keras_backend() == "tensorflow":  # zoo export converts through TensorFlow
        # the caller resizes the 8x8 scans (the record says how); the export takes uint8 28x28 images
        shown = _run("export", finetuned, "--format", "tflite", "--out", tmp_path / "m.tflite")
        assert "uint8 images 28x28x1" in shown and (tmp_path / "m.tflite").stat().st_size > 10_000
        from zoo.export import tflite_record

        record = tflite_record(tmp_path / "m.tflite")
        assert record["labels"] == card["labels"]
        assert record["input_contract"]["caller_resizes"]["resize"] == [28, 28]
        # int8, checked on the fold the fine-tune held out (its folder has no 'test' split)
        args = ["--quantize", "int8", "--evaluate", "--out", tmp_path / "m8.tflite", "--json"]
        m = json.loads(_run("export", finetuned, "--format", "tflite", *args))["metrics"]
        assert m["num_examples"] == own["measured"]["num_examples"] and m["top1_agreement"] > 90
        # scored (its own labels) on the images the export takes: resized to 28x28 and rounded to uint8
        assert m["keras_top1_accuracy"] == pytest.approx(card["metrics"][0]["value"], abs=5)
    _run(
        "finetune",
        f"{finetuned}/model.keras",
        "--data",
        digits,
        "--out",
        tmp_path / "more",
        "--epochs",
        "1",
        "--unfreeze",
        "2",
    )
    assert json.loads((tmp_path / "more" / "card.json").read_text())["labels"] == card["labels"]


def test_a_bare_folder_name_stays_a_zoo_name_and_the_error_shows_the_path(finetuned, monkeypatch):
    """``FT`` is looked up in the registry (a folder never shadows a model); the error names ``./FT``."""
    from zoo.errors import UnknownModelError

    monkeypatch.chdir(finetuned.parent)
    with pytest.raises(UnknownModelError, match=r"folder 'FT' is here: name it as a path, \./FT"):
        zoo.load("FT")
    result = CliRunner().invoke(cli, ["info", "FT"])
    assert result.exit_code != 0 and "./FT" in result.output
    assert "local folder" in _run("info", "./FT")


def test_a_path_that_is_not_a_model_folder_says_what_it_is(digits, tmp_path, monkeypatch):
    from zoo.errors import UnknownModelError

    monkeypatch.chdir(digits)
    image = next((digits / "1").glob("*.png"))
    cases = {
        "./missing": r"No folder \./missing exists either",
        "./1": r"\./1 is not a fine-tuned model folder \(it has no card\.json\)",
        f"1/{image.name}": r"is a file, not a fine-tuned model folder",
    }
    for name, message in cases.items():
        with pytest.raises(UnknownModelError, match=message):
            zoo.weights_entry(name)
    result = CliRunner().invoke(cli, ["predict", f"1/{image.name}", "x.png"])  # arguments swapped
    assert result.exit_code == 1 and "is a file, not a fine-tuned model folder" in result.output


def test_zoo_load_and_plain_keras_give_the_same_model(finetuned):
    model = zoo.load(finetuned)
    assert model.output_shape == (None, 3)
    entry = zoo.weights_entry(str(finetuned))
    assert entry.labels == ("1", "3", "8") and entry.name == str(finetuned.resolve())
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    code = (
        "import sys, numpy as np, zoo, keras\n"
        "m = keras.saving.load_model(sys.argv[1] + '/model.keras', safe_mode=True)\n"
        "np.save(sys.argv[2], keras.ops.convert_to_numpy(m(np.load(sys.argv[3]))))\n"
    )
    np.save(finetuned.parent / "x.npy", x)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(finetuned),
            str(finetuned.parent / "y.npy"),
            str(finetuned.parent / "x.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(finetuned.parent / "y.npy"), numpy(model(x)), atol=1e-6)


def test_a_folder_takes_a_new_head_and_fine_tunes_on_other_classes(finetuned, digits, tmp_path):
    """zoo finetune ./mine on other classes said 'fine-tune it again with zoo finetune'."""
    from zoo.train.engine import feature_extractor

    own, five = zoo.load(finetuned), zoo.load(finetuned, num_classes=5)
    assert five.output_shape == (None, 5)
    x = np.random.default_rng(3).random((2, 32, 32, 1), dtype=np.float32)
    features = [numpy(feature_extractor(m, "pre_logits")(x)) for m in (own, five)]
    np.testing.assert_array_equal(*features)  # the same backbone, a fresh head
    with pytest.raises(InputError, match="input_shape cannot change it"):
        zoo.load(finetuned, input_shape=(64, 64, 1))
    pair = tmp_path / "pair"
    for label in ("1", "8"):
        (pair / label).mkdir(parents=True)
        for image in sorted((digits / label).glob("*.png"))[:12]:
            (pair / label / image.name).write_bytes(image.read_bytes())
    out = tmp_path / "again"
    _run("finetune", finetuned, "--data", pair, "--out", out, "--epochs", "1", "--unfreeze", "2")
    card = json.loads((out / "card.json").read_text())
    assert card["labels"] == ["1", "8"] and zoo.load(out).output_shape == (None, 2)


def test_a_changed_folder_is_refused_before_loading(finetuned, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finetuned, copy)
    with open(copy / "model.keras", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\0\0\0\0")
    with pytest.raises(WeightsVerificationError):
        zoo.load(copy)
    with pytest.raises(InputError, match="as it was fine-tuned; include_top cannot change it"):
        zoo.load(finetuned, include_top=False)  # num_classes can: test_a_folder_takes_a_new_head_...
    assert zoo.api.model_folder("FT") is None, "a bare word is a zoo name, never a folder"


def test_a_card_without_its_held_out_fold_says_what_to_do(finetuned, digits, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(finetuned, old)
    card = json.loads((old / "card.json").read_text())
    del card["dataset"]["kfold"]  # as cards were written before the fold was recorded
    (old / "card.json").write_text(json.dumps(card))
    result = CliRunner().invoke(cli, ["evaluate", str(old)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "does not record which fold" in result.output and "--data" in result.output
    assert "kfold=(k, i)" not in result.output
    assert json.loads(_run("evaluate", old, "--data", digits, "--json"))["measured"]["num_examples"] > 0


@pytest.mark.hub
def test_a_folder_published_on_the_hub_loads_by_reference(finetuned, digits, local_hub, hf_env):
    """Publish the folder as a Hub repo (olah on loopback), load it back by hf:// at its revision."""
    files = {p.name: p for p in finetuned.iterdir() if p.is_file() and not p.name.startswith(".")}
    revision = local_hub.add_repo("me/lenet-digits", files, lfs=["model.keras"])
    reference = f"hf://me/lenet-digits@{revision}"
    x = np.random.default_rng(1).random((3, 32, 32, 1), dtype=np.float32)
    np.testing.assert_array_equal(numpy(zoo.load(reference)(x)), numpy(zoo.load(finetuned)(x)))
    image = sorted((digits / "8").glob("*.png"))[0]
    assert _run("predict", reference, image, "--json") == _run("predict", finetuned, image, "--json")

    tampered = dict(files, **{"model.keras": (finetuned / "model.keras").read_bytes()[:-10] + b"\0" * 10})
    bad = local_hub.add_repo("me/lenet-digits", tampered, lfs=["model.keras"])
    with pytest.raises(WeightsVerificationError):
        zoo.load(f"hf://me/lenet-digits@{bad}")


@pytest.mark.hub
def test_a_hub_folder_loads_from_the_cache_or_fails_at_once_when_the_hub_is_down(
    finetuned, local_hub, hf_env, monkeypatch
):
    """huggingface_hub retried an unreachable Hub five times (about 23 s, five warnings) first."""
    import time

    import zoo.weights.resolve as resolve
    from zoo.errors import OfflineError

    files = {p.name: p for p in finetuned.iterdir() if p.is_file() and not p.name.startswith(".")}
    commit = local_hub.add_repo("me/lenet-cached", files, lfs=["model.keras"])
    x = np.random.default_rng(2).random((2, 32, 32, 1), dtype=np.float32)
    online = numpy(zoo.load("hf://me/lenet-cached@main")(x))
    probes = []
    real_probe = resolve._hub_unreachable
    monkeypatch.setattr(resolve, "_hub_unreachable", lambda: probes.append(1) or real_probe())
    np.testing.assert_array_equal(numpy(zoo.load(f"hf://me/lenet-cached@{commit}")(x)), online)
    assert probes == [], "a pinned folder in the cache loads without asking the Hub"
    local_hub.stop()
    started = time.monotonic()
    with pytest.raises(OfflineError, match="hf://me/never-fetched@main is not cached and the Hub at"):
        zoo.load("hf://me/never-fetched@main")
    assert time.monotonic() - started < 5
    np.testing.assert_array_equal(numpy(zoo.load("hf://me/lenet-cached@main")(x)), online)


def test_verify_takes_a_folder_as_it_takes_a_name(finetuned):
    """A bare string was read as a list of names, one a character ('.': unknown model)."""
    for name in (finetuned, str(finetuned), [str(finetuned)]):
        results = zoo.verify(name)
        assert [(r.filename, r.status) for r in results] == [("model.keras", "ok")], name
    assert zoo.verify("lenet5") == zoo.verify(["lenet5.mnist"])


def test_rerunning_a_finished_finetune_gives_its_figures_back(finetuned, digits):
    args = ["finetune", "lenet5", "--data", digits, "--out", finetuned, "--epochs", "3", "--unfreeze", "2"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0 and "nothing to do" in result.output, result.output
    metric = json.loads((finetuned / "card.json").read_text())["metrics"][0]
    assert f"validation top-1 accuracy {metric['value']:.2f}% on {metric['num_examples']} examples" in (
        result.output
    )


def test_card_figures_are_what_the_folder_holds(finetuned, digits):
    """Parameters, file sizes and the metric in card.json are recomputed from the folder itself."""
    import zoo.data
    from zoo.tasks.classify import classification_metrics

    card = json.loads((finetuned / "card.json").read_text())
    config = json.loads((finetuned / "config.json").read_text())
    model = zoo.load(finetuned)
    from zoo.models._common import count_parameters

    # the papers' convention, as in the manifest: trainable weights of the whole (unfrozen) network
    fresh = zoo.build(card["architecture"], num_classes=3, input_shape=tuple(card["input_shape"]))
    assert card["num_params"] == count_parameters(model) == count_parameters(fresh)
    for record in card["files"]:
        assert (finetuned / record["filename"]).stat().st_size == record["size"]
        assert config["files"][record["filename"]] == record["sha256"]
    assert "fold 0 of 10" in card["dataset"]["notes"]  # a flat folder: the held-out fold is recorded
    held_out = zoo.data.load(
        str(digits),
        "test",
        kfold=(10, 0),
        preprocessing=card["preprocessing"],
        as_supervised=True,
        batch_size=64,
    )
    measured = classification_metrics(model, held_out)
    metric = card["metrics"][0]
    assert measured["top1_accuracy"] == pytest.approx(metric["value"], abs=0.01)
    assert metric["num_examples"] == measured["num_examples"] > 0  # a figure on few examples says so
    assert metric["split"] == card["dataset"]["split"]
    readme = (finetuned / "README.md").read_text()
    assert readme.startswith('---\nlibrary_name: "zoo"')
    assert f"{metric['value']:.2f}% on {metric['num_examples']} examples" in readme
    assert f"test ({metric['num_examples']} examples)" in _run("info", finetuned)


@pytest.mark.hub
def test_an_unreachable_or_wrong_hub_reference_is_one_typed_error(local_hub, hf_env, monkeypatch):
    from zoo.errors import OfflineError, WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="hf://me/nothing-here@main"):
        zoo.load("hf://me/nothing-here@main")
    hf_env.set_offline(monkeypatch)
    with pytest.raises(OfflineError, match="not cached"):
        zoo.load("hf://me/never-fetched@0123456789abcdef0123456789abcdef01234567")
    with pytest.raises(InputError, match="hf://OWNER/NAME@REVISION"):
        zoo.load("hf://no-revision")
