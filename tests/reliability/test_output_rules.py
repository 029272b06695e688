"""The output rules (zoo.outputs) for every command that writes: export, finetune, extract, sample.

Each case runs the real CLI in-process on careless or hostile ``--out`` targets and checks:

* every pre-existing user byte survives (the recorder hashes the watched trees before and after);
* the command never calls a delete or a replace on a path that existed before it ran: a guard on
  ``os.remove``/``os.unlink``/``os.rmdir``/``os.replace``/``os.rename``/``shutil.rmtree`` blocks such
  a call (raising ``PermissionError``) and fails the case;
* a refusal is one ``Error:`` line and a non-zero exit, never a traceback.

Categories: output ownership (rule 1), resume means same inputs (rule 2), validation at the
boundary (rule 3), training fails loudly (rule 4), data read as people see it (rule 5, classes),
and outputs are locked (rule 9).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import numpy
from tests.test_transfer import digits_folder  # noqa: F401  (a fixture: real digits as PNGs)

OWN, RESUME, VALID, LOUD, DATA, LOCK = (
    "outputs: ownership",
    "outputs: resume means same inputs",
    "validation at the boundary",
    "training fails loudly",
    "data as people see it",
    "outputs: locks",
)


class DeleteGuard:
    """Block and record deletes or replacements of paths that existed before the command ran."""

    def __init__(self, protected_roots: list[Path], extra: list[Path] = ()) -> None:
        self.protected: set[str] = set()
        for root in protected_roots:
            root = Path(root)
            self.protected.add(os.path.abspath(root))
            if root.is_dir() and not root.is_symlink():
                for p in root.rglob("*"):
                    self.protected.add(os.path.abspath(p))
        self.protected.update(os.path.abspath(p) for p in extra)
        self.violations: list[str] = []

    def _hit(self, path: object, *, tree: bool = False) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fspath(path))
        if p in self.protected:
            return True
        return tree and any(q.startswith(p.rstrip("/") + "/") for q in self.protected)

    @contextlib.contextmanager
    def active(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeleteGuard]:
        real = {name: getattr(os, name) for name in ("remove", "unlink", "rmdir", "replace", "rename")}
        real_rmtree = shutil.rmtree

        def guarded(name: str, index: int):
            def call(*args, **kwargs):
                if kwargs.get("dir_fd") is None and self._hit(args[index], tree=name == "rmdir"):
                    self.violations.append(f"os.{name}({args[index]!s})")
                    raise PermissionError(f"test guard: {name} of a pre-existing path {args[index]}")
                return real[name](*args, **kwargs)

            return call

        def rmtree(path, *args, **kwargs):
            if self._hit(path, tree=True):
                self.violations.append(f"shutil.rmtree({path!s})")
                raise PermissionError(f"test guard: rmtree of a pre-existing path {path}")
            return real_rmtree(path, *args, **kwargs)

        with monkeypatch.context() as m:
            for name in ("remove", "unlink", "rmdir"):
                m.setattr(os, name, guarded(name, 0))
            for name in ("replace", "rename"):
                m.setattr(os, name, guarded(name, 1))
            m.setattr(shutil, "rmtree", rmtree)
            yield self


def run_cli(args: list[str]):
    from zoo.cli import cli

    return CliRunner().invoke(cli, args, catch_exceptions=True)


def assert_one_line_refusal(result, *, contains: str = "") -> None:
    text = result.output
    assert result.exit_code in (1, 2), f"exit {result.exit_code}: {text[-800:]} {result.exception!r}"
    assert isinstance(result.exception, SystemExit), f"raw exception {result.exception!r}: {text[-800:]}"
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, text
    assert contains.lower() in errors[0].lower(), errors[0]


def fill_user_folder(folder: Path) -> Path:
    """A folder of the user's own files, including names a zoo command might write."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "model.keras").write_bytes(b"my own model " * 100)
    (folder / "curves.png").write_bytes(b"\x89PNG my picture")
    (folder / "saved_model.pb").write_bytes(b"mine")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "deep.bin").write_bytes(os.urandom(2048))
    return folder


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fake home with user files, a user folder as the working directory, an isolated zoo cache."""
    home = fill_user_folder(tmp_path / "home")
    work = fill_user_folder(tmp_path / "work")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "zoo-cache"))
    monkeypatch.chdir(work)
    return {"home": home, "work": work, "root": tmp_path}


# --------------------------------------------------------------------------------------
# Rule 1: ownership of outputs
# --------------------------------------------------------------------------------------

COMMANDS = {
    "export savedmodel": (["export", "lenet5", "--format", "savedmodel"], "folder"),
    "export tflite": (["export", "lenet5", "--format", "tflite"], ".tflite"),
    "export onnx": (["export", "lenet5", "--format", "onnx"], ".onnx"),
    "export openvino": (["export", "lenet5", "--format", "openvino"], ".xml"),
    "finetune": (
        ["finetune", "lenet5", "--data", "{digits}", "--epochs", "1", "--max-train", "64", "--unfreeze", "2"],
        "folder",
    ),
    "extract": (["extract", "lenet5", "--data", "{digits}", "--split", "train"], ".npz"),
    "sample": (["sample", "dcgan", "--n", "4"], ".png"),
}

EXPORT_NEEDS_TF = pytest.mark.tensorflow_only("zoo export converts through TensorFlow")
COMMAND_PARAMS = [
    pytest.param(name, marks=EXPORT_NEEDS_TF) if name.startswith("export") else name
    for name in sorted(COMMANDS)
]

TARGETS = [
    "the root folder /",
    "the home folder ~",
    "the working folder .",
    "the input data folder",
    "a folder of user files",
    "a user file with the output's name",
    "a symlink to a user file",
    "a user file, with --overwrite",
    "a folder of user files, with --overwrite",
    "the home folder ~, with --overwrite",
]


def _target(sandbox: dict, digits: Path, which: str, suffix: str) -> tuple[str, list[Path], bool]:
    """Return (--out value, folders to watch, --overwrite)."""
    work, home = sandbox["work"], sandbox["home"]
    overwrite = which.endswith("--overwrite")
    if which.startswith("the root folder"):
        return "/", [work, home], overwrite
    if which.startswith("the home folder"):
        return "~", [home], overwrite
    if which.startswith("the working folder"):
        return ".", [work], overwrite
    if which.startswith("the input data folder"):
        return str(digits), [digits], overwrite
    if which.startswith("a folder of user files"):
        return str(work / "sub"), [work], overwrite
    name = "model" + (suffix if suffix != "folder" else "")
    user_file = work / name
    user_file.write_bytes(b"the user's own " + name.encode())
    if which.startswith("a symlink"):
        link = work / f"link-{name}"
        link.symlink_to(user_file)
        return str(link), [work], overwrite
    return str(user_file), [work], overwrite


@pytest.mark.parametrize("which", TARGETS)
@pytest.mark.parametrize("command", COMMAND_PARAMS)
def test_out_never_touches_user_files(command, which, sandbox, digits_folder, record, monkeypatch):  # noqa: F811
    args, suffix = COMMANDS[command]
    out, watch, overwrite = _target(sandbox, digits_folder, which, suffix)
    argv = (
        [a.format(digits=digits_folder) for a in args]
        + ["--out", out]
        + (["--overwrite"] if overwrite else [])
    )
    guard = DeleteGuard(watch, extra=[Path("/"), *Path("/").iterdir()])
    with record.case(f"zoo {command} --out {which}", OWN, watch=watch) as case:
        with guard.active(monkeypatch):
            result = run_cli(argv)
        assert guard.violations == [], guard.violations
        assert_one_line_refusal(result)
        case.outcome = result.output.strip().splitlines()[-1][:200]


@pytest.mark.parametrize("command", COMMAND_PARAMS)
def test_a_new_path_is_written_and_only_zoo_output_is_replaced(
    command,
    sandbox,
    digits_folder,  # noqa: F811
    record,
    monkeypatch,
):
    args, suffix = COMMANDS[command]
    argv = [a.format(digits=digits_folder) for a in args]
    out = sandbox["root"] / "outputs" / ("result" if suffix == "folder" else f"result{suffix}")
    out.parent.mkdir()
    watch = [sandbox["work"], digits_folder]
    with record.case(
        f"zoo {command} into a new path, then again with and without --overwrite", OWN, watch=watch
    ) as case:
        guard = DeleteGuard(watch)
        with guard.active(monkeypatch):
            first = run_cli([*argv, "--out", str(out)])
            assert first.exit_code == 0, first.output[-2000:]
            assert out.exists()
            again = run_cli([*argv, "--out", str(out)])
            if command == "finetune":  # same data and settings: the finished run is reused
                assert again.exit_code == 0, again.output[-2000:]
            else:
                assert_one_line_refusal(again, contains="--overwrite")
                replaced = run_cli([*argv, "--out", str(out), "--overwrite"])
                assert replaced.exit_code == 0, replaced.output[-2000:]
        assert guard.violations == []
        companions = {out.with_suffix(".bin").name} if suffix == ".xml" else set()  # OpenVINO's weights
        leftovers = [p.name for p in out.parent.iterdir() if p.name != out.name and p.name not in companions]
        assert leftovers == [], f"temporary files left beside the output: {leftovers}"
        case.outcome = "written, refused without --overwrite, replaced with it; nothing left over"


def test_user_file_dropped_into_a_zoo_folder_survives_overwrite(
    sandbox,
    digits_folder,  # noqa: F811
    record,
    monkeypatch,
):
    out = sandbox["root"] / "ft"
    base = ["finetune", "lenet5", "--data", str(digits_folder), "--max-train", "64", "--unfreeze", "2"]
    base += ["--out", str(out)]  # a fixed phase 2: what is trained does not matter here
    first = run_cli([*base, "--epochs", "1"])
    assert first.exit_code == 0, first.output[-2000:]
    mine = out / "my-notes.txt"
    mine.write_text("written by the user into the zoo's folder\n")
    (out / "model.keras").write_bytes((out / "model.keras").read_bytes() + b"user edit")
    with record.case(
        "user files inside a zoo output folder survive finetune --overwrite",
        OWN,
        watch=[mine, out / "model.keras"],
    ) as case:
        guard = DeleteGuard([mine, out / "model.keras"])
        with guard.active(monkeypatch):
            result = run_cli([*base, "--epochs", "2", "--overwrite"])
        assert guard.violations == []
        assert_one_line_refusal(result, contains="not written by zoo")
        case.outcome = "refused: a changed model.keras is the user's now"
    (out / "model.keras").unlink()
    with record.case(
        "a user's note inside a zoo output folder survives finetune --overwrite", OWN, watch=[mine]
    ) as case:
        guard = DeleteGuard([mine])
        with guard.active(monkeypatch):
            result = run_cli([*base, "--epochs", "2", "--overwrite"])
        assert guard.violations == []
        assert result.exit_code == 0, result.output[-2000:]
        assert mine.read_text().startswith("written by the user")
        case.outcome = "re-trained; the note is untouched"


@EXPORT_NEEDS_TF
def test_empty_folder_is_adopted(sandbox, record):
    target = sandbox["root"] / "empty"
    target.mkdir()
    with record.case("zoo export savedmodel into an empty folder the user made", OWN, watch=[]) as case:
        result = run_cli(["export", "lenet5", "--format", "savedmodel", "--out", str(target)])
        assert result.exit_code == 0, result.output[-2000:]
        assert (target / "saved_model.pb").is_file() and (target / ".zoo-output.json").is_file()
        case.outcome = "written into it, with the zoo's marker"


# --------------------------------------------------------------------------------------
# Rule 2: resume means the same inputs
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_finetune(digits_folder, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("resume")
    data = root / "data"
    shutil.copytree(digits_folder, data)
    out = root / "out"
    env = {"ZOO_CACHE_DIR": str(root / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = run_cli(_finetune_args(data, out))
        assert result.exit_code == 0, result.output[-2000:]
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"data": data, "out": out, "cache": root / "cache"}


def _finetune_args(data: Path, out: Path, **changes: str) -> list[str]:
    options = {
        "--epochs": "1",
        "--max-train": "64",
        "--lr": "0.001",
        "--seed": "0",
        "--batch-size": "64",
        "--strategy": "two_phase",
        "--unfreeze": "2",  # a fixed phase 2: no trials to choose it
        **changes,
    }
    return [
        "finetune",
        "lenet5",
        "--data",
        str(data),
        "--out",
        str(out),
        *[x for kv in options.items() for x in kv],
    ]


RESUME_CHANGES = {
    "more epochs": {"--epochs": "2"},
    "another learning rate": {"--lr": "0.01"},
    "another seed": {"--seed": "1"},
    "another batch size": {"--batch-size": "32"},
    "another strategy": {"--strategy": "head"},
    "another subset size": {"--max-train": "32"},
}


@pytest.mark.parametrize("change", sorted(RESUME_CHANGES))
def test_rerun_with_other_settings_is_refused(change, finished_finetune, record, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(finished_finetune["cache"]))
    out = finished_finetune["out"]
    with record.case(f"finetune rerun into a finished folder with {change}", RESUME, watch=[out]) as case:
        result = run_cli(_finetune_args(finished_finetune["data"], out, **RESUME_CHANGES[change]))
        assert_one_line_refusal(result, contains="--overwrite")
        case.outcome = result.output.strip().splitlines()[-1][:200]


def test_rerun_with_changed_data_is_refused(finished_finetune, record, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(finished_finetune["cache"]))
    data, out = finished_finetune["data"], finished_finetune["out"]
    extra = data / "3" / "added-by-user.png"
    shutil.copyfile(next((data / "5").glob("*.png")), extra)
    try:
        with record.case(
            "finetune rerun into a finished folder after the data changed (same labels)",
            RESUME,
            watch=[out, data],
        ) as case:
            result = run_cli(_finetune_args(data, out))
            assert_one_line_refusal(result, contains="data")
            case.outcome = result.output.strip().splitlines()[-1][:200]
    finally:
        extra.unlink()


def test_rerun_with_the_same_inputs_reuses_the_run(finished_finetune, record, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(finished_finetune["cache"]))
    out = finished_finetune["out"]
    card = (out / "card.json").read_text()
    with record.case("finetune rerun with the same data and settings", RESUME, watch=[]) as case:
        result = run_cli(_finetune_args(finished_finetune["data"], out))
        assert result.exit_code == 0, result.output[-2000:]
        assert '"top1_accuracy"' in (out / "card.json").read_text()
        assert (out / "card.json").read_text().count("top1_accuracy") == card.count("top1_accuracy")
        case.outcome = "finished run reused; same card"


def test_a_run_that_fails_before_writing_leaves_nothing_in_the_way(
    sandbox,
    digits_folder,  # noqa: F811
    offline,
    record,
    monkeypatch,
):
    """It left a folder holding only the zoo's marker, which then refused the corrected command."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sandbox["root"] / "hf-cache"))
    out = sandbox["root"] / "run"
    args = ["finetune", "resnet50", "--data", str(digits_folder), "--out", str(out), "--epochs", "1"]
    with record.case(
        "finetune that fails after claiming its folder (base weights not cached, offline)",
        RESUME,
        watch=[sandbox["work"], digits_folder],
    ) as case:
        assert_one_line_refusal(run_cli(args), contains="is not cached")
        assert not out.exists()
        out.mkdir()  # an empty folder the user made stays, without the zoo's marker
        assert_one_line_refusal(run_cli(args), contains="is not cached")
        assert out.is_dir() and list(out.iterdir()) == []
        case.outcome = "one-line error; no folder or marker left to refuse the next command"


