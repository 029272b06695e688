"""A Keras copy of a model that computes as its int8 TFLite model would.

Each int8 activation fake-quantised on the export's range, kernels rounded per output
channel, TFLite's fusions of batch norms and activations respected.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from zoo.errors import InputError
from zoo.export._common import Ranges
from zoo.export.quantize import _clipped_range


def _passthrough_layers() -> tuple[type, ...]:
    """Layers whose int8 output TFLite keeps on their input's scale: no quantisation of their own."""
    import keras

    return (
        keras.layers.InputLayer,
        keras.layers.Dropout,
        keras.layers.Identity,
        keras.layers.Flatten,
        keras.layers.Reshape,
        keras.layers.MaxPooling2D,
    )


#: Activations TFLite fuses into the convolution or dense layer computing them (others are ops of their own).
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")


#: Output ranges TFLite's int8 kernels fix for some activations (a scale of 1/128 or 1/256).
FIXED_RANGES = {"tanh": (-1.0, 127 / 128), "sigmoid": (0.0, 255 / 256)}


def _weights_by_name(source: Any, target: Any) -> Any:
    """``target`` with each of its layers that has weights given those of ``source``'s layer of that name."""
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    return target


def _parent(layer: Any) -> Any:
    """The one layer whose output ``layer`` takes, or ``None`` (an input layer, or several inputs)."""
    nodes = layer._inbound_nodes
    return nodes[0].parent_nodes[0].operation if len(nodes) == 1 and len(nodes[0].parent_nodes) == 1 else None


def _users(model: Any) -> dict[int, list[Any]]:
    """The layers of ``model`` that take each tensor, by the tensor's ``id``."""
    users: dict[int, list[Any]] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                users.setdefault(id(tensor), []).append(layer)
    return users


def _activation_name(layer: Any) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "linear")


def split_activations(model: Any) -> Any:
    """``model`` with each activation TFLite runs apart from its layer (a convolution's tanh, say) as a layer.

    A convolution or dense layer whose own activation is not one TFLite fuses
    (:data:`FUSED_ACTIVATIONS`) computes linearly and is followed by an ``Activation`` layer
    named ``<layer>_<activation>``: the same function, with the int8 tensor TFLite keeps
    between the two as a layer output that can be simulated and given a range. ``model``
    itself when it has none.
    """
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    split = {
        layer.name: layer.activation
        for layer in model.layers
        if isinstance(layer, kinds) and _activation_name(layer) not in FUSED_ACTIVATIONS
    }
    if not split:
        return model

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in split:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        out = layer(*args, **kwargs)
        if layer.name not in split:
            return out
        activation = split[layer.name]
        return keras.layers.Activation(activation, name=f"{layer.name}_{activation.__name__}")(out)

    return _weights_by_name(model, keras.models.clone_model(model, clone_function=clone, call_function=call))


def _fuses(layer: Any, user: Any) -> bool:
    """Whether TFLite folds ``user`` into ``layer``, so that ``layer``'s own output is never int8."""
    import keras

    kernels = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    if isinstance(user, keras.layers.BatchNormalization):
        return isinstance(layer, kernels)
    name = getattr(getattr(user, "activation", None), "__name__", "")
    relu = isinstance(user, keras.layers.ReLU) or (
        isinstance(user, keras.layers.Activation) and name in ("relu", "relu6")
    )
    return relu and isinstance(layer, (*kernels, keras.layers.BatchNormalization, keras.layers.Add))


def quantized_outputs(model: Any) -> list[Any]:
    """The layers of ``split_activations(model)`` whose outputs TFLite's int8 model holds as int8 tensors.

    Every layer's output is, except those TFLite fuses into the layer before them (a batch
    norm into its convolution, a ReLU into its convolution or norm) and those that keep
    their input's scale (dropout, reshapes, max pooling). A layer's activation TFLite
    runs apart (:func:`split_activations`) is a layer of its own here.
    """
    model = split_activations(model)
    users = _users(model)
    found = []
    for layer in model.layers:
        if isinstance(layer, _passthrough_layers()):
            continue
        after = users.get(id(layer.output), [])
        if len(after) == 1 and _fuses(layer, after[0]):
            continue
        found.append(layer)
    return found


