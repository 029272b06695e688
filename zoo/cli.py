"""The ``zoo`` command line: thin click commands that call the library and print.

Library errors (:class:`zoo.errors.ZooError`) become one line on stderr and exit
status 1; usage errors exit 2. TensorFlow is only imported by commands that run
models, so ``zoo list``, ``zoo info`` and ``zoo --help`` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from zoo.errors import ZooError


class ZooGroup(click.Group):
    """A click group that turns library errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting :class:`ZooError` without a traceback."""
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.group(
    cls=ZooGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  zoo list                      every architecture
  zoo list 'resnet*' --json     wildcard, as JSON
  zoo info lenet5               metadata and weights of LeNet-5
  zoo pull lenet5.mnist         fetch and verify weights
  zoo verify                    re-hash packaged and cached weights""",
)
@click.version_option(package_name="zoo", prog_name="zoo")
def cli() -> None:
    """A Keras 3 model zoo: classic architectures with verified pretrained weights."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models of this task, e.g. image-classification.")
@click.option("--pretrained", is_flag=True, help="List weights entries (arch.tag) instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(pattern: str | None, task: str | None, pretrained: bool, as_json: bool) -> None:
    """List architectures (or, with --pretrained, weights) matching PATTERN.

    \b
    Examples:
      zoo list
      zoo list 'vgg*' --task image-classification
      zoo list --pretrained '*.mnist' --json
    """
    from zoo import api

    if pretrained:
        names = api.list_models(pattern, task=task, pretrained=True)
        entries = [api.weights_entry(n) for n in names]
        data = [
            {
                "name": e.name,
                "default": e.default,
                "dataset": e.dataset["name"],
                "metrics": {m.name: m.value for m in e.metrics},
                "size": e.total_size,
                "num_params": e.num_params,
            }
            for e in entries
        ]
        if as_json:
            _echo_json(data)
            return
        rows = [
            [d["name"], "yes" if d["default"] else "", d["dataset"],
             ", ".join(f"{k}={v:g}" for k, v in d["metrics"].items()), _human_size(d["size"])]
            for d in data
        ]
        click.echo(_table(rows, ["weights", "default", "dataset", "metrics", "size"]))
        return

    infos = [api.info(n) for n in api.list_models(pattern, task=task)]
    if as_json:
        _echo_json([{**i.to_dict(), "weights": [w.name for w in i.weights]} for i in infos])
        return
    if not infos:
        click.echo("No models match.", err=True)
        return
    rows = [
        [i.architecture, i.display_name, i.task,
         ", ".join(w.tag + ("*" if w.default else "") for w in i.weights) or "-",
         i.paper_url]
        for i in infos
    ]
    click.echo(_table(rows, ["name", "model", "task", "weights", "paper"]))


@cli.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show an architecture's metadata and every weights entry.

    \b
    Examples:
      zoo info lenet5
      zoo info "LeNet-5" --json
    """
    from zoo import api

    i = api.info(name)
    if as_json:
        _echo_json(i.to_dict())
        return
    click.echo(f"{i.display_name} ({i.architecture}, family {i.family})")
    click.echo(f"  task:   {i.task}")
    click.echo(f"  paper:  {i.paper} <{i.paper_url}>")
    if i.description:
        click.echo(f"  about:  {i.description}")
    if not i.weights:
        click.echo("  weights: none (zoo.load(name, weights=None) builds it untrained)")
    for w in i.weights:
        click.echo(f"  weights {w.name}{' (default)' if w.default else ''}: {w.description}")
        click.echo(f"    dataset {w.dataset['name']} ({w.dataset['split']}), "
                   f"{w.num_params:,} parameters, {_human_size(w.total_size)}, license {w.license}")
        for m in w.metrics:
            click.echo(f"    measured {m.name} = {m.value:g} on {m.dataset} {m.split}")
        for r in w.references:
            click.echo(f"    reference {r.name} = {r.value:g} ({r.citation})")
        for s in w.sources:
            click.echo(f"    source {s.describe()}")


