"""Writing an export and checking it against Keras.

The input contract of image exports; SavedModel, ONNX and OpenVINO files; the record each
carries; and the check that runs before a file is put in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import DataError, InputError
from zoo.export._common import TOLERANCE, ExportError, ExportResult, _encode_record, _json, _size_bytes
from zoo.export.quantize import _tflite_bytes


def _image_contract(entry: Any) -> tuple[dict[str, Any], tuple[int, int, int]]:
    """The baked part of the entry's image spec and the exported model's raw input shape."""
    from zoo.preprocessing import split_geometry

    spec = dict(entry.preprocessing)
    baked, (height, width) = split_geometry(spec, tuple(entry.input_shape))
    channels = 1 if spec["color_mode"] == "grayscale" else 3
    return baked, (height, width, channels)


def _sample_images(shape: tuple[int, ...], n: int) -> Any:
    """Fixed random uint8 images of the export's input shape: the check never reads a data folder."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (n, *shape), np.uint8)


def _real_images(
    entry: Any,
    n: int,
    data: str,
    data_dir: str | None,
    split: str,
    geometry: bool = True,
    required: bool = False,
    **options: Any,
) -> Any:
    """Up to ``n`` images of ``data``, or ``None`` when the dataset is not here and not ``required``.

    ``options`` go to ``zoo.data.load`` (``kfold``).

    With ``geometry``, at the export's input size, stacked; without, as the dataset has them
    (stacked when they share a size, else a list). The same images, in the same order, either
    way, and whatever global seed the process has set (a fresh ``zoo export`` process and a
    seeded Python session draw the same ones).

    Raises:
        DataError: ``required`` and the dataset cannot be read (the error says why).
    """
    import numpy as np

    import zoo.data

    resize = _export_resize(entry)
    try:
        with _no_global_seed():
            ds = zoo.data.load(data, split, data_dir=data_dir, shuffle=True, seed=0, **options)
            images = [np.asarray(resize(e["image"]) if geometry else e["image"]) for e in ds.take(n)]
    except DataError:
        if required:
            raise
        return None
    if not images:
        raise DataError(f"{data!r} has no {split} images to draw from")
    return np.stack(images) if len({i.shape for i in images}) == 1 else images


def _export_resize(entry: Any) -> Callable[[Any], Any]:
    """The resize and crop an image export leaves to its caller: uint8 images in, at its input size."""
    from zoo.preprocessing import geometry_transform

    return geometry_transform(dict(entry.preprocessing), _image_contract(entry)[1][:2])


@contextlib.contextmanager
def _no_global_seed() -> Iterator[None]:
    """TensorFlow's seeded ops as a process with no global seed runs them; the seed is kept.

    TensorFlow pairs an op's seed with the global one when one is set (``keras.utils.
    set_random_seed`` sets it), so a seeded shuffle would draw other images in a seeded
    session. Clears it on the eager context for the block (not public API) and puts it back.
    """
    from tensorflow.python.eager import context

    ctx = context.context()
    saved = ctx._seed
    ctx._seed = None
    try:
        yield
    finally:
        ctx._seed = saved


def _write_savedmodel(
    model: Any, spec: dict[str, Any] | None, raw_shape: tuple[int, ...], path: Path, input_name: str = "image"
) -> None:
    """Write a SavedModel whose ``serve`` endpoint takes uint8 images of ``raw_shape`` (or model inputs).

    ``spec`` is the baked half of the entry's spec (:func:`zoo.preprocessing.split_geometry`):
    only operators every runtime has (casts, padding, arithmetic).
    """
    import keras
    import tensorflow as tf

    import zoo.data

    transform = zoo.data.image_transform(spec) if spec else None
    if spec:
        signature = tf.TensorSpec((None, *raw_shape), tf.uint8, name=input_name)
    else:
        signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=input_name)

    def serve(image: Any) -> Any:
        x = transform(image) if transform is not None else image
        return model(x, training=False)

    # The endpoint tracks the variables it uses; ``archive.track(model)`` as well would store them twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name="serve", fn=serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)


#: The formats written to a file (not a folder), and their usual suffix.
_FILE_FORMATS = {
    "onnx": ("an ONNX export", "onnx"),
    "tflite": ("a TFLite export", "tflite"),
    "openvino": ("an OpenVINO IR", "xml"),
}


