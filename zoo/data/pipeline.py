"""``zoo.data.load``: one entry point from a name or path to a fast ``tf.data`` pipeline.

Element convention (the same for the local copies and the tensorflow-datasets
fallback, so the two give identical ``element_spec``):

* image classification: ``{"image": uint8 (H, W, C), "label": int64 ()}``;
* text classification: ``{"text": string (), "label": int64 ()}``;
* language modelling (``tiny_shakespeare``): ``{"text": string ()}``, one element
  holding the whole split;
* ``as_supervised=True``: the tuple ``(input, label)`` instead of the dict.

With a ``preprocessing`` spec or callable, the ``"image"`` / ``"text"`` value is
replaced by its transform (float32 image, or int32 token ids).

Pipeline stages, in order (every ``map`` uses ``num_parallel_calls=AUTOTUNE``
and keeps element order deterministic, so a given ``seed`` always gives the
same order and the same augmentations):

1. source: file paths or in-memory uint8 arrays (cheap elements);
2. shuffle, seeded, reshuffled each epoch (here only when not caching: shuffling
   cheap elements lets the buffer span the whole split). By default TensorFlow draws
   each pass's order from the seed and the number of passes this dataset object has
   made; with ``initial_epoch`` the order (and the augmentation seeds) of each pass is
   a function of ``(seed, epoch number)``, so a resumed run gets an unbroken run's epochs;
3. parallel decode of encoded elements. User image folders drop files that
   fail to decode despite a good header, with a TensorFlow log warning (their cardinality is then unknown);
4. ``cache`` of decoded elements, then the shuffle when caching;
5. batch: before augmentation and preprocessing when the images have a static
   shape and these are built-in augmentations / spec dicts, which then run once
   per batch (vectorised); otherwise after them. Variable-length token ids are
   padded with 0;
6. augment (uint8 images, stateless seeds from ``tf.data.Dataset.random(seed)``);
7. preprocess (spec or callable);
8. ``(input, label)`` tuples with ``as_supervised=True``;
9. ``prefetch(AUTOTUNE)``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo._lazy import tf
from zoo.data import catalog, folders
from zoo.data._paths import resolve_data_dir
from zoo.data.augment import get_augment, is_builtin
from zoo.data.catalog import DatasetInfo, NamedDataset
from zoo.data.tfds_source import PREFIX, TfdsRef, is_tfds_string, load_tfds, parse_tfds, tfds_info
from zoo.errors import DataError
from zoo.preprocessing.specs import make_transform

__all__ = ["epoch_numbers", "load", "info", "kfold", "split_slice"]

_SOURCES = ("auto", "local", "tfds")
_COLOR_CHANNELS = {"rgb": 3, "grayscale": 1}
#: Largest shuffle buffer used by default for already-decoded elements.
DECODED_SHUFFLE_BUFFER = 10_000


@dataclass
class _Source:
    """A dataset before shuffling, decoding and batching."""

    ds: Any
    info: DatasetInfo
    input_key: str
    label_key: str | None
    decode: Callable[[Any], Any] | None = None
    size: int | None = None
    cheap_elements: bool = True  # encoded bytes / paths / small arrays: full-size shuffle ok
    base_dir: Path | None = None
    skip_decode_errors: bool = False
    decode_batch: Callable[[Any], Any] | None = None  # decodes a whole batch of encoded elements


# ---------------------------------------------------------------------------
# Named datasets
# ---------------------------------------------------------------------------


def _named_local(entry: NamedDataset, split: str, data_dir: Path, kfold: tuple[int, int] | None) -> _Source:
    name = entry.info.name
    info = dataclasses.replace(entry.info, location=str(data_dir))
    if name in ("mnist", "fashion_mnist"):
        folder = "mnist" if name == "mnist" else "fashion-mnist"
        images, labels = catalog.mnist_like(data_dir, folder, split)
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        return _Source(ds, info, "image", "label", size=len(labels))
    if name == "cifar10":
        images, labels = catalog.cifar10_arrays(data_dir, split)
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        return _Source(ds, info, "image", "label", size=len(labels))
    if name == "tiny_shakespeare":
        text = catalog.shakespeare_text(data_dir, split)
        ds = tf.data.Dataset.from_tensors({"text": tf.constant(text.encode("utf-8"))})
        return _Source(ds, info, "text", None, size=1)
    if name == "mr":
        texts, labels = catalog.mr_examples(data_dir, split, kfold)
        if kfold is not None:
            info = dataclasses.replace(info, splits=catalog.mr_split_sizes(data_dir, kfold))
        ds = tf.data.Dataset.from_tensor_slices({"text": tf.constant(texts, tf.string), "label": labels})
        return _Source(ds, info, "text", "label", size=len(labels))
    raise AssertionError(f"no local reader for {name}")  # pragma: no cover


def _join_texts(ds: Any) -> Any:
    texts = ds.map(lambda x: x["text"])
    joined = texts.reduce(tf.constant("", tf.string), lambda acc, text: acc + text)
    return tf.data.Dataset.from_tensors({"text": joined})


def _named_tfds(entry: NamedDataset, split: str, hint: str = "") -> _Source:
    name = entry.info.name
    assert entry.tfds_name is not None
    ref = TfdsRef(entry.tfds_name)
    info = dataclasses.replace(entry.info, location=PREFIX + entry.tfds_name)
    if name == "tiny_shakespeare":
        expr = "train" if split == "train" else "validation+test"
        ds, _ = load_tfds(ref, expr, hint=hint)
        return _Source(_join_texts(ds), info, "text", None, size=1)
    ds, _ = load_tfds(ref, split, hint=hint)
    ds = ds.map(
        lambda x: {"image": x["image"], "label": tf.cast(x["label"], tf.int64)},
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _Source(ds, info, "image", "label", size=_cardinality(ds), cheap_elements=False)


def _named(
    entry: NamedDataset,
    split: str | None,
    data_dir: Path | None,
    source: str,
    kfold: tuple[int, int] | None,
) -> _Source:
    split = catalog.canonical_split(entry, split or "train")
    if kfold is not None and not entry.kfold:
        raise DataError(
            f"dataset {entry.info.name!r} has official splits; kfold=(k, i) is only for "
            "datasets without one (mr, or a flat folder of your own)"
        )
    if kfold is not None:
        _check_kfold(kfold)
    local = entry.has_local(data_dir)
    if not local and source == "auto" and data_dir is not None:
        present = [f for f in entry.local_files if (data_dir / f).is_file()]
        if present:
            warnings.warn(
                f"incomplete local copy of {entry.info.name!r} in {data_dir} (has "
                f"{', '.join(present)}; needs {', '.join(entry.local_files)}): not using it",
                folders.DataWarning,
                stacklevel=4,
            )
    if source == "local" or (source == "auto" and local):
        if not local:
            where = str(data_dir) if data_dir is not None else "(no data directory set)"
            raise DataError(
                f"no local copy of {entry.info.name!r} in {where}: expected "
                f"{', '.join(entry.local_files)} there; set ZOO_DATA_DIR, or give --data-dir "
                "(data_dir= in Python)"
            )
        assert data_dir is not None
        return _named_local(entry, split, data_dir, kfold)
    if entry.tfds_name is None:
        where = f"in {data_dir}" if data_dir is not None else "(ZOO_DATA_DIR is not set)"
        raise DataError(
            f"dataset {entry.info.name!r} is not in tensorflow-datasets and no local copy was "
            f"found {where}: put {' and '.join(entry.local_files)} under the data directory "
            "(set ZOO_DATA_DIR, or give --data-dir; data_dir= in Python)"
        )
    if kfold is not None:
        raise DataError(f"kfold is only available for the local copy of {entry.info.name!r}")
    where = f"in {data_dir}" if data_dir is not None else "because ZOO_DATA_DIR is not set"
    hint = f"; no local copy of {entry.info.name!r} was found {where} (set ZOO_DATA_DIR to use one)"
    try:
        return _named_tfds(entry, split, hint if source == "auto" else "")
    except DataError as err:
        if source == "tfds":  # asked for tensorflow-datasets itself: its failure is the whole story
            raise
        raise DataError(
            f"no local copy of {entry.info.name!r} was found {where}: set ZOO_DATA_DIR (or give "
            f"--data-dir, data_dir= in Python) to the folder holding {', '.join(entry.local_files[:3])}"
            f"{' ...' if len(entry.local_files) > 3 else ''}; the fallback also failed: {err}"
        ) from err


# ---------------------------------------------------------------------------
# tfds:NAME and user data
# ---------------------------------------------------------------------------


def _cardinality(ds: Any) -> int | None:
    n = int(ds.cardinality())
    return n if n >= 0 else None


def _generic_tfds(ref: TfdsRef, split: str | None) -> _Source:
    if ref.split and split and ref.split != split:
        raise DataError(
            f"conflicting splits: {str(ref)!r} names {ref.split!r} but split={split!r}; give the split once"
        )
    split = ref.split or split or "train"
    ds, tinfo = load_tfds(ref, split)
    fields = tfds_info(ref, tinfo)
    spec = ds.element_spec
    if not isinstance(spec, dict) or not spec:
        raise DataError(f"{str(ref)!r} does not yield a dict of features; use tfds.load for it directly")
    keys = list(spec)
    supervised = fields["supervised_keys"]
    input_key = (
        supervised[0]
        if supervised
        else ("image" if "image" in keys else "text" if "text" in keys else keys[0])
    )
    task = "image-classification" if input_key == "image" else "text-classification"
    info = DatasetInfo(task=task, **fields)
    label_key = supervised[1] if supervised else None
    return _Source(ds, info, input_key, label_key, size=_cardinality(ds), cheap_elements=False)


def _folder_info(data: folders.FolderData, color_mode: str, size: Any) -> DatasetInfo:
    labelled = data.labelled
    if data.kind == "image":
        channels = _COLOR_CHANNELS[color_mode]
        shape = (*size, channels) if size else (None, None, channels)
        features = {"image": f"uint8 {shape}"}
        task = "image-classification"
    else:
        features = {"text": "string ()"}
        task = "text-classification"
    if labelled:
        features["label"] = f"int64 () in [0, {len(data.label_names)})"
    return DatasetInfo(
        name=str(data.root),
        task=task,
        splits={k: len(v[1]) for k, v in data.splits.items()},
        label_names=data.label_names,
        features=features,
        supervised_keys=((next(iter(features))), "label") if labelled else None,
        source=f"user data ({data.layout} layout)",
        location=str(data.root),
        notes=f"{len(data.skipped)} file(s)/row(s) skipped while scanning" if data.skipped else "",
    )


def _upright(image: Any, orientation: Any) -> Any:
    """Turn a decoded image as its EXIF orientation (1-8) says, as Pillow's exif_transpose does."""

    def transpose(x: Any) -> Any:
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,  # 1: upright
        lambda: tf.image.flip_left_right(image),  # 2
        lambda: tf.image.rot90(image, 2),  # 3
        lambda: tf.image.flip_up_down(image),  # 4
        lambda: transpose(image),  # 5
        lambda: tf.image.rot90(image, 3),  # 6: stored turned 90 degrees counter-clockwise
        lambda: tf.image.rot90(transpose(image), 2),  # 7
        lambda: tf.image.rot90(image, 1),  # 8
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    return tf.switch_case(index, branches)


