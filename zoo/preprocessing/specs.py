"""Preprocessing specs: how a model's inputs are prepared, as plain JSON-able dicts.

This is the format the weights manifest stores per weights entry, so a model
sees its inputs prepared exactly the way it was trained. Validation is pure
Python (no TensorFlow); :func:`image_transform` and :func:`text_transform`
build TensorFlow functions from a spec.

Image spec (every key required; ``None`` / JSON ``null`` when unused)::

    {
      "type": "image",
      "color_mode": "grayscale" | "rgb",
      "resize": null | int (shorter side, aspect kept) | [H, W],
      "interpolation": "bilinear" | "bicubic" | "nearest",
      "center_crop": null | [H, W],
      "pad_to": null | [H, W],        # zero padding, centred
      "scale": float,                  # multiplier on the uint8 values, e.g. 1/255
      "mean": null | [float per channel],
      "std": null | [float per channel]
    }

Steps run in this order: colour conversion, resize, centre crop, pad, scale,
``(x - mean) / std``. The transform maps a uint8 image ``(H, W, C)`` (or a
batch ``(N, H, W, C)``) to float32.

Text spec::

    {
      "type": "text",
      "tokenizer": "char" | "word" | "wordpiece",
      "vocab": null | [token, ...] | "relative/or/absolute/vocab.txt",
      "max_length": null | int,
      "lowercase": bool
    }

Token ids are positions in ``vocab``. Tokens not in the vocab map to the id of
``"[UNK]"`` when the vocab has it, and are dropped otherwise. With
``max_length`` the ids are truncated and right-padded with id 0 (by convention
``vocab[0] == "[PAD]"``, which :func:`build_vocab` ensures). ``char`` with
``vocab: null`` yields Unicode code points. ``word`` splits on whitespace (the
MR sentences are already tokenised). ``wordpiece`` is validated but not
implemented yet.
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Callable, Iterable
from numbers import Real
from pathlib import Path
from typing import Any

from zoo._lazy import tf

__all__ = [
    "IMAGE_KEYS",
    "TEXT_KEYS",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "validate_preprocessing",
    "image_transform",
    "split_geometry",
    "geometry_transform",
    "text_transform",
    "make_transform",
    "build_vocab",
    "text_spec",
    "image_spec",
]

IMAGE_KEYS = (
    "type",
    "color_mode",
    "resize",
    "interpolation",
    "center_crop",
    "pad_to",
    "scale",
    "mean",
    "std",
)
TEXT_KEYS = ("type", "tokenizer", "vocab", "max_length", "lowercase")
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"

_COLOR_MODES = {"grayscale": 1, "rgb": 3}
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_TOKENIZERS = ("char", "word", "wordpiece")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_keys(spec: dict[str, Any], keys: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(spec) - set(keys))
    missing = [k for k in keys if k not in spec]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {kind} preprocessing spec; allowed: {list(keys)}")
    if missing:
        raise ValueError(
            f"missing key(s) {missing} in {kind} preprocessing spec "
            "(every key is required: use null when unused)"
        )


def _check_size(value: Any, key: str, *, allow_int: bool = False) -> None:
    if value is None:
        return
    if allow_int and _is_int(value):
        if value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
        return
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) and v >= 1 for v in value)
    if not ok:
        kinds = "null, a positive int or [H, W]" if allow_int else "null or [H, W]"
        raise ValueError(f"{key} must be {kinds} with positive integers, got {value!r}")


def _check_channels(value: Any, key: str, channels: int, *, nonzero: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or not all(_is_real(v) for v in value):
        raise ValueError(f"{key} must be null or a list of finite numbers, got {value!r}")
    if len(value) not in (1, channels):
        raise ValueError(f"{key} has {len(value)} values but color_mode has {channels} channel(s)")
    if nonzero and any(v == 0 for v in value):
        raise ValueError(f"{key} must not contain zeros, got {value!r}")


def validate_preprocessing(spec: dict[str, Any]) -> None:
    """Check a preprocessing spec without importing TensorFlow.

    Args:
        spec: An image or text spec (see the module docstring).

    Raises:
        ValueError: On a non-dict, an unknown ``type``, unknown or missing keys,
            or a value of the wrong type or range.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a preprocessing spec must be a dict, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind == "image":
        _check_keys(spec, IMAGE_KEYS, "image")
        if spec["color_mode"] not in _COLOR_MODES:
            raise ValueError(f"color_mode must be one of {list(_COLOR_MODES)}, got {spec['color_mode']!r}")
        if spec["interpolation"] not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {list(_INTERPOLATIONS)}, got {spec['interpolation']!r}"
            )
        _check_size(spec["resize"], "resize", allow_int=True)
        _check_size(spec["center_crop"], "center_crop")
        _check_size(spec["pad_to"], "pad_to")
        if not _is_real(spec["scale"]) or spec["scale"] == 0:
            raise ValueError(f"scale must be a finite non-zero number, got {spec['scale']!r}")
        channels = _COLOR_MODES[spec["color_mode"]]
        _check_channels(spec["mean"], "mean", channels)
        _check_channels(spec["std"], "std", channels, nonzero=True)
    elif kind == "text":
        _check_keys(spec, TEXT_KEYS, "text")
        if spec["tokenizer"] not in _TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {list(_TOKENIZERS)}, got {spec['tokenizer']!r}")
        vocab = spec["vocab"]
        if vocab is not None and not isinstance(vocab, str):
            if not isinstance(vocab, (list, tuple)) or not all(isinstance(t, str) for t in vocab):
                raise ValueError("vocab must be null, a filename or a list of strings")
            if len(set(vocab)) != len(vocab):
                raise ValueError("vocab contains duplicate tokens")
            if not vocab:
                raise ValueError("vocab must not be an empty list")
        if isinstance(vocab, str) and not vocab.strip():
            raise ValueError("vocab filename must not be empty")
        if spec["max_length"] is not None and (not _is_int(spec["max_length"]) or spec["max_length"] < 1):
            raise ValueError(f"max_length must be null or a positive integer, got {spec['max_length']!r}")
        if not isinstance(spec["lowercase"], bool):
            raise ValueError(f"lowercase must be true or false, got {spec['lowercase']!r}")
    else:
        raise ValueError(f"preprocessing spec 'type' must be 'image' or 'text', got {kind!r}")


