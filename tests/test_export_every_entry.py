"""Every packaged entry exports to every format that applies, and the file runs in its own runtime.

The cells are the export benchmark's (``tools.bench_exports.formats_of``), so a new packaged
entry is exported here as soon as it is benchmarked (``test_bench_exports`` holds the benchmark
to the packaged entries). The exports run with no data folder at all, as on a fresh install;
int8, which calibrates on training images, runs where the data is. Image classifiers are also
run again, outside ``zoo export``'s own check, on other images in their runtime (TensorFlow for
SavedModel, ONNX Runtime, the TFLite interpreter, OpenVINO), against Keras.
"""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from tests.helpers import DATA_DIR
from tools.bench_exports import ENTRIES, formats_of
from zoo.export import TOLERANCE, export, run_export  # run_export: the runner zoo export checks with

pytestmark = pytest.mark.tensorflow_only("zoo export converts through TensorFlow")

#: Entries whose exports take long enough (224x224 images, a 22M-parameter encoder) to be slow.
HEAVY = {"efficientnet_lite0.in1k", "minilm_l6.mr"}
SUFFIX = {"savedmodel": "", "onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml"}


def _cells(int8: bool) -> list:
    cells = []
    for name in ENTRIES:
        for cell in formats_of(name):
            fmt, _, quantize = cell.partition("-")
            if cell == "any" or quantize.startswith("int8-") or (quantize == "int8") != int8:
                continue  # int8 after distillation: tools/bench_exports.py (minutes of training)
            marks = [pytest.mark.slow] if name in HEAVY or int8 else []
            cells.append(pytest.param(name, fmt, quantize or None, id=f"{name}-{cell}", marks=marks))
    return cells


def _check_image_export(name: str, fmt: str, quantize: str | None, result, out, data=None) -> None:
    """Run the export again on images its check did not use and compare it with Keras.

    int8 runs on test images of the data it was calibrated on: its activation ranges are that
    data's, and random pixels fall outside them.
    """
    from zoo.data import image_transform
    from zoo.export._write import _image_contract, _real_images

    entry = zoo.weights_entry(name)
    baked, shape = _image_contract(entry)
    assert result.input_shape == shape
    if quantize == "int8":
        raw = _real_images(entry, 32, data or entry.dataset["name"], str(DATA_DIR), "test")
    else:
        raw = np.random.default_rng(1).integers(0, 256, (4, *shape), np.uint8)
    expected = zoo.load(name).predict(np.asarray(image_transform(baked)(raw)), verbose=0)
    got = np.asarray(run_export(fmt, out, raw), np.float32)
    assert got.shape == expected.shape
    if TOLERANCE[quantize] is not None:
        assert np.max(np.abs(got - expected)) <= TOLERANCE[quantize]
    else:  # int8, dynamic: rounded, so the outputs only follow Keras' closely
        assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.95


def _export_and_check(name: str, fmt: str, quantize: str | None, tmp_path, data=None, **kwargs):
    out = tmp_path / f"model{SUFFIX[fmt]}"
    result = export(name, fmt, out, quantize=quantize, data=data, **kwargs)
    assert (result.format, result.quantize) == (fmt, quantize)
    assert out.exists() and not list(tmp_path.glob(".*")), "no temporary files left behind"
    if result.tolerance is not None:
        assert result.max_abs_diff <= result.tolerance
    if result.kind == "image":
        _check_image_export(name, fmt, quantize, result, out, data)
    return result


@pytest.mark.parametrize("name, fmt, quantize", _cells(int8=False))
def test_every_packaged_entry_exports_without_a_data_folder(name, fmt, quantize, tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    _export_and_check(name, fmt, quantize, tmp_path)


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"no data folder at {DATA_DIR}")
@pytest.mark.parametrize("name, fmt, quantize", _cells(int8=True))
def test_every_image_classifier_exports_to_int8_calibrated_on_its_data(name, fmt, quantize, tmp_path):
    data = ENTRIES[name]  # EfficientNet-Lite0 calibrates on CIFAR-10: ImageNet is not here
    result = _export_and_check(name, fmt, quantize, tmp_path, data=data, data_dir=str(DATA_DIR))
    assert result.metrics["calibration"] and result.metrics["bias_correction"]
