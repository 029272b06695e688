"""VGG (Simonyan and Zisserman 2014).

The eight ImageNet networks (``vgg11`` ... ``vgg19`` and their ``_bn`` forms)
follow torchvision's layout exactly. Their layer names mirror torchvision's
``state_dict`` keys with ``.`` replaced by ``_``: ``features.0.weight`` lives in
layer ``features_0`` (every ReLU and pooling layer takes its torchvision index
too, so the numbering matches), ``classifier.0.weight`` in ``classifier_0``; the
last linear layer, ``classifier.6``, is the zoo's standard ``head`` layer. Batch
norm layers map ``weight``/``bias``/``running_mean``/``running_var`` onto
``gamma``/``beta``/``moving_mean``/``moving_variance``.

``vgg11_cifar`` (the family default) and ``vgg16_cifar`` are the same convolution
stacks with batch norm for 32x32 CIFAR images, followed by a small classifier.

Every variant is an explicit, registered, keyword-only builder function
(``zoo.models.vgg.vgg16``) that passes its :class:`_Arch` to the shared
implementation :func:`_vgg`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from zoo._lazy import keras
from zoo.models._common import (
    check_pooling,
    classifier_head,
    global_pool,
    torch_adaptive_avg_pool2d,
    torch_batch_norm,
    torch_conv2d,
    torch_flatten,
)
from zoo.registry import register_model

_PAPER = "Simonyan and Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition"
_PAPER_URL = "https://arxiv.org/abs/1409.1556"

# torchvision's configurations "A", "B", "D" and "E"; "M" is a 2x2 max pooling.
_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ),
}


class _Arch(NamedTuple):
    """The shape of one VGG: its model name, configuration depth, batch norm and input kind."""

    name: str
    depth: int
    batch_norm: bool
    cifar: bool


def _features(x: Any, depth: int, batch_norm: bool, kernel_initializer: Any = "glorot_uniform"):
    """Apply torchvision's ``vgg.features`` stack, naming layers by their module index."""
    index = 0
    for item in _CONFIGS[depth]:
        if item == "M":
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"features_{index}")(x)
            index += 1
            continue
        x = torch_conv2d(
            x,
            int(item),
            3,
            padding=1,
            kernel_initializer=kernel_initializer,
            name=f"features_{index}",
        )
        index += 1
        if batch_norm:
            x = torch_batch_norm(f"features_{index}")(x)
            index += 1
        x = keras.layers.ReLU(name=f"features_{index}")(x)
        index += 1
    return x


def _imagenet_classifier(x: Any, dropout: float) -> Any:
    """Apply torchvision's ``avgpool`` and ``classifier`` up to (not including) ``head``."""
    x = torch_adaptive_avg_pool2d(x, (7, 7))
    x = torch_flatten(x)
    x = keras.layers.Dense(4096, name="classifier_0")(x)
    x = keras.layers.ReLU(name="classifier_1")(x)
    x = keras.layers.Dropout(dropout, name="classifier_2")(x)
    x = keras.layers.Dense(4096, name="classifier_3")(x)
    x = keras.layers.ReLU(name="classifier_4")(x)
    return keras.layers.Dropout(dropout, name="classifier_5")(x)


def _cifar_classifier(x: Any, dropout: float) -> Any:
    """Apply the small CIFAR classifier (pooling, 512-unit ``classifier_fc``) before ``head``."""
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    x = keras.layers.Dropout(dropout, name="classifier_dropout1")(x)
    x = keras.layers.Dense(512, use_bias=False, kernel_initializer="he_normal", name="classifier_fc")(x)
    x = torch_batch_norm("classifier_bn")(x)
    x = keras.layers.ReLU(name="classifier_relu")(x)
    return keras.layers.Dropout(dropout, name="classifier_dropout2")(x)


def _vgg(
    v: _Arch,
    *,
    include_top: bool,
    num_classes: int,
    input_shape: tuple[int, int, int] | None,
    pooling: str | None,
    dropout: float,
    classifier_activation: str | None,
) -> keras.Model:
    """Build the VGG of one variant's :class:`_Arch`."""
    check_pooling(pooling)
    default_shape = (32, 32, 3) if v.cifar else (224, 224, 3)
    inputs = keras.Input(shape=tuple(input_shape or default_shape), name="image")
    x = _features(
        inputs,
        v.depth,
        v.batch_norm,
        kernel_initializer="he_normal" if v.cifar else "glorot_uniform",
    )
    if include_top:
        x = (_cifar_classifier if v.cifar else _imagenet_classifier)(x, dropout)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = global_pool(x, pooling)
    return keras.Model(inputs, outputs, name=v.name)


