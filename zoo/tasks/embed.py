"""Text embedding: sentence vectors from a BERT encoder.

:class:`SentenceEncoder` turns a BERT encoder into sentence embeddings the way
sentence-transformers does for all-MiniLM-L6-v2: the attention-mask-weighted
mean of the last hidden states, L2-normalised::

    import zoo.tasks.embed

    emb = zoo.tasks.embed.encode(["A man is eating food.", "A man is eating a piece of bread."])
    float(emb[0] @ emb[1])       # cosine similarity, about 0.755

Importing this module imports neither TensorFlow nor ``tokenizers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import InputError
from zoo.preprocessing.wordpiece import (
    MAX_POSITIONS,
    SENTENCE_MAX_LENGTH,
    WordPieceTokenizer,
    _as_text,
    bert_inputs,
)

__all__ = [
    "SentenceEncoder",
    "encode",
    "sentence_embedding_model",
    "mean_pool",
    "l2_normalize",
    "tokenizer_for",
]


def mean_pool(sequence_output: Any, attention_mask: Any) -> Any:
    """Average the hidden states of real tokens: ``sum(h * mask) / max(sum(mask), 1e-9)``.

    Args:
        sequence_output: ``(batch, length, hidden)`` hidden states.
        attention_mask: ``(batch, length)``, 1 for tokens and 0 for padding.

    Returns:
        ``(batch, hidden)`` float32 numpy array.
    """
    import numpy as np

    h = np.asarray(sequence_output, np.float32)
    m = np.asarray(attention_mask, np.float32)[..., None]
    return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def l2_normalize(x: Any, eps: float = 1e-12) -> Any:
    """Divide each row by its L2 norm (at least ``eps``), as ``torch.nn.functional.normalize``."""
    import numpy as np

    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def sentence_embedding_model(model: Any, *, normalize: bool = True) -> Any:
    """A BERT encoder's sentence embeddings as one Keras model, the zoo's one definition of them.

    Its output layer ``sentence_embedding`` is the masked mean of ``sequence_output`` (as
    sentence-transformers pools all-MiniLM-L6-v2), L2-normalised unless ``normalize`` is off;
    :class:`SentenceEncoder` and ``zoo extract`` both run it.

    Args:
        model: A zoo BERT encoder without a top (``zoo.load(name, include_top=False)``).
        normalize: L2-normalise the embeddings (so dot products are cosines).

    Raises:
        InputError: For a model without a ``sequence_output`` (a classifier, an image model).
    """
    import keras

    from zoo.models._layers import MaskedMeanPooling

    outputs = getattr(model, "output", None)
    if not isinstance(outputs, dict) or "sequence_output" not in outputs:
        raise InputError(
            "sentence embeddings need a BERT encoder without a top (zoo.load(name, include_top=False))"
        )
    pooled = MaskedMeanPooling(name="mean_pooling" if normalize else "sentence_embedding")(
        [outputs["sequence_output"], model.input["attention_mask"]]
    )
    if normalize:
        pooled = keras.layers.UnitNormalization(name="sentence_embedding")(pooled)
    return keras.Model(model.input, pooled, name=f"{model.name}_sentence_embedding")


def tokenizer_for(name: str, paths: dict[str, Path] | None = None) -> WordPieceTokenizer:
    """Return the tokeniser a weights entry's preprocessing spec describes.

    Args:
        name: Weights or architecture name (``"minilm"``, ``"bert_mini.google"``).
        paths: The entry's verified files (from :func:`zoo.pull`); pulled when ``None``.

    Raises:
        InputError: When the entry has no WordPiece preprocessing.
    """
    from zoo import api

    entry = api.weights_entry(name)
    spec = entry.preprocessing
    if spec.get("type") != "text" or spec.get("tokenizer") != "wordpiece":
        encoders = sorted(
            {
                api.weights_entry(n).architecture
                for n in api.list_models(pretrained=True)
                if api.weights_entry(n).preprocessing.get("tokenizer") == "wordpiece"
            }
        )
        raise InputError(
            f"{entry.name} has no WordPiece tokenizer; zoo.text works with the BERT-family text "
            f"encoders: {', '.join(encoders)}"
        )
    vocab = spec["vocab"]
    if isinstance(vocab, str):
        paths = paths if paths is not None else api.pull(entry.name)
        if vocab not in paths:
            raise InputError(f"{entry.name}: its vocabulary {vocab!r} is not one of its files")
        vocab = paths[vocab]
    return WordPieceTokenizer(
        vocab, lowercase=spec["lowercase"], max_length=spec["max_length"] or MAX_POSITIONS
    )


class SentenceEncoder:
    """Sentence embeddings from a BERT encoder: masked mean of the last hidden states, L2-normalised.

    Args:
        model: A zoo BERT encoder without a top (outputs ``sequence_output``).
        tokenizer: Its :class:`WordPieceTokenizer`.
        max_length: Truncation length (sentence-transformers uses 256 for all-MiniLM-L6-v2).
        normalize: L2-normalise the embeddings (so dot products are cosines).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: WordPieceTokenizer,
        *,
        max_length: int = SENTENCE_MAX_LENGTH,
        normalize: bool = True,
    ) -> None:
        self.embedding = sentence_embedding_model(model, normalize=normalize)
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.normalize = bool(normalize)
        self._forward: Any = None

    @classmethod
    def from_pretrained(cls, name: str = "minilm_l6.sentence", **kwargs: Any) -> SentenceEncoder:
        """Load verified weights and their vocabulary by zoo name.

        Args:
            name: Weights or architecture name (default: the real all-MiniLM-L6-v2).
            **kwargs: ``max_length`` and ``normalize`` of :class:`SentenceEncoder`.
        """
        from zoo import api

        entry = api.weights_entry(name)
        paths = api.pull(entry.name)
        model = api.load(entry.name, include_top=False)
        kwargs.setdefault("max_length", entry.preprocessing.get("max_length") or SENTENCE_MAX_LENGTH)
        return cls(model, tokenizer_for(entry.name, paths), **kwargs)

    def _run(self, batch: dict[str, Any]) -> Any:
        from zoo.backend import to_numpy
        from zoo.tasks.inference import predict_fn

        if self._forward is None:
            self._forward = predict_fn(self.embedding)
        return to_numpy(self._forward(batch))

    def encode(self, sentences: Sequence[str], *, batch_size: int = 64) -> Any:
        """Embed sentences.

        Args:
            sentences: Texts (a single string is treated as a list of one).
            batch_size: Sentences per forward pass (sorted by length to pad little).

        Returns:
            ``(len(sentences), hidden)`` float32 array, in the input order.
        """
        import numpy as np

        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = [_as_text(s) for s in sentences]
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        rows = self.tokenizer.ids(sentences, max_length=self.max_length)
        order = np.argsort([-len(r[0]) for r in rows], kind="stable")
        out: Any = None
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            width = max(len(rows[i][0]) for i in index)
            ids = np.zeros((len(index), width), np.int32)
            for j, i in enumerate(index):
                ids[j, : len(rows[i][0])] = rows[i][0]
            embedded = np.asarray(self._run(bert_inputs(ids)), np.float32)
            if out is None:
                out = np.zeros((len(sentences), embedded.shape[-1]), np.float32)
            out[index] = embedded
        if out is None:
            out = np.zeros((0, int(self.model.output["sequence_output"].shape[-1])), np.float32)
        return out

    __call__ = encode


_ENCODERS: dict[str, SentenceEncoder] = {}


def encode(sentences: Sequence[str], model: str = "minilm_l6.sentence", *, batch_size: int = 64) -> Any:
    """Embed sentences with a pretrained sentence encoder (loaded once per process).

    Args:
        sentences: Texts to embed.
        model: Zoo weights name of the encoder (default: all-MiniLM-L6-v2).
        batch_size: Sentences per forward pass.

    Returns:
        ``(n, hidden)`` float32 array of L2-normalised embeddings.
    """
    from zoo import api

    key = api.weights_entry(model).name
    if key not in _ENCODERS:
        _ENCODERS[key] = SentenceEncoder.from_pretrained(key)
    return _ENCODERS[key].encode(sentences, batch_size=batch_size)
