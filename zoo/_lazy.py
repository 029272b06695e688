"""Deferred imports of heavy libraries, and a way to quiet their Python loggers for a while.

``from zoo._lazy import keras`` gives an object that behaves like the ``keras``
module but imports it only on first attribute access, so registering models and
running ``zoo list`` never pays for TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import types
from collections.abc import Iterator
from typing import Any


class LazyModule(types.ModuleType):
    """A module proxy that imports ``name`` the first time an attribute is read."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lazy_name"] = name
        self.__dict__["_lazy_module"] = None

    def _load(self) -> types.ModuleType:
        module = self.__dict__["_lazy_module"]
        if module is None:
            module = importlib.import_module(self.__dict__["_lazy_name"])
            self.__dict__["_lazy_module"] = module
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())


keras = LazyModule("keras")
tf = LazyModule("tensorflow")
np = LazyModule("numpy")


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Python logger ``name`` (``"tensorflow"``, ``"absl"``) reports errors only inside the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
