"""Kernels rounded layer after layer on the inputs the int8 model gives them.

:func:`zoo.export.rounding.compensated_kernels` weighs each layer's rounding errors by what
the float network feeds the layer. The int8 model feeds it something else: the output of
the layers before it, already rounded, through int8 activations. This rounds the layers in
the graph's order, each on what an int8 simulation of the model so far feeds it
(:func:`zoo.export.simulation.int8_simulation`, each activation on the range the export's
calibration gives it with the weights rounded before it). Where those inputs are many enough
(:data:`FIT_READS`), each kernel is first fitted, in least squares with a ridge towards the
float kernel, to give the float layer's output from them; then it is rounded with error
compensation, and the mean shift left in its output is taken back by the batch norm after it
or by its bias. So each layer makes up for the rounding of the activations and kernels before
it as well as for its own. ``zoo export --rounding sequential``; NumPy and Keras only: it runs
on every backend.
"""

from __future__ import annotations

from typing import Any

from zoo.export.quantize import _kernel_layers, _single_input, norms_after
from zoo.export.rounding import MOMENT_BATCH, _reads, compensated_rounding
from zoo.export.simulation import (
    _users,
    int8_simulation,
    quantized_outputs,
    ranges_of,
    split_activations,
)
from zoo.progress import progress

#: The fit's ridge towards the float kernel, as a fraction of the inputs' mean second moment.
RIDGE = 0.1

#: Images a model runs on at a time.
_BATCH = 16

#: Reads per input weight the fit needs (positions on the calibration images); with fewer it
#: would fit their noise, and the kernel is rounded as it is.
FIT_READS = 10


def unsupported(model: Any) -> str | None:
    """Why :func:`sequentially_rounded` cannot take ``model`` (``"nests ..."``), or ``None`` when it can.

    It takes a functional model with one input whose layers are plain (no nested models),
    each called once, with channels last and ungrouped convolutions.
    """
    import keras

    if isinstance(model.input, (list, tuple, dict)):
        return "has several inputs"
    checks = (
        ("nests models", lambda layer: isinstance(layer, keras.Model)),
        ("calls layers more than once", lambda layer: len(layer._inbound_nodes) != 1),
        ("groups its convolutions", lambda layer: getattr(layer, "groups", 1) != 1),
        ("has channels first", lambda layer: getattr(layer, "data_format", "") == "channels_first"),
    )
    for reason, failing in checks:
        names = [layer.name for layer in model.layers if failing(layer)]
        if names:
            return f"{reason} ({', '.join(names[:3])})"
    return None


def _moments(layer: Any, quantized: Any, reference: Any) -> tuple[Any, Any, Any, Any, int]:
    """``(H, C, mean_q, mean_f, reads)`` of what ``layer`` reads from ``quantized`` and ``reference``.

    ``H``: second moments of the quantized reads; ``C``: their cross moments with the
    reference's (both per input channel for a depthwise convolution); the mean reads; their count.
    """
    import numpy as np

    total: list[Any] = []
    for start in range(0, len(quantized), MOMENT_BATCH):
        q = _reads(layer, quantized[start : start + MOMENT_BATCH])
        f = _reads(layer, reference[start : start + MOMENT_BATCH])
        if q.ndim == 3:  # depthwise: (positions, taps, channels)
            part = [np.einsum("mkc,mlc->ckl", q, q), np.einsum("mkc,mlc->ckl", q, f)]
        else:
            part = [q.T @ q, q.T @ f]
        part += [q.sum(0), f.sum(0), len(q)]
        total = part if not total else [a + b for a, b in zip(total, part, strict=True)]
    h, c, sum_q, sum_f, count = total
    return h, c, sum_q / count, sum_f / count, count


