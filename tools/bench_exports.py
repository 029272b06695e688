"""Benchmark: every packaged entry exported to every format that applies, checked and timed.

Each cell runs ``zoo.export.export`` (the code behind ``zoo export``), then loads the
exported file in its own runtime (TensorFlow for SavedModel, the TFLite interpreter,
ONNX Runtime) and times one batch of 1 and of 64 next to Keras' ``predict_on_batch``
on the same inputs, in the same run. Float exports report the max |diff| against
Keras on the export's check inputs; int8 and dynamic-range exports report the top-1
agreement with Keras on a test split and, where that split is the weights' own, the
accuracy change. ``tflite-int8-qat`` (the entries of :data:`QAT_STEPS`) is int8 after
quantisation-aware distillation (``zoo export --qat-steps``), ``tflite-int8-piecesK`` (those of
:data:`STEM_PIECES`) int8 with the first activation in K pieces (``zoo export --stem-pieces K``),
``tflite-int8-best`` (those of :data:`BEST_INT8`) int8 by the best recipe found (docs/int8.md).

Results are kept in ``docs/exports.json`` (a rerun measures only missing cells;
``--redo`` measures again); ``--readme`` writes the table into README.md.

Usage:
    ZOO_DATA_DIR=../shared/data python -m tools.bench_exports [--entries lenet5.mnist,...] [--readme]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tools._results import best_time, load_cells, save_cell, write_section  # noqa: E402  (after the log level)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "exports.json"
START, END = "<!-- exports:start -->", "<!-- exports:end -->"
IMAGE_FORMATS = (
    "savedmodel",
    "onnx",
    "openvino",
    "tflite",
    "tflite-float16",
    "tflite-int8",
    "tflite-dynamic",
)
TEXT_FORMATS = ("savedmodel", "onnx")
#: Packaged entries, in table order; the int8 comparison data where it is not the weights' own.
ENTRIES = {
    "lenet5.mnist": None,
    "resnet20.cifar10": None,
    "resnet56.cifar10": None,
    "vgg11_cifar.cifar10": None,
    "alexnet_cifar.cifar10": None,
    "efficientnet_lite0.in1k": "cifar10",  # ImageNet is not on this machine
    "lstm_classifier.mr": None,
    "minilm_l6.mr": None,
    "vae.mnist": None,
    "dcgan.mnist": None,
    "lstm_charlm.shakespeare": None,
}
REPEATS = 5
#: Entries also measured as ``tflite-int8-qat``: int8 after this many steps of ``--qat-steps``.
QAT_STEPS = {"efficientnet_lite0.in1k": 1000}
#: Entries also measured as ``tflite-int8-piecesK``: int8 with ``--stem-pieces K``.
STEM_PIECES = {"efficientnet_lite0.in1k": 2}
#: Entries also measured as ``tflite-int8-best``: int8 with these ``zoo.export.export`` keywords,
#: the best recipe docs/int8.md found.
BEST_INT8 = {
    "efficientnet_lite0.in1k": {
        "stem_pieces": 2,
        "depthwise_pieces": 2,
        "rounding": "sequential",
        "equalize": True,
        "calibration_images": 500,
        "qat_steps": 200,
        "qat_keep_kernels": True,
    }
}


def formats_of(name: str) -> tuple[str, ...]:
    """The formats a cell is measured in (text: SavedModel, ONNX; generative: float ones; images: all)."""
    import zoo
    from zoo import registry

    entry = zoo.weights_entry(name)
    task = registry.get_spec(entry.architecture).task
    if task == "image-generation":
        return ("savedmodel", "onnx", "openvino", "tflite")
    if task == "language-modeling":
        return ("savedmodel", "onnx", "tflite")
    if task not in ("image-classification", "text-classification") and entry.num_classes is None:
        return ("any",)  # one row saying why (generative and language models)
    if entry.preprocessing.get("type") == "text":
        return TEXT_FORMATS
    qat = ("tflite-int8-qat",) if name in QAT_STEPS else ()
    pieces = (f"tflite-int8-pieces{STEM_PIECES[name]}",) if name in STEM_PIECES else ()
    return IMAGE_FORMATS + qat + pieces + (("tflite-int8-best",) if name in BEST_INT8 else ())


def _best_ms(fn) -> float:
    return 1000 * best_time(fn, REPEATS, warmup=True)  # the warm-up call traces and allocates


def _runtime(fmt: str, path: Path):
    """A function running the exported file at ``path`` on one batch (NumPy or a dict of NumPy)."""
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept: its variables live as long as it does

        def run(feed):
            if isinstance(feed, dict):
                return loaded.serve({k: tf.constant(v) for k, v in feed.items()})
            return loaded.serve(tf.constant(feed))

        return run
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda feed: session.run(None, feed if isinstance(feed, dict) else {names[0]: feed})
    if fmt == "openvino":
        from zoo.export import compile_openvino

        compiled = compile_openvino(path)
        return lambda feed: compiled(feed)[0]
    from zoo.export import tflite_interpreter

    interp = tflite_interpreter(model_path=str(path))
    if len(interp.get_input_details()) > 1:  # named inputs and outputs (the character step)
        runner = interp.get_signature_runner()
        return lambda feed: runner(**feed)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    shape: list[tuple[int, ...]] = [()]

    def run(feed):
        if feed.shape != shape[0]:  # resized once per batch size, as a serving loop would
            interp.resize_tensor_input(inp["index"], list(feed.shape))
            interp.allocate_tensors()
            shape[0] = feed.shape
        interp.set_tensor(inp["index"], feed.astype(inp["dtype"]))
        interp.invoke()
        return interp.get_tensor(out["index"])

    return run


def _feeds(name: str, model, result, batch: int):
    """The exported model's input and Keras' input for one batch of ``batch``."""
    import numpy as np

    import zoo
    import zoo.data

    entry = zoo.weights_entry(name)
    if result.kind == "char-step":  # the character step: ids and zero states
        from zoo.export.generative import _char_step_fn

        _, signature = _char_step_fn(model)
        feed = {n: np.zeros((batch, s.shape[1]), np.float32) for n, s in signature.items() if n != "ids"}
        feed["ids"] = np.random.default_rng(batch).integers(0, 60, batch).astype(np.int32)
        return feed, feed
    if result.kind == "sampler":  # a sampler: latent vectors in, images out
        z = np.random.default_rng(batch).standard_normal((batch, *result.input_shape)).astype("float32")
        return z, z
    if entry.preprocessing.get("type") == "text":
        from zoo.export import TEXT_SAMPLES
        from zoo.tasks.text_classify import encode_texts

        texts = [TEXT_SAMPLES[i % len(TEXT_SAMPLES)] for i in range(batch)]
        feed = encode_texts(entry, texts)
        names = list(result.inputs)
        return {k: np.asarray(feed[k], np.int32) for k in names}, (
            feed if len(names) > 1 else np.asarray(feed["input_ids"])
        )
    from zoo.export._write import _image_contract

    baked, shape = _image_contract(entry)
    raw = np.random.default_rng(batch).integers(0, 256, (batch, *shape), np.uint8)
    return raw, np.asarray(zoo.data.image_transform(baked)(raw))


def run_cell(name: str, fmt: str, work: Path) -> dict:
    """Export one entry to one format; return its status, size, check and latencies."""
    import zoo
    from zoo.errors import ZooError
    from zoo.export import TOLERANCE, export

    base, _, quantize = ("onnx" if fmt == "any" else fmt).partition("-")
    quantize, _, qat = quantize.partition("-")
    suffix = {"savedmodel": "", "onnx": ".onnx", "openvino": ".xml", "tflite": ".tflite"}[base]
    out = work / f"{name}-{fmt}{suffix}"
    start = time.perf_counter()
    data = ENTRIES.get(name)
    int8 = {
        "qat_steps": QAT_STEPS[name] if qat == "qat" else 0,
        "stem_pieces": int(qat.removeprefix("pieces")) if qat.startswith("pieces") else 1,
    }
    int8 = BEST_INT8[name] if qat == "best" else int8
    try:
        result = export(
            name,
            base,
            out,
            quantize=quantize or None,
            evaluate=TOLERANCE[quantize or None] is None,
            data=data,
            overwrite=True,
            **int8,
        )
    except ZooError as exc:
        return {"status": "not available", "reason": str(exc).split(";")[0][:120]}
    cell = {
        "status": "ok",
        "export_seconds": round(time.perf_counter() - start, 1),
        "size_bytes": result.size_bytes,
        # int8 outputs are on another scale, so only agreement speaks for them; a dynamic cell keeps its
        # max |diff| (float outputs), which tells how far the int8 weights moved the logits.
        "max_abs_diff": None if quantize == "int8" else float(f"{result.max_abs_diff:.3g}"),
    }
    m = result.metrics
    if "top1_agreement" in m:
        cell["top1_agreement"] = round(m["top1_agreement"], 2)
        cell["agreement_data"] = m["evaluation_data"]
    if "keras_top1_accuracy" in m:
        cell["accuracy_change"] = round(m["tflite_top1_accuracy"] - m["keras_top1_accuracy"], 2)
    model = zoo.load(name)
    if result.kind == "sampler":
        from zoo.export.generative import _sampler_model

        model = _sampler_model(model)  # what the export runs: latent -> images
    keras_call = model.predict_on_batch
    if result.kind == "char-step":  # Keras' side: the same step, traced once
        import tensorflow as tf

        from zoo.export.generative import _char_step_fn

        step, signature = _char_step_fn(model)
        traced = tf.function(step, input_signature=[signature])
        keras_call = lambda feed: traced({k: tf.constant(v) for k, v in feed.items()})  # noqa: E731
    run = _runtime(base, out)
    for batch in (1, 64):
        feed, keras_feed = _feeds(name, model, result, batch)
        cell[f"keras_ms_b{batch}"] = round(_best_ms(lambda x=keras_feed: keras_call(x)), 2)
        cell[f"export_ms_b{batch}"] = round(_best_ms(lambda x=feed: run(x)), 2)
    return cell


def load_results() -> dict:
    return load_cells(RESULTS)


def save_results(results: dict, key: str) -> None:
    """Write the cell ``key`` into the results file, keeping every other cell (see :func:`save_cell`)."""
    save_cell(RESULTS, results, key)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def table(results: dict) -> str:
    lines = [
        "| entry | format | status | size | max abs diff | int8, dynamic: agreement, accuracy change "
        "| batch 1: Keras / export ms | batch 64: Keras / export ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    pieces = sorted({f"tflite-int8-pieces{k}" for k in STEM_PIECES.values()})
    order = {
        f: i for i, f in enumerate((*IMAGE_FORMATS, "tflite-int8-qat", *pieces, "tflite-int8-best", "any"))
    }
    entries = list(ENTRIES)

    def rank(key: str) -> tuple[int, int]:
        name, fmt = key.split("/")
        return (entries.index(name) if name in entries else len(entries), order.get(fmt, 0))

    for key in sorted(results["cells"], key=rank):
        cell = results["cells"][key]
        name, fmt = key.split("/")
        if cell["status"] != "ok":
            lines.append(f"| {name} | {fmt} | {cell['status']}: {cell['reason']} | - | - | - | - | - |")
            continue
        diff = "-" if cell["max_abs_diff"] is None else f"{cell['max_abs_diff']:.2g}"
        quant = "-"
        if "top1_agreement" in cell:
            quant = f"{cell['top1_agreement']:.2f}% on {cell['agreement_data']}"
            if "accuracy_change" in cell:
                quant += f", {cell['accuracy_change']:+.2f} points"
        speeds = [
            f"{cell[f'keras_ms_b{b}']:.2f} / {cell[f'export_ms_b{b}']:.2f} "
            f"({cell[f'keras_ms_b{b}'] / cell[f'export_ms_b{b}']:.2f}x)"
            for b in (1, 64)
        ]
        lines.append(
            f"| {name} | {fmt} | ok | {_size(cell['size_bytes'])} | {diff} | {quant} | {' | '.join(speeds)} |"
        )
    return "\n".join(lines)


def write_readme(results: dict) -> None:
    body = (
        f"Measured by `{results['command']}` on {results['machine']}; latencies are the best of "
        f"{REPEATS} calls, Keras' `predict_on_batch` and the exported file's runtime side by side "
        "(the ratio above 1 means the export is faster).\n\n" + table(results) + "\n"
    )
    write_section(ROOT / "README.md", START, END, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default=",".join(ENTRIES), help="comma-separated weights names")
    parser.add_argument("--formats", help="comma-separated formats (default: each entry's own)")
    parser.add_argument("--redo", action="store_true", help="measure cells that already have results")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md and stop")
    args = parser.parse_args()
    results = load_results()
    if args.readme:
        write_readme(results)
        print(table(results))
        return 0
    names = [n for n in args.entries.split(",") if n]
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        parser.error(f"unknown entry: {', '.join(unknown)}")
    results["command"] = "python -m tools.bench_exports"
    results["machine"] = f"{os.cpu_count()} CPU cores, {platform.machine()}"
    with tempfile.TemporaryDirectory(prefix="zoo-bench-exports-") as tmp:
        for name in names:
            wanted = args.formats.split(",") if args.formats else None
            for fmt in [f for f in formats_of(name) if wanted is None or f in wanted]:
                key = f"{name}/{fmt}"
                if key in results["cells"] and not args.redo:
                    continue
                print(f"{key} ...", flush=True)
                results["cells"][key] = run_cell(name, fmt, Path(tmp))
                print(f"  {results['cells'][key]}", flush=True)
                save_results(results, key)
    print(" ".join(shlex.quote(a) for a in sys.argv))
    print(table(load_results()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
