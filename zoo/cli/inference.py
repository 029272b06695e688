"""Commands that run models on data: evaluate, predict."""

from __future__ import annotations

import click

from zoo.cli._app import cli, echo_json


@cli.command("evaluate")
@click.argument("name")
@click.option("--data", help="Dataset: a name, tfds:NAME[:SPLIT] or a folder (default: the manifest's).")
@click.option("--split", help="Split to evaluate (default: the manifest's).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default: ZOO_DATA_DIR).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_cmd(
    name: str, data: str | None, split: str | None, data_dir: str | None, batch_size: int, as_json: bool
) -> None:
    """Measure pretrained weights on their dataset and compare with the manifest.

    \b
    Examples:
      zoo evaluate lenet5
      ZOO_DATA_DIR=../shared/data zoo evaluate lenet5.mnist --json
    """
    from zoo import api
    from zoo.tasks.evaluate import evaluate

    entry = api.weights_entry(name)
    result = evaluate(entry.name, data=data, split=split, data_dir=data_dir, batch_size=batch_size)
    recorded = {m.name: m.value for m in entry.metrics}
    if as_json:
        echo_json({"weights": entry.name, "measured": result, "manifest": recorded})
        return
    click.echo(
        f"{entry.name} on {data or entry.dataset['name']} "
        f"({split or ('default split' if data else entry.dataset['split'])}), "
        f"{int(result.get('num_examples', 0))} examples"
    )
    for key, value in result.items():
        if key == "num_examples":
            continue
        note = f"   (manifest: {recorded[key]:.4g})" if key in recorded and data is None else ""
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
    from zoo.tasks.classify import predict

    results = predict(name, list(inputs), top_k=top_k)
    if as_json:
        echo_json([r.to_dict() for r in results])
        return
    for r in results:
        click.echo(r.input)
        for label, p in zip(r.labels, r.probabilities, strict=True):
            click.echo(f"  {p:7.2%}  {label}")
