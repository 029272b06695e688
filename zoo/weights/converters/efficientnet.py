"""EfficientNet-Lite state dicts in the layout of the PyTorch port (``efficientnet_lite_pytorch``).

The port's module paths start every part with an underscore
(``_blocks.3._expand_conv``); the zoo's layer names drop those underscores and
join the parts with ``_`` (``blocks_3_expand_conv``). Its final linear layer
``_fc`` is the zoo's ``head``. Tensors convert as in
:mod:`zoo.weights.converters.torchvision` (the depthwise kernels
``(channels, 1, kh, kw)`` become Keras' ``(kh, kw, channels, 1)``).

The packaged ``efficientnet_lite0.in1k`` weights were converted once with
``tools/convert_efficientnet_lite0.py`` and load as a Keras ``.weights.h5``, so
nothing here runs when they load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.weights.converters.torchvision import assign_state_dict

EFFICIENTNET_LITE_RENAMES: Mapping[str, str] = {"_fc": "head"}


def efficientnet_lite_layer_name(module: str) -> str:
    """Return the zoo layer name of a port module path (``_blocks.3._bn0`` -> ``blocks_3_bn0``)."""
    return "_".join(part.lstrip("_") for part in module.split("."))


def assign_efficientnet_lite(model: Any, state_dict: Mapping[str, Any]) -> list[str]:
    """Copy an ``efficientnet_lite_pytorch`` state dict into ``efficientnet_lite0``, strictly.

    Args:
        model: A model built by :func:`zoo.models.efficientnet.efficientnet_lite0`.
        state_dict: ``{"_conv_stem.weight": array, ...}`` with NumPy values.

    Returns:
        The names of the layers that were filled.

    Raises:
        WeightsFormatError: As :func:`zoo.weights.converters.torchvision.assign_state_dict`.
    """
    return assign_state_dict(
        model, state_dict, renames=EFFICIENTNET_LITE_RENAMES, layer_name=efficientnet_lite_layer_name
    )
