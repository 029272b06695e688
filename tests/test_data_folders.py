"""Tests of zoo.data on user data: image and text folders, CSV and JSONL, and bad input."""

from __future__ import annotations

import json
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo.data as zd
from zoo.data import DataWarning
from zoo.errors import DataError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _image(path: Path, size=(8, 6), color=(255, 0, 0), mode="RGB", fmt=None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    array[0, 0] = color if mode == "RGB" else color[0]
    Image.fromarray(array, mode).save(path, format=fmt)
    return array


def _tree(root: Path, layout: dict[str, int], ext=".png", **kwargs) -> None:
    for folder, count in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            _image(root / folder / f"img{i}{ext}", **kwargs)


def _collect(ds):
    return [{k: v.numpy() for k, v in element.items()} for element in ds]


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------------
# Image folders
# ---------------------------------------------------------------------------


def test_flat_image_folder(tmp_path, no_warnings):
    _tree(tmp_path, {"dog": 3, "cat": 2})
    _tree(tmp_path, {"bird": 1}, ext=".jpg", fmt="JPEG")
    ds, info = zd.load(tmp_path, with_info=True)
    assert info.label_names == ("bird", "cat", "dog")  # sorted
    assert info.splits == {"train": 6} and info.task == "image-classification"
    assert info.features["image"] == "uint8 (6, 8, 3)"
    assert ds.element_spec["image"].shape == (6, 8, 3)
    assert ds.element_spec["label"].dtype.name == "int64"
    elements = _collect(ds)
    assert [e["label"] for e in elements] == [0, 1, 1, 2, 2, 2]
    png = np.asarray(Image.open(tmp_path / "cat" / "img0.png"))
    np.testing.assert_array_equal(elements[1]["image"], png)
    jpeg = np.asarray(Image.open(tmp_path / "bird" / "img0.jpg").convert("RGB"))
    np.testing.assert_array_equal(elements[0]["image"], jpeg)  # INTEGER_ACCURATE == PIL
    assert zd.info(str(tmp_path)).label_names == info.label_names
    batches = list(zd.load(str(tmp_path), batch_size=4, shuffle=True, as_supervised=True))
    assert [b[0].shape[0] for b in batches] == [4, 2]
    with pytest.raises(DataError, match="no split 'test'.*kfold"):
        zd.load(tmp_path, "test")


def test_split_image_folder_labels_agree_between_splits(tmp_path, no_warnings):
    _tree(tmp_path / "train", {"a": 2, "b": 2, "c": 1})
    _tree(tmp_path / "val", {"b": 1, "c": 2})
    train, info = zd.load(tmp_path, "train", with_info=True)
    val = zd.load(tmp_path, "validation")
    assert info.label_names == ("a", "b", "c")
    assert info.splits == {"train": 5, "validation": 3}
    assert [e["label"] for e in _collect(val)] == [1, 2, 2]
    assert [e["label"] for e in _collect(train)] == [0, 0, 1, 1, 2]
    assert [e["label"] for e in _collect(zd.load(tmp_path, "dev"))] == [1, 2, 2]
    with pytest.raises(DataError, match="kfold"):
        zd.load(tmp_path, "train", kfold=(2, 0))


def test_class_named_like_a_split_with_files_is_flat(tmp_path, no_warnings):
    _tree(tmp_path, {"test": 2, "other": 1})
    assert zd.info(tmp_path).label_names == ("other", "test")


def test_grayscale_and_image_size(tmp_path, no_warnings):
    _image(tmp_path / "x" / "a.png", size=(10, 10))
    _image(tmp_path / "x" / "b.png", size=(12, 7))
    _image(tmp_path / "y" / "c.png", size=(5, 5), mode="L")
    unbatched = zd.load(tmp_path, color_mode="grayscale")
    assert unbatched.element_spec["image"].shape.as_list() == [None, None, 1]
    assert sorted(e["image"].shape for e in _collect(unbatched)) == [(5, 5, 1), (7, 12, 1), (10, 10, 1)]
    with pytest.raises(DataError, match="different sizes.*image_size"):
        zd.load(tmp_path, batch_size=2)
    sized = zd.load(tmp_path, batch_size=3, image_size=(4, 6))
    batch = next(iter(sized))["image"]
    assert batch.shape == (3, 4, 6, 3) and batch.dtype.name == "uint8"
    spec = zd.image_spec(resize=[16, 16])
    prepared = zd.load(tmp_path, batch_size=3, preprocessing=spec)
    assert prepared.element_spec["image"].shape.as_list() == [None, 16, 16, 3]
    with pytest.raises(DataError, match="image_size"):
        zd.load(tmp_path, image_size=(0, 3))
    with pytest.raises(DataError, match="color_mode"):
        zd.load(tmp_path, color_mode="cmyk")


def test_kfold_on_flat_folder(tmp_path, no_warnings):
    _tree(tmp_path, {"a": 5, "b": 5}, size=(4, 4))
    train, test = zd.kfold(tmp_path, k=5, fold=1)
    tr, te = _collect(train), _collect(test)
    assert len(tr) == 8 and len(te) == 2
    all_images = {e["image"].tobytes() for e in tr + te}
    assert len(all_images) == 10
    again = _collect(zd.load(tmp_path, "test", kfold=(5, 1)))
    assert [e["image"].tobytes() for e in again] == [e["image"].tobytes() for e in te]


# ---------------------------------------------------------------------------
# Bad image input
# ---------------------------------------------------------------------------


def test_bad_files_are_skipped_with_one_warning(tmp_path):
    _tree(tmp_path, {"ok": 2, "also": 1})
    (tmp_path / "ok" / "notes.txt").write_text("not an image")
    (tmp_path / "ok" / "garbage.png").write_bytes(b"this is not a png at all")
    (tmp_path / "ok" / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (6, 8)).save(tmp_path / "also" / "pic.tiff", format="TIFF")
    (tmp_path / "also" / ".DS_Store").write_bytes(b"\0\0")  # hidden: ignored silently
    (tmp_path / "stray.png").write_bytes(b"x")
    with pytest.warns(DataWarning) as record:
        ds = zd.load(tmp_path, batch_size=8)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 5 file(s)" in message
    assert "not an image" in message and "no image file extension" in message
    assert "1 WebP or TIFF (data folders take PNG, JPEG, GIF or BMP: convert them)" in message
    assert sum(int(b["label"].shape[0]) for b in ds) == 3


def test_webp_photos_beside_notes_make_an_image_folder(tmp_path):
    # WebP and TIFF count as images when the folder's kind is decided, so the skip says to convert them.
    _tree(tmp_path, {"cat": 1})
    for i in range(3):
        Image.new("RGB", (6, 6)).save(tmp_path / "cat" / f"p{i}.webp", format="WEBP")
    (tmp_path / "cat" / "notes.txt").write_text("where the photos were taken")
    (tmp_path / "cat" / "more.txt").write_text("camera settings")
    with pytest.warns(DataWarning) as record:
        found = zd.info(tmp_path)
    assert found.task == "image-classification" and found.splits == {"train": 1}
    message = str(record[0].message)
    assert "3 WebP or TIFF (data folders take PNG, JPEG, GIF or BMP: convert them)" in message
    assert "2 no image file extension" in message


def test_unsupported_image_format_counted(tmp_path):
    _tree(tmp_path, {"a": 1})
    Image.new("RGB", (8, 6)).save(tmp_path / "a" / "x.png", format="TIFF")  # TIFF named .png
    with pytest.warns(DataWarning, match="unsupported format TIFF"):
        assert zd.info(tmp_path).splits == {"train": 1}


def test_empty_class_folder_warns_and_is_skipped(tmp_path):
    _tree(tmp_path, {"a": 2, "c": 1})
    (tmp_path / "b").mkdir()
    with pytest.warns(DataWarning, match=r"1 class folder\(s\) without usable image files.*b"):
        ds, info = zd.load(tmp_path, with_info=True)
    assert info.label_names == ("a", "c")
    assert [e["label"] for e in _collect(ds)] == [0, 0, 1]


def test_a_class_only_outside_train_is_named(tmp_path, no_warnings):
    _tree(tmp_path / "train", {"cat": 2, "dog": 2})
    _tree(tmp_path / "validation", {"cat": 1, "dgo": 1})  # a misspelt folder
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = zd.info(tmp_path)
    assert info.label_names == ("cat", "dgo", "dog")
    (warned,) = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert warned.startswith("class(es) 'dgo' under") and "none in train" in warned
    zd.info(tmp_path / "train")  # one split: nothing to compare, no warning


def test_root_without_images_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.warns(DataWarning), pytest.raises(DataError, match="no usable image files"):
        zd.load(tmp_path)
    (tmp_path / "a" / "x.png").write_bytes(b"broken")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="no usable .*1 skipped"):
        zd.load(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no class folders"):
        zd.load(empty)


def test_missing_path_and_bad_file_type(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        zd.load(tmp_path / "missing")
    with pytest.raises(DataError, match="does not exist"):
        zd.load("./no/such/folder")
    with pytest.raises(DataError, match="does not exist"):
        zd.info(tmp_path / "missing.csv")
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="not a folder or a .csv"):
        zd.load(tmp_path / "data.parquet")


def test_corrupt_image_body_is_dropped_not_raised(tmp_path):
    _image(tmp_path / "a" / "good.png", size=(32, 32))
    _image(tmp_path / "a" / "cut.png", size=(32, 32))
    data = (tmp_path / "a" / "cut.png").read_bytes()
    (tmp_path / "a" / "cut.png").write_bytes(data[: len(data) // 2])  # header intact
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds, info = zd.load(tmp_path, batch_size=2, with_info=True)
    assert info.splits == {"train": 2}  # the header scan cannot see the damage
    batches = list(ds)
    assert [int(b["label"].shape[0]) for b in batches] == [1]


# ---------------------------------------------------------------------------
# Text folders, CSV and JSONL
# ---------------------------------------------------------------------------


def test_text_folder(tmp_path, no_warnings):
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg").mkdir()
    (tmp_path / "pos" / "1.txt").write_text("great film", encoding="utf-8")
    (tmp_path / "pos" / "2.txt").write_bytes("caf\xe9 scene".encode("latin-1"))
    (tmp_path / "neg" / "1.txt").write_text("dull ☹", encoding="utf-8")
    ds, info = zd.load(tmp_path, with_info=True, as_supervised=True)
    assert info.task == "text-classification" and info.label_names == ("neg", "pos")
    assert [(t.numpy().decode(), int(y)) for t, y in ds] == [
        ("dull ☹", 0),
        ("great film", 1),
        ("café scene", 1),
    ]
    spec = zd.text_spec(["great film dull"], tokenizer="word", max_length=4)
    batch = next(iter(zd.load(tmp_path, preprocessing=spec, batch_size=3)))
    assert batch["text"].shape == (3, 4)


def test_csv_and_jsonl(tmp_path, no_warnings):
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text('text,label\n"good, really",pos\nbad,neg\nfine,pos\n', encoding="utf-8")
    ds, info = zd.load(csv_path, with_info=True)
    assert info.label_names == ("neg", "pos")
    assert [(e["text"].decode(), e["label"]) for e in _collect(ds)] == [
        ("good, really", 1),
        ("bad", 0),
        ("fine", 1),
    ]
    jsonl = tmp_path / "rows.jsonl"
    rows = [{"sentence": "a", "y": 2}, {"sentence": "b", "y": 0}, {"sentence": "c", "y": "1"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ds, info = zd.load(jsonl, text_column="sentence", label_column="y", with_info=True)
    assert info.label_names == ("0", "1", "2")  # integer labels keep their values
    assert [e["label"] for e in _collect(ds)] == [2, 0, 1]
    unlabelled = zd.load(jsonl, text_column="sentence", label_column=None)
    assert set(unlabelled.element_spec) == {"text"}
    with pytest.raises(DataError, match="no labels"):
        zd.load(jsonl, text_column="sentence", label_column=None, as_supervised=True)


def test_table_folder_with_split_files(tmp_path, no_warnings):
    (tmp_path / "train.csv").write_text("text,label\nx,b\ny,a\n")
    (tmp_path / "test.jsonl").write_text('{"text": "z", "label": "c"}\n')
    train, info = zd.load(tmp_path, "train", with_info=True)
    assert info.splits == {"test": 1, "train": 2}
    assert info.label_names == ("a", "b", "c")
    assert [e["label"] for e in _collect(zd.load(tmp_path, "test"))] == [2]
    tsv = tmp_path / "more" / "data.tsv"
    tsv.parent.mkdir()
    tsv.write_text("label\ttext\nq\thello\n")
    assert [e["text"] for e in _collect(zd.load(tsv))] == [b"hello"]


def test_bad_tables(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": 1}\nnot json\n[1, 2]\n{"text": "no label"}\n')
    with pytest.warns(DataWarning, match=r"skipped 3 file\(s\)/row\(s\)") as record:
        ds = zd.load(bad)
    assert len(record) == 1
    assert [e["text"] for e in _collect(ds)] == [b"ok"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sentence,polarity\na,1\n")
    with pytest.raises(
        DataError,
        match=r"no column\(s\) \['text', 'label'\]; its columns are \['sentence', 'polarity'\]\. Name th",
    ):
        zd.load(wrong)
    assert [
        e["label"] for e in _collect(zd.load(wrong, text_column="sentence", label_column="polarity"))
    ] == [1]
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(DataError, match="no usable rows"):
        zd.load(empty)


def test_bare_word_is_a_name_unless_it_only_exists_as_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path / "mnist", {"a": 1})
    _tree(tmp_path / "mydata", {"a": 1, "b": 1})
    assert zd.info("mydata").label_names == ("a", "b")
    assert zd.info("mnist").name == "mnist"  # the named dataset wins
    assert zd.info("./mnist").label_names == ("a",)


def test_table_columns_are_refused_for_data_that_is_not_a_table(tmp_path):
    """They were ignored: a named dataset or an image folder read with columns it has not got."""
    folder = tmp_path / "photos"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        (folder / label / "x.txt").write_text("some text")
    for call in (zd.load, zd.info):
        with pytest.raises(DataError, match="choose the columns of CSV/TSV/JSONL data; 'mnist' is a named"):
            call("mnist", text_column="review")
        with pytest.raises(
            DataError, match="is a folder of examples in <label>/ sub-folders: leave them out"
        ):
            call(str(folder), label_column="stars")
    assert zd.info(str(folder)).label_names == ("a", "b")  # the default columns are no choice
