"""Fast inference: one compiled forward function per model, on whichever Keras backend runs."""

from __future__ import annotations

from typing import Any

from zoo.backend import to_numpy


def predict_fn(model: Any, *, jit_compile: bool = False) -> Any:
    """Return a compiled function computing ``model(x, training=False)`` for any batch size.

    On TensorFlow it is a ``tf.function`` whose input signature has a free batch
    dimension (and free sizes wherever the model's own input has them), so calls
    with any batch size reuse one trace; ``fn.experimental_get_tracing_count()``
    tells how often it traced. On JAX it is ``jax.jit`` of the model's stateless
    call (always XLA; one compilation per input shape). On PyTorch it is an eager
    call under ``torch.no_grad``.

    Args:
        model: A ``keras.Model`` with one tensor input or a dict of inputs.
        jit_compile: Compile the TensorFlow function with XLA (JAX always does).

    Returns:
        A callable taking the model's inputs (NumPy or backend tensors) and
        returning its outputs as backend tensors (``numpy.asarray`` reads them).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_fn(model)
    if backend == "torch":
        return _torch_fn(model)
    import tensorflow as tf

    signature = keras.tree.map_structure(lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype), model.input)

    @tf.function(input_signature=[signature], jit_compile=jit_compile, reduce_retracing=True)
    def run(x: Any) -> Any:
        return model(x, training=False)

    return run


def _jax_fn(model: Any) -> Any:
    import jax

    @jax.jit
    def stateless(trainable: list, non_trainable: list, x: Any) -> Any:
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    def run(x: Any) -> Any:
        trainable = [v.value for v in model.trainable_variables]
        return stateless(trainable, [v.value for v in model.non_trainable_variables], x)

    return run


def _torch_fn(model: Any) -> Any:
    from zoo.backend import no_grad

    def run(x: Any) -> Any:
        with no_grad():
            return model(x, training=False)

    return run


def predict(model: Any, x: Any, *, batch_size: int = 256, jit_compile: bool = False) -> Any:
    """Run ``model`` over NumPy inputs in batches with a single trace; return NumPy outputs."""
    import numpy as np

    fn = predict_fn(model, jit_compile=jit_compile)
    n = len(x)
    outs = [to_numpy(fn(x[i : i + batch_size])) for i in range(0, n, batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))
