"""Text models: the BERT WordPiece tokeniser, sentence embeddings and classifier inputs.

:class:`WordPieceTokenizer` is the standard BERT tokeniser (as Google's
``tokenization.FullTokenizer`` and Hugging Face's ``BertTokenizerFast`` do it),
built with the ``tokenizers`` library from a ``vocab.txt``: Unicode clean-up,
lower case and accent stripping for uncased vocabularies, splitting on
whitespace and punctuation (CJK characters on their own), greedy
longest-match-first WordPiece with ``[UNK]`` for words it cannot split, then
``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``. Batches come back as numpy int32
``input_ids``, ``token_type_ids`` and ``attention_mask``, the inputs of the zoo's
BERT builders.

:class:`SentenceEncoder` turns a BERT encoder into sentence embeddings the way
sentence-transformers does for all-MiniLM-L6-v2: the attention-mask-weighted
mean of the last hidden states, L2-normalised::

    import zoo.text

    emb = zoo.text.encode(["A man is eating food.", "A man is eating a piece of bread."])
    float(emb[0] @ emb[1])       # cosine similarity, about 0.755

Importing this module imports neither TensorFlow nor ``tokenizers``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import InputError

#: BERT's special tokens, all present in the standard vocabularies.
PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
#: Longest input of the BERT encoders (their position table).
MAX_POSITIONS = 512
#: Longest input of sentence-transformers' all-MiniLM-L6-v2 (its ``max_seq_length``).
SENTENCE_MAX_LENGTH = 256

__all__ = [
    "WordPieceTokenizer",
    "SentenceEncoder",
    "bert_inputs",
    "encode",
    "mean_pool",
    "l2_normalize",
    "tokenizer_for",
]


def _read_vocab(vocab: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    if isinstance(vocab, (str, os.PathLike)):
        path = Path(vocab)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read the WordPiece vocabulary {path}: {exc.strerror}") from exc
        # one token a line; a vocab.txt ends with a newline, and tokens never hold whitespace
        tokens = [line.rstrip("\r") for line in text.split("\n")]
        if tokens and tokens[-1] == "":
            tokens.pop()
    else:
        tokens = [str(t) for t in vocab]
    if not tokens:
        raise InputError("the WordPiece vocabulary is empty")
    missing = [t for t in (PAD, UNK, CLS, SEP) if t not in tokens]
    if missing:
        raise InputError(f"the WordPiece vocabulary lacks the special tokens {missing}")
    if len(set(tokens)) != len(tokens):
        raise InputError("the WordPiece vocabulary has duplicate tokens")
    return tokens


class WordPieceTokenizer:
    """BERT's WordPiece tokeniser over a ``vocab.txt`` (one token a line, id = line number).

    Args:
        vocab: Path of a ``vocab.txt``, or the token list itself.
        lowercase: Lower-case the text (uncased vocabularies such as
            bert-base-uncased's).
        strip_accents: Remove accents (after NFD decomposition); ``None``
            follows ``lowercase``, as in BERT.
        max_length: Default truncation length, special tokens included.

    Example:
        >>> tok = WordPieceTokenizer("vocab.txt")
        >>> batch = tok(["Hello world!", "A longer sentence here."], max_length=16)
        >>> batch["input_ids"].shape        # (2, longest in the batch)
    """

    def __init__(
        self,
        vocab: str | os.PathLike[str] | Sequence[str],
        *,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        max_length: int = MAX_POSITIONS,
    ) -> None:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

        tokens = _read_vocab(vocab)
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.lowercase = bool(lowercase)
        self.strip_accents = self.lowercase if strip_accents is None else bool(strip_accents)
        self.max_length = int(max_length)
        self.pad_id, self.unk_id = self.vocab[PAD], self.vocab[UNK]
        self.cls_id, self.sep_id = self.vocab[CLS], self.vocab[SEP]
        tok = Tokenizer(models.WordPiece(self.vocab, unk_token=UNK, max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=self.strip_accents,
            lowercase=self.lowercase,
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.BertProcessing((SEP, self.sep_id), (CLS, self.cls_id))
        tok.decoder = decoders.WordPiece()
        tok.add_special_tokens([t for t in (PAD, UNK, CLS, SEP, MASK) if t in self.vocab])
        self._tok = tok
        self._truncation: int | None = None

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the vocabulary."""
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        """Return the WordPiece tokens of one text, without ``[CLS]``/``[SEP]``."""
        self._set_truncation(None)
        return self._tok.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Sequence[int]) -> str:
        """Turn ids back into text (special tokens dropped, ``##`` pieces joined)."""
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def _set_truncation(self, max_length: int | None) -> None:
        if max_length == self._truncation:
            return
        if max_length is None:
            self._tok.no_truncation()
        else:
            self._tok.enable_truncation(max_length, strategy="longest_first")
        self._truncation = max_length

    def _check_length(self, max_length: int | None) -> int:
        length = self.max_length if max_length is None else max_length
        if not isinstance(length, int) or isinstance(length, bool) or length < 3:
            raise InputError(f"max_length must be an integer >= 3, got {length!r}")
        return length

    def ids(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
    ) -> list[tuple[list[int], list[int]]]:
        """Return ``(input_ids, token_type_ids)`` per text, truncated but not padded.

        Args:
            texts: First segments.
            pairs: Second segments (same length as ``texts``), or ``None``.
            max_length: Truncation length with special tokens (default: the
                tokenizer's); pairs are truncated longest-first.
        """
        if isinstance(texts, str):
            raise InputError("texts must be a list of strings, not one string")
        texts = [_as_text(t) for t in texts]
        length = self._check_length(max_length)
        if pairs is not None:
            pairs = [_as_text(t) for t in pairs]
            if len(pairs) != len(texts):
                raise InputError(f"{len(texts)} texts but {len(pairs)} pairs")
        self._set_truncation(length)
        inputs: list[Any] = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
        encodings = self._tok.encode_batch(inputs)
        return [(e.ids, e.type_ids) for e in encodings]

    def __call__(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        padding: str = "longest",
    ) -> dict[str, Any]:
        """Tokenise a batch into padded numpy int32 arrays.

        Args:
            texts: First segments.
            pairs: Second segments for sentence-pair inputs, or ``None``.
            max_length: Truncation length with special tokens (default: the tokenizer's).
            padding: ``"longest"`` pads to the longest sequence of the batch,
                ``"max_length"`` to ``max_length``.

        Returns:
            ``{"input_ids", "token_type_ids", "attention_mask"}``, each
            ``(batch, length)`` int32; padding is on the right with ``[PAD]``
            (id 0 in BERT vocabularies), type 0 and mask 0.
        """
        import numpy as np

        if padding not in ("longest", "max_length"):
            raise InputError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        length = self._check_length(max_length)
        rows = self.ids(texts, pairs, max_length=length)
        width = length if padding == "max_length" else max((len(r[0]) for r in rows), default=0)
        out = {
            "input_ids": np.full((len(rows), width), self.pad_id, np.int32),
            "token_type_ids": np.zeros((len(rows), width), np.int32),
            "attention_mask": np.zeros((len(rows), width), np.int32),
        }
        for i, (ids, types) in enumerate(rows):
            out["input_ids"][i, : len(ids)] = ids
            out["token_type_ids"][i, : len(ids)] = types
            out["attention_mask"][i, : len(ids)] = 1
        return out

    encode = __call__


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if not isinstance(value, str):
        raise InputError(f"expected text, got {type(value).__name__}")
    return value


