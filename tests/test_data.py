"""Tests of zoo.data on the real shared datasets, the tfds fallback and preprocessing specs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import zoo.data as zd
from tests.helpers import DATA_DIR as SHARED  # noqa: E402
from zoo.data import _paths, catalog, tfds_source
from zoo.data.tfds_source import TfdsRef, parse_tfds
from zoo.errors import DataError
from zoo.preprocessing.specs import validate_preprocessing

needs_data = pytest.mark.skipif(
    not (SHARED / "SHA256SUMS").is_file(),
    reason=f"shared datasets not found at {SHARED} (see ../shared/data/README.md)",
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (SHARED / "SHA256SUMS").is_file():
        pytest.skip(f"shared datasets not found at {SHARED}")
    monkeypatch.setenv("ZOO_DATA_DIR", str(SHARED))
    return SHARED


@pytest.fixture
def no_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)


def _mock_tfds(num_examples: int = 4):
    tfds = pytest.importorskip("tensorflow_datasets")
    return tfds.testing.mock_data(num_examples=num_examples)


# ---------------------------------------------------------------------------
# Import hygiene
# ---------------------------------------------------------------------------


def test_import_and_info_do_not_import_tensorflow():
    code = (
        "import sys, zoo.data as zd\n"
        "zd.info('mnist'); zd.info('mr'); zd.list_datasets()\n"
        "zd.validate_preprocessing(zd.image_spec())\n"
        "zd.parse_tfds('tfds:glue/sst2:validation')\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'tensorflow_datasets' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# Named datasets: real local copies
# ---------------------------------------------------------------------------


@needs_data
def test_mnist_real(data_dir):
    test = zd.load("mnist", "test")
    assert test.element_spec == {
        "image": _spec((28, 28, 1), "uint8"),
        "label": _spec((), "int64"),
    }
    assert int(test.cardinality()) == 10000
    first = next(iter(test))
    assert int(first["label"]) == 7  # the famous first test digit
    train, info = zd.load("MNIST", "train", with_info=True)
    assert int(train.cardinality()) == 60000
    assert info.splits == {"train": 60000, "test": 10000}
    assert info.location == str(SHARED.resolve())
    assert int(next(iter(train))["label"]) == 5
    images, labels = catalog.mnist_like(SHARED, "mnist", "train")
    assert images.shape == (60000, 28, 28, 1) and labels.min() == 0 and labels.max() == 9
    assert abs(images.mean() / 255 - 0.1307) < 1e-3  # the usual normalisation constants
    assert abs(images.std() / 255 - 0.3081) < 1e-3
    assert np.bincount(labels).tolist()[:2] == [5923, 6742]
    batch = next(iter(zd.load("mnist", "test", batch_size=10000)))
    assert batch["label"].numpy()[:5].tolist() == [7, 2, 1, 0, 4]


@needs_data
def test_fashion_mnist_real(data_dir):
    ds, info = zd.load("fashion-mnist", "train", as_supervised=True, with_info=True)
    image, label = next(iter(ds))
    assert image.shape == (28, 28, 1) and int(label) == 9
    assert info.label_names[9] == "Ankle boot"
    assert int(ds.cardinality()) == 60000


@needs_data
def test_cifar10_is_the_lossless_copy_in_official_order(data_dir):
    from PIL import Image

    ds, info = zd.load("cifar10", "test", batch_size=2500, with_info=True)
    assert info.label_names[0] == "airplane" and info.num_classes == 10
    assert "original 8-bit pixels" in info.notes
    images = np.concatenate([b["image"].numpy() for b in ds])
    labels = np.concatenate([b["label"].numpy() for b in ds])
    assert images.shape == (10000, 32, 32, 3) and images.dtype == np.uint8
    assert hashlib.sha256(images.tobytes()).hexdigest() == catalog.CIFAR10_PIXELS_SHA256["test"]
    assert labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # the official test order
    assert np.bincount(labels).tolist() == [1000] * 10
    # image 1000*k + j sits in file k at grid row j // 40, column j % 40
    for i in (0, 4321, 9999):
        k, j = divmod(i, 1000)
        grid = np.asarray(Image.open(SHARED / "cifar10-lossless" / f"test-{k:02d}.webp").convert("RGB"))
        row, col = divmod(j, 40)
        np.testing.assert_array_equal(images[i], grid[row * 32 : row * 32 + 32, col * 32 : col * 32 + 32])
    train_images, train_labels = catalog.cifar10_arrays(SHARED, "train")
    assert np.bincount(train_labels).tolist() == [5000] * 10
    np.testing.assert_allclose(train_images.reshape(-1, 3).mean(0) / 255, [0.4914, 0.4822, 0.4465], atol=5e-5)
    assert int(zd.load("cifar10", "train").cardinality()) == 50000


def test_cifar10_refuses_pixels_that_are_not_the_original(tmp_path):
    from PIL import Image

    if not (SHARED / "cifar10-lossless").is_dir():
        pytest.skip("no lossless CIFAR-10 copy")
    folder = tmp_path / "cifar10-lossless"
    folder.mkdir()
    for f in catalog.cifar10_files():
        if f.split("/")[1].startswith("test") or f.endswith(".npz"):
            (tmp_path / f).write_bytes((SHARED / f).read_bytes())
    grid = np.array(Image.open(folder / "test-03.webp").convert("RGB"))
    grid[5, 5] ^= 1  # one pixel, one level: still a valid lossless WebP
    Image.fromarray(grid).save(folder / "test-03.webp", lossless=True)
    with pytest.raises(DataError, match="not the original pixels"):
        catalog.cifar10_arrays(tmp_path, "test")


@needs_data
def test_tiny_shakespeare_real(data_dir):
    train, info = zd.load("tiny_shakespeare", "train", with_info=True)
    assert train.element_spec == {"text": _spec((), "string")}
    texts = [e["text"].numpy().decode() for e in train]
    assert len(texts) == 1
    train_text = texts[0]
    test_text = next(iter(zd.load("tiny_shakespeare", "test")))["text"].numpy().decode()
    val_text = next(iter(zd.load("shakespeare", "val")))["text"].numpy().decode()
    assert len(train_text) + len(test_text) == 1_115_394
    assert len(train_text) == int(1_115_394 * 0.9) == info.splits["train"]
    assert val_text == test_text and len(test_text) == info.splits["test"]
    assert train_text.startswith("First Citizen:")
    assert info.unit == "characters"


@needs_data
def test_mr_real_split_and_kfold(data_dir):
    train, info = zd.load("mr", "train", with_info=True)
    test = zd.load("mr", "test", as_supervised=True)
    assert info.label_names == ("neg", "pos")
    assert int(train.cardinality()) == 9595 and int(test.cardinality()) == 1067
    assert test.element_spec == (_spec((), "string"), _spec((), "int64"))
    tr_texts, tr_labels = catalog.mr_examples(SHARED, "train")
    te_texts, te_labels = catalog.mr_examples(SHARED, "test")
    assert len(tr_texts) + len(te_texts) == 10662
    assert int(tr_labels.sum() + te_labels.sum()) == 5331
    first_text, first_label = next(iter(test))
    assert first_text.numpy().decode() == te_texts[0] and int(first_label) == te_labels[0]
    # Folds partition the data; fold 0 of 10 is the fixed split.
    seen = []
    for fold in range(10):
        texts, _ = catalog.mr_examples(SHARED, "test", kfold=(10, fold))
        seen.extend(texts)
    assert sorted(seen) == sorted(tr_texts + te_texts)
    assert catalog.mr_examples(SHARED, "test", kfold=(10, 0))[0] == te_texts
    fold_train, fold_test = zd.kfold("mr", k=5, fold=2)
    assert int(fold_train.cardinality()) + int(fold_test.cardinality()) == 10662
    assert int(fold_test.cardinality()) in (2132, 2133)
    with pytest.raises(DataError, match="kfold"):
        zd.load("mr", "test", kfold=(10, 10))
    with pytest.raises(DataError, match="official splits"):
        zd.load("mnist", "test", kfold=(10, 1))


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        ("test", ("test", None)),
        (None, (None, None)),
        ("test[:1000]", ("test", (None, "1000"))),
        (" train [ 10% : -5 ] ", ("train", ("10%", "-5"))),
        ("validation[-10%:]", ("validation", ("-10%", None))),
        ("train[:]", ("train", (None, None))),
    ],
)
def test_split_slices_parse_as_tensorflow_datasets_writes_them(split, expected):
    assert zd.split_slice(split) == expected


@pytest.mark.parametrize(
    ("split", "says"),
    [
        ("test[5]", "is not NAME or NAME[START:STOP]"),
        ("[:3]", "is not NAME"),
        ("test[a:]", "is not NAME"),
        ("test[1:2:3]", "is not NAME"),
        ("test]", "is not NAME"),
        ("test[:150%]", "150% is over 100%"),
    ],
)
def test_malformed_split_slices_are_refused_with_the_form_to_write(split, says):
    with pytest.raises(DataError, match=re.escape(says)):
        zd.split_slice(split)


def _labels(name, split, **kwargs):
    batches = zd.load(name, split, batch_size=5000, as_supervised=True, **kwargs)
    return np.concatenate([np.asarray(y) for _, y in batches])


def test_a_split_slice_holds_those_examples_in_order(data_dir):
    whole = _labels("mnist", "test")
    assert np.array_equal(_labels("mnist", "test[:1000]"), whole[:1000])
    assert np.array_equal(_labels("mnist", "test[-10%:]"), whole[-1000:])
    assert np.array_equal(_labels("mnist", "test[10%:2500]"), whole[1000:2500])
    assert np.array_equal(_labels("mnist", "test[9990:20000]"), whole[9990:])  # Python's bounds
    fold = _labels("mr", "test", kfold=(10, 3))
    assert np.array_equal(_labels("mr", "test[:50]", kfold=(10, 3)), fold[:50])
    with pytest.raises(DataError, match=r"split 'test\[20000:\]' selects no examples: 'test' has 10,000"):
        zd.load("mnist", "test[20000:]")
    with pytest.raises(DataError, match="has no split 'validation'"):
        zd.load("mnist", "validation[:10]")
    with pytest.raises(DataError, match="one text counted in characters: split 'train\\[:10\\]' selects"):
        zd.load("tiny_shakespeare", "train[:10]")


def test_a_split_slice_of_a_table_of_ones_own(tmp_path):
    table = tmp_path / "reviews.csv"
    table.write_text(
        "text,label\n" + "".join(f"review {i},{'good' if i % 2 else 'bad'}\n" for i in range(10))
    )
    texts = [t.decode() for t in zd.load(table, "train[2:-5]").map(lambda e: e["text"]).as_numpy_iterator()]
    assert texts == ["review 2", "review 3", "review 4"]


def test_mr_reads_latin1_and_utf8(tmp_path):
    folder = tmp_path / "text" / "rt-polarity"
    folder.mkdir(parents=True)
    (folder / "rt-polarity.pos").write_bytes("un film d\xe9licieux .\nbravo .\n".encode("latin-1"))
    (folder / "rt-polarity.neg").write_bytes("ennuyeux ; d\xe9j\xe0 vu .\n".encode())
    texts, labels = catalog.mr_examples(tmp_path, "train", kfold=(3, 0))
    texts2, labels2 = catalog.mr_examples(tmp_path, "test", kfold=(3, 0))
    everything = dict(zip(texts + texts2, list(labels) + list(labels2), strict=True))
    assert everything == {"un film délicieux .": 1, "bravo .": 1, "ennuyeux ; déjà vu .": 0}


def test_mr_without_local_copy_says_where_to_put_it(no_data_dir, tmp_path):
    with pytest.raises(DataError, match="rt-polarity"):
        zd.load("mr")
    with pytest.raises(DataError, match="rt-polarity"):
        zd.load("mr", data_dir=tmp_path)


# ---------------------------------------------------------------------------
# Checksums and the data directory
# ---------------------------------------------------------------------------


def _fake_data_dir(root: Path, text: str, digest: str | None = None) -> Path:
    (root / "text").mkdir(parents=True, exist_ok=True)
    (root / "text" / "tinyshakespeare.txt").write_text(text, encoding="utf-8")
    digest = digest or hashlib.sha256(text.encode()).hexdigest()
    (root / "SHA256SUMS").write_text(f"{digest}  ./text/tinyshakespeare.txt\n")
    return root


def test_checksum_mismatch_names_the_file(tmp_path):
    _paths.clear_checksum_cache()
    root = _fake_data_dir(tmp_path, "To be, or not to be", digest="0" * 64)
    with pytest.raises(DataError, match=r"checksum mismatch.*tinyshakespeare\.txt"):
        zd.load("tiny_shakespeare", data_dir=root)


def test_checksum_verified_once_per_process(tmp_path, monkeypatch):
    _paths.clear_checksum_cache()
    root = _fake_data_dir(tmp_path, "abcdefghij" * 10)
    calls = []
    real = _paths._sha256
    monkeypatch.setattr(_paths, "_sha256", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        text = next(iter(zd.load("tiny_shakespeare", data_dir=root)))["text"].numpy()
    assert text == b"abcdefghij" * 9
    assert len(calls) == 1


def test_data_dir_argument_overrides_env_and_missing_dir_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"ZOO_DATA_DIR.*does not exist|does not exist.*ZOO"):
        zd.load("tiny_shakespeare")
    root = _fake_data_dir(tmp_path / "real", "hello world")
    _paths.clear_checksum_cache()
    ds = zd.load("tiny_shakespeare", "test", data_dir=root)
    assert next(iter(ds))["text"].numpy() == b"ld"  # int(11 * 0.9) = 9
    with pytest.raises(DataError, match="does not exist"):
        zd.load("mnist", data_dir=tmp_path / "missing")
    with pytest.raises(DataError, match="no local copy"):
        zd.load("mnist", data_dir=root, source="local")


# ---------------------------------------------------------------------------
# tfds fallback (no network: tfds.testing.mock_data)
# ---------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "tiny_shakespeare"])
def test_tfds_path_has_identical_element_spec(name, data_dir):
    supervised = [False] if name == "tiny_shakespeare" else [False, True]
    with _mock_tfds():
        for as_supervised in supervised:
            remote = zd.load(name, "test", source="tfds", as_supervised=as_supervised)
            local = zd.load(name, "test", source="local", as_supervised=as_supervised)
            assert remote.element_spec == local.element_spec
            batched_remote = zd.load(name, "test", source="tfds", batch_size=3)
            batched_local = zd.load(name, "test", batch_size=3)
            assert batched_remote.element_spec == batched_local.element_spec
            assert len(list(remote)) >= 1


def test_tfds_fallback_when_no_local_copy(no_data_dir):
    with _mock_tfds(num_examples=6):
        ds, info = zd.load("mnist", "train", batch_size=4, with_info=True)
        assert info.location == "tfds:mnist"
        assert zd.info("mnist").location == "tfds:mnist"
        labels = np.concatenate([b["label"].numpy() for b in ds])
        assert len(labels) == 6 and labels.dtype == np.int64
        text = list(zd.load("tiny_shakespeare", "validation"))
        assert len(text) == 1  # tfds' validation + test joined into one element
        spec = zd.image_spec(color_mode="rgb", scale=1 / 255)
        cifar = zd.load("cifar10", "test", preprocessing=spec, augment="cifar", shuffle=True)
        assert cifar.element_spec["image"] == _spec((32, 32, 3), "float32")


def test_tfds_string_loading(no_data_dir):
    with _mock_tfds(num_examples=5):
        ds, info = zd.load("tfds:mnist:test", with_info=True)
        assert info.name == "tfds:mnist" and info.supervised_keys == ("image", "label")
        assert int(ds.cardinality()) == 5
        sup = zd.load(" TFDS:mnist ", "train", as_supervised=True, batch_size=2)
        assert isinstance(sup.element_spec, tuple)
        with pytest.raises(DataError, match="conflicting splits"):
            zd.load("tfds:mnist:test", "train")
        with pytest.raises(DataError, match="Did you mean 'mnist'"):
            zd.load("tfds:mnsit")


def test_tfds_failures_become_data_errors(no_data_dir, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'\n(long traceback)")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.setattr(tfds_source, "unresolvable", lambda hosts: [])  # fail in tfds.load, not before
    with pytest.raises(DataError, match=r"could not load 'mnist'.*ConnectionError: Failed to") as auto:
        zd.load("mnist")
    assert "no local copy" in str(auto.value)  # the copy it looked for first is named
    with pytest.raises(DataError, match=r"could not load 'mnist'.*ConnectionError: Failed to") as asked:
        zd.load("mnist", source="tfds")
    assert "local copy" not in str(asked.value)  # tfds was asked for: no copy was looked for
    with pytest.raises(DataError, match=r"could not load 'glue/sst2' split 'validation'"):
        zd.load("tfds:glue/sst2:validation")


def test_a_failed_tfds_download_leaves_only_what_was_there(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from zoo.data.tfds_source import load_tfds

    def half_download(name, *, data_dir, **kwargs):
        (Path(data_dir) / name / "3.0.1.incomplete").mkdir(parents=True)
        (Path(data_dir) / "downloads" / "extracted").mkdir(parents=True)
        raise ConnectionError("connection reset")

    monkeypatch.setattr(tfds, "load", half_download)
    monkeypatch.setattr(tfds_source, "unresolvable", lambda hosts: [])  # fail in tfds.load, not before
    fresh = tmp_path / "fresh"
    with pytest.raises(DataError, match="connection reset"):
        load_tfds(TfdsRef("mnist"), "test", data_dir=str(fresh))
    assert not fresh.exists()
    kept = tmp_path / "kept"
    (kept / "cifar10").mkdir(parents=True)
    (kept / "downloads" / "manual.tar").parent.mkdir()
    (kept / "downloads" / "manual.tar").write_bytes(b"user data")
    with pytest.raises(DataError, match="connection reset"):
        load_tfds(TfdsRef("mnist"), "test", data_dir=str(kept))
    assert sorted(p.name for p in kept.iterdir()) == ["cifar10", "downloads"]
    assert (kept / "downloads" / "manual.tar").read_bytes() == b"user data"

    def interrupted(name, *, data_dir, **kwargs):
        (Path(data_dir) / name / "3.0.1.incomplete").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(tfds, "load", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stays Ctrl-C, and cleans up the same
        load_tfds(TfdsRef("mnist"), "test", data_dir=str(fresh))
    assert not fresh.exists()


def test_unresolvable_names_the_hosts_this_machine_cannot_resolve():
    assert tfds_source.unresolvable(["localhost", "no-such-host.invalid"]) == ["no-such-host.invalid"]


def test_an_offline_tfds_download_fails_at_once_and_leaves_nothing(tmp_path, monkeypatch):
    """Real tfds, real name resolution: refused in seconds, not after tfds' minutes of retries."""
    pytest.importorskip("tensorflow_datasets")
    import time

    from zoo.data.tfds_source import load_tfds

    if not tfds_source.unresolvable(["storage.googleapis.com"]):
        pytest.skip("this machine resolves storage.googleapis.com: tfds would download MNIST")
    for variable in tfds_source.PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"download 'mnist' from storage.googleapis.com.*cannot resolve"):
        load_tfds(TfdsRef("mnist"), "test", data_dir=str(tmp_path / "tfds"))
    assert time.monotonic() - start < 30
    assert not (tmp_path / "tfds").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tfds:mnist", TfdsRef("mnist")),
        ("tfds:mnist:test", TfdsRef("mnist", None, "test")),
        ("TFDS: glue/sst2 : validation", TfdsRef("glue", "sst2", "validation")),
        ("tfds:mnist:train[:10%]+test", TfdsRef("mnist", None, "train[:10%]+test")),
        ("tfds:wmt14_translate/de-en:train[10:20]", TfdsRef("wmt14_translate", "de-en", "train[10:20]")),
    ],
)
def test_parse_tfds_valid(text, expected):
    assert parse_tfds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tfds:",
        "tfds:mnist:",
        "tfds:/sst2",
        "tfds:glue/",
        "tfds:Mnist!",
        "tfds:mnist:3.0.1",
        "tfds:mnist:train[:10%",
        "tfds:mnist:tr ain",
        "mnist",
    ],
)
def test_parse_tfds_invalid(text):
    with pytest.raises(DataError, match="tfds"):
        parse_tfds(text)


