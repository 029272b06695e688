"""tools/train.py end to end on real data with shrunken recipes: the recipe kinds train, save and measure."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from tests.helpers import DATA_DIR  # noqa: E402
from zoo.train.distribute import can_data_parallel  # noqa: E402


def _train_tool():
    return importlib.import_module("tools.train")


def _run(monkeypatch, tmp_path, tool, name: str, recipe: dict, capsys, *extra: str) -> str:
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setitem(tool.RECIPES, name, recipe)
    argv = ["train.py", name, "--no-manifest", "--data-dir", str(DATA_DIR), *extra]
    monkeypatch.setattr(sys, "argv", argv)
    assert tool.main() == 0
    folder = tmp_path / "zoo" / "pretrained" / name
    assert (folder / f"{name}.weights.h5").is_file() and (folder / f"{name}.golden.npz").is_file()
    assert (tmp_path / "runs" / name / "curves.png").is_file()
    assert not (tmp_path / "runs" / name / "backup").exists()  # removed once training completes
    return capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA_DIR / "text" / "tinyshakespeare.txt").is_file(),
    reason=f"Tiny Shakespeare not found under {DATA_DIR}",
)
def test_charlm_recipe_trains_and_measures_nats_per_char(monkeypatch, tmp_path, capsys):
    tool = _train_tool()
    recipe = {
        **tool.RECIPES["lstm_charlm.shakespeare"],
        "epochs": 1,
        "batch_size": 64,
        "builder_kwargs": {"embed_dim": 8, "units": 32, "num_layers": 1, "dropout": 0.0},
        "optimizer": {"name": "adam", "max_lr": 1e-2, "pct_start": 0.1, "clipnorm": 1.0},
    }
    out = _run(monkeypatch, tmp_path, tool, "lstm_charlm.smoke", recipe, capsys)
    nats = float(out.split("'nats_per_char': ")[1].split(",")[0])
    assert nats < 3.5, out  # uniform over 65 characters is 4.17


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "text" / "rt-polarity").is_dir(), reason=f"MR not found under {DATA_DIR}")
def test_text_classifier_recipe_writes_vocab_and_beats_chance(monkeypatch, tmp_path, capsys):
    tool = _train_tool()
    recipe = {
        **tool.RECIPES["lstm_classifier.mr"],
        "epochs": 1,
        "embedding_init": None,
        "builder_kwargs": {"embed_dim": 16, "units": 8, "pooling": "max"},
    }
    out = _run(monkeypatch, tmp_path, tool, "lstm_classifier.smoke", recipe, capsys)
    vocab = (tmp_path / "zoo" / "pretrained" / "lstm_classifier.smoke" / "vocab.txt").read_text().split("\n")
    assert vocab[:2] == ["[PAD]", "[UNK]"] and len(vocab) > 5000
    accuracy = float(out.split("'top1_accuracy': ")[1].split(",")[0])
    assert accuracy > 55, out


def test_float16_storage_halves_the_file_and_loads_into_float32(tmp_path):
    import h5py
    import numpy as np

    import zoo

    tool = _train_tool()
    model = zoo.build("lenet5", num_classes=10)
    path = tmp_path / "lenet5.weights.h5"
    model.save_weights(path)
    before = path.stat().st_size
    tool.store_as_float16(path)
    with h5py.File(path) as fh:
        dtypes = set()
        fh.visititems(lambda n, o: dtypes.add(str(o.dtype)) if isinstance(o, h5py.Dataset) else None)
    assert dtypes == {"float16"}
    assert path.stat().st_size < 0.6 * before
    loaded = zoo.build("lenet5", num_classes=10)
    loaded.load_weights(path)
    for want, got in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want.astype(np.float16).astype(np.float32), rtol=0, atol=0)


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"MNIST not found under {DATA_DIR}")
def test_repackage_stores_the_same_trained_values_in_the_new_storage_dtype(monkeypatch, tmp_path, capsys):
    import shutil

    import h5py

    import zoo

    tool = _train_tool()
    folder = tmp_path / "zoo" / "pretrained" / "lenet5.smoke"
    folder.mkdir(parents=True)
    packaged = Path(zoo.__file__).parent / "pretrained" / "lenet5.mnist" / "lenet5.mnist.weights.h5"
    shutil.copyfile(packaged, folder / "lenet5.smoke.weights.h5")
    recipe = {**tool.RECIPES["lenet5.mnist"], "storage_dtype": "float16"}
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setitem(tool.RECIPES, "lenet5.smoke", recipe)
    argv = ["train.py", "lenet5.smoke", "--repackage", "--no-manifest", "--data-dir", str(DATA_DIR)]
    monkeypatch.setattr(sys, "argv", argv)
    assert tool.main() == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "runs" / "lenet5.smoke" / "log.csv").exists()  # nothing was trained
    path = folder / "lenet5.smoke.weights.h5"
    with h5py.File(path) as fh:
        dtypes = set()
        fh.visititems(lambda n, o: dtypes.add(str(o.dtype)) if isinstance(o, h5py.Dataset) else None)
    assert dtypes == {"float16"}
    assert path.stat().st_size < 0.6 * packaged.stat().st_size
    recorded = zoo.weights_entry("lenet5.mnist").metrics[0]
    accuracy = float(out.split("'top1_accuracy': ")[1].split(",")[0])
    assert abs(accuracy - (100 - recorded.value)) < 0.1, out  # the metric holds in float16


def test_resume_follows_the_checkpoint_epoch_and_mends_or_refuses_its_log(tmp_path):
    tool = _train_tool()
    log, backup = tmp_path / "log.csv", tmp_path / "backup"
    backup.mkdir()
    rows = "epoch,loss\r\n0,1.0\r\n1,0.9\r\n2,0.8\r\n"
    log.write_bytes(rows.encode())
    assert tool.align_log(log, tmp_path / "none") == 3  # no checkpoint: the log counts
    # Killed after the log row of epoch 2 but before its backup: the row goes, epoch 2 runs again.
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert tool.align_log(log, backup) == 2
    assert log.read_bytes() == b"epoch,loss\r\n0,1.0\r\n1,0.9\r\n"
    # A log that lost rows would give the next epoch the wrong data order: refused, left as it is.
    (backup / "training_metadata.json").write_text('{"epoch": 5, "batch": 0}')
    with pytest.raises(SystemExit, match="lost rows"):
        tool.align_log(log, backup)
    assert log.read_bytes() == b"epoch,loss\r\n0,1.0\r\n1,0.9\r\n"


@pytest.mark.skipif(not (DATA_DIR / "cifar10-lossless").is_dir(), reason=f"no CIFAR-10 under {DATA_DIR}")
def test_a_resumed_image_recipe_trains_on_the_epochs_an_unbroken_run_would_have():
    """The shuffle and augmentation of epoch k do not depend on where the run (re)started."""
    import numpy as np

    tool = _train_tool()
    recipe = tool.RECIPES["resnet20.cifar10"]

    def first_batch(ds):
        x, y = next(iter(ds))
        return np.asarray(x), np.asarray(y)

    unbroken = tool.build_dataset(recipe, "train", train=True, data_dir=str(DATA_DIR), initial_epoch=0)
    epochs = [first_batch(unbroken) for _ in range(2)]
    resumed = tool.build_dataset(recipe, "train", train=True, data_dir=str(DATA_DIR), initial_epoch=1)
    x, y = first_batch(resumed)
    assert np.array_equal(x, epochs[1][0]) and np.array_equal(y, epochs[1][1])
    assert not np.array_equal(epochs[0][1], epochs[1][1])


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"MNIST not found under {DATA_DIR}")
def test_mixed_bfloat16_recipe_packages_float16_weights_measured_in_float32(monkeypatch, tmp_path, capsys):
    """Also trains data-parallel (--distribute) where the backend has a distribution API, one device here."""
    import h5py

    import zoo

    tool = _train_tool()
    recipe = {
        **tool.RECIPES["lenet5.mnist"],
        "epochs": 1,
        "precision": "mixed_bfloat16",
        "storage_dtype": "float16",
    }
    distribute = ("--distribute", "data-parallel") if can_data_parallel() else ()
    out = _run(monkeypatch, tmp_path, tool, "lenet5.smoke", recipe, capsys, *distribute)
    accuracy = float(out.split("'top1_accuracy': ")[1].split(",")[0])
    assert accuracy > 95, out
    path = tmp_path / "zoo" / "pretrained" / "lenet5.smoke" / "lenet5.smoke.weights.h5"
    with h5py.File(path) as fh:
        dtypes = set()
        fh.visititems(lambda n, o: dtypes.add(str(o.dtype)) if isinstance(o, h5py.Dataset) else None)
    assert dtypes == {"float16"}
    model = zoo.build("lenet5", num_classes=10)  # the global policy is float32 again
    model.load_weights(path)
    assert {w.dtype for w in model.weights} == {"float32"}


def _trained_here() -> dict[str, dict]:
    """Manifest records that ``python tools/train.py NAME`` wrote (no ``--epochs`` override)."""
    records = json.loads((ROOT / "weights_manifest.json").read_text())["weights"]
    return {
        name: r
        for name, r in records.items()
        if r.get("recipe", {}).get("command") == f"python tools/train.py {name}"
    }


@pytest.mark.parametrize(("name", "record"), sorted(_trained_here().items()))
def test_manifest_record_matches_its_recipe(name, record):
    """A recipe edited after its weights were trained must be re-run (or re-recorded)."""
    tool = _train_tool()
    recipe = tool.RECIPES[name]
    assert json.loads(record["recipe"]["notes"]) == json.loads(
        json.dumps(tool.recipe_hyperparameters(recipe))
    )
    assert record["architecture"] == recipe["architecture"]
    assert record["description"] == recipe["description"]
    assert record["references"] == recipe["references"]
    assert record.get("notes") == recipe.get("notes")
    assert record["dataset"]["notes"] == recipe.get("dataset_notes", "")
    assert recipe["builder_kwargs"].items() <= record["builder_kwargs"].items()


def test_without_a_run_log_the_recorded_cost_is_kept_only_for_the_same_weights_and_recipe(
    monkeypatch, tmp_path
):
    """--record-only on a fresh checkout (no runs/) must not drop or misattribute a run's cost."""
    tool = _train_tool()
    monkeypatch.setattr(tool, "ROOT", tmp_path)  # no runs/NAME/log.csv here
    name, record = next(
        (n, r) for n, r in sorted(_trained_here().items()) if "images_per_second" in r["recipe"]
    )
    recipe = tool.RECIPES[name]
    sha = record["files"][0]["sha256"]
    expected = {k: record["recipe"][k] for k in ("wall_time_s", "images_per_second")}
    assert tool.training_cost(name, recipe, sha) == expected
    assert tool.training_cost(name, recipe, "0" * 64) == {}  # other weights
    assert tool.training_cost(name, {**recipe, "epochs": recipe["epochs"] + 1}, sha) == {}  # other recipe
    assert tool.training_cost(name, recipe) == {}


