"""Fast inference: one compiled forward function per model, on whichever Keras backend runs."""

from __future__ import annotations

from typing import Any

from zoo.backend import to_numpy

_COMPILED: dict[tuple[int, bool], Any] = {}


def predict_fn(model: Any, *, jit_compile: bool = False) -> Any:
    """Return a compiled function computing ``model(x, training=False)`` for any batch size.

    On TensorFlow it is a ``tf.function`` whose input signature has a free batch
    dimension (and free sizes wherever the model's own input has them), so calls
    with any batch size reuse one trace; its concrete function is called directly,
    inputs cast to the model's input dtypes, which skips the per-call dispatch that
    makes ``model.predict_on_batch`` slow at small batches. ``fn.experimental_get_tracing_count()``
    tells how often it traced. On JAX it is ``jax.jit`` of the model's stateless
    call (always XLA; one compilation per input shape). On PyTorch it is an eager
    call under ``torch.no_grad``. The function is made once per model and kept
    while the model lives, so repeated calls (``zoo.evaluate`` in a loop) do not trace again.

    Args:
        model: A ``keras.Model`` with one tensor input or a dict of inputs.
        jit_compile: Compile the TensorFlow function with XLA (JAX always does).

    Returns:
        A callable taking the model's inputs (NumPy or backend tensors) and
        returning its outputs as backend tensors (``numpy.asarray`` reads them).
    """
    import weakref

    import keras

    key = (id(model), jit_compile)  # the backend is fixed for the process
    if key not in _COMPILED:
        # The function holds the model weakly: the cache must not keep a model alive.
        make = {"jax": _jax_fn, "torch": _torch_fn}.get(keras.backend.backend(), _tf_fn)
        _COMPILED[key] = make(weakref.ref(model), jit_compile)
        weakref.finalize(model, _COMPILED.pop, key, None)
    return _COMPILED[key]


def _tf_fn(ref: Any, jit_compile: bool) -> Any:
    import keras
    import tensorflow as tf

    signature = keras.tree.map_structure(lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype), ref().input)

    @tf.function(input_signature=[signature], jit_compile=jit_compile, reduce_retracing=True)
    def traced(x: Any) -> Any:
        return ref()(x, training=False)

    concrete = traced.get_concrete_function()
    specs = keras.tree.flatten(signature)

    def run(x: Any) -> Any:
        # As Keras does: a lone array for a one-input list, any nesting with the same leaves.
        values = [tf.cast(v, s.dtype) for v, s in zip(keras.tree.flatten(x), specs, strict=True)]
        return concrete(keras.tree.pack_sequence_as(signature, values))

    run.experimental_get_tracing_count = traced.experimental_get_tracing_count
    return run


def _jax_fn(ref: Any, jit_compile: bool) -> Any:
    import jax

    @jax.jit
    def stateless(trainable: list, non_trainable: list, x: Any) -> Any:
        return ref().stateless_call(trainable, non_trainable, x, training=False)[0]

    def run(x: Any) -> Any:
        model = ref()
        trainable = [v.value for v in model.trainable_variables]
        return stateless(trainable, [v.value for v in model.non_trainable_variables], x)

    return run


def _torch_fn(ref: Any, jit_compile: bool) -> Any:
    from zoo.backend import no_grad

    def run(x: Any) -> Any:
        with no_grad():
            return ref()(x, training=False)

    return run


def predict(model: Any, x: Any, *, batch_size: int = 256, jit_compile: bool = False) -> Any:
    """Run ``model`` over NumPy inputs in batches with a single trace; return NumPy outputs."""
    import numpy as np

    fn = predict_fn(model, jit_compile=jit_compile)
    n = len(x)
    outs = [to_numpy(fn(x[i : i + batch_size])) for i in range(0, n, batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))
