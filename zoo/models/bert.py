"""BERT encoders (Devlin et al. 2018) in the compact sizes of Turc et al. 2019.

One configurable encoder, :func:`bert_encoder`, and registered sizes:
``bert_tiny`` (L2/H128), ``bert_mini`` (L4/H256, the family default),
``bert_small`` (L4/H512), ``bert_medium`` (L8/H512) and ``minilm_l6`` (the
configuration of sentence-transformers' all-MiniLM-L6-v2, L6/H384).

The encoder is the original post-LayerNorm BERT: word + position + token-type
embeddings, LayerNorm (eps 1e-12), dropout; then per layer self-attention with
separate query/key/value projections, output projection, dropout, residual and
LayerNorm, an exact (erf) GELU feed-forward block, dropout, residual and
LayerNorm; and the pooler, a tanh ``Dense`` on the ``[CLS]`` position.

Layer names are Hugging Face ``BertModel`` module paths with ``.`` replaced by
``_``: ``embeddings_word_embeddings``, ``embeddings_LayerNorm``,
``encoder_layer_0_attention_self_query``, ``encoder_layer_0_attention_output_dense``,
``encoder_layer_0_intermediate_dense``, ``encoder_layer_0_output_LayerNorm``,
``pooler_dense`` and so on. Dense kernels are the transposed PyTorch weights;
LayerNorm ``weight``/``bias`` are ``gamma``/``beta``. A sequence-classification
head (``include_top=True``) is ``classifier_dropout``, ``pre_logits`` and
``head`` (Hugging Face's ``classifier``).

Every registered size is an explicit, registered, keyword-only builder function
(``zoo.models.bert.bert_mini``) that calls :func:`bert_encoder` with its size.
"""

from __future__ import annotations

from typing import Any

from zoo._lazy import keras
from zoo.models._common import classifier_head
from zoo.registry import register_model

_PAPER = (
    "Devlin et al. 2018, BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
)
_PAPER_URL = "https://arxiv.org/abs/1810.04805"
_COMPACT_PAPER = (
    "Turc et al. 2019, Well-Read Students Learn Better: On the Importance of Pre-training Compact Models"
)
_COMPACT_PAPER_URL = "https://arxiv.org/abs/1908.08962"

_INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")


def _dense(units: int, name: str, init: Any, activation: str | None = None) -> Any:
    """Return a ``Dense`` layer with BERT's truncated-normal kernel initializer."""
    return keras.layers.Dense(units, activation=activation, kernel_initializer=init, name=name)


def _embeddings(
    inputs: dict[str, Any],
    *,
    vocab_size: int,
    max_position_embeddings: int,
    type_vocab_size: int,
    hidden_size: int,
    hidden_dropout: float,
    layer_norm_epsilon: float,
    init: Any,
) -> Any:
    """Apply BERT's embeddings: word + position + token type, LayerNorm and dropout."""
    from zoo.models._layers import PositionEmbedding

    words = keras.layers.Embedding(
        vocab_size, hidden_size, embeddings_initializer=init, name="embeddings_word_embeddings"
    )(inputs["input_ids"])
    positions = PositionEmbedding(
        max_position_embeddings,
        hidden_size,
        embeddings_initializer=init,
        name="embeddings_position_embeddings",
    )(inputs["input_ids"])
    types = keras.layers.Embedding(
        type_vocab_size,
        hidden_size,
        embeddings_initializer=init,
        name="embeddings_token_type_embeddings",
    )(inputs["token_type_ids"])
    x = keras.layers.Add(name="embeddings_add")([words, positions, types])
    x = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="embeddings_LayerNorm")(x)
    return keras.layers.Dropout(hidden_dropout, name="embeddings_dropout")(x)


def _encoder_layer(
    x: Any,
    attention_mask: Any,
    prefix: str,
    *,
    hidden_size: int,
    num_heads: int,
    intermediate_size: int,
    hidden_dropout: float,
    attention_dropout: float,
    layer_norm_epsilon: float,
    init: Any,
) -> Any:
    """Apply one post-LayerNorm transformer layer (Hugging Face's ``BertLayer``) named ``<prefix>_*``."""
    from zoo.models._layers import ScaledDotProductAttention

    query = _dense(hidden_size, f"{prefix}_attention_self_query", init)(x)
    key = _dense(hidden_size, f"{prefix}_attention_self_key", init)(x)
    value = _dense(hidden_size, f"{prefix}_attention_self_value", init)(x)
    context = ScaledDotProductAttention(
        num_heads, dropout=attention_dropout, name=f"{prefix}_attention_self"
    )([query, key, value, attention_mask])
    attn = _dense(hidden_size, f"{prefix}_attention_output_dense", init)(context)
    attn = keras.layers.Dropout(hidden_dropout, name=f"{prefix}_attention_output_dropout")(attn)
    attn = keras.layers.Add(name=f"{prefix}_attention_output_add")([attn, x])
    x = keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, name=f"{prefix}_attention_output_LayerNorm"
    )(attn)
    ffn = _dense(intermediate_size, f"{prefix}_intermediate_dense", init, activation="gelu")(x)
    ffn = _dense(hidden_size, f"{prefix}_output_dense", init)(ffn)
    ffn = keras.layers.Dropout(hidden_dropout, name=f"{prefix}_output_dropout")(ffn)
    ffn = keras.layers.Add(name=f"{prefix}_output_add")([ffn, x])
    return keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=f"{prefix}_output_LayerNorm")(ffn)