def _folder_decoder(
    channels: int, size: tuple[int, int] | None, image_size: tuple[int, int] | None
) -> Callable[[Any], Any]:
    def decode(element: Any) -> Any:
        raw = tf.io.read_file(element["image"])
        image = tf.cond(
            tf.io.is_jpeg(raw),
            lambda: tf.io.decode_jpeg(raw, channels=channels, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(raw, channels=channels, expand_animations=False),
        )
        if "orientation" in element:
            image = _upright(image, element["orientation"])
        if image_size is not None:
            image = tf.image.resize(image, image_size, antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            image = tf.ensure_shape(image, (*image_size, channels))
        elif size is not None:
            image = tf.ensure_shape(image, (*size, channels))
        else:
            image = tf.ensure_shape(image, (None, None, channels))
        return {"image": image, "label": element["label"]}

    return decode


def _folder(
    path: Path,
    split: str | None,
    *,
    kfold: tuple[int, int] | None,
    image_size: tuple[int, int] | None,
    color_mode: str,
    text_column: str,
    label_column: str | None,
) -> _Source:
    if color_mode not in _COLOR_CHANNELS:
        raise DataError(f"color_mode must be 'rgb' or 'grayscale', got {color_mode!r}")
    if image_size is not None:
        image_size = _check_image_size(image_size)
    data = folders.scan(path, text_column=text_column, label_column=label_column)
    _check_columns(path, data.layout, text_column, label_column)
    size = image_size or data.uniform_size()
    info = _folder_info(data, color_mode, size)
    wanted = (split or "train").strip().lower()
    wanted = folders.SPLIT_NAMES.get(wanted, wanted)
    if kfold is not None:
        if len(data.splits) != 1 or "train" not in data.splits:
            raise DataError(
                f"{str(data.root)!r} already has splits {sorted(data.splits)}; kfold=(k, i) "
                "is only for data without splits"
            )
        if wanted not in ("train", "test"):
            raise DataError(f"with kfold, split must be 'train' or 'test', got {split!r}")
        _check_kfold(kfold)
        items, labels = data.splits["train"]
        train, test = catalog.fold_indices(len(items), kfold[0], kfold[1], seed=0)
        index = train if wanted == "train" else test
        items = [items[i] for i in index]
        labels = [labels[i] for i in index]
        info = dataclasses.replace(info, splits={"train": len(train), "test": len(test)})
    else:
        if wanted not in data.splits:
            raise DataError(
                f"{str(data.root)!r} has no split {split!r}; its splits are "
                f"{', '.join(sorted(data.splits))}"
                + (" (use kfold=(k, i) to hold out a test fold)" if data.layout == "flat" else "")
            )
        items, labels = data.splits[wanted]
    labels_tensor = tf.constant(labels, tf.int64, shape=[len(labels)])
    orientations = data.orientation_of(items) if data.kind == "image" else []
    if data.kind == "image":  # file names as the OS gives them (bytes): names need not be UTF-8
        items = [os.fsencode(item) if isinstance(item, str | os.PathLike) else item for item in items]
    items_tensor = tf.constant(items, tf.string, shape=[len(items)])
    if data.kind == "image":
        elements = {"image": items_tensor, "label": labels_tensor}
        if any(o != 1 for o in orientations):
            elements["orientation"] = tf.constant(orientations, tf.int32, shape=[len(items)])
        ds = tf.data.Dataset.from_tensor_slices(elements)
        decoder = _folder_decoder(_COLOR_CHANNELS[color_mode], size, image_size)
        return _Source(
            ds,
            info,
            "image",
            "label",
            decoder,
            len(items),
            base_dir=data.root,
            skip_decode_errors=True,
        )
    elements = {"text": items_tensor}
    if data.labelled:
        elements["label"] = labels_tensor
    ds = tf.data.Dataset.from_tensor_slices(elements)
    label_key = "label" if data.labelled else None
    return _Source(ds, info, "text", label_key, size=len(items), base_dir=data.root)


# ---------------------------------------------------------------------------
# Split slices: "test[:1000]", "train[10%:]"
# ---------------------------------------------------------------------------

_SLICE = re.compile(r"(?P<base>[^\[\]]*?)\s*\[\s*(?P<start>-?\d+%?)?\s*:\s*(?P<stop>-?\d+%?)?\s*\]")
_SLICE_FORM = "NAME or NAME[START:STOP] (whole numbers or percentages, like 'test[:1000]' or 'train[-10%:]')"


def split_slice(split: str | None) -> tuple[str | None, tuple[str | None, str | None] | None]:
    """Split ``"test[:1000]"`` into ``("test", (None, "1000"))``; a plain split has no bounds.

    The slice is tensorflow-datasets' syntax, in examples or percentages of the split (rounded
    to the closest example), Python's rules for negative and out-of-range bounds.

    Raises:
        DataError: A split with brackets that is not ``NAME[START:STOP]``, or a percentage over 100.
    """
    if split is None or "[" not in split and "]" not in split:
        return split, None
    match = _SLICE.fullmatch(split.strip())
    if match is None or not match["base"].strip():
        raise DataError(f"split {split!r} is not {_SLICE_FORM}")
    for bound in (match["start"], match["stop"]):
        if bound and bound.endswith("%") and abs(int(bound[:-1])) > 100:
            raise DataError(f"split {split!r}: {bound} is over 100%; expected {_SLICE_FORM}")
    return match["base"].strip(), (match["start"], match["stop"])


def _bound(bound: str | None, n: int) -> int | None:
    if bound is None or not bound.endswith("%"):
        return None if bound is None else int(bound)
    return round(int(bound[:-1]) * n / 100)


def _sliced(src: _Source, split: str, bounds: tuple[str | None, str | None] | None, base: str) -> _Source:
    """``src`` cut to the examples ``split``'s ``bounds`` select (:func:`split_slice`)."""
    if bounds is None:
        return src
    if src.info.unit != "examples":
        raise DataError(
            f"{src.info.name!r} holds each split as one text counted in {src.info.unit}: "
            f"split {split!r} selects examples; use the whole split {base!r}"
        )
    n = src.size if src.size is not None else src.info.splits.get(base)
    if n is None:
        raise DataError(f"the size of {src.info.name!r} {base!r} is unknown: slice it with tfds:NAME:{split}")
    chosen = range(n)[slice(*(_bound(b, n) for b in bounds))]
    if not chosen:
        raise DataError(f"split {split!r} selects no examples: {base!r} has {n:,}")
    ds = src.ds.skip(chosen.start).take(len(chosen))
    return dataclasses.replace(src, ds=ds, size=len(chosen))


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


def _check_kfold(kfold: Any) -> tuple[int, int]:
    if (
        not isinstance(kfold, (tuple, list))
        or len(kfold) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in kfold)
    ):
        raise DataError(f"kfold must be a (k, fold) pair of integers, got {kfold!r}")
    k, fold = kfold
    if k < 2 or not 0 <= fold < k:
        raise DataError(f"kfold=(k, fold) needs k >= 2 and 0 <= fold < k, got {kfold!r}")
    return k, fold


def _check_image_size(image_size: Any) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size)
    ):
        raise DataError(f"image_size must be (height, width) positive ints, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _is_path_like(name: Any) -> bool:
    """Whether ``name`` means a path rather than a dataset name.

    ``PathLike`` objects and strings with a separator, a leading ``.``/``~`` or a
    table suffix are paths; a bare word is a path only when it is not a dataset
    name and exists (so a folder called ``mnist`` in the working directory does
    not shadow the named dataset: write ``./mnist``).
    """
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str):
        return False
    if (
        os.sep in name
        or "/" in name
        or name.startswith((".", "~"))
        or name.lower().endswith(tuple(folders.TABLE_SUFFIXES))
    ):
        return True
    return catalog.lookup_named(name) is None and Path(name).exists()


