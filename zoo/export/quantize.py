"""TFLite conversion and int8 post-training quantisation.

Activation ranges cut from the calibration values, weights rounded on TFLite's grid, and
biases corrected for the rounding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.export._common import CLIP_QUANTILE, ExportError, Ranges
from zoo.export.rounding import compensated_kernels, layer_inputs
from zoo.export.runtimes import tflite_interpreter


def _tflite_bytes(
    saved_dir: Path,
    quantize: str | None,
    calibration: Any,
    ranges: Ranges | None = None,
    quantile: float = CLIP_QUANTILE,
) -> bytes:
    """TFLite bytes of a SavedModel: float32, float16 weights, int8 (calibrated) or dynamic-range.

    For int8, ``ranges`` and ``quantile`` are :func:`_with_ranges`'.
    """
    if quantize == "int8":
        return _int8_files(saved_dir, calibration, [quantile], ranges)[0]
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir))
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":  # int8 weights; activations quantised per batch when run
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _int8_converter(saved_dir: Path, calibration: Any) -> Any:
    """TFLite's converter of a SavedModel to full integer, calibrated on ``calibration``."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in calibration)
    return converter


def _int8_files(
    saved_dir: Path, calibration: Any, quantiles: list[float], ranges: Ranges | None = None
) -> list[bytes]:
    """Full-integer TFLite bytes of a SavedModel, one per clip quantile, from one calibration pass.

    Each file's activation ranges leave out the calibration's outliers (:func:`_with_ranges`).
    """
    from tensorflow.lite.python import convert

    calibrated = _int8_calibration(_int8_converter(saved_dir, calibration), calibration)
    return [convert.mlir_quantize(_with_ranges(calibrated, ranges, q)) for q in quantiles]


def _tensor_layers(name: bytes | str) -> set[str]:
    """The Keras layers whose operations a TFLite tensor's name lists (a fused operator lists several).

    Each part reads ``model_1/stem_relu6_1/Relu6``: Keras adds ``_1`` to each layer's scope.
    """
    text = name.decode() if isinstance(name, bytes) else name
    layers = set()
    for part in text.split(";"):
        scopes = part.split("/")
        stem, _, suffix = scopes[1].rpartition("_") if len(scopes) > 2 else ("", "", "")
        if stem and suffix.isdigit():
            layers.add(stem)
    return layers


def _layer_outputs(subgraph: Any) -> dict[int, set[str]]:
    """Tensor index -> the Keras layers whose output the tensor holds, in a TFLite ``subgraph``.

    Those its name lists (:func:`_tensor_layers`), less those the outputs of its consumers
    also list: a convolution's output before the tanh of the same layer is a step inside
    that layer, not its output. A model's output tensor is named after the signature
    (``StatefulPartitionedCall_1:0``); it holds the output of the layer its operator's own
    weights and biases are named after.
    """
    layers = {i: _tensor_layers(tensor.name) for i, tensor in enumerate(subgraph.tensors)}
    produced = {i for op in subgraph.operators for i in op.outputs}
    for op in subgraph.operators:
        own = set().union(*(layers[i] for i in op.inputs if i >= 0 and i not in produced))
        for i in op.outputs:
            if i >= 0 and not layers[i]:
                layers[i] = own
    inner: dict[int, set[str]] = {i: set() for i in layers}
    for op in subgraph.operators:
        later = set().union(*(layers[i] for i in op.outputs if i >= 0))
        for i in op.inputs:
            if i >= 0:
                inner[i] |= later
    return {i: layers[i] - inner[i] for i in layers}


def _given_range(layers: set[str], ranges: Ranges | None) -> tuple[float, float] | None:
    """The range ``ranges`` gives the layers whose output a TFLite tensor holds, if just one."""
    given = {ranges[layer] for layer in layers if layer in (ranges or {})}
    return given.pop() if len(given) == 1 else None


@dataclasses.dataclass
class _Calibration:
    """TFLite's calibrated float model (its flatbuffer object) and what one pass sampled of it.

    ``samples`` holds sampled values of each tensor with one range, ``outputs`` the Keras
    layers whose output each tensor holds (:func:`_layer_outputs`).
    """

    model: Any
    samples: dict[int, list[Any]]
    outputs: dict[int, set[str]]


