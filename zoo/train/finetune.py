"""``zoo finetune`` as a library call: data in, a ready model folder out.

Image classifiers go through :func:`zoo.train.engine.fine_tune`; BERT text models
(entries with WordPiece preprocessing) through :func:`finetune_text`, which
tokenises with the entry's vocabulary and pads each batch to its longest text.

The folder holds ``model.keras`` (loads with :func:`zoo.load_keras` in safe
mode), ``card.json`` (a record in the weights manifest's format, with the metric
measured on the validation split) and ``curves.png``. Checkpoints under
``checkpoints/`` let an interrupted run resume; every output is written
atomically.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo import outputs
from zoo._lazy import quiet_logger
from zoo.data.pipeline import table_columns
from zoo.errors import DataError, InputError
from zoo.preprocessing.bind import local_text_spec, wordpiece_spec
from zoo.tasks.text_classify import text_dataset
from zoo.train.distribute import check_distribute, distribution_scope, join_processes
from zoo.train.engine import ENCODER_LR_DIVISOR, fine_tune_text

#: Data with only a train split is cut into this many folds; the first is held out to validate.
HOLDOUT_FOLDS = 10


def held_out_splits(
    data: str, data_dir: str | None, columns: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """``(train, held_out, info)``: the part of labelled ``data`` to train on and the part to hold out.

    Each part is a split (``{"split": ...}``, with ``"kfold"`` where it is a fold of a dataset
    without splits): the validation split where there is one, else the test split, else a
    tensorflow-datasets slice of train, else fold 0 of :data:`HOLDOUT_FOLDS`.

    Raises:
        DataError: For data without labels, or with too few examples to hold one fold out.
    """
    import zoo.data
    from zoo.data.tfds_source import is_tfds_string

    info = zoo.data.info(data, data_dir=data_dir, **columns)
    if not info.label_names:
        raise DataError(f"{data!r} has no labels to fine-tune on")
    tfds = is_tfds_string(data)
    if tfds and not info.splits:  # tfds knows a dataset's splits once it has prepared it
        zoo.data.load(data, "train", data_dir=data_dir)  # downloads and prepares it when needed
        info = zoo.data.info(data, data_dir=data_dir)
    splits = info.splits
    if "validation" in splits:
        return {"split": "train"}, {"split": "validation"}, info
    if "test" in splits and "train" in splits:
        return {"split": "train"}, {"split": "test"}, info
    if tfds:  # tfds slices a split itself, the same way every time
        if "train" not in splits:
            raise DataError(f"{data!r} has no train split to fine-tune on (it has {', '.join(splits)})")
        held = f"{100 // HOLDOUT_FOLDS}%"
        return {"split": f"train[{held}:]"}, {"split": f"train[:{held}]"}, info
    count = splits.get("train")
    if count is not None and count < HOLDOUT_FOLDS:
        raise DataError(
            f"{data!r} has {count} usable example(s); with no validation split, fine-tuning holds "
            f"one in {HOLDOUT_FOLDS} out to validate and needs at least {HOLDOUT_FOLDS}: add examples, "
            "or give the folder train/ and validation/ sub-folders"
        )
    fold = (HOLDOUT_FOLDS, 0)
    return {"split": "train", "kfold": fold}, {"split": "test", "kfold": fold}, info


def _pipeline(
    data: str,
    spec: dict[str, Any],
    *,
    split: dict[str, Any],
    batch_size: int,
    limit: int | None,
    seed: int,
    train: bool,
    data_dir: str | None,
    columns: dict[str, Any],
    cache_file: Path | None = None,
) -> Any:
    import tensorflow as tf

    import zoo.data

    # A subset is drawn from the shuffled file names or arrays, before anything is decoded, and
    # only the subset is cached; with ``cache_file`` the decoded images are cached on disk, so
    # memory does not grow with the number of images.
    ds = zoo.data.load(
        data,
        split["split"],
        kfold=split.get("kfold"),
        preprocessing=spec,
        as_supervised=True,
        data_dir=data_dir,
        shuffle=bool(limit),
        seed=seed,
        **columns,
    )
    if limit:
        ds = ds.take(limit)
    ds = ds.cache(str(cache_file) if cache_file is not None else "")
    if train or limit:
        # One pass now fills the cache: a later pass (or a distributed copy) reads this very
        # subset, and a training set of known length lets checkpoints land inside epochs.
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda n, *_: n + 1))
    if train:
        return EpochBatches(ds, count, batch_size, seed, buffer=10_000 if not limit else limit)
    return ds.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)  # token ids padded with 0


class EpochBatches:
    """A training set's batches as a function of the epoch, for :func:`zoo.train.engine.fine_tune`.

    Each epoch's order is a function of ``(seed, epoch)``, so a resumed run sees the
    same batches. ``count`` is the number of examples.
    """

    def __init__(self, ds: Any, count: int, batch_size: int, seed: int, *, buffer: int) -> None:
        import tensorflow as tf

        self.ds = ds.apply(tf.data.experimental.assert_cardinality(count))
        self.count, self.batch_size, self.seed, self.buffer = count, batch_size, seed, buffer

    def __call__(self, epoch: int) -> Any:
        """The batches of ``epoch``."""
        import tensorflow as tf

        seed = self.seed * 1_000_003 + epoch
        order = self.ds.shuffle(self.buffer, seed=seed, reshuffle_each_iteration=False)
        return order.padded_batch(self.batch_size).prefetch(tf.data.AUTOTUNE)

    def carve(self, fraction: float) -> tuple[EpochBatches, Any]:
        """Hold back ``fraction`` of the examples (a fixed random draw): ``(the rest, held-back batches)``."""
        held = min(self.count - 1, max(1, round(self.count * fraction)))
        mixed = self.ds.shuffle(self.count, seed=self.seed + 7919, reshuffle_each_iteration=False)
        rest = EpochBatches(
            mixed.skip(held), self.count - held, self.batch_size, self.seed, buffer=self.buffer
        )
        return rest, mixed.take(held).padded_batch(self.batch_size)


def _data_fingerprint(
    data: str, data_dir: str | None, columns: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What identifies the training data: a folder's files, a table file's content, or a dataset name.

    A folder is known by its files' names, sizes and times; a CSV/TSV/JSONL file by its sha256;
    table columns other than the default (:func:`table_columns`) are part of it.
    """
    if columns:
        return {**_data_fingerprint(data, data_dir), "columns": dict(columns)}
    import hashlib

    from zoo.fileio import sha256_file

    folder = Path(os.path.expanduser(str(data)))
    if folder.is_file():  # a CSV/TSV/JSONL table: rows edited in place keep its name
        return {"file": str(folder.resolve()), "sha256": sha256_file(folder)}
    if folder.is_dir():
        digest = hashlib.sha256()
        count = 0
        for root, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                rel = path.relative_to(folder).as_posix().encode("utf-8", "surrogateescape")
                digest.update(rel + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                count += 1
        return {"folder": str(folder.resolve()), "files": count, "sha256": digest.hexdigest()}
    from zoo.data import resolve_data_dir

    return {"dataset": str(data), "data_dir": str(resolve_data_dir(data_dir) or "")}


def check_settings(
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    fine_tune_learning_rate: float | None = None,
    unfreeze: int | str,
    max_train: int | None,
    max_val: int | None,
    seed: int,
    strategy: str,
    save_every_steps: int | None,
) -> None:
    """Refuse settings that cannot train, with a message that says what to pass instead."""
    import math

    def whole(value: Any, low: int, high: int, what: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{what} must be a whole number from {low} to {high}, got {value!r}")

    whole(epochs, 1, 10_000, "epochs")
    whole(batch_size, 1, 65_536, "batch_size")
    whole(seed, 0, 2**32 - 1, "seed")
    for value, what in (
        (max_train, "max_train"),
        (max_val, "max_val"),
        (save_every_steps, "save_every_steps"),
    ):
        if value is not None:
            whole(value, 1, 2**31 - 1, what)
    if unfreeze not in ("all", "auto"):
        whole(unfreeze, 0, 10_000, "unfreeze (or 'all' or 'auto')")
    rates = [(learning_rate, "learning rate")]
    if fine_tune_learning_rate is not None:
        rates.append((fine_tune_learning_rate, "fine-tune learning rate"))
    for rate, what in rates:
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not (math.isfinite(rate) and 0 < rate <= 10)
        ):
            raise InputError(f"{what} must be a finite number in (0, 10], got {rate!r}")
    strategies = ("two_phase", "probe", "head", "full")
    if strategy not in strategies:
        raise InputError(f"strategy must be one of {', '.join(strategies)}, got {strategy!r}")


#: The arguments of :func:`finetune` that define a run (and must match to resume it).
_RUN_KEYS = (
    "epochs",
    "strategy",
    "distribute",
    "batch_size",
    "learning_rate",
    "fine_tune_learning_rate",
    "unfreeze",
    "max_train",
    "max_val",
    "seed",
    "save_every_steps",
)


def _run_settings(
    *, distribute: str | None, max_val: int | None, save_every_steps: int | None, **settings: Any
) -> dict[str, Any]:
    """The settings a fine-tune records and resumes by, checked; joins a multi-process run's others."""
    check_settings(max_val=max_val, save_every_steps=save_every_steps, **settings)
    join_processes(distribute)  # before anything starts JAX's backend
    return {**settings, "distribute": check_distribute(distribute)}


def _run_inputs(
    entry: Any,
    data: str,
    data_dir: str | None,
    settings: dict[str, Any],
    weights: str | None,
    max_val: int | None,
    columns: dict[str, Any],
    out: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, Any], Any, dict[str, Any]]:
    """Splits and dataset info of ``data`` (at least two classes), and the inputs a run resumes by."""
    _check_out_outside_data(out, data)
    train_split, val_split, info = held_out_splits(data, data_dir, columns)
    _check_kind(entry, info, data)
    _check_classes(info.label_names, data)
    inputs = {
        "base": entry.name,
        "weights": weights,
        "data": _data_fingerprint(data, data_dir, columns),
        "max_val": max_val,
        **settings,
    }
    return train_split, val_split, info, inputs


