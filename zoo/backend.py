"""Which Keras backend the zoo runs on (read without importing Keras), and per-backend compilation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["compiled", "keras_backend", "no_grad", "to_numpy"]


def keras_backend() -> str:
    """The backend: ``KERAS_BACKEND``, else ``backend`` in ``$KERAS_HOME/keras.json``, else tensorflow."""
    chosen = os.environ.get("KERAS_BACKEND", "").strip()
    if chosen:
        return chosen
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        config = json.loads((home / "keras.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "tensorflow"
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) and backend else "tensorflow"


def compiled(fn: Any) -> Any:
    """Compile a pure inference function of tensors for the active backend.

    TensorFlow: ``tf.function`` (retracing reduced); JAX: ``jax.jit`` (the model's
    weights are read at trace time, so use it for inference of fixed weights only);
    PyTorch: eager under ``torch.no_grad``.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "torch":

        def run(*args: Any) -> Any:
            with no_grad():
                return fn(*args)

        return run
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)


def no_grad() -> Any:
    """``torch.no_grad()`` on PyTorch (outputs that NumPy can read), else a do-nothing context."""
    import contextlib

    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def to_numpy(outputs: Any) -> Any:
    """Convert a structure of backend tensors to NumPy arrays."""
    import keras

    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
