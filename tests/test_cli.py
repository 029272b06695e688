"""The CLI: JSON output, one-line errors with exit codes, and no TensorFlow import for listings."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo
from tests.helpers import DATA_DIR
from zoo.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("argv", [["list"], ["info", "lenet5"], ["--help"], ["list", "--pretrained"]])
def test_listing_commands_do_not_import_tensorflow(argv):
    code = (
        "import sys; from zoo.cli import cli\n"
        f"try:\n    cli({argv!r}, prog_name='zoo')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tensorflow_datasets') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["predict", "--help"], 0), (["export", "--help"], 0), (["predict", "bert_mini", "hello"], 1)],
)
def test_help_and_refusals_do_not_wait_for_tensorflow(argv, code):
    """Without the user's TF_CPP_MIN_LOG_LEVEL the CLI quiets TensorFlow's start, but only when a
    command imports it: a command's help, or a refusal made before any model runs, never loads it."""
    import os

    script = (
        "import sys; from zoo.cli import cli\n"
        f"try:\n    cli({argv!r}, prog_name='zoo')\n"
        f"except SystemExit as e:\n    assert (e.code or 0) == {code}, e.code\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tensorflow_datasets') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_tensorflow_starts_quietly_whoever_imports_it_first(backend):
    """With JAX or PyTorch, TensorFlow comes in through Keras or tf.data, after probes that only look
    for it (find_spec): its start-up lines still stay off the terminal, and the import is the real one."""
    import os

    script = (
        "import importlib.util, sys; from zoo.cli._app import quiet_tensorflow_start\n"
        "quiet_tensorflow_start()\n"
        "assert importlib.util.find_spec('tensorflow') is not None and 'tensorflow' not in sys.modules\n"
        "import keras, tensorflow as tf\n"
        "loader = type(tf.__spec__.loader).__name__\n"
        "print(tf.reduce_sum(tf.ones(3)).numpy(), keras.backend.backend(), loader)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = backend
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["3.0", backend] and "Quiet" not in proc.stdout, proc.stdout
    noise = [
        line for line in proc.stderr.splitlines() if "I0000" in line or "cuInit" in line or "oneDNN" in line
    ]
    assert not noise, noise


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "list", "lenet*"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "lenet5" in proc.stdout


def test_list_json_has_display_names_and_papers():
    result = run("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    names = {r["architecture"] for r in rows}
    assert "lenet5" in names
    assert all(r["display_name"] and r["paper_url"].startswith("http") for r in rows)


def test_list_wildcard_and_task_filter():
    out = run("list", "LENET*", "--task", "image-classification").output
    assert "lenet5" in out
    assert run("list", "--task", "juggling").exit_code == 1


def test_info_json():
    data = json.loads(run("info", "LeNet-5", "--json").output)
    assert data["architecture"] == "lenet5" and data["family"] == "lenet"
    measured = [line.split()[1] for line in run("info", "lenet5").output.splitlines() if "measured" in line]
    assert measured == ["top1_accuracy", "top1_error"]  # the headline first, as zoo list shows it


def test_info_of_hub_weights_without_a_recorded_size_says_where_they_are():
    out = run("info", "resnet50").output
    assert "25,557,032 parameters, on the Hub," in out and " 0 B" not in out
    assert re.search(r"parameters, [0-9.]+ KB, license", run("info", "lenet5").output)


def test_list_json_gives_no_size_for_hub_weights_not_yet_pinned():
    sizes = {d["name"]: d["size"] for d in json.loads(run("list", "--pretrained", "--json").output)}
    assert sizes["resnet50.tv_in1k"] is None  # its size is known only once the Hub file is pinned
    assert sizes["lenet5.mnist"] == zoo.weights_entry("lenet5.mnist").files[0].size > 0
    table = run("list", "--pretrained", "resnet50*").output
    assert "on the Hub" in table and " 0 B" not in table


def test_unknown_name_is_one_line_and_exit_1():
    result = CliRunner().invoke(cli, ["info", "lenett"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Did you mean" in lines[0] and "Traceback" not in result.output


def test_usage_errors_exit_2():
    assert run("list", "--bogus").exit_code == 2
    assert run("pull").exit_code == 2


def test_every_command_has_examples_in_help():
    assert "Examples:" in run("--help").output
    for name in cli.commands:
        assert "Examples:" in run(name, "--help").output, name


@pytest.mark.parametrize(
    "command",
    [
        ["predict", "lenet5", "{tmp}/blank.png"],
        # TensorFlow's C++ log says "E... oneDNN supports DT_BOOL only on..." while tf2onnx converts it
        ["export", "lstm_classifier", "--format", "onnx", "--out", "{tmp}/lstm.onnx"],
    ],
    ids=["predict", "export-onnx"],
)
def test_commands_keep_tensorflow_log_lines_off_the_terminal(tmp_path, command):
    """Without the user's own TF_CPP_MIN_LOG_LEVEL, no oneDNN/CUDA log lines reach stderr, at start or
    later: TensorFlow's C++ notices, "ERROR" ones about a kernel's fallback included, are not the user's."""
    import os
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "blank.png")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", *(arg.format(tmp=tmp_path) for arg in command)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    noise = [line for line in proc.stderr.splitlines() if re.match(r"[IWE]\d{4} ", line) or "oneDNN" in line]
    assert not noise, noise


def test_json_output_is_all_that_reaches_stdout():
    """What a library prints during a --json command (a dataset builder's progress line) goes to stderr."""
    import json

    import click

    from zoo.cli._app import ZooGroup, echo_json

    group = ZooGroup()

    @group.command("noisy")
    @click.option("--json", "as_json", is_flag=True)
    def noisy(as_json: bool) -> None:
        print("Downloading and preparing dataset ...")
        if as_json:
            echo_json({"ok": 1})

    result = CliRunner().invoke(group, ["noisy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": 1} and "Downloading" in result.stderr
    plain = CliRunner().invoke(group, ["noisy"])
    assert "Downloading" in plain.stdout  # without --json, stdout is left alone


def test_predict_takes_folders_and_globs_reports_bad_files_and_resizes(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    (tmp_path / "scans" / "deeper").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "scans" / "a.png")
    Image.fromarray(np.full((50, 40), 255, np.uint8)).save(tmp_path / "scans" / "deeper" / "b.png")
    (tmp_path / "scans" / "broken.png").write_bytes(b"not an image")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(tmp_path / "photo.jpg")
    result = CliRunner().invoke(cli, ["predict", "lenet5", str(tmp_path / "scans"), "--json", "-k", "2"])
    assert result.exit_code == 1, result.output  # one file failed: the others are still classified
    rows = json.loads(result.stdout)
    assert [Path(r["input"]).name for r in rows] == ["a.png", "broken.png", "b.png"]
    assert "error" in rows[1] and len(rows[0]["top"]) == 2 and len(rows[2]["top"]) == 2
    assert "skipped: " in result.stderr
    ok = CliRunner().invoke(cli, ["predict", "resnet20", str(tmp_path / "*.jpg"), "-k", "1"])
    assert ok.exit_code == 0 and "photo.jpg" in ok.output  # 64x48 resized to the 32x32 input


def test_predict_classifies_text_from_arguments_and_files(tmp_path):
    import json

    (tmp_path / "reviews.txt").write_text("a moving, wonderful film\n\nboring and far too long\n")
    result = CliRunner().invoke(
        cli, ["predict", "lstm_classifier.mr", "--file", str(tmp_path / "reviews.txt"), "--json", "-k", "1"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["input"] for r in rows] == ["a moving, wonderful film", "boring and far too long"]
    assert [r["top"][0]["label"] for r in rows] == ["pos", "neg"]
    refused = CliRunner().invoke(cli, ["predict", "minilm_l6.sentence", "some text"])
    assert refused.exit_code != 0 and "zoo extract minilm_l6.sentence --data" in refused.output


def test_predict_reads_a_tables_text_column(tmp_path):
    """--file reviews.csv classified its header and every whole row, labels and commas included."""
    (tmp_path / "reviews.csv").write_text(
        'review,stars\n"a moving, wonderful film",5\nboring and far too long,1\n'
    )
    args = ["predict", "lstm_classifier.mr", "--file", str(tmp_path / "reviews.csv"), "--json", "-k", "1"]
    result = CliRunner().invoke(cli, [*args, "--text-column", "review"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["input"] for r in rows] == ["a moving, wonderful film", "boring and far too long"]
    assert [r["top"][0]["label"] for r in rows] == ["pos", "neg"]
    unnamed = CliRunner().invoke(cli, args)  # no 'text' column: say which there are
    assert unnamed.exit_code == 1 and "its columns are ['review', 'stars']" in unnamed.output


def test_predict_refuses_a_text_column_without_a_table(tmp_path):
    """--text-column without a --file table was ignored: the texts were classified as given."""
    (tmp_path / "reviews.txt").write_text("a moving, wonderful film\n")
    for extra in ([], ["--file", str(tmp_path / "reviews.txt")]):
        args = ["predict", "lstm_classifier.mr", "a moving film", *extra, "--text-column", "review"]
        refused = CliRunner().invoke(cli, args)
        assert (
            refused.exit_code == 2 and "--text-column chooses the column of a --file table" in refused.output
        )


def test_predict_reads_text_files_as_editors_save_them(tmp_path):
    texts = ["un film émouvant, wonderful", "boring and far too long"]
    saved = {
        "utf8.txt": "\n".join(texts).encode(),
        "bom.txt": "\r\n".join(texts).encode("utf-8-sig"),  # Excel, Notepad
        "utf16.txt": "\r\n".join(texts).encode("utf-16"),  # Windows PowerShell's '>'
        "latin1.txt": "\n".join(texts).encode("latin-1"),
    }
    for name, raw in saved.items():
        (tmp_path / name).write_bytes(raw)
        result = CliRunner().invoke(
            cli, ["predict", "lstm_classifier.mr", "--file", str(tmp_path / name), "--json"]
        )
        assert result.exit_code == 0, result.output
        assert [r["input"] for r in json.loads(result.stdout)] == texts, name
    (tmp_path / "blank.txt").write_text("\n  \n")
    result = CliRunner().invoke(cli, ["predict", "lstm_classifier.mr", "--file", str(tmp_path / "blank.txt")])
    assert (
        result.exit_code == 2 and "blank.txt holds no text: give a file of one text a line" in result.output
    )


def test_info_and_version_report_the_keras_backend(monkeypatch, tmp_path):
    from zoo.backend import keras_backend

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert "Keras backend jax" in CliRunner().invoke(cli, ["info", "lenet5"]).output
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text('{"backend": "torch"}')
    assert keras_backend() == "torch"
    (tmp_path / "keras.json").write_text("not json")
    assert keras_backend() == "tensorflow"


def test_flip_averaged_returns_the_mean_over_each_image_and_its_mirror_image():
    import numpy as np

    from zoo.tasks.evaluate import flip_averaged

    x = np.arange(2 * 3 * 4 * 1, dtype=np.float32).reshape(2, 3, 4, 1)
    first_row = flip_averaged(lambda batch: np.asarray(batch)[:, 0, :, 0])(x)
    np.testing.assert_allclose(first_row, (x[:, 0, :, 0] + x[:, 0, ::-1, 0]) / 2)


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_evaluate_tta_flip_is_reported_apart_from_the_manifest(monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    single = json.loads(run("evaluate", "lenet5", "--json").output)
    result = run("evaluate", "lenet5", "--tta", "flip", "--json")
    assert result.exit_code == 0, result.output
    flipped = json.loads(result.output)
    assert flipped["tta"] == "flip" and single["tta"] is None
    assert flipped["measured"]["num_examples"] == 10000
    # Mirrored digits are other shapes: averaging them in must cost LeNet-5 accuracy.
    assert flipped["measured"]["top1_accuracy"] < single["measured"]["top1_accuracy"] - 1
    text = run("evaluate", "lenet5", "--tta", "flip").output
    assert "flip test-time augmentation" in text and "manifest:" not in text


def test_recorded_metrics_are_those_of_the_same_data_and_split():
    from zoo.tasks.evaluate import recorded_metrics

    entry = zoo.weights_entry("lenet5.mnist")
    own = {"top1_accuracy": 99.33, "top1_error": 0.67}
    assert recorded_metrics(entry) == recorded_metrics(entry, "mnist", "test") == own
    assert recorded_metrics(entry, None, "train") == {}  # a train-split figure is not the test figure
    assert recorded_metrics(entry, "fashion_mnist") == recorded_metrics(entry, "./mnist") == {}
    # a fine-tune scored on a 500-example subset is not the whole split's figure
    subset = dataclasses.replace(
        entry, metrics=[dataclasses.replace(m, num_examples=500) for m in entry.metrics]
    )
    assert (
        recorded_metrics(subset, num_examples=500) == own
        and recorded_metrics(subset, num_examples=10000) == {}
    )


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_evaluate_compares_with_the_manifest_only_on_its_data_and_split(monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    train = run("evaluate", "lenet5", "--split", "train")
    assert train.exit_code == 0 and "60,000 examples" in train.output, train.output
    assert "manifest:" not in train.output
    named = run("evaluate", "lenet5", "--data", "mnist", "--json")
    assert json.loads(named.output)["manifest"] == {"top1_accuracy": 99.33, "top1_error": 0.67}


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_evaluate_scores_a_slice_of_a_split_and_says_the_manifest_is_of_whole_splits(monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    sliced = run("evaluate", "lenet5", "--split", "test[:500]")
    assert sliced.exit_code == 0, sliced.output
    assert "mnist (test[:500]), 500 examples, a slice (the manifest's figures are of whole splits)" in (
        sliced.output
    )
    assert "manifest:" not in sliced.output
    measured = json.loads(run("evaluate", "lenet5", "--split", "test[-5%:]", "--json").output)
    assert measured["measured"]["num_examples"] == 500 and measured["manifest"] == {}
    bad = run("evaluate", "lenet5", "--split", "test[500]")
    assert bad.exit_code == 1 and "split 'test[500]' is not NAME or NAME[START:STOP]" in bad.output


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_evaluate_on_a_folder_names_the_split_it_chose(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from zoo.data import catalog

    images, labels = catalog.mnist_like(DATA_DIR, "mnist", "test")
    for digit in (3, 8):
        (tmp_path / str(digit)).mkdir()
        for i in np.flatnonzero(labels == digit)[:5]:
            Image.fromarray(images[i, ..., 0]).save(tmp_path / str(digit) / f"{i}.png")
    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    result = run("evaluate", "lenet5", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"lenet5.mnist on {tmp_path} (train), 10 examples"


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA_DIR / "text" / "tinyshakespeare.txt").is_file(), reason=f"no text in {DATA_DIR}"
)
def test_evaluate_of_a_language_model_counts_its_characters(monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    result = run("evaluate", "lstm_charlm")
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert header.startswith("lstm_charlm.shakespeare on tiny_shakespeare (validation), ")
    assert header.endswith(" characters") and "0 examples" not in header
    assert "bits_per_char" in result.output and "num_chars" not in result.output


@pytest.mark.skipif(not (DATA_DIR / "text" / "rt-polarity").is_dir(), reason=f"no MR under {DATA_DIR}")
def test_evaluate_on_other_data_without_the_entrys_split_asks_for_one(monkeypatch):
    """The character model was measured on 'validation'; MR has train and test: which, and then
    that its text holds characters the model never saw (it scores none of them)."""
    monkeypatch.setenv("ZOO_DATA_DIR", str(DATA_DIR))
    result = run("evaluate", "lstm_charlm", "--data", "mr")
    assert result.exit_code == 1, result.output
    assert (
        "mr has no 'validation' split, the one lstm_charlm.shakespeare was measured on; choose one of "
        "its splits with --split (split= in Python): train, test"
    ) in result.output
    chosen = run("evaluate", "lstm_charlm", "--data", "mr", "--split", "test")
    assert chosen.exit_code == 1 and "not in the 65-character vocabulary" in chosen.output, chosen.output
    assert "lstm_charlm.shakespeare scores text of its own characters only, which mr (test) is not" in (
        chosen.output
    )


def test_evaluate_of_weights_measured_on_imagenet_says_what_data_to_give():
    result = run("evaluate", "efficientnet_lite0")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (
        "Error: efficientnet_lite0.in1k was measured on imagenet-1k (validation), which zoo.data cannot "
        "read; evaluate it on other data with its labels: --data FOLDER (root/<label>/ images, the folders "
        "named after its 1000 labels, which 'zoo info efficientnet_lite0.in1k --json' lists)"
    )


def test_evaluate_tta_refuses_models_that_are_not_image_classifiers():
    result = run("evaluate", "lstm_charlm", "--tta", "flip")
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].startswith("Error: test-time augmentation 'flip'")
    assert "image classifiers" in result.output
    bad = run("evaluate", "lenet5", "--tta", "rotate")
    assert bad.exit_code == 2 and "Invalid value for '--tta': 'rotate'" in bad.output


def test_list_pretrained_fits_a_terminal_and_keeps_pipes_whole(monkeypatch):
    from zoo.cli import _app, weights

    piped = run("list", "--pretrained").output.splitlines()
    vae = next(line for line in piped if line.startswith("vae.mnist"))
    assert "class_share_ratio=" in vae  # piped output is never cut
    lenet = next(line for line in piped if line.startswith("lenet5.mnist"))
    assert "top1_accuracy=99.33, top1_error=0.67" in lenet  # the headline first, whatever the manifest order
    monkeypatch.setattr(weights, "terminal_columns", lambda: 100)
    fitted = run("list", "--pretrained").output.splitlines()
    assert max(len(line) for line in fitted) <= 100
    vae = next(line for line in fitted if line.startswith("vae.mnist"))
    assert "nll_nats=83.1069" in vae and "more)" in vae and "class_share_ratio" not in vae
    assert _app.fit_items(["a=1", "b=2", "c=3"], 13) == "a=1, b=2, c=3"
    four = ["alpha=1.5", "beta=2.5", "gamma=3.5", "delta=4.5"]
    assert _app.fit_items(four, 41) == ", ".join(four)
    assert _app.fit_items(four, 40) == "alpha=1.5, beta=2.5, (+2 more)"
    assert _app.fit_items(four, 29) == "alpha=1.5, (+3 more)"
    assert _app.fit_items(["a_long_metric=1", "b=2"], 5) == "a_long_metric=1, (+1 more)"


@pytest.mark.parametrize(("level", "expected"), [(None, "40"), ("0", "0")])
def test_tensorflow_python_warnings_stay_quiet_unless_the_user_sets_a_log_level(level, expected):
    import os

    code = (
        "import logging\nfrom zoo.cli import cli\n"
        "try:\n    cli(['predict', '--help'], prog_name='zoo')\nexcept SystemExit:\n    pass\n"
        "print(logging.getLogger('tensorflow').level)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == expected


def test_predict_refuses_a_url_by_its_own_name():
    result = run("predict", "lenet5", "https://example.com/digit.png")
    assert result.exit_code == 2
    assert "https://example.com/digit.png: zoo predict reads local files" in result.output


def test_predict_says_which_inputs_a_model_takes(tmp_path):
    texts = tmp_path / "reviews.txt"
    texts.write_text("a moving, wonderful film\n")
    nothing = run("predict", "lenet5")
    assert nothing.exit_code == 2 and "Error: give image files, folders or glob patterns to classify" in (
        nothing.output
    )
    wrong = run("predict", "lenet5", "--file", str(texts))
    assert wrong.exit_code == 2 and "--file reads texts, but lenet5.mnist classifies images" in wrong.output
    named = run("predict", "lstm_classifier.mr", str(texts), "--json")
    assert named.exit_code == 0 and json.loads(named.stdout)[0]["input"] == str(texts)
    assert f"to classify a file's lines, use --file {texts}" in named.stderr
    long = tmp_path / "long.txt"
    long.write_text("a good film " * 1000 + "\n")
    shown = run("predict", "lstm_classifier.mr", "--file", str(long), "-k", "1")
    assert shown.exit_code == 0 and shown.stdout.splitlines()[0].endswith("... (12,000 characters)")
    assert len(shown.stdout.splitlines()[0]) < 250
    folder = run("predict", "lstm_classifier.mr", str(tmp_path), "-k", "1")
    assert folder.exit_code == 0 and f"'{tmp_path}' names a folder, but a text classifier" in folder.stderr


def test_predict_names_the_folders_and_patterns_that_held_no_images(tmp_path):
    from PIL import Image

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    result = run("predict", "lenet5", str(tmp_path / "empty"), str(tmp_path / "none*.png"))
    assert result.exit_code == 2 and "no images found in or matching" in result.output
    assert "empty'" in result.output and "none*.png'" in result.output and ".png" in result.output
    Image.new("L", (28, 28)).save(tmp_path / "digit.png")
    result = run("predict", "lenet5", str(tmp_path / "empty"), str(tmp_path / "digit.png"), "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 1  # the rest is still classified
    assert "Warning: no images found in or matching" in result.stderr and "empty'" in result.stderr


def test_predict_finds_in_folders_every_image_it_can_read(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.webp", "c.tif", "d.TIFF"):
        Image.new("L", (28, 28), 200).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    result = run("predict", "lenet5", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    found = [Path(row["input"]).name for row in json.loads(result.stdout)]
    assert all("top" in row for row in json.loads(result.stdout))
    assert found == ["a.png", "b.webp", "c.tif", "d.TIFF"]


def test_listings_that_match_nothing_say_so():
    assert "No models match." in run("list", "nothing*").output
    assert run("list", "--pretrained", "nothing*").output.strip() == "No weights match."
    assert json.loads(run("list", "--pretrained", "nothing*", "--json").output) == []


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("lstm", ["zoo generate lstm_charlm.shakespeare", "classifiers of its family: lstm_classifier.mr"]),
        ("bert_mini", ["zoo finetune bert_mini.google --data DATA --out DIR", "minilm_l6.mr"]),
        ("vae", ["zoo sample vae.mnist"]),
    ],
)
def test_predict_with_a_model_that_does_not_classify_names_what_does(name, says):
    result = run("predict", name, "a fine film")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "is not a classifier" in lines[0] and all(s in lines[0] for s in says), lines[0]
    assert name != "vae" or "classifiers of its family" not in lines[0]
