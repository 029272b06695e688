"""Preprocessing: how a weights entry's inputs are made, as data (specs) and as functions.

* :mod:`zoo.preprocessing.specs`: validate image and text specs and turn them into
  ``tf.data`` transforms (:func:`make_transform`).
* :mod:`zoo.preprocessing.wordpiece`: the BERT WordPiece tokeniser and input dict.
* :mod:`zoo.preprocessing.bind`: the binding of a weights entry to its input pipeline
  (vocabularies resolved to verified files, image specs fitted to a model's input).

Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from zoo.preprocessing.bind import MAX_TEXT_TOKENS, adapt_preprocessing, local_text_spec
from zoo.preprocessing.specs import (
    build_vocab,
    geometry_transform,
    image_spec,
    image_transform,
    make_transform,
    split_geometry,
    text_spec,
    text_transform,
    validate_preprocessing,
)

__all__ = [
    "MAX_TEXT_TOKENS",
    "adapt_preprocessing",
    "build_vocab",
    "geometry_transform",
    "image_spec",
    "image_transform",
    "local_text_spec",
    "make_transform",
    "split_geometry",
    "text_spec",
    "text_transform",
    "validate_preprocessing",
]
