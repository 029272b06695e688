"""User data on disk: image folders, text folders, CSV and JSONL files.

Scanning is pure Python (plus Pillow to read image headers); the TensorFlow
pipeline is built in :mod:`zoo.data.pipeline`.

Layouts (detected, in this order):

* a ``.csv``/``.tsv``/``.jsonl`` file: one split, ``"train"``;
* a folder holding ``<split>.csv``/``.tsv``/``.jsonl`` files (``train.csv``,
  ``test.jsonl``, ...): one split per file;
* ``root/<split>/<label>/...`` when every sub-folder of ``root`` is named like a
  split (``train``, ``test``, ``validation``, ``val``, ``valid``, ``dev``) and
  holds only folders;
* ``root/<label>/...`` otherwise: one split, ``"train"`` (``kfold=(k, i)`` gives
  cross-validation splits).

Class folders are searched recursively, following symbolic links that stay inside
the data folder; a link that leads out of it (a file or a folder) is skipped and counted
in the scan's one :class:`DataWarning`, and a folder reached twice through links (a
loop) is read once. Image files (PNG, JPEG, GIF, BMP) make
an image dataset; ``.txt`` files (one example per file) make a text dataset,
whichever kind has more files. Label names are the class folder names sorted
(the union over all splits, so label ids agree between splits). Hidden files
are ignored.

Bad input: a missing path or a root without usable files raises
:class:`~zoo.errors.DataError`; class folders without usable files are skipped
with one :class:`DataWarning`; unreadable, non-image or unsupported files (and
malformed CSV/JSONL rows) are skipped and counted in ONE :class:`DataWarning`
per scan (``warnings.warn``, so they can be filtered or turned into errors).
The scan reads image headers only; an image whose body turns out corrupt when
decoded is dropped from the pipeline with a TensorFlow log warning. Images over Pillow's
decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) are skipped as too large.
Nothing in a CSV/JSONL row is ever used as a path: texts and labels are plain strings.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.catalog import SPLIT_ALIASES
from zoo.errors import DataError, ZooWarning

__all__ = ["DataWarning", "FolderData", "decode_text", "scan", "SPLIT_NAMES"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp"})
#: Image files Pillow reads (so ``zoo predict`` does) that TensorFlow's decoders, behind data folders, do not.
PILLOW_ONLY_SUFFIXES = frozenset({".webp", ".tif", ".tiff"})
TEXT_SUFFIXES = frozenset({".txt"})
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".jsonl"})
_PIL_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "MPO"})

#: Folder names recognised as splits, and the canonical split each one means.
SPLIT_NAMES = SPLIT_ALIASES


class DataWarning(ZooWarning):
    """Something in the user's data was skipped (unreadable files, empty class folders)."""


