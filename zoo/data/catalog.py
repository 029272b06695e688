"""The named datasets: their static descriptions and readers of their local copies.

Pure Python and NumPy (through the lazy proxy): nothing here imports TensorFlow,
so ``zoo.data.info("mnist")`` and the CLI's listings stay cheap.

Local layout under the data directory (``ZOO_DATA_DIR`` or ``data_dir=``)::

    mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    cifar10-lossless/{train-00..49,test-00..09}.webp, cifar10-lossless/labels.npz
    text/tinyshakespeare.txt
    text/rt-polarity/rt-polarity.{pos,neg}
"""

from __future__ import annotations

import difflib
import functools
import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo._lazy import np
from zoo.data._paths import verify_file
from zoo.errors import DataError

__all__ = [
    "DatasetInfo",
    "NamedDataset",
    "NAMED_DATASETS",
    "list_datasets",
    "get_named",
    "MR_SEED",
    "TEXT_SPLIT_FRACTION",
]

#: Split names accepted for the canonical ``train`` / ``validation`` / ``test``.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
}

#: Seed of the fixed permutation behind the MR train/test split and its k folds.
MR_SEED = 20050601
#: Fraction of Tiny Shakespeare's characters in its "train" split.
TEXT_SPLIT_FRACTION = 0.9


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds and what ``zoo.data.load`` yields for it.

    Attributes:
        name: Canonical name (``"mnist"``), ``"tfds:NAME[/CONFIG]"`` or a folder path.
        task: ``"image-classification"``, ``"text-classification"`` or
            ``"language-modeling"``.
        splits: Split name -> size, counted in ``unit``.
        label_names: Class names; index ``i`` is label ``i``. Empty when unlabelled.
        features: Element spec description: key -> ``"dtype shape"`` (one element,
            before batching, with ``as_supervised=False``).
        supervised_keys: ``(input key, label key)`` used by ``as_supervised=True``,
            or ``None`` when the dataset has no labels.
        source: Where the data comes from (authors, origin).
        license: License or terms of use.
        homepage: Where to read more.
        notes: Anything a user of the numbers should know (re-encodings, split rules).
        unit: What ``splits`` counts: ``"examples"`` or ``"characters"``.
        location: Where it would be read from now (a local path or ``"tfds:NAME"``),
            when known.
    """

    name: str
    task: str
    splits: dict[str, int]
    label_names: tuple[str, ...] = ()
    features: dict[str, str] = field(default_factory=dict)
    supervised_keys: tuple[str, str] | None = None
    source: str = ""
    license: str = ""
    homepage: str = ""
    notes: str = ""
    unit: str = "examples"
    location: str | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for unlabelled data)."""
        return len(self.label_names)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict of every field."""
        return {
            "name": self.name,
            "task": self.task,
            "splits": dict(self.splits),
            "label_names": list(self.label_names),
            "features": dict(self.features),
            "supervised_keys": list(self.supervised_keys) if self.supervised_keys else None,
            "source": self.source,
            "license": self.license,
            "homepage": self.homepage,
            "notes": self.notes,
            "unit": self.unit,
            "location": self.location,
        }


# ---------------------------------------------------------------------------
# Local readers (NumPy only, cached per process)
# ---------------------------------------------------------------------------

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@functools.lru_cache(maxsize=16)
def read_idx(path: str) -> Any:
    """Read a (possibly gzip-compressed) IDX file into a NumPy array.

    Args:
        path: Path of the ``*-ubyte`` or ``*-ubyte.gz`` file.

    Returns:
        The array with the shape stored in the file (read-only, cached per process).

    Raises:
        DataError: If the file is not a valid IDX file.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file {path!r}: {err}; replace it with a good copy") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path!r} is not an IDX file (bad magic number); replace it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path!r} is truncated or padded: header says shape {shape}, "
            f"{expected} data bytes, found {len(raw) - header}; replace it"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    array.flags.writeable = False
    return array


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@functools.lru_cache(maxsize=8)
def _idx_pair(data_dir: str, folder: str, split: str) -> tuple[Any, Any]:
    images_name, labels_name = _MNIST_FILES[split]
    root = Path(data_dir)
    images = read_idx(str(verify_file(root, f"{folder}/{images_name}")))
    labels = read_idx(str(verify_file(root, f"{folder}/{labels_name}")))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{root / folder}: images {images.shape} and labels {labels.shape} do not match")
    images = images[..., None]  # (N, H, W, 1) like tfds
    labels = labels.astype(np.int64)
    labels.flags.writeable = False
    return images, labels


