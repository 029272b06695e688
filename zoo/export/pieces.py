"""Int8 activations held in pieces: ``k`` times finer steps with every tensor still int8.

TFLite's int8 activations have 256 steps of one range per tensor. A network whose first
activation is a ReLU6 read by a depthwise convolution (EfficientNet-Lite, MobileNet) can hold
that activation more finely with the same function in float: the convolution before it gives
``k`` copies of each channel, copy ``i`` magnified ``k`` times and shifted down by ``6 i``, so
that after its ReLU6 it holds the part of the activation in ``[6 i / k, 6 (i + 1) / k]`` on all
256 steps; the depthwise convolution becomes a full convolution that adds the copies back
(each tap divided by ``k``) in its int32 accumulator. The int8 model then rounds the
activation to ``255 k`` steps of its range, at the cost of that convolution's ``k`` x channels
multiplications (:func:`first_in_pieces`). Each later ReLU6 that a full convolution reads (in
EfficientNet-Lite, each block's depthwise convolution's output, read by its 1x1 projection) is
held so too, its copies made before the ReLU6 and added back by that convolution
(:func:`depthwise_in_pieces`), and each ReLU6 that a depthwise convolution reads after a 1x1
convolution (each block's expansion), the depthwise convolution made a grouped one whose groups
add a channel's copies back (:func:`expansion_in_pieces`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from zoo.errors import InputError
from zoo.export._common import Ranges
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


def _cloned(
    model: Any,
    replaced: dict[str, Any],
    weights: dict[str, list[Any]],
    copied: Collection[str] = (),
    k: int = 1,
) -> Any:
    """A clone of ``model`` with layers swapped, their new weights set and the rest copied.

    ``replaced`` maps a layer's name to the layer taking its place (``None``: dropped, its input
    passed on), ``weights`` the replaced names to the new layers' weights; a layer named in
    ``copied`` reads ``k`` copies of its input (``<name>_copies``, a concatenation TFLite only
    copies: its int8 depth multiplier is slow).
    """
    import keras

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name not in replaced:
            return layer(*args, **kwargs)
        if layer.name in copied:
            args = (keras.layers.Concatenate(name=f"{layer.name}_copies")([args[0]] * k), *args[1:])
        return args[0] if replaced[layer.name] is None else replaced[layer.name](*args, **kwargs)

    clone = keras.models.clone_model(model, call_function=call)
    made = {new.name for new in replaced.values() if new is not None}
    for name, new in replaced.items():
        if new is not None:
            new.set_weights(weights[name])
    for layer in clone.layers:
        if layer.weights and layer.name not in replaced and layer.name not in made:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


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
    kernel, bias = _folded(conv, bn)
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
    weights = {
        conv.name: [
            np.concatenate([k * kernel] * k, -1),
            np.concatenate([k * bias - 6.0 * i for i in range(k)]),
        ],
        depthwise.name: [full],
    }
    return _cloned(model, {conv.name: copies, bn.name: None, depthwise.name: adds}, weights)


def pieces_levels(model: Any, k: int) -> dict[str, int] | None:
    """:func:`int8_simulation`'s ``levels`` for ``model``'s first activation in ``k`` pieces (``None``: 1)."""
    if k == 1:
        return None
    _, _, relu, _ = _site(model)
    return {relu.name: 255 * k + 1}


def _depthwise_sites(model: Any) -> list[tuple[Any, Any, Any, Any]]:
    """``(producer, batch norm, ReLU6, reader)`` of each ReLU6 that one full convolution reads.

    The producer is a depthwise (multiplier 1) or full convolution with a batch norm after it;
    in EfficientNet-Lite and MobileNet, each block's depthwise convolution and the 1x1
    convolution projecting its output.
    """
    import keras

    users, sites = _users(model), []
    for relu in model.layers:
        bn = _parent(relu) if isinstance(relu, keras.layers.ReLU) and relu.max_value == 6 else None
        producer = _parent(bn) if isinstance(bn, keras.layers.BatchNormalization) else None
        readers = users.get(id(relu.output), [])
        if (
            isinstance(producer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
            and getattr(producer, "depth_multiplier", 1) == 1
            and producer.get_config()["activation"] == "linear"
            and all(len(users.get(id(layer.output), [])) == 1 for layer in (producer, bn))
            and len(readers) == 1
            and type(readers[0]) is keras.layers.Conv2D
            and readers[0].groups == 1
            and producer.data_format == readers[0].data_format == "channels_last"
        ):
            sites.append((producer, bn, relu, readers[0]))
    return sites


def _held_sites(model: Any, k: int) -> list[tuple[Any, Any, Any, Any]]:
    """:func:`_depthwise_sites` for ``k`` pieces (none for 1), or a refusal when there are none."""
    sites = _depthwise_sites(model) if k > 1 else []
    if k > 1 and not sites:
        raise InputError(
            f"--depthwise-pieces holds ReLU6 outputs that a convolution reads, after a depthwise or "
            f"full convolution and batch norm (EfficientNet-Lite, MobileNet); {model.name} has none: "
            "leave out --depthwise-pieces"
        )
    return sites


def _folded(producer: Any, bn: Any) -> tuple[Any, Any]:
    """``producer``'s kernel and bias with the batch norm after it folded in (a depthwise kernel 3-d)."""
    import keras
    import numpy as np

    gamma = bn.gamma.numpy() if bn.scale else 1.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    kernel = producer.kernel.numpy()
    kernel = kernel[..., 0] if isinstance(producer, keras.layers.DepthwiseConv2D) else kernel
    bias = producer.bias.numpy() if producer.use_bias else 0.0
    beta = bn.beta.numpy() if bn.center else 0.0
    return kernel * scale, (bias - bn.moving_mean.numpy()) * scale + beta


