"""Character-level language models: vocabularies, training windows, nats/char, sampling.

The toolkit around :func:`zoo.models.lstm.lstm_charlm` (and any model mapping
``(batch, T)`` int character ids to ``(batch, T, vocab)`` next-character logits):

* :func:`char_vocab` / :func:`char_spec`: the vocabulary is the sorted list of
  distinct characters of the training text (65 for Tiny Shakespeare) and a
  character's id is its index in that list, as in char-rnn and nanoGPT: no
  ``[PAD]`` or ``[UNK]`` entries. :func:`char_spec` is the manifest's text spec
  for it; :func:`encode` and :func:`decode` agree with
  :func:`zoo.data.text_transform` of that spec (characters outside the vocab
  are dropped).
* :func:`sequence_dataset`: a ``tf.data`` pipeline of ``(inputs, targets)``
  windows for next-character training, re-drawn every epoch when shuffling.
* :func:`evaluate_nats_per_char`: mean next-character cross-entropy of a whole
  text, with the window protocol described there (defaults
  :data:`DEFAULT_SEQUENCE_LENGTH` and :data:`DEFAULT_BURN_IN`);
  :func:`evaluate_charlm` applies it to a weights entry (``zoo evaluate``).
* :func:`generate`: sample a continuation of a prompt, one character per step
  with the recurrent state carried over (:class:`CharStepper`), so the cost is
  linear in the number of characters.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from zoo._lazy import keras, np, tf
from zoo.backend import no_grad
from zoo.errors import InputError
from zoo.progress import progress

__all__ = [
    "generate_text",
    "DEFAULT_SEQUENCE_LENGTH",
    "DEFAULT_BURN_IN",
    "char_vocab",
    "char_spec",
    "encode",
    "decode",
    "load_text",
    "sequence_dataset",
    "evaluation_windows",
    "evaluate_nats_per_char",
    "evaluate_charlm",
    "CharStepper",
    "next_char_probabilities",
    "generate",
]

#: Window length of :func:`evaluate_nats_per_char` for models without a fixed input length.
DEFAULT_SEQUENCE_LENGTH = 256
#: Context every scored character has (except the first ones of the text): ``DEFAULT_SEQUENCE_LENGTH // 2``.
DEFAULT_BURN_IN = DEFAULT_SEQUENCE_LENGTH // 2

_SEED_MASK = (1 << 63) - 1


# ---------------------------------------------------------------------------
# Vocabulary, encoding (numpy; no TensorFlow)
# ---------------------------------------------------------------------------


def char_vocab(text: str | Iterable[str]) -> list[str]:
    """Return the sorted distinct characters of ``text`` (the character vocabulary).

    Args:
        text: The training text, or several texts.

    Returns:
        The characters in code point order; a character's id is its index.
        Tiny Shakespeare's training split gives 65 characters.
    """
    chars: set[str] = set()
    for part in [text] if isinstance(text, str) else text:
        chars.update(part)
    return sorted(chars)


def _check_vocab(vocab: Sequence[str]) -> list[str]:
    if isinstance(vocab, str) or not isinstance(vocab, Sequence):
        raise InputError(
            "vocab must be a list of single characters, e.g. zoo.tasks.language_model.char_vocab(text)"
        )
    vocab = list(vocab)
    if not vocab:
        raise InputError("vocab is empty; build it with zoo.tasks.language_model.char_vocab(training_text)")
    bad = [t for t in vocab if not isinstance(t, str) or len(t) != 1]
    if bad:
        raise InputError(
            f"a character vocab holds single characters, got {bad[:5]!r}; "
            "build it with zoo.tasks.language_model.char_vocab(training_text)"
        )
    if len(set(vocab)) != len(vocab):
        raise InputError("vocab contains duplicate characters")
    return vocab


def char_spec(vocab: Sequence[str]) -> dict[str, Any]:
    """Return the manifest text spec of a character vocabulary.

    Args:
        vocab: Single characters, e.g. from :func:`char_vocab`.

    Returns:
        ``{"type": "text", "tokenizer": "char", "vocab": [...], "max_length": None,
        "lowercase": False}``, validated. Without ``[UNK]`` in the vocab,
        :func:`zoo.data.text_transform` drops characters outside it, as :func:`encode` does.
    """
    from zoo.preprocessing.specs import text_spec, validate_preprocessing

    spec = text_spec(tokenizer="char", vocab=_check_vocab(vocab), max_length=None, lowercase=False)
    validate_preprocessing(spec)
    return spec


def _code_points(text: str) -> Any:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _lookup(text: str, vocab: list[str]) -> Any:
    """Return the id of every character of ``text`` (-1 outside the vocab) as int64."""
    cps = _code_points(text)
    vocab_cps = np.array([ord(c) for c in vocab], dtype=np.int64)
    table = np.full(int(vocab_cps.max()) + 1, -1, dtype=np.int64)
    table[vocab_cps] = np.arange(len(vocab), dtype=np.int64)
    inside = cps < table.shape[0]
    ids = np.full(cps.shape, -1, dtype=np.int64)
    ids[inside] = table[cps[inside]]
    return ids


def _unknown_chars(text: str, ids: Any) -> list[str]:
    missing = np.unique(_code_points(text)[ids < 0])
    return [chr(int(c)) for c in missing]


def _check_known(text: str, ids: Any, vocab: Sequence[str], what: str) -> None:
    """Raise :class:`InputError` naming the characters of ``text`` outside ``vocab`` and ``what`` to do."""
    if (ids < 0).any():
        chars = _unknown_chars(text, ids)
        shown = ", ".join(repr(c) for c in chars[:20]) + (" ..." if len(chars) > 20 else "")
        raise InputError(
            f"{len(chars)} character(s) not in the {len(vocab)}-character vocabulary: {shown}; {what}"
        )


def encode(text: str, vocab: Sequence[str], *, unknown: str = "drop") -> Any:
    """Map text to character ids (vectorised; no TensorFlow).

    Args:
        text: The text.
        vocab: The character vocabulary.
        unknown: ``"drop"`` skips characters outside the vocab, exactly like
            :func:`zoo.data.text_transform` of :func:`char_spec`; ``"raise"``
            raises :class:`~zoo.errors.InputError` naming them.

    Returns:
        An int32 numpy array of ids.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a str, got {type(text).__name__}")
    if unknown not in ("drop", "raise"):
        raise InputError(f"unknown must be 'drop' or 'raise', got {unknown!r}")
    vocab = _check_vocab(vocab)
    ids = _lookup(text, vocab)
    if unknown == "raise":
        _check_known(text, ids, vocab, "remove them (or encode with unknown='drop')")
    if (ids < 0).any():
        ids = ids[ids >= 0]
    return ids.astype(np.int32)


