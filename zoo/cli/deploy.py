"""Commands that package models for deployment: export."""

from __future__ import annotations

from typing import Any

import click

from zoo.cli._app import cli, echo_json, human_size
from zoo.export import (
    CALIBRATION_IMAGES,
    MAX_CALIBRATION_IMAGES,
    MAX_PIECES,
    QAT_BATCH,
    QAT_IMAGES,
    QUANTIZE,
    ROUNDINGS,
)


@cli.command("export")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["savedmodel", "tflite", "onnx", "openvino"]),
    help="Runtime format: TensorFlow SavedModel, TFLite/LiteRT, ONNX, or OpenVINO IR.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Output folder (savedmodel), file (tflite, onnx) or X.xml (openvino, with X.bin beside it).",
)
@click.option(
    "--quantize",
    type=click.Choice([q for q in QUANTIZE if q]),
    help="TFLite post-training quantisation: float16 weights; int8 weights and activations (calibrated "
    "on --data, biases corrected for the weight rounding); dynamic: int8 weights, activations quantised "
    "per batch when run (no calibration).",
)
@click.option(
    "--qat-steps",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="int8: first train, for this many steps on --data's train split, float weights whose int8 "
    "model follows Keras' outputs (quantisation-aware distillation; minutes). 0: post-training only.",
)
@click.option(
    "--qat-checkpoint",
    type=click.Path(file_okay=False),
    help="With --qat-steps: a folder the distillation saves its state to every 250 steps; the same "
    "export resumes from it, or converts at once when it is finished.",
)
@click.option(
    "--qat-images",
    type=click.IntRange(min=QAT_BATCH),
    help=f"With --qat-steps: how many of --data's train images distillation draws from "
    f"[default: {QAT_IMAGES}].",
)
@click.option(
    "--qat-keep-kernels",
    is_flag=True,
    help="With --qat-steps: train only the batch norms and biases; the kernels keep the int8 values "
    "--rounding gave them.",
)
@click.option(
    "--calibration-images",
    type=click.IntRange(1, MAX_CALIBRATION_IMAGES),
    default=CALIBRATION_IMAGES,
    show_default=True,
    help="int8: how many of --data's train images set the activation ranges and the rounding (more: "
    "slower, and --rounding sequential holds each layer's inputs on all of them in memory).",
)
@click.option(
    "--stem-pieces",
    type=click.IntRange(1, MAX_PIECES),
    default=1,
    show_default=True,
    help="int8: hold the first activation (a ReLU6 read by a depthwise convolution: EfficientNet-Lite) "
    "in this many int8 pieces that the next convolution, made a full one, adds back: that many times "
    "finer steps, every tensor still int8, that convolution slower.",
)
@click.option(
    "--depthwise-pieces",
    type=click.IntRange(1, MAX_PIECES),
    default=1,
    show_default=True,
    help="int8: hold each depthwise convolution's ReLU6 output (read by a 1x1 convolution: "
    "EfficientNet-Lite) in this many int8 pieces, made from copies of its input, that the convolution "
    "reading them adds back: that many times finer steps, every tensor still int8, both layers slower.",
)
@click.option(
    "--expansion-pieces",
    type=click.IntRange(1, MAX_PIECES),
    default=1,
    show_default=True,
    help="int8: hold each ReLU6 output a depthwise convolution reads (each block's expansion: "
    "EfficientNet-Lite) in this many int8 pieces that the depthwise convolution, made a grouped one, "
    "adds back: that many times finer steps, every tensor still int8, both layers slower.",
)
@click.option(
    "--rounding",
    type=click.Choice(ROUNDINGS),
    default="per-layer",
    show_default=True,
    help="int8: how the kernels are rounded to the int8 grid. per-layer: each layer with error "
    "compensation on what the float model feeds it; sequential: layer after layer on what the int8 "
    "model feeds it, each fitted to the float layer's output (slower; better for EfficientNet-Lite, "
    "worse for the CIFAR networks). With --qat-steps: where distillation starts.",
)
@click.option(
    "--equalize",
    is_flag=True,
    help="int8: first scale the channels of each linear stream (EfficientNet-Lite's residual sums and "
    "the batch norms feeding them) towards the widest, and the convolutions reading it inversely: the "
    "same function in float, finer int8 steps for narrow channels.",
)
@click.option(
    "--no-preprocessing",
    is_flag=True,
    help="Images: take preprocessed float inputs instead of raw uint8 images (text takes token ids).",
)
@click.option(
    "--evaluate", is_flag=True, help="Quantised TFLite: measure top-1 on the entry's test data beside Keras."
)
@click.option(
    "--data",
    help="Images: dataset that calibrates int8 (train split) and that --evaluate uses (test split, or "
    "a folder's only split); default: the weights' own.",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default: ZOO_DATA_DIR).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace zoo's own earlier output at --out, and another distillation's state in --qat-checkpoint "
    "(never files zoo did not write).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def export_cmd(
    name: str,
    fmt: str,
    out: str,
    quantize: str | None,
    no_preprocessing: bool,
    evaluate: bool,
    data: str | None,
    data_dir: str | None,
    overwrite: bool,
    as_json: bool,
    **int8: Any,
) -> None:
    """Export pretrained weights as a SavedModel, TFLite, ONNX or OpenVINO model, checked against Keras.

    Image classifiers take uint8 images of a fixed size: the resize and crop of the weights'
    preprocessing are the caller's (zoo.preprocessing.geometry_transform; the record
    in the export says which), the rest is baked in. Text classifiers (SavedModel, ONNX) take
    int32 token ids; their vocabulary is written beside the model (vocab.txt in the
    folder, X.vocab.txt beside X.onnx).

    \b
    Examples:
      zoo export lenet5 --format onnx --out lenet5.onnx
      zoo export efficientnet_lite0 --format openvino --out effnet.xml
      zoo export lenet5 --format tflite --quantize int8 --evaluate --out lenet5-int8.tflite
      zoo export lenet5 --format savedmodel --out ./lenet5-savedmodel
      zoo export efficientnet_lite0 --format tflite --quantize int8 --data cifar10 --evaluate --out e.tflite
      zoo export efficientnet --format tflite --quantize int8 --qat-steps 1000 --data cifar10 --out q.tflite
        (add --qat-checkpoint DIR to keep its state: the same command then resumes from DIR)
      zoo export efficientnet --format tflite --quantize int8 --stem-pieces 2 --data cifar10 --out e.tflite
      zoo export efficientnet --format tflite --quantize int8 --stem-pieces 4 --depthwise-pieces 3 \\
        --expansion-pieces 2 --rounding sequential --equalize --calibration-images 500 --qat-steps 200 \\
        --qat-keep-kernels --data cifar10 --out e.tflite  (closest to Keras; a slow file)
      zoo export efficientnet_lite0 --format tflite --quantize dynamic --out e-dynamic.tflite
      zoo export minilm_l6.mr --format onnx --out minilm-mr.onnx
      zoo export ./my-finetuned-lstm --format savedmodel --out ./lstm-savedmodel
    """
    from zoo.export import export

    result = export(
        name,
        fmt,
        out,
        quantize=quantize,
        preprocessing=not no_preprocessing,
        data=data,
        data_dir=data_dir,
        evaluate=evaluate,
        overwrite=overwrite,
        **int8,  # --qat-*, --*-pieces, --rounding, --equalize, --calibration-images
    )
    if as_json:
        echo_json(result.to_dict())
        return
    if result.description:
        inputs = result.description
    elif result.inputs:
        inputs = f"int32 token ids ({', '.join(result.inputs)}); vocabulary: {result.vocab}"
    else:
        shape = "x".join(str(n) for n in result.input_shape)
        inputs = f"uint8 images {shape}" if result.preprocessing else f"preprocessed float32 {shape}"
    click.echo(f"wrote {result.path} ({human_size(result.size_bytes)}), inputs: {inputs}")
    click.echo(f"  max |diff| vs Keras on sample inputs: {result.max_abs_diff:.3g}")
    for key, value in result.metrics.items():
        click.echo(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