def bert_inputs(input_ids: Any, token_type_ids: Any = None) -> dict[str, Any]:
    """Build the BERT input dict from right-padded ids (``[PAD]`` = 0), trimming shared padding.

    Works on numpy arrays and TensorFlow tensors (inside ``tf.data``): the
    attention mask is ``input_ids != 0`` and the batch is cut to its longest
    sequence, so a dataset padded to a fixed length still runs at the length
    each batch needs.

    Args:
        input_ids: ``(batch, length)`` integer ids, padded on the right with 0.
        token_type_ids: Segment ids of the same shape, or ``None`` for single
            sentences (all zeros).

    Returns:
        ``{"input_ids", "token_type_ids", "attention_mask"}`` as int32.
    """
    import numpy as np

    if isinstance(input_ids, np.ndarray):
        ids = input_ids.astype(np.int32)
        mask = (ids != 0).astype(np.int32)
        width = int(mask.sum(axis=1).max()) if ids.size else 0
        types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids, np.int32)
        return {
            "input_ids": ids[:, :width],
            "token_type_ids": types[:, :width],
            "attention_mask": mask[:, :width],
        }
    import tensorflow as tf

    ids = tf.cast(input_ids, tf.int32)
    mask = tf.cast(tf.not_equal(ids, 0), tf.int32)
    width = tf.reduce_max(tf.reduce_sum(mask, axis=1))
    types = tf.zeros_like(ids) if token_type_ids is None else tf.cast(token_type_ids, tf.int32)
    return {
        "input_ids": ids[:, :width],
        "token_type_ids": types[:, :width],
        "attention_mask": mask[:, :width],
    }


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
        raise InputError(f"{entry.name} has no WordPiece preprocessing")
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
        outputs = getattr(model, "output", None)
        if not isinstance(outputs, dict) or "sequence_output" not in outputs:
            raise InputError(
                "SentenceEncoder needs a BERT encoder without a top (zoo.load(name, include_top=False))"
            )
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
        if self._forward is None:
            import tensorflow as tf

            spec = {k: tf.TensorSpec((None, None), tf.int32) for k in batch}
            model = self.model
            self._forward = tf.function(
                lambda x: model(x, training=False)["sequence_output"], input_signature=[spec]
            )
        return self._forward(batch)

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
        hidden = None
        out: Any = None
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            width = max(len(rows[i][0]) for i in index)
            ids = np.zeros((len(index), width), np.int32)
            for j, i in enumerate(index):
                ids[j, : len(rows[i][0])] = rows[i][0]
            batch = bert_inputs(ids)
            pooled = mean_pool(np.asarray(self._run(batch)), batch["attention_mask"])
            if out is None:
                hidden = pooled.shape[-1]
                out = np.zeros((len(sentences), hidden), np.float32)
            out[index] = pooled
        if out is None:
            out = np.zeros((0, int(self.model.output["sequence_output"].shape[-1])), np.float32)
        return l2_normalize(out) if self.normalize else out

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