def test_unknown_dataset_name_suggests():
    with pytest.raises(DataError, match=r"Did you mean .*'mnist'.*tfds:NAME"):
        zd.load("mnsit")
    with pytest.raises(DataError, match="Did you mean 'cifar10'"):
        zd.info("cifar01")
    with pytest.raises(DataError, match="unknown dataset 'zzzz'"):
        zd.load("zzzz")
    with pytest.raises(DataError, match="has no split"):
        zd.info("mnist") and zd.load("mnist", "validation")


# ---------------------------------------------------------------------------
# Pipeline options
# ---------------------------------------------------------------------------


@needs_data
def test_shuffle_is_seeded_and_cache_works(data_dir, tmp_path):
    def labels(**kw):
        ds = zd.load("mnist", "test", batch_size=500, **kw)
        return np.concatenate([b["label"].numpy() for b in ds.take(4)])

    plain = labels()
    a, b, c = labels(shuffle=True, seed=1), labels(shuffle=True, seed=1), labels(shuffle=True, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, plain)
    cached = zd.load("mnist", "test", cache=True, shuffle=True, seed=1, batch_size=5000)
    epoch1 = np.concatenate([x["label"].numpy() for x in cached])
    epoch2 = np.concatenate([x["label"].numpy() for x in cached])
    assert sorted(epoch1) == sorted(epoch2) and not np.array_equal(epoch1, epoch2)
    on_disk = zd.load("cifar10", "test", cache=str(tmp_path / "cache"), batch_size=5000)
    assert sum(int(x["label"].shape[0]) for x in on_disk) == 10000
    dropped = zd.load("mnist", "test", batch_size=3000, drop_remainder=True)
    assert dropped.element_spec["image"].shape == (3000, 28, 28, 1)
    assert int(dropped.cardinality()) == 3


