"""ResNet (He, Zhang, Ren and Sun 2015).

Two groups of variants:

* ``resnet18`` ... ``resnet152``: the ImageNet networks exactly as torchvision
  builds them (ResNet v1.5: the stride of a bottleneck block sits on its 3x3
  convolution). Layer names mirror torchvision's ``state_dict`` keys with ``.``
  replaced by ``_``: ``conv1``, ``bn1``, ``layer1_0_conv1``, ``layer1_0_bn1``,
  ``layer2_0_downsample_0`` (the 1x1 projection), ``layer2_0_downsample_1`` (its
  batch norm), ...; torchvision's ``fc`` is the zoo's standard ``head`` layer.
* ``resnet20`` ... ``resnet110``: the CIFAR-10 networks of the paper's section
  4.2 (``6n + 2`` layers, three stages of 16, 32 and 64 channels) with option-A
  parameter-free shortcuts. ``resnet20`` is the family default.

Padding follows PyTorch: strided convolutions and the stem's max pooling pad
explicitly (``<name>_pad`` layers) and use ``"valid"``; stride-1 3x3
convolutions use ``"same"``, which pads identically. Batch norm uses PyTorch's
eps 1e-5 and momentum 0.1 (Keras ``momentum=0.9``).

Every variant is an explicit, registered, keyword-only builder function
(``zoo.models.resnet.resnet50``) that passes its :class:`_Arch` to the shared
implementation :func:`_resnet`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from zoo._lazy import keras
from zoo.models._common import (
    check_pooling,
    classifier_head,
    global_pool,
    torch_batch_norm,
    torch_conv2d,
    torch_max_pool2d,
)
from zoo.registry import register_model

_PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition"
_PAPER_URL = "https://arxiv.org/abs/1512.03385"


class _Arch(NamedTuple):
    """The shape of one ResNet: its model name, input kind and residual blocks per stage."""

    name: str
    cifar: bool
    blocks: tuple[int, ...]  # residual blocks per stage
    bottleneck: bool


def _kaiming_fan_out() -> Any:
    """Return torchvision's ResNet convolution initializer (Kaiming normal, fan-out)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def _shortcut(x: Any, filters: int, stride: int, prefix: str, *, kind: str, init: Any) -> Any:
    """Return a block's shortcut branch: ``"identity"``, ``"projection"`` or ``"zero_pad"``.

    ``"projection"`` is torchvision's ``downsample``: a strided 1x1 convolution
    (``<prefix>_downsample_0``) and its batch norm (``<prefix>_downsample_1``).
    ``"zero_pad"`` is option A of the CIFAR networks, named after the widely used
    PyTorch port (Idelbayev's ``pytorch_resnet_cifar10``): ``x[:, ::2, ::2, :]`` (a
    1x1 max pooling with stride 2, layer ``<prefix>_shortcut_pool``) padded with
    zero channels on each side (a :class:`zoo.models._layers.ChannelZeroPad`,
    layer ``<prefix>_shortcut_pad``): no parameters and no ``Lambda`` layer.
    """
    if kind == "identity":
        return x
    if kind == "projection":
        x = torch_conv2d(
            x,
            filters,
            1,
            strides=stride,
            use_bias=False,
            kernel_initializer=init,
            name=f"{prefix}_downsample_0",
        )
        return torch_batch_norm(f"{prefix}_downsample_1")(x)
    from zoo.models._layers import ChannelZeroPad

    if stride != 1:
        x = keras.layers.MaxPooling2D(1, strides=stride, name=f"{prefix}_shortcut_pool")(x)
    extra = filters - x.shape[-1]
    return ChannelZeroPad(extra // 2, extra - extra // 2, name=f"{prefix}_shortcut_pad")(x)


def _basic_block(x: Any, planes: int, stride: int, prefix: str, *, shortcut: str, init: Any) -> Any:
    """Apply torchvision's ``BasicBlock`` (two 3x3 convolutions, expansion 1)."""
    out = torch_conv2d(
        x,
        planes,
        3,
        strides=stride,
        padding=1,
        use_bias=False,
        kernel_initializer=init,
        name=f"{prefix}_conv1",
    )
    out = torch_batch_norm(f"{prefix}_bn1")(out)
    out = keras.layers.ReLU(name=f"{prefix}_relu1")(out)
    out = torch_conv2d(
        out,
        planes,
        3,
        padding=1,
        use_bias=False,
        kernel_initializer=init,
        name=f"{prefix}_conv2",
    )
    out = torch_batch_norm(f"{prefix}_bn2")(out)
    skip = _shortcut(x, planes, stride, prefix, kind=shortcut, init=init)
    out = keras.layers.Add(name=f"{prefix}_add")([out, skip])
    return keras.layers.ReLU(name=f"{prefix}_relu2")(out)


def _bottleneck_block(x: Any, planes: int, stride: int, prefix: str, *, shortcut: str, init: Any) -> Any:
    """Apply torchvision's ``Bottleneck`` (1x1, strided 3x3, 1x1; expansion 4)."""
    out = torch_conv2d(x, planes, 1, use_bias=False, kernel_initializer=init, name=f"{prefix}_conv1")
    out = torch_batch_norm(f"{prefix}_bn1")(out)
    out = keras.layers.ReLU(name=f"{prefix}_relu1")(out)
    out = torch_conv2d(
        out,
        planes,
        3,
        strides=stride,
        padding=1,
        use_bias=False,
        kernel_initializer=init,
        name=f"{prefix}_conv2",
    )
    out = torch_batch_norm(f"{prefix}_bn2")(out)
    out = keras.layers.ReLU(name=f"{prefix}_relu2")(out)
    out = torch_conv2d(out, planes * 4, 1, use_bias=False, kernel_initializer=init, name=f"{prefix}_conv3")
    out = torch_batch_norm(f"{prefix}_bn3")(out)
    skip = _shortcut(x, planes * 4, stride, prefix, kind=shortcut, init=init)
    out = keras.layers.Add(name=f"{prefix}_add")([out, skip])
    return keras.layers.ReLU(name=f"{prefix}_relu3")(out)


def _stages(x: Any, widths: tuple[int, ...], v: _Arch, *, init: Any) -> Any:
    """Apply the residual stages ``layer1``, ``layer2``, ...; every stage after the first halves H, W.

    A block whose input and output shapes differ gets a projection shortcut
    (ImageNet) or an option-A zero-padding shortcut (CIFAR); the others an identity.
    """
    block_fn = _bottleneck_block if v.bottleneck else _basic_block
    expansion = 4 if v.bottleneck else 1
    channels = x.shape[-1]
    for stage, (planes, count) in enumerate(zip(widths, v.blocks, strict=True), start=1):
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            shortcut = "identity"
            if stride != 1 or channels != planes * expansion:
                shortcut = "zero_pad" if v.cifar else "projection"
            x = block_fn(x, planes, stride, f"layer{stage}_{index}", shortcut=shortcut, init=init)
            channels = planes * expansion
    return x


def _resnet(
    v: _Arch,
    *,
    include_top: bool,
    num_classes: int,
    input_shape: tuple[int, int, int] | None,
    pooling: str | None,
    classifier_activation: str | None,
) -> keras.Model:
    """Build the ResNet of one variant's :class:`_Arch`.

    ImageNet networks have torchvision's stem (7x7/2 convolution, batch norm, ReLU,
    3x3/2 max pooling) and four stages of 64 ... 512 planes. CIFAR networks of
    ``depth = 6n + 2`` layers have a 3x3 convolution with 16 filters, batch norm and
    ReLU, then three stages of ``n`` basic blocks with 16, 32 and 64 filters; their
    layer names follow Idelbayev's ``pytorch_resnet_cifar10`` (its ``linear`` is
    ``head``).
    """
    check_pooling(pooling)
    inputs = keras.Input(
        shape=tuple(input_shape or ((32, 32, 3) if v.cifar else (224, 224, 3))), name="image"
    )
    if v.cifar:
        init: Any = "he_normal"
        x = torch_conv2d(inputs, 16, 3, padding=1, use_bias=False, kernel_initializer=init, name="conv1")
        widths: tuple[int, ...] = (16, 32, 64)
    else:
        init = _kaiming_fan_out()
        x = torch_conv2d(
            inputs,
            64,
            7,
            strides=2,
            padding=3,
            use_bias=False,
            kernel_initializer=init,
            name="conv1",
        )
        widths = (64, 128, 256, 512)
    x = torch_batch_norm("bn1")(x)
    x = keras.layers.ReLU(name="relu")(x)
    if not v.cifar:
        x = torch_max_pool2d(x, 3, strides=2, padding=1, name="maxpool")
    x = _stages(x, widths, v, init=init)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = global_pool(x, pooling)
    return keras.Model(inputs, outputs, name=v.name)


@register_model(
    family="resnet",
    display_name="ResNet-18",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet ResNet-18 in torchvision's layout (11,689,512 parameters).",
)
def resnet18(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build ResNet-18 exactly as torchvision's ``resnet18``.

    Basic blocks ``[2, 2, 2, 2]``: 11,689,512 parameters with 1000 classes.

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the ``layer4`` feature map (7x7x512 at 224 input), or a
            vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet18"``.
    """
    return _resnet(
        _Arch("resnet18", cifar=False, blocks=(2, 2, 2, 2), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-34",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet ResNet-34 in torchvision's layout (21,797,672 parameters).",
)
def resnet34(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build ResNet-34 exactly as torchvision's ``resnet34``.

    Basic blocks ``[3, 4, 6, 3]``: 21,797,672 parameters with 1000 classes.

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the ``layer4`` feature map (7x7x512 at 224 input), or a
            vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet34"``.
    """
    return _resnet(
        _Arch("resnet34", cifar=False, blocks=(3, 4, 6, 3), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-50",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet ResNet-50 (v1.5) in torchvision's layout (25,557,032 parameters).",
)
def resnet50(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build ResNet-50 exactly as torchvision's ``resnet50`` (v1.5).

    Bottleneck blocks ``[3, 4, 6, 3]``: 25,557,032 parameters with 1000 classes.

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the ``layer4`` feature map (7x7x2048 at 224 input), or a
            vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet50"``.
    """
    return _resnet(
        _Arch("resnet50", cifar=False, blocks=(3, 4, 6, 3), bottleneck=True),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-101",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet ResNet-101 (v1.5) in torchvision's layout (44,549,160 parameters).",
)
def resnet101(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build ResNet-101 exactly as torchvision's ``resnet101`` (v1.5).

    Bottleneck blocks ``[3, 4, 23, 3]``: 44,549,160 parameters with 1000 classes.

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the ``layer4`` feature map (7x7x2048 at 224 input), or a
            vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet101"``.
    """
    return _resnet(
        _Arch("resnet101", cifar=False, blocks=(3, 4, 23, 3), bottleneck=True),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-152",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet ResNet-152 (v1.5) in torchvision's layout (60,192,808 parameters).",
)
def resnet152(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build ResNet-152 exactly as torchvision's ``resnet152`` (v1.5).

    Bottleneck blocks ``[3, 8, 36, 3]``: 60,192,808 parameters with 1000 classes.

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the ``layer4`` feature map (7x7x2048 at 224 input), or a
            vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet152"``.
    """
    return _resnet(
        _Arch("resnet152", cifar=False, blocks=(3, 8, 36, 3), bottleneck=True),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-20",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    family_default=True,
    description="CIFAR-10 ResNet-20 (n=3, option-A shortcuts, 0.27M parameters).",
)
def resnet20(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build the CIFAR-10 ResNet-20 of He et al., section 4.2 (the family default).

    A 3x3 convolution with 16 filters, three stages of ``n = 3`` basic blocks
    with 16, 32 and 64 filters (the last two start with stride 2), global average
    pooling and ``head``. Shortcuts are option A: identity, subsampled and padded
    with zero channels where the stage changes. 269,722 parameters with 10
    classes (the paper's 0.27M).

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the last stage's feature map (8x8x64 at 32x32 input), or
            a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet20"``.
    """
    return _resnet(
        _Arch("resnet20", cifar=True, blocks=(3, 3, 3), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-32",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="CIFAR-10 ResNet-32 (n=5, option-A shortcuts, 0.46M parameters).",
)
def resnet32(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build the CIFAR-10 ResNet-32 of He et al., section 4.2.

    A 3x3 convolution with 16 filters, three stages of ``n = 5`` basic blocks
    with 16, 32 and 64 filters (the last two start with stride 2), global average
    pooling and ``head``. Shortcuts are option A: identity, subsampled and padded
    with zero channels where the stage changes. 464,154 parameters with 10
    classes (the paper's 0.46M).

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the last stage's feature map (8x8x64 at 32x32 input), or
            a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet32"``.
    """
    return _resnet(
        _Arch("resnet32", cifar=True, blocks=(5, 5, 5), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-44",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="CIFAR-10 ResNet-44 (n=7, option-A shortcuts, 0.66M parameters).",
)
def resnet44(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build the CIFAR-10 ResNet-44 of He et al., section 4.2.

    A 3x3 convolution with 16 filters, three stages of ``n = 7`` basic blocks
    with 16, 32 and 64 filters (the last two start with stride 2), global average
    pooling and ``head``. Shortcuts are option A: identity, subsampled and padded
    with zero channels where the stage changes. 658,586 parameters with 10
    classes (the paper's 0.66M).

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the last stage's feature map (8x8x64 at 32x32 input), or
            a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet44"``.
    """
    return _resnet(
        _Arch("resnet44", cifar=True, blocks=(7, 7, 7), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-56",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="CIFAR-10 ResNet-56 (n=9, option-A shortcuts, 0.85M parameters).",
)
def resnet56(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build the CIFAR-10 ResNet-56 of He et al., section 4.2.

    A 3x3 convolution with 16 filters, three stages of ``n = 9`` basic blocks
    with 16, 32 and 64 filters (the last two start with stride 2), global average
    pooling and ``head``. Shortcuts are option A: identity, subsampled and padded
    with zero channels where the stage changes. 853,018 parameters with 10
    classes (the paper's 0.85M).

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the last stage's feature map (8x8x64 at 32x32 input), or
            a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet56"``.
    """
    return _resnet(
        _Arch("resnet56", cifar=True, blocks=(9, 9, 9), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


@register_model(
    family="resnet",
    display_name="ResNet-110",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="CIFAR-10 ResNet-110 (n=18, option-A shortcuts, 1.7M parameters).",
)
def resnet110(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build the CIFAR-10 ResNet-110 of He et al., section 4.2.

    A 3x3 convolution with 16 filters, three stages of ``n = 18`` basic blocks
    with 16, 32 and 64 filters (the last two start with stride 2), global average
    pooling and ``head``. Shortcuts are option A: identity, subsampled and padded
    with zero channels where the stage changes. 1,727,962 parameters with 10
    classes (the paper's 1.7M).

    Args:
        include_top: Keep global average pooling and the ``head``. Without them
            the output is the last stage's feature map (8x8x64 at 32x32 input), or
            a vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"resnet110"``.
    """
    return _resnet(
        _Arch("resnet110", cifar=True, blocks=(18, 18, 18), bottleneck=False),
        include_top=include_top,
        num_classes=num_classes,
        input_shape=input_shape,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


__all__ = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
]
