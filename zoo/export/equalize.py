"""The channels of a model's linear streams brought to one range: the same function, finer int8 steps.

An int8 tensor has one scale for all its channels, set by its widest; a narrow channel gets
few of its 256 steps. Some tensors are linear in the weights that make them and are read
only by kernels: the output of a batch norm with no activation after it, of a linear
convolution or dense layer, or a sum of such, read by convolutions, dense layers and the
sums it joins. Joined by their sums, such tensors form a *stream*: the residual stream of a
MobileNetV2 or EfficientNet stage, with the linear bottleneck outputs its sums add. Channel
``c`` of a stream can be multiplied by ``s_c`` where each of its tensors is made (a batch
norm's gamma and beta, a kernel's output channel and bias) and divided by ``s_c`` in every
kernel that reads it: the same function in float (to rounding), nothing more to compute,
every tensor still int8, and channel ``c`` spans ``s_c`` times as many int8 steps. ``s_c``
brings channel ``c``'s largest magnitude on the calibration inputs up to the stream's widest
channel's, at most :data:`MAX_SCALE` times. (A ReLU6's output is not a stream: it clips at 6.)

``zoo export --equalize``; Keras and NumPy only: it runs on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.export.quantize import _nested_models, _owner_inputs
from zoo.export.simulation import _users

#: The most a stream's channel is scaled up: past it, the kernels reading it lose their own steps.
MAX_SCALE = 8.0

#: How far equalised outputs may move from the model's in float, relative to its largest output.
FLOAT_TOLERANCE = 1e-4

#: Images run at a time.
_BATCH = 16


@dataclass
class Stream:
    """Tensors of one functional model joined by sums, scaled per channel as one.

    Attributes:
        owner: The functional model whose layers these are (the model, or one nested in it).
        makers: The layers whose outputs are the stream's tensors, in the graph's order:
            batch norms, linear kernels, the sums (``Add``) that join them and the layers
            that pass them on (:func:`_carries`).
        readers: The convolutions and dense layers that read a tensor of the stream.
    """

    owner: Any
    makers: list[Any] = field(default_factory=list)
    readers: list[Any] = field(default_factory=list)


def _kernel_kinds() -> tuple[type, ...]:
    import keras

    return (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)


def _plain_kernel(layer: Any) -> bool:
    """A full convolution or dense layer (kernel ``(..., in, out)``), channels last, called once."""
    return (
        isinstance(layer, _kernel_kinds())
        and getattr(layer, "groups", 1) == 1
        and getattr(layer, "data_format", "channels_last") == "channels_last"
        and len(layer._inbound_nodes) == 1
    )


def _scalable(layer: Any) -> bool:
    """Whether each output channel of ``layer`` can be scaled by its weights alone."""
    import keras

    if isinstance(layer, keras.layers.BatchNormalization):
        once = len(layer._inbound_nodes) == 1
        return once and bool(layer.scale) and layer.axis in (-1, len(layer.input.shape) - 1)
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    return _plain_kernel(layer) and activation == "linear"


def _carries(layer: Any) -> bool:
    """Whether ``layer`` adds or passes on its inputs' channels as they come, scaled or not.

    Sums, and layers that commute with a positive scale per channel: dropout, identity,
    zero padding and pooling.
    """
    import keras

    kinds = (
        keras.layers.Add,
        keras.layers.Dropout,
        keras.layers.SpatialDropout1D,
        keras.layers.SpatialDropout2D,
        keras.layers.SpatialDropout3D,
        keras.layers.Identity,
        keras.layers.ZeroPadding1D,
        keras.layers.ZeroPadding2D,
        keras.layers.ZeroPadding3D,
        keras.layers.MaxPooling1D,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling1D,
        keras.layers.AveragePooling2D,
        keras.layers.GlobalAveragePooling1D,
        keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalMaxPooling1D,
        keras.layers.GlobalMaxPooling2D,
    )
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    return isinstance(layer, kinds) and channels_last and len(layer._inbound_nodes) == 1


def _groups(owner: Any) -> list[tuple[list[Any], bool]]:
    """``owner``'s layers joined by the sums and carriers of :func:`_carries` (or alone when scalable).

    Each group is ``(layers in the graph's order, whether a layer in it takes a tensor no
    layer of ``owner`` makes once)``.
    """
    import keras

    layers = [layer for layer in owner.layers if not isinstance(layer, keras.layers.InputLayer)]
    made = {id(layer.output): layer for layer in layers if len(layer._inbound_nodes) == 1}
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        parent.setdefault(name, name)
        while parent[name] != name:
            name = parent[name]
        return name

    foreign: set[str] = set()
    for layer in layers:
        if _carries(layer):
            for tensor in layer._inbound_nodes[0].input_tensors:
                maker = made.get(id(tensor))
                if maker is None:
                    foreign.add(layer.name)
                else:
                    parent[root(maker.name)] = root(layer.name)
    groups: dict[str, list[Any]] = {}
    for layer in layers:
        if layer.name in parent or _scalable(layer):
            groups.setdefault(root(layer.name), []).append(layer)
    return [(group, any(layer.name in foreign for layer in group)) for group in groups.values()]


def _stream(owner: Any, group: list[Any], users: dict[int, list[Any]], outputs: set[int]) -> Stream | None:
    """The :class:`Stream` that ``group`` (of :func:`_groups`) makes, or ``None`` when it is none."""
    names = {layer.name for layer in group}
    readers: dict[str, Any] = {}
    for layer in group:
        if not (_carries(layer) or _scalable(layer)) or id(layer.output) in outputs:
            return None
        for user in users.get(id(layer.output), []):
            if user.name in names and _carries(user):
                continue
            if _plain_kernel(user):  # a linear kernel of the stream reading it too: both
                readers[user.name] = user
            else:
                return None
    return Stream(owner, list(group), list(readers.values())) if readers else None


def linear_streams(model: Any) -> list[Stream]:
    """The streams of ``model`` and of the functional models nested in it (see the module docstring).

    A stream's tensors are made by batch norms (channels last, with a gamma) and linear full
    convolutions or dense layers, and by sums (``Add``) and layers that pass channels on
    (dropout, pooling: :func:`_carries`) of only such tensors; every reader of each is one of
    those or a full convolution or dense layer, and none is an output of its model. Layers
    called more than once take part in none.
    """
    import keras

    owners = [model, *(m for m in _nested_models(model) if hasattr(m, "_nodes_by_depth"))]
    found = []
    for owner in owners:
        if len(owner.inputs) != 1 or (owner is not model and len(owner._inbound_nodes) != 1):
            continue
        users = _users(owner)
        outputs = {id(tensor) for tensor in keras.tree.flatten(owner.outputs)}
        for group, foreign in _groups(owner):
            stream = None if foreign else _stream(owner, group, users, outputs)
            if stream is not None:
                found.append(stream)
    return found


def _peaks(model: Any, owner: Any, streams: list[Stream], calibration: Any) -> list[Any]:
    """Each stream's largest magnitude per channel over its tensors, on ``calibration``."""
    import keras
    import numpy as np

    inputs = _owner_inputs(model, owner, calibration)
    measured = [[layer for layer in stream.makers if _measured(layer)] for stream in streams]
    tensors = [layer.output for layers in measured for layer in layers]
    probe = keras.Model(owner.inputs, tensors)
    peaks: list[Any] = [0.0] * len(tensors)
    for start in range(0, len(inputs), _BATCH):
        values = keras.tree.flatten(probe.predict_on_batch(inputs[start : start + _BATCH]))
        for i, value in enumerate(values):
            value = np.abs(keras.ops.convert_to_numpy(value))
            peaks[i] = np.maximum(peaks[i], value.reshape(-1, value.shape[-1]).max(0))
    found, at = [], 0
    for layers in measured:
        found.append(np.max(peaks[at : at + len(layers)], axis=0))
        at += len(layers)
    return found