@needs_data
@pytest.mark.parametrize("augment", ["cifar", "cifar_cutout"])
def test_augment_is_reproducible_and_changes_each_epoch(data_dir, augment):
    def first_batch(ds):
        return next(iter(ds))["image"].numpy()

    ds = zd.load("cifar10", "test", augment=augment, seed=3, batch_size=64)
    again = zd.load("cifar10", "test", augment=augment, seed=3, batch_size=64)
    plain = first_batch(zd.load("cifar10", "test", batch_size=64))
    one, two, other = first_batch(ds), first_batch(ds), first_batch(again)
    assert one.dtype == np.uint8 and one.shape == plain.shape
    assert np.array_equal(one, other)
    assert not np.array_equal(one, two) and not np.array_equal(one, plain)
    with pytest.raises(DataError, match="augment"):
        zd.load("mr", augment="cifar")
    with pytest.raises(DataError, match="unknown augmentation"):
        zd.load("cifar10", augment="rotate")


@needs_data
def test_epoch_keyed_passes_give_a_resumed_run_the_epochs_of_an_unbroken_one(data_dir):
    """With ``initial_epoch``, pass k is epoch ``initial_epoch + k`` whatever object gives it."""
    import tensorflow as tf

    def first_batch(ds):
        batch = next(iter(ds))
        return batch["image"].numpy(), batch["label"].numpy()

    kw = {"shuffle": True, "augment": "cifar_cutout", "seed": 3, "batch_size": 500}
    unbroken = zd.load("cifar10", "test", initial_epoch=0, **kw)
    epochs = [first_batch(unbroken) for _ in range(3)]
    tf.random.set_seed(11)  # the process's global seed does not enter the draws
    try:
        resumed = first_batch(zd.load("cifar10", "test", initial_epoch=2, **kw))
    finally:
        tf.random.set_seed(None)
    assert np.array_equal(resumed[0], epochs[2][0]) and np.array_equal(resumed[1], epochs[2][1])
    assert not np.array_equal(epochs[0][1], epochs[1][1]), "a new order each epoch"
    assert not np.array_equal(np.sort(epochs[1][0], axis=0), np.sort(epochs[2][0], axis=0))
    assert int(unbroken.cardinality()) == 20 and sum(len(b["label"]) for b in unbroken) == 10000
    cached = zd.load("mnist", "test", cache=True, shuffle=True, seed=1, batch_size=5000, initial_epoch=0)
    passes = [np.concatenate([b["label"].numpy() for b in cached]) for _ in range(2)]
    again = zd.load("mnist", "test", cache=True, shuffle=True, seed=1, batch_size=5000, initial_epoch=1)
    assert np.array_equal(np.concatenate([b["label"].numpy() for b in again]), passes[1])
    assert sorted(passes[0]) == sorted(passes[1]) and not np.array_equal(*passes)
    with pytest.raises(DataError, match="initial_epoch must be a non-negative integer"):
        zd.load("cifar10", "test", initial_epoch=-1)


