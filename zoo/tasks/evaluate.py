"""Measure a weights entry's metrics the way the manifest records them.

``zoo evaluate NAME`` and ``tools/train.py`` both call :func:`evaluate`, so the
numbers in the manifest are reproduced by the same code that produced them.
The measurement depends on the architecture's task:

* ``image-classification``: top-1 accuracy and error on the entry's split (single view;
  ``tta="flip"`` averages each image's outputs with its mirror image's, reported apart).
* ``image-generation``: the protocols of :mod:`zoo.generative_metrics`, with
  the constants below. A VAE gets its importance-sampled test negative
  log-likelihood and ELBO on the test images binarised once with
  ``numpy.random.default_rng(BINARIZATION_SEED)``; every generative model gets
  the LeNet-5 Frechet distance, confident fraction and class coverage of
  as many samples (latent seed ``SAMPLE_SEED``) as there are test images, and
  the real-vs-real floor of the same distance (the first ``len(test)``
  training images against the test images).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from zoo.errors import DataError, InputError
from zoo.tasks.classify import (
    classification_metrics,
    data_split,
    label_mapping,
    own_data_options,
    with_model_labels,
)
from zoo.weights.manifest import WeightsEntry

#: Test-time augmentations of image classifiers: ``"flip"`` averages the outputs of each image
#: and its left-right mirror image.
TTA_MODES = ("flip",)

#: Importance samples per test image of the VAE likelihood (Burda et al. use 5000).
IS_NUM_SAMPLES = 1000
#: Seed of the latent noise of the importance sampler.
IS_SEED = 0
#: Seed of the fixed Bernoulli binarisation of the test images.
BINARIZATION_SEED = 0
#: Seed of the latent vectors of the generated images scored by ``fid_lenet5``.
SAMPLE_SEED = 0


def evaluate_model(
    model: Any,
    entry: WeightsEntry,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    forward: Callable[[Any], Any] | None = None,
    tta: str | None = None,
    columns: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` on the entry's dataset (or ``data``) with the entry's preprocessing.

    Args:
        model: The model to measure.
        entry: Weights entry giving task, dataset, split and preprocessing.
        data: Another dataset (named, ``tfds:...`` or a folder) with the same labels.
        split: Split to use; defaults to the entry's split.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        batch_size: Evaluation batch size.
        forward: Image and text classifiers: runs a batch of model inputs in place of
            the model's compiled forward function (e.g. :func:`zoo.export.onnx_forward`).
        tta: Image classifiers: ``"flip"`` scores the mean of the outputs (logits or
            probabilities, as the model gives them) of each image and its mirror image, a
            test-time-augmented figure to report beside the single-view one, never instead.
        columns: Text classifiers on CSV/TSV/JSONL ``data``: ``zoo.data.load``'s ``text_column``
            and ``label_column``.

    Returns:
        Metric name -> value (for character language models, whose preprocessing
        is a ``char`` text spec: ``nats_per_char``, ``bits_per_char`` and
        ``num_chars`` from :func:`zoo.tasks.language_model.evaluate_charlm`).
    """
    import zoo.data
    from zoo.tasks import task_of

    task = task_of(entry)
    if forward is not None and task not in ("image-classification", "text-classification"):
        raise InputError(f"{entry.name} is a {task} model: only classifiers run outside Keras")
    if tta is not None:
        _check_tta(entry.name, task, tta)
    text = task == "text-classification" or entry.preprocessing.get("type") == "text"
    if columns and (task == "language-modeling" or not text):
        raise InputError(f"{entry.name} is a {task} model: table columns are for text classifiers")
    if task == "language-modeling":
        from zoo.tasks.language_model import evaluate_charlm

        return evaluate_charlm(model, entry, data=data, split=split, data_dir=data_dir, batch_size=batch_size)
    if text:
        from zoo.tasks.text_classify import evaluate_text

        options = {"data": data, "split": split, "data_dir": data_dir, "batch_size": batch_size}
        return evaluate_text(model, entry, **options, columns=columns, forward=forward)
    if task == "image-generation":
        return generation_metrics(model, entry, data=data, split=split, data_dir=data_dir)
    if task != "image-classification":
        raise InputError(f"{entry.name}: evaluation of {task} models is not available yet")
    name = str(data or entry.dataset["name"])
    mapping, options = None, own_data_options(entry) if data is None else {}
    if data is not None:
        info = zoo.data.info(name, data_dir=data_dir)
        split = data_split(entry, info, split)
        mapping = label_mapping(info.label_names, entry.labels, name, entry.name)
    dataset = zoo.data.load(
        name,
        split or entry.dataset["split"],
        batch_size=batch_size,
        preprocessing=dict(entry.preprocessing),
        as_supervised=True,
        data_dir=data_dir,
        **options,
    )
    dataset = with_model_labels(dataset, mapping)
    if tta == "flip":
        from zoo.tasks.inference import predict_fn

        forward = flip_averaged(forward or predict_fn(model))
    return classification_metrics(model, dataset, forward)