def _fake_quant_layer() -> type:
    import keras

    class FakeQuant(keras.layers.Layer):
        """An int8 activation as TFLite stores it (``[lo, hi]`` in 256 steps), straight-through gradient.

        ``levels`` other than 256 rounds to that many steps instead (a study of finer activations).
        """

        def __init__(self, lo: float, hi: float, levels: int = 256, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.lo, self.hi, self.levels = float(min(lo, 0.0)), float(max(hi, 0.0)), int(levels)

        def call(self, x: Any) -> Any:
            top = self.levels - 1
            scale = max(self.hi - self.lo, 1e-8) / top
            zero = round(-self.lo / scale)
            clipped = keras.ops.clip(x, self.lo, self.hi)
            steps = keras.ops.clip(keras.ops.round(clipped / scale) + zero, 0, top)
            return clipped + keras.ops.stop_gradient((steps - zero) * scale - clipped)

    return FakeQuant


def _producer(layer: Any) -> Any:
    """The layer whose int8 output ``layer`` takes: the one before it, through layers that keep its scale."""
    current = _parent(layer)
    while isinstance(current, _passthrough_layers()):
        current = _parent(current)
    return current


def _activation_ranges(model: Any, layers: list[Any], calibration: Any) -> dict[str, tuple[float, float]]:
    """Each layer's output range on ``calibration``, ``model`` run 16 images at a time (:func:`ranges_of`)."""
    import keras

    probe = keras.Model(model.input, [layer.output for layer in layers]) if layers else None
    batches = (
        keras.tree.flatten(probe.predict_on_batch(calibration[start : start + 16])) if probe else []
        for start in range(0, len(calibration), 16)
    )
    return ranges_of(layers, batches)


def ranges_of(layers: list[Any], batches: Iterable[list[Any]]) -> dict[str, tuple[float, float]]:
    """Each layer's output range, as the export cuts it (:func:`_clipped_range`), from its values.

    ``batches`` gives the layers' outputs a batch at a time. Except where TFLite's int8 kernels
    fix the range: a tanh's or sigmoid's (:data:`FIXED_RANGES`), and an average pooling's, which
    is its input's.
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    samples: list[list[Any]] = [[] for _ in layers]
    for outputs in batches:
        for i, values in enumerate(outputs):
            values = np.asarray(values).ravel()
            samples[i].append(values[rng.integers(0, values.size, min(values.size, 20000))])
    ranges = {layer.name: _clipped_range(values) for layer, values in zip(layers, samples, strict=True)}
    for layer in layers:  # in the graph's order: a pooling after a pooling takes the first one's range
        if isinstance(layer, keras.layers.Activation) and _activation_name(layer) in FIXED_RANGES:
            ranges[layer.name] = FIXED_RANGES[_activation_name(layer)]
        producer = _producer(layer) if isinstance(layer, keras.layers.AveragePooling2D) else None
        if producer is not None and producer.name in ranges:
            ranges[layer.name] = ranges[producer.name]
    return ranges


def int8_ranges(model: Any, calibration: Any) -> Ranges:
    """The range :func:`int8_simulation` gives each int8 activation of ``model`` on ``calibration``.

    Keyed by the name of the layer whose output it is (in :func:`split_activations` of
    ``model``), and also by the names of the layers TFLite fuses into that one (a convolution
    and batch norm before a ReLU6), since a fused tensor may be named after any of them. The
    export gives TFLite these ranges after distillation, so that the file rounds each activation
    on the grid the weights were trained for.
    """
    model = split_activations(model)
    layers = quantized_outputs(model)
    ranges = _activation_ranges(model, layers, calibration)
    named = dict(ranges)
    for layer in layers:
        current, producer = layer, _parent(layer)
        while producer is not None and producer.name not in ranges and _fuses(producer, current):
            named.setdefault(producer.name, ranges[layer.name])
            current, producer = producer, _parent(producer)
    return named


def int8_simulation(
    model: Any,
    calibration: Any,
    only: Collection[str] | None = None,
    ranges: Ranges | None = None,
    levels: dict[str, int] | None = None,
) -> Any:
    """A copy of ``model`` (:func:`split_activations` of it) that computes as TFLite's int8 model of it would.

    Each quantised activation (:func:`quantized_outputs`) goes through a fake-quantiser
    with the range the export gives it on ``calibration`` (model inputs). The copy has
    its own weights (the same values); :func:`distil_int8` rounds its kernels as it runs.
    ``only`` names the layers whose outputs are rounded (default: all of them), to see
    what each costs; the input is always rounded, as TFLite's is. ``ranges`` (from
    :func:`int8_ranges`, for other weights) replaces the ranges ``model`` has on ``calibration``.
    ``levels`` rounds the named layers' outputs to that many steps of their range instead of
    int8's 256 (what a finer activation would change; not a TFLite model).

    Raises:
        InputError: When ``model`` nests other models (a fine-tuned backbone, say), or
            ``only`` names a layer whose output is not int8.
    """
    import keras
    import numpy as np

    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise InputError(
            f"quantisation-aware distillation takes a model of plain layers; {model.name} nests "
            f"{', '.join(nested)}: export it with --qat-steps 0"
        )
    if isinstance(model.input, (list, tuple, dict)):
        raise InputError(f"quantisation-aware distillation takes one input; {model.name} has several")
    model = split_activations(model)
    quantized = quantized_outputs(model)
    unknown = sorted((set(only or ()) | set(levels or ())) - {layer.name for layer in quantized})
    if unknown:
        raise InputError(
            f"{', '.join(unknown)}: not among {model.name}'s int8 activations; choose from "
            f"{', '.join(layer.name for layer in quantized)}"
        )
    layers = [layer for layer in quantized if only is None or layer.name in only]
    if ranges is None:
        ranges = _activation_ranges(model, layers, calibration) if layers else {}
    else:  # only the int8 activations: int8_ranges also names the layers fused into them
        ranges = {layer.name: ranges[layer.name] for layer in layers}
    fake_quant = _fake_quant_layer()
    image = keras.Input(model.input.shape[1:], dtype=model.input.dtype, name=model.input.name)
    lo, hi = float(np.min(calibration)), float(np.max(calibration))
    quantized_image = fake_quant(lo, hi, name="int8_input")(image)  # TFLite quantises its input too

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        args = tuple(keras.tree.map_structure(lambda t: quantized_image if t is image else t, args))
        out = layer(*args, **kwargs)
        if layer.name not in ranges:
            return out
        steps = (levels or {}).get(layer.name, 256)
        return fake_quant(*ranges[layer.name], steps, name=f"int8_{layer.name}")(out)

    return _weights_by_name(model, keras.models.clone_model(model, input_tensors=image, call_function=call))