def _pooler(x: Any, hidden_size: int, init: Any) -> tuple[Any, Any]:
    """Return ``sequence_output`` and BERT's pooler output (a tanh ``Dense`` on the ``[CLS]`` position)."""
    from zoo.models._layers import TakeToken

    sequence_output = keras.layers.Identity(name="sequence_output")(x)
    cls = TakeToken(0, name="pooler_first_token")(sequence_output)
    return sequence_output, _dense(hidden_size, "pooler_dense", init, activation="tanh")(cls)


def _top(
    sequence_output: Any,
    pooled_output: Any,
    mask: Any,
    pooling: str,
    dropout: float,
    num_classes: int,
    activation: str | None,
) -> Any:
    """The sequence-classification top: dropout, ``pre_logits`` and ``head`` on the pooled text."""
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
    if pooling == "mean":
        from zoo.models._layers import MaskedMeanPooling

        pooled_output = MaskedMeanPooling(name="mean_pooling")([sequence_output, mask])
    y = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled_output)
    return classifier_head(y, num_classes, activation=activation)


def bert_encoder(
    *,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    intermediate_size: int,
    vocab_size: int = 30522,
    max_position_embeddings: int = 512,
    type_vocab_size: int = 2,
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    layer_norm_epsilon: float = 1e-12,
    include_top: bool = False,
    num_classes: int = 2,
    classifier_activation: str | None = None,
    pooling: str = "cls",
    name: str = "bert",
) -> keras.Model:
    """Build a BERT encoder of any size.

    Args:
        num_layers: Number of transformer layers (L).
        hidden_size: Width of the hidden states (H).
        num_heads: Number of attention heads (A); must divide ``hidden_size``.
        intermediate_size: Width of the feed-forward block (usually 4H).
        vocab_size: Size of the WordPiece vocabulary.
        max_position_embeddings: Longest sequence the position table covers.
        type_vocab_size: Number of segment (token type) ids.
        hidden_dropout: Dropout rate on embeddings and sublayer outputs, and of
            ``classifier_dropout``.
        attention_dropout: Dropout rate on the attention probabilities.
        layer_norm_epsilon: Epsilon of every LayerNorm.
        include_top: Add a sequence-classification head (on ``pooled_output`` or the mean).
        num_classes: Size of the ``head`` layer when ``include_top``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.
        pooling: ``"cls"`` (the pooler) or ``"mean"`` (sentence-transformers' masked mean).
        name: Name of the returned model.

    Returns:
        An uncompiled ``keras.Model`` whose inputs are a dict of int32
        ``input_ids``, ``token_type_ids`` and ``attention_mask`` (each
        ``(batch, seq_len)``, any ``seq_len`` up to ``max_position_embeddings``;
        mask 1 for tokens, 0 for padding). Without a top its outputs are a dict of
        ``sequence_output`` ``(batch, seq_len, H)`` and ``pooled_output``
        ``(batch, H)``; with a top the output is ``(batch, num_classes)`` logits.
    """
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    inputs = {key: keras.Input(shape=(None,), dtype="int32", name=key) for key in _INPUT_NAMES}
    x = _embeddings(
        inputs,
        vocab_size=vocab_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=type_vocab_size,
        hidden_size=hidden_size,
        hidden_dropout=hidden_dropout,
        layer_norm_epsilon=layer_norm_epsilon,
        init=init,
    )
    for index in range(num_layers):
        x = _encoder_layer(
            x,
            inputs["attention_mask"],
            f"encoder_layer_{index}",
            hidden_size=hidden_size,
            num_heads=num_heads,
            intermediate_size=intermediate_size,
            hidden_dropout=hidden_dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            init=init,
        )

    sequence_output, pooled_output = _pooler(x, hidden_size, init)
    outputs: Any = {"sequence_output": sequence_output, "pooled_output": pooled_output}
    if include_top:
        top = (pooling, hidden_dropout, num_classes, classifier_activation)
        outputs = _top(sequence_output, pooled_output, inputs["attention_mask"], *top)
    return keras.Model(inputs, outputs, name=name)