@dataclass
class FolderData:
    """The result of scanning user data.

    Attributes:
        root: The folder or file scanned.
        kind: ``"image"`` or ``"text"``.
        layout: ``"flat"``, ``"split"`` or ``"table"``.
        label_names: Sorted class names (empty for unlabelled tables).
        splits: Canonical split name -> ``(items, labels)``: image paths or texts,
            and int label ids (``-1`` for unlabelled rows).
        image_sizes: ``(height, width)`` of every image as shown (after its EXIF orientation).
        skipped: ``(path or row, reason)`` of every skipped item.
        orientations: Image path -> EXIF orientation (2-8), for images that are not stored
            upright; the input pipeline turns them as a viewer does.
    """

    root: Path
    kind: str
    layout: str
    label_names: tuple[str, ...]
    splits: dict[str, tuple[list[str], list[int]]]
    image_sizes: set[tuple[int, int]] = field(default_factory=set)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    orientations: dict[str, int] = field(default_factory=dict)

    def orientation_of(self, items: list[str]) -> list[int]:
        """The EXIF orientation (1 = upright) of each image path in ``items``."""
        return [self.orientations.get(str(item), 1) for item in items]

    @property
    def labelled(self) -> bool:
        """Whether the examples carry labels."""
        return bool(self.label_names)

    def uniform_size(self) -> tuple[int, int] | None:
        """The common ``(height, width)`` of all images, or ``None`` when they differ."""
        return next(iter(self.image_sizes)) if len(self.image_sizes) == 1 else None


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, with every symbolic link followed, is ``root`` or under it."""
    return Path(os.path.realpath(path)).is_relative_to(root)


def _files_under(folder: Path, root: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """Visible files under ``folder``; links out of ``root`` go to ``skipped``, loops are cut."""
    out: list[Path] = []
    seen = {os.path.realpath(folder)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        keep = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            real = os.path.realpath(os.path.join(dirpath, d))
            if not Path(real).is_relative_to(root):
                skipped.append((os.path.join(dirpath, d), "link out of the data folder"))
            elif real not in seen:  # a link back to a folder already read: a loop, or a duplicate
                seen.add(real)
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(f for f in filenames if not f.startswith(".")):
            path = Path(dirpath) / f
            if _inside(path, root):
                out.append(path)
            else:
                skipped.append((str(path), "link out of the data folder"))
    return out


_EXIF_ORIENTATION = 0x0112


def _orientation(image: Any) -> int:
    """The EXIF orientation (1-8) of an open Pillow image; 1 when absent or malformed."""
    try:
        value = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a malformed EXIF block is ignored, as viewers do
        return 1
    return value if 1 <= value <= 8 else 1


def _image_header(path: Path) -> tuple[tuple[int, int] | None, str, int]:
    """Return ``((height, width), "", orientation)`` for a supported image, else ``(None, reason, 1)``.

    The size is the size as shown, after the EXIF orientation (5-8 swap height and width).
    """
    from PIL import Image, UnidentifiedImageError

    orientation = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt = image.format or "?"
                width, height = image.size
                orientation = _orientation(image)
    except UnidentifiedImageError:
        return None, "not an image", 1
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, "too large (over PIL.Image.MAX_IMAGE_PIXELS)", 1
    except Exception as err:  # Pillow raises OSError, ValueError, SyntaxError, EOFError, ... on bad files
        return None, f"unreadable ({type(err).__name__})", 1
    if fmt not in _PIL_FORMATS:
        return None, f"unsupported format {fmt}", 1
    if width < 1 or height < 1:
        return None, "empty image", 1
    if orientation >= 5:
        return (width, height), "", orientation
    return (height, width), "", orientation


def _read_text_file(path: Path) -> str | None:
    try:
        return decode_text(path.read_bytes())
    except OSError:
        return None


def decode_text(raw: bytes) -> str:
    """Decode a text file's bytes as editors save them.

    UTF-16 where a byte-order mark says so, else UTF-8 (a byte-order mark dropped), else Latin-1.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8-sig")  # a UTF-8 byte-order mark (Excel's CSV) is not text
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=4)


def _report_skipped(root: Path, skipped: list[tuple[str, str]]) -> None:
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for _, reason in skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    summary = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    examples = ", ".join(item for item, _ in skipped[:3])
    _warn(f"skipped {len(skipped)} file(s)/row(s) under {str(root)!r} ({summary}); e.g. {examples}")


def _detect_split_layout(root: Path, subdirs: list[Path]) -> bool:
    if not subdirs or not all(d.name.lower() in SPLIT_NAMES for d in subdirs):
        return False
    for split_dir in subdirs:
        entries = [e for e in split_dir.iterdir() if _visible(e)]
        if not entries or not all(e.is_dir() for e in entries):
            return False
    return True


def _classify_kind(paths: list[Path]) -> str:
    images = sum(p.suffix.lower() in IMAGE_SUFFIXES | PILLOW_ONLY_SUFFIXES for p in paths)
    texts = sum(p.suffix.lower() in TEXT_SUFFIXES for p in paths)
    return "text" if texts > images else "image"