def data_reference(name: str | os.PathLike[str]) -> str:
    """``name`` as a record keeps it: a dataset name or ``tfds:`` string as given, a path made absolute.

    So a model card's data is found again from any working directory.
    """
    if _is_dataset_name(name):
        return str(name)
    return str(Path(name).expanduser().resolve())


def _is_dataset_name(name: Any) -> bool:
    """Whether ``name`` names a dataset (a ``tfds:`` string or a named one) rather than a path."""
    return is_tfds_string(name) or (isinstance(name, str) and bool(name.strip()) and not _is_path_like(name))


#: The columns CSV/TSV/JSONL data is read from unless told otherwise.
DEFAULT_COLUMNS = ("text", "label")


def table_columns(text_column: str = "text", label_column: str | None = "label") -> dict[str, Any]:
    """:func:`load`'s column arguments for CSV/TSV/JSONL data, or ``{}`` for the default columns."""
    if (text_column, label_column) == DEFAULT_COLUMNS:
        return {}
    return {"text_column": text_column, "label_column": label_column}


def _check_columns(name: Any, layout: str | None, text_column: str, label_column: str | None) -> None:
    """Refuse columns other than the default for data that is not a table (``layout``: of a scan)."""
    if layout == "table" or (text_column, label_column) == DEFAULT_COLUMNS:
        return
    what = "a folder of examples in <label>/ sub-folders" if layout else "a named dataset"
    raise DataError(
        f"--text-column/--label-column (text_column=/label_column=) choose the columns of CSV/TSV/JSONL "
        f"data; {str(name)!r} is {what}: leave them out"
    )


