"""Commands that take a zoo model to a new task: finetune, extract."""

from __future__ import annotations

import click

from zoo.cli._app import cli, columns_options, echo_json, runtime_option
from zoo.errors import InputError
from zoo.train.distribute import DISTRIBUTE


class UnfreezeType(click.ParamType):
    """A number of top backbone blocks (0 or more), ``all`` or ``auto``."""

    name = "N|all|auto"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201, D102
        if isinstance(value, int) or value in ("all", "auto"):
            return value
        try:
            number = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a whole number, 'all' or 'auto'", param, ctx)
        if number < 0:
            self.fail(f"{number} is negative: give 0 or more blocks, 'all' or 'auto'", param, ctx)
        return number


@cli.command("finetune")
@click.argument("name")
@click.option(
    "--data",
    required=True,
    help="A folder (root/<label>/* or root/<split>/<label>/*), a CSV/TSV/JSONL file, tfds:NAME, "
    "or a named dataset.",
)
@columns_options
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="A new (or empty) output folder; rerunning with the same data and settings resumes.",
)
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--strategy",
    type=click.Choice(["two_phase", "probe", "head", "full"]),
    default="two_phase",
    show_default=True,
    help="two_phase: a linear probe on the frozen features, then the top blocks train with it "
    "(sentence encoders: contrastive sentence pairs, then the probe); probe: the probe alone; "
    "head: the head alone, epoch by epoch; full: every layer.",
)
@click.option(
    "--distribute",
    type=click.Choice(list(DISTRIBUTE)),
    default="none",
    show_default=True,
    help="data-parallel: keras.distribution on JAX (several processes: KERAS_DISTRIBUTION_* "
    "variables), tf.distribute on TensorFlow (MirroredStrategy; with TF_CONFIG, "
    "MultiWorkerMirroredStrategy over its workers); mirrored: TensorFlow, one machine.",
)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 65_536))
@click.option(
    "--lr",
    "learning_rate",
    default=1e-3,
    show_default=True,
    type=click.FloatRange(0, 10, min_open=True),
    help="Adam learning rate of the probe, the head and full, in (0, 10].",
)
@click.option(
    "--ft-lr",
    "fine_tune_learning_rate",
    type=click.FloatRange(0, 10, min_open=True),
    help="SGD learning rate of two_phase's phase 2, in (0, 10] (default: chosen with --unfreeze auto, "
    "else 0.02). Not for BERT encoders.",
)
@click.option(
    "--unfreeze",
    default="auto",
    show_default=True,
    type=UnfreezeType(),
    help="Top backbone blocks to unfreeze in phase 2, 'all', or 'auto': image and LSTM classifiers try "
    "a few blocks/rate settings on 20% of the training set held back, then train on all of it with "
    "the best; BERT encoders: every layer.",
)
@click.option("--max-train", type=click.IntRange(min=1), help="Use a fixed subset of N training examples.")
@click.option("--max-val", type=click.IntRange(min=1), help="Use a fixed subset of N validation examples.")
@click.option("--from-scratch", is_flag=True, help="Start from random weights (a baseline).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option(
    "--save-every-steps",
    type=click.IntRange(min=1),
    help="Also checkpoint every N steps, so a run killed mid-epoch resumes there.",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default: ZOO_DATA_DIR).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Start again in --out over zoo's own earlier run with other data or settings.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def finetune_cmd(
    name: str,
    data: str,
    text_column: str,
    label_column: str,
    out: str,
    epochs: int,
    strategy: str,
    distribute: str,
    batch_size: int,
    learning_rate: float,
    fine_tune_learning_rate: float | None,
    unfreeze: int | str,
    max_train: int | None,
    max_val: int | None,
    from_scratch: bool,
    seed: int,
    save_every_steps: int | None,
    data_dir: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Fine-tune NAME on a dataset; write model.keras, card.json and curves.png to --out.

    \b
    Examples:
      zoo finetune lenet5 --data ./digits --out ./mine
      zoo finetune lenet5 --data fashion_mnist --epochs 6 --max-train 2000 --out ./fashion
      zoo finetune bert_mini --data reviews.csv --text-column review --label-column stars --out ./reviews
      zoo finetune resnet --data ./photos --strategy head --distribute data-parallel --out ./photos-model
    """
    from zoo.train.finetune import finetune

    summary = finetune(
        name,
        data,
        out,
        epochs=epochs,
        strategy=strategy,
        distribute=distribute,
        batch_size=batch_size,
        learning_rate=learning_rate,
        fine_tune_learning_rate=fine_tune_learning_rate,
        unfreeze=unfreeze,
        max_train=max_train,
        max_val=max_val,
        seed=seed,
        data_dir=data_dir,
        text_column=text_column,
        label_column=label_column,
        weights=None if from_scratch else "default",
        save_every_steps=save_every_steps,
        verbose=0 if as_json else 2,
        overwrite=overwrite,
    )
    if as_json:
        echo_json(summary)
        return
    m = summary["metrics"]
    on = f" on {int(m['num_examples'])} examples" if "num_examples" in m else ""
    click.echo(f"validation top-1 accuracy {m['top1_accuracy']:.2f}%{on}")
    for key in ("model", "card", "curves"):
        click.echo(f"  {key:<7} {summary[key]}")


@cli.command("extract")
@click.argument("name")
@click.option("--data", required=True, help="A named dataset, tfds:NAME, a folder or a CSV/TSV/JSONL file.")
@columns_options
@click.option("--split", default="train", show_default=True, help="Split to read, or a slice: train[:5000].")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .npz file.")
@click.option("--layer", "layers", multiple=True, help="Layer or stage to read (repeatable).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default: ZOO_DATA_DIR).")
@runtime_option(", image classifiers only, one --layer")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace zoo's own earlier output at --out (never files zoo did not write).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the file and its arrays' shapes.")
def extract_cmd(
    name: str,
    data: str,
    text_column: str,
    label_column: str,
    split: str,
    out: str,
    layers: tuple[str, ...],
    batch_size: int,
    data_dir: str | None,
    runtime: str,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Compute features of a dataset with a pretrained model and save them as .npz.

    Features are cached, keyed by the weights' sha256 and the data's fingerprint.
    A sentence encoder's features are its sentence embeddings (as zoo.text.encode
    gives them); a table without a label column is read without labels.

    \b
    Examples:
      zoo extract lenet5 --data mnist --split test --out mnist-test.npz
      zoo extract resnet20 --data ./photos --layer layer2 --layer pre_logits --out feats.npz
      zoo extract efficientnet_lite0 --data cifar10 --split test --runtime onnx --out feats.npz
      zoo extract minilm --data sentences.csv --out embeddings.npz
      zoo extract lenet5 --data ./scans --out scans.npz --json
    """
    from zoo.data import table_columns
    from zoo.train.engine import extract_to_file

    forward = None
    if runtime == "onnx":
        if len(layers) > 1:
            raise InputError(
                "--runtime onnx reads one --layer; run it once per layer, or use --runtime keras"
            )
        from zoo.export import onnx_forward

        forward = onnx_forward(name, features=True, layer=layers[0] if layers else None)

    path, shapes = extract_to_file(
        name,
        data,
        out,
        split=split,
        layers=list(layers) or None,
        batch_size=batch_size,
        data_dir=data_dir,
        overwrite=overwrite,
        forward=forward,
        columns=table_columns(text_column, label_column),
    )
    if as_json:
        arrays = {k: list(v) for k, v in shapes.items()}
        from zoo import api

        weights = api.weights_entry(name).name
        echo_json({"weights": weights, "data": data, "split": split, "out": str(path), "arrays": arrays})
        return
    click.echo(f"wrote {path}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