def test_resuming_with_a_changed_recipe_is_refused(tmp_path):
    tool = _train_tool()
    recipe = dict(tool.RECIPES["lenet5.mnist"])
    run_dir = tmp_path / "runs" / "lenet5.mnist"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "recipe.json").write_text(tool.resume_settings(recipe))
    (run_dir / "log.csv").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(SystemExit, match="changed since"):
        tool.train_model(None, {**recipe, "epochs": recipe["epochs"] + 1}, "lenet5.mnist", run_dir, None)
    assert (run_dir / "log.csv").read_text() == "epoch,loss\n0,1.0\n"  # the run is left as it was


def test_resuming_under_another_keras_backend_is_refused(tmp_path):
    import keras

    tool = _train_tool()
    recipe = dict(tool.RECIPES["lenet5.mnist"])
    other = next(b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend())
    assert json.loads(tool.resume_settings(recipe))["backend"] == keras.backend.backend()
    assert json.loads(tool.resume_settings({**recipe, "backend": other}))["backend"] == other  # --compute
    run_dir = tmp_path / "runs" / "lenet5.mnist"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "recipe.json").write_text(tool.resume_settings({**recipe, "backend": other}))
    with pytest.raises(SystemExit, match="Keras backend"):
        tool.train_model(None, recipe, "lenet5.mnist", run_dir, None)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"MNIST not found under {DATA_DIR}")
