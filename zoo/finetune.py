"""``zoo finetune`` as a library call: data in, a ready model folder out.

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
import sys
from pathlib import Path
from typing import Any

from zoo.errors import DataError, InputError

DISTRIBUTE = ("none", "mirrored", "multiworker")


def get_strategy(distribute: str | None) -> Any:
    """Return the ``tf.distribute`` strategy named ``distribute`` (default strategy for ``None``).

    ``"mirrored"`` replicates over the local devices; ``"multiworker"`` uses
    ``MultiWorkerMirroredStrategy`` configured by the ``TF_CONFIG`` environment variable.
    """
    import tensorflow as tf

    if distribute in (None, "none"):
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if distribute == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise InputError("--distribute multiworker needs TF_CONFIG describing the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InputError(f"distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")


def adapt_preprocessing(spec: dict[str, Any], produced_hw: tuple[int, int],
                        input_hw: tuple[int | None, int | None]) -> dict[str, Any]:
    """Make a weights entry's image spec produce the model's input size on new data.

    When the entry's spec already yields ``input_hw`` it is kept; otherwise the
    image is resized straight to the input size (no crop, no pad).
    """
    if None in input_hw or tuple(produced_hw) == tuple(input_hw):
        return dict(spec)
    return {**spec, "resize": list(input_hw), "center_crop": None, "pad_to": None}


def _splits(data: str, data_dir: str | None) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import zoo.data

    info = zoo.data.info(data, data_dir=data_dir)
    if not info.label_names:
        raise DataError(f"{data!r} has no labels to fine-tune on")
    splits = info.splits
    if "validation" in splits:
        return {"split": "train"}, {"split": "validation"}, info
    if "test" in splits and "train" in splits:
        return {"split": "train"}, {"split": "test"}, info
    return {"split": "train", "kfold": (10, 0)}, {"split": "test", "kfold": (10, 0)}, info


def _pipeline(data: str, spec: dict[str, Any], *, split: dict[str, Any], batch_size: int,
              limit: int | None, seed: int, train: bool, data_dir: str | None) -> Any:
    import tensorflow as tf

    import zoo.data

    ds = zoo.data.load(data, split["split"], kfold=split.get("kfold"), preprocessing=spec,
                       as_supervised=True, data_dir=data_dir)
    if limit:
        ds = ds.shuffle(100_000, seed=seed, reshuffle_each_iteration=False).take(limit)
    ds = ds.cache()
    if train:  # each epoch's order is a function of (seed, epoch): a resumed run sees the same batches
        buffer = 10_000 if not limit else limit
        # Count once (this fills the cache): with a known length, checkpoints land inside epochs.
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda n, *_: n + 1))
        ds = ds.apply(tf.data.experimental.assert_cardinality(count))

        def epoch_batches(epoch: int) -> Any:
            order = ds.shuffle(buffer, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
            return order.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return epoch_batches
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _atomic_write(path: Path, write: Any) -> None:
    # A fixed temporary name: a run killed while writing leaves at most this one file, which
    # the resumed run overwrites and renames.
    tmp = str(path.with_name(f".{path.name}.tmp{path.suffix}"))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    unfreeze: int | str = 2,
    max_train: int | None = None,
    max_val: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    weights: str | None = "default",
    save_every_steps: int | None = None,
    verbose: Any = "auto",
) -> dict[str, Any]:
    """Fine-tune a zoo model on a dataset and write a ready model folder.

    Args:
        name: Zoo model or weights name (``"lenet5"``, ``"resnet20.cifar10"``).
        data: Named dataset, ``tfds:NAME`` or a folder (``root/<label>/*`` or
            ``root/<split>/<label>/*``); folders without splits use a fixed 90/10 split.
        out: Output folder (created; an interrupted run in it resumes).
        epochs: Total epochs (split over the two phases of ``"two_phase"``).
        strategy: ``"two_phase"``, ``"head"`` or ``"full"`` (see :func:`zoo.transfer.fine_tune`).
        distribute: ``None``, ``"mirrored"`` or ``"multiworker"``.
        batch_size: Global batch size.
        learning_rate: Learning rate of the head phase (phase 2 uses a tenth).
        unfreeze: Top backbone blocks unfrozen in phase 2, or ``"all"``.
        max_train: Use a fixed random subset of this many training examples.
        max_val: Use a fixed random subset of this many validation examples.
        seed: Seed of subsets, shuffling and initialisation.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        weights: Starting weights (``"default"``, a tag, or ``None`` to train from scratch).
        save_every_steps: Checkpoint every N steps as well as every epoch.
        verbose: Passed to ``fit``.

    Returns:
        A summary: output paths, the validation metric and the history.
    """
    import keras
    import numpy as np

    from zoo import api
    from zoo.evaluate import classification_metrics
    from zoo.manifest import WeightsEntry, file_record, library_versions
    from zoo.models._common import count_parameters
    from zoo.training import plot_history
    from zoo.transfer import fine_tune

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_entry = api.weights_entry(name)  # preprocessing comes from the pretrained entry
    if spec_entry.preprocessing.get("type") != "image":
        raise InputError(f"zoo finetune supports image classifiers for now; {name} is not one")
    train_split, val_split, info = _splits(data, data_dir)
    num_classes = len(info.label_names)
    keras.utils.set_random_seed(seed)

    with get_strategy(distribute).scope():
        if weights is None:
            model = api.load(spec_entry.architecture, weights=None, num_classes=num_classes,
                             input_shape=spec_entry.input_shape)
        else:
            model = api.load(spec_entry.name, num_classes=num_classes)
            head = model.get_layer("head")  # always a fresh head for a new task
            head.kernel.assign(head.kernel_initializer(head.kernel.shape))
            head.bias.assign(np.zeros(head.bias.shape, "float32"))
        input_hw = tuple(model.input_shape[1:3])
        probe = _pipeline(data, dict(spec_entry.preprocessing), split=val_split, batch_size=1,
                          limit=None, seed=seed, train=False, data_dir=data_dir)
        produced = tuple(next(iter(probe))[0].shape[1:3])
        spec = adapt_preprocessing(dict(spec_entry.preprocessing), produced, input_hw)
        train = _pipeline(data, spec, split=train_split, batch_size=batch_size, limit=max_train,
                          seed=seed, train=True, data_dir=data_dir)
        val = _pipeline(data, spec, split=val_split, batch_size=batch_size, limit=max_val,
                        seed=seed, train=False, data_dir=data_dir)
        result = fine_tune(model, train, val, strategy=strategy, epochs=epochs,
                           learning_rate=learning_rate, unfreeze=unfreeze,
                           checkpoint_dir=out / "checkpoints", save_every_steps=save_every_steps,
                           verbose=verbose)

    metrics = classification_metrics(result.model, val)
    model_path = out / "model.keras"
    _atomic_write(model_path, lambda tmp: result.model.save(tmp))
    curves = out / "curves.png"
    plot_history({k: v for k, v in result.history.items() if k != "phase"}, curves,
                 title=f"{name} on {data}")
    command = "zoo finetune " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if (
        len(sys.argv) > 1 and sys.argv[1] == "finetune") else f"zoo.finetune({name!r}, {data!r})"
    card = {
        "architecture": spec_entry.architecture,
        "tag": "finetuned",
        "default": False,
        "description": f"{spec_entry.name} fine-tuned on {data} ({strategy})",
        "files": [file_record(model_path, "keras")],
        "sources": [{"type": "local", "path": str(out.resolve())}],
        "builder_kwargs": dict(spec_entry.builder_kwargs),
        "input_shape": list(model.input_shape[1:]),
        "num_classes": num_classes,
        "labels": list(info.label_names),
        "preprocessing": spec,
        "dataset": {"name": str(data), "split": val_split["split"],
                    "notes": f"validation subset {max_val}" if max_val else ""},
        "metrics": [{"name": "top1_accuracy", "value": round(metrics["top1_accuracy"], 4),
                     "split": val_split["split"], "dataset": str(data), "command": command,
                     "higher_is_better": True}],
        "references": [],
        "num_params": count_parameters(result.model),
        "license": spec_entry.license,
        "recipe": {"command": command, "notes": json.dumps(
            {"base": spec_entry.name, "epochs": epochs, "strategy": strategy,
             "batch_size": batch_size, "learning_rate": learning_rate, "unfreeze": unfreeze,
             "max_train": max_train, "seed": seed, "distribute": distribute or "none"},
            sort_keys=True)},
        "library_versions": library_versions(),
    }
    WeightsEntry.from_dict(f"{spec_entry.architecture}.finetuned", card)  # validate the card
    card_path = out / "card.json"
    _atomic_write(card_path, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2,
                                                                         sort_keys=True)))
    return {"model": str(model_path), "card": str(card_path), "curves": str(curves),
            "metrics": metrics, "history": result.history}