@needs_data
def test_batched_decode_matches_per_image_decode(data_dir):
    batched = next(iter(zd.load("cifar10", "test", shuffle=True, seed=5, batch_size=64)))
    single = list(zd.load("cifar10", "test", shuffle=True, seed=5).take(64))
    np.testing.assert_array_equal(batched["image"], np.stack([e["image"] for e in single]))
    np.testing.assert_array_equal(batched["label"], [int(e["label"]) for e in single])


def test_cifar_augment_outputs_are_padded_crops_or_their_mirrors():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (16, 8, 8, 3), dtype=np.uint8)
    out = zd.cifar_augment(tf.constant(images), tf.constant([4, 2])).numpy()
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    flipped = 0
    for i in range(16):
        candidates = {
            (dy, dx, f): padded[i, dy : dy + 8, dx : dx + 8][:, :: (-1 if f else 1)]
            for dy in range(9)
            for dx in range(9)
            for f in (0, 1)
        }
        matches = [k for k, c in candidates.items() if np.array_equal(c, out[i])]
        assert matches, f"image {i} is not a padded crop"
        flipped += matches[0][2]
    assert 0 < flipped < 16


def test_cutout_zeroes_one_square_per_image_clipped_by_the_border():
    import tensorflow as tf

    images = np.full((64, 32, 32, 3), 7, np.uint8)
    out = zd.random_cutout(tf.constant(images), tf.constant([3, 1]), size=16).numpy()
    zeroed = (out == 0).all(axis=-1)
    assert set(np.unique(out)) == {0, 7} and ((out == 0).any(axis=-1) == zeroed).all()
    areas = zeroed.sum(axis=(1, 2))
    assert areas.max() == 256 and 64 <= areas.min() < 256  # whole squares, and squares cut by the border
    for mask in zeroed:  # one axis-aligned rectangle each
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert mask.sum() == len(rows) * len(cols) and np.ptp(rows) == len(rows) - 1
    again = zd.random_cutout(tf.constant(images), tf.constant([3, 1]), size=16).numpy()
    np.testing.assert_array_equal(out, again)
    both = zd.cifar_cutout_augment(tf.constant(images[:4] + 1), tf.constant([5, 5])).numpy()
    assert both.shape == (4, 32, 32, 3) and (both == 0).any() and (both == 8).any()
    from zoo.data.augment import get_augment, is_builtin

    assert get_augment("cifar_cutout") is zd.cifar_cutout_augment and is_builtin(zd.random_cutout)