def _split_dirs(root: Path, outside: list[tuple[str, str]]) -> tuple[str, dict[str, Path]]:
    """The layout of folder ``root`` and its canonical split -> folder; links out of it go to ``outside``."""
    subdirs = []
    for d in sorted(d for d in root.iterdir() if d.is_dir() and _visible(d)):
        if _inside(d, root):
            subdirs.append(d)
        else:
            outside.append((str(d), "link out of the data folder"))
    if not _detect_split_layout(root, subdirs):
        return "flat", {"train": root}
    split_dirs: dict[str, Path] = {}
    for d in subdirs:
        canonical = SPLIT_NAMES[d.name.lower()]
        if canonical in split_dirs:
            raise DataError(
                f"{str(root)!r} has two folders for split {canonical!r}: "
                f"{split_dirs[canonical].name!r} and {d.name!r}; keep one"
            )
        split_dirs[canonical] = d
    return "split", split_dirs


def _class_tree(
    root: Path, split_dirs: dict[str, Path], outside: list[tuple[str, str]]
) -> tuple[dict[str, dict[str, list[Path]]], list[Path]]:
    """Split -> class name -> files, and the loose files beside class folders; links out go to ``outside``."""
    tree: dict[str, dict[str, list[Path]]] = {}
    loose: list[Path] = []
    for split, folder in split_dirs.items():
        classes: dict[str, list[Path]] = {}
        for entry in sorted(folder.iterdir()):
            if not _visible(entry):
                continue
            if not _inside(entry, root):
                outside.append((str(entry), "link out of the data folder"))
            elif entry.is_dir():
                classes[entry.name] = _files_under(entry, root, outside)
            else:
                loose.append(entry)
        tree[split] = classes
    return tree, loose


_CONVERT = "WebP or TIFF (data folders take PNG, JPEG, GIF or BMP: convert them)"


def _usable_files(
    files: list[Path],
    kind: str,
    skipped: list[tuple[str, str]],
    sizes: set[tuple[int, int]],
    orientations: dict[str, int],
) -> list[str]:
    """Image paths or texts of the usable ``kind`` files; records sizes, orientations and skipped files."""
    suffixes = IMAGE_SUFFIXES if kind == "image" else TEXT_SUFFIXES
    good: list[str] = []
    for path in files:
        if path.suffix.lower() not in suffixes:
            pillow_only = kind == "image" and path.suffix.lower() in PILLOW_ONLY_SUFFIXES
            skipped.append((str(path), _CONVERT if pillow_only else f"no {kind} file extension"))
            continue
        if kind == "image":
            size, reason, orientation = _image_header(path)
            if size is None:
                skipped.append((str(path), reason))
                continue
            sizes.add(size)
            if orientation != 1:
                orientations[str(path)] = orientation
            good.append(str(path))
        else:
            text = _read_text_file(path)
            if text is None:
                skipped.append((str(path), "unreadable"))
                continue
            good.append(text)
    return good


def _empty_class_folders(
    kept: dict[str, dict[str, list[str]]], split_dirs: dict[str, Path], label_names: tuple[str, ...]
) -> list[str]:
    """Sorted paths of the class folders without usable files, for labels found in no split."""
    return sorted(
        {
            str(split_dirs[s] / lab)
            for s, c in kept.items()
            for lab, items in c.items()
            if not items and lab not in label_names
        }
    )


def _untrained_classes(kept: dict[str, dict[str, list[str]]]) -> list[str]:
    """Classes with usable files in a split other than train but none in train (split layouts)."""
    if "train" not in kept:
        return []
    trained = {label for label, items in kept["train"].items() if items}
    others = {label for split, c in kept.items() if split != "train" for label, items in c.items() if items}
    return sorted(others - trained)


def _labelled_splits(
    kept: dict[str, dict[str, list[str]]], label_names: tuple[str, ...]
) -> dict[str, tuple[list[str], list[int]]]:
    """Split -> ``(items, label ids)``, classes in sorted order."""
    index = {name: i for i, name in enumerate(label_names)}
    splits: dict[str, tuple[list[str], list[int]]] = {}
    for split, classes in kept.items():
        items: list[str] = []
        labels: list[int] = []
        for label in sorted(classes):
            if not classes[label]:
                continue
            items.extend(classes[label])
            labels.extend([index[label]] * len(classes[label]))
        splits[split] = (items, labels)
    return splits