@register_model(
    family="vgg",
    display_name="VGG-11",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-11 in torchvision's layout (132,863,336 parameters).",
)
def vgg11(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-11 exactly as torchvision's ``vgg11``.

    Configuration "A": 3x3 convolutions with padding 1, ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 132,863,336 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg11"``.
    """
    return _vgg(
        _Arch("vgg11", depth=11, batch_norm=False, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-13",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-13 in torchvision's layout (133,047,848 parameters).",
)
def vgg13(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-13 exactly as torchvision's ``vgg13``.

    Configuration "B": 3x3 convolutions with padding 1, ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 133,047,848 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg13"``.
    """
    return _vgg(
        _Arch("vgg13", depth=13, batch_norm=False, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-16",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-16 in torchvision's layout (138,357,544 parameters).",
)
def vgg16(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-16 exactly as torchvision's ``vgg16``.

    Configuration "D": 3x3 convolutions with padding 1, ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 138,357,544 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg16"``.
    """
    return _vgg(
        _Arch("vgg16", depth=16, batch_norm=False, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-19",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-19 in torchvision's layout (143,667,240 parameters).",
)
def vgg19(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-19 exactly as torchvision's ``vgg19``.

    Configuration "E": 3x3 convolutions with padding 1, ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 143,667,240 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg19"``.
    """
    return _vgg(
        _Arch("vgg19", depth=19, batch_norm=False, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-11-BN",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-11-BN in torchvision's layout (132,868,840 parameters).",
)
def vgg11_bn(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-11-BN exactly as torchvision's ``vgg11_bn``.

    Configuration "A": 3x3 convolutions with padding 1 and batch norm
    (eps 1e-5, PyTorch momentum 0.1), ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 132,868,840 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg11_bn"``.
    """
    return _vgg(
        _Arch("vgg11_bn", depth=11, batch_norm=True, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-13-BN",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-13-BN in torchvision's layout (133,053,736 parameters).",
)
def vgg13_bn(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-13-BN exactly as torchvision's ``vgg13_bn``.

    Configuration "B": 3x3 convolutions with padding 1 and batch norm
    (eps 1e-5, PyTorch momentum 0.1), ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 133,053,736 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg13_bn"``.
    """
    return _vgg(
        _Arch("vgg13_bn", depth=13, batch_norm=True, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-16-BN",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-16-BN in torchvision's layout (138,365,992 parameters).",
)
def vgg16_bn(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-16-BN exactly as torchvision's ``vgg16_bn``.

    Configuration "D": 3x3 convolutions with padding 1 and batch norm
    (eps 1e-5, PyTorch momentum 0.1), ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 138,365,992 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg16_bn"``.
    """
    return _vgg(
        _Arch("vgg16_bn", depth=16, batch_norm=True, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-19-BN",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet VGG-19-BN in torchvision's layout (143,678,248 parameters).",
)
def vgg19_bn(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-19-BN exactly as torchvision's ``vgg19_bn``.

    Configuration "E": 3x3 convolutions with padding 1 and batch norm
    (eps 1e-5, PyTorch momentum 0.1), ReLU and
    2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
    identity at 224x224 input, PyTorch's bin rule at other sizes of at least
    32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
    dropout, 4096->4096, ReLU, dropout, ``head``. 143,678,248 parameters with
    1000 classes.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the last pooled feature map (7x7x512 at 224 input), or a vector with
            ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate of ``classifier_2`` and ``classifier_5``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg19_bn"``.
    """
    return _vgg(
        _Arch("vgg19_bn", depth=19, batch_norm=True, cifar=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-11 (CIFAR)",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    family_default=True,
    description="VGG-11 with batch norm for 32x32 CIFAR images and a 512-unit classifier.",
)
def vgg11_cifar(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-11 with batch norm for CIFAR (the VGG family default).

    The convolution stack of ``vgg11_bn`` (configuration "A", same layer names),
    whose five poolings reduce a 32x32 image to 1x1x512, then global average
    pooling, dropout, ``classifier_fc`` (512 units, batch norm, ReLU), dropout and
    ``head``: 9,494,282 trainable parameters with 10 classes. It is the family
    default because it trains fastest on a CPU.

    Args:
        include_top: Keep the classifier. Without it the output is the last pooled
            feature map (1x1x512 at 32x32 input), or a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate before and after ``classifier_fc``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg11_cifar"``.
    """
    return _vgg(
        _Arch("vgg11_cifar", depth=11, batch_norm=True, cifar=True),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="vgg",
    display_name="VGG-16 (CIFAR)",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="VGG-16 with batch norm for 32x32 CIFAR images and a 512-unit classifier.",
)
def vgg16_cifar(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build VGG-16 with batch norm for CIFAR.

    The convolution stack of ``vgg16_bn`` (configuration "D", same layer names),
    whose five poolings reduce a 32x32 image to 1x1x512, then global average
    pooling, dropout, ``classifier_fc`` (512 units, batch norm, ReLU), dropout and
    ``head``: 14,991,434 trainable parameters with 10 classes.

    Args:
        include_top: Keep the classifier. Without it the output is the last pooled
            feature map (1x1x512 at 32x32 input), or a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate before and after ``classifier_fc``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"vgg16_cifar"``.
    """
    return _vgg(
        _Arch("vgg16_cifar", depth=16, batch_norm=True, cifar=True),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )


__all__ = [
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "vgg11_cifar",
    "vgg16_cifar",
]
