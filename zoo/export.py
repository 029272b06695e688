"""Export zoo models for deployment: SavedModel, TFLite (float32, float16, int8) and ONNX.

Image classifiers: the input transform of the weights entry is baked in by default,
so exported models take raw ``uint8`` images ``(N, H, W, C)``.

Text classifiers (word-level LSTMs and BERT-family models, packaged or fine-tuned
folders) export to SavedModel and ONNX and take int32 token ids ``(batch, seq_len)``:
``input_ids`` (LSTM), or ``input_ids``, ``token_type_ids`` and ``attention_mask``
(BERT). The entry's vocabulary goes beside the model (``vocab.txt`` inside a
SavedModel folder, ``X.vocab.txt`` beside ``X.onnx``) with the input contract
(``zoo_export.json`` in the folder, ``metadata_props`` in the ONNX model), so a
runtime can tokenise texts the way the model was trained.

Generative models (the VAE and the DCGAN) export as samplers: the VAE's decoder and
the DCGAN's generator take float32 latent vectors ``(N, latent_dim)`` (draw them from
a standard normal) and return images ``(N, H, W, C)`` with pixels in ``[0, 1]`` (the
VAE: Bernoulli means; the DCGAN: its ``tanh`` output rescaled), to every format.

The character language model exports as one step with its state: ``ids`` (int32,
``(N,)``, the current characters) and ``state_<layer>_<k>`` (float32, zeros to start)
in; ``logits`` over the next character and ``next_state_<layer>_<k>`` out. The
vocabulary is in the export's record; sampling is the caller's.

Before an export is reported as done, its outputs are compared with the Keras
model's on sample inputs (for text: built-in English sentences of different lengths,
tokenised with the entry's own tokenizer); nothing is written when they differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import InputError, ZooError

FORMATS = ("savedmodel", "tflite", "onnx", "openvino")
#: Train images that calibrate an int8 TFLite export.
CALIBRATION_IMAGES = 200
#: Share of calibration values an int8 activation range leaves out at each end.
CLIP_QUANTILE = 1e-4
#: An int8 activation range ``(lo, hi)`` for each Keras layer name.
Ranges = dict[str, tuple[float, float]]
QUANTIZE = (None, "float16", "int8", "dynamic")
#: Largest max |diff| against Keras per quantisation; ``None``: compared through top-1 agreement.
TOLERANCE: dict[str | None, float | None] = {None: 1e-4, "float16": 5e-2, "int8": None, "dynamic": None}
#: Formats a text classifier exports to.
TEXT_FORMATS = ("savedmodel", "onnx")
#: Largest max |diff| on logits that a float text export may show against Keras.
TEXT_TOLERANCE = 1e-4
#: Fixed English sentences (of different lengths, so padding and masking are exercised) whose
#: token ids check a text export; they come with the package, never from a data folder.
TEXT_SAMPLES = (
    "A moving, beautifully acted film that stays with you long after the credits roll.",
    "Dull.",
    "The plot is thin and the jokes fall flat , but the cast keeps it watchable for most of its "
    "running time , and the final twenty minutes are genuinely touching .",
    "I loved every minute of it!",
    "an overlong, unremarkable café comedy that never quite finds its rhythm .",
    "zzyzx qwertyuiop",
)


class ExportError(ZooError):
    """An export failed, or the exported model does not reproduce the Keras outputs."""


@dataclass
class ExportResult:
    """What :func:`export` produced and how closely it matches Keras."""

    path: str
    format: str
    quantize: str | None
    preprocessing: bool
    max_abs_diff: float
    tolerance: float | None  # None for int8 and dynamic: compared through top-1 agreement
    size_bytes: int
    metrics: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # text: the int32 token-id inputs of the exported model
    input_shape: tuple[int, ...] = ()  # images: the shape of one input image
    vocab: str | None = None  # text: the vocabulary file written beside (or inside) the export
    description: str = ""  # what the export takes, when neither images nor token ids
    kind: str = "image"  # what the export is: "image", "text", "sampler" or "char-step"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return dict(vars(self))


def _image_contract(entry: Any) -> tuple[dict[str, Any], tuple[int, int, int]]:
    """The baked part of the entry's image spec and the exported model's raw input shape."""
    from zoo.preprocessing import split_geometry

    spec = dict(entry.preprocessing)
    baked, (height, width) = split_geometry(spec, tuple(entry.input_shape))
    channels = 1 if spec["color_mode"] == "grayscale" else 3
    return baked, (height, width, channels)


def _sample_images(shape: tuple[int, ...], n: int) -> Any:
    """Fixed random uint8 images of the export's input shape: the check never reads a data folder."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (n, *shape), np.uint8)


def _real_images(
    entry: Any, n: int, data: str, data_dir: str | None, split: str, geometry: bool = True
) -> Any:
    """``n`` images of ``data``, or ``None`` without the dataset.

    With ``geometry``, at the export's input size; without, as the dataset has them. The
    same images, in the same order, either way, and whatever global seed the process has set
    (a fresh ``zoo export`` process and a seeded Python session draw the same ones).
    """
    import numpy as np

    import zoo.data

    resize = _export_resize(entry)
    try:
        with _no_global_seed():
            ds = zoo.data.load(data, split, data_dir=data_dir, shuffle=True, seed=0)
            return np.stack([np.asarray(resize(e["image"]) if geometry else e["image"]) for e in ds.take(n)])
    except Exception:  # noqa: BLE001 - the dataset is not on this machine
        return None


def _export_resize(entry: Any) -> Callable[[Any], Any]:
    """The resize and crop an image export leaves to its caller: uint8 images in, at its input size."""
    from zoo.preprocessing import geometry_transform

    return geometry_transform(dict(entry.preprocessing), _image_contract(entry)[1][:2])


@contextlib.contextmanager
def _no_global_seed() -> Iterator[None]:
    """TensorFlow's seeded ops as a process with no global seed runs them; the seed is kept.

    TensorFlow pairs an op's seed with the global one when one is set (``keras.utils.
    set_random_seed`` sets it), so a seeded shuffle would draw other images in a seeded
    session. Clears it on the eager context for the block (not public API) and puts it back.
    """
    from tensorflow.python.eager import context

    ctx = context.context()
    saved = ctx._seed
    ctx._seed = None
    try:
        yield
    finally:
        ctx._seed = saved