def _check_out_outside_data(out: str | os.PathLike[str], data: str) -> None:
    """Refuse an output folder inside the data folder: its files would join the data it trains on."""
    from zoo.data.pipeline import data_reference

    folder = Path(data_reference(data))  # absolute for a path; a dataset's name stays relative
    if not (folder.is_absolute() and folder.is_dir()):
        return
    target = Path(out).expanduser().resolve()
    if target == folder or folder in target.parents:
        raise InputError(
            f"--out {str(out)!r} lies inside the data folder {str(data)!r}: the fine-tune's files "
            "(curves.png among them) would become part of the data it trains on; choose an output folder "
            "outside it"
        )


def _check_kind(entry: Any, info: Any, data: str) -> None:
    """Refuse images for a text model and texts for an image model, before any output is made."""
    kind = entry.preprocessing.get("type")
    holds = "image" if info.task.startswith("image") else "text"
    article = {"image": "an", "text": "a"}
    if kind != holds:
        raise DataError(
            f"{entry.name} takes {kind}s, but {str(data)!r} holds {holds}s: fine-tune {article[holds]} "
            f"{holds} classifier on it (zoo list --task {holds}-classification), or give {entry.name} "
            + ("a folder of images" if kind == "image" else "texts (.txt files in class folders, or a CSV)")
        )


