"""Load PyTorch-layout state dicts (torchvision or timm names, safetensors files) into zoo models.

The zoo's ImageNet ResNet, VGG and AlexNet builders name every layer after the
torchvision module that holds the same weights, with ``.`` replaced by ``_``
(``layer1.0.downsample.0`` lives in layer ``layer1_0_downsample_0``). A state
dict therefore maps onto a model by name, with a few renames for the
classifier, which is always the zoo's ``head`` layer:

* ResNet: ``fc`` -> ``head`` (torchvision and timm use the same names).
* VGG (torchvision): ``classifier.0`` / ``classifier.3`` / ``classifier.6`` ->
  ``classifier_0`` / ``classifier_3`` / ``head``.
* VGG (timm): ``pre_logits.fc1`` (the first linear layer stored as a 7x7
  convolution, weight ``(4096, 512, 7, 7)``) -> ``classifier_0``,
  ``pre_logits.fc2`` (a 1x1 convolution) -> ``classifier_3``, ``head.fc`` -> ``head``.
* AlexNet: ``classifier.6`` -> ``head``.

Tensors are converted by the kind of Keras layer they land in:

* ``Conv2D`` kernel: PyTorch ``(out, in, kh, kw)`` -> Keras ``(kh, kw, in, out)``.
* ``DepthwiseConv2D`` kernel: ``(channels * multiplier, 1, kh, kw)`` -> ``(kh, kw, channels, multiplier)``.
* ``Dense`` kernel: ``(out, in)`` -> ``(in, out)``. A convolution weight
  ``(out, c, kh, kw)`` feeding a dense layer (timm's ``pre_logits.fc1``) is
  flattened in ``(c, kh, kw)`` order first, which is the order the zoo's
  ``Permute``-to-channels-first + ``Flatten`` produces.
* ``BatchNormalization``: ``weight``/``bias``/``running_mean``/``running_var`` ->
  ``gamma``/``beta``/``moving_mean``/``moving_variance``; ``num_batches_tracked``
  (a training counter) is ignored.

Conversion is strict: every weight of the model must be filled, every tensor of
the state dict used, and every shape must match, or a
:class:`~zoo.errors.WeightsFormatError` says which. Nothing is assigned unless
the whole state dict fits. Files are read with ``safetensors.numpy``: no torch,
no pickle.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zoo.errors import WeightsFormatError
from zoo.weights.converters import register_converter

#: Buffers that PyTorch saves but a Keras model has no place for.
IGNORED_SUFFIXES = ("num_batches_tracked",)

#: Module renames of each family (PyTorch module path -> Keras layer name).
RESNET_RENAMES: Mapping[str, str] = {"fc": "head"}
VGG_RENAMES: Mapping[str, str] = {
    "classifier.6": "head",
    "pre_logits.fc1": "classifier_0",
    "pre_logits.fc2": "classifier_3",
    "head.fc": "head",
}
ALEXNET_RENAMES: Mapping[str, str] = {"classifier.6": "head"}

# Keras variable name -> the PyTorch parameter suffix it is read from.
_SUFFIX_OF = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_MAX_LISTED = 8


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a safetensors file into a ``{name: numpy array}`` dict (no torch, no pickle).

    Raises:
        WeightsFormatError: When the file is not a readable safetensors file.
    """
    from safetensors.numpy import load_file

    p = Path(path)
    try:
        return dict(load_file(str(p)))
    except Exception as exc:  # safetensors raises its own SafetensorError, TypeError or OSError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsFormatError(f"{p.name} is not a readable safetensors file: {first}") from exc


def default_layer_name(module: str) -> str:
    """Return the zoo layer name of a torchvision module path: ``.`` becomes ``_``."""
    return module.replace(".", "_")


