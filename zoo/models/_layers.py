"""Custom Keras layers used by the zoo's builders.

This module imports Keras at import time (the classes subclass
``keras.layers.Layer``), so family modules import it only inside builder
functions; ``zoo list`` and the registry never load it. Every class is registered
under the ``"zoo"`` package so ``.keras`` files round-trip once it is imported (see
:func:`zoo.models._common.register_custom_objects`).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class ChannelZeroPad(keras.layers.Layer):
    """Pad the channel axis of a channels-last tensor with zeros (no parameters).

    Used by the option-A identity shortcuts of the CIFAR ResNets (He et al. 2015,
    section 4.2) to widen the shortcut when a stage doubles its channels.

    Args:
        before: Zero channels added before the existing ones.
        after: Zero channels added after the existing ones.
    """

    def __init__(self, before: int, after: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.before = int(before)
        self.after = int(after)

    def call(self, inputs: Any) -> Any:
        """Return ``inputs`` with zero channels appended on both sides."""
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[self.before, self.after]]
        return ops.pad(inputs, pad)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Return the input shape with ``before + after`` more channels."""
        channels = input_shape[-1]
        if channels is not None:
            channels = channels + self.before + self.after
        return (*input_shape[:-1], channels)

    def get_config(self) -> dict[str, Any]:
        """Return the layer config."""
        return {**super().get_config(), "before": self.before, "after": self.after}


@keras.saving.register_keras_serializable(package="zoo")
class PositionEmbedding(keras.layers.Layer):
    """Learned absolute position embeddings, as in BERT.

    Takes any ``(batch, seq_len, ...)`` tensor and returns the first ``seq_len``
    rows of the table broadcast to ``(batch, seq_len, hidden_size)``. The weight is
    named ``embeddings`` with shape ``(max_length, hidden_size)``, the layout of
    Hugging Face's ``embeddings.position_embeddings.weight``.

    Args:
        max_length: Number of positions in the table (BERT: 512).
        hidden_size: Width of each embedding.
        embeddings_initializer: Initializer of the table.
    """

    def __init__(
        self,
        max_length: int,
        hidden_size: int,
        embeddings_initializer: Any = "uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        self.hidden_size = int(hidden_size)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape: tuple) -> None:
        """Create the ``(max_length, hidden_size)`` table."""
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, self.hidden_size),
            initializer=self.embeddings_initializer,
        )

    def call(self, inputs: Any) -> Any:
        """Return position embeddings for every position of ``inputs``."""
        shape = ops.shape(inputs)
        # The variable's value, not the variable: JAX no longer converts objects implicitly.
        table = ops.slice(ops.convert_to_tensor(self.embeddings), (0, 0), (shape[1], self.hidden_size))
        table = ops.cast(table, self.compute_dtype)
        return ops.broadcast_to(ops.expand_dims(table, 0), (shape[0], shape[1], self.hidden_size))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Return ``(batch, seq_len, hidden_size)``."""
        return (input_shape[0], input_shape[1], self.hidden_size)

    def get_config(self) -> dict[str, Any]:
        """Return the layer config."""
        return {
            **super().get_config(),
            "max_length": self.max_length,
            "hidden_size": self.hidden_size,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }


@keras.saving.register_keras_serializable(package="zoo")
class TakeToken(keras.layers.Layer):
    """Select one position of a ``(batch, seq_len, hidden)`` sequence (BERT's ``[CLS]``).

    Args:
        index: Position to take.
    """

    def __init__(self, index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs: Any) -> Any:
        """Return ``inputs[:, index, :]``."""
        return inputs[:, self.index, :]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Return ``(batch, hidden)``."""
        return (input_shape[0], input_shape[2])

    def get_config(self) -> dict[str, Any]:
        """Return the layer config."""
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="zoo")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of a ``(batch, seq_len, hidden)`` sequence over the positions its mask keeps.

    Called on ``[sequence, attention_mask]``; the sentence embedding of
    sentence-transformers (before its L2 normalisation). An all-zero mask gives zeros.
    """

    def call(self, inputs: list[Any]) -> Any:
        """Return ``(batch, hidden)`` masked means."""
        sequence, mask = inputs
        weights = ops.expand_dims(ops.cast(mask, sequence.dtype), -1)
        total = ops.sum(sequence * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), ops.cast(1e-9, sequence.dtype))

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        """Return ``(batch, hidden)``."""
        return (input_shape[0][0], input_shape[0][2])


@keras.saving.register_keras_serializable(package="zoo")
class ScaledDotProductAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention over projected queries, keys and values.

    The parameter-free core of BERT self-attention: it splits already projected
    ``(batch, seq, hidden)`` queries, keys and values into ``num_heads`` heads,
    applies ``softmax(q k^T / sqrt(head_dim) + mask_bias)`` with attention dropout,
    and merges the heads back into ``(batch, seq, hidden)``. The projections live in
    ordinary ``Dense`` layers so their weights map 1:1 onto BERT checkpoints.

    Called on ``[query, key, value, attention_mask]``; ``attention_mask`` is
    ``(batch, key_seq)`` with 1 for real tokens and 0 for padding, turned into the
    additive bias ``(1 - mask) * -10000`` exactly as in Google's BERT code.

    Args:
        num_heads: Number of attention heads; must divide the hidden size.
        dropout: Dropout rate on the attention probabilities.
    """

    def __init__(self, num_heads: int, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")

    def build(self, input_shape: Any) -> None:
        """Check that the hidden size splits evenly into heads."""
        hidden = input_shape[0][-1]
        if hidden is not None and hidden % self.num_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {self.num_heads} heads")

    def _split(self, x: Any, head_dim: int) -> Any:
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], self.num_heads, head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        """Return the attention output of shape ``(batch, query_seq, hidden)``."""
        query, key, value, mask = inputs
        hidden = query.shape[-1]
        head_dim = hidden // self.num_heads
        q = self._split(query, head_dim)
        k = self._split(key, head_dim)
        v = self._split(value, head_dim)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        scores = scores / ops.cast(ops.sqrt(float(head_dim)), scores.dtype)
        bias = (1.0 - ops.cast(mask, scores.dtype)) * -10000.0
        scores = scores + bias[:, None, None, :]
        probs = ops.softmax(scores, axis=-1)
        probs = self.dropout_layer(probs, training=training)
        context = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))
        shape = ops.shape(context)
        return ops.reshape(context, (shape[0], shape[1], hidden))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        """Return the query shape."""
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        """Return the layer config."""
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="zoo")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Maximum over time of ``(batch, T, C)`` inputs, skipping masked (padding) steps.

    ``keras.layers.GlobalMaxPooling1D`` ignores masks, so zero outputs at padded
    steps would win over negative values and the result would depend on how much
    padding a batch has. A sequence with every step masked pools to zeros.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        """Return ``(batch, C)`` maxima over the unmasked steps."""
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        pooled = ops.max(ops.where(keep, inputs, ops.full_like(inputs, float("-inf"))), axis=1)
        return ops.where(ops.any(keep, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The pooled vector carries no time mask."""
        return None

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """``(batch, C)``."""
        return (input_shape[0], input_shape[2])