def test_augment_helpers():
    import tensorflow as tf

    image = tf.reshape(tf.range(4 * 6 * 3, dtype=tf.int32) % 251 + 1, (4, 6, 3))
    image = tf.cast(image, tf.uint8)
    seed = tf.constant([1, 2])
    out = zd.cifar_augment(image, seed)
    assert out.shape == image.shape and out.dtype == tf.uint8
    np.testing.assert_array_equal(out, zd.cifar_augment(image, seed))
    crops = {zd.random_crop_with_padding(image, tf.constant([i, 0]), 2).numpy().tobytes() for i in range(20)}
    assert len(crops) > 5
    flips = [zd.random_flip_left_right(image, tf.constant([i, 7])).numpy() for i in range(20)]
    assert any(np.array_equal(f, image.numpy()[:, ::-1]) for f in flips)
    assert any(np.array_equal(f, image.numpy()) for f in flips)


@needs_data
def test_bad_pipeline_arguments(data_dir):
    with pytest.raises(DataError, match="batch_size"):
        zd.load("mnist", batch_size=0)
    with pytest.raises(DataError, match="source"):
        zd.load("mnist", source="web")
    with pytest.raises(DataError, match="no labels"):
        zd.load("tiny_shakespeare", as_supervised=True)
    with pytest.raises(DataError, match="invalid preprocessing spec"):
        zd.load("mnist", preprocessing={"type": "image"})
    with pytest.raises(DataError, match="cannot prepare"):
        zd.load("mnist", preprocessing=zd.text_spec(tokenizer="char"))
    with pytest.raises(DataError, match="empty dataset name"):
        zd.load("  ")