@pytest.mark.parametrize("model, data", [("lstm_classifier", "images"), ("lenet5", "texts")])
def test_a_model_given_the_other_kind_of_data_is_refused_up_front(
    model,
    data,
    sandbox,
    digits_folder,  # noqa: F811
    record,
):
    reviews = sandbox["root"] / "reviews.csv"
    reviews.write_text("text,label\n" + "".join(f'"good {i}",pos\n"dull {i}",neg\n' for i in range(10)))
    out = sandbox["root"] / "run"
    source = digits_folder if data == "images" else reviews
    with record.case(f"finetune {model} on {data}", VALID, watch=[sandbox["work"], digits_folder]) as case:
        result = run_cli(["finetune", model, "--data", str(source), "--out", str(out), "--epochs", "1"])
        assert_one_line_refusal(result, contains=f"holds {data}: fine-tune a")
        assert not out.exists()
        case.outcome = result.output.strip().splitlines()[-1][:200]


def test_an_output_inside_the_data_folder_is_refused(sandbox, digits_folder, record):  # noqa: F811
    """Its curves.png became images of a class 'model', and every rerun saw other data."""
    out = digits_folder / "model"
    with record.case("finetune --out inside the --data folder", VALID, watch=[digits_folder]) as case:
        result = run_cli(
            ["finetune", "lenet5", "--data", str(digits_folder), "--out", str(out), "--epochs", "1"]
        )
        assert_one_line_refusal(result, contains="lies inside the data folder")
        assert not out.exists()
        case.outcome = result.output.strip().splitlines()[-1][:200]