def _fitted(kernel: Any, h: Any, c: Any, depthwise: bool) -> Any:
    """The kernel giving, in least squares, ``kernel``'s output on the reference from the quantized reads.

    Weights on reads that are zero on every calibration input are zero (as in GPTQ): they add
    nothing in the int8 model and would only widen their channel's grid.
    """
    import numpy as np

    shape, w = kernel.shape, np.asarray(kernel, "float64")
    if depthwise:  # one fit per input channel: (channels, taps, multiplier)
        w = w.reshape(shape[0] * shape[1], shape[2], shape[3]).transpose(1, 0, 2)
        diagonal = np.einsum("cii->ci", h)
        ridge = (RIDGE * diagonal.mean(1) + 1e-12)[:, None, None]
        fit = np.linalg.solve(h + ridge * np.eye(h.shape[-1]), c @ w + ridge * w)
        fit[diagonal == 0] = 0.0
        return fit.transpose(1, 0, 2).reshape(shape)
    w, diagonal = w.reshape(-1, shape[-1]), np.diag(h)
    ridge = RIDGE * diagonal.mean() + 1e-12
    fit = np.linalg.solve(h + ridge * np.eye(len(h)), c @ w + ridge * w)
    fit[diagonal == 0] = 0.0
    return fit.reshape(shape)


def _shift(kernel: Any, rounded: Any, mean_q: Any, mean_f: Any, depthwise: bool) -> Any:
    """Each output channel's mean change: ``rounded`` on the quantized reads, ``kernel`` on the others."""
    import numpy as np

    shape = kernel.shape
    if depthwise:
        k, r = kernel.reshape(-1, shape[2], shape[3]), rounded.reshape(-1, shape[2], shape[3])
        return (np.einsum("kc,kcm->cm", mean_q, r) - np.einsum("kc,kcm->cm", mean_f, k)).reshape(-1)
    return mean_q @ rounded.reshape(-1, shape[-1]) - mean_f @ kernel.reshape(-1, shape[-1])


class _Frontier:
    """What a functional model's layers read on fixed inputs, run a segment at a time.

    The model's layers run in ``order`` up to the layer asked for, and only the values later
    layers still read are kept: asked for its layers in that order, the model runs once over
    the inputs, each layer with the weights it has when the run reaches it.
    """

    def __init__(self, model: Any, inputs: Any, order: dict[str, int]) -> None:
        import keras

        self._model = model
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        nodes = [(order[layer.name], layer._inbound_nodes[0]) for layer in layers]
        self._nodes = sorted(nodes, key=lambda item: item[0])
        # by tensor id: the last position that reads it
        self._last = {key: max(order[u.name] for u in users) for key, users in _users(model).items()}
        self._values = {id(model.input): inputs}
        self._count, self._done = len(inputs), 0

    def advance(self, position: int, watch: Any = ()) -> Any:
        """Run the layers before ``position``; yield, a batch at a time, the values of tensors ``watch``."""
        import keras
        import numpy as np

        segment = [node for p, node in self._nodes[self._done :] if p < position]
        self._done += len(segment)
        produced = [t for node in segment for t in node.outputs]
        keep = [t for t in produced if self._last.get(id(t), -1) >= position]
        parts: list[list[Any]] = [[] for _ in keep]
        for start in range(0, self._count, _BATCH):
            values = {key: value[start : start + _BATCH] for key, value in self._values.items()}
            for node in segment:
                args, kwargs = node.arguments.fill_in(values)
                outputs = keras.tree.flatten(node.operation(*args, **kwargs))
                values.update({id(t): out for t, out in zip(node.outputs, outputs, strict=True)})
            for part, tensor in zip(parts, keep, strict=True):
                part.append(keras.ops.convert_to_numpy(values[id(tensor)]))
            yield [keras.ops.convert_to_numpy(values[id(t)]) for t in watch]
        self._values = {k: v for k, v in self._values.items() if self._last.get(k, -1) >= position}
        self._values.update({id(t): np.concatenate(part) for t, part in zip(keep, parts, strict=True)})

    def reads(self, name: str, position: int) -> Any:
        """What layer ``name`` (at ``position``) reads; the layers before it are run first."""
        for _ in self.advance(position):
            pass
        return self._values[id(_single_input(self._model.get_layer(name)))]


