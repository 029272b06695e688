"""The binding of a weights entry to its input pipeline.

Turns a manifest record's ``preprocessing`` into a spec ready to run on new data:
:func:`local_text_spec` resolves a text vocabulary to its verified local file (through
the weights layer), :func:`adapt_preprocessing` fits an image spec to a model's input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import InputError

__all__ = ["MAX_TEXT_TOKENS", "adapt_preprocessing", "local_text_spec", "wordpiece_spec"]

#: Token limit of a text example when the weights' preprocessing sets none.
MAX_TEXT_TOKENS = 512


def adapt_preprocessing(
    spec: dict[str, Any], produced_hw: tuple[int, int], input_hw: tuple[int | None, int | None]
) -> dict[str, Any]:
    """Make a weights entry's image spec produce the model's input size on new data.

    When the entry's spec already yields ``input_hw`` it is kept; otherwise the
    image is resized straight to the input size (no crop, no pad).
    """
    if None in input_hw or tuple(produced_hw) == tuple(input_hw):
        return dict(spec)
    return {**spec, "resize": list(input_hw), "center_crop": None, "pad_to": None}


def local_text_spec(entry: Any, paths: dict[str, Path] | None = None) -> dict[str, Any]:
    """Return the entry's text preprocessing spec with a vocab file replaced by its verified local path."""
    from zoo.weights.resolve import resolve_files

    spec = dict(entry.preprocessing)
    if spec.get("type") != "text":
        raise InputError(f"{entry.name} has no text preprocessing")
    if isinstance(spec.get("vocab"), str):
        paths = paths if paths is not None else resolve_files(entry)
        if spec["vocab"] not in paths:
            raise InputError(f"{entry.name}: its vocabulary {spec['vocab']!r} is not one of its files")
        spec["vocab"] = str(paths[spec["vocab"]])
    if not spec.get("max_length"):  # one huge text must not take the whole memory
        spec["max_length"] = MAX_TEXT_TOKENS
    return spec


def wordpiece_spec(entry: Any, paths: dict[str, Path] | None = None) -> dict[str, Any]:
    """Return the entry's WordPiece preprocessing spec with its vocab as a verified local path."""
    if entry.preprocessing.get("type") != "text" or entry.preprocessing.get("tokenizer") != "wordpiece":
        raise InputError(f"{entry.name} has no WordPiece preprocessing")
    return local_text_spec(entry, paths)
