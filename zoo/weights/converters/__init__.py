"""Converters that load third-party checkpoints (safetensors, TensorFlow checkpoints) into zoo models.

A weights entry whose files are not Keras ``.weights.h5`` names a converter in
its manifest record (``"converter": "torchvision_resnet"``). The loader calls
``get(name)(model, paths, entry)`` after every file has been verified; the
converter copies the tensors into the freshly built model and raises
:class:`zoo.errors.WeightsFormatError` when names or shapes do not fit.

Converter modules live beside this file, one per source format, and register
themselves with :func:`register_converter`. They must never unpickle anything.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import WeightsFormatError

Converter = Callable[[Any, dict[str, Path], Any], None]
_CONVERTERS: dict[str, Converter] = {}
_DISCOVERED = False


def register_converter(name: str) -> Callable[[Converter], Converter]:
    """Register ``fn(model, paths, entry)`` as the converter called ``name``."""

    def decorator(fn: Converter) -> Converter:
        if name in _CONVERTERS:
            raise ValueError(f"converter {name!r} is registered twice")
        _CONVERTERS[name] = fn
        return fn

    return decorator


def _discover() -> None:
    global _DISCOVERED
    if not _DISCOVERED:
        _DISCOVERED = True
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")


def get(name: str) -> Converter:
    """Return the converter called ``name``.

    Raises:
        WeightsFormatError: When no converter has that name (an outdated zoo).
    """
    _discover()
    if name not in _CONVERTERS:
        raise WeightsFormatError(
            f"no converter {name!r} in this zoo version; upgrade zoo (known: {sorted(_CONVERTERS)})"
        )
    return _CONVERTERS[name]


def available() -> list[str]:
    """Names of every registered converter."""
    _discover()
    return sorted(_CONVERTERS)