def _int8_calibration(converter: Any, calibration: Any) -> _Calibration:
    """Run TFLite's calibration (only) and sample every ranged tensor's values on ``calibration``.

    Uses TFLite's calibrate-only conversion and, in :func:`_int8_files`, ``mlir_quantize``,
    which are not public API (``tensorflow.lite.python``): a TensorFlow without them fails the
    export's tests.
    """
    import numpy as np
    from tensorflow.lite.tools import flatbuffer_utils

    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    ranged = [
        i
        for i, t in enumerate(tensors)
        if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1
    ]
    with warnings.catch_warnings():  # keeping every tensor is what this pass is for
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interpreter = tflite_interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    samples: dict[int, list[Any]] = {i: [] for i in ranged}
    for x in calibration:
        interpreter.set_tensor(given["index"], x[None].astype(given["dtype"]))
        interpreter.invoke()
        for i in list(samples):
            try:
                values = interpreter.get_tensor(i).ravel()
            except ValueError:  # not kept by the interpreter (e.g. folded away): TFLite's range stays
                del samples[i]
                continue
            samples[i].append(values[rng.integers(0, values.size, min(values.size, 2000))])
    return _Calibration(model, samples, _layer_outputs(model.subgraphs[0]))


def _with_ranges(
    calibrated: _Calibration, ranges: Ranges | None = None, quantile: float = CLIP_QUANTILE
) -> bytes:
    """The calibrated float model's bytes, its activation ranges cut to the calibration quantiles.

    TFLite's calibrator gives each tensor the min and max it saw, and a handful of outlying
    values can stretch that range several times over (residual sums, for one), coarsening
    the int8 step for every other value. Here each range is cut to the sampled values'
    ``quantile`` and ``1 - quantile`` quantiles (values beyond saturate); TFLite's own
    quantiser (``mlir_quantize``) then finishes the model. ``ranges`` (Keras layer name ->
    ``(lo, hi)``) sets the range of the tensors holding those layers' outputs instead, so that
    the file rounds as a distilled simulation did. Each call sets every sampled tensor's range
    on ``calibrated.model``, so one calibration serves calls with other ranges.
    """
    import numpy as np
    from tensorflow.lite.tools import flatbuffer_utils

    tensors = calibrated.model.subgraphs[0].tensors
    for i, samples in calibrated.samples.items():
        lo, hi = _given_range(calibrated.outputs[i], ranges) or _clipped_range(samples, quantile)
        tensors[i].quantization.min = np.array([lo], np.float32)
        tensors[i].quantization.max = np.array([hi], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(calibrated.model))


def _clipped_range(samples: list[Any], quantile: float = CLIP_QUANTILE) -> tuple[float, float]:
    """An int8 activation range: the sampled values' ``quantile`` quantiles, widened to hold 0."""
    import numpy as np

    lo, hi = np.quantile(np.concatenate(samples), [quantile, 1 - quantile])
    return min(float(lo), 0.0), max(float(hi), 0.0)


def int8_weights(kernel: Any, depthwise: bool = False) -> Any:
    """``kernel`` rounded to TFLite's int8 weight grid and back: symmetric, one scale per output channel.

    Convolution and dense kernels have their output channels last; a depthwise kernel
    ``(h, w, channels, multiplier)`` has ``channels * multiplier``. A batch norm after the
    layer scales each output channel, which leaves this rounding as it is when TFLite folds it in.
    """
    import keras

    return keras.ops.convert_to_numpy(_int8_grid(kernel, depthwise)).astype(kernel.dtype)


def _int8_grid(kernel: Any, depthwise: bool) -> Any:
    """:func:`int8_weights` in ``keras.ops`` (a backend tensor; also inside a traced training step)."""
    import keras

    shape = tuple(kernel.shape)
    flat = keras.ops.reshape(kernel, (*shape[:-2], -1)) if depthwise else kernel
    peak = keras.ops.max(
        keras.ops.abs(flat), axis=tuple(range(len(shape) - (2 if depthwise else 1))), keepdims=True
    )
    scale = keras.ops.where(peak > 0, peak / 127, 1.0)
    return keras.ops.reshape(keras.ops.round(flat / scale) * scale, shape)


