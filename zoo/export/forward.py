"""ONNX Runtime behind the zoo's prediction commands (``--runtime onnx``).

A cached export per weights entry, run as the model's forward function.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import InputError
from zoo.export._common import ExportError
from zoo.export._write import (
    _check,
    _image_contract,
    _image_record,
    _keras_reference,
    _Owner,
    _sample_images,
    _weights_sha256,
    _write_checked,
    _write_savedmodel,
)
from zoo.export.api import _check_export_args, _classifier_entry, export
from zoo.export.runtimes import onnx_record, run_export


def onnx_forward(name: str, *, features: bool = False, layer: str | None = None) -> Callable[[Any], Any]:
    """An image or text classifier run by ONNX Runtime, in place of Keras' ``predict_on_batch``.

    The model is exported once to ONNX without baked preprocessing (so it takes exactly
    the inputs Keras takes: float32 images, or a text classifier's int32 token ids, one array
    or BERT's dict of them; it is checked against Keras within 1e-4 before it is kept)
    into the zoo's cache (``ZOO_CACHE_DIR/onnx``), named by the weights' sha256; later
    calls reuse the file when its stored record names the same weights and outputs.
    Exporting needs TensorFlow and the export packages; running a cached export does not.

    Args:
        name: Weights or architecture name of an image or text classifier, or a fine-tuned folder.
        features: Image classifiers: return features instead of the logits (what ``zoo extract`` runs).
        layer: The features' layer (a name or stage, as :func:`zoo.train.engine.feature_extractor`
            takes; default: the model's default feature layer).

    Returns:
        A function from a batch of model inputs to the logits or features (NumPy).

    Raises:
        InputError: When ``name`` is not a classifier (or ``features`` of a text one), or ONNX
            Runtime is missing.
    """
    import hashlib

    import numpy as np

    from zoo.fileio import cache_root
    from zoo.tasks import task_of

    entry = _classifier_entry(name, "onnx")
    task = task_of(entry)
    if task not in ("image-classification", "text-classification"):
        raise InputError(
            f"{entry.name} is a {task} model: only image and text classifiers run on ONNX Runtime here "
            "(use --runtime keras; zoo export writes its ONNX file for other runtimes)"
        )
    if features and task != "image-classification":
        raise InputError(
            f"{entry.name} is a {task} model: features run on ONNX Runtime for image classifiers only "
            "(use --runtime keras)"
        )
    weights = _weights_sha256(entry)
    output = {"name": "features", "layer": layer} if features else {"name": "logits"}
    parts = [ONNX_FORWARD_VERSION, weights, *([output] if features else [])]
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    path = cache_root() / "onnx" / f"{key[:32]}.onnx"
    session = _cached_session(path, weights, output)
    if session is None:
        from zoo.backend import keras_backend

        if keras_backend() != "tensorflow":
            raise ExportError(
                f"--runtime onnx first exports {entry.name} to ONNX once (then any backend runs it), "
                "and exporting converts through TensorFlow: run this command once with "
                f"KERAS_BACKEND=tensorflow (active backend: {keras_backend()}), or use --runtime keras"
            )
        _check_export_args("onnx", None)
        path.parent.mkdir(parents=True, exist_ok=True)  # inside the zoo's own cache
        if features:
            _export_features(entry, layer, path)
        else:
            export(entry.name, "onnx", path, preprocessing=False, overwrite=True)
        session = _cached_session(path, weights, output)
        if session is None:
            raise ExportError(f"the ONNX export of {entry.name} at {path} cannot be read back")
    names = [i.name for i in session.get_inputs()]
    if task == "text-classification":  # token ids: BERT's dict of them, or the LSTM's one array
        return lambda x: session.run(
            None,
            {k: np.asarray(x[k], np.int32) for k in names}
            if isinstance(x, dict)
            else {names[0]: np.asarray(x, np.int32)},
        )[0]
    return lambda x: session.run(None, {names[0]: np.asarray(x, np.float32)})[0]


#: Bump when the cached ONNX exports of :func:`onnx_forward` must be made again.
ONNX_FORWARD_VERSION = 1


def _export_features(entry: Any, layer: str | None, path: Path) -> None:
    """Export the features of ``layer`` (model inputs -> features) to ONNX at ``path``, checked."""
    from zoo import api
    from zoo.train.engine import feature_extractor

    model = feature_extractor(api.load(entry.name), layer)
    baked, shape = _image_contract(entry)
    expected, feed = _keras_reference(model, baked, _sample_images(shape, 32), preprocessing=False)
    record = {
        **_image_record(entry, baked, shape, False, model),
        "output": {"name": "features", "layer": layer, "shape": ["batch", *model.output_shape[1:]]},
    }
    del record["labels"]
    command = f"zoo extract {entry.name}{f' --layer {layer}' if layer else ''} --runtime onnx"
    inputs = {"weights": entry.name, "format": "onnx", "layer": layer}
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_savedmodel(model, None, shape, saved)
        _write_checked(
            saved,
            "onnx",
            _Owner(path, command, inputs, overwrite=True),
            record,
            run=lambda fmt, artifact: run_export(fmt, artifact, feed),
            check=lambda got: _check(got, expected, None, "onnx"),
            annotate={
                "dims": ("batch",),
                "kind": f"features of layer {layer or 'default'}",
                "output": "features",
            },
        )


def _cached_session(path: Path, weights: dict[str, str], output: dict[str, Any]) -> Any:
    """An ONNX Runtime session on the cached export at ``path`` if it holds ``weights`` and ``output``.

    ``None`` when there is none; a damaged or stale file there (the zoo's cache) is removed.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        hint = "pip install 'keras-zoo[export]'"
        raise ExportError(f"running on ONNX Runtime needs the onnxruntime package: {hint}") from exc
    if not path.is_file():
        return None
    try:
        record = onnx_record(path)
        stored = record.get("output", {}) if record else {}
        if (
            record
            and record.get("weights_sha256") == weights
            and all(stored.get(k) == v for k, v in output.items())
        ):
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001  (whatever a damaged file raises: it is made again, never trusted)
        pass
    path.unlink(missing_ok=True)  # the zoo's own cache entry, damaged or stale
    return None