def _check_classes(labels: list[str] | tuple[str, ...] | None, data: str) -> None:
    if not labels or len(labels) < 2:
        raise DataError(
            f"{data!r} has {len(labels or [])} class(es); fine-tuning a classifier needs at least 2 "
            "(one sub-folder per class)"
        )


def _reset_head(model: Any) -> None:
    """Re-initialise the ``head`` layer: a new task always starts from a fresh head."""
    import keras

    head = model.get_layer("head")
    head.kernel.assign(head.kernel_initializer(head.kernel.shape))
    head.bias.assign(keras.ops.zeros(head.bias.shape))


def _write_model_files(folder: Any, model: Any, spec: dict[str, Any]) -> tuple[list[dict], dict[str, Any]]:
    """Write ``model.keras`` (and a text model's ``vocab.txt``); return their file records and the spec."""
    import keras

    from zoo.weights.manifest import file_record

    if getattr(model, "optimizer", None) is not None and getattr(model, "inputs", None):
        # the same layers in an uncompiled model: model.keras carries no optimizer state
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    with folder.write("model.keras") as tmp:
        model.save(tmp)
    files = [file_record(folder.path / "model.keras", "keras")]
    if spec.get("type") == "text" and isinstance(spec.get("vocab"), str):
        with folder.write("vocab.txt") as tmp:
            shutil.copyfile(spec["vocab"], tmp)
        spec = {**spec, "vocab": "vocab.txt"}  # the card names only files that are in the folder
        files.append(file_record(folder.path / "vocab.txt", "vocab"))
    return files, spec


def _write_curves(folder: Any, history: dict[str, Any], title: str) -> bool:
    """Write ``curves.png`` (``True``); without matplotlib, say how to get it and write none."""
    from zoo.errors import MissingDependencyError
    from zoo.train.schedules import plot_history

    try:
        with folder.write("curves.png") as tmp:
            plot_history(history, tmp, title=title)
    except MissingDependencyError as exc:
        print(f"note: no curves.png: {exc}", file=sys.stderr)
        return False
    return True


def _held_out_notes(val_split: dict[str, Any], max_val: int | None) -> str:
    """How the held-out examples were drawn, so that the metric can be measured again."""
    notes = []
    if val_split.get("kfold"):
        k, fold = val_split["kfold"]
        notes.append(f"held-out fold {fold} of {k} (zoo.data.load(..., kfold=({k}, {fold})))")
    if max_val:
        notes.append(f"validation subset {max_val}")
    return "; ".join(notes)


