"""Fast inference: one compiled forward function per model, on whichever Keras backend runs."""

from __future__ import annotations

from typing import Any

from zoo.backend import to_numpy
from zoo.errors import InputError

_COMPILED: dict[tuple[int, bool, bool], Any] = {}


def predict_fn(model: Any, *, jit_compile: bool = False, fold: bool = True) -> Any:
    """Return a compiled function computing ``model(x, training=False)`` for any batch size.

    With ``fold`` (the default), batches large enough for it to pay
    (:func:`zoo.tasks.fold.folding_break_even`) run each convolution and the batch norm after it
    as one convolution (:func:`zoo.tasks.fold.fold_batch_norms`, which shares the model's
    variables, so the function follows later changes to the weights): the same outputs within
    float32 rounding, and faster where batch norms are many.

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
        fold: Fold batch norms into the convolutions before them; ``False`` runs the model's
            own layers, as export checks do to compare against Keras itself.

    Returns:
        A callable taking the model's inputs (NumPy or backend tensors) and
        returning its outputs as backend tensors (``numpy.asarray`` reads them).
        It raises ``InputError`` for inputs that do not match the model's.
    """
    import weakref

    import keras

    from zoo.tasks.fold import fold_batch_norms, folding_break_even

    key = (id(model), jit_compile, fold)  # the backend is fixed for the process
    if key not in _COMPILED:
        # The function holds the model weakly: the cache must not keep a model alive. A folded
        # copy holds the model's layers, not the model, and goes with the model's cache entry.
        make = {"jax": _jax_fn, "torch": _torch_fn}.get(keras.backend.backend(), _tf_fn)
        shapes = [tuple(t.shape) for t in keras.tree.flatten(model.input)]
        plain = make(weakref.ref(model), jit_compile, shapes)
        break_even = folding_break_even(model) if fold else None
        if break_even is None:
            _COMPILED[key] = plain
        else:
            folded = fold_batch_norms(model)
            _COMPILED[key] = _by_batch_size(plain, make(lambda: folded, jit_compile, shapes), break_even)
        weakref.finalize(model, _COMPILED.pop, key, None)
    return _COMPILED[key]


def _by_batch_size(plain: Any, folded: Any, break_even: int) -> Any:
    """Run ``folded`` for batches of ``break_even`` or more, ``plain`` for smaller ones."""
    import keras

    def run(x: Any) -> Any:
        leaves = keras.tree.flatten(x)
        rows = len(leaves[0]) if leaves and getattr(leaves[0], "shape", ()) else 0
        return (folded if rows >= break_even else plain)(x)

    if hasattr(plain, "experimental_get_tracing_count"):
        run.experimental_get_tracing_count = lambda: (
            plain.experimental_get_tracing_count() + folded.experimental_get_tracing_count()
        )
    return run


def _leaves(x: Any, shapes: list[tuple]) -> list:
    """Flatten ``x`` as Keras does and check it against the model's input shapes.

    Raises:
        InputError: A different number of inputs, or an input whose rank or fixed sizes differ.
    """
    import keras

    leaves = keras.tree.flatten(x)
    if len(leaves) != len(shapes):
        listed = ", ".join(map(str, shapes))
        raise InputError(
            f"the model takes {len(shapes)} input(s) of shape {listed}, got {len(leaves)}; "
            "pass one array per model input (a dict keyed by input name for several)"
        )
    for value, want in zip(leaves, shapes, strict=True):
        got = tuple(getattr(value, "shape", ()))
        fixed = zip(got[1:], want[1:], strict=False)
        if len(got) != len(want) or any(w is not None and g != w for g, w in fixed):
            raise InputError(
                f"the model takes inputs of shape {want} (None: any size), got {got}; "
                "resize or reshape the batch to match, e.g. with the model's own preprocessing"
            )
    return leaves


def _tf_fn(ref: Any, jit_compile: bool, shapes: list[tuple]) -> Any:
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
        values = [tf.cast(v, s.dtype) for v, s in zip(_leaves(x, shapes), specs, strict=True)]
        return concrete(keras.tree.pack_sequence_as(signature, values))

    run.experimental_get_tracing_count = traced.experimental_get_tracing_count
    return run


def _jax_fn(ref: Any, jit_compile: bool, shapes: list[tuple]) -> Any:
    import jax

    @jax.jit
    def stateless(trainable: list, non_trainable: list, x: Any) -> Any:
        return ref().stateless_call(trainable, non_trainable, x, training=False)[0]

    def run(x: Any) -> Any:
        _leaves(x, shapes)
        model = ref()
        trainable = [v.value for v in model.trainable_variables]
        return stateless(trainable, [v.value for v in model.non_trainable_variables], x)

    return run


def _torch_fn(ref: Any, jit_compile: bool, shapes: list[tuple]) -> Any:
    from zoo.backend import no_grad

    def run(x: Any) -> Any:
        _leaves(x, shapes)
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
