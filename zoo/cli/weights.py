"""Commands about the catalogue and weights files: list, info, pull, verify."""

from __future__ import annotations

from typing import Any

import click

from zoo.backend import keras_backend
from zoo.cli._app import cli, echo_json, fit_items, human_size, table, terminal_columns
from zoo.errors import ZooError


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
            echo_json(data)
            return
        if not data:
            click.echo("No weights match.", err=True)
            return
        rows = [
            [
                d["name"],
                "yes" if d["default"] else "",
                d["dataset"],
                [f"{k}={v:g}" for k, v in sorted(d["metrics"].items(), key=_headline_first)],
                _size_text(d["size"]),
            ]
            for d in data
        ]
        click.echo(table(_fit_metrics(rows, terminal_columns()), WEIGHTS_HEADERS))
        return

    infos = [api.info(n) for n in api.list_models(pattern, task=task)]
    if as_json:
        echo_json([{**i.to_dict(), "weights": [w.name for w in i.weights]} for i in infos])
        return
    if not infos:
        click.echo("No models match.", err=True)
        return
    rows = [
        [
            i.architecture,
            i.display_name,
            i.task,
            ", ".join(w.tag + ("*" if w.default else "") for w in i.weights) or "-",
            i.paper_url,
        ]
        for i in infos
    ]
    click.echo(table(rows, ["name", "model", "task", "weights", "paper"]))


def _size_text(size: int | None) -> str:
    """A weights entry's size, or where it is when no size is recorded (a Hub file pinned on first use)."""
    return "on the Hub" if size is None else human_size(size)


def _split_text(dataset: Any) -> str:
    """The split a record's metric is on, with the held-out fold and table columns a fine-tune read."""
    parts = [dataset["split"]]
    if "kfold" in dataset:
        k, fold = dataset["kfold"]
        parts.append(f"fold {fold} of {k} held out")
    if "columns" in dataset:
        parts.append(f"columns {dataset['columns']['text']!r} and {dataset['columns']['label']!r}")
    return "; ".join(parts)


#: Metrics ``zoo list --pretrained`` and ``zoo info`` show first, in this order, where an entry has them (the
#: rest follow in the manifest's order, so a terminal too narrow for all still shows these).
HEADLINE_METRICS = ("top1_accuracy", "linear_probe_top1_accuracy", "bits_per_char", "nll_nats", "fid_lenet5")


def _headline_first(item: tuple[str, float]) -> int:
    name = item[0]
    return HEADLINE_METRICS.index(name) if name in HEADLINE_METRICS else len(HEADLINE_METRICS)


#: Columns of ``zoo list --pretrained``; the metrics (index 3) are cut to fit a terminal.
WEIGHTS_HEADERS = ["weights", "default", "dataset", "metrics", "size"]


def _fit_metrics(rows: list[list], columns: int | None) -> list[list[str]]:
    """Rows with their metrics (column 3, a list) joined, cut to what leaves the table ``columns`` wide."""
    if columns is None or not rows:
        return [[*r[:3], ", ".join(r[3]), r[4]] for r in rows]
    headers = WEIGHTS_HEADERS
    others = sum(max(len(h), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers) if i != 3)
    width = max(columns - others - 2 * (len(headers) - 1), len("metrics"))
    return [[*r[:3], fit_items(r[3], width), r[4]] for r in rows]


@cli.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show an architecture's metadata and every weights entry.

    \b
    Examples:
      zoo info lenet5
      zoo info "LeNet-5" --json
      zoo info ./my-finetune
    """
    from zoo import api

    i = api.info(name)
    if as_json:
        echo_json(i.to_dict())
        return
    click.echo(f"{i.display_name} ({i.architecture}, family {i.family})")
    click.echo(f"  task:   {i.task}")
    click.echo(f"  runs on: Keras backend {keras_backend()} (set KERAS_BACKEND to choose)")
    click.echo(f"  paper:  {i.paper} <{i.paper_url}>")
    if i.description:
        click.echo(f"  about:  {i.description}")
    if not i.weights:
        click.echo("  weights: none (zoo.load(name, weights=None) builds it untrained)")
    for w in i.weights:
        click.echo(f"  weights {w.name}{' (default)' if w.default else ''}: {w.description}")
        click.echo(
            f"    dataset {w.dataset['name']} ({_split_text(w.dataset)}), "
            f"{w.num_params:,} parameters, {_size_text(w.total_size)}, license {w.license}"
        )
        for m in sorted(w.metrics, key=lambda m: _headline_first((m.name, m.value))):
            count = "" if m.num_examples is None else f" ({m.num_examples:,} examples)"
            click.echo(f"    measured {m.name} = {m.value:g} on {m.dataset} {m.split}{count}")
        for r in w.references:
            click.echo(f"    reference {r.name} = {r.value:g} ({r.citation})")
        for s in w.sources:
            click.echo(f"    source {s.describe()}")
        unpublished = [f.filename for f in w.files if not f.sha256]
        if unpublished:
            click.echo(
                f"    sha256: none published for {', '.join(unpublished)}; checked against the "
                "Hub's own hash, then pinned on first use and enforced"
            )


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
        echo_json(result)
        return
    for name, files in result.items():
        for filename, path in files.items():
            click.echo(f"{name}  {filename}  {path}")


@cli.command("verify")
@click.argument("names", nargs=-1)
@click.option(
    "--golden",
    is_flag=True,
    help="Also run each model on its golden inputs and compare with the recorded outputs "
    "(weights without a golden pair are reported as skipped).",
)
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
        echo_json([vars(r) for r in results])
    else:
        rows = [[r.weights, r.filename, r.status.upper(), r.detail or (r.path or "")] for r in results]
        click.echo(table(rows, ["weights", "file", "status", "detail"]))
    bad = [r for r in results if r.status == "bad"]
    if bad:
        raise ZooError(
            f"{len(bad)} file(s) failed verification: "
            + ", ".join(f"{r.weights}/{r.filename}" for r in bad)
            + "; delete them and run 'zoo pull NAME' again"
        )
