"""Helpers shared by the family builders."""

from __future__ import annotations

from typing import Any

from zoo._lazy import keras


def check_pooling(pooling: str | None) -> None:
    """Raise ``ValueError`` unless ``pooling`` is ``None``, ``"avg"`` or ``"max"``."""
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")


def global_pool(x: Any, pooling: str | None, name: str = "global_pool") -> Any:
    """Apply global average or max pooling to a feature map, or return it unchanged."""
    check_pooling(pooling)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=name)(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=name)(x)
    return x


def classifier_head(features: Any, num_classes: int, *, activation: str | None = None) -> Any:
    """Attach the standard ``pre_logits`` hook and ``head`` layer to a feature vector.

    ``pre_logits`` is an identity layer whose output is the feature vector the head
    consumes; ``head`` is the final ``Dense`` layer producing logits (or
    probabilities when ``activation="softmax"``).
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    x = keras.layers.Identity(name="pre_logits")(features)
    return keras.layers.Dense(num_classes, activation=activation, name="head")(x)


def register_custom_objects() -> None:
    """Import the private modules that register the zoo's custom Keras classes.

    Call this before ``keras.saving.load_model`` on a ``.keras`` file written from a
    zoo model in a fresh process: the builders import these modules lazily, so a
    process that never called a builder has not registered them yet.
    """
    import zoo.models._generative  # noqa: F401
    import zoo.models._layers  # noqa: F401


def torch_batch_norm(name: str) -> Any:
    """Return a ``BatchNormalization`` with PyTorch's defaults (eps 1e-5, momentum 0.1).

    PyTorch's ``momentum=0.1`` weights the new batch statistic, Keras' ``momentum``
    weights the running value, so the Keras equivalent is ``momentum=0.9``.
    """
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def torch_conv2d(
    x: Any,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    padding: int = 0,
    use_bias: bool = True,
    kernel_initializer: Any = "glorot_uniform",
) -> Any:
    """Apply a ``Conv2D`` that matches ``torch.nn.Conv2d(..., padding=padding)`` exactly.

    A stride-1 convolution with ``padding == kernel_size // 2`` (odd kernel) pads
    symmetrically, which is exactly Keras' ``"same"``. Any other padding is applied
    with an explicit ``ZeroPadding2D`` named ``f"{name}_pad"`` followed by a
    ``"valid"`` convolution, because Keras' ``"same"`` pads asymmetrically for
    strided convolutions while PyTorch pads both sides.
    """
    if padding and strides == 1 and kernel_size % 2 == 1 and padding == kernel_size // 2:
        conv_padding = "same"
    else:
        conv_padding = "valid"
        if padding:
            x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=conv_padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
    )(x)


def torch_max_pool2d(
    x: Any, pool_size: int, *, name: str, strides: int | None = None, padding: int = 0
) -> Any:
    """Apply a ``MaxPooling2D`` matching ``torch.nn.MaxPool2d(pool_size, strides, padding)``.

    PyTorch pads max pooling with ``-inf``; the zoo only pads max pooling that follows
    a ReLU, whose outputs are non-negative, so zero padding (``ZeroPadding2D`` named
    ``f"{name}_pad"``) gives identical results.
    """
    if padding:
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(pool_size, strides=strides or pool_size, name=name)(x)


def torch_adaptive_avg_pool2d(x: Any, size: tuple[int, int], name: str = "avgpool") -> Any:
    """PyTorch's ``AdaptiveAvgPool2d(size)`` on a ``(H, W, C)`` feature map.

    Where the map's static size is a whole multiple of ``size`` (the identity at the
    ImageNet input size), PyTorch's bins are plain ``AveragePooling2D`` windows, used
    here: Keras 3.15's ``AdaptiveAveragePooling2D`` returns NaN on JAX for some of
    these sizes (7x7 or 14x14 to 7x7). Any other size uses that Keras layer, which
    follows PyTorch's bin rule.
    """
    height, width = x.shape[1], x.shape[2]
    if height and width and height % size[0] == 0 and width % size[1] == 0:
        pool = (height // size[0], width // size[1])
        return keras.layers.AveragePooling2D(pool, name=name)(x)
    return keras.layers.AdaptiveAveragePooling2D(size, name=name)(x)


def torch_flatten(x: Any, name: str = "flatten") -> Any:
    """Flatten a ``(H, W, C)`` feature map in PyTorch's ``(C, H, W)`` order.

    A ``Permute`` named ``f"{name}_nchw"`` precedes the ``Flatten``, so the first
    dense layer after it takes ``torch_linear.weight.T`` unchanged in a weight
    conversion.
    """
    x = keras.layers.Permute((3, 1, 2), name=f"{name}_nchw")(x)
    return keras.layers.Flatten(name=name)(x)


def count_parameters(model: Any) -> int:
    """Count parameters as torchvision and the papers do: trainable weights of the unfrozen model.

    ``model.count_params()`` also counts batch-norm moving statistics, which are buffers.
    """
    import math

    return int(sum(math.prod(w.shape) for w in model.trainable_weights))