def test_a_run_that_fails_keeps_what_it_wrote(tmp_path, record):
    from zoo import outputs

    out = tmp_path / "run"
    with record.case("a run killed after writing a file", RESUME, watch=[]) as case:
        with pytest.raises(KeyboardInterrupt):
            with outputs.output_folder(out, command="finetune", inputs={"seed": 0}) as folder:
                with folder.write("model.keras") as tmp:
                    Path(tmp).write_text("weights so far")
                raise KeyboardInterrupt
        assert sorted(p.name for p in out.iterdir()) == [outputs.MARKER, "model.keras"]
        with outputs.output_folder(out, command="finetune", inputs={"seed": 0}) as folder:
            assert folder.resumed  # the same command picks up what the first one wrote
        case.outcome = "its file and marker kept; the same command resumes"


# --------------------------------------------------------------------------------------
# Rule 3: validation at the boundary
# --------------------------------------------------------------------------------------

FT = ["finetune", "lenet5", "--data", "mnist", "--out", "never-written"]
BAD_OPTIONS = {
    "finetune --lr nan": [*FT, "--lr", "nan"],
    "finetune --lr inf": [*FT, "--lr", "inf"],
    "finetune --lr -1": [*FT, "--lr", "-1"],
    "finetune --lr 0": [*FT, "--lr", "0"],
    "finetune --lr abc": [*FT, "--lr", "abc"],
    "finetune --lr 1e9": [*FT, "--lr", "1e9"],
    "finetune --seed -1": [*FT, "--seed", "-1"],
    "finetune --seed 2**40": [*FT, "--seed", str(2**40)],
    "finetune --seed abc": [*FT, "--seed", "abc"],
    "finetune --batch-size 0": [*FT, "--batch-size", "0"],
    "finetune --batch-size -5": [*FT, "--batch-size", "-5"],
    "finetune --batch-size 10**9": [*FT, "--batch-size", str(10**9)],
    "finetune --epochs 0": [*FT, "--epochs", "0"],
    "finetune --epochs -3": [*FT, "--epochs", "-3"],
    "finetune --epochs 1.5": [*FT, "--epochs", "1.5"],
    "finetune --epochs 10**7": [*FT, "--epochs", str(10**7)],
    "finetune --unfreeze abc": [*FT, "--unfreeze", "abc"],
    "finetune --unfreeze -1": [*FT, "--unfreeze", "-1"],
    "finetune --unfreeze 1.5": [*FT, "--unfreeze", "1.5"],
    "finetune --ft-lr 0": [*FT, "--ft-lr", "0"],
    "finetune --ft-lr 11": [*FT, "--ft-lr", "11"],
    "finetune --max-train 0": [*FT, "--max-train", "0"],
    "finetune --max-val -1": [*FT, "--max-val", "-1"],
    "finetune --save-every-steps 0": [*FT, "--save-every-steps", "0"],
    "finetune --strategy magic": [*FT, "--strategy", "magic"],
    "finetune --distribute everywhere": [*FT, "--distribute", "everywhere"],
    "finetune without --out": ["finetune", "lenet5", "--data", "mnist"],
    "finetune without --data": ["finetune", "lenet5", "--out", "x"],
    "finetune of an unknown model": ["finetune", "no-such-net", "--data", "mnist", "--out", "x"],
    "finetune of a generative model": ["finetune", "vae", "--data", "mnist", "--out", "x"],
    "export --format zip": ["export", "lenet5", "--format", "zip", "--out", "x.zip"],
    "export --quantize int4": ["export", "lenet5", "--format", "tflite", "--quantize", "int4", "--out", "x"],
    "export --quantize with onnx": [
        "export",
        "lenet5",
        "--format",
        "onnx",
        "--quantize",
        "int8",
        "--out",
        "x",
    ],
    "export without --format": ["export", "lenet5", "--out", "x"],
    "export of an unknown model": ["export", "no-such-net", "--format", "onnx", "--out", "x.onnx"],
    "export --out ''": ["export", "lenet5", "--format", "onnx", "--out", ""],
    "sample --n 0": ["sample", "dcgan", "--n", "0", "--out", "x.png"],
    "sample --n 10**6": ["sample", "dcgan", "--n", str(10**6), "--out", "x.png"],
    "sample --scale 0": ["sample", "dcgan", "--scale", "0", "--out", "x.png"],
    "sample --steps 1": ["sample", "dcgan", "--interpolate", "--steps", "1", "--out", "x.png"],
    "sample --out without .png": ["sample", "dcgan", "--out", "x.jpg"],
    "sample of a classifier": ["sample", "lenet5", "--out", "x.png"],
    "sample --out into a missing folder": ["sample", "dcgan", "--out", "missing/x.png"],
    "extract --batch-size 0": ["extract", "lenet5", "--data", "mnist", "--batch-size", "0", "--out", "x.npz"],
    "extract --out into a missing folder": ["extract", "lenet5", "--data", "mnist", "--out", "missing/f.npz"],
    "predict --top-k 0": ["predict", "lenet5", "--top-k", "0", "x.png"],
    "predict of a missing file": ["predict", "lenet5", "no-such-file.png"],
    "evaluate --batch-size 0": ["evaluate", "lenet5", "--batch-size", "0"],
    "evaluate --tta rotate": ["evaluate", "lenet5", "--tta", "rotate"],
    "evaluate --tta flip of a language model": ["evaluate", "lstm", "--tta", "flip"],
    "generate --temperature -1": ["generate", "lstm", "--prompt", "a", "--temperature", "-1"],
    "generate --n-chars -5": ["generate", "lstm", "--prompt", "a", "--n-chars", "-5"],
    "generate --top-k 0": ["generate", "lstm", "--prompt", "a", "--top-k", "0"],
    "info of an unknown model": ["info", "no-such-net"],
    "predict with a generative model": ["predict", "vae", "x.png"],
    "predict with a language model": ["predict", "lstm", "x.png"],
    "predict with a sentence encoder": ["predict", "minilm", "x.png"],
    "export --quantize of a generative model": [
        "export",
        "vae",
        "--format",
        "tflite",
        "--quantize",
        "int8",
        "--out",
        "v.tflite",
    ],
    "export of a sentence encoder to TFLite": ["export", "minilm", "--format", "tflite", "--out", "m.tflite"],
}


