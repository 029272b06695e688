"""Inference-only batch-norm folding: a convolution and the batch norm after it run as one op.

In inference a batch norm is a per-channel affine map of its input, so a convolution that
feeds only that batch norm can compute both at once: its kernel scaled by
``gamma / sqrt(moving_variance + epsilon)`` and a bias shifted to match. The folded model
shares every variable with the original (nothing is copied, so it always follows the
original's current weights) and computes the scaled kernel from them on each call: one
elementwise pass over the kernels in place of the batch norm's pass over the activations, which
pays once the activations outnumber the kernels (:func:`folding_break_even`), and lets the
backend fuse the convolution with its bias and activation. Plain Keras (``keras.ops`` and
``keras.models.clone_model``), so it runs on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def fold_batch_norms(model: Any) -> Any:
    """Return a model computing ``model(x, training=False)`` with its conv + batch-norm pairs folded.

    A pair folds when a ``Conv2D`` (no activation, channels last) or ``DepthwiseConv2D`` feeds a
    ``BatchNormalization`` over the channel axis and nothing else, inside this model's graph, and
    neither layer is called twice in it. Nested functional models are folded too. The result is
    for inference only: it always applies the moving statistics.

    Args:
        model: A ``keras.Model``. Models that are not functional, or have nothing to fold, are
            returned unchanged.

    Returns:
        A functional model sharing ``model``'s variables and layer names, or ``model`` itself.
    """
    if not _is_functional(model):
        return model
    pairs = _foldable_pairs(model)  # id(conv) -> batch norm
    folded_norms = {id(bn) for bn in pairs.values()}
    nested = {}
    for op in model.operations:
        inner = fold_batch_norms(op) if _is_functional(op) else op
        if inner is not op:
            nested[id(op)] = inner
    if not pairs and not nested:
        return model

    def replace(layer: Any) -> Any:
        if id(layer) in pairs:
            return _FoldedConv(layer, pairs[id(layer)])
        if id(layer) in folded_norms:
            return _Folded(name=layer.name)
        return nested.get(id(layer), layer)  # the same layer: its variables are shared

    return keras.models.clone_model(model, clone_function=replace)


def folding_break_even(model: Any) -> int | None:
    """The smallest batch size at which folding ``model``'s batch norms saves work; ``None``: nothing folds.

    Folding adds a pass over the folded kernels to every call and removes the batch norms'
    pass over their activations, which grows with the batch: it pays from the batch size at
    which the activations outnumber twice the kernels' elements (1 where a size is unknown).
    The margin of 2 comes from timings on a 2-core CPU, where folding at about one activation per
    kernel element (VGG-11 at batch 64, ResNet-20 at batch 1) was no faster, and at two
    (EfficientNet-Lite0 at batch 1) or more (ResNet-20 at batch 64) was.
    """
    kernels, activations = _fold_counts(model)
    if not kernels:
        return None
    if activations is None:
        return 1
    return max(1, -(-2 * kernels // max(activations, 1)))


def _fold_counts(model: Any) -> tuple[int, int | None]:
    """Elements of the kernels that fold and of one image's activations after their batch norms."""
    if not _is_functional(model):
        return 0, 0
    pairs = _foldable_pairs(model)
    kernels = sum(int(math.prod(conv.kernel.shape)) for conv in _convs(model, pairs))
    shapes = [bn.output.shape[1:] for bn in pairs.values()]
    activations = None if any(None in s for s in shapes) else sum(int(math.prod(s)) for s in shapes)
    for op in model.operations:
        if _is_functional(op) and op is not model:
            k, a = _fold_counts(op)
            kernels += k
            activations = None if activations is None or a is None else activations + a
    return kernels, activations


def _convs(model: Any, pairs: dict[int, Any]) -> list[Any]:
    return [op for op in model.operations if id(op) in pairs]


def _is_functional(model: Any) -> bool:
    return (
        isinstance(model, keras.Model)
        and not isinstance(model, keras.Sequential)
        and hasattr(model, "_nodes_by_depth")
        and type(model).__name__ == "Functional"
    )


def _foldable_pairs(model: Any) -> dict[int, Any]:
    """The (convolution, batch norm) pairs of ``model``'s own graph that fold, keyed by the conv's id."""
    nodes = [node for depth in model._nodes_by_depth.values() for node in depth]
    calls: dict[int, int] = {}
    consumers: dict[int, int] = {}  # id(KerasTensor) -> nodes of this graph that read it
    for node in nodes:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for t in node.input_tensors:
            consumers[id(t)] = consumers.get(id(t), 0) + 1
    outputs = {id(t) for t in keras.tree.flatten(model.outputs)}
    pairs = {}
    for node in nodes:
        bn = node.operation
        if type(bn) is not keras.layers.BatchNormalization or calls[id(bn)] != 1:
            continue
        if len(node.input_tensors) != 1 or bn.axis not in (-1, len(node.input_tensors[0].shape) - 1):
            continue
        source = node.input_tensors[0]
        conv = source._keras_history.operation
        if not _foldable_conv(conv) or calls.get(id(conv), 0) != 1:
            continue
        if consumers.get(id(source)) == 1 and id(source) not in outputs:
            pairs[id(conv)] = bn
    return pairs


def _foldable_conv(layer: Any) -> bool:
    if type(layer) not in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
        return False
    return layer.data_format == "channels_last" and layer.activation is keras.activations.linear


class _FoldedConv(keras.layers.Layer):
    """``bn(conv(x))`` in inference, as one convolution with a rescaled kernel and a bias."""

    def __init__(self, conv: Any, bn: Any) -> None:
        super().__init__(name=conv.name, dtype=conv.dtype_policy)
        self.conv, self.bn = conv, bn

    def call(self, x: Any) -> Any:
        conv, bn = self.conv, self.bn
        scale = ops.rsqrt(ops.add(bn.moving_variance, bn.epsilon))
        if bn.scale:
            scale = ops.multiply(scale, bn.gamma)
        shift = ops.negative(ops.multiply(bn.moving_mean, scale))
        if bn.center:
            shift = ops.add(shift, bn.beta)
        if conv.use_bias:
            shift = ops.add(shift, ops.multiply(conv.bias, scale))
        dtype = self.compute_dtype
        if isinstance(conv, keras.layers.DepthwiseConv2D):
            in_channels, multiplier = conv.kernel.shape[2], conv.kernel.shape[3]
            kernel = ops.multiply(conv.kernel, ops.reshape(scale, (1, 1, in_channels, multiplier)))
            y = ops.depthwise_conv(
                x,
                ops.cast(kernel, dtype),
                strides=conv.strides,
                padding=conv.padding,
                data_format=conv.data_format,
                dilation_rate=conv.dilation_rate,
            )
        else:
            y = conv.convolution_op(x, ops.cast(ops.multiply(conv.kernel, scale), dtype))
        return ops.add(y, ops.cast(shift, dtype))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.conv.compute_output_shape(input_shape)


class _Folded(keras.layers.Layer):
    """Where a folded batch norm was: its input, already normalised, passes through."""

    def call(self, x: Any, **kwargs: Any) -> Any:
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape
