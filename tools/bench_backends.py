"""The backend table: load, inference and one training step of four models on TensorFlow, JAX and PyTorch.

``python -m tools.bench_backends [--readme]`` runs one fresh process per backend (Keras fixes its
backend at import) on the same machine, one after another, and writes docs/backends.json and, with
``--readme``, the README section between ``<!-- backends:start -->`` and ``<!-- backends:end -->``.
Ratios compare each backend with TensorFlow measured in the same run.

Per model and backend: ``load_s``, the first ``zoo.load`` in the process (build, verify, load;
TensorFlow is imported before it on every backend, as ``tf.data`` needs it anyway);
batch-1 and batch-64 inference through ``zoo.tasks.inference.predict_fn`` (the compiled path of
``predict``, ``evaluate`` and ``extract``), best of several calls after a warm-up; one training
step (``train_on_batch``, SGD, batch 16) after a warm-up step; and, for the image models, the
batch-64 forward pass's GFLOP/s (2 x multiply-adds of its convolutions and dense layers) as a
fraction of this machine's float32 matmul peak, measured with NumPy in the same run. Then the
load time of every packaged entry (first load in the process, and the best of two more).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from tools._results import best_time

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "backends.json"
BACKENDS = ("tensorflow", "jax", "torch")
#: name -> (weights, input kind, input shape without the batch)
MODELS = {
    "LeNet-5": ("lenet5.mnist", "image", (32, 32, 1)),
    "ResNet-20": ("resnet20.cifar10", "image", (32, 32, 3)),
    "EfficientNet-Lite0": ("efficientnet_lite0.in1k", "image", (224, 224, 3)),
    "MiniLM-L6 (MR classifier)": ("minilm_l6.mr", "text", (64,)),
}
TRAIN_BATCH = 16


def _inputs(kind: str, shape: tuple, batch: int):
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "image":
        return rng.random((batch, *shape), dtype=np.float32)
    ids = rng.integers(1000, 20000, size=(batch, shape[0]), dtype=np.int32)
    ids[:, 0] = 101
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}


def forward_flops(model) -> float:
    """2 x multiply-adds of the (depthwise) convolutions and dense layers of one example's forward pass."""
    import keras

    flops = 0.0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            k = layer.kernel.shape
            flops += 2 * math.prod(layer.output.shape[1:]) * k[0] * k[1]
        elif isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel.shape
            flops += 2 * math.prod(layer.output.shape[1:]) * k[0] * k[1] * k[2]
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * math.prod(layer.kernel.shape)
    return flops


def worker() -> None:
    """Measure every model on this process's backend; print one JSON line per model."""
    # tf.data feeds every backend, so TensorFlow is in every zoo process: import it first, so that
    # its one-time import (Keras' serialisation of some layers imports it) is charged to no load.
    import keras
    import numpy as np
    import tensorflow  # noqa: F401

    import zoo
    from zoo.tasks.inference import predict_fn

    for label, (weights, kind, shape) in MODELS.items():
        start = time.perf_counter()
        model = zoo.load(weights)
        load_s = time.perf_counter() - start
        fn = predict_fn(model)
        row = {"model": label, "weights": weights, "load_s": load_s}
        for batch in (1, 64):
            x = _inputs(kind, shape, batch)
            np.asarray(keras.ops.convert_to_numpy(fn(x)))
            t = best_time(lambda x=x, fn=fn: keras.ops.convert_to_numpy(fn(x)), 5 if batch == 1 else 3)
            row[f"batch{batch}_images_s"] = batch / t
        if kind == "image":
            row["gflops_per_image"] = forward_flops(model) / 1e9
            row["batch64_gflop_s"] = row["gflops_per_image"] * row["batch64_images_s"]
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x, y = _inputs(kind, shape, TRAIN_BATCH), np.zeros(TRAIN_BATCH, np.int32)
        model.train_on_batch(x, y)
        row["train_step_ms"] = 1000 * best_time(lambda x=x, y=y, m=model: m.train_on_batch(x, y), 3)
        print("ROW " + json.dumps(row), flush=True)
    from zoo.api import load_manifest

    for name, entry in sorted(load_manifest().items()):
        if entry.package_source is not None:
            gc.collect()  # no load pays for the garbage of the sections before it
            start = time.perf_counter()
            zoo.load(name)
            first = time.perf_counter() - start
            again = best_time(lambda name=name: zoo.load(name), 2)
            print("LOAD " + json.dumps({"weights": name, "first_s": first, "again_s": again}), flush=True)