#: sha256 of the decoded uint8 (N, 32, 32, 3) C-order arrays of CIFAR-10's original pixels
#: (train = data_batch_1..5, test = test_batch, in the official order).
CIFAR10_PIXELS_SHA256 = {
    "train": "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a",
    "test": "f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04",
}
CIFAR10_FOLDER = "cifar10-lossless"
_CIFAR_SHARDS = {"train": 50, "test": 10}
_GRID_ROWS, _GRID_COLS = 25, 40  # each lossless WebP holds 1,000 images as a 25 x 40 grid


def cifar10_files() -> tuple[str, ...]:
    """The relative paths of the lossless CIFAR-10 copy under the data directory."""
    shards = tuple(
        f"{CIFAR10_FOLDER}/{split}-{k:02d}.webp" for split, n in _CIFAR_SHARDS.items() for k in range(n)
    )
    return (f"{CIFAR10_FOLDER}/labels.npz", *shards)


def _decode_grid(path: Path) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as image:
            grid = np.asarray(image.convert("RGB"))
    except OSError as err:
        raise DataError(f"cannot decode {str(path)!r}: {err}; replace it with a good copy") from err
    if grid.shape != (_GRID_ROWS * 32, _GRID_COLS * 32, 3):
        raise DataError(f"{str(path)!r} is {grid.shape[1]}x{grid.shape[0]}, not a 1280x800 grid")
    # (rows, 32, cols, 32, 3) -> (rows, cols, 32, 32, 3): row-major image order
    cells = grid.reshape(_GRID_ROWS, 32, _GRID_COLS, 32, 3).transpose(0, 2, 1, 3, 4)
    return cells.reshape(-1, 32, 32, 3)


@functools.lru_cache(maxsize=2)
def _cifar_pixels(data_dir: str, split: str) -> tuple[Any, Any]:
    from zoo.fileio import sha256_bytes

    root = Path(data_dir)
    labels_path = verify_file(root, f"{CIFAR10_FOLDER}/labels.npz")
    try:
        with np.load(labels_path) as archive:
            labels = archive[f"y_{split}"].astype(np.int64)
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"cannot read {str(labels_path)!r}: {err}; replace it with a good copy") from err
    shards = [
        _decode_grid(verify_file(root, f"{CIFAR10_FOLDER}/{split}-{k:02d}.webp"))
        for k in range(_CIFAR_SHARDS[split])
    ]
    images = np.ascontiguousarray(np.concatenate(shards))
    digest = sha256_bytes(images.tobytes())
    if digest != CIFAR10_PIXELS_SHA256[split] or len(images) != len(labels):
        raise DataError(
            f"the decoded CIFAR-10 {split} pixels under {str(root / CIFAR10_FOLDER)!r} have sha256 "
            f"{digest}, not the original pixels' {CIFAR10_PIXELS_SHA256[split]}: replace the "
            "folder with a good copy"
        )
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def cifar10_arrays(data_dir: Path, split: str) -> tuple[Any, Any]:
    """Return CIFAR-10's original pixels and labels of ``split``, in the official order.

    The lossless WebP grids are decoded with Pillow and the decoded array is
    checked against the published sha256 of the original pixels.

    Args:
        data_dir: The data directory root.
        split: ``"train"`` or ``"test"``.

    Returns:
        ``(images, labels)``: read-only uint8 (N, 32, 32, 3) and int64 (N,) arrays.

    Raises:
        DataError: If a file is missing or corrupt, or the pixels are not the original ones.
    """
    return _cifar_pixels(str(data_dir), split)


def mnist_like(data_dir: Path, folder: str, split: str) -> tuple[Any, Any]:
    """Return ``(images, labels)`` of an MNIST-layout folder: uint8 (N, 28, 28, 1), int64 (N,)."""
    return _idx_pair(str(data_dir), folder, split)


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # The original MR v1.0 files are Latin-1; some copies are re-encoded as UTF-8.
        return raw.decode("latin-1")


@functools.lru_cache(maxsize=4)
def _read_text(path: str) -> str:
    return _decode_text(Path(path).read_bytes())


def shakespeare_text(data_dir: Path, split: str) -> str:
    """Return the Tiny Shakespeare text of ``split``.

    ``"train"`` is the first ``int(0.9 * n)`` characters; ``"validation"`` and
    ``"test"`` are both the remaining characters (tfds' validation + test).
    """
    text = _read_text(str(verify_file(data_dir, "text/tinyshakespeare.txt")))
    cut = int(len(text) * TEXT_SPLIT_FRACTION)
    return text[:cut] if split == "train" else text[cut:]


@functools.lru_cache(maxsize=2)
def _mr_all(data_dir: str) -> tuple[tuple[str, ...], Any]:
    root = Path(data_dir)
    sentences: list[str] = []
    labels: list[int] = []
    for label, suffix in enumerate(("neg", "pos")):
        path = verify_file(root, f"text/rt-polarity/rt-polarity.{suffix}")
        text = _read_text(str(path))
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        sentences.extend(lines)
        labels.extend([label] * len(lines))
    return tuple(sentences), np.asarray(labels, dtype=np.int64)


