"""Tasks: what a model does with its weights, and the code that does it.

:func:`task_of` names the task of a weights entry, the one answer every command
uses to choose what to run:

* ``image-classification``: :mod:`~zoo.tasks.classify` (predict, accuracy).
* ``text-classification``: :mod:`~zoo.tasks.text_classify`.
* ``text-embedding``: :mod:`~zoo.tasks.embed` (sentence vectors).
* ``language-modeling``: :mod:`~zoo.tasks.language_model` (character models).
* ``image-generation``: :mod:`~zoo.tasks.generate` and
  :mod:`~zoo.tasks.generative_metrics`.

:mod:`~zoo.tasks.evaluate` measures any entry the way the manifest records it.
Importing this package imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

from typing import Any

from zoo import registry

__all__ = ["TASKS", "task_of"]

TASKS = registry.TASKS


def task_of(entry: Any) -> str:
    """The task of a weights entry: its architecture's task, made precise by its weights.

    A text encoder's weights with labels (a classification head) classify text; a
    character-level text spec models language.

    Args:
        entry: A :class:`~zoo.weights.manifest.WeightsEntry` (or anything with
            ``architecture``, ``preprocessing`` and ``num_classes``).

    Returns:
        One of :data:`TASKS`.
    """
    spec = dict(getattr(entry, "preprocessing", None) or {})
    if spec.get("type") == "text" and spec.get("tokenizer") == "char":
        return "language-modeling"
    task = registry.get_spec(entry.architecture).task
    if task == "text-embedding" and getattr(entry, "num_classes", None):
        return "text-classification"
    return task
