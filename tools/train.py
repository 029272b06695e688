"""Train a recipe from tools/recipes.py, package its weights and record it in the manifest.

Usage:
    python tools/train.py lenet5.mnist [--epochs N] [--no-manifest]
    python tools/train.py vae.mnist
    python tools/train.py dcgan.mnist
    python tools/train.py vae.mnist --record-only    # re-measure the packaged weights
    python tools/train.py lstm_classifier.mr --repackage    # store them in a new storage_dtype

The run resumes from runs/NAME/backup if it was interrupted. Weights go to
zoo/pretrained/NAME/, curves to runs/NAME/curves.png, and the manifest record
(files, sha256, size, metrics measured by zoo.evaluate, command, versions) is
written through zoo.weights.manifest.upsert_entries. Classifiers, VAEs and GANs differ
in how they are compiled and in their golden pair (VAE: fixed-binarised test
images -> reconstruction logits; GAN: seeded latent vectors -> images).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]

from zoo.data.augment import AUGMENTATIONS  # noqa: E402
from zoo.fileio import atomic_path  # noqa: E402  (after the log level)
from zoo.train.distribute import (  # noqa: E402
    DISTRIBUTE,
    distribution_scope,
    fit_ready,
    join_processes,
    process_index,
)

try:  # imported as tools.train (tests, with the checkout on the path)
    from tools.recipes import RECIPES
except ImportError:  # run as a script: python tools/train.py (its folder is on the path)
    from recipes import RECIPES


def build_dataset(recipe: dict, split: str, *, train: bool, data_dir: str | None, initial_epoch: int = 0):
    import zoo.data

    if recipe.get("kind") == "charlm":
        import zoo.tasks.language_model

        text = zoo.tasks.language_model.load_text(recipe["dataset"], split, data_dir=data_dir)
        return zoo.tasks.language_model.sequence_dataset(
            text,
            vocab=recipe["preprocessing"]["vocab"],
            sequence_length=recipe["sequence_length"],
            batch_size=recipe["batch_size"],
            shuffle=train,
            seed=recipe["seed"],
            initial_epoch=initial_epoch,
        )

    augment = None
    if train and recipe.get("augment"):
        aug = recipe["augment"]
        if "random_shift" in aug:
            augment = functools.partial(zoo.data.random_crop_with_padding, padding=aug["random_shift"])
        elif aug.get("name"):
            augment = aug["name"]
    return zoo.data.load(
        recipe["dataset"],
        split,
        batch_size=recipe["batch_size"],
        shuffle=train,
        seed=recipe["seed"],
        preprocessing=recipe["preprocessing"],
        augment=augment,
        as_supervised=True,
        drop_remainder=train,
        data_dir=data_dir,
        initial_epoch=initial_epoch if train else None,  # a resumed run gets the epochs it missed
    )


def one_hot_labels(ds, depth: int):
    """Map ``(x, class index)`` batches to ``(x, one-hot)`` (label smoothing needs one-hot labels)."""
    import tensorflow as tf

    return ds.map(lambda x, y: (x, tf.one_hot(y, depth)), num_parallel_calls=tf.data.AUTOTUNE)


def make_optimizer(recipe: dict, total_steps: int):
    import keras

    from zoo.train.schedules import OneCycle

    opt = recipe["optimizer"]
    schedule = OneCycle(opt["max_lr"], total_steps, pct_start=opt.get("pct_start", 0.25))
    if opt["name"] == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=opt["weight_decay"])
    if opt["name"] == "adam":
        return keras.optimizers.Adam(schedule, clipnorm=opt.get("clipnorm"))
    if opt["name"] == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=opt.get("momentum", 0.9), nesterov=True, weight_decay=opt.get("weight_decay")
        )
    raise SystemExit(f"unknown optimizer {opt['name']}")


HIGHER_IS_BETTER = {
    "nats_per_char": False,
    "bits_per_char": False,
    "top1_accuracy": True,
    "top1_error": False,
    "nll_nats": False,
    "elbo_nats": False,
    "fid_lenet5": False,
    "fid_lenet5_real_vs_real": False,
    "confident_fraction": True,
    "class_coverage_entropy": True,
    "class_share_ratio": False,
}


# Recipe keys that only describe the weights; editing them does not stop a run from resuming.
DOCUMENTATION_KEYS = frozenset({"description", "references", "notes", "dataset_notes", "license"})


def resume_settings(recipe: dict) -> str:
    """What a checkpointed run must keep to resume: the recipe without its documentation keys.

    And the Keras backend it trains on (``--compute fastest`` records its choice in the recipe;
    otherwise the active one): each backend computes differently, and on JAX and PyTorch ``fit``
    starts one pass of the data before its first epoch, so the epochs' draws differ too.
    """
    import keras

    settings = {k: v for k, v in recipe.items() if k not in DOCUMENTATION_KEYS}
    settings.setdefault("backend", keras.backend.backend())
    return json.dumps(settings, sort_keys=True, default=str)


def recipe_hyperparameters(recipe: dict) -> dict:
    """The training settings of a recipe that its manifest record keeps (``recipe.notes``)."""
    kind = recipe.get("kind", "classifier")
    hyper = ["epochs", "batch_size", "optimizer", "augment", "seed"]
    hyper += [k for k in ("label_smoothing", "backend", "compute_step_ms") if k in recipe]
    hyper += [
        k
        for k, plain in (("precision", "float32"), ("storage_dtype", "float32"))
        if recipe.get(k, plain) != plain
    ]
    if kind == "text_classifier":
        hyper += ["vocab", "embedding_init"]
    if kind == "charlm":
        hyper += ["sequence_length"]
    if kind == "vae":
        hyper += ["dynamic_binarization", "kl_warmup_epochs"]
    return {k: recipe[k] for k in hyper}


def training_cost(name: str, recipe: dict, weights_sha256: str | None = None) -> dict:
    """Wall time and training images per second of the run, from its log (every resumed part).

    Without a complete log (a fresh checkout has no ``runs/``), the figures already recorded in
    the manifest are kept when they describe these very weights: same sha256, same recipe.
    Returns an empty dict otherwise (runs older than the timer).
    """
    log = ROOT / "runs" / name / "log.csv"
    seconds = read_log(log).get("epoch_seconds", []) if log.exists() else []
    if len(seconds) != recipe["epochs"] or any(s != s for s in seconds):
        return recorded_cost(name, recipe, weights_sha256)
    if recipe.get("kind", "classifier") != "classifier":
        return {"wall_time_s": round(sum(seconds))}
    import zoo.data

    images = zoo.data.info(recipe["dataset"]).splits["train"] // recipe["batch_size"] * recipe["batch_size"]
    # the epoch time includes the validation pass when the recipe monitors the eval split
    return {
        "wall_time_s": round(sum(seconds)),
        "images_per_second": round(images * len(seconds) / sum(seconds), 1),
    }


def _training_settings(hyperparameters: dict) -> dict:
    """What decides the training run: every setting but how the weights are stored afterwards."""
    return {k: v for k, v in hyperparameters.items() if k != "storage_dtype"}


def recorded_cost(name: str, recipe: dict, weights_sha256: str | None) -> dict:
    """The manifest's cost figures for ``name`` if they were measured for these weights and recipe.

    The storage dtype is not compared: ``--repackage`` changes it without training again.
    """
    from zoo.weights.manifest import load_manifest, repo_manifest_path

    entry = load_manifest(repo_manifest_path()).get(name) if weights_sha256 else None
    if entry is None or entry.files[0].sha256 != weights_sha256:
        return {}
    recorded = json.loads(entry.recipe.get("notes") or "{}")
    if _training_settings(recorded) != _training_settings(recipe_hyperparameters(recipe)):
        return {}
    return {k: entry.recipe[k] for k in ("wall_time_s", "images_per_second") if k in entry.recipe}


def package_record(
    name: str,
    recipe: dict,
    folder: Path,
    files: list[Path],
    golden: Path,
    num_params: int,
    metrics: list[dict],
    command: str,
    cost: dict,
) -> dict:
    from zoo.weights.manifest import file_record, library_versions
    from zoo.weights.records import golden_record, make_record

    labels = recipe["labels"]
    return make_record(
        architecture=recipe["architecture"],
        tag=name.split(".", 1)[1],
        default=True,
        description=recipe["description"],
        files=[file_record(f, "vocab" if f.suffix == ".txt" else "keras.weights.h5") for f in files],
        sources=[{"type": "package", "path": folder.relative_to(ROOT / "zoo").as_posix()}],
        builder_kwargs=recipe["builder_kwargs"],
        input_shape=recipe["input_shape"],
        num_classes=None if labels is None else len(labels),
        labels=labels,
        preprocessing=recipe.get("packaged_preprocessing", recipe["preprocessing"]),
        dataset={
            "name": recipe["dataset"],
            "split": recipe["eval_split"],
            "notes": recipe.get("dataset_notes", ""),
        },
        metrics=metrics,
        references=recipe["references"],
        num_params=num_params,
        license=recipe["license"],
        recipe={
            "command": command,
            "notes": json.dumps(recipe_hyperparameters(recipe), sort_keys=True),
            **cost,
        },
        golden=golden_record(golden, atol=recipe.get("golden_atol", 1e-4)),
        library_versions=library_versions(),
        notes=recipe.get("notes") or None,
    )


def build_model(recipe: dict):
    import zoo

    kind = recipe.get("kind", "classifier")
    if kind == "classifier":
        return zoo.build(
            recipe["architecture"],
            num_classes=len(recipe["labels"]),
            input_shape=tuple(recipe["input_shape"]),
            **recipe["builder_kwargs"],
        )
    if kind == "text_classifier":
        return zoo.build(
            recipe["architecture"], num_classes=len(recipe["labels"]), **recipe["builder_kwargs"]
        )
    return zoo.build(recipe["architecture"], **recipe["builder_kwargs"])


def jit_compile_of(recipe: dict) -> bool:
    """The recipe's ``jit_compile`` on TensorFlow; XLA is JAX's compiled path, and PyTorch runs uncompiled."""
    import keras

    backend = keras.backend.backend()
    return recipe.get("jit_compile", True) if backend == "tensorflow" else backend == "jax"


def compile_for_training(model, recipe: dict, steps_per_epoch: int):
    """Compile ``model`` as the recipe trains it; returns the model to fit (float32 logits when mixed)."""
    import keras

    kind = recipe.get("kind", "classifier")
    if kind not in ("classifier", "text_classifier", "charlm"):
        compile_generative(model, recipe, steps_per_epoch)
        return model
    if model.compute_dtype != "float32" and len(model.outputs) == 1:
        # Mixed precision: the loss gets float32 logits; the layers (and weights) stay shared.
        logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")
        model = keras.Model(model.inputs, logits(model.outputs[0]), name=model.name)
    if recipe.get("label_smoothing"):
        loss = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=recipe["label_smoothing"]
        )
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=make_optimizer(recipe, recipe["epochs"] * steps_per_epoch),
        loss=loss,
        metrics=[] if kind == "charlm" else ["accuracy"],
        jit_compile=jit_compile_of(recipe),
    )
    fit_ready(model)  # several TensorFlow workers: see zoo.train.distribute
    return model


def compile_generative(model, recipe: dict, steps_per_epoch: int) -> None:
    import keras

    from zoo.train.schedules import OneCycle

    opt = recipe["optimizer"]
    if recipe["kind"] == "vae":
        model.dynamic_binarization = recipe["dynamic_binarization"]
        model.kl_warmup_steps = recipe["kl_warmup_epochs"] * steps_per_epoch
        schedule = OneCycle(opt["max_lr"], recipe["epochs"] * steps_per_epoch, pct_start=opt["pct_start"])
        model.compile(optimizer=keras.optimizers.Adam(schedule), jit_compile=False)
    elif recipe["kind"] == "dcgan":
        model.compile(
            d_optimizer=keras.optimizers.Adam(opt["lr"], beta_1=opt["beta_1"]),
            g_optimizer=keras.optimizers.Adam(opt["lr"], beta_1=opt["beta_1"]),
            jit_compile=False,
        )
    else:
        raise SystemExit(f"unknown recipe kind {recipe['kind']}")


def golden_pair(model, recipe: dict, data_dir: str | None):
    """Return the golden inputs and the model's outputs on them."""
    import keras
    import numpy as np

    kind = recipe.get("kind", "classifier")
    if kind == "dcgan":
        x = np.random.default_rng(0).standard_normal((8, model.latent_dim)).astype("float32")
    elif kind == "charlm":
        windows = build_dataset(recipe, recipe["eval_split"], train=False, data_dir=data_dir)
        x = np.asarray(next(iter(windows))[0][:4, :64])
    else:
        test = build_dataset(recipe, recipe["eval_split"], train=False, data_dir=data_dir)
        x, _ = next(iter(test))
        x = np.asarray(x[:8])
        if kind == "vae":
            from zoo.tasks.generative_metrics import binarize

            x = binarize(x, seed=0)
    return x, keras.ops.convert_to_numpy(model(x, training=False))  # every backend