def depthwise_in_pieces(model: Any, k: int, ranges: Ranges) -> tuple[Any, Ranges]:
    """A copy of ``model`` holding each ReLU6 a full convolution reads in ``k`` int8 pieces.

    The layer before the ReLU6 gives ``k`` copies of each channel, copy ``i`` magnified
    ``6 k / hi`` times and shifted down by ``6 i``, where ``[0, hi]`` is the activation's int8
    range in ``ranges``; after the ReLU6 each holds a ``k``-th of that range on all 256 steps,
    and the convolution reading them adds them back (its kernel's input channels repeated,
    divided by the magnification) in its int32 accumulator. The int8 model then rounds the
    activation to ``255 k`` steps of ``[0, hi]``. A depthwise convolution makes its copies from
    ``k`` copies of its input (``<name>_copies``, a concatenation TFLite only copies), not from a
    depth multiplier, which TFLite's int8 kernels run about 20 times slower. In float it is the
    same function as ``model`` with the activation clipped at ``hi``, as its int8 model clips it.

    Args:
        model: A functional model of plain layers (see :func:`_depthwise_sites`).
        k: Pieces, 1 to :data:`MAX_PIECES` (1: ``model`` itself).
        ranges: Int8 activation ranges by layer name (:func:`~zoo.export.simulation.int8_ranges`).

    Returns:
        The copy (each producer ``<name>_pieces``, its batch norm folded in; the ReLU6 and the
        reader keep their names), and the ranges TFLite must give the pieces: ``[0, 6]``.

    Raises:
        InputError: When ``model`` has no such activation, or ``k`` is out of range.
    """
    import keras
    import numpy as np

    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PIECES:
        raise InputError(f"depthwise pieces must be a whole number from 1 to {MAX_PIECES}, got {k!r}")
    sites = _held_sites(model, k)
    if not sites:
        return model, {}
    replaced: dict[str, Any] = {}
    weights: dict[str, list[Any]] = {}
    copied: set[str] = set()
    for producer, bn, relu, reader in sites:
        gain = 6.0 * k / max(float(ranges[relu.name][1]), 1e-6)
        kernel, bias = _folded(producer, bn)
        config = {**producer.get_config(), "name": f"{producer.name}_pieces", "use_bias": True}
        # channel i * C + c is copy i of channel c; a grouped convolution's c * k + i, in c's group
        grouped = getattr(producer, "groups", 1) > 1
        copies = (lambda a, axis: np.repeat(a, k, axis)) if grouped else _stacked(k)
        shifts = np.tile(np.arange(k), len(bias)) if grouped else np.repeat(np.arange(k), len(bias))
        kernel = copies(kernel, -1)
        if isinstance(producer, keras.layers.DepthwiseConv2D):
            kernel = kernel[..., None]
            copied.add(producer.name)
        else:
            config["filters"] = producer.filters * k
        replaced[producer.name] = type(producer).from_config(config)
        replaced[bn.name] = None
        replaced[reader.name] = type(reader).from_config(reader.get_config())
        weights[producer.name] = [kernel * gain, copies(bias * gain, 0) - 6.0 * shifts]
        weights[reader.name] = [copies(reader.kernel.numpy(), -2) / gain, *reader.get_weights()[1:]]

    clone = _cloned(model, replaced, weights, copied, k)
    return clone, {relu.name: (0.0, 6.0) for _, _, relu, _ in sites}


def _stacked(k: int) -> Any:
    """``k`` copies of an array stacked along an axis, copy after copy."""
    import numpy as np

    return lambda a, axis: np.concatenate([a] * k, axis)


def depthwise_levels(model: Any, k: int) -> dict[str, int]:
    """:func:`int8_simulation`'s ``levels`` for :func:`depthwise_in_pieces` of ``model`` (empty: 1).

    Raises:
        InputError: When ``k`` > 1 and ``model`` has no activation to hold so.
    """
    return {relu.name: 255 * k + 1 for _, _, relu, _ in _held_sites(model, k)}