@pytest.mark.parametrize("case_name", sorted(BAD_OPTIONS))
def test_bad_option_is_one_line_and_writes_nothing(case_name, sandbox, record, monkeypatch):
    watch = [sandbox["work"], sandbox["home"]]
    before = sorted(p.name for p in sandbox["work"].iterdir())
    with record.case(f"zoo {case_name}", VALID, watch=watch) as case:
        guard = DeleteGuard(watch)
        with guard.active(monkeypatch):
            result = run_cli(BAD_OPTIONS[case_name])
        assert guard.violations == []
        assert_one_line_refusal(result)
        assert sorted(p.name for p in sandbox["work"].iterdir()) == before, "a refused command wrote files"
        case.outcome = result.output.strip().splitlines()[-1][:200]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("learning_rate", float("nan")),
        ("learning_rate", float("inf")),
        ("learning_rate", -1e-3),
        ("fine_tune_learning_rate", 0.0),
        ("fine_tune_learning_rate", float("nan")),
        ("seed", -1),
        ("batch_size", 0),
        ("epochs", 0),
        ("unfreeze", "some"),
        ("max_train", 0),
        ("strategy", "magic"),
        ("epochs", True),
    ],
)
def test_finetune_api_checks_its_arguments(setting, value, sandbox, record):
    import zoo.train.finetune
    from zoo.errors import InputError

    kwargs = {
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "unfreeze": 2,
        "max_train": None,
        "max_val": None,
        "seed": 0,
        "strategy": "two_phase",
        "save_every_steps": None,
        setting: value,
    }
    with record.case(f"zoo.train.finetune.check_settings({setting}={value!r})", VALID, watch=[]) as case:
        with pytest.raises(InputError):
            zoo.train.finetune.check_settings(**kwargs)
        case.outcome = "InputError"