def train_model(model, recipe: dict, name: str, run_dir: Path, data_dir: str | None) -> None:
    import keras

    import zoo.data
    from zoo.train.schedules import EpochTimer, plot_history, resumable_fit

    log = run_dir / "log.csv"
    settings = run_dir / "recipe.json"
    current = resume_settings(recipe)
    if not (run_dir / "backup").exists():
        log.unlink(missing_ok=True)  # a fresh run, not a resumed one
    elif settings.exists() and settings.read_text() != current:
        raise SystemExit(
            f"{name}: the recipe (or --epochs, or the Keras backend) changed since {run_dir} was "
            "checkpointed; resuming would mix two trainings. Restore the old settings to resume, "
            f"or delete {run_dir / 'backup'} to start again"
        )
    settings.write_text(current)
    done_epochs = align_log(log, run_dir / "backup")
    train = build_dataset(recipe, "train", train=True, data_dir=data_dir, initial_epoch=done_epochs)
    kind = recipe.get("kind", "classifier")
    if kind == "charlm":
        steps_per_epoch = int(train.cardinality())
    else:
        steps_per_epoch = zoo.data.info(recipe["dataset"]).splits["train"] // recipe["batch_size"]
    model = compile_for_training(model, recipe, steps_per_epoch)
    validation = None
    if recipe.get("monitor_eval_split"):  # curves only: the number of epochs is fixed
        validation = build_dataset(recipe, recipe["eval_split"], train=False, data_dir=data_dir)
    if recipe.get("label_smoothing"):
        train = one_hot_labels(train, len(recipe["labels"]))
        if validation is not None:
            validation = one_hot_labels(validation, len(recipe["labels"]))
    start = time.time()
    resumable_fit(
        model,
        train,
        epochs=recipe["epochs"],
        validation=validation,
        checkpoint_dir=run_dir / "backup",
        verbose=2,
        callbacks=[EpochTimer(), keras.callbacks.CSVLogger(str(log), append=True)],
    )
    print(f"trained in {time.time() - start:.0f} s", flush=True)
    history = read_log(log)
    plot_history(history, run_dir / "curves.png", title=name)
    (run_dir / "history.json").write_text(json.dumps(history))


