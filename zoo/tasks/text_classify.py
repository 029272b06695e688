"""Measure text classifiers (BERT and LSTM) the way the manifest records them.

``zoo evaluate NAME`` reaches :func:`evaluate_text` for entries with text
preprocessing; ``tools/train_text.py`` and ``tools/train.py`` call the same
function, so the number in the manifest is reproduced by the code that produced
it. Texts are tokenised with the entry's own vocabulary and truncation, each
batch padded to its longest text, and the model runs in inference mode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from zoo.errors import InputError
from zoo.weights.manifest import WeightsEntry


def evaluate_text(
    model: Any,
    entry: WeightsEntry,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    columns: dict[str, Any] | None = None,
    forward: Any = None,
) -> dict[str, float]:
    """Evaluate a text classifier on the entry's dataset (or ``data``) with the entry's tokeniser.

    Args:
        model: A text classifier (``include_top=True``): BERT, or an LSTM on word ids.
        entry: Its weights entry (labels, dataset, split, text preprocessing).
        data: Another labelled text dataset with the same labels.
        split: Split to use; defaults to the entry's (for ``mr``, ``"test"`` is
            fold 0 of zoo.data's fixed 10-fold split).
        data_dir: Data directory for named datasets (overrides ``ZOO_DATA_DIR``).
        batch_size: Evaluation batch size.
        columns: CSV/TSV/JSONL ``data``: ``zoo.data.load``'s ``text_column`` and ``label_column``
            (default: those the entry's own dataset was read from).
        forward: A batch of token ids -> logits, in place of the model's compiled forward
            function (e.g. :func:`zoo.export.onnx_forward`).

    Returns:
        ``top1_accuracy``, ``top1_error`` (percent) and ``num_examples``.

    Raises:
        InputError: For entries without labels (text encoders: nothing to classify).
    """
    import zoo.data
    from zoo.tasks.classify import (
        classification_metrics,
        data_split,
        label_mapping,
        own_data_options,
        with_model_labels,
    )

    if entry.num_classes is None:
        raise InputError(
            f"{entry.name} is a text encoder without labels; evaluate a classifier "
            "fine-tuned on it (e.g. zoo finetune NAME --data mr)"
        )
    name, mapping = str(data or entry.dataset["name"]), None
    data_dir = None if data_dir is None else str(data_dir)
    options = own_data_options(entry) if data is None else {}
    options.update(columns or {})
    if data is not None:  # its classes are numbered by name: score them as the model's
        info = zoo.data.info(name, data_dir=data_dir, **options)
        split = data_split(entry, info, split)
        mapping = label_mapping(info.label_names, entry.labels, name, entry.name)
    split = split or entry.dataset["split"]
    dataset = labelled_text(entry, name, split, batch_size=batch_size, data_dir=data_dir, options=options)
    return classification_metrics(model, with_model_labels(dataset, mapping), forward)


def labelled_text(
    entry: WeightsEntry,
    data: str,
    split: str,
    *,
    batch_size: int = 256,
    data_dir: str | None = None,
    options: dict[str, Any] | None = None,
) -> Any:
    """Batches ``(model_inputs, label)`` of text ``data`` as ``entry``'s model reads them.

    Its tokeniser's vocabulary is the one beside the weights; WordPiece models get
    ids, token types and masks, word-level models padded word ids. ``options``:
    ``zoo.data.load``'s ``kfold``, ``text_column`` and ``label_column``; with
    ``label_column=None`` (a table without labels) the batches are the model inputs alone.
    """
    import zoo.data
    from zoo.preprocessing.bind import local_text_spec

    spec, options = local_text_spec(entry), dict(options or {})
    if spec["tokenizer"] == "wordpiece":
        return text_dataset(data, spec, split=split, batch_size=batch_size, data_dir=data_dir, **options)
    labelled = options.get("label_column", "label") is not None
    ds = zoo.data.load(
        data,
        split,
        batch_size=batch_size,
        preprocessing=spec,
        as_supervised=labelled,
        data_dir=data_dir,
        **options,
    )
    return ds if labelled else ds.map(lambda element: element["text"])


def text_dataset(
    data: str,
    spec: dict[str, Any],
    *,
    split: str = "train",
    kfold: tuple[int, int] | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    limit: int | None = None,
    data_dir: str | None = None,
    per_epoch: bool = False,
    text_column: str = "text",
    label_column: str | None = "label",
) -> Any:
    """Batches ``(bert_inputs, label)`` of a labelled text dataset, each padded to its longest text.

    Args:
        data: Named dataset (``"mr"``), ``tfds:NAME`` or a text folder / CSV.
        spec: A WordPiece text spec with a local vocab path (see :func:`wordpiece_spec`).
        split: Split to read.
        kfold: ``(k, i)`` for datasets without splits.
        batch_size: Batch size.
        shuffle: Reshuffle every epoch (seeded).
        seed: Seed of the shuffle and of the ``limit`` subset.
        limit: Keep a fixed random subset of this many examples.
        data_dir: Data directory for named datasets.
        per_epoch: With ``shuffle``, return a function ``epoch -> dataset`` whose order is a
            function of ``(seed, epoch)``, so a resumed run sees the same batches.
        text_column: CSV/TSV/JSONL data only: the column holding the text.
        label_column: CSV/TSV/JSONL data only: the column holding the label; ``None`` reads
            a table without labels, and the batches are the ``bert_inputs`` alone.
    """
    import tensorflow as tf

    import zoo.data
    from zoo.preprocessing.wordpiece import bert_inputs

    ds = zoo.data.load(
        data,
        split,
        kfold=kfold,
        preprocessing=spec,
        as_supervised=label_column is not None,
        data_dir=data_dir,
        shuffle=bool(limit),
        seed=seed,
        text_column=text_column,
        label_column=label_column,
    )
    if label_column is None:
        ds = ds.map(lambda element: element["text"])
    if limit:
        ds = ds.take(limit)  # drawn before tokenising: only the subset is cached
    ds = ds.cache()

    def tokens(ids: Any, *label: Any) -> Any:
        return (bert_inputs(ids), *label) if label else bert_inputs(ids)

    def batches(ds: Any) -> Any:
        return (
            ds.batch(batch_size)
            .map(tokens, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    if shuffle and per_epoch:
        return lambda epoch: batches(
            ds.shuffle(100_000, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
        )
    if shuffle:
        ds = ds.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
    return batches(ds)


def predict_texts(
    model: Any,
    entry: WeightsEntry,
    texts: list[str],
    *,
    top_k: int = 5,
    batch_size: int = 64,
    forward: Any = None,
) -> list[Any]:
    """Classify raw texts with a text classifier and its entry's own tokeniser and labels.

    Args:
        model: A text classifier (BERT with a head, or an LSTM on word ids).
        entry: Its weights entry (labels and text preprocessing).
        texts: The texts, one example each.
        top_k: How many labels per text.
        batch_size: Texts per batch (memory does not grow with the number of texts).
        forward: A batch of token ids -> the model's outputs, in place of Keras'
            ``predict_on_batch`` (e.g. :func:`zoo.export.onnx_forward`).

    Returns:
        One :class:`zoo.tasks.classify.Prediction` per text, in order.
    """
    import numpy as np
    import tensorflow as tf

    from zoo.preprocessing import local_text_spec, make_transform
    from zoo.preprocessing.wordpiece import bert_inputs
    from zoo.tasks.classify import _probabilities, _top

    if entry.num_classes is None:
        raise InputError(f"{entry.name} has no labels to predict; give a text classifier")
    spec = local_text_spec(entry)
    encode = make_transform(spec)
    raw = [t.encode("utf-8", "replace") for t in texts]  # lone surrogates become U+FFFD, not a crash
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(raw, tf.string, shape=[len(raw)])).map(encode)
    ds = ds.padded_batch(batch_size)
    if spec["tokenizer"] == "wordpiece":
        ds = ds.map(bert_inputs)
    labels = entry.labels or tuple(str(i) for i in range(entry.num_classes))
    batches = ds.as_numpy_iterator()  # NumPy for every backend
    run = forward or model.predict_on_batch
    rows = (row for batch in batches for row in _probabilities(model, np.asarray(run(batch))))
    return [_top(text, row, labels, top_k) for text, row in zip(texts, rows, strict=True)]


def encode_texts(entry: WeightsEntry, texts: Sequence[str]) -> dict[str, Any]:
    """Token ids of ``texts`` as the entry's text classifier takes them, made as :func:`predict_texts` does.

    Each text is tokenised with the entry's own vocabulary, lower-casing and truncation;
    the batch is padded on the right with id 0 to its longest text.

    Args:
        entry: A weights entry with text preprocessing.
        texts: The texts, one example each.

    Returns:
        NumPy int32 arrays ``(len(texts), longest)``: ``input_ids``, ``token_type_ids``
        and ``attention_mask`` for WordPiece (BERT) entries, ``input_ids`` alone otherwise.
    """
    import tensorflow as tf

    from zoo.preprocessing import local_text_spec, make_transform
    from zoo.preprocessing.wordpiece import bert_inputs

    if isinstance(texts, str) or not texts:
        raise InputError("texts must be a non-empty list of strings")
    spec = local_text_spec(entry)
    raw = [t.encode("utf-8", "replace") for t in texts]
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(raw, tf.string, shape=[len(raw)]))
    ids = next(iter(ds.map(make_transform(spec)).padded_batch(len(raw)))).numpy()
    inputs = bert_inputs(ids)  # int32, cut to the longest text
    return inputs if spec["tokenizer"] == "wordpiece" else {"input_ids": inputs["input_ids"]}
