"""Weight transfer between Keras models: copy every weight that fits, adapt input kernels.

Used by the loader to put pretrained weights into a model built for a different
head or input (``zoo.load(name, num_classes=..., input_shape=...)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from zoo.errors import WeightsFormatError

__all__ = ["adapt_input_kernel", "iter_weight_layers", "transfer_weights"]


def iter_weight_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(path, layer)`` for every layer holding weights, descending into nested models.

    Paths join the names of enclosing sub-models with ``/``, so they are stable
    across builds of the same architecture.
    """
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        if hasattr(layer, "layers") and getattr(layer, "layers", None):
            yield from iter_weight_layers(layer, prefix=f"{path}/")
        elif layer.weights:
            yield path, layer


def adapt_input_kernel(kernel: Any, in_channels: int) -> Any:
    """Adapt a first-layer conv kernel ``(kh, kw, c, out)`` to ``in_channels`` input channels.

    Going from one channel to ``n`` tiles the kernel and divides by ``n``; going
    from ``c`` channels to one sums over channels. Either way a greyscale image
    replicated across channels gives the same response as before.
    """
    import numpy as np

    c = kernel.shape[2]
    if c == in_channels:
        return kernel
    if in_channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    if c == 1:
        return np.repeat(kernel, in_channels, axis=2) / in_channels
    raise WeightsFormatError(f"cannot adapt a {c}-channel input kernel to {in_channels} channels")


def transfer_weights(source: Any, target: Any, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Copy weights from ``source`` into ``target`` layer by layer, matching layer paths.

    Layers named in ``skip`` keep their fresh initialisation. The first weighted
    layer may differ in input channels (greyscale and RGB); it is adapted with
    :func:`adapt_input_kernel`. Every other weighted layer of ``target`` must have
    a counterpart of the same shapes in ``source``.

    Args:
        source: Model holding trained weights.
        target: Freshly built model receiving them.
        skip: Layer names (last path component) not to copy, e.g. ``("head",)``.

    Returns:
        The paths of the layers that were copied.

    Raises:
        WeightsFormatError: When a target layer has no compatible source layer.
    """
    src_layers = dict(iter_weight_layers(source))
    copied: list[str] = []
    for index, (path, layer) in enumerate(iter_weight_layers(target)):
        if path.rsplit("/", 1)[-1] in skip:
            continue
        if path not in src_layers:
            raise WeightsFormatError(f"pretrained weights have no layer {path!r} to copy")
        values = src_layers[path].get_weights()
        want = [tuple(w.shape) for w in layer.get_weights()]
        if index == 0 and len(values) == len(want) and values and values[0].ndim == 4:
            values[0] = adapt_input_kernel(values[0], want[0][2])
        got = [tuple(v.shape) for v in values]
        if got != want:
            raise WeightsFormatError(
                f"layer {path!r}: pretrained weights have shapes {got}, the model needs {want}; "
                "this option changes a weight shape (try a different input_shape)"
            )
        layer.set_weights(values)
        copied.append(path)
    return copied


# --------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------