def image_spec(
    *,
    color_mode: str = "rgb",
    resize: int | list[int] | None = None,
    interpolation: str = "bilinear",
    center_crop: list[int] | None = None,
    pad_to: list[int] | None = None,
    scale: float = 1 / 255,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> dict[str, Any]:
    """Return a complete, validated image spec; every argument is the key of that name."""
    spec = {
        "type": "image",
        "color_mode": color_mode,
        "resize": list(resize) if isinstance(resize, tuple) else resize,
        "interpolation": interpolation,
        "center_crop": list(center_crop) if center_crop is not None else None,
        "pad_to": list(pad_to) if pad_to is not None else None,
        "scale": float(scale),
        "mean": [float(v) for v in mean] if mean is not None else None,
        "std": [float(v) for v in std] if std is not None else None,
    }
    validate_preprocessing(spec)
    return spec


# ---------------------------------------------------------------------------
# Image transform (TensorFlow)
# ---------------------------------------------------------------------------


def _convert_color(image: Any, channels: int) -> Any:
    have = image.shape[-1]
    if have is None:
        raise ValueError("image_transform needs images with a known number of channels")
    if have == channels:
        return image
    if have == 4:  # drop alpha
        image = image[..., :3]
        have = 3
    if channels == 1 and have == 3:
        return tf.image.rgb_to_grayscale(image)
    if channels == 3 and have == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 3 and have == 3:
        return image
    raise ValueError(f"cannot convert an image with {have} channels to {channels}")


def _resize(image: Any, size: Any, method: str) -> Any:
    antialias = method != "nearest"
    if isinstance(size, int):
        shape = tf.shape(image)
        height = tf.cast(shape[-3], tf.float64)
        width = tf.cast(shape[-2], tf.float64)
        factor = size / tf.minimum(height, width)
        new_h = tf.cast(tf.round(height * factor), tf.int32)
        new_w = tf.cast(tf.round(width * factor), tf.int32)
        out = tf.image.resize(image, tf.stack([new_h, new_w]), method=method, antialias=antialias)
        return out
    if tuple(image.shape[-3:-1]) == tuple(size):  # statically a no-op: keep graphs (and exports) lean
        return image
    return tf.image.resize(image, list(size), method=method, antialias=antialias)


def _centre_offsets(image: Any, target: Any) -> tuple[Any, Any]:
    shape = tf.shape(image)
    return (shape[-3] - target[0]) // 2, (shape[-2] - target[1]) // 2


def image_transform(spec: dict[str, Any]) -> Callable[[Any], Any]:
    """Build the TensorFlow function an image spec describes.

    Args:
        spec: A valid image spec (checked with :func:`validate_preprocessing`).

    Returns:
        A function mapping a uint8 image ``(H, W, C)`` (or a batch
        ``(N, H, W, C)``) to float32, usable inside ``tf.data`` ``map``.
        Resizing works on float values (no re-quantisation) with antialiasing
        for bilinear/bicubic; crop offsets are ``(size - crop) // 2``; an image
        larger than ``pad_to`` is an error when the function runs.

    Raises:
        ValueError: If the spec is not a valid image spec.
    """
    validate_preprocessing(spec)
    if spec["type"] != "image":
        raise ValueError(f"image_transform needs an image spec, got type {spec['type']!r}")
    channels = _COLOR_MODES[spec["color_mode"]]
    resize = spec["resize"]
    method = spec["interpolation"]
    crop = spec["center_crop"]
    pad = spec["pad_to"]
    scale = float(spec["scale"])
    mean = spec["mean"]
    std = spec["std"]

    def transform(image: Any) -> Any:
        image = tf.convert_to_tensor(image)
        image = _convert_color(image, channels)
        image = tf.cast(image, tf.float32)
        if resize is not None:
            image = _resize(image, resize, method)
        if crop is not None:
            off_h, off_w = _centre_offsets(image, crop)
            image = tf.image.crop_to_bounding_box(image, off_h, off_w, crop[0], crop[1])
        if pad is not None:
            shape = tf.shape(image)
            off_h = (pad[0] - shape[-3]) // 2
            off_w = (pad[1] - shape[-2]) // 2
            image = tf.image.pad_to_bounding_box(image, off_h, off_w, pad[0], pad[1])
        image = image * tf.constant(scale, tf.float32)
        if mean is not None:
            image = image - tf.constant(mean, tf.float32)
        if std is not None:
            image = image / tf.constant(std, tf.float32)
        return image

    return transform


def split_geometry(
    spec: dict[str, Any], input_shape: tuple[int | None, ...]
) -> tuple[dict[str, Any], tuple[int, int]]:
    """Split an image spec into the part a deployed model bakes in and its fixed input size.

    Resizing and cropping (antialiased resizes have no portable operator in ONNX or
    TFLite) are left to the caller, who gives the exported model uint8 images of the
    returned size, made by :func:`geometry_transform`; colour conversion, padding and
    normalisation stay in the returned spec.

    Args:
        spec: A valid image spec.
        input_shape: The model's input shape ``(H, W, C)``.

    Returns:
        ``(baked_spec, (height, width))``.
    """
    validate_preprocessing(spec)
    if spec["center_crop"] is not None:
        size = spec["center_crop"]
    elif isinstance(spec["resize"], (list, tuple)):
        size = spec["resize"]
    elif spec["pad_to"] is not None:
        size = spec["pad_to"]
    else:
        size = input_shape[:2]
    if not all(isinstance(n, int) and n > 0 for n in size):
        raise ValueError(f"cannot fix an input size from {spec} and input shape {input_shape}")
    return {**spec, "resize": None, "center_crop": None}, (int(size[0]), int(size[1]))


def geometry_transform(spec: dict[str, Any], size: tuple[int, int] | None = None) -> Callable[[Any], Any]:
    """The caller's half of :func:`split_geometry`: colour, resize and crop, rounded to uint8.

    Args:
        spec: A valid image spec (the entry's own, not the baked one).
        size: The export's input size (from :func:`split_geometry`); a spec that neither
            resizes nor crops (CIFAR's) then resizes any other size to it.

    Returns:
        A function mapping uint8 images (one or a batch) to uint8 images of the size
        :func:`split_geometry` gives.
    """
    geometry = {**spec, "pad_to": None, "scale": 1.0, "mean": None, "std": None}
    if size is not None and spec["resize"] is None and spec["center_crop"] is None and spec["pad_to"] is None:
        geometry["resize"] = [int(size[0]), int(size[1])]
    transform = image_transform(geometry)

    def to_uint8(image: Any) -> Any:
        return tf.cast(tf.clip_by_value(tf.round(transform(image)), 0, 255), tf.uint8)

    return to_uint8


# ---------------------------------------------------------------------------
# Text transform (TensorFlow) and vocabularies (pure Python)
# ---------------------------------------------------------------------------


def _tokens(text: str, tokenizer: str, lowercase: bool) -> list[str]:
    if lowercase:
        text = text.lower()
    if tokenizer == "char":
        return list(text)
    if tokenizer == "word":
        return text.split()
    raise NotImplementedError(f"the {tokenizer!r} tokenizer is not implemented yet")


def build_vocab(
    texts: Iterable[str],
    tokenizer: str = "word",
    *,
    lowercase: bool = False,
    max_size: int | None = None,
    min_count: int = 1,
    specials: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN),
) -> list[str]:
    """Build a vocabulary list from training texts (pure Python).

    Args:
        texts: Training texts (``str`` or UTF-8 ``bytes``).
        tokenizer: ``"char"`` or ``"word"`` (whitespace split).
        lowercase: Lower-case before counting.
        max_size: Keep at most this many entries, specials included.
        min_count: Drop tokens seen fewer times.
        specials: Tokens put first, in order (``[PAD]`` at 0, ``[UNK]`` at 1 by default).

    Returns:
        ``specials`` followed by tokens by decreasing count, ties broken by the
        token's sort order (so the result is stable).
    """
    if tokenizer not in ("char", "word"):
        raise ValueError(f"build_vocab supports 'char' and 'word', got {tokenizer!r}")
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        counts.update(_tokens(text, tokenizer, lowercase))
    vocab = list(specials)
    seen = set(vocab)
    ranked = sorted(
        ((tok, n) for tok, n in counts.items() if n >= min_count and tok not in seen),
        key=lambda item: (-item[1], item[0]),
    )
    vocab.extend(tok for tok, _ in ranked)
    if max_size is not None:
        vocab = vocab[:max_size]
    return vocab