def _source(
    name: Any,
    split: str | None,
    data_dir: Any,
    source: str,
    kfold: tuple[int, int] | None,
    image_size: Any,
    color_mode: str,
    text_column: str,
    label_column: str | None,
) -> _Source:
    if source not in _SOURCES:
        raise DataError(f"source must be one of {list(_SOURCES)}, got {source!r}")
    if not isinstance(name, (str, os.PathLike)):
        raise DataError(f"dataset must be a name, 'tfds:NAME' or a path, got {type(name).__name__}")
    if isinstance(name, str) and not name.strip():
        raise DataError("empty dataset name: pass a name such as 'mnist', 'tfds:NAME' or a path")
    if _is_dataset_name(name):
        _check_columns(name, None, text_column, label_column)
    if is_tfds_string(name):
        if kfold is not None:
            raise DataError("kfold=(k, i) is not available for tfds: datasets")
        return _generic_tfds(parse_tfds(name), split)
    base, bounds = split_slice(split)  # tfds: slices its own above
    if isinstance(name, str) and not _is_path_like(name):
        entry = catalog.get_named(name)
        src = _named(entry, base, resolve_data_dir(data_dir), source, kfold)
        return _sliced(src, str(split), bounds, catalog.canonical_split(entry, base or "train"))
    options = {"image_size": image_size, "color_mode": color_mode}
    options.update(text_column=text_column, label_column=label_column)
    src = _folder(Path(name), base, kfold=kfold, **options)
    return _sliced(src, str(split), bounds, base or "train")