def test_compute_fastest_trains_with_the_measured_winner_and_keeps_it_on_resume(
    monkeypatch, tmp_path, capsys
):
    import keras

    tool = _train_tool()
    backend = keras.backend.backend()
    candidates = f"{backend}:float32,{backend}:mixed_bfloat16"  # this process's backend: trained here
    recipe = {**tool.RECIPES["lenet5.mnist"], "epochs": 1}
    args = ("--compute", "fastest", "--candidates", candidates, "--measure-steps", "2")
    out = _run(monkeypatch, tmp_path, tool, "lenet5.fast", recipe, capsys, *args)
    choice = json.loads((tmp_path / "runs" / "lenet5.fast" / "compute.json").read_text())
    assert sorted(choice["step_ms"]) == sorted(candidates.split(","))
    assert f"{choice['backend']}:{choice['precision']}" == min(choice["step_ms"], key=choice["step_ms"].get)
    assert f"training on {backend} in {choice['precision']}" in out
    hyper = tool.recipe_hyperparameters(
        {**recipe, "backend": backend, "precision": choice["precision"], "compute_step_ms": choice["step_ms"]}
    )
    assert hyper["compute_step_ms"] == choice["step_ms"] and hyper["backend"] == backend
    # A resumed run keeps its measured choice; one another backend won cannot run in this process.
    (tmp_path / "runs" / "lenet5.fast" / "backup").mkdir()
    other = "torch" if backend != "torch" else "jax"
    (tmp_path / "runs" / "lenet5.fast" / "compute.json").write_text(json.dumps({**choice, "backend": other}))
    monkeypatch.setattr(sys, "argv", ["train.py", "lenet5.fast", "--compute", "fastest"])
    with pytest.raises(SystemExit, match=f"{other} measured fastest, but Keras already runs on {backend}"):
        tool.main()
    monkeypatch.setattr(sys, "argv", ["train.py", "lenet5.fast", "--compute", "fastest", "--record-only"])
    with pytest.raises(SystemExit, match="--record-only and --repackage train nothing"):
        tool.main()