# --------------------------------------------------------------------------------------
# Rule 4: training fails loudly
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["head", "full"])
def test_diverging_fine_tune_raises_and_writes_nothing(strategy, tmp_path, record):
    import tensorflow as tf

    import zoo
    from zoo.errors import TrainingError
    from zoo.train.engine import fine_tune

    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 1), dtype=np.float32)
    x[5, 3, 3, 0] = np.nan  # one corrupt pixel: the loss becomes NaN
    y = rng.integers(0, 2, 64)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = zoo.load("lenet5", num_classes=2)
    with record.case(f"fine_tune ({strategy}) on data holding a NaN pixel", LOUD, watch=[]) as case:
        with pytest.raises(TrainingError, match="diverged"):
            fine_tune(
                model,
                train,
                train,
                strategy=strategy,
                epochs=1,
                patience=None,
                checkpoint_dir=tmp_path / "ckpt",
                verbose=0,
            )
        assert not list((tmp_path / "ckpt").rglob("done.weights.h5"))
        case.outcome = "TrainingError; no finished phase recorded"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_history_is_an_error(value, record):
    from zoo.errors import TrainingError, check_finite_history

    with record.case(f"a loss of {value} in the history", LOUD, watch=[]) as case:
        check_finite_history({"loss": [1.0, 0.5], "val_loss": [0.4, 0.3], "accuracy": [float("nan")]})
        with pytest.raises(TrainingError):
            check_finite_history({"loss": [1.0, value]})
        case.outcome = "TrainingError"


# --------------------------------------------------------------------------------------
# Rule 5: classes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["one class folder", "no class folders"])
def test_finetune_needs_two_classes(layout, digits_folder, sandbox, record):  # noqa: F811
    data = sandbox["root"] / "data"
    if layout == "one class folder":
        shutil.copytree(digits_folder / "4", data / "4")
    else:
        data.mkdir()
        for p in list((digits_folder / "4").glob("*.png"))[:20]:
            shutil.copyfile(p, data / p.name)
    out = sandbox["root"] / "never"
    with record.case(f"finetune on a folder with {layout}", DATA, watch=[data]) as case:
        result = run_cli(["finetune", "lenet5", "--data", str(data), "--out", str(out)])
        assert_one_line_refusal(result)
        assert not out.exists()
        case.outcome = result.output.strip().splitlines()[-1][:200]


