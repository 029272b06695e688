"""Export zoo models for deployment: SavedModel, TFLite (float32, float16, int8) and ONNX.

The input transform of the weights entry is baked in by default, so exported
models take raw ``uint8`` images ``(N, H, W, C)``. Before an export is reported
as done, its outputs are compared with the Keras model's on sample inputs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import InputError, ZooError

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZE = (None, "float16", "int8")


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
    tolerance: float | None  # None for int8: its outputs are compared through top-1 agreement
    size_bytes: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return dict(vars(self))


def _raw_samples(entry: Any, n: int, data_dir: str | None, split: str | None = None) -> Any:
    """Real raw uint8 images from the entry's dataset (its split), or random ones if absent."""
    import numpy as np

    import zoo.data

    try:
        ds = zoo.data.load(
            entry.dataset["name"],
            split or entry.dataset["split"],
            data_dir=data_dir,
            shuffle=split is not None,
            seed=0,
        )
        images = [np.asarray(e["image"]) for e in ds.take(n)]
        if images and len({im.shape for im in images}) == 1:
            return np.stack(images)
    except Exception:  # noqa: BLE001 - no local data: fall back to random images of the input size
        pass
    h, w, c = entry.input_shape
    channels = 1 if entry.preprocessing.get("color_mode") == "grayscale" else 3
    return np.random.default_rng(0).integers(0, 256, (n, h or 224, w or 224, channels), np.uint8)


def _write_savedmodel(
    model: Any, spec: dict[str, Any] | None, raw_shape: tuple[int, ...], path: Path
) -> None:
    """Write a SavedModel whose ``serve`` endpoint takes raw uint8 images (or model inputs)."""
    import keras
    import tensorflow as tf

    import zoo.data

    transform = zoo.data.image_transform(spec) if spec else None
    if spec:
        signature = tf.TensorSpec((None, *raw_shape), tf.uint8, name="image")
    else:
        signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")

    def serve(image: Any) -> Any:
        x = transform(image) if transform is not None else image
        return model(x, training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def _tflite_bytes(saved_dir: Path, quantize: str | None, calibration: Any) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir))
    # Antialiased resizing has no TFLite builtin; those few ops run through the TF (flex) kernels.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
    return converter.convert()