def _card(
    out: Path,
    entry: Any,
    model: Any,
    files: list[dict],
    spec: dict[str, Any],
    labels: list[str],
    data: str,
    held_out: tuple[dict[str, Any], int | None, dict[str, Any]],
    metrics: dict[str, float],
    settings: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    """The fine-tuned model's ``card.json``: a manifest record, validated by the manifest's parser.

    ``held_out`` is the validation split, its subset size and the table columns it was read from.
    """
    from zoo.data.pipeline import data_reference
    from zoo.models._common import count_parameters
    from zoo.weights.manifest import library_versions
    from zoo.weights.records import make_record

    val_split, max_val, columns = held_out
    where = data_reference(data)
    metric = {
        "name": "top1_accuracy",
        "value": round(metrics["top1_accuracy"], 4),
        "split": val_split["split"],
        "dataset": where,
        "command": command,
        "higher_is_better": True,
        **({"num_examples": int(metrics["num_examples"])} if "num_examples" in metrics else {}),
    }
    return make_record(
        architecture=entry.architecture,
        tag="finetuned",
        default=False,
        description=f"{entry.name} fine-tuned on {where} ({settings['strategy']})",
        files=files,
        sources=[{"type": "local", "path": str(out.resolve())}],
        builder_kwargs=entry.builder_kwargs,
        input_shape=None if spec.get("type") == "text" else list(model.input_shape[1:]),
        num_classes=len(labels),
        labels=labels,
        preprocessing=spec,
        dataset={
            "name": where,
            "split": val_split["split"],
            "notes": _held_out_notes(val_split, max_val),
            **({"kfold": list(val_split["kfold"])} if val_split.get("kfold") else {}),
            **(
                {"columns": {"text": columns["text_column"], "label": columns["label_column"]}}
                if columns
                else {}
            ),
        },
        metrics=[metric],
        references=[],
        num_params=count_parameters(model),
        license=entry.license,
        recipe={"command": command, "notes": json.dumps({"base": entry.name, **settings}, sort_keys=True)},
        library_versions=library_versions(),
    )


def _write_folder(
    folder: Any,
    *,
    name: str,
    data: str,
    entry: Any,
    model: Any,
    history: dict[str, Any],
    metrics: dict[str, float],
    spec: dict[str, Any],
    labels: list[str],
    val_split: dict[str, Any],
    max_val: int | None,
    columns: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Write ``model.keras``, ``curves.png`` and the ``card.json`` of a fine-tuned model, atomically.

    A text spec whose vocabulary is a file gets that file copied into the folder
    (``vocab.txt``), so the card names only files that are there. ``settings`` are
    the run's arguments, recorded in the card's recipe notes.
    """
    out = folder.path
    files, spec = _write_model_files(folder, model, spec)
    curves = _write_curves(folder, history, title=f"{name} on {data}")
    command = (
        "zoo finetune " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if (len(sys.argv) > 1 and sys.argv[1] == "finetune")
        else f"zoo.finetune({name!r}, {data!r})"
    )
    held_out = (val_split, max_val, columns)
    card = _card(out, entry, model, files, spec, labels, data, held_out, metrics, settings, command)
    _write_hub_files(folder, card, entry, curves)
    with folder.write("card.json") as tmp:  # written last: a folder with a card is a finished run
        Path(tmp).write_text(json.dumps(card, indent=2, sort_keys=True))
    folder.drop_dir("checkpoints")
    return _summary(folder, metrics, history)


def _summary(folder: Any, metrics: dict[str, float], history: dict[str, Any]) -> dict[str, Any]:
    """What a fine-tune returns: the folder's paths, the held-out metrics and the history."""
    curves = folder.path / "curves.png"
    return {
        "model": str(folder.path / "model.keras"),
        "card": str(folder.path / "card.json"),
        "curves": str(curves) if curves.is_file() else None,
        "metrics": metrics,
        "history": history,
    }


def _finished(folder: Any) -> dict[str, Any] | None:
    """The summary of a run that already finished in ``folder`` (same inputs), else ``None``."""
    if not (folder.resumed and folder.owns("card.json")):
        return None
    card = json.loads((folder.path / "card.json").read_text(encoding="utf-8"))
    metric = card["metrics"][0]
    print(
        f"{folder.path} already holds this fine-tune (same data and settings); nothing to do", file=sys.stderr
    )
    metrics = {"top1_accuracy": metric["value"], "top1_error": 100.0 - metric["value"]}
    if "num_examples" in metric:
        metrics["num_examples"] = metric["num_examples"]
    return _summary(folder, metrics, {})


def _base_model(entry: Any) -> dict[str, Any]:
    """Where the starting weights came from: the zoo entry, and its Hub repo and revision if any."""
    base: dict[str, Any] = {"zoo": entry.name, "sha256": [f.sha256 for f in entry.files]}
    hub = next((src for src in entry.sources if src.type == "hf"), None)
    if hub is not None:
        base.update(repo_id=hub.repo_id, revision=hub.revision)
    return base


def _named_datasets() -> set[str]:
    from zoo.data import list_datasets

    return set(list_datasets())


def _write_hub_files(folder: Any, card: dict[str, Any], entry: Any, curves: bool) -> None:
    """``config.json`` and a ``README.md`` model card with the Hub's YAML metadata."""
    from zoo.tasks import task_of

    base = _base_model(entry)
    config = {
        "library_name": "zoo",
        "architecture": card["architecture"],
        "builder_kwargs": card["builder_kwargs"],
        "input_shape": card["input_shape"],
        "num_classes": card["num_classes"],
        "labels": card["labels"],
        "preprocessing": card["preprocessing"],
        "base_model": base,
        "files": {f["filename"]: f["sha256"] for f in card["files"]},
    }
    with folder.write("config.json") as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    metric = card["metrics"][0]
    task = task_of(entry)
    front = {
        "library_name": "zoo",
        "tags": ["zoo", "keras", task],
        "pipeline_tag": task,
        **({"base_model": base["repo_id"]} if "repo_id" in base else {}),
        **({"datasets": [card["dataset"]["name"]]} if card["dataset"]["name"] in _named_datasets() else {}),
        "metrics": ["accuracy"],
    }
    lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in front.items()), "---", ""]
    count = f" on {metric['num_examples']:,} examples" if "num_examples" in metric else ""
    split = f"{metric['dataset']} {metric['split']} (held out: never trained on, never used to pick weights)"
    lines += [
        f"# {card['description']}",
        "",
        f"Fine-tuned with `zoo` from `{entry.name}`. Load it with",
        '`zoo.load("hf://OWNER/NAME@REVISION")` (or `zoo.load("./FOLDER")` from disk): every file',
        "is checked against its sha256 in `card.json` first. After `import zoo`,",
        "`keras.saving.load_model` loads `model.keras` too.",
        "",
        "| metric | value | split |",
        "|---|---|---|",
        f"| top-1 accuracy | {metric['value']:.2f}%{count} | {split} |",
        "",
        f"Labels: {', '.join(card['labels'])}. Reproduce: `{card['recipe']['command']}`.",
    ]
    phase2 = json.loads(card["recipe"]["notes"]).get("phase2")
    if phase2:
        blocks = "every block" if phase2["unfreeze"] == "all" else f"the top {phase2['unfreeze']} blocks"
        lines += [
            "",
            f"Phase 2 trained {blocks} at learning rate {phase2['learning_rate']:g}, "
            f"chosen by {phase2['chosen_by']}.",
        ]
    if curves:
        lines += ["", "![training curves](curves.png)"]
    with folder.write("README.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8", errors="backslashreplace")