def _write_savedmodel(
    model: Any, spec: dict[str, Any] | None, raw_shape: tuple[int, ...], path: Path, input_name: str = "image"
) -> None:
    """Write a SavedModel whose ``serve`` endpoint takes uint8 images of ``raw_shape`` (or model inputs).

    ``spec`` is the baked half of the entry's spec (:func:`zoo.preprocessing.split_geometry`):
    only operators every runtime has (casts, padding, arithmetic).
    """
    import keras
    import tensorflow as tf

    import zoo.data

    transform = zoo.data.image_transform(spec) if spec else None
    if spec:
        signature = tf.TensorSpec((None, *raw_shape), tf.uint8, name=input_name)
    else:
        signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=input_name)

    def serve(image: Any) -> Any:
        x = transform(image) if transform is not None else image
        return model(x, training=False)

    # The endpoint tracks the variables it uses; ``archive.track(model)`` as well would store them twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name="serve", fn=serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def _tflite_bytes(
    saved_dir: Path, quantize: str | None, calibration: Any, ranges: Ranges | None = None
) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir))
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        return _int8_clipped(converter, calibration, ranges)
    elif quantize == "dynamic":  # int8 weights; activations quantised per batch when run
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _int8_clipped(converter: Any, calibration: Any, ranges: Ranges | None = None) -> bytes:
    """Full-integer TFLite bytes whose activation ranges leave out the calibration's outliers."""
    from tensorflow.lite.python import convert

    return convert.mlir_quantize(_int8_calibrated(converter, calibration, ranges))


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
    that layer, not its output.
    """
    layers = {i: _tensor_layers(tensor.name) for i, tensor in enumerate(subgraph.tensors)}
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


def _int8_calibrated(converter: Any, calibration: Any, ranges: Ranges | None = None) -> bytes:
    """TFLite's calibrated float model, its activation ranges cut to the calibration quantiles.

    TFLite's calibrator gives each tensor the min and max it saw, and a handful of outlying
    values can stretch that range several times over (residual sums, for one), coarsening
    the int8 step for every other value. Here TFLite calibrates only; each range is then cut
    to the calibration values' :data:`CLIP_QUANTILE` and ``1 - CLIP_QUANTILE`` quantiles
    (values beyond saturate); TFLite's own quantiser (``mlir_quantize``) finishes the model.
    ``ranges`` (Keras layer name -> ``(lo, hi)``) sets the range of the tensors holding those
    layers' outputs instead, so that the file rounds as a distilled simulation did.

    Uses TFLite's calibrate-only conversion and ``mlir_quantize``, which are not public API
    (``tensorflow.lite.python``): a TensorFlow without them fails the export's tests.
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
    outputs = _layer_outputs(model.subgraphs[0])
    for i in samples:
        lo, hi = _given_range(outputs[i], ranges) or _clipped_range(samples[i])
        tensors[i].quantization.min = np.array([lo], np.float32)
        tensors[i].quantization.max = np.array([hi], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _clipped_range(samples: list[Any]) -> tuple[float, float]:
    """An int8 activation range: the sampled values' :data:`CLIP_QUANTILE` quantiles, widened to hold 0."""
    import numpy as np

    lo, hi = np.quantile(np.concatenate(samples), [CLIP_QUANTILE, 1 - CLIP_QUANTILE])
    return min(float(lo), 0.0), max(float(hi), 0.0)


# --------------------------------------------------------------------------------------
# int8: weights on TFLite's grid, biases corrected for the rounding
# --------------------------------------------------------------------------------------


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

    probe = keras.Model(model.input, [layer.input for layer in layers])
    sums, counts = [0.0] * len(layers), [0] * len(layers)
    for start in range(0, len(calibration), 16):
        inputs = keras.tree.flatten(probe(calibration[start : start + 16], training=False))
        for i, x in enumerate(inputs):
            total, count = _rounding_shift(layers[i], x, (rounded[i] - kernels[i]).astype("float32"))
            sums[i], counts[i] = sums[i] + total, counts[i] + count
    norms = {id(_single_input(n)): n for n in model.layers if isinstance(n, keras.layers.BatchNormalization)}
    changes = []
    for layer, total, count in zip(layers, sums, counts, strict=True):
        shift = total / count
        if id(layer.output) in norms:
            mean = norms[id(layer.output)].moving_mean
            changes.append((mean, keras.ops.convert_to_numpy(mean) + shift))  # the norm subtracts its mean
        elif getattr(layer, "use_bias", False):
            changes.append((layer.bias, keras.ops.convert_to_numpy(layer.bias) - shift))
    return changes


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
def rounded_weights(model: Any, calibration: Any = None, only: list[str] | None = None) -> Iterator[dict]:
    """Within the block, the kernels of ``model`` lie on TFLite's int8 grid; after it, the float ones.

    With ``calibration`` (model inputs), each rounded layer's mean output shift on them is
    taken back as well (:func:`bias_corrections`), which TFLite's own quantiser does not do.

    Args:
        model: A functional Keras model (nested functional models are rounded too).
        calibration: Model inputs the bias correction is measured on (``None``: no correction).
        only: The kinds of layer rounded (``"convolutions"``, ``"depthwise convolutions"``,
            ``"dense layers"``; default: all).

    Yields:
        The rounded layers by kind, and ``"corrected"``: the variables the correction changed.
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
    if calibration is not None:
        for owner in {id(site[0]): site[0] for site in sites}.values():
            mine = [i for i, site in enumerate(sites) if site[0] is owner]
            changes += bias_corrections(
                owner,
                [sites[i][2] for i in mine],
                [saved[i] for i in mine],
                [rounded[i] for i in mine],
                _owner_inputs(model, owner, calibration),
            )
    originals = [(variable, np.array(keras.ops.convert_to_numpy(variable))) for variable, _ in changes]
    kinds: dict[str, Any] = {}
    for _, kind, layer in sites:
        kinds.setdefault(kind, []).append(layer)
    try:
        for (_, _, layer), grid in zip(sites, rounded, strict=True):
            layer.kernel.assign(grid)
        for variable, value in changes:
            variable.assign(value)
        yield {**kinds, "corrected": [variable for variable, _ in changes]}
    finally:
        for (_, _, layer), kernel in zip(sites, saved, strict=True):
            layer.kernel.assign(kernel)
        for variable, value in originals:
            variable.assign(value)


# --------------------------------------------------------------------------------------
# int8: quantisation-aware distillation
# --------------------------------------------------------------------------------------

#: Training images (of the calibration data's train split) that distillation draws batches from.
QAT_IMAGES = 10000
#: Images per distillation step.
QAT_BATCH = 32
#: Adam's peak learning rate for distillation (cosine decay to zero over the steps).
QAT_LEARNING_RATE = 1e-4


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
        """An int8 activation as TFLite stores it (``[lo, hi]`` in 256 steps), straight-through gradient."""

        def __init__(self, lo: float, hi: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.lo, self.hi = float(min(lo, 0.0)), float(max(hi, 0.0))

        def call(self, x: Any) -> Any:
            scale = max(self.hi - self.lo, 1e-8) / 255.0
            zero = round(-self.lo / scale)
            clipped = keras.ops.clip(x, self.lo, self.hi)
            steps = keras.ops.clip(keras.ops.round(clipped / scale) + zero, 0, 255)
            return clipped + keras.ops.stop_gradient((steps - zero) * scale - clipped)

    return FakeQuant


def _producer(layer: Any) -> Any:
    """The layer whose int8 output ``layer`` takes: the one before it, through layers that keep its scale."""
    current = _parent(layer)
    while isinstance(current, _passthrough_layers()):
        current = _parent(current)
    return current


def _activation_ranges(model: Any, layers: list[Any], calibration: Any) -> dict[str, tuple[float, float]]:
    """Each layer's output range on ``calibration``, as the export cuts it (:func:`_clipped_range`).

    Except where TFLite's int8 kernels fix it: a tanh's or sigmoid's (:data:`FIXED_RANGES`),
    and an average pooling's, which is its input's.
    """
    import keras
    import numpy as np

    probe = keras.Model(model.input, [layer.output for layer in layers])
    rng = np.random.default_rng(0)
    samples: list[list[Any]] = [[] for _ in layers]
    for start in range(0, len(calibration), 16):
        outputs = probe.predict_on_batch(calibration[start : start + 16])
        for i, values in enumerate(outputs if isinstance(outputs, list) else [outputs]):
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
    model: Any, calibration: Any, only: Collection[str] | None = None, ranges: Ranges | None = None
) -> Any:
    """A copy of ``model`` (:func:`split_activations` of it) that computes as TFLite's int8 model of it would.

    Each quantised activation (:func:`quantized_outputs`) goes through a fake-quantiser
    with the range the export gives it on ``calibration`` (model inputs). The copy has
    its own weights (the same values); :func:`distil_int8` rounds its kernels as it runs.
    ``only`` names the layers whose outputs are rounded (default: all of them), to see
    what each costs; the input is always rounded, as TFLite's is. ``ranges`` (from
    :func:`int8_ranges`, for other weights) replaces the ranges ``model`` has on ``calibration``.

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
    unknown = sorted(set(only or ()) - {layer.name for layer in quantized})
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
        return fake_quant(*ranges[layer.name], name=f"int8_{layer.name}")(out)

    return _weights_by_name(model, keras.models.clone_model(model, input_tensors=image, call_function=call))


def bias_corrected(model: Any, calibration: Any) -> tuple[Any, int]:
    """A copy of ``model`` whose biases already take back what int8 rounding of its kernels shifts.

    The copy keeps the float kernels; the batch norms' moving means and the biases are
    those :func:`rounded_weights` sets with ``calibration`` (empirical bias correction).
    Distillation starts from it, so that it begins where post-training quantisation ends.

    Returns:
        The copy and the number of variables the correction changed.
    """
    import keras
    import numpy as np

    with rounded_weights(model, calibration) as rounded:
        corrected = {v.path: np.array(keras.ops.convert_to_numpy(v)) for v in rounded["corrected"]}
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    changed = 0
    for variable in copy.weights:
        if variable.path in corrected:
            variable.assign(corrected[variable.path])
            changed += 1
    if changed != len(corrected):  # a path that does not carry over would leave a layer uncorrected
        raise ExportError(f"bias correction matched {changed} of {len(corrected)} variables of {model.name}")
    return copy, changed


def _distillation_loss(y: Any, target: Any) -> Any:
    """The logits' mean squared error plus the KL divergence of their softmax (``target``'s from ``y``'s)."""
    import keras

    ops = keras.ops
    kl = ops.sum(ops.softmax(target) * (ops.log_softmax(target) - ops.log_softmax(y)), axis=-1)
    return ops.mean(ops.square(y - target)) + ops.mean(kl)


def _rounded_kernels(student: Any) -> dict[int, bool]:
    """The id of each kernel distillation rounds going forward -> whether it is depthwise."""
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    return {
        id(layer.kernel): isinstance(layer, keras.layers.DepthwiseConv2D)
        for layer in student.layers
        if isinstance(layer, kinds)
    }


def _on_grid(value: Any, depthwise: bool | None) -> Any:
    """``value`` on :func:`int8_weights`' grid going forward, unchanged for the gradient (``None``: as is)."""
    import keras

    if depthwise is None:
        return value
    return value + keras.ops.stop_gradient(_int8_grid(value, depthwise) - value)