@cli.command("pull")
@click.argument("names", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pull_cmd(names: tuple[str, ...], as_json: bool) -> None:
    """Download (if needed) and verify the weights of NAMES; print local paths.

    \b
    Examples:
      zoo pull lenet5
      zoo pull bert-mini resnet50.tv_in1k --json
    """
    from zoo import api

    result = {}
    for name in names:
        entry = api.weights_entry(name)
        result[entry.name] = {k: str(v) for k, v in api.pull(entry.name).items()}
    if as_json:
        _echo_json(result)
        return
    for name, files in result.items():
        for filename, path in files.items():
            click.echo(f"{name}  {filename}  {path}")


@cli.command("verify")
@click.argument("names", nargs=-1)
@click.option("--golden", is_flag=True,
              help="Also run each model on its golden inputs and compare with the recorded outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_cmd(names: tuple[str, ...], golden: bool, as_json: bool) -> None:
    """Re-hash packaged and cached weights against the manifest (no downloads).

    Exits 1 when any file is corrupted; files not downloaded yet are reported as missing.

    \b
    Examples:
      zoo verify
      zoo verify lenet5 --golden
      zoo verify lenet5 --json
    """
    from zoo import api

    results = api.verify(list(names) or None, golden=golden)
    if as_json:
        _echo_json([vars(r) for r in results])
    else:
        rows = [[r.weights, r.filename, r.status.upper(), r.detail or (r.path or "")]
                for r in results]
        click.echo(_table(rows, ["weights", "file", "status", "detail"]))
    bad = [r for r in results if r.status == "bad"]
    if bad:
        raise ZooError(
            f"{len(bad)} file(s) failed verification: "
            + ", ".join(f"{r.weights}/{r.filename}" for r in bad)
            + "; delete them and run 'zoo pull NAME' again"
        )


@cli.command("evaluate")
@click.argument("name")
@click.option("--data", help="Dataset: a name, tfds:NAME[:SPLIT] or a folder (default: the manifest's).")
@click.option("--split", help="Split to evaluate (default: the manifest's).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default: ZOO_DATA_DIR).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_cmd(name: str, data: str | None, split: str | None, data_dir: str | None,
                 batch_size: int, as_json: bool) -> None:
    """Measure pretrained weights on their dataset and compare with the manifest.

    \b
    Examples:
      zoo evaluate lenet5
      ZOO_DATA_DIR=../shared/data zoo evaluate lenet5.mnist --json
    """
    from zoo import api
    from zoo.evaluate import evaluate

    entry = api.weights_entry(name)
    result = evaluate(entry.name, data=data, split=split, data_dir=data_dir, batch_size=batch_size)
    recorded = {m.name: m.value for m in entry.metrics}
    if as_json:
        _echo_json({"weights": entry.name, "measured": result, "manifest": recorded})
        return
    click.echo(f"{entry.name} on {data or entry.dataset['name']} ({split or entry.dataset['split']}), "
               f"{int(result.get('num_examples', 0))} examples")
    for key, value in result.items():
        if key == "num_examples":
            continue
        note = f"   (manifest: {recorded[key]:.4g})" if key in recorded else ""
        click.echo(f"  {key:<16} {value:.4g}{note}")


@cli.command("predict")
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--top-k", "-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict_cmd(name: str, inputs: tuple[str, ...], top_k: int, as_json: bool) -> None:
    """Classify image files with pretrained weights; print the top-k labels.

    \b
    Examples:
      zoo predict lenet5 digit.png
      zoo predict lenet5 a.png b.png --top-k 3 --json
    """
    from zoo.predict import predict

    results = predict(name, list(inputs), top_k=top_k)
    if as_json:
        _echo_json([r.to_dict() for r in results])
        return
    for r in results:
        click.echo(r.input)
        for label, p in zip(r.labels, r.probabilities, strict=True):
            click.echo(f"  {p:7.2%}  {label}")


def main() -> None:
    """Entry point of the ``zoo`` console script."""
    cli(prog_name="zoo")
