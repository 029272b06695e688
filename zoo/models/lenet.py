"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998)."""

from __future__ import annotations

from zoo._lazy import keras
from zoo.models._common import check_pooling, classifier_head, global_pool
from zoo.registry import register_model


@register_model(
    family="lenet",
    display_name="LeNet-5",
    paper="LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition",
    paper_url="https://doi.org/10.1109/5.726791",
    task="image-classification",
    family_default=True,
    description="Classic LeNet-5 for 32x32 greyscale digits, with a fully connected C3.",
)
def lenet5(
    *,
    include_top: bool = True,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    activation: str = "tanh",
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build LeNet-5.

    The classic form: C1 (6 5x5 maps), S2 (2x2 average pooling), C3 (16 5x5 maps,
    fully connected to S2 rather than the paper's sparse table), S4, C5 (120 5x5
    maps), F6 (84 units) and a 10-way output layer: 61,706 parameters.

    Args:
        include_top: Keep F6 and the classifier head. Without them the output is the
            C5 feature map (or a vector with ``pooling``).
        num_classes: Size of the ``head`` layer.
        input_shape: ``(H, W, C)``; defaults to ``(32, 32, 1)``.
        pooling: ``None``, ``"avg"`` or ``"max"``; used when ``include_top=False``.
        activation: Hidden activation (the paper uses a scaled tanh).
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"lenet5"``.
    """
    check_pooling(pooling)
    inputs = keras.Input(shape=tuple(input_shape or (32, 32, 1)), name="image")
    x = keras.layers.Conv2D(6, 5, activation=activation, name="c1")(inputs)
    x = keras.layers.AveragePooling2D(2, name="s2")(x)
    x = keras.layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = keras.layers.AveragePooling2D(2, name="s4")(x)
    x = keras.layers.Conv2D(120, 5, activation=activation, name="c5")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(84, activation=activation, name="f6")(x)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = global_pool(x, pooling)
    return keras.Model(inputs, outputs, name="lenet5")
