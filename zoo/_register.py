"""Make ``keras.saving.load_model`` know the zoo's layers once ``zoo`` is imported.

``import zoo`` must not import Keras, so the zoo's serializable classes (its custom
layers and the one-cycle schedule) are registered the moment Keras itself is imported:
a finder on ``sys.meta_path`` wraps the loading of the ``keras`` module and registers
them right after. If Keras is already imported, they are registered at once.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any

__all__ = ["register_when_keras_loads"]


def _register() -> None:
    from zoo.models._common import register_custom_objects

    register_custom_objects()
    import zoo.train.schedules  # noqa: F401  (OneCycle, in optimizers saved with a model)


class _Loader(importlib.abc.Loader):
    """Loads ``keras`` with its own loader, then registers the zoo's classes."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        _register()


class _KerasFinder(importlib.abc.MetaPathFinder):
    """Finds ``keras`` the normal way, once, and hands back a spec with :class:`_Loader`."""

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # the real search below must not find this finder again
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


def register_when_keras_loads() -> None:
    """Register the zoo's Keras classes now if Keras is loaded, else when it is first imported."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(f, _KerasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasFinder())