# ---------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------


def _map_key(key: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(element: Any) -> Any:
        out = dict(element)
        out[key] = fn(element[key])
        return out

    return apply


def _preprocess_fn(preprocessing: Any, src: _Source) -> Callable[[Any], Any]:
    if callable(preprocessing):
        return preprocessing
    if not isinstance(preprocessing, dict):
        raise DataError(
            f"preprocessing must be a spec dict or a callable, got {type(preprocessing).__name__}"
        )
    try:
        transform = make_transform(preprocessing, base_dir=src.base_dir)
    except (ValueError, NotImplementedError) as err:
        raise DataError(f"invalid preprocessing spec: {err}") from err
    wanted = "image" if src.input_key == "image" else "text"
    if preprocessing["type"] != wanted:
        raise DataError(
            f"a {preprocessing['type']!r} preprocessing spec cannot prepare the "
            f"{src.input_key!r} inputs of {src.info.name!r}"
        )
    return transform


def _batch(ds: Any, src: _Source, batch_size: int, drop_remainder: bool) -> Any:
    spec = ds.element_spec
    top = spec if isinstance(spec, dict) else {}
    flat = tf.nest.flatten(spec)
    if all(isinstance(s, tf.TensorSpec) and s.shape.is_fully_defined() for s in flat):
        return ds.batch(
            batch_size,
            drop_remainder=drop_remainder,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    image = top.get(src.input_key)
    if isinstance(image, tf.TensorSpec) and image.shape.rank == 3:
        if not image.shape.is_fully_defined():
            raise DataError(
                f"cannot batch images of different sizes from {src.info.name!r}: pass "
                "image_size=(H, W) (user folders) or a preprocessing spec with resize [H, W] "
                "or center_crop, or leave batch_size=None"
            )
    try:
        return ds.padded_batch(batch_size, drop_remainder=drop_remainder)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"cannot batch the elements of {src.info.name!r} ({err}); "
            "leave batch_size=None and batch them yourself"
        ) from err


def _check_load_args(batch_size: Any, shuffle_buffer: Any, initial_epoch: Any = None) -> None:
    """Raise :class:`DataError` on an invalid ``batch_size``, ``shuffle_buffer`` or ``initial_epoch``."""
    if batch_size is not None and (
        not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
    ):
        raise DataError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if shuffle_buffer is not None and (not isinstance(shuffle_buffer, int) or shuffle_buffer < 1):
        raise DataError(f"shuffle_buffer must be a positive integer, got {shuffle_buffer!r}")
    if initial_epoch is not None and (
        not isinstance(initial_epoch, int) or isinstance(initial_epoch, bool) or initial_epoch < 0
    ):
        raise DataError(f"initial_epoch must be a non-negative integer or None, got {initial_epoch!r}")


def _augment_fn(augment: Any, src: _Source) -> Callable[[Any, Any], Any] | None:
    """The augmentation function ``augment`` names (``None`` for none), checked against ``src``."""
    if augment is None:
        return None
    if src.input_key != "image":
        raise DataError(f"augment applies to images; {src.info.name!r} has no 'image' input")
    try:
        return get_augment(augment)
    except ValueError as err:
        raise DataError(str(err)) from err


def _element_fns(
    src: _Source, preprocessing: Any, augment: Any, as_supervised: bool
) -> tuple[Callable[[Any], Any] | None, Callable[[Any, Any], Any] | None]:
    """Check the per-element options of :func:`load` against ``src``; return ``(transform, augment_fn)``."""
    if as_supervised and src.label_key is None:
        raise DataError(f"{src.info.name!r} has no labels: as_supervised=True needs them")
    transform = _preprocess_fn(preprocessing, src) if preprocessing is not None else None
    return transform, _augment_fn(augment, src)


def _batch_ops_ok(augment: Any, preprocessing: Any) -> bool:
    """Whether augmentation and preprocessing may run once per batch: built-in ones and spec dicts only."""
    return (augment is None or is_builtin(augment)) and (
        preprocessing is None or isinstance(preprocessing, dict)
    )


def _shuffle_buffer_size(src: _Source, shuffle_buffer: int | None) -> int:
    """The shuffle buffer size: ``shuffle_buffer``, else a default suited to the elements of ``src``."""
    if shuffle_buffer is None:
        full = src.size if src.size is not None else DECODED_SHUFFLE_BUFFER
        shuffle_buffer = full if src.cheap_elements else min(full, DECODED_SHUFFLE_BUFFER)
    return max(1, shuffle_buffer)


def _epoch_seed(seed: int, epoch: Any) -> Any:
    """The seed of one epoch's draws: a function of ``(seed, epoch)`` (an int64 tensor)."""
    return tf.constant(seed, tf.int64) * 1_000_003 + epoch


def _without_global_seed() -> None:
    """Inside a dataset function: draw from the op seed alone, whatever global seed the process set.

    The epoch's draws then depend on ``(seed, epoch)`` only; TensorFlow also cannot combine a
    global seed with an op seed that is a tensor, as the epoch's is.
    """
    tf.compat.v1.get_default_graph().seed = None


def epoch_numbers(initial_epoch: int) -> Any:
    """A one-element dataset of the epoch number: ``initial_epoch`` on its first pass, one more each pass.

    The number counts the iterators made on the dataset (each ``fit`` epoch makes one), so a
    pipeline that maps it to its draws gives a resumed run the epochs of an unbroken one.
    """
    counter = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False, name="zoo_data_epoch")

    def next_epoch(_: Any) -> Any:
        return counter.assign_add(1) - 1

    return tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(next_epoch)