def fold_indices(n: int, k: int, fold: int, seed: int) -> tuple[Any, Any]:
    """Return ``(train, test)`` index arrays of fold ``fold`` of a fixed k-fold split.

    The permutation comes from ``numpy.random.RandomState(seed)`` (stable across
    NumPy versions); fold ``i`` is ``numpy.array_split(permutation, k)[i]``.

    Raises:
        DataError: If ``k`` or ``fold`` is out of range.
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 2 <= k <= n:
        raise DataError(f"kfold k must be an integer between 2 and {n}, got {k!r}")
    if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < k:
        raise DataError(f"kfold fold must be an integer in [0, {k}), got {fold!r}")
    perm = np.random.RandomState(seed).permutation(n)
    parts = np.array_split(perm, k)
    test = parts[fold]
    train = np.concatenate([p for i, p in enumerate(parts) if i != fold])
    return train, test


def mr_examples(data_dir: Path, split: str, kfold: tuple[int, int] | None = None) -> tuple[list[str], Any]:
    """Return MR sentences and labels (0 = neg, 1 = pos) of ``split``.

    The fixed train/test split is fold 0 of the 10-fold split (seed
    :data:`MR_SEED`); ``kfold=(k, i)`` selects fold ``i`` of a k-fold split instead.
    """
    sentences, labels = _mr_all(str(data_dir))
    k, fold = kfold if kfold is not None else (10, 0)
    train, test = fold_indices(len(sentences), k, fold, MR_SEED)
    index = train if split == "train" else test
    return [sentences[i] for i in index], labels[index]


def mr_split_sizes(data_dir: Path, kfold: tuple[int, int] | None = None) -> dict[str, int]:
    """Return ``{"train": n, "test": m}`` of MR's fixed split or of ``kfold=(k, i)``."""
    n = len(_mr_all(str(data_dir))[0])
    k, fold = kfold if kfold is not None else (10, 0)
    train, test = fold_indices(n, k, fold, MR_SEED)
    return {"train": len(train), "test": len(test)}


# ---------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------

_DIGITS = tuple(str(i) for i in range(10))
_FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR10 = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _image_features(shape: tuple[int, int, int], classes: int) -> dict[str, str]:
    return {"image": f"uint8 {shape}", "label": f"int64 () in [0, {classes})"}


@dataclass(frozen=True)
class NamedDataset:
    """A dataset ``zoo.data`` knows by name.

    Attributes:
        info: Its static description (``location`` unset).
        local_files: Files (relative to the data directory) the local copy needs.
        tfds_name: The tensorflow-datasets builder to fall back to, or ``None``.
        aliases: Extra names accepted for it.
        kfold: Whether ``kfold=(k, i)`` is supported (datasets without an official split).
    """

    info: DatasetInfo
    local_files: tuple[str, ...]
    tfds_name: str | None
    aliases: tuple[str, ...] = ()
    kfold: bool = False

    def has_local(self, data_dir: Path | None) -> bool:
        """Whether every local file is present under ``data_dir``."""
        return data_dir is not None and all((data_dir / f).is_file() for f in self.local_files)


def _mnist_files(folder: str) -> tuple[str, ...]:
    return tuple(f"{folder}/{name}" for pair in _MNIST_FILES.values() for name in pair)


