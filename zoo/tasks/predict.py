"""Predict with any classifier by name: images for image classifiers, texts for text classifiers."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from zoo.errors import InputError
from zoo.tasks.classify import Prediction, predict_images

__all__ = ["predict"]


def predict(
    name: str,
    inputs: list[str | os.PathLike[str]],
    *,
    top_k: int = 5,
    forward: Callable[[Any], Any] | None = None,
) -> list[Prediction]:
    """Load verified weights by name and return the top-k labels of each input.

    Args:
        name: Weights or architecture name (``"lenet5"``, ``"efficientnet_lite0"``), or a
            fine-tuned folder.
        inputs: Image file paths for an image classifier; texts for a text classifier.
            An image that cannot be read comes back with ``error`` set.
        top_k: How many labels per input.
        forward: Image classifiers: runs a batch of model inputs in place of the model's
            compiled forward function (e.g. :func:`zoo.export.onnx_forward`).

    Returns:
        One :class:`Prediction` per input, in order.
    """
    from zoo.api import load, weights_entry
    from zoo.tasks import task_of

    if not inputs:
        raise InputError("give at least one input")
    entry = weights_entry(name)
    task = task_of(entry)
    if forward is not None and task not in ("image-classification", "text-classification"):
        raise InputError(f"{entry.name} is a {task} model: only classifiers run outside Keras")
    if task == "text-classification":
        from zoo.tasks.text_classify import predict_texts

        texts = [str(t) for t in inputs]
        return predict_texts(load(entry.name), entry, texts, top_k=top_k, forward=forward)
    if task != "image-classification":
        hint = {
            "image-generation": f"draw images with `zoo sample {entry.name} --out grid.png`",
            "language-modeling": f"continue text with `zoo generate {entry.name} --prompt TEXT`",
            "text-embedding": f"embed sentences with `zoo extract {entry.name} --data sentences.csv "
            f"--out embeddings.npz` (a 'text' column) or zoo.text.encode(texts, model={entry.name!r}), "
            f"or fine-tune it into a classifier: zoo finetune {entry.name} --data DATA --out DIR",
        }.get(task, "zoo predict classifies images and texts")
        raise InputError(
            f"{entry.name} is not a classifier (its task: {task}); {hint}{_classifiers_beside(entry)}"
        )
    return predict_images(load(entry.name), entry, list(inputs), top_k=top_k, forward=forward)


def _classifiers_beside(entry: Any) -> str:
    """Pretrained classifiers of ``entry``'s family, named for a user who asked for another task."""
    from zoo.api import list_weights, weights_entry
    from zoo.registry import get_spec, list_architectures
    from zoo.tasks import task_of

    family = get_spec(entry.architecture).family
    names = [w for s in list_architectures() if s.family == family for w in list_weights(s.name)]
    found = [w for w in names if task_of(weights_entry(w)) in ("image-classification", "text-classification")]
    return f"; classifiers of its family: {', '.join(found)}" if found else ""