def _shuffled(ds: Any, buffer: int, seed: int, initial_epoch: int | None) -> Any:
    """``ds`` shuffled and reshuffled every pass: by TensorFlow, or keyed by the epoch (:func:`load`)."""
    if initial_epoch is None:
        return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    def epoch_order(epoch: Any) -> Any:
        _without_global_seed()
        return ds.shuffle(buffer, seed=_epoch_seed(seed, epoch), reshuffle_each_iteration=False)

    shuffled = epoch_numbers(initial_epoch).flat_map(epoch_order)
    cardinality = int(ds.cardinality())
    if cardinality < 0:
        return shuffled
    return shuffled.apply(tf.data.experimental.assert_cardinality(cardinality))


def _augment_seeds(seed: int, initial_epoch: int | None) -> Any:
    """An endless dataset of int64 seed pairs for ``augment``, new each pass."""
    if initial_epoch is None:
        return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def epoch_seeds(epoch: Any) -> Any:
        _without_global_seed()
        return tf.data.Dataset.random(seed=_epoch_seed(seed, epoch) + 7919).batch(2)

    endless = tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)
    return epoch_numbers(initial_epoch).flat_map(epoch_seeds).apply(endless)


def _decode_stages(
    src: _Source,
    batch_size: int | None,
    drop_remainder: bool,
    batch_ops_ok: bool,
    *,
    shuffle: bool,
    seed: int,
    cache: bool | str,
    buffer: int,
    initial_epoch: int | None = None,
) -> tuple[Any, bool]:
    """Stages 1-5 (source to batch): the dataset, and whether it was batched before stages 6-7."""
    autotune = tf.data.AUTOTUNE
    ds = src.ds
    if shuffle and not cache:
        ds = _shuffled(ds, buffer, seed, initial_epoch)
    # Whole-batch (vectorised) augmentation and image preprocessing when the images have a
    # static shape: one op per batch instead of one per image.
    if batch_size is not None and src.decode_batch is not None and not cache and batch_ops_ok:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(src.decode_batch, num_parallel_calls=autotune, deterministic=True)
        return ds, True
    if src.decode is not None:
        ds = ds.map(src.decode, num_parallel_calls=autotune, deterministic=True)
        if src.skip_decode_errors:
            # Files whose header looked fine but whose body is corrupt: drop them (TF logs
            # a warning per file) rather than failing mid-epoch. Cardinality becomes unknown.
            ds = ds.ignore_errors(log_warning=True)
    if cache:
        ds = ds.cache("" if cache is True else str(cache))
        if shuffle:
            ds = _shuffled(ds, buffer, seed, initial_epoch)
    input_spec = ds.element_spec[src.input_key]
    vectorised = (
        batch_size is not None
        and batch_ops_ok
        and isinstance(input_spec, tf.TensorSpec)
        and input_spec.shape.rank == 3
        and input_spec.shape.is_fully_defined()
    )
    if vectorised:
        ds = _batch(ds, src, batch_size, drop_remainder)
    return ds, vectorised