def _expansion_sites(model: Any) -> list[tuple[Any, Any, Any, Any]]:
    """``(convolution, batch norm, ReLU6, depthwise convolution)`` of each ReLU6 a depthwise one reads.

    The ReLU6 follows a full convolution and its batch norm; in EfficientNet-Lite and MobileNet,
    each block's 1x1 expansion. The first activation is left to :func:`first_in_pieces`.
    """
    import keras

    users, sites = _users(model), []
    first = quantized_outputs(model)[:1]
    for relu in model.layers:
        bn = _parent(relu) if isinstance(relu, keras.layers.ReLU) and relu.max_value == 6 else None
        producer = _parent(bn) if isinstance(bn, keras.layers.BatchNormalization) else None
        readers = users.get(id(relu.output), [])
        if (
            type(producer) is keras.layers.Conv2D
            and relu not in first
            and producer.groups == 1
            and producer.get_config()["activation"] == "linear"
            and all(len(users.get(id(layer.output), [])) == 1 for layer in (producer, bn))
            and len(readers) == 1
            and isinstance(readers[0], keras.layers.DepthwiseConv2D)
            and readers[0].depth_multiplier == 1
            and readers[0].get_config()["activation"] == "linear"
            and tuple(readers[0].dilation_rate) == (1, 1)
            and producer.data_format == readers[0].data_format == "channels_last"
        ):
            sites.append((producer, bn, relu, readers[0]))
    return sites


def _expansion_held(model: Any, k: int) -> list[tuple[Any, Any, Any, Any]]:
    """:func:`_expansion_sites` for ``k`` pieces (none for 1), or a refusal when there are none."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PIECES:
        raise InputError(f"expansion pieces must be a whole number from 1 to {MAX_PIECES}, got {k!r}")
    sites = _expansion_sites(model) if k > 1 else []
    if k > 1 and not sites:
        raise InputError(
            f"--expansion-pieces holds ReLU6 outputs that a depthwise convolution reads, after a "
            f"convolution and batch norm (EfficientNet-Lite, MobileNet); {model.name} has none past its "
            "first activation: leave out --expansion-pieces"
        )
    return sites


def expansion_in_pieces(model: Any, k: int, ranges: Ranges) -> tuple[Any, Ranges]:
    """A copy of ``model`` holding each ReLU6 a depthwise convolution reads in ``k`` int8 pieces.

    As :func:`depthwise_in_pieces` holds an activation, for the ReLU6 after each block's
    expansion (a convolution and batch norm): that convolution gives ``k`` copies of each
    channel, copy ``i`` magnified ``6 k / hi`` times and shifted down by ``6 i``, side by side
    (channel ``c * k + i``). The depthwise convolution reading them becomes a grouped
    convolution, one group of ``k`` inputs per channel, that adds the copies back (each tap
    divided by the magnification) in its int32 accumulator: ``k`` times its multiplications.
    In float it is the same function as ``model`` with the activation clipped at ``hi``, as
    its int8 model clips it. The model's first activation is :func:`first_in_pieces`'.

    Args:
        model: A functional model of plain layers (see :func:`_expansion_sites`).
        k: Pieces, 1 to :data:`MAX_PIECES` (1: ``model`` itself).
        ranges: Int8 activation ranges by layer name (:func:`~zoo.export.simulation.int8_ranges`).

    Returns:
        The copy (each expansion ``<name>_pieces``, its batch norm folded in; the ReLU6 and the
        grouped convolution keep their names), and the ranges TFLite must give the pieces: ``[0, 6]``.

    Raises:
        InputError: When ``model`` has no such activation, or ``k`` is out of range.
    """
    import keras
    import numpy as np

    sites = _expansion_held(model, k)
    if not sites:
        return model, {}
    replaced: dict[str, Any] = {}
    weights: dict[str, list[Any]] = {}
    for producer, bn, relu, depthwise in sites:
        gain = 6.0 * k / max(float(ranges[relu.name][1]), 1e-6)
        kernel, bias = _folded(producer, bn)
        config = {**producer.get_config(), "name": f"{producer.name}_pieces", "use_bias": True}
        replaced[producer.name] = type(producer).from_config({**config, "filters": producer.filters * k})
        replaced[bn.name] = None
        channels = producer.filters
        shifts = 6.0 * np.tile(np.arange(k), channels)
        weights[producer.name] = [np.repeat(kernel * gain, k, -1), np.repeat(bias * gain, k) - shifts]
        replaced[depthwise.name] = keras.layers.Conv2D(
            channels,
            depthwise.kernel_size,
            depthwise.strides,
            depthwise.padding,
            groups=channels,
            use_bias=depthwise.use_bias,
            name=depthwise.name,
        )
        taps = depthwise.kernel.numpy()[:, :, None, :, 0] / gain
        grouped = np.broadcast_to(taps, (*taps.shape[:2], k, channels)).astype(np.float32)
        weights[depthwise.name] = [grouped, *depthwise.get_weights()[1:]]
    clone = _cloned(model, replaced, weights)
    return clone, {relu.name: (0.0, 6.0) for _, _, relu, _ in sites}


def expansion_levels(model: Any, k: int) -> dict[str, int]:
    """:func:`int8_simulation`'s ``levels`` for :func:`expansion_in_pieces` of ``model`` (empty: 1).

    Raises:
        InputError: When ``k`` > 1 and ``model`` has no activation to hold so, or ``k`` is out of range.
    """
    return {relu.name: 255 * k + 1 for _, _, relu, _ in _expansion_held(model, k)}