def _scan_folders(root: Path) -> FolderData:
    """Scan a folder of class folders: ``root/<label>/...`` or ``root/<split>/<label>/...``."""
    outside: list[tuple[str, str]] = []
    layout, split_dirs = _split_dirs(root, outside)
    tree, loose = _class_tree(root, split_dirs, outside)
    if not any(tree.values()):
        raise DataError(
            f"{str(root)!r} has no class folders: put examples in root/<label>/ "
            "(or root/<split>/<label>/), or pass a CSV/JSONL file"
        )
    all_files = [p for classes in tree.values() for files in classes.values() for p in files]
    kind = _classify_kind(all_files)

    skipped: list[tuple[str, str]] = [(str(p), "file outside any class folder") for p in loose]
    skipped.extend(dict.fromkeys(outside))  # a root-level link is seen twice in a flat layout
    sizes: set[tuple[int, int]] = set()
    orientations: dict[str, int] = {}
    kept: dict[str, dict[str, list[str]]] = {}
    for split, classes in tree.items():
        kept[split] = {}
        for label, files in classes.items():
            kept[split][label] = _usable_files(files, kind, skipped, sizes, orientations)

    label_names = tuple(sorted({lab for c in kept.values() for lab, items in c.items() if items}))
    empty = _empty_class_folders(kept, split_dirs, label_names)
    # Warn here rather than in a helper: the fixed stacklevel of _warn counts frames from this function.
    _report_skipped(root, skipped)
    if empty:
        _warn(
            f"skipped {len(empty)} class folder(s) without usable {kind} files under "
            f"{str(root)!r}: {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}"
        )
    untrained = _untrained_classes(kept)
    if untrained:
        _warn(
            f"class(es) {', '.join(map(repr, untrained))} under {str(root)!r} have {kind} files in "
            "another split but none in train: a model trained on train never learns them; add train "
            "examples, or rename the folder after a class train has"
        )
    if not label_names:
        raise DataError(
            f"no usable {kind} files found under {str(root)!r}"
            + (f" ({len(skipped)} skipped: see the warning)" if skipped else "")
            + "; put PNG/JPEG/GIF/BMP images (or .txt files) in root/<label>/ folders"
        )
    splits = _labelled_splits(kept, label_names)
    return FolderData(root, kind, layout, label_names, splits, sizes, skipped, orientations)


# ---------------------------------------------------------------------------
# CSV / JSONL
# ---------------------------------------------------------------------------


def _table_rows(path: Path) -> tuple[list[dict[str, Any]], list[str], int]:
    """Return ``(rows, columns, bad_row_count)`` of a CSV/TSV/JSONL file."""
    suffix = path.suffix.lower()
    text = _read_text_file(path)
    if text is None:
        raise DataError(f"cannot read {str(path)!r}: check its permissions")
    if suffix == ".jsonl":
        rows: list[dict[str, Any]] = []
        bad = 0
        columns: dict[str, None] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # malformed, too deeply nested, huge numbers
                bad += 1
                continue
            if not isinstance(row, dict):
                bad += 1
                continue
            rows.append(row)
            columns.update(dict.fromkeys(row))
        return rows, list(columns), bad
    try:
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        rows = [dict(r) for r in reader]
        columns = list(reader.fieldnames or [])
    except csv.Error as err:
        raise DataError(f"{str(path)!r} is not valid CSV ({err}); fix the file") from err
    return rows, columns, 0