def _augment_and_preprocess(
    ds: Any,
    key: str,
    augment_fn: Callable[[Any, Any], Any] | None,
    transform: Callable[[Any], Any] | None,
    seed: int,
    initial_epoch: int | None = None,
) -> Any:
    """Stages 6-7: augment the ``key`` values with seeds drawn from ``seed``, then preprocess them."""
    autotune = tf.data.AUTOTUNE
    if augment_fn is not None:
        seeds = _augment_seeds(seed, initial_epoch)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda element, s: {**element, key: augment_fn(element[key], s)},
            num_parallel_calls=autotune,
            deterministic=True,
        )
    if transform is not None:
        ds = ds.map(_map_key(key, transform), num_parallel_calls=autotune, deterministic=True)
    return ds


def _supervised(ds: Any, src: _Source) -> Any:
    """Stage 8: ``(input, label)`` tuples instead of dicts."""
    key = src.input_key
    label = src.label_key
    return ds.map(lambda element: (element[key], element[label]), num_parallel_calls=tf.data.AUTOTUNE)


def _stages(
    src: _Source,
    preprocessing: Any,
    augment: Any,
    as_supervised: bool,
    batching: tuple[int | None, bool],
    draws: dict[str, Any],
) -> Any:
    """Stages 1-9 of :func:`load` on ``src``; ``draws``: shuffle, seed, initial_epoch, cache, buffer."""
    batch_size, drop_remainder = batching
    transform, augment_fn = _element_fns(src, preprocessing, augment, as_supervised)
    batch_ops_ok = _batch_ops_ok(augment, preprocessing)
    ds, vectorised = _decode_stages(src, batch_size, drop_remainder, batch_ops_ok, **draws)
    ds = _augment_and_preprocess(
        ds, src.input_key, augment_fn, transform, draws["seed"], draws["initial_epoch"]
    )
    if batch_size is not None and not vectorised:
        ds = _batch(ds, src, batch_size, drop_remainder)
    if as_supervised:
        ds = _supervised(ds, src)
    return ds.prefetch(tf.data.AUTOTUNE)


def load(
    name: str | os.PathLike[str],
    split: str | None = None,
    *,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    shuffle_buffer: int | None = None,
    preprocessing: dict[str, Any] | Callable[[Any], Any] | None = None,
    augment: str | Callable[[Any, Any], Any] | None = None,
    cache: bool | str = False,
    drop_remainder: bool = False,
    as_supervised: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    source: str = "auto",
    kfold: tuple[int, int] | None = None,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "rgb",
    text_column: str = "text",
    label_column: str | None = "label",
    with_info: bool = False,
    initial_epoch: int | None = None,
) -> Any:
    """Load a dataset as a ``tf.data.Dataset``.

    Args:
        name: A named dataset (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            ``"tiny_shakespeare"``, ``"mr"``; case and ``-``/``_`` forgiven),
            ``"tfds:NAME[/CONFIG][:SPLIT]"`` for any tensorflow-datasets dataset,
            or a path: an image/text folder (``root/<label>/*`` or
            ``root/<split>/<label>/*``) or a CSV/TSV/JSONL file or folder of them.
        split: The split (default ``"train"``; ``"val"``/``"dev"`` mean ``"validation"``),
            or a slice of it in tensorflow-datasets' syntax: ``"test[:1000]"`` (its first
            1,000 examples, in order), ``"train[-10%:]"`` (its last tenth).
        batch_size: Batch this many elements (``None``: unbatched). Variable-length
            token ids are padded with 0.
        shuffle: Shuffle (seeded by ``seed``, reshuffled each epoch).
        seed: Seed of the shuffle and of ``augment``.
        shuffle_buffer: Shuffle buffer size; default: the whole split for sources
            held as encoded bytes or small arrays, else at most 10,000.
        preprocessing: A preprocessing spec (see :mod:`zoo.data.preprocessing`) or
            a callable, applied to the ``"image"``/``"text"`` value.
        augment: ``"cifar"`` (pad-4 random crop + flip), ``"cifar_cutout"`` (the same, then a
            16-pixel Cutout square), ``"flip"``, or a callable
            ``(image, seed) -> image``; applied to uint8 images before preprocessing.
        cache: ``True`` caches decoded elements in memory, a string caches them to
            that file prefix; augmentation and preprocessing run after the cache.
        drop_remainder: Drop the last partial batch.
        as_supervised: Yield ``(input, label)`` tuples instead of dicts.
        data_dir: Directory of local copies of named datasets; overrides ``ZOO_DATA_DIR``.
        source: For named datasets: ``"auto"`` (local copy if present, else
            tensorflow-datasets), ``"local"`` or ``"tfds"``.
        kfold: ``(k, i)``: use fold ``i`` of a fixed k-fold split as ``"test"`` and
            the rest as ``"train"`` (``mr`` and user data without splits).
        image_size: User image folders only: resize every image to ``(H, W)``
            (bilinear, antialiased, rounded back to uint8).
        color_mode: User image folders only: ``"rgb"`` or ``"grayscale"``.
        text_column: CSV/JSONL only: the text column.
        label_column: CSV/JSONL only: the label column, or ``None`` for unlabelled rows.
        with_info: Also return the :class:`DatasetInfo`.
        initial_epoch: Key each pass's shuffle and augmentation by its epoch number, counted
            from this one (the epoch a resumed run starts at): then pass ``k`` is what any
            dataset of the same arguments gives epoch ``initial_epoch + k``. ``None``: reshuffled
            by TensorFlow from the seed and the passes made.

    Returns:
        The dataset, or ``(dataset, info)`` with ``with_info=True``.

    Raises:
        DataError: On an unknown name, a missing or empty path, a bad split,
            ``tfds:`` string or argument, or a checksum mismatch.
    """
    _check_load_args(batch_size, shuffle_buffer, initial_epoch)
    src = _source(name, split, data_dir, source, kfold, image_size, color_mode, text_column, label_column)
    draws = {"shuffle": shuffle, "seed": seed, "initial_epoch": initial_epoch}
    draws.update(cache=cache, buffer=_shuffle_buffer_size(src, shuffle_buffer))
    ds = _stages(src, preprocessing, augment, as_supervised, (batch_size, drop_remainder), draws)
    return (ds, src.info) if with_info else ds