def group_by_module(state_dict: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Split ``"module.path.suffix"`` keys into ``{module path: {suffix: tensor}}``.

    ``num_batches_tracked`` buffers are dropped.

    Raises:
        WeightsFormatError: On a key without a module path.
    """
    modules: dict[str, dict[str, Any]] = {}
    for key, value in state_dict.items():
        module, sep, suffix = key.rpartition(".")
        if not sep or not module:
            raise WeightsFormatError(f"state dict key {key!r} has no module path")
        if suffix in IGNORED_SUFFIXES:
            continue
        modules.setdefault(module, {})[suffix] = value
    return modules


def _kernel_value(layer: Any, tensor: Any, key: str) -> Any:
    """Convert a PyTorch weight tensor into the kernel layout of ``layer``."""
    import keras
    import numpy as np

    t = np.asarray(tensor)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if t.ndim != 4 or t.shape[1] != 1:
            raise WeightsFormatError(
                f"{key}: a depthwise kernel must have shape (channels * multiplier, 1, kh, kw), got {t.shape}"
            )
        multiplier = layer.depth_multiplier
        if t.shape[0] % multiplier:
            raise WeightsFormatError(
                f"{key}: {t.shape[0]} filters do not divide by depth multiplier {multiplier}"
            )
        t = t.reshape(t.shape[0] // multiplier, multiplier, t.shape[2], t.shape[3])
        return t.transpose(2, 3, 0, 1)
    if isinstance(layer, keras.layers.Conv2D):
        if t.ndim != 4:
            raise WeightsFormatError(f"{key}: a convolution weight must be 4-D, got {t.shape}")
        return t.transpose(2, 3, 1, 0)
    if isinstance(layer, keras.layers.Dense):
        if t.ndim == 4:  # a convolution used as a linear layer: flatten (c, kh, kw) as torch does
            t = t.reshape(t.shape[0], -1)
        if t.ndim != 2:
            raise WeightsFormatError(f"{key}: a linear weight must be 2-D, got {t.shape}")
        return t.T
    raise WeightsFormatError(f"{key}: no conversion rule for the {type(layer).__name__} layer {layer.name!r}")


def _layer_values(layer: Any, tensors: dict[str, Any], module: str) -> list[tuple[Any, Any]]:
    """Return ``(variable, value)`` pairs filling ``layer`` from one module's tensors."""
    import numpy as np

    pairs = []
    used = set()
    for var in layer.weights:
        vname = var.name.rsplit("/", 1)[-1]
        suffix = _SUFFIX_OF.get(vname)
        if suffix is None:
            raise WeightsFormatError(f"layer {layer.name!r}: no PyTorch counterpart for its weight {vname!r}")
        key = f"{module}.{suffix}"
        if suffix not in tensors:
            raise WeightsFormatError(f"the state dict has no {key!r} for layer {layer.name!r}")
        tensor = np.asarray(tensors[suffix])
        if not np.issubdtype(tensor.dtype, np.floating):
            raise WeightsFormatError(f"{key}: expected floating-point values, got {tensor.dtype}")
        value = _kernel_value(layer, tensor, key) if vname == "kernel" else tensor
        want = tuple(var.shape)
        if tuple(value.shape) != want:
            raise WeightsFormatError(
                f"{key} has shape {tuple(tensor.shape)}, which does not fit {vname} {want} "
                f"of layer {layer.name!r}"
            )
        pairs.append((var, np.ascontiguousarray(value, dtype=var.dtype)))
        used.add(suffix)
    unused = sorted(set(tensors) - used)
    if unused:
        raise WeightsFormatError(
            f"layer {layer.name!r} has no place for {', '.join(f'{module}.{s}' for s in unused)}"
        )
    return pairs


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def assign_state_dict(
    model: Any,
    state_dict: Mapping[str, Any],
    *,
    renames: Mapping[str, str] | None = None,
    layer_name: Callable[[str], str] = default_layer_name,
) -> list[str]:
    """Copy a PyTorch-layout state dict into a zoo model, strictly.

    Args:
        model: A functional ``keras.Model`` whose layer names mirror the PyTorch modules.
        state_dict: ``{"module.path.weight": array, ...}`` (NumPy arrays or anything
            ``numpy.asarray`` accepts), PyTorch layouts.
        renames: Module path -> layer name, applied before ``layer_name``.
        layer_name: Maps any other module path to its layer name (default: ``.`` -> ``_``).

    Returns:
        The names of the layers that were filled, in model order.

    Raises:
        WeightsFormatError: When a model weight has no tensor, a tensor has no place
            in the model, or a shape does not fit. The model is left unchanged.
    """
    renames = dict(renames or {})
    modules = group_by_module(state_dict)
    by_layer: dict[str, str] = {}
    for module in modules:
        target = renames.get(module) or layer_name(module)
        if target in by_layer:
            raise WeightsFormatError(
                f"state dict modules {by_layer[target]!r} and {module!r} both map to layer {target!r}"
            )
        by_layer[target] = module
    weighted = [layer for layer in model.layers if layer.weights]
    missing = [layer.name for layer in weighted if layer.name not in by_layer]
    if missing:
        raise WeightsFormatError(
            f"the state dict has no tensors for {len(missing)} layer(s) of {model.name}: {_listed(missing)}"
        )
    names = {layer.name for layer in weighted}
    unused = [by_layer[n] for n in by_layer if n not in names]
    if unused:
        raise WeightsFormatError(
            f"{len(unused)} state dict module(s) have no layer in {model.name}: {_listed(unused)}"
        )
    assignments = []
    for layer in weighted:
        module = by_layer[layer.name]
        assignments.extend(_layer_values(layer, modules[module], module))
    for var, value in assignments:
        var.assign(value)
    return [layer.name for layer in weighted]


def _safetensors_path(paths: Mapping[str, Path], entry: Any) -> Path:
    files = [f for f in entry.files if f.format == "safetensors"]
    if len(files) != 1:
        raise WeightsFormatError(f"{entry.name}: expected exactly one safetensors file, found {len(files)}")
    return paths[files[0].filename]


def _load(model: Any, paths: Mapping[str, Path], entry: Any, renames: Mapping[str, str]) -> None:
    state_dict = read_safetensors(_safetensors_path(paths, entry))
    try:
        assign_state_dict(model, state_dict, renames=renames)
    except WeightsFormatError as exc:
        raise WeightsFormatError(f"{entry.name}: {exc}") from exc


@register_converter("torchvision_resnet")
def load_torchvision_resnet(model: Any, paths: Mapping[str, Path], entry: Any) -> None:
    """Load a torchvision- or timm-named ResNet safetensors file into a zoo ImageNet ResNet."""
    _load(model, paths, entry, RESNET_RENAMES)


@register_converter("torchvision_vgg")
def load_torchvision_vgg(model: Any, paths: Mapping[str, Path], entry: Any) -> None:
    """Load a torchvision- or timm-named VGG safetensors file into a zoo ImageNet VGG.

    timm's ``pre_logits`` convolutions are the same linear layers as torchvision's
    classifier, so at 224x224 input the zoo model computes what timm's does; at
    other sizes the zoo (like torchvision) first pools the features to 7x7.
    """
    _load(model, paths, entry, VGG_RENAMES)


@register_converter("torchvision_alexnet")
def load_torchvision_alexnet(model: Any, paths: Mapping[str, Path], entry: Any) -> None:
    """Load a torchvision-named AlexNet safetensors file into ``alexnet_imagenet``."""
    _load(model, paths, entry, ALEXNET_RENAMES)
