"""Fast inference: one traced (optionally XLA-compiled) function per model, batched calls."""

from __future__ import annotations

from typing import Any


def predict_fn(model: Any, *, jit_compile: bool = False) -> Any:
    """Return a ``tf.function`` computing ``model(x, training=False)`` that traces once.

    The input signature has a free batch dimension (and free sizes wherever the
    model's own input has them), so calls with any batch size reuse one trace.

    Args:
        model: A ``keras.Model`` with one tensor input or a dict of inputs.
        jit_compile: Compile the function with XLA.

    Returns:
        A callable; ``fn.experimental_get_tracing_count()`` tells how often it traced.
    """
    import keras
    import tensorflow as tf

    signature = keras.tree.map_structure(lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype), model.input)

    @tf.function(input_signature=[signature], jit_compile=jit_compile, reduce_retracing=True)
    def run(x: Any) -> Any:
        return model(x, training=False)

    return run


def predict(model: Any, x: Any, *, batch_size: int = 256, jit_compile: bool = False) -> Any:
    """Run ``model`` over NumPy inputs in batches with a single trace; return NumPy outputs."""
    import numpy as np

    fn = predict_fn(model, jit_compile=jit_compile)
    n = len(x)
    outs = [np.asarray(fn(x[i : i + batch_size])) for i in range(0, n, batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))