NAMED_DATASETS: dict[str, NamedDataset] = {
    "mnist": NamedDataset(
        info=DatasetInfo(
            name="mnist",
            task="image-classification",
            splits={"train": 60000, "test": 10000},
            label_names=_DIGITS,
            features=_image_features((28, 28, 1), 10),
            supervised_keys=("image", "label"),
            source="LeCun, Cortes and Burges: the MNIST database of handwritten digits",
            license="CC BY-SA 3.0",
            homepage="http://yann.lecun.com/exdb/mnist/",
            notes="Local copy: the 4 canonical IDX files, gzip-compressed; same order as tfds.",
        ),
        local_files=_mnist_files("mnist"),
        tfds_name="mnist",
    ),
    "fashion_mnist": NamedDataset(
        info=DatasetInfo(
            name="fashion_mnist",
            task="image-classification",
            splits={"train": 60000, "test": 10000},
            label_names=_FASHION,
            features=_image_features((28, 28, 1), 10),
            supervised_keys=("image", "label"),
            source="Xiao, Rasul and Vollgraf 2017 (Zalando Research): Fashion-MNIST",
            license="MIT",
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            notes="Local copy: 4 IDX files, gzip-compressed (canonical content).",
        ),
        local_files=_mnist_files("fashion-mnist"),
        tfds_name="fashion_mnist",
        aliases=("fashion", "fmnist"),
    ),
    "cifar10": NamedDataset(
        info=DatasetInfo(
            name="cifar10",
            task="image-classification",
            splits={"train": 50000, "test": 10000},
            label_names=_CIFAR10,
            features=_image_features((32, 32, 3), 10),
            supervised_keys=("image", "label"),
            source="Krizhevsky 2009: CIFAR-10 (80 million tiny images subset)",
            license="research use",
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            notes=(
                "The local copy holds the original 8-bit pixels in the official order "
                "(cifar10-lossless/: lossless WebP grids; the decoded arrays are checked against "
                "the published sha256 of the original pixels). The zoo's evaluations use the "
                "official test split in this order. tfds' extra 'id' feature is dropped so both "
                "sources match."
            ),
        ),
        local_files=cifar10_files(),
        tfds_name="cifar10",
        aliases=("cifar", "cifar_10"),
    ),
    "tiny_shakespeare": NamedDataset(
        info=DatasetInfo(
            name="tiny_shakespeare",
            task="language-modeling",
            splits={"train": 1003854, "validation": 111540, "test": 111540},
            features={"text": "string ()"},
            supervised_keys=None,
            source="Karpathy's char-rnn benchmark corpus (works of Shakespeare)",
            license="public domain",
            homepage="https://github.com/karpathy/char-rnn",
            notes=(
                "1,115,394 characters. Each split is ONE element holding its whole text. "
                "'train' is the first int(0.9 * n) characters (= tfds' train split); "
                "'validation' and 'test' are both the last 10% (= tfds' validation + test "
                "joined). This split rule is provisional and fixed by a later issue."
            ),
            unit="characters",
        ),
        local_files=("text/tinyshakespeare.txt",),
        tfds_name="tiny_shakespeare",
        aliases=("shakespeare", "tinyshakespeare"),
    ),
    "mr": NamedDataset(
        info=DatasetInfo(
            name="mr",
            task="text-classification",
            splits={"train": 9595, "test": 1067},
            label_names=("neg", "pos"),
            features={"text": "string ()", "label": "int64 () in [0, 2)"},
            supervised_keys=("text", "label"),
            source="Pang and Lee 2005: movie-review sentence polarity dataset v1.0",
            license="research use",
            homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
            notes=(
                "5,331 positive + 5,331 negative lower-cased, tokenised sentences. There is no "
                "official split: 'train'/'test' is fold 0 of a fixed 10-fold split (seed "
                f"{MR_SEED}); pass kfold=(k, i) for cross-validation. Not in tensorflow-datasets: "
                "put rt-polarity.pos and rt-polarity.neg (UTF-8 or Latin-1) under "
                "<data_dir>/text/rt-polarity/."
            ),
        ),
        local_files=("text/rt-polarity/rt-polarity.pos", "text/rt-polarity/rt-polarity.neg"),
        tfds_name=None,
        aliases=("rt_polarity", "movie_review", "movie_reviews", "sentence_polarity"),
        kfold=True,
    ),
}


def _key(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower())


def _lookup_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, entry in NAMED_DATASETS.items():
        for alias in (canonical, *entry.aliases):
            table[_key(alias)] = canonical
            table[_key(alias).replace("_", "")] = canonical
    return table


def list_datasets() -> list[str]:
    """Return the canonical names of the named datasets, sorted."""
    return sorted(NAMED_DATASETS)


def lookup_named(name: str) -> NamedDataset | None:
    """Return the named dataset for ``name`` (case, ``-``, ``_`` forgiving) or ``None``."""
    table = _lookup_table()
    key = _key(name)
    canonical = table.get(key) or table.get(key.replace("_", ""))
    return NAMED_DATASETS[canonical] if canonical else None


def get_named(name: str) -> NamedDataset:
    """Return the named dataset for ``name`` or raise a helpful :class:`DataError`.

    Raises:
        DataError: Naming close matches (difflib) and the other ways to name data.
    """
    entry = lookup_named(name)
    if entry is not None:
        return entry
    candidates = sorted(_lookup_table())
    close = difflib.get_close_matches(_key(name), candidates, n=3, cutoff=0.6)
    suggestions = sorted({_lookup_table()[c] for c in close})
    hint = f" Did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
    raise DataError(
        f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(list_datasets())}; "
        "or use 'tfds:NAME[/CONFIG][:SPLIT]' for any tensorflow-datasets dataset, "
        "or a path to a folder / CSV / JSONL file of your own data"
    )


def canonical_split(entry: NamedDataset, split: str) -> str:
    """Return the canonical split name for ``split`` of ``entry``.

    Raises:
        DataError: If the dataset has no such split.
    """
    key = split.strip().lower()
    key = SPLIT_ALIASES.get(key, key)
    if key not in entry.info.splits:
        raise DataError(
            f"dataset {entry.info.name!r} has no split {split!r}; "
            f"its splits are {', '.join(entry.info.splits)}"
        )
    return key
