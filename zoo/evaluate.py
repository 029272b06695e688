"""Measure a weights entry's metric the way the manifest records it.

``zoo evaluate NAME`` and ``tools/train.py`` both call :func:`evaluate`, so the
number in the manifest is reproduced by the same code that produced it.
"""

from __future__ import annotations

import os
from typing import Any

from zoo.errors import InputError
from zoo.manifest import WeightsEntry


def classification_metrics(model: Any, dataset: Any) -> dict[str, float]:
    """Top-1 accuracy and error (percent) of ``model`` on a batched ``(x, y)`` dataset."""
    import numpy as np

    correct = total = 0
    for x, y in dataset:
        logits = model(x, training=False)
        pred = np.argmax(np.asarray(logits), axis=-1)
        correct += int(np.sum(pred == np.asarray(y)))
        total += int(pred.shape[0])
    if total == 0:
        raise InputError("the evaluation dataset is empty")
    accuracy = 100.0 * correct / total
    return {"top1_accuracy": accuracy, "top1_error": 100.0 - accuracy, "num_examples": total}


def evaluate_model(
    model: Any,
    entry: WeightsEntry,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Evaluate ``model`` on the entry's dataset (or ``data``) with the entry's preprocessing.

    Args:
        model: The model to measure.
        entry: Weights entry giving task, dataset, split and preprocessing.
        data: Another dataset (named, ``tfds:...`` or a folder) with the same labels.
        split: Split to use; defaults to the entry's split.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        batch_size: Evaluation batch size.

    Returns:
        Metric name -> value.
    """
    import zoo.data

    if entry.preprocessing.get("type") != "image":
        raise InputError(f"{entry.name}: evaluation of {entry.preprocessing.get('type')} models "
                         "is not available yet")
    dataset = zoo.data.load(
        str(data or entry.dataset["name"]),
        split or entry.dataset["split"],
        batch_size=batch_size,
        preprocessing=dict(entry.preprocessing),
        as_supervised=True,
        data_dir=data_dir,
    )
    return classification_metrics(model, dataset)


def evaluate(
    name: str,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Load verified weights by name and measure them on their dataset.

    Args:
        name: Weights or architecture name (``"lenet5"``, ``"lenet5.mnist"``).
        data: Another dataset with the same labels (named, ``tfds:...`` or a folder).
        split: Split to use; defaults to the manifest's split.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        batch_size: Evaluation batch size.

    Returns:
        Metric name -> value, e.g. ``{"top1_accuracy": 99.2, "top1_error": 0.8, ...}``.
    """
    from zoo.api import load, weights_entry

    entry = weights_entry(name)
    model = load(entry.name)
    return evaluate_model(model, entry, data=data, split=split, data_dir=data_dir,
                          batch_size=batch_size)