def _rounding_shift(layer: Any, x: Any, change: Any) -> tuple[Any, int]:
    """Sum over ``x`` and count, per output channel, of what ``change`` to the kernel adds to the output."""
    import keras

    if isinstance(layer, keras.layers.Dense):
        y = keras.ops.matmul(x, change)
    else:
        conv = keras.ops.depthwise_conv if isinstance(layer, keras.layers.DepthwiseConv2D) else keras.ops.conv
        y = conv(x, change, strides=layer.strides, padding=layer.padding, dilation_rate=layer.dilation_rate)
    y = keras.ops.convert_to_numpy(y)
    return y.reshape(-1, y.shape[-1]).sum(0), y.size // y.shape[-1]


def bias_corrections(model: Any, layers: list, kernels: list, rounded: list, calibration: Any) -> list:
    """Empirical bias correction (Nagel et al. 2019) of rounded kernels, on the float network's inputs.

    For each layer of the functional ``model`` (its own, not a nested model's), the mean
    shift rounding makes to its output channels over ``calibration`` (``model``'s inputs)
    is taken back from the batch norm that follows it (its moving mean) or from its own bias.

    Returns:
        ``(variable, corrected value)`` pairs; layers with neither are left out.
    """
    import keras

    sums, counts = [0.0] * len(layers), [0] * len(layers)
    for inputs in layer_inputs(model, layers, calibration):
        for i, x in enumerate(inputs):
            total, count = _rounding_shift(layers[i], x, (rounded[i] - kernels[i]).astype("float32"))
            sums[i], counts[i] = sums[i] + total, counts[i] + count
    norms = norms_after(model)
    changes = []
    for layer, total, count in zip(layers, sums, counts, strict=True):
        shift = total / count
        if id(layer.output) in norms:
            mean = norms[id(layer.output)].moving_mean
            changes.append((mean, keras.ops.convert_to_numpy(mean) + shift))  # the norm subtracts its mean
        elif getattr(layer, "use_bias", False):
            changes.append((layer.bias, keras.ops.convert_to_numpy(layer.bias) - shift))
    return changes


def norms_after(model: Any) -> dict[int, Any]:
    """The batch norms of ``model`` called once, by the ``id`` of the tensor each normalises."""
    import keras

    norms = [n for n in model.layers if isinstance(n, keras.layers.BatchNormalization)]
    return {id(_single_input(n)): n for n in norms if _single_input(n) is not None}


def _single_input(layer: Any) -> Any:
    """The layer's input tensor when it is called exactly once in its model, else ``None``."""
    return layer.input if len(getattr(layer, "_inbound_nodes", ())) == 1 else None


def _kernel_layers(model: Any) -> list[tuple[Any, str, Any]]:
    """``(owner, kind, layer)`` for each convolution, depthwise convolution and dense layer.

    Layers of functional models nested in ``model`` (a fine-tuned backbone, say) are
    included with their own model as owner; layers called more than once, or with their
    channels first, are left out (TFLite rounds them itself).
    """
    import keras

    kinds = (
        (keras.layers.DepthwiseConv2D, "depthwise convolutions"),
        (keras.layers.Conv2D, "convolutions"),
        (keras.layers.Dense, "dense layers"),
    )
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth"):
            if _single_input(layer) is not None:
                found += _kernel_layers(layer)
            continue
        kind = next((name for cls, name in kinds if isinstance(layer, cls)), None)
        channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
        if kind is not None and channels_last and _single_input(layer) is not None:
            found.append((model, kind, layer))
    return found


def _owner_inputs(model: Any, owner: Any, calibration: Any) -> Any:
    """The values ``owner`` (``model`` or a functional model nested in it) receives on ``calibration``."""
    import keras

    if owner is model:
        return calibration
    for layer in model.layers:
        if layer is owner or (isinstance(layer, keras.Model) and owner in _nested_models(layer)):
            node = layer._inbound_nodes[0]
            probe = keras.Model(model.input, node.input_tensors)
            outer = probe.predict(calibration, batch_size=16, verbose=0)
            if isinstance(outer, list) and len(outer) == 1:
                outer = outer[0]
            return _owner_inputs(layer, owner, outer)
    raise ValueError(f"{owner.name} is not inside {model.name}")


def _nested_models(model: Any) -> list[Any]:
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += [layer, *_nested_models(layer)]
    return found


