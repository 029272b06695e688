"""Helpers that build manifest records for tests (real files, real hashes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.weights.manifest import file_record


def lenet_record(
    weights_file: Path,
    *,
    tag: str = "test",
    sources: list[dict[str, Any]] | None = None,
    default: bool = True,
) -> dict[str, Any]:
    """A complete, valid manifest record for LeNet-5 weights stored in ``weights_file``."""
    return {
        "architecture": "lenet5",
        "tag": tag,
        "default": default,
        "description": "test weights",
        "files": [file_record(weights_file, "keras.weights.h5")],
        "sources": sources or [{"type": "package", "path": f"pretrained/lenet5.{tag}"}],
        "builder_kwargs": {},
        "input_shape": [32, 32, 1],
        "num_classes": 10,
        "labels": [str(i) for i in range(10)],
        "preprocessing": {
            "type": "image",
            "color_mode": "grayscale",
            "resize": None,
            "interpolation": "bilinear",
            "center_crop": None,
            "pad_to": [32, 32],
            "scale": 1 / 255,
            "mean": None,
            "std": None,
        },
        "dataset": {"name": "mnist", "split": "test"},
        "metrics": [],
        "references": [],
        "num_params": 61706,
        "license": "CC-BY-SA-3.0",
        "recipe": {"command": "pytest"},
    }


def write_manifest_file(path: Path, records: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "weights": records}, indent=2))
    return path