def _measured(layer: Any) -> bool:
    """Whether a stream's range is measured on ``layer``'s output (the others pass theirs on)."""
    import keras

    return _scalable(layer) or isinstance(layer, keras.layers.Add)


def _multiply(variable: Any, factor: Any) -> None:
    import keras

    variable.assign(keras.ops.convert_to_numpy(variable) * factor)


def _scale(stream: Stream, scale: Any) -> None:
    """Scale ``stream``'s channels by ``scale`` where they are made; its readers' inputs by ``1 / scale``."""
    import keras

    for layer in stream.makers:
        if isinstance(layer, keras.layers.BatchNormalization):
            _multiply(layer.gamma, scale)
            if layer.center:
                _multiply(layer.beta, scale)
        elif _scalable(layer):
            _multiply(layer.kernel, scale)  # the output channel is the kernel's last axis
            if layer.use_bias:
                _multiply(layer.bias, scale)
    for layer in stream.readers:
        _multiply(layer.kernel, (1.0 / scale)[:, None])  # the input channel is the one before it


def equalized(model: Any, calibration: Any, max_scale: float = MAX_SCALE) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` with the channels of its :func:`linear_streams` equalised on ``calibration``.

    Args:
        model: A functional Keras model.
        calibration: Model inputs the channels' ranges are measured on.
        max_scale: The most a channel is scaled up.

    Returns:
        The copy (``model``'s function in float) and what was done: ``"streams"``,
        ``"tensors"`` (those a batch norm, kernel or sum makes) and ``"readers"`` counted, the
        channels' ``"scales"`` (one array a stream) and ``"max_diff"``, the largest output
        change in float on the first inputs.

    Raises:
        ExportError: When the copy's outputs differ from ``model``'s beyond
            :data:`FLOAT_TOLERANCE` of their largest magnitude (a layer the streams misread).
    """
    import keras
    import numpy as np

    from zoo.export._common import ExportError

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    streams = linear_streams(copy)
    scales = []
    for owner in {id(stream.owner): stream.owner for stream in streams}.values():
        mine = [stream for stream in streams if stream.owner is owner]
        for stream, peak in zip(mine, _peaks(copy, owner, mine, calibration), strict=True):
            scale = np.clip(peak.max() / np.maximum(peak, 1e-12), 1.0, max_scale).astype("float32")
            _scale(stream, scale)
            scales.append(scale)
    sample = calibration[:32]
    want = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(sample)))
    diff = float(np.abs(np.asarray(keras.ops.convert_to_numpy(copy.predict_on_batch(sample))) - want).max())
    if diff > FLOAT_TOLERANCE * max(1.0, float(np.abs(want).max())):
        raise ExportError(f"equalising {model.name}'s streams moved its outputs by {diff:.3g} in float")
    tensors = sum(1 for stream in streams for layer in stream.makers if _measured(layer))
    summary = {"streams": len(streams), "tensors": tensors, "scales": scales}
    summary.update(readers=sum(len(s.readers) for s in streams), max_diff=diff)
    return copy, summary