# --------------------------------------------------------------------------------------
# Rule 9: outputs are locked
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMAND_PARAMS)
def test_an_output_another_command_is_writing_is_refused(command, sandbox, digits_folder, record):  # noqa: F811
    from filelock import FileLock

    from zoo.fileio import cache_root

    args, suffix = COMMANDS[command]
    out = sandbox["root"] / ("busy" if suffix == "folder" else f"busy{suffix}")
    key = hashlib.sha1(str(out).encode()).hexdigest()
    (cache_root() / "locks").mkdir(parents=True, exist_ok=True)
    holder = FileLock(str(cache_root() / "locks" / f"{key}.lock"))
    with record.case(
        f"zoo {command} while another zoo command writes the same --out", LOCK, watch=[sandbox["work"]]
    ) as case:
        with holder:
            result = run_cli([*[a.format(digits=digits_folder) for a in args], "--out", str(out)])
        assert_one_line_refusal(result, contains="another zoo command")
        assert not out.exists()
        case.outcome = result.output.strip().splitlines()[-1][:200]


# --------------------------------------------------------------------------------------
# Rule 5: data read as people see it
# --------------------------------------------------------------------------------------


def test_exif_orientation_and_float_images_are_read_as_shown(tmp_path, record):
    from PIL import Image

    from zoo.tasks.classify import read_image

    top_white = np.zeros((20, 10), np.uint8)
    top_white[:5] = 255
    for orientation, white_at_top in ((1, True), (3, False), (6, None), (8, None)):
        image = Image.fromarray(top_white)
        exif = image.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        image.save(path, exif=exif, quality=95)
        with record.case(f"JPEG with EXIF orientation {orientation}", DATA, watch=[path]) as case:
            pixels = read_image(path, "grayscale")[..., 0]
            if white_at_top is None:  # rotated a quarter turn: the bright band is a column now
                assert pixels.shape == (10, 20)
            else:
                assert (pixels[:5].mean() > 200) == white_at_top and pixels.shape == (20, 10)
            case.outcome = f"shape {pixels.shape}, as a viewer shows it"
    ramp = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    for name, values in (("float TIFF in [0, 1]", ramp), ("float TIFF in [0, 4000]", ramp * 4000)):
        path = tmp_path / f"{name.replace(' ', '_')}.tif"
        Image.fromarray(values, mode="F").save(path)
        with record.case(name, DATA, watch=[path]) as case:
            pixels = read_image(path, "grayscale")
            assert pixels.max() == 255 and pixels.min() == 0 and abs(pixels.mean() - 127.5) < 1
            case.outcome = "scaled to 0..255"


def test_folder_pipeline_turns_exif_images_as_pillow_does(tmp_path, record):
    from PIL import Image, ImageOps

    import zoo.data as zd

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 8, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = orientation
        (tmp_path / f"o{orientation}").mkdir()
        image.save(tmp_path / f"o{orientation}" / "img.jpg", exif=exif, quality=95)
    (tmp_path / "plain").mkdir()
    Image.fromarray(pixels).save(tmp_path / "plain" / "img.png")
    watch = sorted(tmp_path.rglob("*.*"))
    with record.case("folder of JPEGs with EXIF orientations 1-8", DATA, watch=watch) as case:
        ds, info = zd.load(tmp_path, with_info=True)
        got = {info.label_names[int(e["label"])]: e["image"].numpy() for e in ds}
        for orientation in range(1, 9):
            with Image.open(tmp_path / f"o{orientation}" / "img.jpg") as image:
                want = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
            np.testing.assert_array_equal(got[f"o{orientation}"], want)
        np.testing.assert_array_equal(got["plain"], pixels)
        case.outcome = "every image turned as Pillow's exif_transpose turns it"


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """Real MNIST test 3s and 8s in folders named after the digits."""
    from PIL import Image

    from tests.helpers import DATA_DIR as shared
    from zoo.data import catalog

    if not (shared / "mnist").is_dir():
        pytest.skip("no shared MNIST copy")
    images, labels = catalog.mnist_like(shared, "mnist", "test")
    root = tmp_path_factory.mktemp("mnist38")
    for digit in (3, 8):
        (root / str(digit)).mkdir()
        for i in np.flatnonzero(labels == digit)[:60]:
            Image.fromarray(images[i, ..., 0]).save(root / str(digit) / f"{i}.png")
    return root


def test_evaluate_on_a_folder_matches_class_names_to_labels(mnist_folder, tmp_path, record):
    import json

    with record.case(
        "zoo evaluate lenet5 on folders 3/ and 8/ of real MNIST digits", DATA, watch=[mnist_folder]
    ) as case:
        result = run_cli(["evaluate", "lenet5", "--data", str(mnist_folder), "--json"])
        assert result.exit_code == 0, result.output[-2000:]
        measured = json.loads(result.output[result.output.index("{") :])["measured"]
        assert measured["top1_accuracy"] > 95 and measured["num_examples"] == 120
        case.outcome = f"top-1 {measured['top1_accuracy']:.1f}% (folder names matched to labels)"
    renamed = tmp_path / "renamed"
    shutil.copytree(mnist_folder / "3", renamed / "three")
    shutil.copytree(mnist_folder / "8", renamed / "8")
    with record.case(
        "zoo evaluate lenet5 on a folder whose class names are not its labels", DATA, watch=[renamed]
    ) as case:
        result = run_cli(["evaluate", "lenet5", "--data", str(renamed)])
        assert_one_line_refusal(result, contains="'three'")
        case.outcome = result.output.strip().splitlines()[-1][:200]


# --------------------------------------------------------------------------------------
# Rule 6: bounded memory
# --------------------------------------------------------------------------------------