def text_spec(
    texts: Iterable[str] | None = None,
    tokenizer: str = "word",
    *,
    vocab: list[str] | str | None = None,
    max_length: int | None = None,
    lowercase: bool = False,
    max_size: int | None = None,
    min_count: int = 1,
) -> dict[str, Any]:
    """Return a complete text spec, building the vocab from ``texts`` when none is given.

    Args:
        texts: Training texts, used only when ``vocab`` is ``None``.
        tokenizer: ``"char"``, ``"word"`` or ``"wordpiece"``.
        vocab: An explicit vocab list or filename.
        max_length: Truncate/pad to this many ids.
        lowercase: Lower-case before tokenising.
        max_size: Largest vocab to build.
        min_count: Minimum token count when building.

    Returns:
        A validated spec dict holding the vocab list.
    """
    if vocab is None and texts is not None:
        vocab = build_vocab(texts, tokenizer, lowercase=lowercase, max_size=max_size, min_count=min_count)
    spec = {
        "type": "text",
        "tokenizer": tokenizer,
        "vocab": vocab,
        "max_length": max_length,
        "lowercase": lowercase,
    }
    validate_preprocessing(spec)
    return spec


def _load_vocab(vocab: Any, base_dir: str | os.PathLike[str] | None) -> list[str] | None:
    if vocab is None or isinstance(vocab, (list, tuple)):
        return None if vocab is None else list(vocab)
    path = Path(vocab).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ValueError(f"cannot read vocab file {str(path)!r}: {err}") from err
    return [line.rstrip("\r") for line in lines]


