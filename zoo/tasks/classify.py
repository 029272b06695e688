"""Run pretrained classifiers on user files: read, preprocess as the manifest says, decode labels."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import DataError, InputError
from zoo.tasks.inference import predict_fn
from zoo.weights.manifest import WeightsEntry


@dataclass(frozen=True)
class Prediction:
    """Top-k labels of one input, most probable first."""

    input: str
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    indices: tuple[int, ...]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the prediction as plain JSON data (``error`` instead of ``top`` for a failed input)."""
        if self.error is not None:
            return {"input": self.input, "error": self.error}
        return {
            "input": self.input,
            "top": [
                {"label": lab, "index": i, "probability": p}
                for lab, i, p in zip(self.labels, self.indices, self.probabilities, strict=True)
            ],
        }


def _failed(path: Any, error: str) -> Prediction:
    return Prediction(str(path), (), (), (), error=error)


def _top(path: Any, row: Any, labels: Any, top_k: int) -> Prediction:
    import numpy as np

    order = np.argsort(-row)[: max(1, min(top_k, row.shape[-1]))]
    return Prediction(
        input=str(path),
        labels=tuple(labels[i] for i in order),
        probabilities=tuple(float(row[i]) for i in order),
        indices=tuple(int(i) for i in order),
    )


_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # Pillow modes of 16/32-bit greyscale


def read_image(path: str | os.PathLike[str], color_mode: str = "rgb") -> Any:
    """Read an image file into a uint8 array ``(H, W, C)`` with 1 (grayscale) or 3 channels.

    Any channel layout Pillow reads is converted (alpha dropped, palette expanded, CMYK to
    RGB); the EXIF orientation is applied; 16-bit greyscale is scaled to 8 bits rather than
    clipped, and float images from [0, 1] (or from 0 to their maximum) to 0..255. Images over Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) are refused.

    Raises:
        InputError: When the file is missing, empty, not an image, corrupt or too large.
    """
    import warnings

    import numpy as np
    from PIL import Image, ImageOps

    p = Path(path)
    if not p.is_file():  # a folder, a pipe or a device would fail or block in open()
        raise InputError(f"{p}: {'not a regular file' if p.exists() else 'no such file'}")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                img.load()
                img = ImageOps.exif_transpose(img)  # as a phone or viewer shows it
                if img.mode == "F":  # float images: [0, 1] is the convention, else their own range
                    values = np.nan_to_num(np.asarray(img, dtype=np.float64))
                    top = 1.0 if values.max(initial=0.0) <= 1.0 else values.max()
                    img = Image.fromarray(np.round(np.clip(values / top, 0, 1) * 255).astype(np.uint8))
                elif img.mode in _SIXTEEN_BIT:
                    wide = np.asarray(img).astype(np.float64)
                    img = Image.fromarray(np.round(np.clip(wide, 0, 65535) / 257).astype(np.uint8))
                img = img.convert("L" if color_mode == "grayscale" else "RGB")
                array = np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{p}: image is too large to read safely ({exc})") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ... on bad files
        raise InputError(f"{p}: not a readable image ({type(exc).__name__}: {exc})") from exc
    return array[..., None] if array.ndim == 2 else array


def _probabilities(model: Any, outputs: Any) -> Any:
    import numpy as np

    out = np.asarray(outputs, dtype=np.float64)
    head = next((layer for layer in model.layers if layer.name == "head"), None)
    activation = getattr(getattr(head, "activation", None), "__name__", "linear")
    if activation == "softmax":
        return out
    out = out - out.max(axis=-1, keepdims=True)
    exp = np.exp(out)
    return exp / exp.sum(axis=-1, keepdims=True)