@pytest.mark.slow
def test_compute_measures_each_backend_in_its_own_process():
    from tools import compute

    recipe = {**_train_tool().RECIPES["lenet5.mnist"], "batch_size": 8}
    step_ms = compute.measure(recipe, ["tensorflow:float32", "jax:float32", "torch:float32"], steps=2)
    assert sorted(step_ms) == ["jax:float32", "tensorflow:float32", "torch:float32"]
    assert all(0 < ms < 60_000 for ms in step_ms.values())
    assert compute.fastest(step_ms) == tuple(min(step_ms, key=step_ms.get).split(":"))
    assert compute.candidates_for(_train_tool().RECIPES["vae.mnist"]) == []
    with pytest.raises(SystemExit, match="unknown candidate"):
        compute.parse_candidates("tensorflow:float64")


def test_augment_override_reaches_the_training_and_the_recorded_command(monkeypatch, tmp_path):
    tool = _train_tool()
    seen = {}

    class Stop(Exception):
        pass

    def capture(model, recipe, name, run_dir, data_dir):
        seen.update(recipe)
        raise Stop

    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "train_model", capture)
    monkeypatch.setattr(
        sys, "argv", ["train.py", "resnet20.cifar10", "--epochs", "2", "--augment", "cifar_cutout"]
    )
    with pytest.raises(Stop):
        tool.main()
    assert seen["augment"] == {"name": "cifar_cutout"} and seen["epochs"] == 2
    assert tool.RECIPES["resnet20.cifar10"]["augment"] == {"name": "cifar"}  # the recipe itself is untouched
    monkeypatch.setattr(sys, "argv", ["train.py", "lstm_classifier.mr", "--augment", "cifar_cutout"])
    with pytest.raises(SystemExit, match="--augment is for recipes that augment images"):
        tool.main()