# ---------------------------------------------------------------------------
# Preprocessing specs
# ---------------------------------------------------------------------------

LENET = {
    "type": "image",
    "color_mode": "grayscale",
    "resize": None,
    "interpolation": "bilinear",
    "center_crop": None,
    "pad_to": [32, 32],
    "scale": 0.00392156862745098,
    "mean": None,
    "std": None,
}


def test_validate_preprocessing_accepts_good_specs():
    validate_preprocessing(LENET)
    validate_preprocessing(
        {
            **LENET,
            "color_mode": "rgb",
            "resize": 256,
            "center_crop": [224, 224],
            "pad_to": None,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "interpolation": "bicubic",
        }
    )
    validate_preprocessing({**LENET, "resize": [28, 28], "mean": [0.1307], "std": [0.3081]})
    for tokenizer in ("char", "word", "wordpiece"):
        validate_preprocessing(
            {"type": "text", "tokenizer": tokenizer, "vocab": None, "max_length": 128, "lowercase": True}
        )
    validate_preprocessing(
        {
            "type": "text",
            "tokenizer": "wordpiece",
            "vocab": "vocab.txt",
            "max_length": None,
            "lowercase": False,
        }
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown key"),
        ({"mean": "__delete__"}, "missing key"),
        ({"type": "audio"}, "type"),
        ({"color_mode": "cmyk"}, "color_mode"),
        ({"resize": 0}, "resize"),
        ({"resize": [32]}, "resize"),
        ({"resize": True}, "resize"),
        ({"center_crop": 24}, "center_crop"),
        ({"pad_to": [32, -1]}, "pad_to"),
        ({"interpolation": "lanczos"}, "interpolation"),
        ({"scale": "1/255"}, "scale"),
        ({"scale": 0}, "scale"),
        ({"mean": [0.5, 0.5, 0.5]}, "mean"),
        ({"std": [0.0]}, "std"),
        ({"std": [float("nan")]}, "std"),
    ],
)
def test_validate_preprocessing_rejects_bad_image_specs(change, message):
    spec = {**LENET, **change}
    spec = {k: v for k, v in spec.items() if v != "__delete__"}
    with pytest.raises(ValueError, match=message):
        validate_preprocessing(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "text", "tokenizer": "bpe", "vocab": None, "max_length": 1, "lowercase": True},
            "tokenizer",
        ),
        (
            {"type": "text", "tokenizer": "char", "vocab": ["a", "a"], "max_length": None, "lowercase": True},
            "duplicate",
        ),
        (
            {"type": "text", "tokenizer": "char", "vocab": [1, 2], "max_length": None, "lowercase": True},
            "vocab",
        ),
        (
            {"type": "text", "tokenizer": "char", "vocab": None, "max_length": 0, "lowercase": True},
            "max_length",
        ),
        (
            {"type": "text", "tokenizer": "char", "vocab": None, "max_length": None, "lowercase": "yes"},
            "lowercase",
        ),
        ({"type": "text", "tokenizer": "char", "vocab": None, "max_length": None}, "missing"),
        ("not a dict", "dict"),
    ],
)
def test_validate_preprocessing_rejects_bad_text_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_preprocessing(spec)