def test_predict_streams_fixed_size_batches(mnist_folder, record, monkeypatch):
    import zoo
    from zoo.tasks.classify import predict_images

    paths = sorted(mnist_folder.rglob("*.png")) * 3
    model = zoo.load("lenet5")
    sizes: list[int] = []
    import zoo.tasks.classify as classify

    forward = classify.predict_fn(model)
    monkeypatch.setattr(classify, "predict_fn", lambda m: lambda x: sizes.append(len(x)) or forward(x))
    with record.case(
        f"zoo predict on {len(paths)} files decodes at most 32 at a time",
        "bounded memory",
        watch=[mnist_folder],
    ) as case:
        results = predict_images(model, zoo.weights_entry("lenet5"), paths, top_k=1)
        assert len(results) == len(paths) and max(sizes) <= 32
        assert [r.input for r in results] == [str(p) for p in paths]
        case.outcome = f"{len(sizes)} batches of at most {max(sizes)}"


# --------------------------------------------------------------------------------------
# Rule 7: weights are sane
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["a NaN", "an infinity", "integer kernels"])
def test_broken_user_weights_are_refused(damage, tmp_path, record):
    import h5py

    import zoo
    from zoo.errors import WeightsFormatError

    path = tmp_path / "mine.weights.h5"
    zoo.load("lenet5").save_weights(path)
    with h5py.File(path, "r+") as handle:
        names: list[str] = []
        handle.visititems(lambda n, item: names.append(n) if isinstance(item, h5py.Dataset) else None)
        values = handle[names[0]][()]
        if damage == "integer kernels":
            del handle[names[0]]
            handle.create_dataset(names[0], data=(values * 100).astype("int32"))
        else:
            values.flat[3] = np.nan if damage == "a NaN" else np.inf
            handle[names[0]][...] = values
    with record.case(f"user weights file with {damage}", "weights are sane", watch=[path]) as case:
        with pytest.raises(WeightsFormatError):
            zoo.load("lenet5", weights=path)
        case.outcome = "WeightsFormatError"


@pytest.mark.parametrize("word", ["default", "mnist"])
def test_a_bare_word_is_a_tag_even_when_such_a_file_exists(word, sandbox, record):
    import zoo

    (sandbox["work"] / word).write_bytes(b"not weights")
    with record.case(
        f"zoo.load('lenet5', weights={word!r}) with a file {word!r} in the working folder",
        VALID,
        watch=[sandbox["work"]],
    ) as case:
        model = zoo.load("lenet5", weights=word)
        assert model.output_shape == (None, 10)
        case.outcome = "loaded the packaged weights (a tag)"


# --------------------------------------------------------------------------------------
# Rule 10: errors point at the fix
# --------------------------------------------------------------------------------------


def test_missing_data_directory_names_zoo_data_dir(sandbox, record, monkeypatch):
    from tensorflow_datasets.core import constants

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    tfds_home = Path(constants.DATA_DIR)  # where tfds' fallback download goes (fixed when tfds was imported)
    watched = (tfds_home, tfds_home / "mnist", tfds_home / "downloads")
    had = {path for path in watched if path.exists()}
    with record.case(
        "zoo evaluate lenet5 with ZOO_DATA_DIR unset", "errors point at the fix", watch=[sandbox["work"]]
    ) as case:
        start = time.monotonic()
        result = run_cli(["evaluate", "lenet5"])
        assert_one_line_refusal(result, contains="ZOO_DATA_DIR (or give --data-dir")
        assert time.monotonic() - start < 60, "an offline fallback should fail at once, not after retries"
        case.outcome = next(line for line in result.output.splitlines() if line.startswith("Error"))[:200]
    left = {path for path in watched if path.exists()}
    assert left <= had, f"the failed fallback left {sorted(map(str, left - had))} behind"


def test_class_folder_names_that_are_not_utf8_train(digits_folder, sandbox, record):  # noqa: F811
    import json

    data = sandbox["root"] / "names"
    odd = os.fsdecode(b"\xff\xfe-digits")
    shutil.copytree(digits_folder / "1", data / odd)
    shutil.copytree(digits_folder / "7", data / "seven")
    out = sandbox["root"] / "ft-names"
    with record.case("finetune on class folders whose names are not UTF-8", DATA, watch=[data]) as case:
        result = run_cli(
            [
                "finetune",
                "lenet5",
                "--data",
                str(data),
                "--epochs",
                "1",
                "--max-train",
                "64",
                "--unfreeze",
                "2",
                "--out",
                str(out),
            ]
        )
        assert result.exit_code == 0, result.output[-2000:]
        labels = json.loads((out / "card.json").read_text())["labels"]
        assert sorted(labels) == sorted([odd, "seven"])
        case.outcome = "trained; the card keeps the folder names"


# --------------------------------------------------------------------------------------
# Rule 8: verified means verified
# --------------------------------------------------------------------------------------