def predict_images(
    model: Any,
    entry: WeightsEntry,
    paths: list[str | os.PathLike[str]],
    *,
    top_k: int = 5,
    batch_size: int = 32,
    forward: Callable[[Any], Any] | None = None,
) -> list[Prediction]:
    """Classify image files with a model and its weights entry's preprocessing and labels.

    Images whose size differs from the model's input are resized to it first
    when the entry's preprocessing has no resize of its own. Files are decoded
    and classified ``batch_size`` at a time, so peak memory does not grow with
    the number of inputs. ``forward`` (a batch of model inputs -> the model's
    outputs, e.g. :func:`zoo.export.onnx_forward`) replaces the model's compiled
    forward function (:func:`zoo.tasks.inference.predict_fn`).
    """
    import numpy as np

    spec = dict(entry.preprocessing)
    if spec.get("type") != "image":
        raise InputError(f"{entry.name} does not take images")
    from zoo.progress import progress

    want = tuple(model.input_shape[1:3])
    run = forward or predict_fn(model)
    transforms: dict[tuple[int, int], Any] = {}
    labels = entry.labels
    results = []
    starts = range(0, len(paths), batch_size)  # fixed-size batches: memory does not grow with inputs
    for start in progress(starts, "classifying"):
        chunk, batch, failed = paths[start : start + batch_size], [], {}
        for path in chunk:
            try:
                batch.append(_model_input(read_image(path, spec["color_mode"]), spec, want, transforms))
            except (InputError, DataError) as exc:  # one unreadable file does not stop the others
                failed[str(path)] = str(exc)
        rows = iter(_probabilities(model, run(np.stack(batch)))) if batch else iter(())
        for path in chunk:
            if str(path) in failed:
                results.append(_failed(path, failed[str(path)]))
                continue
            row = next(rows)
            results.append(_top(path, row, labels or tuple(str(i) for i in range(row.shape[-1])), top_k))
    return results


def _model_input(image: Any, spec: dict[str, Any], want: tuple, transforms: dict) -> Any:
    """The preprocessed image; when it does not come out at the model's input size, resized to it."""
    import numpy as np

    import zoo.data
    from zoo.preprocessing import adapt_preprocessing

    key = tuple(image.shape[:2])
    if key not in transforms:
        transforms[key] = zoo.data.image_transform(spec)
        produced = tuple(np.asarray(transforms[key](image)).shape[:2])
        if None not in want and produced != want:  # e.g. a 64x64 photo for a 32x32 CIFAR model
            transforms[key] = zoo.data.image_transform(adapt_preprocessing(spec, produced, want))
    return np.asarray(transforms[key](image))


def classification_metrics(
    model: Any,
    dataset: Any,
    forward: Callable[[Any], Any] | None = None,
    *,
    loss: Callable[[Any, Any], Any] | None = None,
) -> dict[str, float]:
    """Top-1 accuracy and error (percent) of ``model`` (or ``forward``) on a batched ``(x, y)`` dataset.

    Args:
        model: A Keras classifier; its compiled forward function
            (:func:`zoo.tasks.inference.predict_fn`) runs unless ``forward`` is given.
        dataset: Batches of ``(inputs, integer labels)``: a ``tf.data`` dataset or an iterable.
        forward: A batch of inputs -> logits or probabilities, in place of the model.
        loss: ``loss(labels, outputs)``, a batch mean; when given, the result also has the
            example-weighted mean ``"loss"``.

    Returns:
        ``top1_accuracy``, ``top1_error``, ``num_examples`` (and ``loss`` with ``loss``).
    """
    import numpy as np

    from zoo.progress import batch_count, progress

    run = forward or predict_fn(model)
    correct = total = 0
    loss_sum = 0.0
    batches = getattr(dataset, "as_numpy_iterator", lambda: dataset)()  # NumPy for every backend
    for x, y in progress(batches, "evaluating", total=batch_count(dataset)):
        logits = np.asarray(run(x))
        pred = np.argmax(logits, axis=-1)
        correct += int(np.sum(pred == np.asarray(y)))
        total += int(pred.shape[0])
        if loss is not None:
            loss_sum += float(loss(y, logits)) * int(pred.shape[0])
    if total == 0:
        raise InputError("the evaluation dataset is empty")
    accuracy = 100.0 * correct / total
    metrics = {"top1_accuracy": accuracy, "top1_error": 100.0 - accuracy, "num_examples": total}
    if loss is not None:
        metrics["loss"] = loss_sum / total
    return metrics