def _distillation_step(student: Any, kernels: dict[int, bool], optimizer: Any) -> Callable[[Any, Any], Any]:
    """One step of :func:`distil_int8` on the Keras backend in use: ``step(inputs, teacher_logits) -> loss``.

    ``kernels`` maps the id of each kernel rounded going forward to whether it is depthwise.
    TensorFlow traces the step with ``tf.function``, JAX compiles it with ``jax.jit`` and
    keeps the values outside the variables until ``step.sync()`` writes them back (a no-op
    elsewhere), PyTorch runs it eagerly under autograd.
    """
    import keras

    trainable = student.trainable_variables
    grid = [kernels.get(id(v)) for v in trainable]
    frozen = [v.value for v in student.non_trainable_variables]

    def loss_of(values: list, x: Any, target: Any) -> Any:
        on_grid = [_on_grid(v, depthwise) for v, depthwise in zip(values, grid, strict=True)]
        y, _ = student.stateless_call(on_grid, frozen, x, training=False)
        return _distillation_loss(keras.ops.cast(y, "float32"), target)

    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_step(trainable, optimizer, loss_of)
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(x: Any, target: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_of([v.value for v in trainable], x, target)
            optimizer.apply(tape.gradient(loss, trainable), trainable)
            return loss

    elif backend == "torch":
        import torch

        def step(x: Any, target: Any) -> Any:
            loss = loss_of([v.value for v in trainable], x, target)
            optimizer.apply(list(torch.autograd.grad(loss, [v.value for v in trainable])), trainable)
            return loss.detach()

    else:
        raise ExportError(
            f"quantisation-aware distillation runs on TensorFlow, JAX or PyTorch, not {backend}"
        )
    step.sync = lambda: None  # type: ignore[attr-defined]
    return step


def _jax_step(trainable: list, optimizer: Any, loss_of: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """:func:`_distillation_step` on JAX: a compiled pure update; ``step.sync()`` writes the variables."""
    import jax

    @jax.jit
    def update(values: list, slots: list, x: Any, target: Any) -> tuple[Any, list, list]:
        loss, grads = jax.value_and_grad(loss_of)(values, x, target)
        values, slots = optimizer.stateless_apply(slots, grads, values)
        return loss, values, slots

    state = {"values": [v.value for v in trainable], "slots": [v.value for v in optimizer.variables]}

    def step(x: Any, target: Any) -> Any:
        loss, state["values"], state["slots"] = update(state["values"], state["slots"], x, target)
        return loss

    def sync() -> None:
        values = [*state["values"], *state["slots"]]
        for variable, value in zip([*trainable, *optimizer.variables], values, strict=True):
            variable.assign(value)

    step.sync = sync  # type: ignore[attr-defined]
    return step


def distillation_inputs(
    entry: Any, images: Any, *, steps: int, data: str, split: str = "train", seed: int = 0
) -> dict[str, Any]:
    """What a distillation of ``entry``'s weights depends on: resuming one needs all of it equal.

    ``images`` are the source images (before any resize) batches are drawn from; their
    first :data:`CALIBRATION_IMAGES` set the activation ranges. The backend is not part
    of it: TensorFlow, JAX and PyTorch runs continue each other.
    """
    import numpy as np

    from zoo.fileio import sha256_bytes

    arrays = [np.ascontiguousarray(image) for image in images]
    digest = sha256_bytes(*(part for a in arrays for part in (f"{a.shape}{a.dtype}", a.tobytes())))
    return {
        "weights": entry.name,
        "weights_sha256": getattr(entry, "sha256", None),
        "preprocessing": dict(entry.preprocessing),
        "images": {"data": data, "split": split, "count": len(images), "sha256": digest},
        "calibration_images": CALIBRATION_IMAGES,
        "start": "bias-corrected",
        "steps": steps,
        "batch": QAT_BATCH,
        "learning_rate": QAT_LEARNING_RATE,
        "schedule": "cosine to zero",
        "loss": "logits mse + softmax kl",
        "seed": seed,
    }


class ResizedImages:
    """Images resized when indexed, a batch at a time: distillation's draws at the model's size.

    Indexing with an array of positions (as :func:`distil_int8` draws batches) gives those
    images through ``resize``; the resized set is never held whole (50,000 CIFAR-10 images at
    224x224 would take 7.5 GB).
    """

    def __init__(self, source: Any, resize: Callable[[Any], Any]) -> None:
        self.source, self.resize = source, resize

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: Any) -> Any:
        import numpy as np

        return np.asarray(self.resize(self.source[index]))


#: Distillation steps between two checkpoints.
QAT_CHECKPOINT_EVERY = 250


def distil_int8(
    model: Any,
    images: Any,
    calibration: Any,
    *,
    steps: int,
    transform: Callable[[Any], Any] | None = None,
    start: Any = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    inputs: dict[str, Any] | None = None,
    overwrite: bool = False,
    ranges: Ranges | None = None,
) -> Any:
    """Quantisation-aware distillation: float weights whose int8 model follows ``model``'s outputs.

    A copy of ``start`` (default ``model``; :func:`bias_corrected` gives a better start) that
    simulates TFLite's int8 arithmetic (:func:`int8_simulation`, kernels rounded per output
    channel with straight-through gradients) is trained with Adam (:data:`QAT_LEARNING_RATE`,
    decayed to zero along a cosine) to match ``model``'s logits (their mean squared error plus
    the KL divergence of their softmax, which weighs the classes that decide the top-1) on
    batches of :data:`QAT_BATCH` of ``images`` (mirrored at random), with its batch norms in
    inference mode. Runs on the TensorFlow, JAX and PyTorch backends.

    Args:
        model: The float Keras model the int8 model should follow (not changed).
        images: Images to draw training batches from: model inputs, or what ``transform``
            turns into them (one batch at a time, so that raw uint8 images stay small).
        calibration: Model inputs that set the activation ranges.
        steps: Training steps.
        transform: Makes a batch of ``images`` into model inputs (default: they are).
        start: The weights distillation starts from: a model of ``model``'s architecture.
        seed: Seed of the batch draws and mirrors.
        progress: Show a progress bar.
        checkpoint: A folder the state is saved to every :data:`QAT_CHECKPOINT_EVERY` steps
            and at the end (an owned output, see :mod:`zoo.outputs`); a run with the same
            ``inputs`` continues from it, or returns at once when it is finished.
        inputs: What the run depends on (:func:`distillation_inputs`); needed with ``checkpoint``.
        overwrite: Start again over another run's state in ``checkpoint``.
        ranges: The simulated activation ranges (:func:`int8_ranges` of ``start`` on
            ``calibration``, which is what they default to).

    Returns:
        A model of ``model``'s architecture with the distilled float weights.

    Raises:
        InputError: When ``checkpoint`` holds another run's state or files zoo did not write.
    """
    import keras
    import numpy as np

    from zoo.tasks.inference import predict_fn

    student = int8_simulation(model if start is None else start, calibration, ranges=ranges)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(QAT_LEARNING_RATE, steps))
    optimizer.build(student.trainable_variables)
    with _distillation_state(checkpoint, inputs, student, optimizer, overwrite) as state:
        step = _distillation_step(student, _rounded_kernels(student), optimizer)
        teacher = predict_fn(model, fold=False)
        rng = np.random.default_rng(seed)
        bar = keras.utils.Progbar(steps, verbose=1 if progress else 0, unit_name="step")
        for done in range(steps):
            drawn, mirror = rng.integers(0, len(images), QAT_BATCH), rng.random(QAT_BATCH) < 0.5
            if done < state.done:  # resumed: the draws are replayed so the next batches are the same
                continue
            x = np.asarray(images[drawn])
            x = np.where(mirror[:, None, None, None], x[:, :, ::-1], x) if x.ndim == 4 else x
            x = np.asarray(transform(x) if transform else x, np.float32)
            target = keras.ops.convert_to_tensor(np.asarray(teacher(x), np.float32))
            loss = step(keras.ops.convert_to_tensor(x), target)
            bar.update(done + 1, [("loss", float(loss))])
            if (done + 1) % QAT_CHECKPOINT_EVERY == 0 or done + 1 == steps:
                step.sync()
                state.save(done + 1)
    return _weights_by_name(student, keras.models.clone_model(model))