@contextlib.contextmanager
def rounded_weights(
    model: Any, calibration: Any = None, only: list[str] | None = None, compensate: bool = True
) -> Iterator[dict]:
    """Within the block, the kernels of ``model`` lie on TFLite's int8 grid; after it, the float ones.

    With ``calibration`` (model inputs), each kernel is rounded with its rounding errors taken
    back by its other weights on the inputs the layer gets there
    (:func:`zoo.export.rounding.compensated_rounding`, unless ``compensate`` is false: each
    weight to its nearest grid point), and each rounded layer's mean output shift on them is
    taken back as well (:func:`bias_corrections`); TFLite's own quantiser does neither.

    Args:
        model: A functional Keras model (nested functional models are rounded too).
        calibration: Model inputs the rounding and the bias correction are measured on
            (``None``: nearest rounding, no correction).
        only: The kinds of layer rounded (``"convolutions"``, ``"depthwise convolutions"``,
            ``"dense layers"``; default: all).
        compensate: With ``calibration``, round with error compensation.

    Yields:
        The rounded layers by kind, ``"corrected"``: the variables the correction changed, and
        ``"compensated"``: the layers rounded with error compensation.
    """
    import keras
    import numpy as np

    sites = [site for site in _kernel_layers(model) if only is None or site[1] in only]
    saved = [np.array(keras.ops.convert_to_numpy(layer.kernel)) for _, _, layer in sites]
    rounded = [
        int8_weights(kernel, isinstance(layer, keras.layers.DepthwiseConv2D))
        for kernel, (_, _, layer) in zip(saved, sites, strict=True)
    ]
    changes: list[tuple[Any, Any]] = []
    compensated = []
    for owner in {id(site[0]): site[0] for site in sites}.values() if calibration is not None else ():
        mine = [i for i, site in enumerate(sites) if site[0] is owner]
        inputs = _owner_inputs(model, owner, calibration)
        fit = [i for i in mine if compensate and getattr(sites[i][2], "groups", 1) == 1]
        for i, kernel in zip(
            fit, compensated_kernels(owner, [sites[i][2] for i in fit], inputs), strict=True
        ):
            rounded[i] = kernel
            compensated.append(sites[i][2])
        layers, kernels = [sites[i][2] for i in mine], [saved[i] for i in mine]
        changes += bias_corrections(owner, layers, kernels, [rounded[i] for i in mine], inputs)
    originals = [(variable, np.array(keras.ops.convert_to_numpy(variable))) for variable, _ in changes]
    kinds: dict[str, Any] = {}
    for _, kind, layer in sites:
        kinds.setdefault(kind, []).append(layer)
    try:
        for (_, _, layer), grid in zip(sites, rounded, strict=True):
            layer.kernel.assign(grid)
        for variable, value in changes:
            variable.assign(value)
        yield {**kinds, "corrected": [variable for variable, _ in changes], "compensated": compensated}
    finally:
        for (_, _, layer), kernel in zip(sites, saved, strict=True):
            layer.kernel.assign(kernel)
        for variable, value in originals:
            variable.assign(value)


def bias_corrected(model: Any, calibration: Any) -> tuple[Any, int]:
    """A copy of ``model`` that starts where post-training quantisation ends.

    The copy's kernels are on TFLite's int8 grid, rounded with error compensation, and its
    batch norms' moving means and biases take back the mean shift that rounding leaves: what
    :func:`rounded_weights` sets with ``calibration``. Distillation starts from it.

    Returns:
        The copy and the number of variables the bias correction changed.
    """
    import keras
    import numpy as np

    with rounded_weights(model, calibration) as rounded:
        corrected = {v.path: np.array(keras.ops.convert_to_numpy(v)) for v in rounded["corrected"]}
        kernels = {
            layer.kernel.path: np.array(keras.ops.convert_to_numpy(layer.kernel))
            for layer in rounded["compensated"]
        }
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    changed = 0
    for variable in copy.weights:
        value = corrected.get(variable.path, kernels.get(variable.path))
        if value is not None:
            variable.assign(value)
            changed += 1
    expected = len(corrected) + len(kernels)
    if changed != expected:  # a path that does not carry over would leave a layer as it was
        raise ExportError(f"the rounded weights matched {changed} of {expected} variables of {model.name}")
    return copy, len(corrected)