def recorded_metrics(
    entry: WeightsEntry,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    num_examples: int | None = None,
) -> dict[str, float]:
    """The entry's recorded metrics that an evaluation on ``data``'s ``split`` reproduces.

    A figure is comparable only when measured on the same data and split: a train-split
    accuracy is not the manifest's test figure. ``data`` naming the entry's own dataset
    counts as its own, except a held-out fold (only ``data=None`` evaluates on the fold).
    A figure that records its number of examples compares only with an evaluation of as
    many (a fine-tune scored on a ``max_val`` subset is not the whole split's figure).
    """
    from zoo.data.pipeline import data_reference

    if data is not None and ("kfold" in entry.dataset or data_reference(data) != entry.dataset["name"]):
        return {}
    evaluated = split or entry.dataset["split"]
    return {
        m.name: m.value
        for m in entry.metrics
        if m.split == evaluated
        and m.dataset == entry.dataset["name"]
        and (m.num_examples is None or num_examples is None or m.num_examples == num_examples)
    }


def evaluation_split(
    entry: WeightsEntry,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    columns: dict[str, Any] | None = None,
) -> str:
    """The split :func:`evaluate` scores ``entry`` on, without loading anything.

    ``split`` when given; else the entry's own split name, on other ``data`` the split
    :func:`zoo.tasks.classify.data_split` chooses there (the entry's split name where the data
    has it, else its only split).

    Raises:
        DataError: Other ``data`` has several splits, none of the entry's name: choose one.
    """
    import zoo.data
    from zoo.tasks import task_of

    if split is not None:
        return split
    if data is None:
        return str(entry.dataset["split"])
    columns = columns if task_of(entry) == "text-classification" else None  # evaluate refuses them
    info = zoo.data.info(str(data), data_dir=None if data_dir is None else str(data_dir), **(columns or {}))
    chosen = data_split(entry, info, None)
    if info.splits and chosen not in info.splits:  # tfds counts splits once it has prepared them
        raise DataError(
            f"{data} has no {chosen!r} split, the one {entry.name} was measured on; choose one of its "
            f"splits with --split (split= in Python): {', '.join(info.splits)}"
        )
    return chosen


def _check_own_data_is_readable(entry: WeightsEntry) -> None:
    """Refuse, before the weights load, an entry whose own dataset zoo.data cannot read (ImageNet)."""
    import zoo.data
    from zoo.data.tfds_source import is_tfds_string

    name = str(entry.dataset["name"])
    if name in zoo.data.list_datasets() or is_tfds_string(name) or os.path.isabs(name):
        return
    raise DataError(
        f"{entry.name} was measured on {name} ({entry.dataset['split']}), which zoo.data cannot read; "
        f"evaluate it on other data with its labels: --data FOLDER (root/<label>/ images, the folders "
        f"named after its {entry.num_classes} labels, which 'zoo info {entry.name} --json' lists)"
    )


def _check_tta(name: str, task: str, tta: str) -> None:
    if task != "image-classification" or tta not in TTA_MODES:
        raise InputError(
            f"test-time augmentation {tta!r} is not available for {name} ({task}); "
            f"image classifiers take one of {', '.join(TTA_MODES)}"
        )


