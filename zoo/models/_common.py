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