def _checked_target(fmt: str, out: str | os.PathLike[str], overwrite: bool) -> Path:
    """The export's absolute path, checked before any work: never a path holding the user's files."""
    from zoo import outputs

    if fmt == "savedmodel":
        return outputs.check_folder_target(out, overwrite)
    if str(out).endswith(("/", os.sep)):  # Path() drops the slash, and a file would take the folder's name
        what, suffix = _FILE_FORMATS[fmt]
        raise InputError(
            f"--out {str(out)!r} names a folder, but {what} is written to a file: give the file's name "
            f"(for example {str(out)}model.{suffix})"
        )
    target = outputs.check_file_target(out, overwrite)
    if fmt == "openvino" and target.suffix != ".xml":  # the IR is two files: X.xml and its weights X.bin
        raise InputError(f"an OpenVINO IR is written as NAME.xml (with NAME.bin beside it), got {out}")
    if fmt == "openvino":
        outputs.check_file_target(target.with_suffix(".bin"), overwrite)
    return target


def _keras_reference(model: Any, baked: dict[str, Any], raw: Any, preprocessing: bool) -> tuple[Any, Any]:
    """Return the Keras outputs on ``raw`` (images at the export's input size) and the export's feed."""
    import numpy as np

    import zoo.data
    from zoo.tasks.inference import predict_fn

    model_inputs = np.asarray(zoo.data.image_transform(baked)(raw))
    expected = np.asarray(predict_fn(model, fold=False)(model_inputs))
    return expected, raw if preprocessing else model_inputs