def _wordpiece_encoder(spec: dict[str, Any], base_dir: str | os.PathLike[str] | None) -> Callable[[Any], Any]:
    """The :func:`text_transform` encoder of a valid ``wordpiece`` text spec."""
    import numpy as np

    from zoo.errors import InputError
    from zoo.preprocessing.wordpiece import MAX_POSITIONS, WordPieceTokenizer

    vocab = spec["vocab"]
    if vocab is None:
        raise ValueError("the wordpiece tokenizer needs a vocab: a vocab.txt filename or a token list")
    if isinstance(vocab, str):
        path = Path(vocab).expanduser()
        vocab = Path(base_dir) / path if not path.is_absolute() and base_dir is not None else path
    try:
        wordpiece = WordPieceTokenizer(vocab, lowercase=spec["lowercase"])
    except InputError as err:
        raise ValueError(str(err)) from err
    max_length = spec["max_length"]

    def ids_of(text: Any) -> Any:
        value = text.numpy()
        value = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        return np.asarray(wordpiece.ids([value], max_length=max_length or MAX_POSITIONS)[0][0], np.int32)

    def encode(text: Any) -> Any:
        ids = tf.py_function(ids_of, [tf.convert_to_tensor(text, tf.string)], tf.int32)
        ids.set_shape([None])
        if max_length is not None:
            ids = tf.pad(ids, [[0, max_length - tf.shape(ids)[0]]])
            ids = tf.ensure_shape(ids, [max_length])
        return ids

    return encode