class _DistillationState:
    """Where :func:`distil_int8` saves and finds its state (``done`` steps); no folder: nothing saved."""

    FILE = "distillation.npz"

    def __init__(self, folder: Any, student: Any, optimizer: Any) -> None:
        self.folder, self.student, self.optimizer, self.done = folder, student, optimizer, 0

    def _variables(self) -> list:
        return [*self.student.weights, *self.optimizer.variables]

    @staticmethod
    def _slot(path: str) -> str:
        """An optimizer variable's path, the optimizer's own name left out (Keras numbers it per process)."""
        return f"optimizer/{path.split('/', 1)[-1]}"

    def _names(self) -> list[str]:
        return [
            *(v.path for v in self.student.weights),
            *(self._slot(v.path) for v in self.optimizer.variables),
        ]

    def load(self) -> None:
        import numpy as np

        path = self.folder.path / self.FILE
        if not (self.folder.resumed and self.folder.owns(self.FILE)):
            return
        with np.load(path) as saved:
            names, count = [str(n) for n in saved["names"]], len(self.student.weights)
            names[count:] = [self._slot(n) for n in names[count:]]
            variables = self._variables()
            if names != self._names():
                raise InputError(f"{path} holds another model's variables; choose another checkpoint folder")
            for i, variable in enumerate(variables):
                variable.assign(saved[f"v{i}"])
            self.done = int(saved["done"])

    def save(self, done: int) -> None:
        import keras
        import numpy as np

        if self.folder is None:
            return
        variables = self._variables()
        arrays = {f"v{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
        names = np.array(self._names())
        with self.folder.write(self.FILE) as tmp, open(tmp, "wb") as f:
            np.savez(f, names=names, done=np.int64(done), backend=np.array(keras.backend.backend()), **arrays)
        self.done = done


@contextlib.contextmanager
def _distillation_state(
    checkpoint: str | os.PathLike[str] | None,
    inputs: dict[str, Any] | None,
    student: Any,
    optimizer: Any,
    overwrite: bool = False,
) -> Iterator[_DistillationState]:
    """The :class:`_DistillationState` of ``checkpoint`` (loaded when it holds this run), held locked."""
    if checkpoint is None:
        yield _DistillationState(None, student, optimizer)
        return
    if inputs is None:
        raise InputError("a distillation checkpoint needs the run's inputs (distillation_inputs)")
    from zoo import outputs

    owned = outputs.output_folder(checkpoint, command="distil-int8", inputs=inputs, overwrite=overwrite)
    with owned as folder:
        state = _DistillationState(folder, student, optimizer)
        state.load()
        yield state


def tflite_interpreter(**kwargs: Any) -> Any:
    """``tf.lite.Interpreter(**kwargs)``, without its notice that LiteRT will replace it.

    The notice goes to every user of ``zoo export`` and ``--runtime``; the interpreter is
    the one TensorFlow ships, which the zoo's TFLite exports are checked with.
    """
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated")
        return tf.lite.Interpreter(**kwargs)


def run_tflite(model_bytes_or_path: bytes | str | os.PathLike[str], x: Any) -> Any:
    """Run a TFLite model on a batch ``x`` and return its output."""
    import numpy as np

    kwargs = (
        {"model_content": model_bytes_or_path}
        if isinstance(model_bytes_or_path, bytes)
        else {"model_path": str(model_bytes_or_path)}
    )
    interp = tflite_interpreter(**kwargs)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.asarray(x, dtype=inp["dtype"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def run_onnx(path: str | os.PathLike[str], x: Any) -> Any:
    """Run an ONNX model with ONNX Runtime on a batch ``x`` and return its first output.

    Args:
        path: The ``.onnx`` file.
        x: The batch: one array (fed to the first input), or a dict of arrays by input name
            (text exports: ``input_ids`` and, for BERT, ``token_type_ids`` and ``attention_mask``).

    Returns:
        The first output as a NumPy array.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = dict(x) if isinstance(x, dict) else {session.get_inputs()[0].name: x}
    return session.run(None, feed)[0]


def onnx_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The zoo record stored in an ONNX file by :func:`export` (``None`` if it has none)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "zoo.weights" not in props:
        return None
    return _decode_record({k[4:]: v for k, v in props.items() if k.startswith("zoo.")})


def _encode_record(record: dict[str, Any]) -> dict[str, str]:
    """``record`` as string pairs for key-value metadata (ONNX props, OpenVINO rt_info): every value JSON."""
    return {key: json.dumps(value) for key, value in record.items()}


def _decode_record(pairs: dict[str, str]) -> dict[str, Any]:
    """Inverse of :func:`_encode_record`; a value that is not JSON (older exports' bare strings) stays."""
    record: dict[str, Any] = {}
    for key, value in pairs.items():
        try:
            record[key] = json.loads(value)
        except ValueError:
            record[key] = value
    return record


def onnx_forward(name: str, *, features: bool = False, layer: str | None = None) -> Callable[[Any], Any]:
    """An image classifier run by ONNX Runtime, in place of Keras' ``predict_on_batch``.

    The model is exported once to ONNX without baked preprocessing (so it takes exactly
    the inputs Keras takes, and is checked against Keras within 1e-4 before it is kept)
    into the zoo's cache (``ZOO_CACHE_DIR/onnx``), named by the weights' sha256; later
    calls reuse the file when its stored record names the same weights and outputs.
    Exporting needs TensorFlow and the export packages; running a cached export does not.

    Args:
        name: Weights or architecture name of an image classifier, or a fine-tuned folder.
        features: Return features instead of the logits (what ``zoo extract`` runs).
        layer: The features' layer (a name or stage, as :func:`zoo.train.engine.feature_extractor`
            takes; default: the model's default feature layer).

    Returns:
        A function from a float32 batch of model inputs to the logits or features (NumPy).

    Raises:
        InputError: When ``name`` is not an image classifier, or ONNX Runtime is missing.
    """
    import hashlib

    import numpy as np

    from zoo import registry
    from zoo.fileio import cache_root

    entry = _classifier_entry(name, "onnx")
    task = registry.get_spec(entry.architecture).task
    if task != "image-classification":
        raise InputError(f"{entry.name} is a {task} model: only image classifiers run on ONNX Runtime")
    weights = _weights_sha256(entry)
    output = {"name": "features", "layer": layer} if features else {"name": "logits"}
    parts = [ONNX_FORWARD_VERSION, weights, *([output] if features else [])]
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    path = cache_root() / "onnx" / f"{key[:32]}.onnx"
    session = _cached_session(path, weights, output)
    if session is None:
        _check_export_args("onnx", None)
        path.parent.mkdir(parents=True, exist_ok=True)  # inside the zoo's own cache
        if features:
            _export_features(entry, layer, path)
        else:
            export(entry.name, "onnx", path, preprocessing=False, overwrite=True)
        session = _cached_session(path, weights, output)
        if session is None:
            raise ExportError(f"the ONNX export of {entry.name} at {path} cannot be read back")
    input_name = session.get_inputs()[0].name
    return lambda x: session.run(None, {input_name: np.asarray(x, np.float32)})[0]


#: Bump when the cached ONNX exports of :func:`onnx_forward` must be made again.
ONNX_FORWARD_VERSION = 1


def _export_features(entry: Any, layer: str | None, path: Path) -> None:
    """Export the features of ``layer`` (model inputs -> features) to ONNX at ``path``, checked."""
    from zoo import api
    from zoo.train.engine import feature_extractor

    model = feature_extractor(api.load(entry.name), layer)
    baked, shape = _image_contract(entry)
    expected, feed = _keras_reference(model, baked, _sample_images(shape, 32), preprocessing=False)
    record = {
        **_image_record(entry, baked, shape, False, model),
        "output": {"name": "features", "layer": layer, "shape": ["batch", *model.output_shape[1:]]},
    }
    del record["labels"]
    command = f"zoo extract {entry.name}{f' --layer {layer}' if layer else ''} --runtime onnx"
    inputs = {"weights": entry.name, "format": "onnx", "layer": layer}
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_savedmodel(model, None, shape, saved)
        _write_checked(
            saved,
            "onnx",
            _Owner(path, command, inputs, overwrite=True),
            record,
            run=lambda fmt, artifact: _run_export(fmt, artifact, feed),
            check=lambda got: _check(got, expected, None, "onnx"),
            annotate={
                "dims": ("batch",),
                "kind": f"features of layer {layer or 'default'}",
                "output": "features",
            },
        )


def _cached_session(path: Path, weights: dict[str, str], output: dict[str, Any]) -> Any:
    """An ONNX Runtime session on the cached export at ``path`` if it holds ``weights`` and ``output``.

    ``None`` when there is none; a damaged or stale file there (the zoo's cache) is removed.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        hint = "pip install 'keras-zoo[export]'"
        raise ExportError(f"running on ONNX Runtime needs the onnxruntime package: {hint}") from exc
    if not path.is_file():
        return None
    try:
        record = onnx_record(path)
        stored = record.get("output", {}) if record else {}
        if (
            record
            and record.get("weights_sha256") == weights
            and all(stored.get(k) == v for k, v in output.items())
        ):
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001  (whatever a damaged file raises: it is made again, never trusted)
        pass
    path.unlink(missing_ok=True)  # the zoo's own cache entry, damaged or stale
    return None


def _checked_target(fmt: str, out: str | os.PathLike[str], overwrite: bool) -> Path:
    """The export's absolute path, checked before any work: never a path holding the user's files."""
    from zoo import outputs

    if fmt == "savedmodel":
        return outputs.check_folder_target(out, overwrite)
    target = outputs.check_file_target(out, overwrite)
    if fmt == "openvino" and target.suffix != ".xml":  # the IR is two files: X.xml and its weights X.bin
        raise InputError(f"an OpenVINO IR is written as NAME.xml (with NAME.bin beside it), got {out}")
    if fmt == "openvino":
        outputs.check_file_target(target.with_suffix(".bin"), overwrite)
    return target


def _check_export_args(
    fmt: str,
    quantize: str | None,
    qat_steps: int = 0,
    qat_checkpoint: Any = None,
    qat_images: int | None = None,
) -> None:
    """Refuse an unknown format or quantisation, another backend, and ONNX export without its packages."""
    from zoo.backend import keras_backend

    if qat_steps < 0:
        raise InputError(f"qat_steps must be 0 or more, got {qat_steps}")
    if qat_steps and quantize != "int8":
        raise InputError("--qat-steps tunes an int8 export: use it with --format tflite --quantize int8")
    for option, value in (("--qat-checkpoint", qat_checkpoint), ("--qat-images", qat_images)):
        if value is not None and not qat_steps:
            raise InputError(f"{option} is a setting of the distillation: use it with --qat-steps")
    if qat_images is not None and qat_images < QAT_BATCH:
        raise InputError(f"--qat-images must be at least one batch ({QAT_BATCH}), got {qat_images}")

    if keras_backend() != "tensorflow":
        raise ExportError(
            "zoo export converts through TensorFlow (SavedModel, TFLite, tf2onnx) and needs the "
            f"TensorFlow backend: run it with KERAS_BACKEND=tensorflow (active backend: {keras_backend()})"
        )
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in QUANTIZE:
        raise InputError(f"quantize must be float16, int8 or dynamic, got {quantize!r}")
    if quantize and fmt != "tflite":
        raise InputError("quantisation is only available for --format tflite")
    if fmt in ("onnx", "openvino"):
        import importlib.util

        needs = ("tf2onnx", "onnxruntime") if fmt == "onnx" else ("openvino",)
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install 'keras-zoo[export]'")


def _classifier_entry(name: str, fmt: str) -> Any:
    """Return the weights entry of ``name``, refusing anything but an image or text classifier."""
    from zoo import api, registry

    entry = api.weights_entry(name)
    task = registry.get_spec(entry.architecture).task
    kind = entry.preprocessing.get("type")
    if kind == "text" and task in ("text-classification", "text-embedding"):
        if entry.num_classes is None:
            raise InputError(
                f"{entry.name} is a text encoder without labels; zoo export handles text classifiers: "
                f"export one fine-tuned from it (zoo finetune {entry.name} --data mr --out DIR)"
            )
        if fmt not in TEXT_FORMATS:
            raise InputError(
                f"{entry.name} is a text classifier: export it with --format savedmodel or --format onnx "
                f"({fmt} export of text models is not available)"
            )
        return entry
    if task in ("image-generation", "language-modeling"):
        return entry
    if task != "image-classification":
        raise InputError(
            f"{entry.name} is not a classifier (its task: {task}); zoo export handles image and text "
            "classifiers, the VAE and DCGAN samplers and the character model's step"
        )
    if kind != "image":
        raise InputError(f"export of {kind} models is not supported yet")
    return entry


def _keras_reference(model: Any, baked: dict[str, Any], raw: Any, preprocessing: bool) -> tuple[Any, Any]:
    """Return the Keras outputs on ``raw`` (images at the export's input size) and the export's feed."""
    import numpy as np

    import zoo.data
    from zoo.tasks.inference import predict_fn

    model_inputs = np.asarray(zoo.data.image_transform(baked)(raw))
    expected = np.asarray(predict_fn(model, fold=False)(model_inputs))
    return expected, raw if preprocessing else model_inputs


def _run_savedmodel(saved: Path, feed: Any) -> Any:
    """Run the ``serve`` endpoint of the SavedModel at ``saved`` on ``feed``."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved))
    if isinstance(feed, dict):  # text: token ids by input name, {"logits": ...} back
        return np.asarray(loaded.serve({key: tf.constant(value) for key, value in feed.items()})["logits"])
    return np.asarray(loaded.serve(tf.constant(feed)))


def _calibration_inputs(
    entry: Any,
    shape: tuple[int, ...],
    baked: dict[str, Any],
    preprocessing: bool,
    data: str,
    data_dir: str | None,
) -> tuple[Any, str]:
    """The int8 calibration inputs (200 train images, or random ones without data) and their source."""
    import numpy as np

    import zoo.data

    images = _real_images(entry, CALIBRATION_IMAGES, data, data_dir, "train")
    source = f"{CALIBRATION_IMAGES} {data} train images"
    if images is None:
        images, source = _sample_images(shape, CALIBRATION_IMAGES), "random images (no dataset found)"
    if not preprocessing:
        images = np.asarray(zoo.data.image_transform(baked)(images))
    return images, source


def _select_as_where(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx handler: TF ``SelectV2`` as ONNX ``Where`` (same broadcasting).

    tf2onnx's own conversion computes ``cond * x + (1 - cond) * y``, which gives NaN
    where the unselected branch is infinite (masked max pooling fills padding with -inf).
    """
    node.type = "Where"


def _erfc_as_one_minus_erf(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx handler: TF ``Erfc`` (in exact GELU) as ``1 - Erf(x)``; ONNX has no Erfc."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=name)
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def _write_onnx(saved: Path, path: Path) -> None:
    """Convert the ``serve`` endpoint of the SavedModel at ``saved`` to an ONNX file at ``path``."""
    import tensorflow as tf
    import tf2onnx

    loaded = tf.saved_model.load(str(saved))
    signature = loaded.serve.concrete_functions[0].structured_input_signature[0]
    handlers = {"SelectV2": (_select_as_where, []), "Erfc": (_erfc_as_one_minus_erf, [])}
    tf2onnx.convert.from_function(
        loaded.serve, input_signature=signature, opset=17, custom_op_handlers=handlers, output_path=str(path)
    )


def _size_bytes(out: Path) -> int:
    """Size of the file (an OpenVINO ``.xml`` with its ``.bin``), or of every file in the folder ``out``."""
    if out.is_dir():
        return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    weights = out.with_suffix(".bin")
    return out.stat().st_size + (weights.stat().st_size if out.suffix == ".xml" and weights.is_file() else 0)


def _export_result(
    out: Path, fmt: str, quantize: str | None, preprocessing: bool, got: Any, expected: Any
) -> ExportResult:
    """Return the :class:`ExportResult` of the export written at ``out``."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected)))
    tolerance = TOLERANCE[quantize]
    size = _size_bytes(out)
    result = ExportResult(str(out), fmt, quantize, preprocessing, diff, tolerance, size)
    if quantize:
        agree = float(np.mean(np.argmax(got, -1) == np.argmax(expected, -1)))
        result.metrics["top1_agreement_on_samples"] = agree
    return result


def export(
    name: str,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    preprocessing: bool = True,
    samples: int = 32,
    data: str | None = None,
    data_dir: str | None = None,
    evaluate: bool = False,
    overwrite: bool = False,
    qat_steps: int = 0,
    qat_checkpoint: str | os.PathLike[str] | None = None,
    qat_images: int | None = None,
) -> ExportResult:
    """Export pretrained weights to ``fmt`` at ``out`` and check the result against Keras.

    Image classifiers export to every format. Text classifiers (word-level LSTM,
    BERT-family; packaged or fine-tuned folders) export to ``"savedmodel"`` and
    ``"onnx"``, take int32 token ids, and get their vocabulary beside the model (see
    the module docstring); they are checked on :data:`TEXT_SAMPLES`.

    Args:
        name: Weights or architecture name, or a fine-tuned model folder.
        fmt: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.
        out: Output folder (SavedModel) or file.
        quantize: TFLite only, post-training: ``"float16"`` (float16 weights), ``"int8"``
            (int8 weights and activations, calibrated on 200 images of the entry dataset's
            train split, each activation range cut to the calibration values' quantiles
            :data:`CLIP_QUANTILE` and ``1 - CLIP_QUANTILE``, biases corrected for the weight
            rounding: :func:`rounded_weights`) or ``"dynamic"`` (int8 weights; no calibration).
        preprocessing: Images: bake the entry's input transform in (inputs become raw uint8
            images). Text exports always take token ids (the result says ``False``).
        samples: Number of (fixed, random) images of the input size the check runs on: it
            never reads a data folder, so exports are the same with or without one.
        data: Images: the dataset that calibrates int8 (its train split) and that
            ``evaluate`` measures (its test split); default: the weights' own dataset.
        data_dir: Data directory (overrides ``ZOO_DATA_DIR``); images only.
        evaluate: Also measure a quantised TFLite model's top-1 agreement with Keras on
            test images (and both accuracies when the data is the weights' own).
        overwrite: Replace an earlier export that zoo wrote at ``out``, and another run's state
            in ``qat_checkpoint`` (never anything else: see :mod:`zoo.outputs`).
        qat_steps: int8 only: steps of :func:`distil_int8` on ``data``'s train split first
            (instead of bias correction; still checked against the original Keras model).
        qat_checkpoint: A folder for the distillation's state, which an export with the same
            inputs continues (or converts at once when finished), from any Keras backend.
        qat_images: How many of ``data``'s train images (the first of a fixed shuffle) distillation
            draws batches from; default :data:`QAT_IMAGES`. A checkpoint needs the same number.

    Returns:
        An :class:`ExportResult`; float formats must match within 1e-4.

    Raises:
        ExportError: When the exported model's outputs differ beyond the tolerance.
        InputError: When ``name`` is not a classifier, or ``fmt`` is not available for it
            (TFLite for text).
        OutputError: When ``out`` (or, for ONNX text exports, its vocabulary file) holds
            anything that zoo did not write, or an earlier export without ``overwrite``.
    """
    from zoo import registry

    _check_export_args(fmt, quantize, qat_steps, qat_checkpoint, qat_images)
    target = _checked_target(fmt, out, overwrite)
    entry = _classifier_entry(name, fmt)
    task = registry.get_spec(entry.architecture).task
    if fmt == "openvino" and task == "language-modeling":
        raise InputError(f"{entry.name} exports as one step to savedmodel, onnx or tflite (not openvino)")
    if task in ("image-generation", "language-modeling"):
        if quantize:
            raise InputError(f"{entry.name} exports as float32 only: leave out --quantize")
        if task == "language-modeling":
            return _export_char_step(entry, fmt, target, overwrite)
        return _export_sampler(entry, fmt, target, overwrite)
    if entry.preprocessing.get("type") == "text":
        return _export_text(entry, fmt, target, overwrite)
    options = dict(quantize=quantize, preprocessing=preprocessing, samples=samples, data=data)
    options.update(data_dir=data_dir, evaluate=evaluate, overwrite=overwrite, qat_steps=qat_steps)
    options.update(qat_checkpoint=qat_checkpoint, qat_images=qat_images)
    return _export_image(entry, fmt, target, **options)


def _export_image(
    entry: Any,
    fmt: str,
    out: Path,
    *,
    quantize: str | None,
    preprocessing: bool,
    samples: int,
    data: str | None,
    data_dir: str | None,
    evaluate: bool,
    overwrite: bool,
    qat_steps: int = 0,
    qat_checkpoint: str | os.PathLike[str] | None = None,
    qat_images: int | None = None,
) -> ExportResult:
    """Export an image classifier (see :func:`export`) to the checked target ``out``."""
    import numpy as np

    import zoo.data
    from zoo import api

    model = api.load(entry.name)
    baked, shape = _image_contract(entry)
    expected, feed = _keras_reference(model, baked, _sample_images(shape, samples), preprocessing)
    record = _image_record(entry, baked, shape, preprocessing, model)
    inputs = {"weights": entry.name, "format": fmt, "quantize": quantize, "preprocessing": preprocessing}
    if qat_steps:
        inputs["qat_steps"] = qat_steps
    if qat_images is not None:
        inputs["qat_images"] = qat_images
    command = f"zoo export {entry.name} --format {fmt}"
    extra: dict[str, Any] = {}
    calibration = ranges = None
    data_name = data or entry.dataset["name"]
    test = _evaluation_split(entry, data, data_dir) if evaluate and fmt == "tflite" else None
    if fmt == "tflite" and quantize == "int8":
        calibration, extra["calibration"] = _calibration_inputs(
            entry, shape, baked, preprocessing, data_name, data_dir
        )
        extra["activation_ranges"] = f"calibration quantiles {CLIP_QUANTILE:g} to {1 - CLIP_QUANTILE:g}"
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_savedmodel(model, baked if preprocessing else None, shape, saved)
        quantized_from = saved
        if calibration is not None:
            quantized_from = Path(tmpdir) / "int8_weights"
            transform = zoo.data.image_transform(baked)
            seen = np.asarray(transform(calibration)) if preprocessing else calibration
            if qat_steps:  # weights distilled through a simulation of the int8 model
                qat = {"steps": qat_steps, "checkpoint": qat_checkpoint, "overwrite": overwrite}
                qat["images"] = QAT_IMAGES if qat_images is None else qat_images
                distilled, ranges = _distilled(entry, model, seen, qat, transform, data_name, data_dir, extra)
                _write_savedmodel(distilled, baked if preprocessing else None, shape, quantized_from)
            else:  # TFLite converts weights already on its grid, biases corrected
                with rounded_weights(model, seen) as rounded:
                    _write_savedmodel(model, baked if preprocessing else None, shape, quantized_from)
                corrected = rounded.pop("corrected")
                count = sum(len(layers) for layers in rounded.values())
                extra["bias_correction"] = f"{len(corrected)} of {count} layers, on the calibration images"
        got = _write_checked(
            saved,
            fmt,
            _Owner(out, command, inputs, overwrite),
            {**record, "quantize": quantize, **extra} if fmt == "tflite" else record,
            run=lambda fmt, artifact: _run_export(fmt, artifact, feed),
            check=lambda got: _check(got, expected, quantize, fmt),
            annotate={"dims": ("batch",), "kind": "an image classifier on uint8 images"},
            tflite=lambda saved: _tflite_bytes(quantized_from, quantize, calibration, ranges),
        )
    result = _export_result(out, fmt, quantize, preprocessing, got, expected)
    result.metrics.update(extra)
    result.input_shape = shape if preprocessing else tuple(model.input_shape[1:])
    if test is not None:
        result.metrics.update(_compare_on_test(entry, model, out, preprocessing, test))
    return result


def _distilled(
    entry: Any,
    model: Any,
    seen: Any,
    qat: dict[str, Any],
    transform: Callable[[Any], Any],
    data: str,
    data_dir: str | None,
    extra: dict[str, Any],
) -> tuple[Any, Ranges]:
    """``model`` after ``qat["steps"]`` of :func:`distil_int8` on ``qat["images"]`` of ``data``'s train split.

    ``qat["checkpoint"]`` is where its state is kept; ``extra`` records how it was made.
    Returns the distilled model, its activations split as the ranges name them
    (:func:`split_activations`), and the activation ranges its simulation rounded to.
    """
    import numpy as np

    steps = qat["steps"]
    source = _real_images(entry, qat["images"], data, data_dir, "train", geometry=False)
    if source is None:
        raise InputError(
            f"--qat-steps trains on {data}'s train split, which is not on this machine: "
            "set ZOO_DATA_DIR (or --data-dir) to the folder holding it, or leave out --qat-steps"
        )
    train = ResizedImages(source, _export_resize(entry))
    inputs = distillation_inputs(entry, source, steps=steps, data=data)
    start, corrected = bias_corrected(model, seen)
    ranges = int8_ranges(start, seen)
    distilled = distil_int8(
        model,
        train,
        seen,
        steps=steps,
        transform=transform,
        start=start,
        checkpoint=qat["checkpoint"],
        inputs=inputs,
        overwrite=qat["overwrite"],
        ranges=ranges,
    )
    extra["qat"] = (
        f"{steps} steps of quantisation-aware distillation (batch {QAT_BATCH}, Adam "
        f"{QAT_LEARNING_RATE:g} with cosine decay, logits' squared error + KL) on "
        f"{len(train)} {data} train images"
    )
    extra["bias_correction"] = f"{corrected} layers, on the calibration images, before distilling"
    extra["activation_ranges"] = (
        f"those distillation simulated: calibration quantiles {CLIP_QUANTILE:g} to "
        f"{1 - CLIP_QUANTILE:g} of the bias-corrected model"
    )
    if qat["checkpoint"] is not None:  # the state may come from another machine and backend
        with np.load(Path(qat["checkpoint"]) / _DistillationState.FILE) as saved:
            extra["qat_state"] = f"kept in --qat-checkpoint, last saved by Keras on {saved['backend']}"
    return split_activations(distilled), ranges


def _json(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, indent=2) + "\n"


def _tflite_with_record(blob: bytes, record: dict[str, Any]) -> bytes:
    """The TFLite model ``blob`` with ``record`` as JSON in its ``metadata`` entry ``"zoo"``."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(_json(record).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "zoo", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def tflite_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The zoo record stored in a TFLite file by :func:`export` (``None`` if it has none)."""
    import json

    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    for entry in model.metadata or []:
        if entry.name in ("zoo", b"zoo"):
            return json.loads(bytes(model.buffers[entry.buffer].data).decode("utf-8"))
    return None


def _image_record(
    entry: Any, baked: dict[str, Any], shape: tuple[int, ...], preprocessing: bool, model: Any
) -> dict[str, Any]:
    """The record that says what an image export takes and returns, and where it came from."""
    spec = dict(entry.preprocessing)
    if preprocessing:
        contract = {
            "inputs": ["image"],
            "dtype": "uint8",
            "shape": ["batch", *shape],
            "caller_resizes": {
                "resize": spec["resize"],
                "center_crop": spec["center_crop"],
                "interpolation": spec["interpolation"],
                "antialias": spec["interpolation"] != "nearest",
                "color_mode": spec["color_mode"],
                "function": "zoo.preprocessing.geometry_transform(entry.preprocessing, (height, width))",
            },
            "baked_in": {k: baked[k] for k in ("pad_to", "scale", "mean", "std")},
        }
    else:
        contract = {
            "inputs": ["image"],
            "dtype": "float32",
            "shape": ["batch", *model.input_shape[1:]],
            "preprocessing": spec,
        }
    return _export_record(entry, contract)


def _export_record(entry: Any, contract: dict[str, Any]) -> dict[str, Any]:
    """The record stored with every export: source weights, their sha256, input contract, output, labels."""
    return {
        "export_version": 1,
        "weights": entry.name,
        "weights_sha256": _weights_sha256(entry),
        "input_contract": contract,
        "output": {"name": "logits", "shape": ["batch", entry.num_classes]},
        "labels": list(entry.labels or [str(i) for i in range(entry.num_classes or 0)]),
    }


def _weights_sha256(entry: Any) -> dict[str, str]:
    """The sha256 of each of the entry's weight files, by file name (what an export records as its source)."""
    return {f.filename: f.sha256 for f in entry.files}


def _check(got: Any, expected: Any, quantize: str | None, fmt: str) -> None:
    """Refuse (before anything is written) an export whose outputs differ from Keras'."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected)))
    tolerance = TOLERANCE[quantize]
    if tolerance is not None and diff > tolerance:
        raise ExportError(
            f"exported {fmt} model differs from Keras by {diff:.3g} (> {tolerance:g}); nothing was written"
        )


def _move_savedmodel(saved: Path, out: Path, **kwargs: Any) -> None:
    """Move a SavedModel built in a private temporary folder to ``out`` (same file system first)."""
    from zoo import outputs

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=".zoo-tmp-"))
    except OSError as exc:
        raise outputs.OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    try:
        built = staging / out.name
        shutil.copytree(saved, built)
        outputs.replace_folder(built, out, **kwargs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the zoo's own staging folder


@dataclass(frozen=True)
class _Owner:
    """Where an export goes and what the zoo records as its owner (see :mod:`zoo.outputs`)."""

    out: Path
    command: str
    inputs: dict[str, Any]
    overwrite: bool


def _run_export(fmt: str, artifact: Path | bytes, feed: Any) -> Any:
    """Run a SavedModel folder, TFLite bytes, an ONNX file or an OpenVINO IR on ``feed``; its first output."""
    if fmt == "savedmodel":
        return _run_savedmodel(artifact, feed)
    if fmt == "openvino":
        return run_openvino(artifact, feed)
    return run_tflite(artifact, feed) if fmt == "tflite" else run_onnx(artifact, feed)


def compile_openvino(path: str | os.PathLike[str]) -> Any:
    """Compile an OpenVINO IR (``X.xml``, ``X.bin``) for the CPU, computing in float32."""
    import openvino as ov

    # float32 on purpose: on CPUs with bfloat16 units OpenVINO would otherwise compute in bfloat16
    return ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def run_openvino(path: str | os.PathLike[str], x: Any) -> Any:
    """Run an OpenVINO IR on the CPU in float32 (:func:`compile_openvino`) on a batch ``x``; first output."""
    return compile_openvino(path)(x)[0]


def openvino_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The zoo record stored in an OpenVINO IR by :func:`export` (``None`` if it has none)."""
    import openvino as ov

    model = ov.Core().read_model(str(path))
    if not model.has_rt_info(["zoo", "weights"]):
        return None
    return _decode_record(
        {key: model.get_rt_info(["zoo", key]).astype(str) for key in model.get_rt_info()["zoo"]}
    )


def _write_checked(
    saved: Path,
    fmt: str,
    owner: _Owner,
    record: dict[str, Any],
    *,
    run: Callable[[str, Path | bytes], Any],
    check: Callable[[Any], None],
    annotate: dict[str, Any],
    tflite: Callable[[Path], bytes] | None = None,
) -> Any:
    """Convert the SavedModel at ``saved`` to ``fmt``, run and check it, and only then write it.

    ``run(fmt, artifact)`` runs the converted model (a folder, TFLite bytes or an ONNX file);
    ``check`` raises on outputs that differ from Keras, before anything is written. The
    export, carrying ``record``, lands at ``owner.out`` atomically as the zoo's own. ONNX
    files are annotated by :func:`_annotate_onnx` with ``annotate``; ``tflite`` converts
    (default: float32). Returns the converted model's outputs.
    """
    from zoo import outputs

    if fmt == "savedmodel":
        got = run(fmt, saved)
        check(got)
        (saved / "zoo_export.json").write_text(_json(record), encoding="utf-8")
        _move_savedmodel(
            saved, owner.out, command=owner.command, inputs=owner.inputs, overwrite=owner.overwrite
        )
        return got
    if fmt == "openvino":
        xml = _write_openvino(saved, record)
        got = run(fmt, xml)
        check(got)
        ledger = {"overwrite": owner.overwrite, "command": owner.command}
        # OpenVINO finds X.bin beside X.xml; the weights land first, the .xml that names the model last
        with (
            outputs.output_file(owner.out, **ledger) as part,
            outputs.output_file(owner.out.with_suffix(".bin"), **ledger) as weights,
        ):
            shutil.copyfile(xml, part)
            shutil.copyfile(xml.with_suffix(".bin"), weights)
        return got
    if fmt == "tflite":
        blob = (tflite or (lambda saved: _tflite_bytes(saved, None, None)))(saved)
        got = run(fmt, blob)
        check(got)
        payload = _tflite_with_record(blob, record)
    else:
        path = saved.parent / "model.onnx"
        _write_onnx(saved, path)
        _annotate_onnx(path, record, **annotate)
        got = run(fmt, path)
        check(got)
        payload = path.read_bytes()
    with outputs.output_file(owner.out, overwrite=owner.overwrite, command=owner.command) as part:
        part.write_bytes(payload)
    return got


def _write_openvino(saved: Path, record: dict[str, Any]) -> Path:
    """Convert the SavedModel with OpenVINO's own converter, float32 weights, ``record`` in its rt_info."""
    import openvino as ov

    model = ov.convert_model(str(saved))
    for key, value in _encode_record(record).items():
        model.set_rt_info(value, ["zoo", key])
    xml = saved.parent / "model.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def _evaluation_split(entry: Any, data: str | None, data_dir: str | None) -> tuple[str, bool, Any]:
    """``("name:split", own, dataset)``: the entry's evaluation split (``own``), or ``data``'s test split.

    Built before anything is exported, so that missing data fails before a file is written.
    """
    import zoo.data
    from zoo.tasks.classify import own_data_options

    own = data in (None, entry.dataset["name"])
    name, split = (entry.dataset["name"], entry.dataset["split"]) if own else (data, "test")
    options = own_data_options(entry) if own else {}  # a fine-tuned folder's held-out fold
    ds = zoo.data.load(name, split, batch_size=256, data_dir=data_dir, as_supervised=True, **options)
    return f"{name}:{split}", own, ds


def in_top_k(outputs: Any, classes: Any, k: int = 5) -> Any:
    """Whether each row of ``outputs`` holds its entry of ``classes`` among its ``k`` largest values.

    Ties rank the lower index first, as ``argmax`` does, so a class tied at the ``k``-th
    place counts only when its index comes first.

    Args:
        outputs: Scores, shape ``(batch, classes)``.
        classes: One class index per row.
        k: How many of the largest scores count.

    Returns:
        A boolean array, one value per row.
    """
    import numpy as np

    top = np.argsort(-np.asarray(outputs), -1, kind="stable")[:, :k]
    return np.any(top == np.asarray(classes)[:, None], -1)


def _compare_on_test(
    entry: Any, model: Any, path: Path, preprocessing: bool, test: tuple[str, bool, Any]
) -> dict[str, float]:
    """Top-1 agreement of the TFLite file with Keras on ``test``, and both accuracies.

    Also how often Keras' top-1 class is among the file's five largest outputs
    (``top5_agreement``): near-ties that int8 rounding reorders still keep it there.

    ``test`` comes from :func:`_evaluation_split`; accuracies are given only when its
    data is the entry's own (the labels are the model's). Both see the images as the
    export's callers give them (resized by :func:`zoo.preprocessing.geometry_transform`),
    so the figures measure the conversion alone.
    """
    import numpy as np

    import zoo.data
    from zoo.tasks.inference import predict_fn

    where, own, ds = test
    geometry, baked = _export_resize(entry), zoo.data.image_transform(_image_contract(entry)[0])
    fn = predict_fn(model, fold=False)
    keras_ok = tfl_ok = agree = in_top5 = total = 0
    interp = tflite_interpreter(model_path=str(path))
    inp = interp.get_input_details()[0]
    for raw, y in ds:
        images = np.asarray(geometry(raw))
        model_inputs = np.asarray(baked(images))
        keras_top = np.argmax(np.asarray(fn(model_inputs)), -1)
        feed = images if preprocessing else model_inputs
        interp.resize_tensor_input(inp["index"], list(feed.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], feed.astype(inp["dtype"]))
        interp.invoke()
        tfl_out = interp.get_tensor(interp.get_output_details()[0]["index"])
        tfl_top = np.argmax(tfl_out, -1)
        keras_ok += int(np.sum(keras_top == y.numpy()))
        tfl_ok += int(np.sum(tfl_top == y.numpy()))
        agree += int(np.sum(tfl_top == keras_top))
        in_top5 += int(np.sum(in_top_k(tfl_out, keras_top)))
        total += len(y)
    result = {
        "top1_agreement": 100 * agree / total,
        "top5_agreement": 100 * in_top5 / total,
        "num_examples": total,
        "evaluation_data": where,
    }
    if own:
        result.update(keras_top1_accuracy=100 * keras_ok / total, tflite_top1_accuracy=100 * tfl_ok / total)
    return result


# --------------------------------------------------------------------------------------
# Text classifiers: SavedModel and ONNX taking int32 token ids
# --------------------------------------------------------------------------------------


def _vocab_target(out: Path) -> Path:
    """The vocabulary file beside an ONNX text export: ``X.vocab.txt`` for ``X.onnx``."""
    name = out.name
    stem = name[: -len(".onnx")] if name.lower().endswith(".onnx") and len(name) > len(".onnx") else name
    return out.with_name(f"{stem}.vocab.txt")


def _takes_named_inputs(model: Any) -> bool:
    """Whether the model takes a dict of token-id inputs (BERT; a reloaded ``.keras`` lists them)."""
    return isinstance(model.input, dict) or len(model.inputs) > 1


def _text_input_names(model: Any, sample: dict[str, Any]) -> tuple[str, ...]:
    """The exported model's input names: those of the tokenised ``sample``, matched to the model."""
    names = tuple(sample)
    if _takes_named_inputs(model):
        wanted = list(model.input) if isinstance(model.input, dict) else [t.name for t in model.inputs]
        if set(wanted) != set(names):
            raise ExportError(f"the model takes inputs {sorted(wanted)}, its tokenizer makes {list(names)}")
    elif names != ("input_ids",):
        raise ExportError(f"the model takes one input, its tokenizer makes {list(names)}")
    return names


def _model_feed(model: Any, feed: dict[str, Any]) -> Any:
    """What the Keras model takes for ``feed``: the dict itself (BERT) or its one array (LSTM)."""
    return feed if _takes_named_inputs(model) else feed["input_ids"]


def _write_text_savedmodel(model: Any, names: tuple[str, ...], path: Path) -> None:
    """Write a SavedModel whose ``serve`` endpoint takes a dict of int32 token ids ``(batch, seq_len)``."""
    import keras
    import tensorflow as tf

    signature = {key: tf.TensorSpec((None, None), tf.int32, name=key) for key in names}

    def serve(inputs: dict[str, Any]) -> Any:
        return {"logits": model(_model_feed(model, inputs), training=False)}

    # The endpoint tracks the variables it uses; ``archive.track(model)`` as well would store them twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name="serve", fn=serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def _vocab_bytes(entry: Any, spec: dict[str, Any]) -> bytes:
    """The entry's vocabulary as the bytes of a ``vocab.txt`` (one token a line, id = line number)."""
    vocab = spec["vocab"]
    if isinstance(vocab, str):
        return Path(vocab).read_bytes()
    if isinstance(vocab, (list, tuple)):
        return "".join(f"{token}\n" for token in vocab).encode("utf-8")
    raise InputError(
        f"{entry.name} tokenises without a vocabulary (character code points); zoo export handles text "
        "classifiers with a vocabulary"
    )


def _special_ids(spec: dict[str, Any], vocab: bytes) -> dict[str, int | None]:
    """Ids of the special tokens a runtime needs: ``[UNK]`` (and ``[CLS]``, ``[SEP]`` for WordPiece)."""
    from zoo.preprocessing.specs import UNK_TOKEN

    if spec["tokenizer"] == "wordpiece":
        from zoo.preprocessing.wordpiece import WordPieceTokenizer

        tok = WordPieceTokenizer(spec["vocab"], lowercase=spec["lowercase"])
        return {"unk_id": tok.unk_id, "cls_id": tok.cls_id, "sep_id": tok.sep_id}
    tokens = vocab.decode("utf-8").splitlines()  # as zoo.preprocessing reads a word or char vocabulary
    return {"unk_id": tokens.index(UNK_TOKEN) if UNK_TOKEN in tokens else None}  # None: OOV words dropped


def _text_contract(
    entry: Any, spec: dict[str, Any], names: tuple[str, ...], vocab: bytes, vocab_name: str
) -> dict[str, Any]:
    """The record that lets a runtime reproduce a text export's inputs and read its outputs."""
    import hashlib

    contract = {
        "inputs": list(names),
        "dtype": "int32",
        "shape": ["batch", "sequence"],
        "tokenizer": spec["tokenizer"],
        "lowercase": spec["lowercase"],
        "max_length": spec["max_length"],
        "pad_id": 0,
        **_special_ids(spec, vocab),
        "vocab": vocab_name,
        "vocab_sha256": hashlib.sha256(vocab).hexdigest(),
    }
    return _export_record(entry, contract)


def _annotate_onnx(
    path: Path,
    record: dict[str, Any],
    *,
    dims: tuple[str, ...] = ("batch", "sequence"),
    kind: str = "a text classifier on int32 token ids",
    output: str | None = "logits",
) -> None:
    """Name the ONNX model's output ``output`` and its free dimensions ``dims``; store ``record`` in it.

    ``record``'s keys become ``metadata_props`` ``zoo.<key>`` (values as JSON, :func:`_encode_record`).
    With ``output=None`` the outputs keep their names.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    if output is not None:
        old = graph.output[0].name
        for node in graph.node:
            node.output[:] = [output if o == old else o for o in node.output]
            node.input[:] = [output if i == old else i for i in node.input]
        graph.output[0].name = output
    for value in [*graph.input, graph.output[0]]:
        for dim, label in zip(value.type.tensor_type.shape.dim, dims, strict=False):
            if not dim.HasField("dim_value"):
                dim.dim_param = label
    props = {f"zoo.{k}": v for k, v in _encode_record(record).items()}
    onnx.helper.set_model_props(model, props)
    model.doc_string = f"zoo export of {record['weights']}: {kind}"
    onnx.save(model, str(path))


def _check_text(got: list[Any], expected: list[Any], fmt: str) -> float:
    """Return the max |diff| of a text export on the sample batches; refuse it beyond the tolerance."""
    import numpy as np

    pairs = zip(got, expected, strict=True)
    diff = max(float(np.max(np.abs(np.asarray(g, np.float32) - e))) for g, e in pairs)
    if not diff <= TEXT_TOLERANCE:  # NaN fails too
        raise ExportError(
            f"exported {fmt} model differs from Keras by {diff:.3g} (> {TEXT_TOLERANCE:g}) on token ids; "
            "nothing was written"
        )
    return diff


def _text_samples(entry: Any, model: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """Tokenised :data:`TEXT_SAMPLES` (all of them, then the first alone) and the Keras logits on them."""
    import numpy as np

    from zoo.tasks.text_classify import encode_texts

    feeds = [encode_texts(entry, list(TEXT_SAMPLES)), encode_texts(entry, list(TEXT_SAMPLES[:1]))]
    expected = [np.asarray(model.predict_on_batch(_model_feed(model, feed)), np.float32) for feed in feeds]
    return feeds, expected


def _export_text(entry: Any, fmt: str, out: Path, overwrite: bool) -> ExportResult:
    """Export a text classifier as a SavedModel folder or an ONNX file (with its vocabulary file)."""
    from zoo import api, outputs
    from zoo.preprocessing import local_text_spec

    spec = local_text_spec(entry)
    vocab = _vocab_bytes(entry, spec)
    vocab_out = out / "vocab.txt" if fmt == "savedmodel" else _vocab_target(out)
    if fmt == "onnx":  # before any work, as for ``out``
        outputs.check_file_target(vocab_out, overwrite)
    model = api.load(entry.name)
    feeds, expected = _text_samples(entry, model)
    names = _text_input_names(model, feeds[0])
    record = _text_contract(entry, spec, names, vocab, vocab_out.name)
    command = f"zoo export {entry.name} --format {fmt}"
    inputs = {"weights": entry.name, "format": fmt, "inputs": list(names)}
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_text_savedmodel(model, names, saved)
        if fmt == "savedmodel":
            diff = _check_text([_run_savedmodel(saved, feed) for feed in feeds], expected, fmt)
            (saved / "vocab.txt").write_bytes(vocab)
            (saved / "zoo_export.json").write_text(_json(record), encoding="utf-8")
            _move_savedmodel(saved, out, command=command, inputs=inputs, overwrite=overwrite)
        else:
            path = Path(tmpdir) / "model.onnx"
            _write_onnx(saved, path)
            _annotate_onnx(path, record)
            diff = _check_text([run_onnx(path, feed) for feed in feeds], expected, fmt)
            with (
                outputs.output_file(out, overwrite=overwrite, command=command) as part,
                outputs.output_file(vocab_out, overwrite=overwrite, command=command) as vocab_part,
            ):
                shutil.copyfile(path, part)
                vocab_part.write_bytes(vocab)
    size = _size_bytes(out)
    result = ExportResult(str(out), fmt, None, False, diff, TEXT_TOLERANCE, size)
    result.inputs, result.vocab, result.kind = names, str(vocab_out), "text"
    return result


#: Fixed standard-normal latent vectors (seed 0) that check a sampler export.
SAMPLER_CHECKS = 16


def _sampler_model(model: Any) -> Any:
    """The latent -> images part of a VAE (decoder, sigmoid) or a DCGAN (generator, rescaled to [0, 1])."""
    import keras

    latent = keras.Input((model.latent_dim,), name="latent")
    if hasattr(model, "decoder"):
        images = keras.layers.Activation("sigmoid", name="images")(model.decoder(latent))
    else:  # tanh's [-1, 1] to [0, 1], clipped as DCGAN.generate clips (rounding leaves it by 6e-8)
        scaled = keras.layers.Rescaling(0.5, offset=0.5)(model.generator(latent))
        images = keras.layers.ReLU(max_value=1.0, name="images")(scaled)
    return keras.Model(latent, images, name=f"{model.name}_sampler")


def _export_sampler(entry: Any, fmt: str, out: Path, overwrite: bool) -> ExportResult:
    """Export a VAE's decoder or a DCGAN's generator as latent -> images (see the module docstring)."""
    import numpy as np

    from zoo import api

    model = api.load(entry.name)
    sampler = _sampler_model(model)
    z = np.random.default_rng(0).standard_normal((SAMPLER_CHECKS, model.latent_dim)).astype("float32")
    expected = model.decode(z) if hasattr(model, "decoder") else model._images(z)
    image_shape = list(sampler.output_shape[1:])
    contract = {
        "inputs": ["latent"],
        "dtype": "float32",
        "shape": ["batch", model.latent_dim],
        "distribution": "standard normal",
    }
    record = {
        **_export_record(entry, contract),
        "output": {"name": "images", "shape": ["batch", *image_shape], "range": [0.0, 1.0]},
    }
    command = f"zoo export {entry.name} --format {fmt}"
    inputs = {"weights": entry.name, "format": fmt, "quantize": None, "preprocessing": False}
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_savedmodel(sampler, None, (model.latent_dim,), saved, input_name="latent")
        got = _write_checked(
            saved,
            fmt,
            _Owner(out, command, inputs, overwrite),
            record,
            run=lambda fmt, artifact: _run_export(fmt, artifact, z),
            check=lambda got: _check(got, expected, None, fmt),
            annotate={"dims": ("batch",), "kind": "a sampler: latent -> images", "output": "images"},
        )
    result = _export_result(out, fmt, None, False, got, expected)
    result.input_shape, result.kind = (model.latent_dim,), "sampler"
    result.description = (
        f"float32 latent vectors ({model.latent_dim}, standard normal) -> images {image_shape}"
    )
    return result


def _char_step_fn(model: Any) -> tuple[Any, dict[str, Any]]:
    """The character model's one-step function over a dict of tensors, and its input signature."""
    import tensorflow as tf

    from zoo.tasks.language_model import CharStepper

    stepper = CharStepper(model)
    names = [f"state_{i}_{k}" for i, sizes in enumerate(stepper.state_sizes) for k in range(len(sizes))]
    sizes = [size for layer_sizes in stepper.state_sizes for size in layer_sizes]
    signature = {"ids": tf.TensorSpec((None,), tf.int32, name="ids")}
    signature.update(
        {n: tf.TensorSpec((None, s), tf.float32, name=n) for n, s in zip(names, sizes, strict=True)}
    )

    def step(x: dict[str, Any]) -> dict[str, Any]:
        states, start = [], 0
        for layer_sizes in stepper.state_sizes:
            states.append([x[name] for name in names[start : start + len(layer_sizes)]])
            start += len(layer_sizes)
        logits, new = stepper.step(x["ids"], states)
        flat = [t for layer_states in new for t in layer_states]
        return {"logits": logits, **{f"next_{n}": t for n, t in zip(names, flat, strict=True)}}

    return step, signature


def _run_char_step(fmt: str, artifact: Path | bytes, feed: dict[str, Any]) -> dict[str, Any]:
    """Run an exported character step (folder, TFLite bytes or ONNX file) on ``feed``; outputs by name."""
    import numpy as np
    import tensorflow as tf

    if fmt == "savedmodel":
        loaded = tf.saved_model.load(str(artifact))
        return {
            k: np.asarray(v) for k, v in loaded.serve({k: tf.constant(v) for k, v in feed.items()}).items()
        }
    if fmt == "tflite":
        runner = tflite_interpreter(model_content=artifact).get_signature_runner()
        return {k: np.asarray(v) for k, v in runner(**feed).items()}
    import onnxruntime as ort

    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))


def _export_char_step(entry: Any, fmt: str, out: Path, overwrite: bool) -> ExportResult:
    """Export the character model as one step with its state (see the module docstring)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from zoo import api

    model = api.load(entry.name)
    step, signature = _char_step_fn(model)
    rng = np.random.default_rng(0)
    vocab = list(entry.preprocessing["vocab"])
    feed = {"ids": rng.integers(0, len(vocab), 4).astype("int32")}
    feed.update(
        {
            n: rng.standard_normal((4, s.shape[1])).astype("float32")
            for n, s in signature.items()
            if n != "ids"
        }
    )
    expected = {
        k: keras.ops.convert_to_numpy(v)
        for k, v in step({k: tf.constant(v) for k, v in feed.items()}).items()
    }
    contract = {
        "inputs": list(signature),
        "dtype": {"ids": "int32", "states": "float32"},
        "shape": {n: ["batch", *s.shape[1:]] for n, s in signature.items()},
        "start": "every state zeros; feed back next_state_* after each step",
        "vocab": vocab,
    }
    record = {
        **_export_record(entry, contract),
        "output": {"name": "logits", "shape": ["batch", len(vocab)], "states": "next_<input state name>"},
        "labels": [],
    }
    command = f"zoo export {entry.name} --format {fmt}"
    inputs = {"weights": entry.name, "format": fmt, "quantize": None, "preprocessing": False}

    def step_diff(got: dict[str, Any]) -> float:
        return max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)

    def check(got: dict[str, Any]) -> None:
        if (diff := step_diff(got)) > 1e-4:
            raise ExportError(
                f"the exported step differs from Keras by {diff:.3g} (more than 1e-4): nothing written"
            )

    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        archive = keras.export.ExportArchive()
        archive.add_endpoint(name="serve", fn=step, input_signature=[signature])
        archive.write_out(str(saved), verbose=False)
        got = _write_checked(
            saved,
            fmt,
            _Owner(out, command, inputs, overwrite),
            record,
            run=lambda fmt, artifact: _run_char_step(fmt, artifact, feed),
            check=check,
            annotate={"dims": (), "kind": "one character step with its recurrent state", "output": None},
        )
    result = ExportResult(str(out), fmt, None, False, step_diff(got), 1e-4, _size_bytes(out))
    result.kind = "char-step"
    result.description = (
        f"int32 ids (batch,) and {len(signature) - 1} float32 states (zeros to start) -> logits over "
        f"{len(vocab)} characters and the next states"
    )
    return result