def finetune(
    name: str,
    data: str,
    out: str | os.PathLike[str],
    *,
    epochs: int = 10,
    strategy: str = "two_phase",
    distribute: str | None = None,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
    unfreeze: int | str = "auto",
    max_train: int | None = None,
    max_val: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    weights: str | None = "default",
    save_every_steps: int | None = None,
    verbose: Any = "auto",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fine-tune a zoo model on a dataset and write a ready model folder.

    ``out`` follows :mod:`zoo.outputs`: a new or empty folder becomes the zoo's; the same data
    and settings resume the run in it; others are refused unless ``overwrite`` (which replaces
    only the zoo's own files). A non-finite loss raises :class:`zoo.errors.TrainingError`.

    Args:
        name: Zoo model or weights name (``"lenet5"``, ``"resnet20.cifar10"``).
        data: Named dataset, ``tfds:NAME`` or a folder ``root/[<split>/]<label>/*`` (no splits: 90/10).
        out: Output folder (created; an interrupted run in it resumes).
        epochs: Total epochs (``"two_phase"`` spends them all after its linear probe).
        strategy: ``"two_phase"``, ``"probe"``, ``"head"`` or ``"full"`` (see ``fine_tune``).
        distribute: ``None``, ``"data-parallel"`` or ``"mirrored"`` (:mod:`zoo.train.distribute`).
        batch_size: Global batch size.
        learning_rate: Adam learning rate of the probe, the head and ``"full"`` (not of phase 2).
        fine_tune_learning_rate: SGD rate of ``"two_phase"``'s phase 2 (not for BERT encoders).
        unfreeze: Top blocks unfrozen in phase 2, ``"all"``, or ``"auto"`` (:func:`choose_phase2`).
        max_train: Use a fixed random subset of this many training examples.
        max_val: Use a fixed random subset of this many validation examples.
        seed: Seed of subsets, shuffling and initialisation.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        text_column: CSV/TSV/JSONL data only: the column holding the text.
        label_column: CSV/TSV/JSONL data only: the column holding the label.
        weights: Starting weights (``"default"``, a tag, or ``None`` to train from scratch).
        save_every_steps: Checkpoint every N steps as well as every epoch.
        verbose: Passed to ``fit``.
        overwrite: Replace the zoo's own earlier output in ``out`` made from other inputs.

    Returns:
        A summary: output paths, the validation metric and the history.
    """
    args = {k: v for k, v in locals().items() if k in _RUN_KEYS}  # the run's settings
    from zoo import api

    spec_entry = api.weights_entry(name)  # preprocessing comes from the pretrained entry
    kind = spec_entry.preprocessing.get("type")
    given = {"weights": weights, "verbose": verbose, "data_dir": data_dir}
    if kind == "text" and spec_entry.preprocessing.get("tokenizer") == "wordpiece":
        columns = {"text_column": text_column, "label_column": label_column}
        return finetune_text(name, data, out, **args, **given, **columns, overwrite=overwrite)
    if kind not in ("image", "text") or spec_entry.num_classes is None:
        raise InputError(f"zoo finetune supports image and text classifiers; {name} is neither")
    settings = _run_settings(**args)
    columns = table_columns(text_column, label_column)
    train_split, val_split, info, inputs = _run_inputs(
        spec_entry, data, data_dir, settings, weights, max_val, columns, out
    )
    splits, run = (train_split, val_split, info), (settings, max_val, columns, save_every_steps)
    with outputs.output_folder(out, command="finetune", inputs=inputs, overwrite=overwrite) as folder:
        return _finished(folder) or _finetune_image(
            folder, name, data, spec_entry, kind, splits, *run, **given
        )


def _start_model(entry: Any, kind: str, weights: str | None, labels: tuple[str, ...], **top: Any) -> Any:
    """The model to fine-tune: the entry's weights with a fresh head, or its architecture from scratch.

    A fine-tuned folder given data of its own labels continues with its own head. ``top``
    goes to the builder (``include_top=True`` for the BERT encoders, whose default is off).
    """
    from zoo import api

    num_classes = len(labels)
    if weights is None:
        shape = {} if kind == "text" else {"input_shape": entry.input_shape}
        kwargs = {**shape, **top, **dict(entry.builder_kwargs)}
        return api.load(entry.architecture, weights=None, num_classes=num_classes, **kwargs)
    model = api.load(entry.name, num_classes=num_classes, **top)
    if api.model_folder(entry.name) is None or tuple(entry.labels or ()) != tuple(labels):
        _reset_head(model)
    return model


def _train_and_val(
    model: Any,
    data: str,
    entry: Any,
    kind: str,
    splits: tuple[dict, dict],
    settings: dict[str, Any],
    max_val: int | None,
    source: tuple[str | None, dict[str, Any]],
    cache: Path | None,
) -> tuple[dict[str, Any], Any, Any]:
    """The preprocessing spec, the per-epoch training batches and the validation batches.

    ``source`` is the data directory and the table columns (:func:`table_columns`).
    """
    import zoo.data

    train_split, val_split = splits
    seed, batch_size = settings["seed"], settings["batch_size"]
    data_dir, columns = source
    common = {"seed": seed, "data_dir": data_dir, "columns": columns}
    if kind == "text":  # word/char ids with the entry's own vocabulary
        spec = local_text_spec(entry)
    else:  # the entry's own preprocessing, resized to the model's input when the data differs
        spec = zoo.data.fit_spec(
            data,
            val_split["split"],
            dict(entry.preprocessing),
            tuple(model.input_shape[1:3]),
            kfold=val_split.get("kfold"),
            data_dir=data_dir,
        )
    train = _pipeline(
        data,
        spec,
        split=train_split,
        batch_size=batch_size,
        limit=settings["max_train"],
        train=True,
        cache_file=cache / "train" if cache else None,
        **common,
    )
    val = _pipeline(
        data,
        spec,
        split=val_split,
        batch_size=batch_size,
        limit=max_val,
        train=False,
        cache_file=cache / "validation" if cache else None,
        **common,
    )
    return spec, train, val


#: Phase-2 settings ``unfreeze="auto"`` chooses from, as (top blocks unfrozen, SGD learning rate);
#: the first is used where no choice is made.
PHASE2_CANDIDATES: tuple[tuple[int | str, float], ...] = ((2, 0.02), ("all", 0.04), (2, 0.08))
#: ``"auto"`` chooses on a split carved from training sets of at most this many examples.
SELECT_MAX_TRAIN = 10_000
#: ... and of at least this many (fewer leave no held-back examples worth choosing on).
SELECT_MIN_TRAIN = 10
#: The share of the training set held back to choose on (the final run trains on all of it).
SELECT_FRACTION = 0.2


def _held_back_scores(model: Any, held: Any) -> dict[str, float]:
    """Top-1 accuracy (percent) and mean loss of ``model`` on the held-back batches."""
    import keras

    from zoo.tasks.classify import classification_metrics
    from zoo.train.engine import default_loss

    # an eager call: a compiled predict function per trial model would be traced again each time
    metrics = classification_metrics(
        model,
        held,
        lambda x: keras.ops.convert_to_numpy(model(x, training=False)),
        loss=default_loss(model),
    )
    return {"accuracy": round(metrics["top1_accuracy"], 4), "loss": round(metrics["loss"], 6)}


def choose_phase2(
    make_model: Callable[[], Any],
    train: EpochBatches,
    settings: dict[str, Any],
    *,
    record: Path,
    verbose: Any,
) -> tuple[int | str, float, dict[str, Any]]:
    """Choose ``"two_phase"``'s phase-2 setting on training examples held back from every trial.

    Each of :data:`PHASE2_CANDIDATES` (with ``settings["fine_tune_learning_rate"]``, when
    given, as every candidate's rate) fine-tunes a fresh model on the rest of the training
    set with the run's epochs and seed; the highest accuracy on the held-back
    :data:`SELECT_FRACTION` wins, the lower loss breaking ties, then the earlier
    candidate. Training sets over :data:`SELECT_MAX_TRAIN` or under :data:`SELECT_MIN_TRAIN`
    examples, and distributed runs, take the first candidate untried. Each trial's scores go
    to ``record`` as they come, so an interrupted choice resumes.

    Returns:
        ``(unfreeze, learning_rate, selection)``: the choice and what it was chosen on.
    """
    from zoo.fileio import atomic_path

    rate = settings["fine_tune_learning_rate"]
    candidates = list(dict.fromkeys((u, rate or r) for u, r in PHASE2_CANDIDATES))
    reason = _no_choice(len(candidates), train.count, settings["distribute"])
    if reason:
        unfreeze, lr = candidates[0]
        return unfreeze, lr, {"chosen_by": f"default ({reason})"}
    fit, held = train.carve(SELECT_FRACTION)
    held_back = train.count - fit.count
    scores: dict[str, dict[str, float]] = json.loads(record.read_text()) if record.is_file() else {}
    if verbose:
        print(
            f"choosing phase 2 among {len(candidates)} settings on {held_back} held-back training examples",
            file=sys.stderr,
        )
    keys = [_key(u, r) for u, r in candidates]
    for (unfreeze, lr), key in zip(candidates, keys, strict=True):
        if key not in scores:
            scores[key] = _trial(make_model, fit, held, settings, unfreeze, lr)
            with atomic_path(record) as tmp:
                tmp.write_text(json.dumps(scores, indent=1))
        if verbose:
            score = scores[key]
            print(
                f"  unfreeze {unfreeze}, lr {lr:g}: {score['accuracy']:.2f}% (loss {score['loss']:.4f})",
                file=sys.stderr,
            )
    best = min(range(len(keys)), key=lambda i: (-scores[keys[i]]["accuracy"], scores[keys[i]]["loss"], i))
    unfreeze, lr = candidates[best]
    if verbose:
        print(f"  chosen: unfreeze {unfreeze}, lr {lr:g}; now training on all {train.count}", file=sys.stderr)
    selection = {
        "chosen_by": f"accuracy on {held_back} held-back training examples (then loss)",
        "scores": {key: scores[key] for key in keys},
    }
    return unfreeze, lr, selection


def _key(unfreeze: int | str, lr: float) -> str:
    return f"{unfreeze}@{lr:g}"


def _no_choice(candidates: int, examples: int, distribute: str) -> str | None:
    """Why the first candidate is taken untried, or ``None`` when the candidates are tried."""
    if candidates == 1:
        return "one candidate"
    if examples > SELECT_MAX_TRAIN:
        return f"over {SELECT_MAX_TRAIN:,} training examples"
    if examples < SELECT_MIN_TRAIN:
        return f"under {SELECT_MIN_TRAIN} training examples"
    return "a distributed run" if distribute != "none" else None


def _trial(
    make_model: Callable[[], Any],
    fit: EpochBatches,
    held: Any,
    settings: dict[str, Any],
    unfreeze: int | str,
    lr: float,
) -> dict[str, float]:
    """Fine-tune a fresh model on ``fit`` with one phase-2 setting; score it on ``held``."""
    import keras

    from zoo.train.engine import fine_tune

    keras.utils.set_random_seed(settings["seed"])
    with quiet_logger("tensorflow"):  # each trial's new model traces its own predict function, once
        model = make_model()
        fine_tune(
            model,
            fit,
            None,
            epochs=settings["epochs"],
            learning_rate=settings["learning_rate"],
            fine_tune_learning_rate=lr,
            unfreeze=unfreeze,
            verbose=0,
        )
        return _held_back_scores(model, held)


def _finetune_image(
    folder: Any,
    name: str,
    data: str,
    spec_entry: Any,
    kind: str,
    splits: tuple[dict, dict, Any],
    settings: dict[str, Any],
    max_val: int | None,
    columns: dict[str, Any],
    save_every_steps: int | None,
    *,
    weights: str | None,
    verbose: Any,
    data_dir: str | None,
) -> dict[str, Any]:
    import keras

    from zoo.tasks.classify import classification_metrics
    from zoo.train.engine import fine_tune

    train_split, val_split, info = splits
    keras.utils.set_random_seed(settings["seed"])
    with distribution_scope(settings["distribute"]):
        model = _start_model(spec_entry, kind, weights, tuple(info.label_names))
        cache = folder.scratch_dir("cache") if kind != "text" else None
        source = (data_dir, columns)
        spec, train, val = _train_and_val(
            model, data, spec_entry, kind, splits[:2], settings, max_val, source, cache
        )
        unfreeze, rate = settings["unfreeze"], settings["fine_tune_learning_rate"]
        checkpoints = folder.own_dir("checkpoints")
        if unfreeze == "auto" and settings["strategy"] == "two_phase":
            unfreeze, rate, selection = choose_phase2(
                lambda: _start_model(spec_entry, kind, weights, tuple(info.label_names)),
                train,
                settings,
                record=checkpoints / "selection.json",
                verbose=verbose,
            )
            settings = {**settings, "phase2": {"unfreeze": unfreeze, "learning_rate": rate, **selection}}
            keras.utils.set_random_seed(settings["seed"])  # the final run starts as every trial did
            model = _start_model(spec_entry, kind, weights, tuple(info.label_names))
        elif unfreeze == "auto":
            unfreeze = PHASE2_CANDIDATES[0][0]
        result = fine_tune(
            model,
            train,
            val,
            strategy=settings["strategy"],
            epochs=settings["epochs"],
            learning_rate=settings["learning_rate"],
            fine_tune_learning_rate=rate,
            unfreeze=unfreeze,
            checkpoint_dir=checkpoints,
            save_every_steps=save_every_steps,
            verbose=verbose,
        )

    metrics = classification_metrics(result.model, val)
    if cache:
        folder.drop_dir("cache")
    return _write_folder(
        folder,
        name=name,
        data=data,
        entry=spec_entry,
        model=result.model,
        history=result.history,
        metrics=metrics,
        spec=spec,
        labels=list(info.label_names),
        val_split=val_split,
        max_val=max_val,
        columns=columns,
        settings=settings,
    )


# --------------------------------------------------------------------------------------
# Text: BERT encoders with a sequence-classification head
# --------------------------------------------------------------------------------------


def finetune_text(
    name: str,
    data: str,
    out: str | os.PathLike[str],
    *,
    epochs: int = 3,
    strategy: str = "two_phase",
    distribute: str | None = None,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
    unfreeze: int | str = "all",
    max_train: int | None = None,
    max_val: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    weights: str | None = "default",
    save_every_steps: int | None = None,
    verbose: Any = "auto",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fine-tune a BERT entry as a text classifier and write a ready model folder.

    Texts are tokenised with the entry's vocabulary (its preprocessing spec,
    truncation included) and each batch is padded to its longest text. The
    classifier is the builders' top (dropout, ``pre_logits``, ``head`` on the
    pooled ``[CLS]`` output), with a fresh head. See :func:`fine_tune_text` for
    the strategies; the arguments are those of :func:`finetune`.

    Returns:
        A summary: output paths, the validation metric and the history.
    """
    args = {k: v for k, v in locals().items() if k in _RUN_KEYS}  # the run's settings
    from zoo import api

    if fine_tune_learning_rate is not None:
        raise InputError(
            f"{name} is a BERT encoder: it fine-tunes with AdamW at learning_rate/{ENCODER_LR_DIVISOR}; "
            "set the learning rate instead of the fine-tune learning rate"
        )
    if unfreeze == "auto":  # BERT's recipe: every encoder layer, at the encoder learning rate
        args["unfreeze"] = "all"
    settings = _run_settings(**args)
    entry = api.weights_entry(name)
    spec = wordpiece_spec(entry)
    columns = table_columns(text_column, label_column)
    train_split, val_split, info, inputs = _run_inputs(
        entry, data, data_dir, settings, weights, max_val, columns, out
    )
    with outputs.output_folder(out, command="finetune", inputs=inputs, overwrite=overwrite) as folder:
        return _finished(folder) or _finetune_text_in(
            folder,
            name,
            data,
            entry,
            spec,
            train_split,
            val_split,
            info,
            settings,
            weights=weights,
            max_val=max_val,
            data_dir=data_dir,
            columns=columns,
            save_every_steps=save_every_steps,
            verbose=verbose,
        )


def _finetune_text_in(
    folder: Any,
    name: str,
    data: str,
    entry: Any,
    spec: dict,
    train_split: dict,
    val_split: dict,
    info: Any,
    settings: dict[str, Any],
    *,
    weights: str | None,
    max_val: int | None,
    data_dir: str | None,
    columns: dict[str, Any],
    save_every_steps: int | None,
    verbose: Any,
) -> dict[str, Any]:
    import math

    import keras

    from zoo.tasks.classify import classification_metrics

    seed, batch_size, max_train = settings["seed"], settings["batch_size"], settings["max_train"]
    distribute = settings["distribute"]
    keras.utils.set_random_seed(seed)
    with distribution_scope(distribute):
        model = _start_model(entry, "text", weights, tuple(info.label_names), include_top=True)
        kw = {"spec": spec, "batch_size": batch_size, "seed": seed, "data_dir": data_dir, **columns}
        train = text_dataset(
            data,
            split=train_split["split"],
            kfold=train_split.get("kfold"),
            shuffle=True,
            limit=max_train,
            per_epoch=True,
            **kw,
        )
        val = text_dataset(data, split=val_split["split"], kfold=val_split.get("kfold"), limit=max_val, **kw)
        n_train = info.splits.get(train_split["split"]) or sum(1 for _ in train(0).unbatch())
        steps = math.ceil((min(n_train, max_train) if max_train else n_train) / batch_size)
        history = fine_tune_text(
            model,
            train,
            val,
            strategy=settings["strategy"],
            epochs=settings["epochs"],
            learning_rate=settings["learning_rate"],
            unfreeze=settings["unfreeze"],
            steps_per_epoch=steps,
            checkpoint_dir=folder.own_dir("checkpoints"),
            save_every_steps=save_every_steps,
            # Encoders trained to embed sentences (mean pooling) fine-tune best as they were trained.
            contrastive=entry.builder_kwargs.get("pooling") == "mean",
            verbose=verbose,
        )
    metrics = classification_metrics(model, val)
    return _write_folder(
        folder,
        name=name,
        data=data,
        entry=entry,
        model=model,
        history=history,
        metrics=metrics,
        spec=spec,
        labels=list(info.label_names),
        val_split=val_split,
        max_val=max_val,
        columns=columns,
        settings=settings,
    )
