"""Long short-term memory networks (Hochreiter and Schmidhuber 1997).

Two variants: ``lstm_charlm``, a character-level language model (the family
default, which carries the packaged Tiny Shakespeare weights), and
``lstm_classifier``, an embedding plus (bidirectional) LSTM text classifier.
Both take integer token ids; the tokenizers live outside the builders.
"""

from __future__ import annotations

from zoo._lazy import keras
from zoo.models._common import classifier_head
from zoo.registry import register_model

_PAPER = "Hochreiter and Schmidhuber 1997, Long Short-Term Memory"
_PAPER_URL = "https://doi.org/10.1162/neco.1997.9.8.1735"


@register_model(
    family="lstm",
    display_name="LSTM character language model",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="language-modeling",
    family_default=True,
    aliases=("char_lstm",),
    description="Stacked LSTM character-level language model (Tiny Shakespeare by default).",
)
def lstm_charlm(
    *,
    vocab_size: int = 65,
    embed_dim: int = 64,
    units: int = 256,
    num_layers: int = 2,
    dropout: float = 0.2,
    sequence_length: int | None = None,
) -> keras.Model:
    """Build a character-level LSTM language model (the LSTM family default).

    ``embedding`` (``vocab_size`` x ``embed_dim``) -> ``num_layers`` stacked
    ``LSTM`` layers (``lstm_0``, ``lstm_1``, ...) returning the whole sequence,
    each followed by dropout -> ``lm_head``, a ``Dense(vocab_size)`` giving the
    next-character logits at every position. With the defaults (65 characters,
    the Tiny Shakespeare alphabet) it has 874,881 parameters, small enough to
    train on a CPU.

    Args:
        vocab_size: Number of distinct characters (token ids ``0 .. vocab_size-1``).
        embed_dim: Width of the character embedding.
        units: Width of every LSTM layer.
        num_layers: Number of stacked LSTM layers.
        dropout: Dropout rate after every LSTM layer.
        sequence_length: Fixed sequence length, or ``None`` for any length.

    Returns:
        An uncompiled ``keras.Model`` named ``"lstm_charlm"`` mapping ``(batch, T)``
        int ids to ``(batch, T, vocab_size)`` logits.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers!r}")
    inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embed_dim, name="embedding")(inputs)
    for index in range(num_layers):
        x = keras.layers.LSTM(units, return_sequences=True, name=f"lstm_{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    outputs = keras.layers.Dense(vocab_size, name="lm_head")(x)
    return keras.Model(inputs, outputs, name="lstm_charlm")


@register_model(
    family="lstm",
    display_name="LSTM text classifier",
    paper=_PAPER,
    paper_url=_PAPER_URL,
    task="text-classification",
    description="Embedding and bidirectional LSTM sentence classifier (e.g. IMDB sentiment).",
)
def lstm_classifier(
    *,
    include_top: bool = True,
    num_classes: int = 2,
    vocab_size: int = 20000,
    embed_dim: int = 128,
    units: int = 64,
    bidirectional: bool = True,
    max_length: int | None = None,
    dropout: float = 0.5,
    pooling: str = "last",
    embedding_dropout: float = 0.0,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build an LSTM text classifier.

    ``embedding`` (``mask_zero=True``: id 0 is padding and is skipped by the
    LSTM) -> ``embedding_dropout`` (``SpatialDropout1D``, whole embedding
    channels, when ``embedding_dropout > 0``) -> ``lstm`` (wrapped in
    ``Bidirectional`` when ``bidirectional``; ``2 * units`` wide when
    bidirectional) -> its final state (``pooling="last"``) or the maximum over
    the unpadded time steps of its outputs (``pooling="max"``, layer ``max_pool``)
    -> ``dropout`` -> ``pre_logits`` -> ``head``. With the defaults it has
    2,659,074 parameters.

    Args:
        include_top: Keep dropout and the classifier head. Without them the output
            is the LSTM's final state vector.
        num_classes: Size of the ``head`` layer.
        vocab_size: Number of token ids (id 0 is reserved for padding).
        embed_dim: Width of the token embedding.
        units: Width of the LSTM (per direction).
        bidirectional: Read the sequence in both directions.
        max_length: Fixed sequence length, or ``None`` for any length.
        dropout: Dropout rate before the head.
        pooling: ``"last"`` (the LSTM's final state) or ``"max"`` (max over time).
        embedding_dropout: Rate of ``SpatialDropout1D`` on the embeddings.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"lstm_classifier"`` mapping
        ``(batch, T)`` int ids to ``(batch, num_classes)`` logits.
    """
    if pooling not in ("last", "max"):
        raise ValueError(f"pooling must be 'last' or 'max', got {pooling!r}")
    inputs = keras.Input(shape=(max_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    if embedding_dropout:
        x = keras.layers.SpatialDropout1D(embedding_dropout, name="embedding_dropout")(x)
    lstm = keras.layers.LSTM(units, return_sequences=pooling == "max", name="lstm")
    if bidirectional:
        lstm = keras.layers.Bidirectional(lstm, name="bidirectional")
    x = lstm(x)
    if pooling == "max":
        from zoo.models._layers import MaskedGlobalMaxPooling1D

        x = MaskedGlobalMaxPooling1D(name="max_pool")(x)
    if include_top:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        outputs = classifier_head(x, num_classes, activation=classifier_activation)
    else:
        outputs = x
    return keras.Model(inputs, outputs, name="lstm_classifier")