def align_log(log: Path, backup: Path) -> int:
    """The number of epochs a resumed run has done, with its log cut back to them.

    The backup's epoch counter decides: the data order of the next epoch follows it. Keras
    writes the log row of an epoch before the backup, so an interruption between the two leaves
    one row of an epoch that will run again; it is removed. A log with fewer rows than the
    backup has epochs (one replaced while the run wrote to it) cannot be mended here.
    """
    lines = log.read_bytes().splitlines(keepends=True) if log.exists() else []
    logged = max(len(lines) - 1, 0)  # less the header
    meta = backup / "training_metadata.json"
    if not meta.exists():
        return logged
    done = int(json.loads(meta.read_text())["epoch"])
    if logged < done:
        raise SystemExit(
            f"{log} has {logged} epoch rows but the checkpoint in {backup} has {done} epochs: the "
            f"log lost rows. Restore them (e.g. from the run's console output) or delete {backup} "
            f"to start again"
        )
    if logged > done:
        with atomic_path(log) as tmp:
            tmp.write_bytes(b"".join(lines[: done + 1]))
    return done


def read_log(path: Path) -> dict[str, list[float]]:
    """Read the CSVLogger file of a run (all its resumed parts) as a history dict."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    history = {
        k: [float("nan") if r[k] in ("", "NA") else float(r[k]) for r in rows]
        for k in (rows[0] if rows else {})
        if k != "epoch"
    }
    return {k: v for k, v in history.items() if any(x == x for x in v)}  # drop all-NaN columns


def prepare_text_recipe(recipe: dict, folder: Path, data_dir: str | None) -> list[str]:
    """Build the word vocabulary from the training split and write it as ``folder/vocab.txt``.

    The recipe's preprocessing gets the vocabulary inline (for training); the
    packaged record points at ``vocab.txt``. Returns the vocabulary.
    """
    import zoo.data
    from zoo.preprocessing.specs import build_vocab

    texts = [
        e["text"].numpy().decode("utf-8")
        for e in zoo.data.load(recipe["dataset"], "train", data_dir=data_dir)
    ]
    spec = recipe["preprocessing"]
    vocab = build_vocab(
        texts, spec["tokenizer"], lowercase=spec["lowercase"], min_count=recipe["vocab"]["min_count"]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".vocab.txt.tmp"
    tmp.write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    os.replace(tmp, folder / "vocab.txt")
    recipe["packaged_preprocessing"] = {**spec, "vocab": "vocab.txt"}
    recipe["preprocessing"] = {**spec, "vocab": vocab}
    recipe["builder_kwargs"] = {**recipe["builder_kwargs"], "vocab_size": len(vocab)}
    return vocab


def init_word_embeddings(model, vocab: list[str], init: dict) -> None:
    """Set the ``embedding`` rows of ``vocab``'s words from a pretrained sentence encoder.

    Each word is encoded on its own by ``init["from"]`` (for all-MiniLM-L6-v2: masked
    mean pooling of its last layer, L2-normalised), and the vectors are scaled to
    standard deviation ``init["std"]``. The padding and unknown rows stay zero.
    """
    import numpy as np

    import zoo.tasks.embed

    specials = init["skip_first"]
    vectors = np.zeros((len(vocab), model.get_layer("embedding").output_dim), "float32")
    vectors[specials:] = np.asarray(
        zoo.tasks.embed.encode(vocab[specials:], model=init["from"], batch_size=256)
    )
    vectors[specials:] *= init["std"] / vectors[specials:].std()
    model.get_layer("embedding").set_weights([vectors])


def save_packaged_weights(model, recipe: dict, path: Path) -> None:
    """Write only the model's own variables (no optimizer state) atomically to ``path``.

    With ``recipe["storage_dtype"] == "float16"`` the float32 arrays are stored as
    float16, which halves the file; Keras casts them back to the float32 variables
    on load, and the metrics are measured on the loaded copy.
    """
    fresh = build_model(recipe)
    fresh.set_weights(model.get_weights())
    tmp = path.with_name(f".{path.name.removesuffix('.weights.h5')}.tmp.weights.h5")
    fresh.save_weights(tmp)
    if recipe.get("storage_dtype") == "float16":
        store_as_float16(tmp)
    os.replace(tmp, path)


def store_as_float16(path: Path) -> None:
    """Rewrite a ``.weights.h5`` file with its float32 arrays stored as float16."""
    import h5py
    import numpy as np

    def copy(src, dst) -> None:
        dst.attrs.update(src.attrs)
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(key))
            else:
                data = item[()]
                if getattr(data, "dtype", None) == np.float32:
                    data = data.astype(np.float16)
                dst.create_dataset(key, data=data).attrs.update(item.attrs)

    tmp = path.with_name(path.name + ".f16")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        copy(src, dst)
    os.replace(tmp, path)


def choose_compute(args: argparse.Namespace) -> dict:
    """Measure the recipe's training step per backend and precision; set the fastest backend up.

    The choice is kept in ``runs/NAME/compute.json``: a resumed run (one with a backup)
    reuses it instead of measuring again. The backend must be chosen before Keras is
    imported; a process where Keras already runs on another backend is refused.
    """
    try:  # imported as tools.train (tests, with the checkout on the path)
        from tools import compute
    except ImportError:  # run as a script: python tools/train.py
        import compute

    if args.distribute != "none":
        raise SystemExit("--compute fastest measures and trains in one process: not with --distribute")
    if args.record_only or args.repackage:
        raise SystemExit(
            "--compute fastest chooses how to train: --record-only and --repackage train nothing, so drop one"
        )
    name, recipe, candidates = args.name, RECIPES[args.name], args.candidates
    run_dir = ROOT / "runs" / name
    stored = run_dir / "compute.json"
    if (run_dir / "backup").exists() and stored.exists():
        choice = json.loads(stored.read_text())
        print(
            f"{name}: resuming with the measured choice {choice['backend']}:{choice['precision']}", flush=True
        )
    else:
        wanted = compute.parse_candidates(candidates) if candidates else compute.candidates_for(recipe)
        if not wanted:
            raise SystemExit(f"{name}: --compute fastest measures image classifier recipes only")
        print(f"{name}: measuring a training step on {', '.join(wanted)}", flush=True)
        step_ms = compute.measure(recipe, wanted, args.measure_steps)
        backend, precision = compute.fastest(step_ms)
        choice = {"backend": backend, "precision": precision, "step_ms": step_ms}
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(stored) as tmp:
            tmp.write_text(json.dumps(choice, indent=2, sort_keys=True) + "\n")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != choice["backend"]:
            raise SystemExit(
                f"{name}: {choice['backend']} measured fastest, but Keras already runs on "
                f"{keras.backend.backend()} in this process; run KERAS_BACKEND={choice['backend']} "
                f"python tools/train.py {name} --compute fastest"
            )
    else:
        os.environ["KERAS_BACKEND"] = choice["backend"]
    print(f"{name}: training on {choice['backend']} in {choice['precision']}", flush=True)
    return choice


def apply_overrides(recipe: dict, args: argparse.Namespace) -> None:
    """Apply ``--epochs`` and ``--augment`` to ``recipe`` (a copy of the registered one)."""
    if args.epochs:
        recipe["epochs"] = args.epochs
    if args.augment:
        if not recipe.get("augment"):
            raise SystemExit(f"{args.name}: --augment is for recipes that augment images")
        recipe["augment"] = {"name": args.augment}


def override_flags(args: argparse.Namespace) -> str:
    """The overrides as they go into the recorded command, so that it reproduces the weights."""
    return (f" --epochs {args.epochs}" if args.epochs else "") + (
        f" --augment {args.augment}" if args.augment else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Train a zoo recipe and package its weights.")
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (not for packaging)")
    parser.add_argument(
        "--augment",
        choices=sorted(AUGMENTATIONS),
        help="override an image recipe's augmentation (recorded in the manifest's command)",
    )
    parser.add_argument("--data-dir", help="data directory (default: ZOO_DATA_DIR)")
    parser.add_argument("--no-manifest", action="store_true", help="train and evaluate only")
    parser.add_argument(
        "--distribute",
        choices=DISTRIBUTE,
        default="none",
        help="data-parallel training as zoo finetune does it (JAX: keras.distribution, several "
        "processes from KERAS_DISTRIBUTION_*; TensorFlow: tf.distribute, several workers from TF_CONFIG); "
        "process 0 packages the weights",
    )
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="skip training: re-measure and re-record the packaged weights",
    )
    parser.add_argument(
        "--repackage",
        action="store_true",
        help="skip training: store the packaged weights again in the recipe's storage_dtype (after it "
        "changed), then re-measure and re-record them; the recorded training cost is kept",
    )
    parser.add_argument(
        "--compute",
        choices=("recipe", "fastest"),
        default="recipe",
        help="train in the recipe's precision on the active backend, or measure a training step on "
        "every backend and precision (tools/compute.py) and train with the fastest; a resumed run "
        "keeps the choice it measured",
    )
    parser.add_argument("--candidates", help="with --compute fastest: comma-separated backend:precision")
    parser.add_argument("--measure-steps", type=int, default=5, help="with --compute fastest: timed steps")
    args = parser.parse_args()
    chosen = choose_compute(args) if args.compute == "fastest" else None
    join_processes(args.distribute)  # before anything starts a backend's computation

    import keras
    import numpy as np

    from zoo.models._common import count_parameters
    from zoo.tasks.evaluate import evaluate, evaluate_model
    from zoo.weights.manifest import file_record, upsert_entries

    recipe = dict(RECIPES[args.name])
    kind = recipe.get("kind", "classifier")
    if args.distribute != "none" and kind not in ("classifier", "text_classifier", "charlm"):
        raise SystemExit(f"{args.name}: --distribute trains classifiers and the character model, not {kind}s")
    apply_overrides(recipe, args)
    if chosen is not None:
        recipe.update(
            backend=chosen["backend"], precision=chosen["precision"], compute_step_ms=chosen["step_ms"]
        )
    if recipe.get("storage_dtype", "float32") not in ("float32", "float16"):  # before hours of training
        raise SystemExit(f"unknown storage_dtype {recipe['storage_dtype']!r}: use float32 or float16")
    keras.utils.set_random_seed(recipe["seed"])
    run_dir = ROOT / "runs" / args.name
    if process_index():  # the other processes of a distributed run checkpoint apart from process 0
        run_dir = run_dir / f"process-{process_index()}"
    run_dir.mkdir(parents=True, exist_ok=True)

    folder = ROOT / "zoo" / "pretrained" / args.name
    weights = folder / f"{args.name}.weights.h5"
    files = [weights]
    if kind == "text_classifier":
        vocab = prepare_text_recipe(recipe, folder, args.data_dir)
        files.append(folder / "vocab.txt")
    elif kind == "charlm":
        import zoo.tasks.language_model

        vocab = zoo.tasks.language_model.char_vocab(
            zoo.tasks.language_model.load_text(recipe["dataset"], "train", data_dir=args.data_dir)
        )
        recipe["preprocessing"] = zoo.tasks.language_model.char_spec(vocab)
        recipe["builder_kwargs"] = {**recipe["builder_kwargs"], "vocab_size": len(vocab)}
    if args.record_only or args.repackage:
        model = build_model(recipe)
        model.load_weights(weights)
        cost = training_cost(args.name, recipe, file_record(weights, "keras.weights.h5")["sha256"])
        if args.repackage:  # the same trained values, stored in the recipe's storage_dtype
            save_packaged_weights(model, recipe, weights)
            model = build_model(recipe)
            model.load_weights(weights)
    else:
        keras.mixed_precision.set_global_policy(recipe.get("precision", "float32"))
        try:
            with distribution_scope(args.distribute):
                model = build_model(recipe)
                if recipe.get("embedding_init"):
                    init_word_embeddings(model, vocab, recipe["embedding_init"])
                train_model(model, recipe, args.name, run_dir, args.data_dir)
        finally:
            keras.mixed_precision.set_global_policy("float32")  # package and measure in float32
        if process_index():
            print(f"process {process_index()}: trained; process 0 packages the weights", flush=True)
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        save_packaged_weights(model, recipe, weights)
        model = build_model(recipe)  # measure exactly what was packaged
        model.load_weights(weights)
        cost = training_cost(args.name, recipe)

    x, outputs = golden_pair(model, recipe, args.data_dir)
    golden = folder / f"{args.name}.golden.npz"
    np.savez(golden, inputs=x, outputs=outputs)

    command = f"python tools/train.py {shlex.quote(args.name)}{override_flags(args)}"
    if args.no_manifest:
        if kind in ("classifier", "text_classifier"):
            from zoo.tasks.classify import classification_metrics

            test = build_dataset(recipe, recipe["eval_split"], train=False, data_dir=args.data_dir)
            print(classification_metrics(model, test))
        else:
            record = package_record(
                args.name, recipe, folder, files, golden, count_parameters(model), [], command, cost
            )
            from zoo.weights.manifest import WeightsEntry

            entry = WeightsEntry.from_dict(args.name, record)
            print(evaluate_model(model, entry, data_dir=args.data_dir))
        return 0
    record = package_record(
        args.name, recipe, folder, files, golden, count_parameters(model), [], command, cost
    )
    upsert_entries({args.name: record})
    start = time.time()
    measured = evaluate(args.name, data_dir=args.data_dir)
    print(f"{args.name}: {measured} (evaluated in {time.time() - start:.0f} s)", flush=True)
    if kind in ("classifier", "text_classifier"):
        metric_name, _ = recipe["primary_metric"]
        names = [metric_name] + [k for k in ("top1_accuracy",) if k != metric_name]
    else:
        names = recipe["metric_names"]
    record["metrics"] = [
        {
            "name": k,
            "value": round(float(measured[k]), 4),
            "split": recipe["eval_split"],
            "dataset": recipe["dataset"],
            "command": f"zoo evaluate {args.name}",
            "higher_is_better": HIGHER_IS_BETTER[k],
        }
        for k in names
    ]
    upsert_entries({args.name: record})
    assert file_record(weights, "keras.weights.h5")["sha256"] == record["files"][0]["sha256"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
