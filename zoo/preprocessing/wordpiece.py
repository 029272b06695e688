"""The BERT WordPiece tokeniser and the BERT encoders' input dict.

:class:`WordPieceTokenizer` is the standard BERT tokeniser (as Google's
``tokenization.FullTokenizer`` and Hugging Face's ``BertTokenizerFast`` do it),
built with the ``tokenizers`` library from a ``vocab.txt``: Unicode clean-up,
lower case and accent stripping for uncased vocabularies, splitting on
whitespace and punctuation (CJK characters on their own), greedy
longest-match-first WordPiece with ``[UNK]`` for words it cannot split, then
``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``. Batches come back as numpy int32
``input_ids``, ``token_type_ids`` and ``attention_mask``, the inputs of the zoo's
BERT builders.

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

__all__ = ["MAX_POSITIONS", "SENTENCE_MAX_LENGTH", "WordPieceTokenizer", "bert_inputs"]


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
