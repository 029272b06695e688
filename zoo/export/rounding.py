"""Error-compensating rounding of kernels to TFLite's int8 grid (GPTQ, Frantar et al. 2023).

Rounding each weight to its nearest grid point leaves errors that add up on the layer's
inputs: on smooth feature maps (photos upscaled for an ImageNet network, say) neighbouring
inputs are nearly equal, so the errors of a kernel's taps add rather than cancel. This rounds
a kernel one input weight at a time and moves the weights not yet rounded to take back, as
well as they can, what that rounding changed in the layer's output on calibration inputs:
the optimal-brain-quantisation update with the inverse of the inputs' second moments ``H``,
applied in GPTQ's Cholesky form. Each output channel keeps TFLite's symmetric scale (its
largest magnitude over 127), and that largest weight is kept exactly, so TFLite's own
rounding of the result changes nothing. NumPy only: it runs on every Keras backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Damping added to ``H``'s diagonal, as a fraction of its mean (GPTQ's default).
DAMPING = 0.01

#: Calibration inputs per pass when second moments are summed (bounds the patches' memory).
MOMENT_BATCH = 4


def _padded(layer: Any, x: Any) -> Any:
    """``x`` padded as TensorFlow pads ``"same"`` (more after than before), else as it is."""
    import numpy as np

    if layer.padding != "same":
        return x
    pads = [(0, 0)]
    geometry = zip(x.shape[1:3], layer.kernel_size, layer.strides, layer.dilation_rate, strict=True)
    for size, k, stride, rate in geometry:
        out = -(-size // stride)
        total = max((out - 1) * stride + (k - 1) * rate + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [*pads, (0, 0)])


def _patches(layer: Any, x: Any) -> Any:
    """The input patches a convolution of ``layer``'s geometry reads: ``(positions, kh * kw, channels)``."""
    import numpy as np

    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate
    x = _padded(layer, np.asarray(x, "float64"))
    windows = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    windows = windows[:, ::sh, ::sw, :, ::dh, ::dw]  # (n, oh, ow, channels, kh, kw)
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw, x.shape[-1])


def _reads(layer: Any, x: Any) -> Any:
    """What ``layer``'s output channels read of its inputs ``x``, as float64.

    ``(positions, d)`` for a dense layer or convolution, ``(positions, taps, channels)`` for a
    depthwise convolution (each of its channels reads its own).
    """
    import keras
    import numpy as np

    x = np.asarray(x, "float64")
    if isinstance(layer, keras.layers.Dense):
        return x.reshape(-1, x.shape[-1])
    patches = _patches(layer, x)
    return patches if isinstance(layer, keras.layers.DepthwiseConv2D) else patches.reshape(len(patches), -1)


def input_moments(layer: Any, inputs: Any) -> Any:
    """``H``, the second moments of what each output channel of ``layer`` reads, summed over ``inputs``.

    One ``(d, d)`` matrix shared by all output channels of a convolution (``d`` its kernel's
    taps times input channels) or dense layer, and one per input channel of a depthwise
    convolution (``(channels, taps, taps)``).
    """
    import numpy as np

    total = None
    for start in range(0, len(inputs), MOMENT_BATCH):
        p = _reads(layer, inputs[start : start + MOMENT_BATCH])
        part = np.einsum("mkc,mlc->ckl", p, p) if p.ndim == 3 else p.T @ p
        total = part if total is None else total + part
    return total


def compensated_rounding(kernel: Any, moments: Any, depthwise: bool = False) -> Any:
    """``kernel`` on TFLite's int8 grid, each rounding error taken back by the weights after it.

    The grid is ``int8_weights``'; ``moments`` (:func:`input_moments`) weigh the errors.

    Args:
        kernel: A convolution or dense kernel (output channels last) or a depthwise kernel
            ``(h, w, channels, multiplier)``.
        moments: ``H`` of the layer's inputs: ``(d, d)``, or ``(channels, taps, taps)`` for a
            depthwise kernel.
        depthwise: Whether ``kernel`` is a depthwise kernel.

    Returns:
        The rounded kernel, its shape and dtype.
    """
    import numpy as np

    shape = kernel.shape
    if depthwise:
        columns = np.asarray(kernel, "float64").reshape(shape[0] * shape[1], -1)  # (taps, channels * mult)
        h = np.repeat(np.asarray(moments, "float64"), shape[3], axis=0)
    else:
        columns = np.asarray(kernel, "float64").reshape(-1, shape[-1])
        h = np.asarray(moments, "float64")[None]
    peak = np.abs(columns).max(0)
    scale = np.where(peak > 0, peak / 127, 1.0)
    rounded = _gptq(columns, h, scale)
    top = np.abs(columns).argmax(0)  # the weight that sets the scale stays exact: TFLite keeps the grid
    rounded[top, np.arange(columns.shape[1])] = columns[top, np.arange(columns.shape[1])]
    return rounded.reshape(shape).astype(kernel.dtype)


def _gptq(columns: Any, h: Any, scale: Any) -> Any:
    """Round ``columns`` ``(d, n)`` row by row to ``scale``'s grid, the later rows compensating.

    ``h`` is one ``(1, d, d)`` matrix for every column or ``(n, d, d)``, one per column.
    """
    import numpy as np

    d = columns.shape[0]
    eye = np.eye(d)
    diagonal = np.einsum("nii->ni", h)
    h = h + (DAMPING * diagonal.mean(1) + 1e-12)[:, None, None] * eye + (diagonal == 0)[:, :, None] * eye
    upper = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)  # (1 or n, d, d)
    w = columns.copy()
    rounded = np.zeros_like(w)
    for j in range(d):
        rounded[j] = np.clip(np.round(w[j] / scale), -127, 127) * scale
        error = (w[j] - rounded[j]) / upper[:, j, j]
        w[j + 1 :] -= upper[:, j, j + 1 :].T * error
    return rounded


def layer_inputs(model: Any, layers: list, calibration: Any, batch: int = 16) -> Iterator[list]:
    """What the functional ``model`` feeds each of ``layers`` on ``calibration``, a batch at a time."""
    import keras

    probe = keras.Model(model.input, [layer.input for layer in layers])
    for start in range(0, len(calibration), batch):
        outputs = keras.tree.flatten(probe(calibration[start : start + batch], training=False))
        yield [keras.ops.convert_to_numpy(x) for x in outputs]


def compensated_kernels(model: Any, layers: list, calibration: Any) -> list:
    """:func:`compensated_rounding` of each of ``layers`` (of the functional ``model``).

    Their second moments are summed over what the float ``model`` feeds them on ``calibration``.
    """
    import keras
    import numpy as np

    if not layers:
        return []
    moments: list[Any] = [None] * len(layers)
    for inputs in layer_inputs(model, layers, calibration):
        for i, x in enumerate(inputs):
            part = input_moments(layers[i], x)
            moments[i] = part if moments[i] is None else moments[i] + part
    return [
        compensated_rounding(
            np.asarray(keras.ops.convert_to_numpy(layer.kernel)),
            h,
            isinstance(layer, keras.layers.DepthwiseConv2D),
        )
        for layer, h in zip(layers, moments, strict=True)
    ]