def run_tflite(model_bytes_or_path: bytes | str | os.PathLike[str], x: Any) -> Any:
    """Run a TFLite model on a batch ``x`` and return its output."""
    import numpy as np
    import tensorflow as tf

    kwargs = (
        {"model_content": model_bytes_or_path}
        if isinstance(model_bytes_or_path, bytes)
        else {"model_path": str(model_bytes_or_path)}
    )
    interp = tf.lite.Interpreter(**kwargs)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.asarray(x, dtype=inp["dtype"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def run_onnx(path: str | os.PathLike[str], x: Any) -> Any:
    """Run an ONNX model with ONNX Runtime on a batch ``x`` and return its first output."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _check_export_args(fmt: str, quantize: str | None) -> None:
    """Refuse an unknown format or quantisation, and ONNX export without its packages."""
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in QUANTIZE:
        raise InputError(f"quantize must be float16 or int8, got {quantize!r}")
    if quantize and fmt != "tflite":
        raise InputError("quantisation is only available for --format tflite")
    if fmt == "onnx":
        import importlib.util

        missing = [m for m in ("tf2onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install 'zoo[export]'")


def _classifier_entry(name: str) -> Any:
    """Return the weights entry of ``name``, refusing anything but an image classifier on images."""
    from zoo import api, registry

    entry = api.weights_entry(name)
    task = registry.get_spec(entry.architecture).task
    if task != "image-classification":
        raise InputError(
            f"{entry.name} is not an image classifier (its task: {task}); zoo export handles image "
            "classifiers so far "
            "(export of text and generative models is not available yet)"
        )
    if entry.preprocessing.get("type") != "image":
        raise InputError(f"export of {entry.preprocessing.get('type')} models is not supported yet")
    return entry


def _keras_reference(entry: Any, model: Any, raw: Any, preprocessing: bool) -> tuple[Any, Any, Any]:
    """Return the entry's input transform, the Keras outputs on ``raw`` and the export's feed."""
    import numpy as np

    import zoo.data
    from zoo.tasks.inference import predict_fn

    transform = zoo.data.image_transform(dict(entry.preprocessing))
    model_inputs = np.asarray(transform(raw))
    expected = np.asarray(predict_fn(model)(model_inputs))
    feed = raw if preprocessing else model_inputs
    return transform, expected, feed


def _run_savedmodel(saved: Path, feed: Any) -> Any:
    """Run the ``serve`` endpoint of the SavedModel at ``saved`` on ``feed``."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved))
    return np.asarray(loaded.serve(tf.constant(feed)))


def _calibration_inputs(
    entry: Any, quantize: str | None, preprocessing: bool, transform: Any, data_dir: str | None
) -> Any:
    """Return the int8 calibration inputs (200 train images, transformed without preprocessing)."""
    import numpy as np

    calibration = _raw_samples(entry, 200, data_dir, split="train") if quantize == "int8" else None
    if calibration is not None and not preprocessing:
        calibration = np.asarray(transform(calibration))
    return calibration


def _write_onnx(saved: Path, path: Path) -> None:
    """Convert the ``serve`` endpoint of the SavedModel at ``saved`` to an ONNX file at ``path``."""
    import tensorflow as tf
    import tf2onnx

    loaded = tf.saved_model.load(str(saved))
    signature = loaded.serve.concrete_functions[0].structured_input_signature[0]
    tf2onnx.convert.from_function(loaded.serve, input_signature=signature, opset=17, output_path=str(path))


def _export_result(
    out: Path, fmt: str, quantize: str | None, preprocessing: bool, got: Any, expected: Any
) -> ExportResult:
    """Return the :class:`ExportResult` of the export written at ``out``."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected)))
    tolerance = {None: 1e-4, "float16": 5e-2, "int8": None}[quantize]
    size = (
        sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else (out.stat().st_size)
    )
    result = ExportResult(str(out), fmt, quantize, preprocessing, diff, tolerance, size)
    if quantize:
        agree = float(np.mean(np.argmax(got, -1) == np.argmax(expected, -1)))
        result.metrics["top1_agreement_on_samples"] = agree
    return result


def export(
    name: str,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    preprocessing: bool = True,
    samples: int = 32,
    data_dir: str | None = None,
    evaluate: bool = False,
    overwrite: bool = False,
) -> ExportResult:
    """Export pretrained weights to ``fmt`` at ``out`` and check the result against Keras.

    Args:
        name: Weights or architecture name.
        fmt: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.
        out: Output folder (SavedModel) or file.
        quantize: TFLite only: ``"float16"`` or ``"int8"`` (post-training, int8 calibrated
            on 200 images of the entry dataset's train split).
        preprocessing: Bake the entry's input transform in (inputs become raw uint8 images).
        samples: Number of real sample inputs used for the check (and int8 calibration).
        data_dir: Data directory (overrides ``ZOO_DATA_DIR``).
        evaluate: Also measure a quantised TFLite model's metric on the entry's test data
            next to the Keras model's (image classifiers).
        overwrite: Replace an earlier export that zoo wrote at ``out`` (never anything else:
            see :mod:`zoo.outputs`).

    Returns:
        An :class:`ExportResult`; float formats must match within 1e-4.

    Raises:
        ExportError: When the exported model's outputs differ beyond the tolerance.
        OutputError: When ``out`` holds anything that zoo did not write, or an earlier
            export without ``overwrite``.
    """
    from zoo import api, outputs

    _check_export_args(fmt, quantize)
    if fmt == "savedmodel":  # before any work: never a path holding the user's files
        out = outputs.check_folder_target(out, overwrite)
    else:
        out = outputs.check_file_target(out, overwrite)
    entry = _classifier_entry(name)
    model = api.load(entry.name)
    spec = dict(entry.preprocessing) if preprocessing else None
    raw = _raw_samples(entry, samples, data_dir)
    transform, expected, feed = _keras_reference(entry, model, raw, preprocessing)
    inputs = {"weights": entry.name, "format": fmt, "quantize": quantize, "preprocessing": preprocessing}
    command = f"zoo export {entry.name} --format {fmt}"
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        tmp = Path(tmpdir)
        saved = tmp / "saved_model"
        _write_savedmodel(model, spec, tuple(raw.shape[1:]), saved)
        if fmt == "savedmodel":
            got = _run_savedmodel(saved, feed)
            _check(got, expected, quantize, fmt)
            _move_savedmodel(saved, out, command=command, inputs=inputs, overwrite=overwrite)
        elif fmt == "tflite":
            calibration = _calibration_inputs(entry, quantize, preprocessing, transform, data_dir)
            blob = _tflite_bytes(saved, quantize, calibration)
            got = run_tflite(blob, feed)
            _check(got, expected, quantize, fmt)
            with outputs.output_file(out, overwrite=overwrite, command=command) as part:
                part.write_bytes(blob)
        else:
            path = tmp / "model.onnx"
            _write_onnx(saved, path)
            got = run_onnx(path, feed)
            _check(got, expected, quantize, fmt)
            with outputs.output_file(out, overwrite=overwrite, command=command) as part:
                shutil.copyfile(path, part)
    result = _export_result(out, fmt, quantize, preprocessing, got, expected)
    if evaluate and fmt == "tflite":
        result.metrics.update(_compare_on_test(entry, model, out, preprocessing, data_dir))
    return result


def _check(got: Any, expected: Any, quantize: str | None, fmt: str) -> None:
    """Refuse (before anything is written) an export whose outputs differ from Keras'."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected)))
    tolerance = {None: 1e-4, "float16": 5e-2, "int8": None}[quantize]
    if tolerance is not None and diff > tolerance:
        raise ExportError(
            f"exported {fmt} model differs from Keras by {diff:.3g} (> {tolerance:g}); nothing was written"
        )


def _move_savedmodel(saved: Path, out: Path, **kwargs: Any) -> None:
    """Move a SavedModel built in a private temporary folder to ``out`` (same file system first)."""
    from zoo import outputs

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=".zoo-tmp-"))
    except OSError as exc:
        raise outputs.OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    try:
        built = staging / out.name
        shutil.copytree(saved, built)
        outputs.replace_folder(built, out, **kwargs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the zoo's own staging folder


def _compare_on_test(
    entry: Any, model: Any, path: Path, preprocessing: bool, data_dir: str | None
) -> dict[str, float]:
    """Top-1 accuracy of Keras and of the TFLite file on the entry's evaluation split."""
    import numpy as np

    import zoo.data
    from zoo.tasks.inference import predict_fn

    ds = zoo.data.load(
        entry.dataset["name"], entry.dataset["split"], batch_size=256, data_dir=data_dir, as_supervised=True
    )
    transform = zoo.data.image_transform(dict(entry.preprocessing))
    fn = predict_fn(model)
    keras_ok = tfl_ok = total = 0
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(path))
    inp = interp.get_input_details()[0]
    for raw, y in ds:
        x = np.asarray(transform(raw))
        keras_ok += int(np.sum(np.argmax(np.asarray(fn(x)), -1) == y.numpy()))
        feed = raw.numpy() if preprocessing else x
        interp.resize_tensor_input(inp["index"], list(feed.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], feed.astype(inp["dtype"]))
        interp.invoke()
        out = interp.get_tensor(interp.get_output_details()[0]["index"])
        tfl_ok += int(np.sum(np.argmax(out, -1) == y.numpy()))
        total += len(y)
    return {
        "keras_top1_accuracy": 100 * keras_ok / total,
        "tflite_top1_accuracy": 100 * tfl_ok / total,
        "num_examples": total,
    }
