"""The first int8 activation held in pieces: ``k`` times finer steps with every tensor still int8.

TFLite's int8 activations have 256 steps of one range per tensor. A network whose first
activation is a ReLU6 read by a depthwise convolution (EfficientNet-Lite, MobileNet) can hold
that activation more finely with the same function in float: the convolution before it gives
``k`` copies of each channel, copy ``i`` magnified ``k`` times and shifted down by ``6 i``, so
that after its ReLU6 it holds the part of the activation in ``[6 i / k, 6 (i + 1) / k]`` on all
256 steps; the depthwise convolution becomes a full convolution that adds the copies back
(each tap divided by ``k``) in its int32 accumulator. The int8 model then rounds the
activation to ``255 k`` steps of its range, at the cost of that convolution's ``k`` x channels
multiplications.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import InputError
from zoo.export.simulation import _parent, _users, quantized_outputs

#: The most pieces :func:`first_in_pieces` makes.
MAX_PIECES = 8


def _site(model: Any) -> tuple[Any, Any, Any, Any]:
    """``(convolution, batch norm, ReLU6, depthwise convolution)`` at the start of ``model``, or a refusal."""
    import keras

    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    first = quantized_outputs(model)[:1] if not nested else []
    relu = first[0] if first else None
    bn = _parent(relu) if relu is not None else None
    conv = _parent(bn) if isinstance(bn, keras.layers.BatchNormalization) else None
    users = _users(model).get(id(relu.output), []) if relu is not None else []
    if not (
        isinstance(relu, keras.layers.ReLU)
        and relu.max_value == 6
        and isinstance(conv, keras.layers.Conv2D)
        and not conv.use_bias
        and len(users) == 1
        and isinstance(users[0], keras.layers.DepthwiseConv2D)
        and users[0].depth_multiplier == 1
        and not users[0].use_bias
        and all(layer.data_format == "channels_last" for layer in (conv, users[0]))
        and tuple(users[0].dilation_rate) == (1, 1)
    ):
        raise InputError(
            f"--stem-pieces holds a first activation that is a ReLU6 after a convolution and batch norm, "
            f"read by a depthwise convolution (EfficientNet-Lite, MobileNet); {model.name} does not start "
            "so: leave out --stem-pieces"
        )
    return conv, bn, relu, users[0]


def first_in_pieces(model: Any, k: int) -> Any:
    """A copy of ``model`` computing the same function with its first activation in ``k`` pieces.

    Args:
        model: A functional model of plain layers starting with a convolution, a batch norm, a
            ReLU6 and a depthwise convolution (see the module docstring).
        k: Pieces, 1 to :data:`MAX_PIECES` (1: ``model`` itself).

    Returns:
        The copy: the convolution (batch norm folded in) is ``first_pieces``, the depthwise
        convolution a full convolution ``pieces_added``; the ReLU6 keeps its name.

    Raises:
        InputError: When ``model`` does not start so, or ``k`` is out of range.
    """
    import keras
    import numpy as np

    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PIECES:
        raise InputError(f"stem pieces must be a whole number from 1 to {MAX_PIECES}, got {k!r}")
    if k == 1:
        return model
    conv, bn, _, depthwise = _site(model)
    scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    kernel, bias = conv.kernel.numpy() * scale, bn.beta.numpy() - bn.moving_mean.numpy() * scale
    channels = kernel.shape[-1]
    taps = depthwise.kernel.numpy()[..., 0] / k
    full = np.zeros((*taps.shape[:2], channels * k, channels), np.float32)
    for i in range(k):
        full[:, :, i * channels + np.arange(channels), np.arange(channels)] = taps
    copies = keras.layers.Conv2D(
        channels * k, conv.kernel_size, conv.strides, conv.padding, name="first_pieces"
    )
    adds = keras.layers.Conv2D(
        channels,
        depthwise.kernel_size,
        depthwise.strides,
        depthwise.padding,
        use_bias=False,
        name="pieces_added",
    )
    replaced = {conv.name: copies, bn.name: None, depthwise.name: adds}

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name not in replaced:
            return layer(*args, **kwargs)
        return args[0] if replaced[layer.name] is None else replaced[layer.name](*args, **kwargs)

    clone = keras.models.clone_model(model, call_function=call)
    for layer in clone.layers:
        if layer.weights and layer.name not in ("first_pieces", "pieces_added"):
            layer.set_weights(model.get_layer(layer.name).get_weights())
    pieces_bias = np.concatenate([k * bias - 6.0 * i for i in range(k)])
    copies.set_weights([np.concatenate([k * kernel] * k, -1), pieces_bias])
    adds.set_weights([full])
    return clone


def pieces_levels(model: Any, k: int) -> dict[str, int] | None:
    """:func:`int8_simulation`'s ``levels`` for ``model``'s first activation in ``k`` pieces (``None``: 1)."""
    if k == 1:
        return None
    _, _, relu, _ = _site(model)
    return {relu.name: 255 * k + 1}