def _select_as_where(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx handler: TF ``SelectV2`` as ONNX ``Where`` (same broadcasting).

    tf2onnx's own conversion computes ``cond * x + (1 - cond) * y``, which gives NaN
    where the unselected branch is infinite (masked max pooling fills padding with -inf).
    """
    node.type = "Where"


def _erfc_as_one_minus_erf(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx handler: TF ``Erfc`` (in exact GELU) as ``1 - Erf(x)``; ONNX has no Erfc."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=name)
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def _write_onnx(saved: Path, path: Path) -> None:
    """Convert the ``serve`` endpoint of the SavedModel at ``saved`` to an ONNX file at ``path``."""
    import tensorflow as tf
    import tf2onnx

    loaded = tf.saved_model.load(str(saved))
    signature = loaded.serve.concrete_functions[0].structured_input_signature[0]
    handlers = {"SelectV2": (_select_as_where, []), "Erfc": (_erfc_as_one_minus_erf, [])}
    tf2onnx.convert.from_function(
        loaded.serve, input_signature=signature, opset=17, custom_op_handlers=handlers, output_path=str(path)
    )


def _export_result(
    out: Path, fmt: str, quantize: str | None, preprocessing: bool, got: Any, expected: Any
) -> ExportResult:
    """Return the :class:`ExportResult` of the export written at ``out``."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected)))
    tolerance = TOLERANCE[quantize]
    size = _size_bytes(out)
    result = ExportResult(str(out), fmt, quantize, preprocessing, diff, tolerance, size)
    if quantize:
        agree = float(np.mean(np.argmax(got, -1) == np.argmax(expected, -1)))
        result.metrics["top1_agreement_on_samples"] = 100 * agree  # percent, as top1_agreement
    return result


def _tflite_with_record(blob: bytes, record: dict[str, Any]) -> bytes:
    """The TFLite model ``blob`` with ``record`` as JSON in its ``metadata`` entry ``"zoo"``."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(_json(record).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "zoo", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _image_record(
    entry: Any, baked: dict[str, Any], shape: tuple[int, ...], preprocessing: bool, model: Any
) -> dict[str, Any]:
    """The record that says what an image export takes and returns, and where it came from."""
    spec = dict(entry.preprocessing)
    if preprocessing:
        contract = {
            "inputs": ["image"],
            "dtype": "uint8",
            "shape": ["batch", *shape],
            "caller_resizes": {
                "resize": spec["resize"],
                "center_crop": spec["center_crop"],
                "interpolation": spec["interpolation"],
                "antialias": spec["interpolation"] != "nearest",
                "color_mode": spec["color_mode"],
                "function": "zoo.preprocessing.geometry_transform(entry.preprocessing, (height, width))",
            },
            "baked_in": {k: baked[k] for k in ("pad_to", "scale", "mean", "std")},
        }
    else:
        contract = {
            "inputs": ["image"],
            "dtype": "float32",
            "shape": ["batch", *model.input_shape[1:]],
            "preprocessing": spec,
        }
    return _export_record(entry, contract)


def _export_record(entry: Any, contract: dict[str, Any]) -> dict[str, Any]:
    """The record stored with every export: source weights, their sha256, input contract, output, labels."""
    return {
        "export_version": 1,
        "weights": entry.name,
        "weights_sha256": _weights_sha256(entry),
        "input_contract": contract,
        "output": {"name": "logits", "shape": ["batch", entry.num_classes]},
        "labels": list(entry.labels or [str(i) for i in range(entry.num_classes or 0)]),
    }


def _weights_sha256(entry: Any) -> dict[str, str]:
    """The sha256 of each of the entry's weight files, by file name (what an export records as its source)."""
    return {f.filename: f.sha256 for f in entry.files}


def _check(got: Any, expected: Any, quantize: str | None, fmt: str) -> None:
    """Refuse (before anything is written) an export whose outputs differ from Keras'."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected)))
    tolerance = TOLERANCE[quantize]
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


@dataclass(frozen=True)
class _Owner:
    """Where an export goes and what the zoo records as its owner (see :mod:`zoo.outputs`)."""

    out: Path
    command: str
    inputs: dict[str, Any]
    overwrite: bool


def _write_checked(
    saved: Path,
    fmt: str,
    owner: _Owner,
    record: dict[str, Any],
    *,
    run: Callable[[str, Path | bytes], Any],
    check: Callable[[Any], None],
    annotate: dict[str, Any],
    tflite: Callable[[Path], bytes] | None = None,
) -> Any:
    """Convert the SavedModel at ``saved`` to ``fmt``, run and check it, and only then write it.

    ``run(fmt, artifact)`` runs the converted model (a folder, TFLite bytes or an ONNX file);
    ``check`` raises on outputs that differ from Keras, before anything is written. The
    export, carrying ``record``, lands at ``owner.out`` atomically as the zoo's own. ONNX
    files are annotated by :func:`_annotate_onnx` with ``annotate``; ``tflite`` converts
    (default: float32). Returns the converted model's outputs.
    """
    from zoo import outputs

    if fmt == "savedmodel":
        got = run(fmt, saved)
        check(got)
        (saved / "zoo_export.json").write_text(_json(record), encoding="utf-8")
        _move_savedmodel(
            saved, owner.out, command=owner.command, inputs=owner.inputs, overwrite=owner.overwrite
        )
        return got
    if fmt == "openvino":
        xml = _write_openvino(saved, record)
        got = run(fmt, xml)
        check(got)
        ledger = {"overwrite": owner.overwrite, "command": owner.command}
        # OpenVINO finds X.bin beside X.xml; the weights land first, the .xml that names the model last
        with (
            outputs.output_file(owner.out, **ledger) as part,
            outputs.output_file(owner.out.with_suffix(".bin"), **ledger) as weights,
        ):
            shutil.copyfile(xml, part)
            shutil.copyfile(xml.with_suffix(".bin"), weights)
        return got
    if fmt == "tflite":
        blob = (tflite or (lambda saved: _tflite_bytes(saved, None, None)))(saved)
        got = run(fmt, blob)
        check(got)
        payload = _tflite_with_record(blob, record)
    else:
        path = saved.parent / "model.onnx"
        _write_onnx(saved, path)
        _annotate_onnx(path, record, **annotate)
        got = run(fmt, path)
        check(got)
        payload = path.read_bytes()
    with outputs.output_file(owner.out, overwrite=owner.overwrite, command=owner.command) as part:
        part.write_bytes(payload)
    return got


def _write_openvino(saved: Path, record: dict[str, Any]) -> Path:
    """Convert the SavedModel with OpenVINO's own converter, float32 weights, ``record`` in its rt_info."""
    import openvino as ov

    model = ov.convert_model(str(saved))
    for key, value in _encode_record(record).items():
        model.set_rt_info(value, ["zoo", key])
    xml = saved.parent / "model.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def _annotate_onnx(
    path: Path,
    record: dict[str, Any],
    *,
    dims: tuple[str, ...] = ("batch", "sequence"),
    kind: str = "a text classifier on int32 token ids",
    output: str | None = "logits",
) -> None:
    """Name the ONNX model's output ``output`` and its free dimensions ``dims``; store ``record`` in it.

    ``record``'s keys become ``metadata_props`` ``zoo.<key>`` (values as JSON, :func:`_encode_record`).
    With ``output=None`` the outputs keep their names.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    if output is not None:
        old = graph.output[0].name
        for node in graph.node:
            node.output[:] = [output if o == old else o for o in node.output]
            node.input[:] = [output if i == old else i for i in node.input]
        graph.output[0].name = output
    for value in [*graph.input, graph.output[0]]:
        for dim, label in zip(value.type.tensor_type.shape.dim, dims, strict=False):
            if not dim.HasField("dim_value"):
                dim.dim_param = label
    props = {f"zoo.{k}": v for k, v in _encode_record(record).items()}
    onnx.helper.set_model_props(model, props)
    model.doc_string = f"zoo export of {record['weights']}: {kind}"
    onnx.save(model, str(path))
