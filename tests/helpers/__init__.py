"""Shared test helpers: where the real data lives, and the local Hub server (``hubserver``)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The real datasets: ``ZOO_DATA_DIR``, else ``../shared/data`` beside the checkout.
DATA_DIR = Path(os.environ.get("ZOO_DATA_DIR") or ROOT.parent / "shared" / "data")


def numpy(outputs):
    """Model outputs (a tensor or a structure of them) as NumPy, on every Keras backend.

    ``np.asarray`` cannot read a PyTorch tensor that requires grad; Keras' own conversion can.
    """
    import keras

    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def packaged_names() -> list[str]:
    """The manifest's entries whose weights ship inside the package, sorted."""
    from zoo.weights.manifest import load_manifest

    return sorted(n for n, e in load_manifest().items() if e.package_source is not None)