def flip_averaged(forward: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``forward`` made to return the mean of its outputs on a batch ``(N, H, W, C)`` and its mirror image."""
    import numpy as np

    def both(x: Any) -> Any:
        x = np.asarray(x)
        mirrored = np.ascontiguousarray(x[:, :, ::-1])  # PyTorch takes no negative strides
        return (np.asarray(forward(x)) + np.asarray(forward(mirrored))) / 2

    return both


def _images(name: str, split: str, data_dir: str | os.PathLike[str] | None) -> Any:
    """Return every image of a split as one uint8 array ``(n, H, W, C)``, in dataset order."""
    import numpy as np

    import zoo.data

    batches = [
        np.asarray(x)
        for x, _ in zoo.data.load(name, split, batch_size=10000, as_supervised=True, data_dir=data_dir)
    ]
    if not batches:
        raise InputError(f"{name} {split} is empty")
    return np.concatenate(batches)


def generation_metrics(
    model: Any,
    entry: WeightsEntry,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    num_samples: int = IS_NUM_SAMPLES,
    progress: bool = True,
) -> dict[str, float]:
    """Measure a VAE or DCGAN with the protocols of :mod:`zoo.generative_metrics`.

    Args:
        model: A zoo VAE (``encode``/``sample``) or DCGAN (``generate``).
        entry: Its weights entry (dataset, split and preprocessing).
        data: Another dataset of 28x28 grey images.
        split: Split to use; defaults to the entry's split.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        num_samples: Importance samples per image of the VAE likelihood.
        progress: Show progress on stderr.

    Returns:
        ``fid_lenet5``, ``fid_lenet5_real_vs_real``, ``confident_fraction``,
        ``class_coverage_entropy``, ``class_share_ratio`` and ``num_examples``; for a
        VAE also ``nll_nats``, ``elbo_nats`` and ``num_samples``.
    """
    import zoo.data
    from zoo.tasks import generate as generative
    from zoo.tasks import generative_metrics as gm

    name = str(data or entry.dataset["name"])
    real = _images(name, split or entry.dataset["split"], data_dir)
    if real.shape[1:] != (28, 28, 1):
        raise InputError(f"{name}: the LeNet-5 features need 28x28 grey images, got {real.shape[1:]}")
    extractor = gm.FeatureExtractor()
    results: dict[str, float] = {}
    if hasattr(model, "encode"):
        inputs = zoo.data.image_transform(dict(entry.preprocessing))(real)
        binary = gm.binarize(inputs, seed=BINARIZATION_SEED)
        nll = gm.importance_sampled_nll(
            model, binary, num_samples=num_samples, seed=IS_SEED, progress=progress
        )
        results.update(nll_nats=nll["nll_nats"], elbo_nats=nll["elbo_nats"], num_samples=float(num_samples))
    generated = generative.generate(model, real.shape[0], seed=SAMPLE_SEED)
    quality = gm.sample_quality(generated, real, extractor)
    quality.pop("class_shares")
    results.update(quality)
    train = _images(name, "train", data_dir)[: real.shape[0]]
    results["fid_lenet5_real_vs_real"] = gm.sample_quality(train, real, extractor)["fid_lenet5"]
    results["num_examples"] = float(real.shape[0])
    return results


def evaluate(
    name: str,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    forward: Callable[[Any], Any] | None = None,
    tta: str | None = None,
    columns: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Load verified weights by name and measure them on their dataset.

    Args:
        name: Weights or architecture name (``"lenet5"``, ``"lenet5.mnist"``).
        data: Another dataset with the same labels (named, ``tfds:...`` or a folder).
        split: Split to use; defaults to the manifest's split.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        batch_size: Evaluation batch size.
        forward: Classifiers: another runtime's batch function (see :func:`evaluate_model`).
        tta: Image classifiers: ``"flip"``, test-time augmentation (see :func:`evaluate_model`).
        columns: Text classifiers on CSV/TSV/JSONL ``data``: ``{"text_column": ..., "label_column": ...}``.

    Returns:
        Metric name -> value, e.g. ``{"top1_accuracy": 99.2, "top1_error": 0.8, ...}``
        (see :func:`generation_metrics` for the generative models).
    """
    from zoo.api import load, weights_entry
    from zoo.tasks import task_of

    entry = weights_entry(name)
    if tta is not None:
        _check_tta(entry.name, task_of(entry), tta)  # before the weights load
    if data is None and task_of(entry) == "image-classification":
        _check_own_data_is_readable(entry)
    model = load(entry.name)
    options = {"data": data, "split": split, "data_dir": data_dir, "batch_size": batch_size}
    return evaluate_model(model, entry, **options, forward=forward, tta=tta, columns=columns)
