"""Commands that run models on data: evaluate, predict."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from zoo.cli._app import cli, columns_options, echo_json, runtime_option
from zoo.errors import InputError
from zoo.tasks.evaluate import TTA_MODES


def _forward(name: str, runtime: str) -> Callable[[Any], Any] | None:
    """The batch function of ``runtime`` for ``name`` (``None``: Keras' own)."""
    if runtime == "keras":
        return None
    from zoo.export import onnx_forward

    return onnx_forward(name)


@cli.command("evaluate")
@click.argument("name")
@click.option(
    "--data",
    help="Dataset: a name, tfds:NAME[:SPLIT], a folder or a CSV/TSV/JSONL file (default: the manifest's).",
)
@columns_options
@click.option(
    "--split",
    help="Split to evaluate (default: the manifest's), or a slice of it: test[:1000], test[:10%].",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default: ZOO_DATA_DIR).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@runtime_option()
@click.option(
    "--tta",
    type=click.Choice(TTA_MODES),
    help="Image classifiers: test-time augmentation; flip averages each image's outputs with its "
    "mirror image's (reported apart from the manifest's single-view figures).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_cmd(
    name: str,
    data: str | None,
    text_column: str,
    label_column: str,
    split: str | None,
    data_dir: str | None,
    batch_size: int,
    runtime: str,
    tta: str | None,
    as_json: bool,
) -> None:
    """Measure pretrained weights on their dataset and compare with the manifest.

    \b
    Examples:
      zoo evaluate lenet5
      ZOO_DATA_DIR=../shared/data zoo evaluate lenet5.mnist --json
      zoo evaluate resnet20 --runtime onnx
      zoo evaluate resnet20 --tta flip
      zoo evaluate vae --split "test[:1000]"
    """
    from zoo import api
    from zoo.data import split_slice, table_columns
    from zoo.tasks.evaluate import evaluate, evaluation_split, recorded_metrics

    entry = api.weights_entry(name)
    columns = table_columns(text_column, label_column) or None  # None: the entry's own
    if data is not None:  # named in the output: the split of other data is chosen there
        split = evaluation_split(entry, data, split, data_dir=data_dir, columns=columns)
    options = {"data": data, "split": split, "data_dir": data_dir, "batch_size": batch_size}
    result = evaluate(entry.name, **options, forward=_forward(entry.name, runtime), tta=tta, columns=columns)
    count = int(result["num_examples"]) if "num_examples" in result else None
    recorded = {} if tta else recorded_metrics(entry, data, split, count)  # figures of the same data only
    if as_json:
        echo_json({"weights": entry.name, "measured": result, "manifest": recorded, "tta": tta})
        return
    click.echo(
        f"{entry.name} on {data or entry.dataset['name']} "
        f"({split or entry.dataset['split']})"
        + _count_text(result)
        + (", flip test-time augmentation (the manifest's figures are single-view)" if tta else "")
        + (", a slice (the manifest's figures are of whole splits)" if split_slice(split)[1] else "")
    )
    for key, value in result.items():
        if key in ("num_examples", "num_chars"):
            continue
        note = f"   (manifest: {recorded[key]:.4g})" if key in recorded else ""
        click.echo(f"  {key:<16} {value:.4g}{note}")


#: Characters of an input shown above its labels (--json gives it whole).
SHOWN_CHARS = 200


def _shown(item: str) -> str:
    """An input as the plain output heads its labels: a long text cut, with its length."""
    if len(item) <= SHOWN_CHARS:
        return item
    return f"{item[:SHOWN_CHARS]}... ({len(item):,} characters)"


def _count_text(result: dict[str, float]) -> str:
    """What an evaluation counted: examples, or the characters a language model was scored on."""
    if "num_examples" in result:
        return f", {int(result['num_examples']):,} examples"
    if "num_chars" in result:
        return f", {int(result['num_chars']):,} characters"
    return ""


@cli.command("predict")
@click.argument("name")
@click.argument("inputs", nargs=-1)
@click.option(
    "--file",
    "text_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A text classifier's inputs: a file of one text a line (UTF-8, UTF-16 or Latin-1), "
    "or a CSV/TSV/JSONL table's --text-column.",
)
@click.option(
    "--text-column",
    default="text",
    show_default=True,
    help="--file tables (.csv, .tsv, .jsonl): the column holding the texts.",
)
@click.option("--top-k", "-k", default=5, show_default=True, type=click.IntRange(min=1))
@runtime_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict_cmd(
    name: str,
    inputs: tuple[str, ...],
    text_file: str | None,
    text_column: str,
    top_k: int,
    runtime: str,
    as_json: bool,
) -> None:
    """Classify images (files, folders, globs) or texts; print the top-k labels.

    Images are read in batches of 32 and resized to the model's input; a file that
    cannot be read is reported and skipped, and the command then exits with status 1.

    \b
    Examples:
      zoo predict lenet5 digit.png
      zoo predict lenet5 ./scans 'more/*.png' --top-k 3 --json
      zoo predict ./my-finetune photo.jpg
      zoo predict lstm_classifier.mr "a gripping, beautifully shot film"
      zoo predict minilm_l6.mr --file reviews.txt
      zoo predict minilm_l6.mr --file reviews.csv --text-column review
      zoo predict efficientnet_lite0 photo.jpg --runtime onnx
    """
    from zoo import api
    from zoo.tasks import task_of
    from zoo.tasks.predict import predict

    entry = api.weights_entry(name)  # resolved once: a folder or hf:// reference is read once
    texts = task_of(entry) == "text-classification"
    if text_file and not texts:
        raise click.UsageError(
            f"--file reads texts, but {entry.name} classifies images: "
            "give image files, folders or glob patterns"
        )
    if text_column != "text" and not _is_table(text_file):
        raise click.UsageError(
            "--text-column chooses the column of a --file table (.csv, .tsv, .jsonl): "
            "give --file TABLE, or leave it out"
        )
    items = _texts(inputs, text_file, text_column) if texts else _image_paths(inputs)
    results = predict(entry.name, items, top_k=top_k, forward=_forward(entry.name, runtime))
    failed = [r for r in results if r.error is not None]
    if failed and len(failed) == len(results):  # nothing to show: one line, as for any refusal
        first = failed[0].error
        raise InputError(
            first if len(failed) == 1 else f"none of the {len(failed)} inputs could be read ({first})"
        )
    if as_json:
        echo_json([r.to_dict() for r in results])
    else:
        for r in results:
            if r.error is None:
                click.echo(_shown(r.input))
                for label, p in zip(r.labels, r.probabilities, strict=True):
                    click.echo(f"  {p:7.2%}  {label}")
    for r in failed:
        click.echo(f"skipped: {r.error}", err=True)
    if failed:
        raise SystemExit(1)


def _is_table(path: str | None) -> bool:
    """Whether ``path`` names a CSV/TSV/JSONL table (by its suffix)."""
    from pathlib import Path

    from zoo.data.folders import TABLE_SUFFIXES

    return path is not None and Path(path).suffix.lower() in TABLE_SUFFIXES


def _texts(inputs: tuple[str, ...], text_file: str | None, text_column: str = "text") -> list[str]:
    """Texts from the arguments and from a file.

    The file holds one text a line (UTF-8, UTF-16 or Latin-1), or is a CSV/TSV/JSONL table
    whose ``text_column`` is read (its header and other columns are not texts).
    """
    from pathlib import Path

    from zoo.data.folders import decode_text

    texts = list(inputs)
    for text in texts:
        path = Path(text) if "\n" not in text and len(text) < 4096 else None
        if path is not None and path.exists():
            what = f"use --file {text}" if path.is_file() else "give --file FILE (one text a line)"
            click.echo(
                f"Warning: {text!r} names a {'file' if path.is_file() else 'folder'}, but a text "
                f"classifier reads it as the text itself; to classify a file's lines, {what}",
                err=True,
            )
    if _is_table(text_file):
        import zoo.data

        table = zoo.data.load(text_file, "train", text_column=text_column, label_column=None)
        texts += [row["text"].decode("utf-8") for row in table.as_numpy_iterator()]
    elif text_file:
        lines = decode_text(Path(text_file).read_bytes()).splitlines()
        texts += [line for line in lines if line.strip()]
        if not texts:
            raise click.UsageError(f"{text_file} holds no text: give a file of one text a line")
    if not texts:
        raise click.UsageError("give texts as arguments or --file FILE (one text a line)")
    return texts


def _image_paths(inputs: tuple[str, ...]) -> list[str]:
    """Image files from file names, folders (searched recursively) and glob patterns, in order."""
    import glob
    from pathlib import Path

    from zoo.data.folders import IMAGE_SUFFIXES, PILLOW_ONLY_SUFFIXES

    suffixes = IMAGE_SUFFIXES | PILLOW_ONLY_SUFFIXES  # what read_image opens
    if not inputs:
        raise click.UsageError("give image files, folders or glob patterns to classify")
    paths: list[str] = []
    empty: list[str] = []  # folders and patterns that gave nothing
    for item in inputs:
        if "://" in item:  # Path() would fold the '//' and report a mangled missing file
            raise click.UsageError(f"{item}: zoo predict reads local files; download it first")
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        elif not path.exists() and glob.has_magic(item):
            found = sorted(glob.glob(os.path.expanduser(item), recursive=True))
        else:
            found = [item]  # a missing file is reported by the prediction, with the others
        paths += found
        empty += [] if found else [item]
    what = ", ".join(f"'{item}'" for item in empty)
    where = f"in or matching {what} (image files end in {', '.join(sorted(suffixes))})"
    if not paths:
        raise click.UsageError(f"no images found {where}: give image files, folders or glob patterns")
    if empty:
        click.echo(f"Warning: no images found {where}", err=True)
    return paths
