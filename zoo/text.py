"""Public face of the zoo's text tools (``zoo.text.encode``, ``zoo.text.tokenizer_for``).

The code lives in :mod:`zoo.preprocessing.wordpiece` (the tokeniser) and
:mod:`zoo.tasks.embed` (sentence embeddings); this module only re-exports it.
"""

from zoo.preprocessing.wordpiece import MAX_POSITIONS, SENTENCE_MAX_LENGTH, WordPieceTokenizer, bert_inputs
from zoo.tasks.embed import SentenceEncoder, encode, l2_normalize, mean_pool, tokenizer_for

__all__ = [
    "MAX_POSITIONS",
    "SENTENCE_MAX_LENGTH",
    "SentenceEncoder",
    "WordPieceTokenizer",
    "bert_inputs",
    "encode",
    "l2_normalize",
    "mean_pool",
    "tokenizer_for",
]
