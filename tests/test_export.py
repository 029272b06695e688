"""Exports round-trip against Keras; the fast inference path traces once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from tests.helpers import DATA_DIR  # noqa: E402
from zoo.export import export, run_onnx, run_tflite


@pytest.mark.parametrize("fmt, suffix", [("savedmodel", ""), ("tflite", ".tflite"), ("onnx", ".onnx")])
def test_float_exports_match_keras(tmp_path, fmt, suffix):
    out = tmp_path / f"lenet5{suffix}"
    result = export("lenet5", fmt, out, data_dir=DATA_DIR if DATA_DIR.is_dir() else None)
    assert result.max_abs_diff <= 1e-4
    assert out.exists() and not list(tmp_path.glob(".*")), "no temporary files left behind"


def test_exported_files_take_raw_images(tmp_path):
    raw = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), np.uint8)
    from zoo.data import image_transform

    model = zoo.load("lenet5")
    spec = dict(zoo.weights_entry("lenet5").preprocessing)
    expected = model.predict(np.asarray(image_transform(spec)(raw)), verbose=0)
    export("lenet5", "onnx", tmp_path / "m.onnx")
    export("lenet5", "tflite", tmp_path / "m.tflite")
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", raw), expected, atol=1e-4)
    np.testing.assert_allclose(run_tflite(tmp_path / "m.tflite", raw), expected, atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
@pytest.mark.parametrize("quantize", ["float16", "int8"])
def test_quantised_tflite_states_its_accuracy_change(tmp_path, quantize):
    result = export(
        "lenet5", "tflite", tmp_path / "q.tflite", quantize=quantize, evaluate=True, data_dir=DATA_DIR
    )
    m = result.metrics
    print(quantize, m)
    assert m["num_examples"] == 10000
    assert abs(m["tflite_top1_accuracy"] - m["keras_top1_accuracy"]) <= 0.5
    # strict JSON for --json: int8 has no output tolerance, and NaN is not JSON
    json.dumps(result.to_dict(), allow_nan=False)
    assert (result.tolerance is None) == (quantize == "int8")


def test_export_cli_json(tmp_path):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    result = CliRunner().invoke(
        cli, ["export", "lenet5", "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["max_abs_diff"] <= 1e-4
    bad = CliRunner().invoke(
        cli, ["export", "lenet5", "--format", "onnx", "--quantize", "int8", "--out", str(tmp_path / "y.onnx")]
    )
    assert bad.exit_code == 1 and "only available for --format tflite" in bad.output


def test_predict_fn_traces_once_and_xla_agrees():
    from zoo.tasks.inference import predict_fn

    model = zoo.load("lenet5")
    fn, xla = predict_fn(model), predict_fn(model, jit_compile=True)
    rng = np.random.default_rng(0)
    for batch in (1, 7, 64, 3):
        x = rng.random((batch, 32, 32, 1), dtype=np.float32)
        np.testing.assert_allclose(np.asarray(xla(x)), np.asarray(fn(x)), atol=1e-5)
    assert fn.experimental_get_tracing_count() == 1
    assert xla.experimental_get_tracing_count() == 1