_MINILM_PAPER = (
    "Wang et al. 2020, MiniLM: Deep Self-Attention Distillation for Task-Agnostic "
    "Compression of Pre-Trained Transformers"
)
_MINILM_PAPER_URL = "https://arxiv.org/abs/2002.10957"


@register_model(
    family="bert",
    display_name="BERT-Tiny",
    paper=_COMPACT_PAPER,
    paper_url=_COMPACT_PAPER_URL,
    task="text-embedding",
    description="Compact BERT encoder L=2, H=128, A=2 (4.4M parameters).",
)
def bert_tiny(
    *,
    include_top: bool = False,
    num_classes: int = 2,
    vocab_size: int = 30522,
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    classifier_activation: str | None = None,
    pooling: str = "cls",
) -> keras.Model:
    """Build BERT-Tiny: 2 layers, hidden size 128, 2 heads, feed-forward 512.

    4,385,920 parameters including the pooler (the encoder of Google's
    ``bert_uncased_L-2_H-128_A-2``).

    Args:
        include_top: Add dropout, ``pre_logits`` and ``head`` on ``pooled_output``.
        num_classes: Size of the ``head`` layer when ``include_top``.
        vocab_size: Size of the WordPiece vocabulary.
        hidden_dropout: Dropout rate on embeddings, sublayer outputs and the head.
        attention_dropout: Dropout rate on the attention probabilities.
        classifier_activation: Activation of ``head``; ``None`` gives logits.
        pooling: ``"cls"`` (the pooler) or ``"mean"`` (masked mean of the sequence).

    Returns:
        An uncompiled ``keras.Model`` named ``"bert_tiny"``; see
        :func:`bert_encoder` for its inputs and outputs.
    """
    return bert_encoder(
        num_layers=2,
        hidden_size=128,
        num_heads=2,
        intermediate_size=512,
        include_top=include_top,
        num_classes=num_classes,
        vocab_size=vocab_size,
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,
        classifier_activation=classifier_activation,
        pooling=pooling,
        name="bert_tiny",
    )


@register_model(
    family="bert",
    display_name="BERT-Mini",
    paper=_COMPACT_PAPER,
    paper_url=_COMPACT_PAPER_URL,
    task="text-embedding",
    family_default=True,
    description="Compact BERT encoder L=4, H=256, A=4 (11.2M parameters).",
)
def bert_mini(
    *,
    include_top: bool = False,
    num_classes: int = 2,
    vocab_size: int = 30522,
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    classifier_activation: str | None = None,
    pooling: str = "cls",
) -> keras.Model:
    """Build BERT-Mini: 4 layers, hidden size 256, 4 heads, feed-forward 1024.

    The BERT family default. 11,170,560 parameters including the pooler (the
    encoder of Google's ``bert_uncased_L-4_H-256_A-4``).

    Args:
        include_top: Add dropout, ``pre_logits`` and ``head`` on ``pooled_output``.
        num_classes: Size of the ``head`` layer when ``include_top``.
        vocab_size: Size of the WordPiece vocabulary.
        hidden_dropout: Dropout rate on embeddings, sublayer outputs and the head.
        attention_dropout: Dropout rate on the attention probabilities.
        classifier_activation: Activation of ``head``; ``None`` gives logits.
        pooling: ``"cls"`` (the pooler) or ``"mean"`` (masked mean of the sequence).

    Returns:
        An uncompiled ``keras.Model`` named ``"bert_mini"``; see
        :func:`bert_encoder` for its inputs and outputs.
    """
    return bert_encoder(
        num_layers=4,
        hidden_size=256,
        num_heads=4,
        intermediate_size=1024,
        include_top=include_top,
        num_classes=num_classes,
        vocab_size=vocab_size,
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,
        classifier_activation=classifier_activation,
        pooling=pooling,
        name="bert_mini",
    )


