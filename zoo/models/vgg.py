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

Every variant is one row of :data:`_VARIANTS`; :func:`_make_builder` turns a row
into a registered, documented, keyword-only builder function that is also a
module attribute (``zoo.models.vgg.vgg16``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from zoo._lazy import keras
from zoo.models._common import (
    check_pooling,
    classifier_head,
    global_pool,
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
_CONFIG_LETTERS = {11: "A", 13: "B", 16: "D", 19: "E"}


class _Variant(NamedTuple):
    """One registered VGG: its name, depth, batch norm, input kind and parameter count."""

    name: str
    depth: int
    batch_norm: bool
    cifar: bool
    params: str  # trainable parameters with the default ``num_classes``, as documented
    family_default: bool = False


_VARIANTS = (
    _Variant("vgg11", 11, False, False, "132,863,336"),
    _Variant("vgg13", 13, False, False, "133,047,848"),
    _Variant("vgg16", 16, False, False, "138,357,544"),
    _Variant("vgg19", 19, False, False, "143,667,240"),
    _Variant("vgg11_bn", 11, True, False, "132,868,840"),
    _Variant("vgg13_bn", 13, True, False, "133,053,736"),
    _Variant("vgg16_bn", 16, True, False, "138,365,992"),
    _Variant("vgg19_bn", 19, True, False, "143,678,248"),
    _Variant("vgg11_cifar", 11, True, True, "9,494,282", family_default=True),
    _Variant("vgg16_cifar", 16, True, True, "14,991,434"),
)

_IMAGENET_DOC = """Build {display_name} exactly as torchvision's ``{name}``.

Configuration "{config}": 3x3 convolutions with padding 1{with_bn}, ReLU and
2x2 max pooling after each stage; adaptive average pooling to 7x7 (the
identity at 224x224 input, PyTorch's bin rule at other sizes of at least
32x32); flatten in PyTorch's channel-first order; 25088->4096, ReLU,
dropout, 4096->4096, ReLU, dropout, ``head``. {params} parameters with
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
    An uncompiled ``keras.Model`` named ``"{name}"``.
"""

_CIFAR_DOC = """Build VGG-{depth} with batch norm for CIFAR{default}.

The convolution stack of ``vgg{depth}_bn`` (configuration "{config}", same layer names),
whose five poolings reduce a 32x32 image to 1x1x512, then global average
pooling, dropout, ``classifier_fc`` (512 units, batch norm, ReLU), dropout and
``head``: {params} trainable parameters with 10 classes.{default_note}

Args:
    include_top: Keep the classifier. Without it the output is the last pooled
        feature map (1x1x512 at 32x32 input), or a vector with ``pooling``.
    num_classes: Size of the ``head`` layer.
    input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
    pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
    dropout: Dropout rate before and after ``classifier_fc``.
    classifier_activation: Activation of ``head``; ``None`` gives logits.

Returns:
    An uncompiled ``keras.Model`` named ``"{name}"``.
"""


def _display_name(v: _Variant) -> str:
    """Return the human name of a variant: ``VGG-16``, ``VGG-16-BN`` or ``VGG-16 (CIFAR)``."""
    if v.cifar:
        return f"VGG-{v.depth} (CIFAR)"
    return f"VGG-{v.depth}{'-BN' if v.batch_norm else ''}"


def _docstring(v: _Variant) -> str:
    """Return the Google-style docstring of a variant's builder."""
    fields = dict(v._asdict(), config=_CONFIG_LETTERS[v.depth], display_name=_display_name(v))
    if not v.cifar:
        with_bn = " and batch norm\n(eps 1e-5, PyTorch momentum 0.1)" if v.batch_norm else ""
        return _IMAGENET_DOC.format(**fields, with_bn=with_bn)
    if v.family_default:
        return _CIFAR_DOC.format(
            **fields,
            default=" (the VGG family default)",
            default_note=" It is the family\ndefault because it trains fastest on a CPU.",
        )
    return _CIFAR_DOC.format(**fields, default="", default_note="")


def _description(v: _Variant) -> str:
    """Return the one-line registry description of a variant."""
    if v.cifar:
        return f"VGG-{v.depth} with batch norm for 32x32 CIFAR images and a 512-unit classifier."
    return f"ImageNet {_display_name(v)} in torchvision's layout ({v.params} parameters)."


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
    x = keras.layers.AdaptiveAveragePooling2D((7, 7), name="avgpool")(x)
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
    v: _Variant,
    *,
    include_top: bool,
    num_classes: int,
    input_shape: tuple[int, int, int] | None,
    pooling: str | None,
    dropout: float,
    classifier_activation: str | None,
) -> keras.Model:
    """Build the VGG described by one row of :data:`_VARIANTS`."""
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


def _make_builder(v: _Variant) -> Callable[..., keras.Model]:
    """Create, document and register the builder function of one variant."""

    def builder(
        *,
        include_top: bool = True,
        num_classes: int = 10 if v.cifar else 1000,
        input_shape: tuple[int, int, int] | None = None,
        pooling: str | None = None,
        dropout: float = 0.5,
        classifier_activation: str | None = None,
    ) -> keras.Model:
        return _vgg(
            v,
            include_top=include_top,
            num_classes=num_classes,
            input_shape=input_shape,
            pooling=pooling,
            dropout=dropout,
            classifier_activation=classifier_activation,
        )

    builder.__name__ = builder.__qualname__ = v.name
    builder.__doc__ = _docstring(v)
    return register_model(
        family="vgg",
        display_name=_display_name(v),
        paper=_PAPER,
        paper_url=_PAPER_URL,
        task="image-classification",
        family_default=v.family_default,
        description=_description(v),
    )(builder)


for _v in _VARIANTS:
    globals()[_v.name] = _make_builder(_v)
del _v

__all__ = [v.name for v in _VARIANTS]