def _is_int_label(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.strip().isdigit()


def _scan_tables(
    root: Path,
    files: dict[str, Path],
    text_column: str,
    label_column: str | None,
    skipped_links: list[tuple[str, str]] | None = None,
) -> FolderData:
    raw: dict[str, list[tuple[str, Any]]] = {}
    skipped: list[tuple[str, str]] = list(skipped_links or [])
    for split, path in files.items():
        rows, columns, bad = _table_rows(path)
        skipped.extend((f"{path.name} (malformed row)", "malformed row") for _ in range(bad))
        missing = [c for c in (text_column, label_column) if c is not None and c not in columns]
        if missing and not columns:
            layout = (
                f"one JSON object a line, with {text_column!r} and {label_column!r}"
                if path.suffix.lower() == ".jsonl"
                else f"a header line naming the columns, e.g. {text_column},{label_column}"
            )
            raise DataError(f"{str(path)!r} has no column(s) {missing}: it is empty; it needs {layout}")
        if missing:
            raise DataError(
                f"{str(path)!r} has no column(s) {missing}; its columns are {columns}. "
                "Name the ones to read with --text-column and --label-column (in Python: "
                "text_column= and label_column=)"
            )
        good: list[tuple[str, Any]] = []
        for number, row in enumerate(rows, 1):
            text = row.get(text_column)
            label = row.get(label_column) if label_column is not None else None
            if not isinstance(text, str):
                skipped.append((f"{path.name} row {number}", f"missing {text_column}"))
                continue
            if label_column is not None and (label is None or str(label).strip() == ""):
                skipped.append((f"{path.name} row {number}", f"missing {label_column}"))
                continue
            good.append((text, label))
        raw[split] = good
    _report_skipped(root, skipped)
    if not any(raw.values()):
        raise DataError(
            f"no usable rows in {str(root)!r}; each row needs a {text_column!r} "
            + (f"and a {label_column!r} value" if label_column else "value")
        )
    label_names: tuple[str, ...] = ()
    splits: dict[str, tuple[list[str], list[int]]] = {}
    if label_column is None:
        for split, good in raw.items():
            splits[split] = ([t for t, _ in good], [-1] * len(good))
    else:
        values = [lab for good in raw.values() for _, lab in good]
        if all(_is_int_label(v) for v in values):
            top = max(int(v) for v in values)
            label_names = tuple(str(i) for i in range(top + 1))
            to_id = {str(i): i for i in range(top + 1)}
        else:
            label_names = tuple(sorted({str(v).strip() for v in values}))
            to_id = {name: i for i, name in enumerate(label_names)}
        for split, good in raw.items():
            splits[split] = (
                [t for t, _ in good],
                [to_id[str(lab).strip()] for _, lab in good],
            )
    layout = "table"
    return FolderData(root, "text", layout, label_names, splits, set(), skipped)


def _table_files(root: Path) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """The ``<split>.csv``/``.tsv``/``.jsonl`` files of ``root``, and the links out of it skipped."""
    found: dict[str, Path] = {}
    outside: list[tuple[str, str]] = []
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES and _visible(path):
            if not _inside(path, root):
                outside.append((str(path), "link out of the data folder"))
                continue
            split = SPLIT_NAMES.get(path.stem.lower(), path.stem.lower())
            if split in found:
                raise DataError(
                    f"{str(root)!r} has two files for split {split!r}: "
                    f"{found[split].name!r} and {path.name!r}; keep one"
                )
            found[split] = path
    return found, outside


def scan(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str | None = "label",
) -> FolderData:
    """Scan user data at ``path`` (see the module docstring for layouts).

    Args:
        path: A folder, or a CSV/TSV/JSONL file.
        text_column: Column holding the text in CSV/JSONL data.
        label_column: Column holding the label, or ``None`` for unlabelled rows.

    Returns:
        The examples, labels and label names found.

    Raises:
        DataError: If the path is missing, of an unknown kind, or holds no usable data.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(
            f"data path {str(root)!r} does not exist; pass a folder of "
            "<label>/ sub-folders, a CSV/JSONL file, or a dataset name"
        )
    root = root.resolve()
    try:
        return _scan(root, text_column, label_column)
    except PermissionError as err:
        raise DataError(
            f"cannot read {err.filename or str(root)!r}: permission denied; fix its permissions"
        ) from err


def _scan(root: Path, text_column: str, label_column: str | None) -> FolderData:
    if root.is_file():
        if root.suffix.lower() not in TABLE_SUFFIXES:
            raise DataError(
                f"{str(root)!r} is not a folder or a .csv/.tsv/.jsonl file; "
                "put image or .txt examples in <label>/ sub-folders"
            )
        return _scan_tables(root, {"train": root}, text_column, label_column)
    tables, outside = _table_files(root)
    has_dirs = any(d.is_dir() and _visible(d) for d in root.iterdir())
    if tables and not has_dirs:
        return _scan_tables(root, tables, text_column, label_column, outside)
    return _scan_folders(root)
