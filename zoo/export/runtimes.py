"""Running exports in their runtimes and reading their records.

TFLite, ONNX Runtime, OpenVINO and TensorFlow; and top-k agreement between two models'
outputs.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from zoo.export._common import _decode_record


def tflite_interpreter(**kwargs: Any) -> Any:
    """``tf.lite.Interpreter(**kwargs)``, without its notice that LiteRT will replace it.

    The notice goes to every user of ``zoo export`` and ``--runtime``; the interpreter is
    the one TensorFlow ships, which the zoo's TFLite exports are checked with.
    """
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated")
        return tf.lite.Interpreter(**kwargs)


def run_tflite(model_bytes_or_path: bytes | str | os.PathLike[str], x: Any) -> Any:
    """Run a TFLite model on a batch ``x`` and return its output."""
    import numpy as np

    kwargs = (
        {"model_content": model_bytes_or_path}
        if isinstance(model_bytes_or_path, bytes)
        else {"model_path": str(model_bytes_or_path)}
    )
    interp = tflite_interpreter(**kwargs)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.asarray(x, dtype=inp["dtype"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def run_onnx(path: str | os.PathLike[str], x: Any) -> Any:
    """Run an ONNX model with ONNX Runtime on a batch ``x`` and return its first output.

    Args:
        path: The ``.onnx`` file.
        x: The batch: one array (fed to the first input), or a dict of arrays by input name
            (text exports: ``input_ids`` and, for BERT, ``token_type_ids`` and ``attention_mask``).

    Returns:
        The first output as a NumPy array.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = dict(x) if isinstance(x, dict) else {session.get_inputs()[0].name: x}
    return session.run(None, feed)[0]


def onnx_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The zoo record stored in an ONNX file by :func:`export` (``None`` if it has none)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "zoo.weights" not in props:
        return None
    return _decode_record({k[4:]: v for k, v in props.items() if k.startswith("zoo.")})


def _run_savedmodel(saved: Path, feed: Any) -> Any:
    """Run the ``serve`` endpoint of the SavedModel at ``saved`` on ``feed``."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved))
    if isinstance(feed, dict):  # text: token ids by input name, {"logits": ...} (or "embeddings") back
        (out,) = loaded.serve({key: tf.constant(value) for key, value in feed.items()}).values()
        return np.asarray(out)
    return np.asarray(loaded.serve(tf.constant(feed)))


def tflite_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The zoo record stored in a TFLite file by :func:`export` (``None`` if it has none)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    for entry in model.metadata or []:
        if entry.name in ("zoo", b"zoo"):
            return json.loads(bytes(model.buffers[entry.buffer].data).decode("utf-8"))
    return None


def run_export(fmt: str, artifact: Path | bytes, feed: Any) -> Any:
    """Run an export of format ``fmt`` on ``feed`` as ``zoo export`` checks it; its first output.

    ``artifact`` is a SavedModel folder, TFLite bytes or file, an ONNX file or an OpenVINO IR.
    """
    if fmt == "savedmodel":
        return _run_savedmodel(artifact, feed)
    if fmt == "openvino":
        return run_openvino(artifact, feed)
    return run_tflite(artifact, feed) if fmt == "tflite" else run_onnx(artifact, feed)


def compile_openvino(path: str | os.PathLike[str]) -> Any:
    """Compile an OpenVINO IR (``X.xml``, ``X.bin``) for the CPU, computing in float32."""
    import openvino as ov

    # float32 on purpose: on CPUs with bfloat16 units OpenVINO would otherwise compute in bfloat16
    return ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def run_openvino(path: str | os.PathLike[str], x: Any) -> Any:
    """Run an OpenVINO IR on the CPU in float32 (:func:`compile_openvino`) on a batch ``x``; first output."""
    return compile_openvino(path)(x)[0]


def openvino_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The zoo record stored in an OpenVINO IR by :func:`export` (``None`` if it has none)."""
    import openvino as ov

    model = ov.Core().read_model(str(path))
    if not model.has_rt_info(["zoo", "weights"]):
        return None
    return _decode_record(
        {key: model.get_rt_info(["zoo", key]).astype(str) for key in model.get_rt_info()["zoo"]}
    )


def in_top_k(outputs: Any, classes: Any, k: int = 5) -> Any:
    """Whether each row of ``outputs`` holds its entry of ``classes`` among its ``k`` largest values.

    Ties rank the lower index first, as ``argmax`` does, so a class tied at the ``k``-th
    place counts only when its index comes first.

    Args:
        outputs: Scores, shape ``(batch, classes)``.
        classes: One class index per row.
        k: How many of the largest scores count.

    Returns:
        A boolean array, one value per row.
    """
    import numpy as np

    top = np.argsort(-np.asarray(outputs), -1, kind="stable")[:, :k]
    return np.any(top == np.asarray(classes)[:, None], -1)