def test_loaded_bytes_are_the_hashed_bytes(sandbox, tmp_path, record):
    import zoo
    from zoo.errors import WeightsVerificationError
    from zoo.weights.resolve import private_verified_copies, resolve_files

    entry = zoo.weights_entry("lenet5")
    good = resolve_files(entry)
    tampered = tmp_path / "tampered.weights.h5"
    data = bytearray(good[entry.files[0].filename].read_bytes())
    data[-100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with record.case(
        "a weights file changed after it was verified is not loaded", "verified means verified", watch=[]
    ) as case:
        copies = private_verified_copies(entry, good, tmp_path / "ok")
        assert copies[entry.files[0].filename].read_bytes() == good[entry.files[0].filename].read_bytes()
        with pytest.raises(WeightsVerificationError, match="nothing was loaded"):
            private_verified_copies(entry, {entry.files[0].filename: tampered}, tmp_path / "bad")
        case.outcome = "the private copy's own bytes are hashed; a changed file is refused"


def test_files_without_a_published_sha256_are_pinned_on_first_use(sandbox, tmp_path, record):
    import zoo
    from zoo.errors import WeightsVerificationError
    from zoo.weights.resolve import pinned_sha256, private_verified_copies

    entry = zoo.weights_entry("resnet50.tv_in1k")
    file = entry.files[0]
    assert file.sha256 is None
    first, other = tmp_path / "first.safetensors", tmp_path / "other.safetensors"
    first.write_bytes(b"first copy" * 1000)
    other.write_bytes(b"other copy" * 1000)
    with record.case(
        "a mirror's different file for an entry without a published sha256",
        "verified means verified",
        watch=[first],
    ) as case:
        private_verified_copies(entry, {file.filename: first}, tmp_path / "a")
        assert pinned_sha256(entry, file) is not None
        with pytest.raises(WeightsVerificationError, match="first use"):
            private_verified_copies(entry, {file.filename: other}, tmp_path / "b")
        private_verified_copies(entry, {file.filename: first}, tmp_path / "c")
        case.outcome = "pinned on first use; a different file is refused afterwards"


def _keras_archive_variant(tmp_path: Path, variant: str) -> Path:
    import json
    import zipfile

    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    source = tmp_path / "small.keras"
    model.save(source)
    with zipfile.ZipFile(source) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    if variant == "a 3,000,000-unit layer":
        members["config.json"] = (
            json.dumps(json.loads(members["config.json"])).replace('"units": 3', '"units": 3000000').encode()
        )
    elif variant == "a weights member that inflates to 1 GiB":
        members["model.weights.h5"] = b"\0" * 2**30
    elif variant == "no config":
        members.pop("config.json")
    path = tmp_path / f"{variant.replace(' ', '_').replace(',', '')}.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "variant", ["a 3,000,000-unit layer", "a weights member that inflates to 1 GiB", "no config"]
)
def test_keras_files_are_checked_before_they_inflate(variant, tmp_path, record):
    import zoo
    from zoo.errors import WeightsFormatError

    path = _keras_archive_variant(tmp_path, variant)
    with record.case(f"a small .keras file with {variant}", "bounded memory", watch=[path]) as case:
        with pytest.raises(WeightsFormatError):
            zoo.load_keras(path)
        case.outcome = "refused before unpacking or building"


def test_an_unwritable_zoo_cache_only_costs_the_feature_cache(digits_folder, sandbox, record, monkeypatch):  # noqa: F811
    blocker = sandbox["root"] / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocker))
    out = sandbox["root"] / "feats.npz"
    with record.case(
        "zoo extract with ZOO_CACHE_DIR pointing at a file",
        "errors point at the fix",
        watch=[blocker, digits_folder],
    ) as case:
        result = run_cli(["extract", "lenet5", "--data", str(digits_folder), "--out", str(out)])
        assert result.exit_code == 0, result.output[-2000:]
        warned = [line for line in result.output.splitlines() if line.startswith("Warning: ")]
        assert len(warned) == 1 and "ZOO_CACHE_DIR" in warned[0], result.output[-2000:]
        assert out.is_file()
        case.outcome = "features written; one warning that the cache could not be written"


def test_a_huge_prompt_is_refused_at_once(sandbox, record):
    import time

    start = time.monotonic()
    with record.case(
        "zoo generate lstm with a 1 MB prompt", "bounded memory", watch=[sandbox["work"]]
    ) as case:
        result = run_cli(["generate", "lstm", "--prompt", "a" * 1_000_000, "-n", "5"])
        assert_one_line_refusal(result, contains="at most")
        assert time.monotonic() - start < 60
        case.outcome = result.output.strip().splitlines()[-1][:200]


def test_text_fine_tunes_truncate_long_texts(record):
    import zoo
    from zoo.preprocessing.bind import MAX_TEXT_TOKENS, local_text_spec

    with record.case(
        "a word-level text model's spec gets a token limit for fine-tuning", "bounded memory", watch=[]
    ) as case:
        spec = local_text_spec(zoo.weights_entry("lstm_classifier.mr"))
        assert spec["max_length"] == MAX_TEXT_TOKENS
        case.outcome = f"texts truncated at {MAX_TEXT_TOKENS} tokens"


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("build", {"num_classes": 0}),
        ("build", {"num_classes": -3}),
        ("build", {"num_classes": 2.5}),
        ("build", {"num_classes": True}),
        ("build", {"input_shape": (32,)}),
        ("build", {"input_shape": (0, 32, 1)}),
        ("build", {"input_shape": "32x32"}),
        ("load", {"num_classes": 0}),
        ("load", {"input_shape": (-1, 32, 1)}),
        ("load", {"num_classes": 10**9}),
    ],
)
def test_model_arguments_are_typed_errors(call, kwargs, record):
    import zoo
    from zoo.errors import InputError

    with record.case(f"zoo.{call}('lenet5', {kwargs})", VALID, watch=[]) as case:
        with pytest.raises(InputError):
            getattr(zoo, call)("lenet5", **kwargs)
        case.outcome = "InputError"


def test_sentence_encoders_load_without_a_random_head(record, offline):
    import zoo

    batch = {k: np.ones((1, 5), np.int32) for k in ("input_ids", "token_type_ids", "attention_mask")}
    with record.case("zoo.load('minilm') twice gives the same encoder outputs", VALID, watch=[]) as case:
        try:
            first = zoo.load("minilm")
        except Exception as exc:  # noqa: BLE001 - the weights package is installed apart
            pytest.skip(f"all-MiniLM-L6-v2 weights not installed: {exc}")
        assert isinstance(first.output, dict) and "head" not in [layer.name for layer in first.layers]
        a = numpy(first(batch, training=False)["pooled_output"])
        b = numpy(zoo.load("minilm")(batch, training=False)["pooled_output"])
        np.testing.assert_array_equal(a, b)
        case.outcome = "the encoder, no head; identical outputs"