def decode(ids: Iterable[int] | Any, vocab: Sequence[str]) -> str:
    """Map character ids back to text.

    Args:
        ids: Ids in ``[0, len(vocab))`` (a list or a 1-D array).
        vocab: The character vocabulary.

    Returns:
        The text.
    """
    vocab = _check_vocab(vocab)
    arr = np.asarray(ids).reshape(-1)
    if arr.size == 0:
        return ""
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"ids must be integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= len(vocab):
        raise InputError(f"ids must lie in [0, {len(vocab)}), got values in [{arr.min()}, {arr.max()}]")
    return "".join(np.asarray(vocab, dtype=object)[arr].tolist())


def _as_ids(text_or_ids: Any, vocab: list[str], what: str) -> Any:
    if isinstance(text_or_ids, str):
        return encode(text_or_ids, vocab, unknown="raise")
    ids = np.asarray(text_or_ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise InputError(
            f"{what} must be a str or a 1-D array of integer ids, got shape {ids.shape} and dtype {ids.dtype}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= len(vocab)):
        raise InputError(
            f"{what} ids must lie in [0, {len(vocab)}), got values in [{ids.min()}, {ids.max()}]"
        )
    return ids.astype(np.int32)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def load_text(
    name: str | os.PathLike[str] = "tiny_shakespeare",
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Return a text dataset split as one string (every element's ``"text"`` joined in order).

    Args:
        name: Dataset name or path understood by :func:`zoo.data.load`.
        split: The split (``tiny_shakespeare``: ``"train"`` is the first 90%,
            ``"validation"`` and ``"test"`` the last 10%).
        data_dir: Data directory (overrides ``ZOO_DATA_DIR``).

    Returns:
        The text.
    """
    import zoo.data

    ds = zoo.data.load(name, split, data_dir=data_dir)
    if "text" not in ds.element_spec:
        raise InputError(f"{name} has no 'text' feature; a language model needs a text dataset")
    parts = [element["text"] for element in ds.as_numpy_iterator()]
    return "".join(p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in parts)


# ---------------------------------------------------------------------------
# Training windows (tf.data)
# ---------------------------------------------------------------------------


def _window_grid(
    n: int, length: int, batch_size: int, shuffle: bool, drop_remainder: bool
) -> tuple[int, int, int]:
    """Return ``(num_windows, max_offset, num_batches)`` of a text of ``n`` ids, refusing one too short."""
    if n < length + 1:
        raise InputError(f"the text has {n} characters; sequence_length={length} needs at least {length + 1}")
    if shuffle:
        num_windows = max(1, (n - length) // length)
        max_offset = min(length - 1, n - 1 - num_windows * length)
    else:
        num_windows = (n - 1) // length
        max_offset = 0
    num_batches = num_windows // batch_size if drop_remainder else -(-num_windows // batch_size)
    if num_batches == 0:
        raise InputError(
            f"only {num_windows} window(s) of {length} characters fit in the text, fewer "
            f"than batch_size={batch_size}; lower batch_size or sequence_length, or "
            "pass drop_remainder=False"
        )
    return num_windows, max_offset, num_batches


def _window_starts(
    num_windows: int, length: int, max_offset: int, shuffle: bool, seed: int, initial_epoch: int
) -> Any:
    """Return the dataset of window starts: text order, or re-drawn offset and order every epoch."""
    base = tf.range(num_windows, dtype=tf.int64) * length
    if not shuffle:
        return tf.data.Dataset.from_tensor_slices(base)
    from zoo.data.pipeline import epoch_numbers

    seed_t = tf.constant(seed, tf.int64)

    def starts_of(epoch: Any) -> Any:
        keys = tf.random.experimental.stateless_split(tf.stack([seed_t, epoch]), 2)
        offset = tf.random.stateless_uniform([], keys[0], minval=0, maxval=max_offset + 1, dtype=tf.int64)
        return tf.random.experimental.stateless_shuffle(base + offset, keys[1])

    starts = epoch_numbers(initial_epoch).map(starts_of)
    return starts.flat_map(tf.data.Dataset.from_tensor_slices)


def sequence_dataset(
    text_or_ids: str | Any,
    *,
    vocab: Sequence[str],
    sequence_length: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = True,
    initial_epoch: int = 0,
) -> Any:
    """Return a ``tf.data`` pipeline of ``(inputs, targets)`` windows for next-character training.

    Every example is a window of ``sequence_length + 1`` consecutive characters:
    ``inputs`` its first ``sequence_length`` ids, ``targets`` its last (inputs
    shifted by one). The windows of an epoch do not overlap and start at
    ``offset + k * sequence_length``:

    * ``shuffle=False``: ``offset = 0`` and windows in text order (deterministic);
      ``(n - 1) // sequence_length`` windows for a text of ``n`` characters.
    * ``shuffle=True``: each pass over the dataset (each ``fit`` epoch) draws a
      fresh ``offset`` in ``[0, sequence_length)`` and a fresh window order
      with stateless random ops keyed by ``(seed, epoch)``, so the window grid
      moves from epoch to epoch and two datasets built with the same seed give
      the same epochs. The epoch counter starts at
      ``initial_epoch`` (pass the epoch you resume from) and counts iterators
      created on this dataset object. ``(n - sequence_length) // sequence_length``
      windows per epoch (at least one).

    Windows are cut with one vectorised gather per batch; no Python runs per window.

    Args:
        text_or_ids: The training text (every character must be in ``vocab``)
            or its ids (:func:`encode`).
        vocab: The character vocabulary.
        sequence_length: Characters per input window.
        batch_size: Windows per batch.
        shuffle: Re-draw offset and order every epoch.
        seed: Seed of the shuffling.
        drop_remainder: Drop the last partial batch.
        initial_epoch: Epoch number of the first pass (shuffling only).

    Returns:
        A dataset of int32 ``(inputs, targets)`` pairs, both ``(batch, sequence_length)``,
        with its number of batches as cardinality.

    Raises:
        InputError: On bad arguments, characters outside the vocab, or a text too
            short for one batch.
    """
    vocab = _check_vocab(vocab)
    sequence_length = _check_int(sequence_length, "sequence_length", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    seed = _check_int(seed, "seed", 0) & _SEED_MASK
    initial_epoch = _check_int(initial_epoch, "initial_epoch", 0)
    ids = _as_ids(text_or_ids, vocab, "text_or_ids")
    n, length = int(ids.shape[0]), sequence_length
    num_windows, max_offset, num_batches = _window_grid(n, length, batch_size, shuffle, drop_remainder)

    ids_t = tf.constant(ids, tf.int32)
    starts = _window_starts(num_windows, length, max_offset, shuffle, seed, initial_epoch)
    positions = tf.range(length + 1, dtype=tf.int64)

    def windows(batch_starts: Any) -> Any:
        window = tf.gather(ids_t, batch_starts[:, None] + positions[None, :])
        return window[:, :-1], window[:, 1:]

    ds = starts.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(windows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.apply(tf.data.experimental.assert_cardinality(num_batches))
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------
# Evaluation: nats per character
# ---------------------------------------------------------------------------


def _fixed_length(model: Any) -> int | None:
    try:
        shape = model.inputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return None if len(shape) < 2 or shape[1] is None else int(shape[1])


def _check_output_size(model: Any, vocab: list[str]) -> None:
    try:
        size = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        return
    if size is not None and int(size) != len(vocab):
        raise InputError(
            f"{getattr(model, 'name', 'the model')} predicts {size} characters but the "
            f"vocab has {len(vocab)}; use the vocab the model was trained with"
        )


def evaluation_windows(num_chars: int, sequence_length: int, burn_in: int) -> tuple[Any, Any]:
    """Return the window starts and score mask of the nats/char protocol.

    Args:
        num_chars: Length ``n`` of the encoded text.
        sequence_length: Window length ``L``.
        burn_in: Positions of every window after the first that only give context.

    Returns:
        ``(starts, mask)``: int64 ``(W,)`` starts and float32 ``(W, L)`` weights;
        window ``j`` reads ids ``starts[j] .. starts[j] + L`` (past the end: padding)
        and ``mask[j, t] = 1`` where the prediction of id ``starts[j] + t + 1`` is
        scored. Every id ``1 .. n - 1`` is scored exactly once.
    """
    targets = num_chars - 1
    stride = sequence_length - burn_in
    count = 1 + max(0, -(-(targets - sequence_length) // stride))
    starts = np.arange(count, dtype=np.int64) * stride
    t = np.arange(sequence_length, dtype=np.int64)[None, :]
    scored = (starts[:, None] + t + 1 <= targets) & ((t >= burn_in) | (starts[:, None] == 0))
    return starts, scored.astype(np.float32)


def _eval_lengths(model: Any, sequence_length: int | None, burn_in: int | None) -> tuple[int, int]:
    """Return the checked ``(sequence_length, burn_in)`` of the nats/char protocol, defaults filled in."""
    fixed = _fixed_length(model)
    if sequence_length is None:
        sequence_length = fixed or DEFAULT_SEQUENCE_LENGTH
    sequence_length = _check_int(sequence_length, "sequence_length", 1)
    if fixed is not None and fixed != sequence_length:
        raise InputError(f"the model takes exactly {fixed} characters; use sequence_length={fixed}")
    if burn_in is None:
        burn_in = sequence_length // 2
    burn_in = _check_int(burn_in, "burn_in", 0)
    if burn_in >= sequence_length:
        raise InputError(f"burn_in must be smaller than sequence_length={sequence_length}, got {burn_in}")
    return sequence_length, burn_in


def _padded_windows(
    ids: Any, sequence_length: int, burn_in: int, batch_size: int
) -> tuple[Any, Any, int, int]:
    """Return ``(windows, mask, batch, padded_count)``: the evaluation windows padded to whole batches."""
    starts, mask = evaluation_windows(int(ids.shape[0]), sequence_length, burn_in)
    count = starts.shape[0]
    batch = min(batch_size, count)
    padded_count = -(-count // batch) * batch
    total = int(starts[-1]) + sequence_length + 1
    padded_ids = np.zeros(max(total, ids.shape[0]), np.int32)
    padded_ids[: ids.shape[0]] = ids
    windows = padded_ids[starts[:, None] + np.arange(sequence_length + 1)[None, :]]
    windows = np.concatenate([windows, np.zeros((padded_count - count, sequence_length + 1), np.int32)])
    mask = np.concatenate([mask, np.zeros((padded_count - count, sequence_length), np.float32)])
    return windows, mask, batch, padded_count


def _batch_loss_fn(model: Any, batch: int, sequence_length: int) -> Any:
    """Return a compiled function: the float64 masked cross-entropy sum of one batch of windows."""
    if keras.backend.backend() != "tensorflow":
        from zoo.backend import compiled

        def losses(x: Any, y: Any) -> Any:
            logits = keras.ops.cast(model(x, training=False), "float32")
            return keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)

        per_char = compiled(losses)

        def host_sum(x: Any, y: Any, w: Any) -> float:
            loss = keras.ops.convert_to_numpy(per_char(x, y)).astype(np.float64)
            return float(np.sum(loss * np.asarray(w, np.float64)))

        return host_sum
    ids_spec = tf.TensorSpec((batch, sequence_length), tf.int32)

    @tf.function(input_signature=[ids_spec, ids_spec, tf.TensorSpec((batch, sequence_length), tf.float32)])
    def batch_loss(x: Any, y: Any, w: Any) -> Any:
        logits = tf.cast(model(x, training=False), tf.float32)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(tf.cast(loss, tf.float64) * tf.cast(w, tf.float64))

    return batch_loss


def evaluate_nats_per_char(
    model: Any,
    text: str | Any,
    *,
    vocab: Sequence[str],
    sequence_length: int | None = None,
    burn_in: int | None = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """Mean next-character cross-entropy of ``model`` over a whole text.

    Protocol: the text's ``n`` characters give ``n - 1`` predictions (every
    character but the first, which has no context), all scored exactly once.
    The model reads windows of ``sequence_length`` characters starting at
    ``0, stride, 2 * stride, ...`` with ``stride = sequence_length - burn_in``,
    each from an empty recurrent state. The first window scores all its
    positions; every later window scores only its last ``stride`` positions,
    its first ``burn_in`` characters serving as context. So every scored
    character after the first ``burn_in`` has at least ``burn_in`` characters
    of context (``burn_in=0`` gives plain non-overlapping windows, which
    overestimate the loss because each window starts with no context). Defaults:
    ``sequence_length`` is the model's fixed input length if it has one, else
    :data:`DEFAULT_SEQUENCE_LENGTH` (256); ``burn_in`` is ``sequence_length // 2``
    (128). The last window is padded (padding is never scored, and a causal
    model's earlier predictions do not see it), and so is the last batch, so the
    model is traced once.

    Args:
        model: Maps ``(batch, T)`` int32 ids to ``(batch, T, len(vocab))`` logits;
            called with ``training=False``.
        text: The text (every character must be in ``vocab``) or its ids.
        vocab: The character vocabulary the model was trained with.
        sequence_length: Window length.
        burn_in: Context-only positions of every window after the first
            (``0 <= burn_in < sequence_length``).
        batch_size: Windows per model call.

    Returns:
        ``{"nats_per_char": ..., "bits_per_char": ..., "num_chars": n - 1}``.

    Raises:
        InputError: On bad arguments, a text shorter than 2 characters or with
            characters outside ``vocab``, or a model whose output size is not ``len(vocab)``.
    """
    vocab = _check_vocab(vocab)
    sequence_length, burn_in = _eval_lengths(model, sequence_length, burn_in)
    batch_size = _check_int(batch_size, "batch_size", 1)
    _check_output_size(model, vocab)
    ids = _as_ids(text, vocab, "text")
    if ids.shape[0] < 2:
        raise InputError("the text needs at least 2 characters to score a prediction")

    windows, mask, batch, padded_count = _padded_windows(ids, sequence_length, burn_in, batch_size)
    batch_loss = _batch_loss_fn(model, batch, sequence_length)
    nats = 0.0
    for i in progress(range(0, padded_count, batch), "scoring characters"):
        window = windows[i : i + batch]
        nats += float(batch_loss(window[:, :-1], window[:, 1:], mask[i : i + batch]))
    num_chars = int(ids.shape[0]) - 1
    assert int(mask.sum()) == num_chars
    mean = nats / num_chars
    return {"nats_per_char": mean, "bits_per_char": mean / math.log(2), "num_chars": num_chars}


def evaluate_charlm(
    model: Any,
    entry: Any,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """Measure a character language model's weights entry (what ``zoo evaluate`` runs).

    Loads the entry's dataset split (or ``data``/``split``) as one text and
    applies :func:`evaluate_nats_per_char` with the vocab of the entry's char
    text spec, the window length of its ``builder_kwargs["sequence_length"]``
    (else :data:`DEFAULT_SEQUENCE_LENGTH`) and the default burn-in.

    Args:
        model: The character language model.
        entry: Its :class:`~zoo.weights.manifest.WeightsEntry` (``preprocessing`` a char
            text spec with an inline vocab list; ``dataset`` name and split).
        data: Another text dataset (named or a path).
        split: Split to use; defaults to the entry's.
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        batch_size: Windows per model call.

    Returns:
        ``nats_per_char``, ``bits_per_char`` and ``num_chars``.
    """
    spec = entry.preprocessing
    if spec.get("type") != "text" or spec.get("tokenizer") != "char":
        raise InputError(
            f"{entry.name}: evaluate_charlm needs a char text spec, got "
            f"{spec.get('type')}/{spec.get('tokenizer')}"
        )
    vocab = spec.get("vocab")
    if isinstance(vocab, str) or vocab is None:
        raise InputError(
            f"{entry.name}: the char spec must hold its vocab as an inline list of "
            "characters (zoo.tasks.language_model.char_spec(vocab))"
        )
    name, split = str(data or entry.dataset["name"]), split or entry.dataset["split"]
    text = load_text(name, split, data_dir=data_dir)
    if spec.get("lowercase"):
        text = text.lower()
    what = f"{entry.name} scores text of its own characters only, which {name} ({split}) is not"
    ids = _lookup(text, _check_vocab(list(vocab)))
    _check_known(text, ids, vocab, what)
    return evaluate_nats_per_char(
        model,
        ids.astype(np.int32),
        vocab=list(vocab),
        sequence_length=entry.builder_kwargs.get("sequence_length"),
        batch_size=batch_size,
    )


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout")


def _chain_layers(model: Any) -> list[Any] | None:
    """Return the layers of a single-input, single-output chain model, else ``None``."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    try:
        inputs, outputs = model.inputs, model.outputs
        layers = [layer for layer in model.layers]
        if len(inputs) != 1 or len(outputs) != 1 or not layers:
            return None
        if type(layers[0]).__name__ != "InputLayer" or layers[0].output is not inputs[0]:
            return None
        for prev, layer in zip(layers, layers[1:], strict=False):
            if layer.input is not prev.output:
                return None
        if layers[-1].output is not outputs[0]:
            return None
    except (AttributeError, ValueError, TypeError, IndexError):
        return None
    return layers[1:]


class CharStepper:
    """Run a recurrent character model one character at a time, carrying its state.

    Supports chain models (``Sequential``, or functional models where each layer
    feeds the next) of an ``Embedding`` (without ``mask_zero``), forward
    ``LSTM``/``GRU``/``SimpleRNN`` layers returning sequences, dropout/noise
    layers (identities at inference), ``Dense`` and ``Activation`` layers, such
    as :func:`zoo.models.lstm.lstm_charlm`. It calls the model's own layers and
    recurrent cells, so it shares the model's weights and its logits for
    position ``t`` equal the full model's on the first ``t + 1`` characters.

    Args:
        model: The character model.

    Raises:
        InputError: If the model is not such a chain (see :meth:`supports`).
    """

    def __init__(self, model: Any) -> None:
        reason = self._plan_or_reason(model)
        if isinstance(reason, str):
            raise InputError(f"{getattr(model, 'name', 'the model')} cannot run step by step: {reason}")
        self.model = model
        self._plan = reason
        rnns = [layer for kind, layer in self._plan if kind == "rnn"]
        self.state_sizes = [[int(s) for s in keras.tree.flatten(layer.cell.state_size)] for layer in rnns]
        self._state_dtypes = [layer.compute_dtype for layer in rnns]

    @staticmethod
    def supports(model: Any) -> bool:
        """Whether ``model`` can run step by step."""
        return not isinstance(CharStepper._plan_or_reason(model), str)

    @staticmethod
    def _plan_or_reason(model: Any) -> list[tuple[str, Any]] | str:
        layers = _chain_layers(model)
        if layers is None:
            return "it is not a chain of layers with one input and one output"
        plan: list[tuple[str, Any]] = []
        for index, layer in enumerate(layers):
            kind = type(layer).__name__
            if index == 0:
                if kind != "Embedding" or getattr(layer, "mask_zero", False):
                    return "its first layer is not an Embedding without mask_zero"
                plan.append(("layer", layer))
            elif kind in _RECURRENT:
                if not layer.return_sequences or layer.go_backwards or layer.stateful:
                    return f"{layer.name} is not a forward, stateless, return_sequences=True layer"
                plan.append(("rnn", layer))
            elif kind in _IDENTITY:
                continue
            elif kind in ("Dense", "Activation"):
                plan.append(("layer", layer))
            else:
                return f"layer {layer.name} ({kind}) is not supported"
        if not any(kind == "rnn" for kind, _ in plan):
            return "it has no recurrent layer"
        return plan

    def initial_state(self, batch_size: int = 1) -> list[list[Any]]:
        """Return zero states (one list per recurrent layer), as the full model starts with."""
        return [
            [keras.ops.zeros((batch_size, s), dtype) for s in sizes]
            for sizes, dtype in zip(self.state_sizes, self._state_dtypes, strict=True)
        ]

    def step(self, ids: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        """Advance by one character.

        Args:
            ids: ``(batch,)`` int32 ids of the current characters.
            states: States from :meth:`initial_state` or the previous step.

        Returns:
            ``(logits, states)``: float32 ``(batch, vocab)`` logits of the next
            character and the new states.
        """
        x = ids
        new_states = []
        rnn_index = 0
        for kind, layer in self._plan:
            if kind == "rnn":
                x, state = layer.cell(x, list(states[rnn_index]), training=False)
                new_states.append(list(keras.tree.flatten(state)))
                rnn_index += 1
            else:
                x = layer(x)
        return keras.ops.cast(x, "float32"), new_states


def _sample(logits: Any, key: Any, temperature: Any, top_k: Any) -> Any:
    """Draw one id from ``(vocab,)`` logits: top-k filter, then temperature (0: argmax)."""
    size = tf.shape(logits)[0]
    k = tf.where(top_k > 0, tf.minimum(top_k, size), size)
    kth = tf.math.top_k(logits, k).values[k - 1]
    logits = tf.where(logits < kth, tf.constant(-math.inf, logits.dtype), logits)
    greedy = tf.cast(tf.argmax(logits), tf.int32)
    safe = tf.where(temperature > 0, temperature, tf.ones_like(temperature))
    scaled = (logits - tf.reduce_max(logits)) / safe
    drawn = tf.cast(tf.random.stateless_categorical(scaled[None, :], 1, key)[0, 0], tf.int32)
    return tf.where(temperature > 0, drawn, greedy)


def _signature() -> list[Any]:
    return [
        tf.TensorSpec([None], tf.int32),  # prompt ids
        tf.TensorSpec([], tf.int32),  # number of characters
        tf.TensorSpec([2], tf.int64),  # sampling key
        tf.TensorSpec([], tf.float32),  # temperature
        tf.TensorSpec([], tf.int32),  # top_k (0: all)
    ]


def _host_step_sampler(stepper: CharStepper) -> Any:
    """The step path off TensorFlow: a compiled step, the loop and the draws on the host.

    The draws are TensorFlow's stateless ones (eager, on the host), with the same keys
    as the traced TensorFlow loop, so every backend samples the same way.
    """
    from zoo.backend import compiled

    step = compiled(stepper.step)

    def run(prompt: Any, n: Any, key: Any, temperature: Any, top_k: Any) -> Any:
        ids = np.asarray(prompt, np.int32)
        states = stepper.initial_state(1)
        for i in range(len(ids) - 1):
            _, states = step(ids[i : i + 1], states)
        token, out = int(ids[-1]), []
        for i in range(int(n)):
            logits, states = step(np.array([token], np.int32), states)
            logits = tf.constant(keras.ops.convert_to_numpy(logits)[0])
            key_i = tf.random.experimental.stateless_fold_in(key, tf.constant(i, tf.int64))
            token = int(_sample(logits, key_i, temperature, top_k))
            out.append(token)
        return np.asarray(out, np.int32)

    return run


def _step_sampler(stepper: CharStepper) -> Any:
    if keras.backend.backend() != "tensorflow":
        return _host_step_sampler(stepper)

    @tf.function(input_signature=_signature())
    def run(prompt: Any, n: Any, key: Any, temperature: Any, top_k: Any) -> Any:
        states = stepper.initial_state(1)
        last = tf.shape(prompt)[0] - 1

        def prime(i: Any, states: Any) -> Any:
            _, states = stepper.step(prompt[i][None], states)
            return i + 1, states

        _, states = tf.while_loop(lambda i, _: i < last, prime, (tf.constant(0), states))

        def body(i: Any, token: Any, states: Any, out: Any) -> Any:
            logits, states = stepper.step(token[None], states)
            key_i = tf.random.experimental.stateless_fold_in(key, tf.cast(i, tf.int64))
            token = _sample(logits[0], key_i, temperature, top_k)
            return i + 1, token, states, out.write(i, token)

        out = tf.TensorArray(tf.int32, size=n)
        _, _, _, out = tf.while_loop(lambda i, *_: i < n, body, (tf.constant(0), prompt[last], states, out))
        return out.stack()

    return run


def _window_logits(model: Any, context_length: int) -> Any:
    """``window -> last logits``: traced once on TensorFlow, an eager call elsewhere.

    Off TensorFlow, windows are right-padded to ``context_length`` so JAX compiles
    one input shape, not one per prompt length; a causal model's logits at a
    position do not depend on the positions after it.
    """
    if keras.backend.backend() == "tensorflow":
        return None

    def last(window: Any) -> Any:
        padded = np.zeros((1, max(context_length, len(window))), np.int32)
        padded[0, : len(window)] = window
        logits = model.predict_on_batch(padded)
        return tf.constant(np.asarray(logits[0, len(window) - 1], np.float32))

    return last


def _window_sampler(model: Any, context_length: int) -> Any:
    eager = _window_logits(model, context_length)
    if eager is not None:

        def run_eager(prompt: Any, n: int, key: Any, temperature: Any, top_k: Any) -> Any:
            ids, out = [int(i) for i in np.asarray(prompt)], []
            for i in range(n):
                key_i = tf.random.experimental.stateless_fold_in(key, tf.constant(i, tf.int64))
                token = int(_sample(eager(ids[-context_length:]), key_i, temperature, top_k))
                ids.append(token)
                out.append(token)
            return np.asarray(out, np.int32)

        return run_eager

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([2], tf.int64),
            tf.TensorSpec([], tf.int64),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def next_id(window: Any, key: Any, i: Any, temperature: Any, top_k: Any) -> Any:
        logits = tf.cast(model(window[None, :], training=False)[0, -1], tf.float32)
        key_i = tf.random.experimental.stateless_fold_in(key, i)
        return _sample(logits, key_i, temperature, top_k)

    def run(prompt: Any, n: int, key: Any, temperature: Any, top_k: Any) -> Any:
        ids = [int(i) for i in prompt]
        out = []
        for i in range(n):
            window = tf.constant(ids[-context_length:], tf.int32)
            token = int(next_id(window, key, tf.constant(i, tf.int64), temperature, top_k))
            ids.append(token)
            out.append(token)
        return np.asarray(out, np.int32)

    return run


# Compiled step samplers of the last few models (weakly keyed by id; tracing costs about a second).
_CACHE: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def _cached_step_sampler(model: Any) -> Any:
    with _CACHE_LOCK:
        hit = _CACHE.get(id(model))
        if hit is not None and hit[0]() is model:
            _CACHE.move_to_end(id(model))
            return hit[1]
    sampler = _step_sampler(CharStepper(model))
    with _CACHE_LOCK:
        _CACHE[id(model)] = (weakref.ref(model), sampler)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return sampler


def next_char_probabilities(
    model: Any, prefix: str, *, vocab: Sequence[str], temperature: float = 1.0
) -> Any:
    """Return the model's next-character distribution after ``prefix`` (full model, whole prefix).

    The reference the step-by-step path of :func:`generate` reproduces.

    Args:
        model: The character model.
        prefix: At least one character, all in ``vocab``.
        vocab: The character vocabulary.
        temperature: Softmax temperature (> 0).

    Returns:
        A float64 ``(len(vocab),)`` array of probabilities.
    """
    vocab = _check_vocab(vocab)
    if not isinstance(prefix, str) or not prefix:
        raise InputError("prefix must be a non-empty string")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise InputError(f"temperature must be a positive number, got {temperature!r}")
    ids = encode(prefix, vocab, unknown="raise")
    with no_grad():
        logits = keras.ops.convert_to_numpy(model(ids[None, :], training=False)).astype(np.float64)
    logits = logits[0, -1] / temperature
    probs = np.exp(logits - logits.max())
    return probs / probs.sum()


def _resolve_vocab(model: Any, vocab: Sequence[str] | str | None) -> Sequence[str]:
    """The vocab itself, or the char vocab of the named (or the model's default) weights."""
    if vocab is not None and not isinstance(vocab, str):
        return vocab
    from zoo import api

    name = vocab if vocab is not None else getattr(model, "name", "")
    entry = api.weights_entry(name)
    spec = entry.preprocessing
    if spec.get("tokenizer") != "char" or not isinstance(spec.get("vocab"), (list, tuple)):
        raise InputError(f"{entry.name} has no character vocabulary; pass vocab=[...] explicitly")
    return list(spec["vocab"])


#: Longest prompt :func:`generate` reads (it is fed one character at a time).
MAX_PROMPT_CHARS = 20_000


def _check_prompt(prompt: Any) -> None:
    """Refuse a prompt that is not a non-empty string of at most :data:`MAX_PROMPT_CHARS` characters."""
    if not isinstance(prompt, str) or not prompt:
        raise InputError(
            "prompt must be a non-empty string: the model needs at least one character to start from"
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"the prompt has {len(prompt):,} characters; the character model reads at most "
            f"{MAX_PROMPT_CHARS:,} (pass the last part of your text)"
        )


def _check_temperature(temperature: Any) -> None:
    """Refuse a sampling temperature that is not a finite number >= 0."""
    if (
        not isinstance(temperature, (int, float))
        or isinstance(temperature, bool)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise InputError(f"temperature must be a finite number >= 0 (0: greedy), got {temperature!r}")


def _prompt_ids(prompt: str, vocab: list[str]) -> Any:
    """Return the int64 ids of the prompt's characters, refusing characters outside the vocab."""
    ids = _lookup(prompt, vocab)
    if (ids < 0).any():
        chars = _unknown_chars(prompt, ids)
        raise InputError(
            f"prompt character(s) {', '.join(repr(c) for c in chars)} are not in the "
            f"model's {len(vocab)}-character vocabulary; remove or replace them"
        )
    return ids


def _sample_ids(
    model: Any,
    ids: Any,
    n_chars: int,
    *,
    method: str,
    context_length: int,
    seed: int,
    temperature: float,
    top_k: int | None,
) -> Any:
    """Return the ``n_chars`` ids sampled after the prompt ``ids`` on the ``"step"`` or ``"window"`` path."""
    key = tf.constant([seed, 0], tf.int64)
    temp = tf.constant(float(temperature), tf.float32)
    k = tf.constant(top_k or 0, tf.int32)
    prompt_ids = tf.constant(ids.astype(np.int32))
    if method == "step":
        return _cached_step_sampler(model)(prompt_ids, tf.constant(n_chars, tf.int32), key, temp, k)
    fixed = _fixed_length(model)
    if fixed is not None:
        if len(ids) < fixed:
            raise InputError(
                f"the model takes exactly {fixed} characters: give a prompt of at least "
                f"{fixed} characters, or use a model built with sequence_length=None"
            )
        context_length = fixed
    return _window_sampler(model, context_length)(prompt_ids, n_chars, key, temp, k)


def generate(
    model: Any,
    prompt: str,
    n_chars: int,
    *,
    vocab: Sequence[str] | str | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    top_k: int | None = None,
    method: str = "auto",
    context_length: int = DEFAULT_SEQUENCE_LENGTH,
) -> str:
    """Sample ``n_chars`` characters continuing ``prompt``.

    With ``method="step"`` (chosen by ``"auto"`` for recurrent chain models such
    as ``lstm_charlm``, see :class:`CharStepper`) the prompt is read once and
    each new character costs one step of the recurrent layers, all inside one
    traced ``tf.while_loop``: the distributions equal those of the full model
    on the whole prefix. ``method="window"`` (any model, e.g. one without
    recurrent state) re-runs the model on the last ``context_length``
    characters for every new character. Both paths draw character ``i`` with
    the stateless key ``fold_in((seed, 0), i)``, so a seed gives the same text
    every time (and the same text on both paths when their logits agree).

    Args:
        model: A character model (``(batch, T)`` ids -> ``(batch, T, len(vocab))`` logits).
        prompt: At least one character, all in ``vocab``.
        n_chars: Number of characters to generate (``>= 0``).
        vocab: The character vocabulary the model was trained with, or the name of
            the weights whose vocabulary it is; ``None`` takes the vocabulary of the
            default weights of the model's architecture (``model.name``, e.g.
            ``"lstm_charlm"`` for ``zoo.load("lstm")``).
        temperature: Softmax temperature; 0 is greedy (argmax) decoding.
        seed: Sampling seed; ``None`` draws a fresh one.
        top_k: Sample only among the ``top_k`` most likely characters (``None``: all).
        method: ``"auto"``, ``"step"`` or ``"window"``.
        context_length: Characters the ``"window"`` path shows the model (a model
            with a fixed input length uses that length and needs a prompt at least as long).

    Returns:
        The ``n_chars`` generated characters (without the prompt).

    Raises:
        InputError: On an empty prompt, prompt characters outside the vocab,
            ``n_chars < 0``, ``temperature < 0``, ``top_k < 1`` or a model whose
            output size is not ``len(vocab)``.
    """
    vocab = _check_vocab(_resolve_vocab(model, vocab))
    _check_prompt(prompt)
    n_chars = _check_int(n_chars, "n_chars", 0)
    _check_temperature(temperature)
    if top_k is not None:
        top_k = _check_int(top_k, "top_k", 1)
    if method not in ("auto", "step", "window"):
        raise InputError(f"method must be 'auto', 'step' or 'window', got {method!r}")
    context_length = _check_int(context_length, "context_length", 1)
    if seed is None:
        seed = secrets.randbits(63)
    seed = _check_int(seed, "seed", 0) & _SEED_MASK
    ids = _prompt_ids(prompt, vocab)
    _check_output_size(model, vocab)
    if n_chars == 0:
        return ""
    if method == "auto":
        method = "step" if CharStepper.supports(model) else "window"
    out = _sample_ids(
        model,
        ids,
        n_chars,
        method=method,
        context_length=context_length,
        seed=seed,
        temperature=temperature,
        top_k=top_k,
    )
    return decode(np.asarray(out), vocab)


def generate_text(
    name: str,
    prompt: str,
    n_chars: int,
    *,
    temperature: float = 1.0,
    seed: int | None = None,
    top_k: int | None = None,
) -> str:
    """Load a pretrained character model by name and sample ``n_chars`` characters after ``prompt``.

    Args:
        name: Weights or architecture name (``"lstm"``, ``"lstm_charlm.shakespeare"``).
        prompt: At least one character of the model's vocabulary.
        n_chars: Number of characters to generate.
        temperature: Softmax temperature; 0 is greedy.
        seed: Sampling seed; ``None`` draws a fresh one.
        top_k: Sample among the ``top_k`` most likely characters only.

    Returns:
        The generated characters (without the prompt).

    Raises:
        InputError: When the weights are not a character model, or on bad arguments.
    """
    from zoo import api, registry

    entry = api.weights_entry(name)
    spec = registry.get_spec(entry.architecture)
    if spec.task != "language-modeling":
        models = ", ".join(s.name for s in registry.list_architectures(task="language-modeling"))
        raise InputError(
            f"{name} is an {spec.task} model; generating text works on language models ({models})"
        )
    return generate(
        api.load(entry.name),
        prompt,
        n_chars,
        vocab=entry.name,
        temperature=temperature,
        seed=seed,
        top_k=top_k,
    )
