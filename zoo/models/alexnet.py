"""AlexNet (Krizhevsky, Sutskever and Hinton 2012).

Two variants: ``alexnet``, the ImageNet network in torchvision's single-tower
layout, and ``alexnet_cifar``, a small CIFAR-10 network in the spirit of
Krizhevsky's cuda-convnet CIFAR models (the family default, which carries the
packaged CIFAR-10 weights).

Layer names of ``alexnet`` mirror torchvision's ``state_dict`` keys with ``.``
replaced by ``_``: ``features.0.weight`` lives in layer ``features_0`` and
``classifier.1.weight`` in ``classifier_1``. The one exception is the last linear
layer, ``classifier.6``, which is the zoo's standard ``head`` layer. Dense
kernels are ``weight.T``; convolution kernels are ``weight.permute(2, 3, 1, 0)``.
"""

from __future__ import annotations

from zoo._lazy import keras
from zoo.models._common import (
    check_pooling,
    classifier_head,
    global_pool,
    torch_adaptive_avg_pool2d,
    torch_batch_norm,
    torch_conv2d,
    torch_flatten,
    torch_max_pool2d,
)
from zoo.registry import register_model

_PAPER = "Krizhevsky et al. 2012, ImageNet Classification with Deep Convolutional Neural Networks"
_PAPER_URL = "https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html"


@register_model(
    family="alexnet",
    display_name="AlexNet (ImageNet)",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    description="ImageNet AlexNet in torchvision's single-tower layout (61.1M parameters).",
)
def alexnet_imagenet(
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build the ImageNet AlexNet exactly as torchvision's ``alexnet``.

    Features: conv 11x11/4 (64, padding 2), ReLU, max-pool 3/2, conv 5x5 (192,
    padding 2), ReLU, max-pool 3/2, conv 3x3 384, ReLU, conv 3x3 256, ReLU, conv
    3x3 256, ReLU, max-pool 3/2. Classifier: adaptive average pooling to 6x6,
    flatten (in PyTorch's channel-first order), dropout, 9216->4096, ReLU,
    dropout, 4096->4096, ReLU, ``head``. 61,100,840 parameters at 224x224x3 with
    1000 classes.

    Torchvision's padding is reproduced with explicit ``ZeroPadding2D`` layers
    (``features_0_pad``) and ``"valid"`` convolutions, so converted torchvision
    weights give the same outputs. The ``avgpool`` layer is
    PyTorch's ``AdaptiveAvgPool2d((6, 6))`` (:func:`torch_adaptive_avg_pool2d`): at 224x224 input
    the feature map is already 6x6 and it is the identity; other input sizes
    (at least 63x63) are pooled or stretched to 6x6 exactly as torchvision does.

    Args:
        include_top: Keep the fully connected classifier. Without it the output is
            the ``features_12`` feature map (6x6x256 at 224 input), or a vector
            with ``pooling``, as in ``keras.applications``.
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, 3)``; defaults to ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate before each of the first two linear layers.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"alexnet_imagenet"``.
    """
    check_pooling(pooling)
    inputs = keras.Input(shape=tuple(input_shape or (224, 224, 3)), name="image")
    x = torch_conv2d(inputs, 64, 11, strides=4, padding=2, name="features_0")
    x = keras.layers.ReLU(name="features_1")(x)
    x = torch_max_pool2d(x, 3, strides=2, name="features_2")
    x = torch_conv2d(x, 192, 5, padding=2, name="features_3")
    x = keras.layers.ReLU(name="features_4")(x)
    x = torch_max_pool2d(x, 3, strides=2, name="features_5")
    x = torch_conv2d(x, 384, 3, padding=1, name="features_6")
    x = keras.layers.ReLU(name="features_7")(x)
    x = torch_conv2d(x, 256, 3, padding=1, name="features_8")
    x = keras.layers.ReLU(name="features_9")(x)
    x = torch_conv2d(x, 256, 3, padding=1, name="features_10")
    x = keras.layers.ReLU(name="features_11")(x)
    x = torch_max_pool2d(x, 3, strides=2, name="features_12")
    if include_top:
        x = torch_adaptive_avg_pool2d(x, (6, 6))
        x = torch_flatten(x)
        x = keras.layers.Dropout(dropout, name="classifier_0")(x)
        x = keras.layers.Dense(4096, name="classifier_1")(x)
        x = keras.layers.ReLU(name="classifier_2")(x)
        x = keras.layers.Dropout(dropout, name="classifier_3")(x)
        x = keras.layers.Dense(4096, name="classifier_4")(x)
        x = keras.layers.ReLU(name="classifier_5")(x)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = global_pool(x, pooling)
    return keras.Model(inputs, outputs, name="alexnet_imagenet")


@register_model(
    family="alexnet",
    display_name="AlexNet (CIFAR-10)",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="image-classification",
    family_default=True,
    description="Five-convolution AlexNet-style CIFAR-10 network with batch norm for 32x32 inputs.",
)
def alexnet_cifar(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build an AlexNet-style network for 32x32 CIFAR images.

    AlexNet's plan scaled to CIFAR in the manner of Krizhevsky's cuda-convnet
    CIFAR-10 models: 5x5 convolutions followed by overlapping 3x3/2 max pooling,
    then three 3x3 convolutions and a third pooling, then two fully connected
    layers. Batch normalization after every convolution and hidden dense layer
    replaces local response normalization, which makes the network quick to train
    with SGD.

    ``conv1`` 5x5x64 - pool1 (16x16) - ``conv2`` 5x5x128 - pool2 (8x8) - ``conv3``
    3x3x256 - ``conv4`` 3x3x256 - ``conv5`` 3x3x128 - pool5 (4x4x128) - flatten -
    dropout - ``fc6`` 1024 - dropout - ``fc7`` 512 - ``head``: 4,020,554 trainable
    parameters and about 133M multiply-adds per image.

    Args:
        include_top: Keep the fully connected layers and the head. Without them the
            output is the ``pool5`` feature map (or a vector with ``pooling``).
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        dropout: Dropout rate before ``fc6`` and ``fc7``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"alexnet_cifar"``.
    """
    check_pooling(pooling)
    inputs = keras.Input(shape=tuple(input_shape or (32, 32, 3)), name="image")
    x = inputs
    plan = ((1, 64, 5, True), (2, 128, 5, True), (3, 256, 3, False), (4, 256, 3, False), (5, 128, 3, True))
    for index, filters, kernel, pool in plan:
        x = keras.layers.Conv2D(
            filters,
            kernel,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            name=f"conv{index}",
        )(x)
        x = torch_batch_norm(f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{index}")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for index, units in ((6, 1024), (7, 512)):
            x = keras.layers.Dropout(dropout, name=f"dropout{index}")(x)
            x = keras.layers.Dense(units, use_bias=False, kernel_initializer="he_normal", name=f"fc{index}")(
                x
            )
            x = torch_batch_norm(f"bn{index}")(x)
            x = keras.layers.ReLU(name=f"relu{index}")(x)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = global_pool(x, pooling)
    return keras.Model(inputs, outputs, name="alexnet_cifar")
