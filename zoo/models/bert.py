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

Every registered size is one row of :data:`_VARIANTS`; :func:`_make_builder`
turns a row into a registered, documented, keyword-only builder function that is
also a module attribute (``zoo.models.bert.bert_mini``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any, NamedTuple

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
        include_top: Add a sequence-classification head on ``pooled_output``.
        num_classes: Size of the ``head`` layer when ``include_top``.
        classifier_activation: Activation of ``head``; ``None`` gives logits.
        name: Name of the returned model.

    Returns:
        An uncompiled ``keras.Model`` whose inputs are a dict of int32
        ``input_ids``, ``token_type_ids`` and ``attention_mask`` (each
        ``(batch, seq_len)``, any ``seq_len`` up to ``max_position_embeddings``;
        mask 1 for tokens, 0 for padding). Without a top its outputs are a dict of
        ``sequence_output`` ``(batch, seq_len, H)`` and ``pooled_output``
        ``(batch, H)``; with a top the output is ``(batch, num_classes)`` logits.
    """
    from zoo.models._layers import PositionEmbedding, ScaledDotProductAttention, TakeToken

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
    init = keras.initializers.TruncatedNormal(stddev=0.02)

    def dense(units: int, layer_name: str, activation: str | None = None) -> Any:
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init, name=layer_name)

    def layer_norm(layer_name: str) -> Any:
        return keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=layer_name)

    inputs = {
        key: keras.Input(shape=(None,), dtype="int32", name=key)
        for key in ("input_ids", "token_type_ids", "attention_mask")
    }
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
    x = layer_norm("embeddings_LayerNorm")(x)
    x = keras.layers.Dropout(hidden_dropout, name="embeddings_dropout")(x)

    for index in range(num_layers):
        prefix = f"encoder_layer_{index}"
        query = dense(hidden_size, f"{prefix}_attention_self_query")(x)
        key = dense(hidden_size, f"{prefix}_attention_self_key")(x)
        value = dense(hidden_size, f"{prefix}_attention_self_value")(x)
        context = ScaledDotProductAttention(
            num_heads, dropout=attention_dropout, name=f"{prefix}_attention_self"
        )([query, key, value, inputs["attention_mask"]])
        attn = dense(hidden_size, f"{prefix}_attention_output_dense")(context)
        attn = keras.layers.Dropout(hidden_dropout, name=f"{prefix}_attention_output_dropout")(attn)
        attn = keras.layers.Add(name=f"{prefix}_attention_output_add")([attn, x])
        x = layer_norm(f"{prefix}_attention_output_LayerNorm")(attn)
        ffn = dense(intermediate_size, f"{prefix}_intermediate_dense", activation="gelu")(x)
        ffn = dense(hidden_size, f"{prefix}_output_dense")(ffn)
        ffn = keras.layers.Dropout(hidden_dropout, name=f"{prefix}_output_dropout")(ffn)
        ffn = keras.layers.Add(name=f"{prefix}_output_add")([ffn, x])
        x = layer_norm(f"{prefix}_output_LayerNorm")(ffn)

    sequence_output = keras.layers.Identity(name="sequence_output")(x)
    cls = TakeToken(0, name="pooler_first_token")(sequence_output)
    pooled_output = dense(hidden_size, "pooler_dense", activation="tanh")(cls)
    if include_top:
        y = keras.layers.Dropout(hidden_dropout, name="classifier_dropout")(pooled_output)
        outputs: Any = classifier_head(y, num_classes, activation=classifier_activation)
    else:
        outputs = {"sequence_output": sequence_output, "pooled_output": pooled_output}
    return keras.Model(inputs, outputs, name=name)


_MINILM_PAPER = (
    "Wang et al. 2020, MiniLM: Deep Self-Attention Distillation for Task-Agnostic "
    "Compression of Pre-Trained Transformers"
)
_MINILM_PAPER_URL = "https://arxiv.org/abs/2002.10957"


class _Variant(NamedTuple):
    """One registered size: L, H, A, feed-forward width, parameter count and origin."""

    name: str
    display_name: str
    num_layers: int  # L
    hidden_size: int  # H
    num_heads: int  # A
    intermediate_size: int
    params: str  # parameters including the pooler, as documented
    minilm: bool = False  # sentence-transformers' all-MiniLM-L6-v2, not a Turc et al. size
    family_default: bool = False
    aliases: tuple[str, ...] = ()


_VARIANTS = (
    _Variant("bert_tiny", "BERT-Tiny", 2, 128, 2, 512, "4,385,920"),
    _Variant("bert_mini", "BERT-Mini", 4, 256, 4, 1024, "11,170,560", family_default=True),
    _Variant("bert_small", "BERT-Small", 4, 512, 8, 2048, "28,763,648"),
    _Variant("bert_medium", "BERT-Medium", 8, 512, 8, 2048, "41,373,184"),
    _Variant(
        "minilm_l6",
        "MiniLM-L6",
        6,
        384,
        12,
        1536,
        "22,713,216",
        minilm=True,
        aliases=("minilm", "all_minilm_l6_v2"),
    ),
)

_DOC = """Build {display_name}: {num_layers} layers, hidden size {hidden_size}, {num_heads} heads, \
feed-forward {intermediate_size}.

{about}

Args:
    include_top: Add dropout, ``pre_logits`` and ``head`` on ``pooled_output``.
    num_classes: Size of the ``head`` layer when ``include_top``.
    vocab_size: Size of the WordPiece vocabulary.
    hidden_dropout: Dropout rate on embeddings, sublayer outputs and the head.
    attention_dropout: Dropout rate on the attention probabilities.
    classifier_activation: Activation of ``head``; ``None`` gives logits.

Returns:
    An uncompiled ``keras.Model`` named ``"{name}"``; see
    :func:`bert_encoder` for its inputs and outputs.
"""
_COMPACT_ABOUT = (
    "{params} parameters including the pooler (the encoder of Google's "
    "``bert_uncased_L-{num_layers}_H-{hidden_size}_A-{num_heads}``)."
)
_MINILM_ABOUT = (
    "The ``BertModel`` configuration of sentence-transformers' all-MiniLM-L6-v2 "
    "(uncased WordPiece vocabulary of 30522, 512 positions): {params} parameters "
    "including the pooler. Sentence embeddings in that model are the "
    "attention-mask-weighted mean of ``sequence_output``, L2-normalised; the "
    "pooler is unused there but kept so checkpoints load completely."
)


def _docstring(v: _Variant) -> str:
    """Return the Google-style docstring of a variant's builder."""
    about = (_MINILM_ABOUT if v.minilm else _COMPACT_ABOUT).format(**v._asdict())
    if v.family_default:
        about = f"The BERT family default. {about}"
    about = textwrap.fill(about, 76, break_long_words=False, break_on_hyphens=False)
    return _DOC.format(**v._asdict(), about=about)


def _description(v: _Variant) -> str:
    """Return the one-line registry description of a variant."""
    shape = f"L={v.num_layers}, H={v.hidden_size}, A={v.num_heads}"
    if v.minilm:
        return f"BERT encoder in the all-MiniLM-L6-v2 configuration: {shape}."
    millions = int(v.params.replace(",", "")) / 1e6
    return f"Compact BERT encoder {shape} ({millions:.1f}M parameters)."


def _make_builder(v: _Variant) -> Callable[..., keras.Model]:
    """Create, document and register the builder function of one size."""

    def builder(
        *,
        include_top: bool = False,
        num_classes: int = 2,
        vocab_size: int = 30522,
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        classifier_activation: str | None = None,
    ) -> keras.Model:
        return bert_encoder(
            num_layers=v.num_layers,
            hidden_size=v.hidden_size,
            num_heads=v.num_heads,
            intermediate_size=v.intermediate_size,
            vocab_size=vocab_size,
            hidden_dropout=hidden_dropout,
            attention_dropout=attention_dropout,
            include_top=include_top,
            num_classes=num_classes,
            classifier_activation=classifier_activation,
            name=v.name,
        )

    builder.__name__ = builder.__qualname__ = v.name
    builder.__doc__ = _docstring(v)
    return register_model(
        family="bert",
        display_name=v.display_name,
        paper=_MINILM_PAPER if v.minilm else _COMPACT_PAPER,
        paper_url=_MINILM_PAPER_URL if v.minilm else _COMPACT_PAPER_URL,
        task="text-embedding",
        family_default=v.family_default,
        aliases=v.aliases,
        description=_description(v),
    )(builder)


for _v in _VARIANTS:
    globals()[_v.name] = _make_builder(_v)
del _v

__all__ = ["bert_encoder", *(v.name for v in _VARIANTS)]