def kfold(name: str | os.PathLike[str], k: int = 10, fold: int = 0, **kwargs: Any) -> tuple[Any, Any]:
    """Return ``(train, test)`` datasets of fold ``fold`` of a fixed ``k``-fold split.

    Args:
        name: ``"mr"`` or a path to user data without splits.
        k: Number of folds.
        fold: Which fold is the test set (``0 <= fold < k``).
        **kwargs: Passed to :func:`load` (``shuffle`` applies to both datasets).

    Returns:
        ``(train_dataset, test_dataset)``.
    """
    train = load(name, "train", kfold=(k, fold), **kwargs)
    test = load(name, "test", kfold=(k, fold), **kwargs)
    return train, test


def info(
    name: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str | None = "label",
) -> DatasetInfo:
    """Describe a dataset without building a pipeline.

    For named datasets this is pure Python (no TensorFlow import); ``tfds:``
    names ask tensorflow-datasets; paths are scanned.

    Args:
        name: As for :func:`load`.
        data_dir: Directory of local copies of named datasets.
        text_column: CSV/JSONL only: the text column.
        label_column: CSV/JSONL only: the label column.

    Returns:
        The :class:`DatasetInfo`; ``location`` says where :func:`load` would read it. A
        ``tfds:`` dataset that tensorflow-datasets has not prepared yet has no ``splits``:
        tfds counts them when it prepares the dataset, which :func:`load` does (this does not
        download).

    Raises:
        DataError: As :func:`load` does.
    """
    if _is_dataset_name(name):
        _check_columns(name, None, text_column, label_column)
    if is_tfds_string(name):
        ref = parse_tfds(str(name))
        fields = tfds_info(ref)
        features = fields.get("features", {})
        task = "image-classification" if "image" in features else "text-classification"
        return DatasetInfo(task=task, **fields)
    if isinstance(name, str) and name.strip() and not _is_path_like(name):
        entry = catalog.get_named(name)
        root = resolve_data_dir(data_dir)
        if entry.has_local(root):
            location: str | None = str(root)
        elif entry.tfds_name:
            location = PREFIX + entry.tfds_name
        else:
            location = None
        return dataclasses.replace(entry.info, location=location)
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise DataError(f"dataset must be a name, 'tfds:NAME' or a path, got {name!r}")
    data = folders.scan(Path(name), text_column=text_column, label_column=label_column)
    _check_columns(name, data.layout, text_column, label_column)
    return _folder_info(data, "rgb", data.uniform_size())


def fit_spec(
    data: str | os.PathLike[str],
    split: str | None,
    preprocessing: dict[str, Any],
    input_hw: tuple[int | None, int | None],
    *,
    kfold: tuple[int, int] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """An image spec that turns this data into the model's input size (the entry's own when it does).

    One element is read through ``preprocessing``; when its size differs from ``input_hw``
    the spec resizes straight to the input size instead (see
    :func:`zoo.preprocessing.adapt_preprocessing`).
    """
    from zoo.preprocessing.bind import adapt_preprocessing

    probe = load(data, split, kfold=kfold, preprocessing=preprocessing, as_supervised=True, data_dir=data_dir)
    produced = tuple(next(iter(probe))[0].shape[0:2])
    return adapt_preprocessing(dict(preprocessing), produced, input_hw)
