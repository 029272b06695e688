""":func:`export`, the one entry point.

Checks its arguments and the target, then hands each kind of model to its exporter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.errors import InputError
from zoo.export._common import (
    CALIBRATION_IMAGES,
    FORMATS,
    INT8_SETTINGS,
    MAX_CALIBRATION_IMAGES,
    QAT_BATCH,
    QUANTIZE,
    ROUNDINGS,
    TEXT_FORMATS,
    ExportError,
    ExportResult,
)
from zoo.export._write import _checked_target
from zoo.export.generative import _export_char_step, _export_sampler
from zoo.export.image import _export_image
from zoo.export.text import _export_text


def _check_int8_args(quantize: str | None, int8: dict[str, Any]) -> None:
    """Refuse int8 settings (:func:`export`'s keywords) out of range, or without int8 or distillation."""
    from zoo.export.pieces import MAX_PIECES

    stem_pieces, rounding, qat_steps = int8["stem_pieces"], int8["rounding"], int8["qat_steps"]
    calibration_images = int8["calibration_images"]
    limits = [(key, MAX_PIECES) for key in ("stem_pieces", "depthwise_pieces", "expansion_pieces")]
    for key, most in (*limits, ("calibration_images", MAX_CALIBRATION_IMAGES)):
        value = int8[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise InputError(f"{key} must be a whole number from 1 to {most}, got {value!r}")
    if rounding not in ROUNDINGS:
        raise InputError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    if qat_steps < 0:
        raise InputError(f"qat_steps must be 0 or more, got {qat_steps}")
    int8_only = (
        ("--stem-pieces", stem_pieces > 1, "holds an int8 activation"),
        ("--depthwise-pieces", int8["depthwise_pieces"] > 1, "holds int8 activations"),
        ("--expansion-pieces", int8["expansion_pieces"] > 1, "holds int8 activations"),
        (
            f"--rounding {rounding}",
            rounding != "per-layer",
            "rounds the kernels of int8 (or distillation's start)",
        ),
        ("--equalize", int8["equalize"], "spreads int8 activations' channels over their steps"),
        ("--qat-steps", qat_steps > 0, "tunes an int8 export"),
        (
            "--calibration-images",
            calibration_images != CALIBRATION_IMAGES,
            "sets how many images int8's ranges and rounding are measured on",
        ),
    )
    for option, given, what in int8_only:
        if given and quantize != "int8":
            raise InputError(f"{option} {what}: use it with --format tflite --quantize int8")
    qat = (
        ("--qat-checkpoint", int8["qat_checkpoint"] is not None),
        ("--qat-images", int8["qat_images"] is not None),
        ("--qat-keep-kernels", int8["qat_keep_kernels"]),
    )
    for option, given in qat:
        if given and not qat_steps:
            raise InputError(f"{option} is a setting of the distillation: use it with --qat-steps")
    if int8["qat_images"] is not None and int8["qat_images"] < QAT_BATCH:
        raise InputError(f"--qat-images must be at least one batch ({QAT_BATCH}), got {int8['qat_images']}")


def _check_export_args(fmt: str, quantize: str | None, int8: dict[str, Any] | None = None) -> None:
    """Refuse an unknown format or quantisation, another backend, and ONNX export without its packages."""
    from zoo.backend import keras_backend

    _check_int8_args(quantize, {**INT8_SETTINGS, **(int8 or {})})
    if keras_backend() != "tensorflow":
        raise ExportError(
            "zoo export converts through TensorFlow (SavedModel, TFLite, tf2onnx) and needs the "
            f"TensorFlow backend: run it with KERAS_BACKEND=tensorflow (active backend: {keras_backend()})"
        )
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in QUANTIZE:
        raise InputError(f"quantize must be float16, int8 or dynamic, got {quantize!r}")
    if quantize and fmt != "tflite":
        raise InputError("quantisation is only available for --format tflite")
    if fmt in ("onnx", "openvino"):
        import importlib.util

        needs = ("tf2onnx", "onnxruntime") if fmt == "onnx" else ("openvino",)
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install 'keras-zoo[export]'")


def _classifier_entry(name: str, fmt: str) -> Any:
    """Return the weights entry of ``name``, refusing anything but an image or text classifier."""
    from zoo import api, registry

    entry = api.weights_entry(name)
    task = registry.get_spec(entry.architecture).task
    kind = entry.preprocessing.get("type")
    if kind == "text" and task in ("text-classification", "text-embedding"):
        if fmt not in TEXT_FORMATS:
            what = "text classifier" if entry.num_classes is not None else "sentence encoder"
            raise InputError(
                f"{entry.name} is a {what}: export it with --format savedmodel or --format onnx "
                f"({fmt} export of text models is not available)"
            )
        return entry
    if task in ("image-generation", "language-modeling"):
        return entry
    if task != "image-classification":
        raise InputError(
            f"{entry.name} is not a classifier (its task: {task}); zoo export handles image and text "
            "classifiers, the VAE and DCGAN samplers and the character model's step"
        )
    if kind != "image":
        raise InputError(f"export of {kind} models is not supported yet")
    return entry


def _export_not_image(entry: Any, fmt: str, target: Path, quantize: str | None, overwrite: bool) -> Any:
    """The export of a generative, character or text model; ``None`` for an image classifier."""
    from zoo import registry

    task = registry.get_spec(entry.architecture).task
    if fmt == "openvino" and task == "language-modeling":
        raise InputError(f"{entry.name} exports as one step to savedmodel, onnx or tflite (not openvino)")
    if task in ("image-generation", "language-modeling"):
        if quantize:
            raise InputError(f"{entry.name} exports as float32 only: leave out --quantize")
        if task == "language-modeling":
            return _export_char_step(entry, fmt, target, overwrite)
        return _export_sampler(entry, fmt, target, overwrite)
    if entry.preprocessing.get("type") == "text":
        return _export_text(entry, fmt, target, overwrite)
    return None


def export(
    name: str,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    preprocessing: bool = True,
    samples: int = 32,
    data: str | None = None,
    data_dir: str | None = None,
    evaluate: bool = False,
    overwrite: bool = False,
    qat_steps: int = 0,
    qat_checkpoint: str | os.PathLike[str] | None = None,
    qat_images: int | None = None,
    stem_pieces: int = 1,
    rounding: str = "per-layer",
    equalize: bool = False,
    calibration_images: int = CALIBRATION_IMAGES,
    qat_keep_kernels: bool = False,
    depthwise_pieces: int = 1,
    expansion_pieces: int = 1,
) -> ExportResult:
    """Export pretrained weights to ``fmt`` at ``out`` and check the result against Keras.

    Image classifiers export to every format; text classifiers (word-level LSTM, BERT-family;
    packaged or fine-tuned) to ``"savedmodel"`` and ``"onnx"``, taking int32 token ids, their
    vocabulary beside the model (see the module docstring), checked on :data:`TEXT_SAMPLES`.

    Args:
        name: Weights or architecture name, or a fine-tuned model folder.
        fmt: ``"savedmodel"``, ``"tflite"``, ``"onnx"`` or ``"openvino"``.
        out: Output folder (SavedModel) or file.
        quantize: TFLite only, post-training: ``"float16"`` (float16 weights), ``"int8"`` (int8 weights
            and activations calibrated on ``data``'s train images, ranges cut to their :data:`CLIP_QUANTILE`
            quantiles, kernels rounded per ``rounding``, biases corrected) or ``"dynamic"`` (int8 weights).
        preprocessing: Images: bake the entry's input transform in (inputs become raw uint8
            images). Text exports always take token ids (the result says ``False``).
        samples: How many fixed random images the check runs on (never a data folder's).
        data: Images: the dataset that calibrates int8 (its train split) and that
            ``evaluate`` measures (its test split); default: the weights' own dataset.
        data_dir: Data directory (overrides ``ZOO_DATA_DIR``); images only.
        evaluate: Also measure a quantised TFLite model's top-1 agreement (and accuracy) on test images.
        overwrite: Replace an earlier export that zoo wrote at ``out``, and another run's state
            in ``qat_checkpoint`` (never anything else: see :mod:`zoo.outputs`).
        qat_steps: int8 only: steps of :func:`distil_int8` on ``data``'s train split first (0: none).
        qat_checkpoint: A folder for the distillation's state, continued by an export of the same inputs.
        qat_images: Of ``data``'s train images, how many distillation draws from (:data:`QAT_IMAGES`).
        stem_pieces: int8 only: the first activation in that many int8 pieces (:func:`first_in_pieces`).
        rounding: int8 kernels: ``"per-layer"``, each on what the float model feeds it
            (:func:`rounded_weights`); ``"sequential"``, layer after layer on what the int8
            model feeds it (:func:`sequentially_rounded`); where ``qat_steps`` start.
        equalize: int8 only: first bring the channels of the model's linear streams to one range,
            the same function in float (:func:`equalized`); a model without any is refused.
        calibration_images: int8 only: how many train images (the first of a fixed shuffle) set
            the activation ranges and the rounding, 1 to :data:`MAX_CALIBRATION_IMAGES`.
        qat_keep_kernels: With ``qat_steps``: the kernels keep the int8 values ``rounding`` gave
            them; distillation trains only the batch norms and biases (:func:`distil_int8`).
        depthwise_pieces: int8 only: each ReLU6 a 1x1 convolution reads after a depthwise one in that
            many int8 pieces, that many times finer (:func:`depthwise_in_pieces`). 1: none.
        expansion_pieces: int8 only: each later ReLU6 a depthwise one reads so (:func:`expansion_in_pieces`).

    Returns:
        An :class:`ExportResult`; float formats must match within 1e-4.

    Raises:
        ExportError: When the exported model's outputs differ beyond the tolerance.
        InputError: When ``name`` is not a classifier, or ``fmt`` is not for it (TFLite for text).
        OutputError: When ``out`` (or, for ONNX text exports, its vocabulary file) holds
            anything that zoo did not write, or an earlier export without ``overwrite``.
    """
    int8 = {key: value for key, value in locals().items() if key in INT8_SETTINGS}  # as given
    _check_export_args(fmt, quantize, int8)
    target = _checked_target(fmt, out, overwrite)
    entry = _classifier_entry(name, fmt)
    if (result := _export_not_image(entry, fmt, target, quantize, overwrite)) is not None:
        return result
    options = dict(quantize=quantize, preprocessing=preprocessing, samples=samples, data=data)
    options.update(data_dir=data_dir, evaluate=evaluate, overwrite=overwrite, int8=int8)
    return _export_image(entry, fmt, target, **options)
