"""What every export module shares.

Formats, quantisation modes and tolerances, the fixed text samples, the result and error
types, and the JSON an export's record is stored as.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

FORMATS = ("savedmodel", "tflite", "onnx", "openvino")


#: Train images that calibrate an int8 TFLite export, by default and at most. The sequential
#: rounding holds each layer's inputs on all of them: EfficientNet-Lite0 peaked at 12.9 GB on 500.
CALIBRATION_IMAGES = 200
MAX_CALIBRATION_IMAGES = 500


#: Share of calibration values an int8 activation range leaves out at each end.
CLIP_QUANTILE = 1e-4


#: An int8 activation range ``(lo, hi)`` for each Keras layer name.
Ranges = dict[str, tuple[float, float]]


QUANTIZE = (None, "float16", "int8", "dynamic")

#: How int8 kernels are rounded: each layer on the float model's inputs (``zoo.export.rounding``),
#: or layer after layer on the int8 model's (``zoo.export.sequential``).
ROUNDINGS = ("per-layer", "sequential")

#: ``zoo.export.export``'s int8 keywords and their defaults.
INT8_SETTINGS: dict[str, Any] = {
    "qat_steps": 0,
    "qat_checkpoint": None,
    "qat_images": None,
    "qat_keep_kernels": False,
    "stem_pieces": 1,
    "depthwise_pieces": 1,
    "expansion_pieces": 1,
    "rounding": "per-layer",
    "equalize": False,
    "calibration_images": CALIBRATION_IMAGES,
}


#: Largest max |diff| against Keras per quantisation; ``None``: compared through top-1 agreement.
TOLERANCE: dict[str | None, float | None] = {None: 1e-4, "float16": 5e-2, "int8": None, "dynamic": None}


#: Formats a text classifier exports to.
TEXT_FORMATS = ("savedmodel", "onnx")


#: Largest max |diff| on logits that a float text export may show against Keras.
TEXT_TOLERANCE = 1e-4


#: Fixed English sentences (of different lengths, so padding and masking are exercised) whose
#: token ids check a text export; they come with the package, never from a data folder.
TEXT_SAMPLES = (
    "A moving, beautifully acted film that stays with you long after the credits roll.",
    "Dull.",
    "The plot is thin and the jokes fall flat , but the cast keeps it watchable for most of its "
    "running time , and the final twenty minutes are genuinely touching .",
    "I loved every minute of it!",
    "an overlong, unremarkable café comedy that never quite finds its rhythm .",
    "zzyzx qwertyuiop",
)


class ExportError(ZooError):
    """An export failed, or the exported model does not reproduce the Keras outputs."""


@dataclass
class ExportResult:
    """What :func:`export` produced and how closely it matches Keras."""

    path: str
    format: str
    quantize: str | None
    preprocessing: bool
    max_abs_diff: float
    tolerance: float | None  # None for int8 and dynamic: compared through top-1 agreement
    size_bytes: int
    metrics: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # text: the int32 token-id inputs of the exported model
    input_shape: tuple[int, ...] = ()  # images: the shape of one input image
    vocab: str | None = None  # text: the vocabulary file written beside (or inside) the export
    description: str = ""  # what the export takes, when neither images nor token ids
    kind: str = "image"  # what the export is: "image", "text", "sampler" or "char-step"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return dict(vars(self))


#: Training images (of the calibration data's train split) that distillation draws batches from.
QAT_IMAGES = 10000


#: Images per distillation step.
QAT_BATCH = 32


#: Adam's peak learning rate for distillation (cosine decay to zero over the steps).
QAT_LEARNING_RATE = 1e-4


def _encode_record(record: dict[str, Any]) -> dict[str, str]:
    """``record`` as string pairs for key-value metadata (ONNX props, OpenVINO rt_info): every value JSON."""
    return {key: json.dumps(value) for key, value in record.items()}


def _decode_record(pairs: dict[str, str]) -> dict[str, Any]:
    """Inverse of :func:`_encode_record`; a value that is not JSON (older exports' bare strings) stays."""
    record: dict[str, Any] = {}
    for key, value in pairs.items():
        try:
            record[key] = json.loads(value)
        except ValueError:
            record[key] = value
    return record


def _size_bytes(out: Path) -> int:
    """Size of the file (an OpenVINO ``.xml`` with its ``.bin``), or of every file in the folder ``out``."""
    if out.is_dir():
        return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    weights = out.with_suffix(".bin")
    return out.stat().st_size + (weights.stat().st_size if out.suffix == ".xml" and weights.is_file() else 0)


def _json(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, indent=2) + "\n"