def test_image_transform_order_and_values():
    import tensorflow as tf

    image = np.full((28, 28, 1), 255, np.uint8)
    out = zd.image_transform(LENET)(image)
    assert out.dtype == tf.float32 and out.shape == (32, 32, 1)
    out = out.numpy()
    assert out[2:30, 2:30].min() == pytest.approx(1.0) and out[:2].max() == 0 and out[:, 30:].max() == 0

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    spec = {
        **LENET,
        "color_mode": "rgb",
        "resize": 20,
        "center_crop": [16, 16],
        "pad_to": [18, 18],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.25, 0.5],
    }
    out = zd.image_transform(spec)(rgb).numpy()
    assert out.shape == (18, 18, 3)
    np.testing.assert_allclose(out[9, 9], [1.0, (128 / 255 - 0.5) / 0.25, -1.0], atol=1e-5)
    np.testing.assert_allclose(out[0, 0], [-1.0, -2.0, -1.0])  # zero padding, then normalised
    gray = zd.image_transform({**LENET, "pad_to": None})(rgb).numpy()
    expected = (0.2989 * 255 + 0.5870 * 128) / 255
    np.testing.assert_allclose(gray[0, 0, 0], expected, atol=2 / 255)
    batch = zd.image_transform({**spec, "resize": [24, 30]})(np.stack([rgb, rgb]))
    assert batch.shape == (2, 18, 18, 3)
    up = zd.image_transform(
        {**LENET, "color_mode": "rgb", "pad_to": None, "resize": [2, 2], "interpolation": "nearest"}
    )(np.arange(4, dtype=np.uint8).reshape(2, 2, 1))
    assert up.shape == (2, 2, 3)
    np.testing.assert_allclose(up.numpy()[..., 0] * 255, [[0, 1], [2, 3]], atol=1e-4)


def test_text_transforms_char_and_word():
    char = zd.text_spec(["hello"], tokenizer="char", max_length=8)
    assert char["vocab"][:2] == ["[PAD]", "[UNK]"]
    ids = zd.text_transform(char)("hellox").numpy()
    vocab = char["vocab"]
    assert ids.tolist() == [vocab.index(c) for c in "hello"] + [1, 0, 0]
    no_vocab = zd.text_transform({**char, "vocab": None, "max_length": None})("Hé")
    assert no_vocab.numpy().tolist() == [ord("H"), ord("é")]
    plain = {**char, "vocab": ["a", "b"], "max_length": None}
    assert zd.text_transform(plain)("abcab").numpy().tolist() == [0, 1, 0, 1]  # no [UNK]: dropped

    texts = ["a good film .", "a bad film .", "good good"]
    word = zd.text_spec(texts, tokenizer="word", lowercase=True, max_length=5)
    assert word["vocab"] == ["[PAD]", "[UNK]", "good", ".", "a", "film", "bad"]
    assert zd.build_vocab(texts, "word", lowercase=True) == word["vocab"]
    encode = zd.text_transform(word)
    assert encode("A GOOD odd film").numpy().tolist() == [4, 2, 1, 5, 0]
    with pytest.raises(ValueError, match="special tokens"):  # WordPiece needs [CLS] and [SEP]
        zd.text_transform({**word, "tokenizer": "wordpiece"})
    with pytest.raises(ValueError, match="needs a vocab"):
        zd.text_transform({**word, "vocab": None})