def matmul_peak_gflops() -> float:
    """Float32 matmul GFLOP/s of this machine (NumPy, 2048 x 2048, best of 5)."""
    import numpy as np

    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    return 2 * 2048**3 / best_time(lambda: a @ a, 5) / 1e9


def run_backend(backend: str) -> tuple[list[dict], list[dict]]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.bench_backends", "--worker"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend} worker failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.splitlines()
    rows = [json.loads(line[4:]) for line in lines if line.startswith("ROW ")]
    return rows, [json.loads(line[5:]) for line in lines if line.startswith("LOAD ")]


def table(results: dict) -> str:
    """The README section: one row per model and backend, ratios against TensorFlow."""
    peak = results["matmul_peak_gflops"]
    lines = [
        f"Measured by `python -m tools.bench_backends --readme` in {results['seconds']:.0f} s on "
        f"{results['machine']}; one fresh process per backend, one after another; ratios are against "
        f"TensorFlow in the same run (above 1: faster than TensorFlow, for load: the time ratio). "
        f"Peak: {peak:.0f} GFLOP/s (NumPy float32 matmul, same run).",
        "",
        "| model | backend | load | load vs TF | batch 1 (img/s) | batch 64 (img/s) | "
        "batch 64 vs TF | train step, batch 16 | % of peak (batch 64) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {r["model"]: r for r in results["rows"]["tensorflow"]}
    for label in MODELS:
        for backend in BACKENDS:
            row = next((r for r in results["rows"].get(backend, []) if r["model"] == label), None)
            if row is None:
                continue
            tf_row = base[label]
            share = f"{100 * row['batch64_gflop_s'] / peak:.1f}%" if "batch64_gflop_s" in row else "n/a"
            lines.append(
                f"| {label} | {backend} | {row['load_s']:.2f} s | {row['load_s'] / tf_row['load_s']:.2f}x | "
                f"{row['batch1_images_s']:,.0f} | {row['batch64_images_s']:,.0f} | "
                f"{row['batch64_images_s'] / tf_row['batch64_images_s']:.2f}x | "
                f"{row['train_step_ms']:,.0f} ms | {share} |"
            )
    lines += [
        "",
        "`zoo.load` of every packaged entry (after the models above, so each backend is warm): the "
        "first load of the entry in the process, and the best of two more, against TensorFlow's.",
        "",
        "| weights | " + " | ".join(f"{b} first / again" for b in BACKENDS) + " | worst vs TF |",
        "|---|" + "---|" * (len(BACKENDS) + 1),
    ]
    loads = {b: {r["weights"]: r for r in results["loads"].get(b, [])} for b in BACKENDS}
    for name in sorted(loads["tensorflow"]):
        cells, worst = [], 0.0
        for backend in BACKENDS:
            r = loads[backend].get(name)
            if r is None:
                cells.append("n/a")
                continue
            cells.append(f"{r['first_s']:.2f} s / {r['again_s']:.2f} s")
            if backend != "tensorflow":
                base = loads["tensorflow"][name]
                worst = max(worst, r["first_s"] / base["first_s"], r["again_s"] / base["again_s"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {worst:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--readme", action="store_true", help="rewrite the README's backend table")
    args = parser.parse_args()
    if args.worker:
        worker()
        return 0
    start = time.perf_counter()
    results = {"machine": f"{os.cpu_count()} CPU cores, {platform.machine()}", "rows": {}, "loads": {}}
    results["matmul_peak_gflops"] = matmul_peak_gflops()
    for backend in BACKENDS:
        print(f"{backend}...", flush=True)
        results["rows"][backend], results["loads"][backend] = run_backend(backend)
    results["seconds"] = time.perf_counter() - start
    from zoo.fileio import write_json

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS, results, indent=1)
    body = table(results)
    print(body)
    if args.readme:
        from tools._results import write_section

        write_section(ROOT / "README.md", "<!-- backends:start -->", "<!-- backends:end -->", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