def _vocab_table(vocab: list[str]) -> Any:
    """A token -> id lookup table of ``vocab``; unknown tokens give the id of ``[UNK]``, else -1."""
    unk = vocab.index(UNK_TOKEN) if UNK_TOKEN in vocab else -1
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocab, tf.string), tf.range(len(vocab), dtype=tf.int64)
        ),
        default_value=unk,
    )


def text_transform(
    spec: dict[str, Any], *, base_dir: str | os.PathLike[str] | None = None
) -> Callable[[Any], Any]:
    """Build the TensorFlow encoder a text spec describes.

    Args:
        spec: A valid text spec.
        base_dir: Directory that a relative ``vocab`` filename is relative to.

    Returns:
        A function mapping a scalar ``tf.string`` to int32 ids: shape
        ``(max_length,)`` when ``max_length`` is set, ``(None,)`` otherwise.
        ``wordpiece`` gives BERT ids, ``[CLS] ... [SEP]`` included (see
        :class:`zoo.preprocessing.wordpiece.WordPieceTokenizer`; ``lowercase`` also strips accents,
        as for uncased BERT vocabularies), truncated to ``max_length``; the
        tokeniser runs in Python through ``tf.py_function``.

    Raises:
        ValueError: If the spec is invalid or its vocab file unreadable.
    """
    validate_preprocessing(spec)
    if spec["type"] != "text":
        raise ValueError(f"text_transform needs a text spec, got type {spec['type']!r}")
    tokenizer = spec["tokenizer"]
    if tokenizer == "wordpiece":
        return _wordpiece_encoder(spec, base_dir)
    vocab = _load_vocab(spec["vocab"], base_dir)
    if tokenizer == "word" and vocab is None:
        raise ValueError("the word tokenizer needs a vocab: build one with build_vocab/text_spec")
    max_length = spec["max_length"]
    lowercase = spec["lowercase"]
    table = _vocab_table(vocab) if vocab is not None else None

    def encode(text: Any) -> Any:
        text = tf.convert_to_tensor(text, tf.string)
        if lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        if tokenizer == "char":
            if table is None:
                ids = tf.strings.unicode_decode(text, "UTF-8")
            else:
                ids = table.lookup(tf.strings.unicode_split(text, "UTF-8"))
        else:
            ids = table.lookup(tf.strings.split(text))
        if table is not None:
            ids = tf.boolean_mask(ids, ids >= 0)  # drop out-of-vocab tokens without [UNK]
        ids = tf.cast(ids, tf.int32)
        if max_length is not None:
            ids = ids[:max_length]
            ids = tf.pad(ids, [[0, max_length - tf.shape(ids)[0]]])
            ids = tf.ensure_shape(ids, [max_length])
        return ids

    return encode


def make_transform(
    spec: dict[str, Any], *, base_dir: str | os.PathLike[str] | None = None
) -> Callable[[Any], Any]:
    """Return :func:`image_transform` or :func:`text_transform` of ``spec`` by its ``type``."""
    validate_preprocessing(spec)
    if spec["type"] == "image":
        return image_transform(spec)
    return text_transform(spec, base_dir=base_dir)