@register_model(
    family="bert",
    display_name="BERT-Small",
    paper=_COMPACT_PAPER,
    paper_url=_COMPACT_PAPER_URL,
    task="text-embedding",
    description="Compact BERT encoder L=4, H=512, A=8 (28.8M parameters).",
)
def bert_small(
    *,
    include_top: bool = False,
    num_classes: int = 2,
    vocab_size: int = 30522,
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build BERT-Small: 4 layers, hidden size 512, 8 heads, feed-forward 2048.

    28,763,648 parameters including the pooler (the encoder of Google's
    ``bert_uncased_L-4_H-512_A-8``).

    Args:
        include_top: Add dropout, ``pre_logits`` and ``head`` on ``pooled_output``.
        num_classes: Size of the ``head`` layer when ``include_top``.
        vocab_size: Size of the WordPiece vocabulary.
        hidden_dropout: Dropout rate on embeddings, sublayer outputs and the head.
        attention_dropout: Dropout rate on the attention probabilities.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"bert_small"``; see
        :func:`bert_encoder` for its inputs and outputs.
    """
    return bert_encoder(
        num_layers=4,
        hidden_size=512,
        num_heads=8,
        intermediate_size=2048,
        include_top=include_top,
        num_classes=num_classes,
        vocab_size=vocab_size,
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,
        classifier_activation=classifier_activation,
        name="bert_small",
    )


@register_model(
    family="bert",
    display_name="BERT-Medium",
    paper=_COMPACT_PAPER,
    paper_url=_COMPACT_PAPER_URL,
    task="text-embedding",
    description="Compact BERT encoder L=8, H=512, A=8 (41.4M parameters).",
)
def bert_medium(
    *,
    include_top: bool = False,
    num_classes: int = 2,
    vocab_size: int = 30522,
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    classifier_activation: str | None = None,
) -> keras.Model:
    """Build BERT-Medium: 8 layers, hidden size 512, 8 heads, feed-forward 2048.

    41,373,184 parameters including the pooler (the encoder of Google's
    ``bert_uncased_L-8_H-512_A-8``).

    Args:
        include_top: Add dropout, ``pre_logits`` and ``head`` on ``pooled_output``.
        num_classes: Size of the ``head`` layer when ``include_top``.
        vocab_size: Size of the WordPiece vocabulary.
        hidden_dropout: Dropout rate on embeddings, sublayer outputs and the head.
        attention_dropout: Dropout rate on the attention probabilities.
        classifier_activation: Activation of ``head``; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``"bert_medium"``; see
        :func:`bert_encoder` for its inputs and outputs.
    """
    return bert_encoder(
        num_layers=8,
        hidden_size=512,
        num_heads=8,
        intermediate_size=2048,
        include_top=include_top,
        num_classes=num_classes,
        vocab_size=vocab_size,
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,
        classifier_activation=classifier_activation,
        name="bert_medium",
    )


@register_model(
    family="bert",
    display_name="MiniLM-L6",
    paper=_MINILM_PAPER,
    paper_url=_MINILM_PAPER_URL,
    task="text-embedding",
    aliases=("minilm", "all_minilm_l6_v2"),
    description="BERT encoder in the all-MiniLM-L6-v2 configuration: L=6, H=384, A=12.",
)
def minilm_l6(
    *,
    include_top: bool = False,
    num_classes: int = 2,
    vocab_size: int = 30522,
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    classifier_activation: str | None = None,
    pooling: str = "cls",
) -> keras.Model:
    """Build MiniLM-L6: 6 layers, hidden size 384, 12 heads, feed-forward 1536.

    The ``BertModel`` configuration of sentence-transformers' all-MiniLM-L6-v2
    (uncased WordPiece vocabulary of 30522, 512 positions): 22,713,216
    parameters including the pooler. Sentence embeddings in that model are the
    attention-mask-weighted mean of ``sequence_output``, L2-normalised; the
    pooler is unused there but kept so checkpoints load completely.

    Args:
        include_top: Add dropout, ``pre_logits`` and ``head`` on ``pooled_output``.
        num_classes: Size of the ``head`` layer when ``include_top``.
        vocab_size: Size of the WordPiece vocabulary.
        hidden_dropout: Dropout rate on embeddings, sublayer outputs and the head.
        attention_dropout: Dropout rate on the attention probabilities.
        classifier_activation: Activation of ``head``; ``None`` gives logits.
        pooling: ``"cls"`` (the pooler) or ``"mean"`` (the sentence embedding) under the
            classification top; see :func:`bert_encoder`.

    Returns:
        An uncompiled ``keras.Model`` named ``"minilm_l6"``; see
        :func:`bert_encoder` for its inputs and outputs.
    """
    return bert_encoder(
        num_layers=6,
        hidden_size=384,
        num_heads=12,
        intermediate_size=1536,
        include_top=include_top,
        num_classes=num_classes,
        vocab_size=vocab_size,
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,
        classifier_activation=classifier_activation,
        pooling=pooling,
        name="minilm_l6",
    )


__all__ = [
    "bert_encoder",
    "bert_tiny",
    "bert_mini",
    "bert_small",
    "bert_medium",
    "minilm_l6",
]
