"""Hostile input: every bad image, text, data folder or weights file gets a clear typed error.

No crash, no escaping Pillow/TensorFlow/JSON exception, no code execution, and the user's
files (even the bad ones) are never modified. Covered:

* ``zoo.tasks.classify.read_image`` and ``zoo predict``: truncated/corrupt PNG and JPEG, decompression
  bombs, RGBA/LA/palette/CMYK/1-bit/16-bit images, non-image bytes with image extensions,
  empty files, a named pipe; plus a seeded mutation fuzzer (bit flips, truncations, byte
  insertions, duplicated runs) over real seed files, through ``read_image`` and through the
  user-image-folder pipeline of ``zoo.data.load``;
* text data: non-UTF-8 bytes, byte-order marks, NUL bytes, empty files, huge lines and
  fields, deeply nested or huge-number JSON, path-like texts and labels;
* hostile folders: symbolic links out of the data folder (skipped with one warning), link loops;
* weights: pickle payloads under every suffix (refused without unpickling: a payload that would
  create a marker folder leaves none), files of the wrong architecture or shape, damaged files.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from zoo.data.folders import DataWarning
from zoo.errors import DataError, InputError, WeightsFormatError

CAT = "hostile input"
FUZZ_CASES = 300
FUZZ_SEED = 20240611


# --------------------------------------------------------------------------------------
# Image files
# --------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming ``width x height`` RGB pixels, with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Seed images of every layout, and hostile files, by name."""
    from PIL import Image

    root = tmp_path_factory.mktemp("hostile-images")
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    files = {}

    def save(name, image, **kwargs):
        files[name] = root / name
        image.save(files[name], **kwargs)

    save("rgb.png", rgb)
    save("rgb.jpg", rgb, quality=92)
    save("progressive.jpg", rgb, quality=80, progressive=True)
    save("rgb.bmp", rgb)
    save("grey.png", rgb.convert("L"))
    save("rgba.png", rgb.convert("RGBA"))
    save("la.png", rgb.convert("LA"))
    save("palette.png", rgb.convert("P"))
    save("cmyk.jpg", rgb.convert("CMYK"))
    save("bilevel.png", rgb.convert("1"))
    save("sixteen.png", Image.fromarray(np.array([[0, 257, 32896, 65535]] * 3, dtype=np.uint16)))
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    files["animated.gif"] = root / "animated.gif"
    frames[0].save(files["animated.gif"], save_all=True, append_images=frames[1:])

    def write(name, data):
        files[name] = root / name
        files[name].write_bytes(data)

    write("empty.png", b"")
    write("text.png", b"this is not a picture\n" * 20)
    write("html.jpg", b"<html><body>404 not found</body></html>\n")
    write("truncated.png", files["rgb.png"].read_bytes()[:200])
    write("truncated.jpg", files["rgb.jpg"].read_bytes()[: len(files["rgb.jpg"].read_bytes()) // 2])
    bad_crc = bytearray(files["rgb.png"].read_bytes())
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    write("bad-crc.png", bytes(bad_crc))
    write("bomb-100000x100000.png", png_claiming(100_000, 100_000))
    write("bomb-10000x10000.png", png_claiming(10_000, 10_000))  # 1x-2x the limit: a warning in Pillow
    write("zero-width.png", png_claiming(0, 10))
    files["folder.png"] = root / "folder.png"
    files["folder.png"].mkdir()
    if hasattr(os, "mkfifo"):
        files["pipe.png"] = root / "pipe.png"
        os.mkfifo(files["pipe.png"])
    return root, files


GOOD = {  # name -> (channels read as rgb, check)
    "rgb.png": "rgb",
    "rgb.jpg": "rgb",
    "progressive.jpg": "rgb",
    "rgb.bmp": "rgb",
    "grey.png": "grey",
    "rgba.png": "rgb-exact",
    "la.png": "grey",
    "palette.png": "rgb",
    "cmyk.jpg": "rgb",
    "bilevel.png": "rgb",
    "sixteen.png": "sixteen",
    "animated.gif": "rgb",
}
BAD = {  # name -> message pattern of the InputError
    "empty.png": "empty",
    "text.png": "not a readable image",
    "html.jpg": "not a readable image",
    "truncated.png": "not a readable image",
    "truncated.jpg": "not a readable image",
    "bad-crc.png": "not a readable image",
    "bomb-100000x100000.png": "too large",
    "bomb-10000x10000.png": "too large",
    "zero-width.png": "not a readable image",
    "folder.png": "not a regular file",
    "pipe.png": "not a regular file",
    "missing.png": "no such file",
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_read_image_converts_every_layout(name, images, record):
    from PIL import Image

    from zoo.tasks.classify import read_image

    root, files = images
    with record.case(f"read_image: {name} converted", CAT, watch=[root]) as case:
        rgb, grey = read_image(files[name], "rgb"), read_image(files[name], "grayscale")
        assert rgb.dtype == grey.dtype == np.uint8
        assert rgb.shape[-1] == 3 and grey.shape[-1] == 1 and rgb.shape[:2] == grey.shape[:2]
        if GOOD[name] == "rgb-exact":  # alpha dropped, colours kept
            np.testing.assert_array_equal(rgb, np.asarray(Image.open(files["rgb.png"])))
        if GOOD[name] == "sixteen":  # scaled to 8 bits, not clipped at 255
            np.testing.assert_array_equal(grey[0, :, 0], [0, 1, 128, 255])
        case.outcome = f"uint8 {rgb.shape}"


@pytest.mark.parametrize("name", sorted(BAD))
def test_read_image_refuses_bad_files(name, images, record):
    from zoo.tasks.classify import read_image

    root, files = images
    if name == "pipe.png" and name not in files:
        pytest.skip("no named pipes on this platform")
    path = files.get(name, root / name)
    with record.case(f"read_image: {name} refused", CAT, watch=[root]) as case:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning either: a clear error or nothing
            with pytest.raises(InputError, match=BAD[name]) as err:
                read_image(path)
        assert str(path) in str(err.value)
        case.outcome = "InputError"


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of ``data``: bit flips, a truncation, inserted bytes or a duplicated run."""
    b = bytearray(data)
    op = rng.choice(["flip", "truncate", "insert", "duplicate"])
    if op == "flip":
        for _ in range(rng.randint(1, 12)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == "truncate":
        b = b[: rng.randrange(len(b))]
    elif op == "insert":
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        i = rng.randrange(len(b))
        j = rng.randrange(i, min(len(b), i + 512) + 1)
        k = rng.randrange(len(b))
        b[k:k] = b[i:j]
    return bytes(b), op


@pytest.fixture(scope="module")
def fuzzed(images, tmp_path_factory):
    """``FUZZ_CASES`` seeded mutations of the seed images, with image extensions."""
    _, files = images
    seeds = sorted(n for n in GOOD)
    rng = random.Random(FUZZ_SEED)
    root = tmp_path_factory.mktemp("fuzzed")
    cases = []
    for i in range(FUZZ_CASES):
        seed = rng.choice(seeds)
        data, op = mutate(files[seed].read_bytes(), rng)
        path = root / f"{i:03d}-{op}-{Path(seed).stem}{Path(seed).suffix}"
        path.write_bytes(data)
        cases.append((path, f"{op} of {seed}"))
    return root, cases


def test_read_image_fuzz(fuzzed, record):
    from zoo.tasks.classify import read_image

    root, cases = fuzzed
    failures = []
    for path, what in cases:
        try:
            name = f"read_image fuzz: {what} ({path.name[:3]})"
            with record.case(name, "image fuzz", watch=[path]) as case:
                for mode, channels in (("rgb", 3), ("grayscale", 1)):
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("error", Warning)
                            array = read_image(path, mode)
                    except InputError:
                        case.outcome = "InputError"
                        continue
                    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] == channels
                    case.outcome = case.outcome or "read"
        except Exception as exc:  # recorded as not survived; reported together below
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    assert failures == [], "\n".join(failures[:20])


def test_zoo_predict_cli_on_hostile_files(images, record):
    from zoo.cli import cli

    root, files = images
    runner = CliRunner()
    for name in [
        "rgba.png",
        "cmyk.jpg",
        "sixteen.png",
        "la.png",
        "empty.png",
        "text.png",
        "truncated.jpg",
        "bomb-100000x100000.png",
        "bomb-10000x10000.png",
    ]:
        with record.case(f"zoo predict: {name}", CAT, watch=[root]) as case:
            result = runner.invoke(cli, ["predict", "lenet5", str(files[name]), "--json"])
            assert "Traceback" not in result.output, result.output
            if name in GOOD:
                assert result.exit_code == 0, result.output
                case.outcome = "predicted"
            else:
                assert result.exit_code == 1, result.output
                lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
                assert len(lines) == 1 and name in lines[0], result.output
                case.outcome = "exit 1, one-line error"


# --------------------------------------------------------------------------------------
# User image folders (zoo.data.load)
# --------------------------------------------------------------------------------------


@pytest.fixture
def image_folder(images, fuzzed, tmp_path):
    """A user folder: 2 classes of good images, every hostile file, 60 fuzzed ones, and links."""
    from PIL import Image

    _, files = images
    _, cases = fuzzed
    root = tmp_path / "photos"
    rng = np.random.default_rng(1)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            image = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            image.save(root / label / f"good{i}.png")
    for name, path in files.items():
        if path.is_file():
            shutil.copy(path, root / "cat" / f"hostile-{name}")
    for path, _ in cases[:60]:
        shutil.copy(path, root / "dog" / path.name)
    return root


def test_image_folder_with_hostile_and_fuzzed_files_loads(image_folder, record):
    import zoo.data

    with record.case(
        "image folder: hostile + 60 fuzzed files among 8 good ones", CAT, watch=[image_folder]
    ) as case:
        with pytest.warns(DataWarning, match="skipped") as caught:
            ds, info = zoo.data.load(image_folder, image_size=(8, 8), batch_size=4, with_info=True)
        assert len([w for w in caught if issubclass(w.category, DataWarning)]) == 1
        labels = np.concatenate([batch["label"].numpy() for batch in ds])
        images = info.splits["train"]
        assert 8 <= len(labels) <= images and set(labels) <= {0, 1}
        case.outcome = f"{len(labels)} decoded of {images} scanned; {info.notes}"


@pytest.fixture
def linked_folder(tmp_path, images):
    """Links out of the data folder (a class folder, an image, /etc/passwd) and a link loop."""
    from PIL import Image

    outside = tmp_path / "elsewhere"
    (outside / "secret").mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(outside / "secret" / f"{i}.png")
    root = tmp_path / "data"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    os.symlink(outside / "secret", root / "stolen")  # a class folder that leads out
    os.symlink(outside / "secret" / "0.png", root / "a" / "outside.png")
    os.symlink("/etc/passwd", root / "a" / "passwd.png")
    os.symlink(outside / "secret", root / "b" / "nested-out")
    os.symlink(root / "a", root / "a" / "loop")  # a folder that contains itself
    os.symlink(root / "a" / "0.png", root / "b" / "in-tree.png")  # stays inside: kept
    return root, outside


def test_links_out_of_the_data_folder_are_skipped_with_one_warning(linked_folder, record):
    import zoo.data
    from zoo.data import folders

    root, outside = linked_folder
    with record.case("data folder with links out of it and a link loop", CAT, watch=[root, outside]) as case:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = folders.scan(root)
        messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
        assert len(messages) == 1 and "link out of the data folder" in messages[0], messages
        items, labels = data.splits["train"]
        assert data.label_names == ("a", "b")
        assert not any(str(outside) in os.path.realpath(p) for p in items)
        assert all(Path(os.path.realpath(p)).is_relative_to(root.resolve()) for p in items)
        assert sorted(Path(p).name for p in items) == ["0.png", "0.png", "1.png", "1.png", "in-tree.png"]
        assert [r for _, r in data.skipped].count("link out of the data folder") == 4
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            ds = zoo.data.load(root, batch_size=2)
            assert sum(int(b["label"].shape[0]) for b in ds) == 5
        case.outcome = "4 links skipped in one DataWarning, the loop read once, in-tree link kept"


# --------------------------------------------------------------------------------------
# Text data: CSV, JSONL, .txt folders
# --------------------------------------------------------------------------------------

TEXT_CASES = [
    # name, file content, expected: ("ok", labels, first texts) or ("error", message pattern)
    ("non-UTF-8 bytes in a CSV", "bad.csv", b"text,label\n\xff\xfe caf\xe9,a\nfine,b\n", ("ok", ("a", "b"))),
    ("CSV with a UTF-8 byte-order mark", "bom.csv", "\ufefftext,label\nhi,a\n".encode(), ("ok", ("a",))),
    ("UTF-16 CSV", "utf16.csv", "text,label\nhi,a\n".encode("utf-16"), ("ok", ("a",))),
    ("NUL bytes in a CSV", "nul.csv", b"text,label\nhe\x00llo,a\n", ("ok", ("a",))),
    ("empty CSV", "empty.csv", b"", ("error", "it is empty; it needs a header line")),
    ("CSV with a header only", "header.csv", b"text,label\n", ("error", "no usable rows")),
    (
        "CSV field over csv's 128 KiB limit",
        "huge.csv",
        b"text,label\n" + b"x" * 200_000 + b",a\n",
        ("error", "not valid CSV"),
    ),
    (
        "JSONL line of 5 MB",
        "long.jsonl",
        b'{"text": "' + b"y" * 5_000_000 + b'", "label": "a"}\n',
        ("ok", ("a",)),
    ),
    (
        "JSONL nested 100,000 deep",
        "deep.jsonl",
        b"[" * 100_000 + b'\n{"text": "ok", "label": "a"}\n',
        ("ok", ("a",)),
    ),
    (
        "JSONL number of 5,000 digits",
        "bigint.jsonl",
        b'{"text": "x", "label": ' + b"9" * 5000 + b'}\n{"text": "ok", "label": "b"}\n',
        ("ok", ("b",)),
    ),
    (
        "JSONL rows of the wrong types",
        "types.jsonl",
        b'{"text": 5, "label": "a"}\n[1, 2]\n"s"\n'
        b'{"text": "t", "label": null}\n{"text": "t", "label": "c"}\n',
        ("ok", ("c",)),
    ),
    ("empty JSONL", "empty.jsonl", b"", ("error", "it is empty; it needs one JSON object a line")),
    (
        "paths as texts and labels",
        "paths.csv",
        b"text,label\n../../../etc/passwd,../../etc/passwd\n/etc/shadow,~/.ssh/id_rsa\n",
        ("ok", ("../../etc/passwd", "~/.ssh/id_rsa")),
    ),
]


@pytest.mark.parametrize(
    ("name", "filename", "content", "expected"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES]
)
def test_hostile_text_tables(name, filename, content, expected, tmp_path, record):
    from zoo.data import folders

    path = tmp_path / filename
    path.write_bytes(content)
    with record.case(f"text: {name}", CAT, watch=[path]) as case:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            if expected[0] == "error":
                with pytest.raises(DataError, match=expected[1]):
                    folders.scan(path)
                case.outcome = "DataError"
                return
            data = folders.scan(path)
        assert data.label_names == expected[1]
        if filename == "paths.csv":  # strings, never opened as paths
            import zoo.data

            ds = zoo.data.load(path)
            assert [e["text"].numpy() for e in ds] == [b"../../../etc/passwd", b"/etc/shadow"]
        case.outcome = f"{sum(len(v[0]) for v in data.splits.values())} row(s)"


def test_hostile_text_folder(tmp_path, record):
    import zoo.data

    root = tmp_path / "texts"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "latin1.txt").write_bytes(b"caf\xe9 cr\xe8me\n")
    (root / "a" / "empty.txt").write_bytes(b"")
    (root / "a" / "utf16.txt").write_bytes("héllo".encode("utf-16"))
    (root / "b" / "huge.txt").write_bytes(b"z" * 3_000_000)
    (root / "b" / "binary.txt").write_bytes(bytes(range(256)) * 4)
    with record.case("text folder: non-UTF-8, empty, binary and 3 MB files", CAT, watch=[root]) as case:
        ds, info = zoo.data.load(root, batch_size=2, with_info=True)
        texts = [t for batch in ds for t in batch["text"].numpy()]
        assert len(texts) == 5 and info.label_names == ("a", "b")
        assert "café crème\n".encode() in texts and "héllo".encode() in texts
        case.outcome = "5 texts read"


# --------------------------------------------------------------------------------------
# Weights files
# --------------------------------------------------------------------------------------


class Payload:
    """Unpickling this object creates the folder ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


PICKLE_NAMES = [
    "evil.pth",
    "evil.pt",
    "evil.pkl",
    "evil.pickle",
    "evil.bin",
    "evil.ckpt",
    "evil.joblib",
    "evil.npy",
    "evil.weights.h5",
    "evil.h5",
    "evil.keras",
    "evil",
]


@pytest.mark.parametrize("filename", PICKLE_NAMES)
def test_pickle_payloads_are_refused_without_unpickling(filename, tmp_path, record):
    marker = tmp_path / "code-ran"
    path = tmp_path / filename
    if filename.endswith(".npy"):
        np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    with record.case(f"weights: pickle payload named {filename}", CAT, watch=[path]) as case:
        with pytest.raises(WeightsFormatError) as err:
            zoo.load("lenet5", weights=path)
        if filename.endswith(".keras"):
            with pytest.raises(WeightsFormatError):
                zoo.load_keras(path)
        assert not marker.exists(), "the pickle payload ran"
        case.outcome = f"WeightsFormatError ({str(err.value).split(': ', 1)[1][:40]}...)"


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("wrong-weights")
    resnet = root / "resnet20.weights.h5"
    zoo.build("resnet20").save_weights(resnet)
    lenet = root / "lenet5.weights.h5"
    zoo.build("lenet5").save_weights(lenet)
    return root, resnet, lenet


WRONG = [
    "another architecture's weights",
    "weights for another input shape",
    "truncated weights file",
    "random bytes named .weights.h5",
    "empty .weights.h5",
    "a .keras file of random bytes",
    "a folder named .weights.h5",
]


@pytest.mark.parametrize("case_name", WRONG)
def test_wrong_weights_files_are_a_clear_error(case_name, weights_files, tmp_path, record):
    root, resnet, lenet = weights_files
    kwargs = {}
    if case_name == "another architecture's weights":
        path = resnet
    elif case_name == "weights for another input shape":
        path, kwargs = lenet, {"input_shape": (32, 32, 3)}
    elif case_name == "truncated weights file":
        path = tmp_path / "cut.weights.h5"
        path.write_bytes(lenet.read_bytes()[:4000])
    elif case_name == "random bytes named .weights.h5":
        path = tmp_path / "noise.weights.h5"
        path.write_bytes(random.Random(0).randbytes(5000))
    elif case_name == "empty .weights.h5":
        path = tmp_path / "empty.weights.h5"
        path.write_bytes(b"")
    elif case_name == "a .keras file of random bytes":
        path = tmp_path / "noise.keras"
        path.write_bytes(random.Random(1).randbytes(5000))
    else:
        path = tmp_path / "dir.weights.h5"
        path.mkdir()
    with record.case(f"weights: {case_name}", CAT, watch=[root, path]) as case:
        with pytest.raises(WeightsFormatError) as err:
            zoo.load("lenet5", weights=path, **kwargs)
        assert "\n" not in str(err.value) and path.name in str(err.value)
        case.outcome = "WeightsFormatError"