def test_text_transform_vocab_file(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhi\nthere\n", encoding="utf-8")
    spec = {"type": "text", "tokenizer": "word", "vocab": "vocab.txt", "max_length": None, "lowercase": False}
    assert zd.text_transform(spec, base_dir=tmp_path)("hi you there").numpy().tolist() == [2, 1, 3]
    with pytest.raises(ValueError, match="cannot read vocab"):
        zd.text_transform(spec, base_dir=tmp_path / "elsewhere")


@needs_data
def test_text_pipeline_on_mr_with_word_vocab(data_dir):
    texts, _ = catalog.mr_examples(SHARED, "train")
    spec = zd.text_spec(texts, tokenizer="word", max_size=5000, max_length=None)
    assert len(spec["vocab"]) == 5000
    ds = zd.load("mr", "test", preprocessing=spec, batch_size=32, as_supervised=True)
    ids, labels = next(iter(ds))
    assert ids.dtype.name == "int32" and ids.shape[0] == 32 and labels.shape == (32,)
    assert int(ids.numpy().max()) < 5000
    fixed = zd.load("mr", "test", preprocessing={**spec, "max_length": 40}, batch_size=32)
    assert fixed.element_spec["text"].shape == (None, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shakespeare = zd.text_spec(["ab"], tokenizer="char")
        ids = next(iter(zd.load("tiny_shakespeare", "test", preprocessing=shakespeare)))["text"]
    assert ids.shape == (111540,)


def _spec(shape, dtype):
    import tensorflow as tf

    return tf.TensorSpec(shape=shape, dtype=getattr(tf, dtype))


def test_partial_of_a_helper_runs_per_batch():
    import functools

    from zoo.data.augment import is_builtin

    assert is_builtin("cifar") and is_builtin(zd.cifar_augment)
    assert is_builtin(functools.partial(zd.random_crop_with_padding, padding=2))
    assert not is_builtin(lambda image, seed: image)


@needs_data
def test_lenet_style_training_pipeline(data_dir):
    import functools

    spec = {**LENET, "resize": [28, 28]}
    shift = functools.partial(zd.random_crop_with_padding, padding=2)
    ds = zd.load(
        "mnist",
        "train",
        batch_size=256,
        shuffle=True,
        seed=1,
        preprocessing=spec,
        augment=shift,
        as_supervised=True,
        drop_remainder=True,
    )
    assert ds.element_spec[0].shape == (256, 32, 32, 1)
    assert int(ds.cardinality()) == 60000 // 256
    images, labels = next(iter(ds))
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0 + 1e-6
    assert labels.dtype.name == "int64"


def test_incomplete_local_copy_warns_and_falls_back(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with _mock_tfds(num_examples=3), pytest.warns(zd.DataWarning, match="incomplete local copy"):
        ds, info = zd.load("mnist", data_dir=tmp_path, with_info=True)
    assert info.location == "tfds:mnist"


def test_corrupt_idx_file_is_a_data_error(tmp_path):
    import gzip

    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        with gzip.open(folder / name, "wb") as handle:
            handle.write(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes(b"not gzip")
    with pytest.raises(DataError, match="truncated or padded"):
        zd.load("mnist", "test", data_dir=tmp_path)


@pytest.mark.parametrize(
    "name, size, natural",
    [
        ("lenet5", (28, 28), (28, 28)),
        ("resnet20", (32, 32), (32, 32)),
        ("efficientnet_lite0", (224, 224), (300, 400)),
    ],
)
def test_split_geometry_leaves_resize_and_crop_to_the_caller(name, size, natural):
    """geometry (caller, uint8) then the baked spec = the entry's whole transform, up to uint8 rounding."""
    import zoo
    from zoo.preprocessing import geometry_transform, split_geometry

    entry = zoo.weights_entry(name)
    spec = dict(entry.preprocessing)
    baked, got = split_geometry(spec, tuple(entry.input_shape))
    assert got == size and baked["resize"] is None and baked["center_crop"] is None
    channels = entry.input_shape[-1]
    geometry = geometry_transform(spec, size)
    odd = np.random.default_rng(1).integers(0, 256, (2, 40, 50, channels), np.uint8)
    assert np.asarray(geometry(odd)).shape == (2, *size, channels)  # any size in, the export's size out
    # smooth photos-like images: bicubic overshoot on noise would be clipped to uint8
    yy, xx = np.meshgrid(np.arange(natural[0]), np.arange(natural[1]), indexing="ij")
    wave = 128 + 90 * np.sin(yy / 7.0)[..., None] * np.cos(xx[..., None] / 11.0 + np.arange(channels))
    raw = np.stack([wave, 255 - wave]).round().astype(np.uint8)
    images = np.asarray(geometry(raw))
    assert images.dtype == np.uint8 and images.shape == (2, *size, channels)
    whole = np.asarray(zd.image_transform(spec)(raw))
    halves = np.asarray(zd.image_transform(baked)(images))
    assert halves.shape == whole.shape == (2, *entry.input_shape)
    step = float(spec["scale"]) / min(spec["std"] or [1.0])  # one uint8 level after normalisation
    assert np.max(np.abs(halves - whole)) <= 0.5 * step + 1e-6