def _round_layer(name: str, float_model: Any, copy: Any, simulation: Any, reads: Any) -> tuple[bool, bool]:
    """Round layer ``name`` of ``copy`` and ``simulation``; whether a norm or bias took its shift; a fit.

    ``reads`` are what the simulation and the float model feed the layer.
    """
    import keras
    import numpy as np

    layer = float_model.get_layer(name)
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    h, c, mean_q, mean_f, count = _moments(layer, *reads)
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), "float64")
    fit = count >= FIT_READS * h.shape[-1]
    rounded = compensated_rounding(_fitted(kernel, h, c, depthwise) if fit else kernel, h, depthwise)
    shift = _shift(kernel, rounded.astype("float64"), mean_q, mean_f, depthwise).astype("float32")
    norm = getattr(norms_after(copy).get(id(copy.get_layer(name).output)), "name", None)
    for model in (copy, simulation):
        model.get_layer(name).kernel.assign(rounded.astype("float32"))
        if norm is not None:  # the norm subtracts its moving mean
            mean = model.get_layer(norm).moving_mean
            mean.assign(keras.ops.convert_to_numpy(mean) + shift)
        elif getattr(layer, "use_bias", False):
            bias = model.get_layer(name).bias
            bias.assign(keras.ops.convert_to_numpy(bias) - shift)
    return norm is not None or getattr(layer, "use_bias", False), fit


def sequentially_rounded(
    model: Any, calibration: Any, levels: dict[str, int] | None = None
) -> tuple[Any, dict[str, int]]:
    """A copy of ``model`` with every kernel on TFLite's int8 grid, rounded layer after layer.

    Args:
        model: A functional model :func:`unsupported` finds nothing against.
        calibration: Model inputs the layers are rounded on, and the activation ranges measured on.
        levels: Activations the int8 model holds more finely, as
            :func:`~zoo.export.simulation.int8_simulation` takes them (the first in pieces:
            :func:`~zoo.export.pieces.pieces_levels`).

    Returns:
        The copy (:func:`~zoo.export.simulation.split_activations` of it) and counts:
        ``"layers"`` rounded; of those, ``"corrected"``: with their mean shift taken back, and
        ``"fitted"``: fitted first (:data:`FIT_READS`).
    """
    import keras

    float_model = split_activations(model)
    copy = keras.models.clone_model(float_model)
    copy.set_weights(float_model.get_weights())
    simulation = int8_simulation(copy, calibration, levels=levels)
    order = {layer.name: i for i, layer in enumerate(simulation.layers)}
    runs = [_Frontier(m, calibration, order) for m in (copy, simulation, float_model)]
    pending = sorted(quantized_outputs(copy), key=lambda layer: order[layer.name])
    counts = {"layers": 0, "corrected": 0, "fitted": 0}
    sites = _kernel_layers(copy)
    for _, _, layer in progress(sites, "rounding layers on the int8 inputs", total=len(sites), unit="layer"):
        position = order[layer.name]
        ready = [q for q in pending if order[q.name] < position]
        # their producers are all rounded: measure their ranges as the export will
        batches = runs[0].advance(position, [q.output for q in ready])
        for q_name, (lo, hi) in ranges_of(ready, batches).items():
            fake = simulation.get_layer(f"int8_{q_name}")
            fake.lo, fake.hi = float(min(lo, 0.0)), float(max(hi, 0.0))
        pending = [q for q in pending if q not in ready]
        reads = [run.reads(layer.name, position) for run in runs[1:]]
        corrected, fitted = _round_layer(layer.name, float_model, copy, simulation, reads)
        counts["layers"] += 1
        counts["corrected"] += corrected
        counts["fitted"] += fitted
    return copy, counts