def _relabel_hint(data: str) -> str:
    """How to give ``data`` the model's labels: folders are renamed, a table's values changed."""
    where = Path(data).expanduser()
    if where.is_dir():
        return "name the class folders after the model's labels"
    if where.is_file():
        return "use the model's labels in the label column"
    return "evaluate on data with the model's labels"


def label_mapping(data_labels: Any, model_labels: Any, data: str, weights: str) -> list[int] | None:
    """Map a dataset's class indices to the model's by label name (``None`` when they already agree).

    A folder's classes are numbered 0..n-1 in name order; a model's are in its own
    order, so folders ``3/`` and ``8/`` must be scored as the model's classes 3 and 8.

    Raises:
        DataError: When a class of the data is not one of the model's labels.
    """
    data_labels, model_labels = list(data_labels or []), list(model_labels or [])
    if not data_labels or not model_labels:
        raise DataError(f"{data}: cannot match its classes to {weights}'s labels (one of them has no names)")
    if data_labels == model_labels:
        return None
    unknown = [n for n in data_labels if n not in model_labels]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5])
        raise DataError(
            f"{data}: classes {shown} are not labels of {weights} ({', '.join(model_labels[:12])}"
            f"{', ...' if len(model_labels) > 12 else ''}); {_relabel_hint(data)}, or fine-tune the "
            "model on these classes first"
        )
    return [model_labels.index(n) for n in data_labels]


def own_data_options(entry: Any) -> dict[str, Any]:
    """``zoo.data.load``'s arguments that read ``entry``'s own dataset as its metric was measured.

    A fine-tuned model's card records the fixed fold it held out (``kfold``) and the columns of a
    CSV/TSV/JSONL table, where not ``text`` and ``label``; a manifest entry needs neither.

    Raises:
        InputError: For a card that records no fold of a folder or table with one split.
    """
    options: dict[str, Any] = {}
    if "columns" in entry.dataset:
        options.update(
            text_column=entry.dataset["columns"]["text"], label_column=entry.dataset["columns"]["label"]
        )
    if "kfold" in entry.dataset:
        options["kfold"] = tuple(entry.dataset["kfold"])
    else:
        _check_own_split(entry, options)
    return options


def _check_own_split(entry: Any, columns: dict[str, str]) -> None:
    """Fail clearly for a fine-tuned card whose data has no split of its name and no fold recorded.

    Cards written before zoo recorded the held-out fold (``kfold``) of a folder or table with one
    split cannot say which examples were held out.
    """
    import zoo.data

    name, split = str(entry.dataset["name"]), entry.dataset["split"]
    if not Path(name).exists():  # a named dataset has its splits
        return
    if split not in zoo.data.info(name, **columns).splits:
        raise InputError(
            f"{entry.name}'s card does not record which fold of {name} its fine-tuning held out "
            f"(written by an older zoo), and that data has no {split!r} split; evaluate it on "
            "data of its labels with --data (and --split), or fine-tune it again"
        )


def data_split(entry: Any, info: Any, split: str | None, prefer: str | None = None) -> str:
    """The split to score ``entry`` on in user data ``info``.

    ``split`` when given, else ``prefer`` (default: the entry's own split name) where the
    data has it (or has several splits), else the data's only split.
    """
    if split is not None:
        return split
    splits, own = list(info.splits), prefer or entry.dataset["split"]
    return own if own in splits or len(splits) != 1 else splits[0]


def with_model_labels(dataset: Any, mapping: list[int] | None) -> Any:
    """``dataset`` of ``(inputs, label)`` with its labels renumbered by :func:`label_mapping`."""
    if mapping is None:
        return dataset
    import tensorflow as tf

    table = tf.constant(mapping, tf.int64)
    return dataset.map(lambda x, y: (x, tf.gather(table, tf.cast(y, tf.int64))))
