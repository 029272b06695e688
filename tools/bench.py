"""The zoo's benchmark: every figure is a ratio against a baseline measured side by side in this run.

Usage:
    ZOO_DATA_DIR=../shared/data python -m tools.bench [--quick] [--readme]

``--readme`` writes the table between the bench markers of README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tools._results import best_time  # noqa: E402  (after the log level)

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
ROWS: list[tuple[str, str, str, str]] = []


def row(section: str, what: str, ratio: float, detail: str) -> None:
    ROWS.append((section, what, f"{ratio:.2f}x", detail))
    print(f"  {what}: {ratio:.2f}x ({detail})", flush=True)


def bench_startup() -> None:
    print("CLI start-up", flush=True)
    zoo_cli = [sys.executable, "-m", "zoo"]

    def run(cmd):
        return lambda: subprocess.run(cmd, capture_output=True, check=True)

    t_tf = best_time(run([sys.executable, "-c", "import tensorflow"]))
    for args in (["list"], ["info", "lenet5"]):
        t = best_time(run(zoo_cli + args))
        row(
            "start-up",
            f"`zoo {' '.join(args)}` vs `import tensorflow`",
            t_tf / t,
            f"{t * 1000:.0f} ms vs {t_tf * 1000:.0f} ms",
        )


def bench_load(tmp: Path) -> None:
    import keras

    import zoo

    print("Loading", flush=True)
    zoo.load("lenet5")  # warm: files verified, modules imported
    path = tmp / "lenet5.keras"
    zoo.load("lenet5").save(path)
    keras.saving.load_model(path)
    t_zoo = best_time(lambda: zoo.load("lenet5"), 5)
    t_keras = best_time(lambda: keras.saving.load_model(path), 5)
    row(
        "load",
        "`zoo.load('lenet5')` (verified) vs `keras.saving.load_model` of the same `.keras`",
        t_keras / t_zoo,
        f"{t_zoo * 1000:.0f} ms vs {t_keras * 1000:.0f} ms",
    )


def bench_hub(tmp: Path) -> None:
    import huggingface_hub

    from tests.helpers.hubserver import LocalHub, point_hf_hub_at

    print("Hub pull", flush=True)

    class Patch:  # a tiny monkeypatch stand-in for point_hf_hub_at
        def __init__(self):
            self.undo = []

        def setattr(self, obj, name, value):
            self.undo.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

        def setenv(self, key, value):
            self.undo.append((os.environ, key, os.environ.get(key)))
            os.environ[key] = value

        def delenv(self, key, raising=False):
            self.undo.append((os.environ, key, os.environ.get(key)))
            os.environ.pop(key, None)

    payload = tmp / "blob.bin"
    payload.write_bytes(os.urandom(64 * 2**20))
    with LocalHub(tmp / "hub") as hub:
        revision = hub.add_repo("bench/blob", {"blob.bin": payload}, lfs=["blob.bin"])
        patch = Patch()
        point_hf_hub_at(patch, hub.endpoint, tmp / "hf_home")
        start = time.perf_counter()
        huggingface_hub.hf_hub_download("bench/blob", "blob.bin", revision=revision)
        t_pull = time.perf_counter() - start
    t_copy = best_time(lambda: shutil.copyfile(payload, tmp / "copy.bin"))
    mb = payload.stat().st_size / 2**20
    row(
        "hub",
        "cold pull of 64 MiB through the local Hub (olah) vs copying the file",
        t_copy / t_pull,
        f"{mb / t_pull:.0f} MiB/s vs {mb / t_copy:.0f} MiB/s",
    )


#: The fastest plain-Keras call, the baseline of every inference row.
BASE = "Keras `predict_on_batch`"


def _zoo_step(model, x, forward=None):
    """One batch as `zoo predict`, `zoo evaluate` and `zoo extract` run it (``forward``: `--runtime onnx`)."""
    import numpy as np

    from zoo.tasks.classify import classification_metrics

    return classification_metrics(model, [(x, np.zeros(len(x), np.int64))], forward)


def interleaved_best(calls: dict, steps: int, repeats: int) -> dict:
    """The best time of ``steps`` calls of each path, the paths taking turns on every repeat.

    Taking turns keeps a change in the machine's load (another process, a frequency step)
    from landing on one path only, as timing each path's repeats in one block would.
    """
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for label, call in calls.items():
            best[label] = min(best[label], best_time(lambda call=call: [call() for _ in range(steps)], 1))
    return best


def bench_inference(tmp: Path, quick: bool) -> None:
    import keras
    import numpy as np

    import zoo
    from zoo.export import export, onnx_forward
    from zoo.tasks.inference import predict_fn

    print("Inference", flush=True)
    models = [("lenet5", "lenet5", None)]
    packaged = set(zoo.list_models(pretrained=True))
    models.append(("resnet20", next((n for n in packaged if n.startswith("resnet20.")), None), (32, 32, 3)))
    if "efficientnet_lite0" in zoo.list_models() and not quick:
        models.append(
            (
                "efficientnet_lite0",
                next((n for n in packaged if n.startswith("efficientnet_lite0.")), None),
                (224, 224, 3),
            )
        )
    for arch, weights_name, shape in models:
        model = zoo.load(weights_name) if weights_name else zoo.build(arch)
        shape = tuple(model.input_shape[1:])
        on_onnx = tflite = None
        if weights_name:
            on_onnx = onnx_forward(weights_name)  # what `--runtime onnx` runs
            tflite = export(weights_name, "tflite", tmp / f"{arch}.tflite", preprocessing=False).path
        for batch in (1, 64):
            x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
            steps = max(3, (64 if batch == 1 else 6) // (1 if arch == "lenet5" else 2))
            fn, xla = predict_fn(model, fold=False), predict_fn(model, jit_compile=True)
            fn(x), xla(x)
            model.predict_on_batch(x)
            paths = {
                BASE: lambda m=model, x=x: m.predict_on_batch(x),
                "zoo predict/evaluate/extract step": lambda m=model, x=x: _zoo_step(m, x),
                "Keras `model.predict`": lambda m=model, x=x: m.predict(x, verbose=0),
                "zoo traced function (export check)": lambda f=fn, x=x: f(x).numpy(),
                "zoo XLA (`jit_compile`)": lambda f=xla, x=x: f(x).numpy(),
            }
            if on_onnx:
                on_onnx(x)
                label = "zoo step, `--runtime onnx` (ONNX Runtime)"
                paths[label] = lambda m=model, x=x, f=on_onnx: _zoo_step(m, x, f)
            if tflite:
                from zoo.export import tflite_interpreter

                interp = tflite_interpreter(model_path=tflite)
                inp = interp.get_input_details()[0]
                interp.resize_tensor_input(inp["index"], list(x.shape))
                interp.allocate_tensors()

                def run_lite(interp=interp, inp=inp, x=x):
                    interp.set_tensor(inp["index"], x)
                    interp.invoke()
                    return interp.get_tensor(interp.get_output_details()[0]["index"])

                run_lite()
                paths["TFLite"] = run_lite
            rates = {label: batch * steps / t for label, t in interleaved_best(paths, steps, 5).items()}
            base = rates[BASE]
            for label, rate in rates.items():
                if label != BASE:
                    row(
                        "inference",
                        f"{arch}{'' if weights_name else ' (random init)'}, batch {batch}: {label} vs {BASE}",
                        rate / base,
                        f"{rate:,.0f} vs {base:,.0f} images/s",
                    )
        keras.backend.clear_session()


def bench_feature_cache() -> None:
    print("Feature cache", flush=True)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_transfer.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = proc.stdout.splitlines()
    setting = lines[0].split(", ", 1)[1]  # "N <dataset> images, <weights> features"
    table = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")]
    recomputed = next(cells for cells in table if cells[0].startswith("recompute"))
    for cells in table:
        if cells[0].startswith("cached"):
            row(
                "transfer",
                f"10 epochs of head training ({setting}), {cells[0]} vs recomputing the features every epoch",
                float(cells[2].rstrip("x")),
                f"{cells[1]} s vs {recomputed[1]} s; test accuracy {cells[3]} vs {recomputed[3]}",
            )


def bench_training(quick: bool) -> None:
    import keras
    import numpy as np

    import zoo
    import zoo.data

    print("Training", flush=True)
    spec = dict(zoo.weights_entry("lenet5").preprocessing)
    n = 12800 if quick else 25600
    pipeline = zoo.data.load(
        "mnist",
        "train",
        batch_size=128,
        shuffle=True,
        preprocessing=spec,
        as_supervised=True,
        drop_remainder=True,
    ).take(n // 128)
    arrays = zoo.data.load("mnist", "train", preprocessing=spec, as_supervised=True).take(n)
    x = np.stack([a.numpy() for a, _ in arrays])
    y = np.array([b.numpy() for _, b in arrays])

    def model(jit):
        m = zoo.build("lenet5")
        m.compile(
            keras.optimizers.AdamW(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
        return m

    naive = model(False)
    naive.fit(x[:256], y[:256], batch_size=128, verbose=0)
    t_naive = best_time(lambda: naive.fit(x, y, batch_size=128, verbose=0), 2)
    for jit, label in ((False, "tf.data"), (True, "tf.data + XLA")):
        recipe = model(jit)
        recipe.fit(pipeline.take(2), verbose=0)
        t_recipe = best_time(lambda m=recipe: m.fit(pipeline, verbose=0), 2)
        row(
            "training",
            f"LeNet-5 recipe data path ({label}) vs naive `model.fit` on NumPy arrays",
            t_naive / t_recipe,
            f"{n / t_recipe:,.0f} vs {n / t_naive:,.0f} images/s",
        )


def matmul_peak() -> float:
    """This machine's fp32 matmul rate in GFLOP/s (2048 x 2048, TensorFlow): the FLOP rows' peak."""
    import tensorflow as tf

    n = 2048
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.matmul(a, b))
    matmul()
    t_mm = best_time(lambda: [matmul().numpy() for _ in range(5)])
    return 5 * 2 * n**3 / t_mm / 1e9


def bench_recipe_compute(quick: bool) -> None:
    """Each CIFAR-10 recipe's compile setting against the other float32 / bfloat16 / XLA choices,
    and its training step's FLOP rate against this machine's fp32 matmul peak."""
    import keras
    import numpy as np

    import zoo
    from tools.recipes import RECIPES

    print("Recipe compute", flush=True)
    peak = matmul_peak()
    steps = 4 if quick else 8
    rng = np.random.default_rng(0)
    x = rng.random((128 * steps, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, 128 * steps)

    def trainer(arch: str, policy: str, jit: bool):
        """One training pass over ``x`` of a model built and compiled with this setting."""
        keras.mixed_precision.set_global_policy(policy)
        try:
            m = zoo.build(arch, num_classes=10)
            m.compile(
                keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit,
            )
            m.fit(x[:256], y[:256], batch_size=128, verbose=0)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        return lambda: m.fit(x, y, batch_size=128, verbose=0)

    def label(policy: str, jit: bool) -> str:
        return ("bfloat16" if "bfloat16" in policy else "float32") + (" + XLA" if jit else "")

    choices = [("float32", False), ("float32", True), ("mixed_bfloat16", False)]
    for name in (
        ("resnet20.cifar10",)
        if quick
        else ("resnet20.cifar10", "vgg11_cifar.cifar10", "alexnet_cifar.cifar10")
    ):
        recipe = RECIPES[name]
        ours = (recipe["precision"], recipe["jit_compile"])
        order = [ours, *(c for c in choices if c != ours)]
        calls = {c: trainer(recipe["architecture"], *c) for c in order}
        # The settings take turns, so a slow spell of the machine does not land on one of them only.
        times = {c: t / steps for c, t in interleaved_best(calls, 1, 2 if quick else 3).items()}
        t_ours = times[ours]
        # A training image costs about three forward passes (forward, input and weight gradients).
        achieved = 3 * forward_flops(zoo.build(recipe["architecture"], num_classes=10)) * 128 / t_ours / 1e9
        row(
            "training",
            f"{name} training step (batch 128, recipe's {label(*ours)}) vs this machine's fp32 matmul peak",
            achieved / peak,
            f"{achieved:.0f} vs {peak:.0f} GFLOP/s; {128 / t_ours:.0f} training images/s",
        )
        for other in order[1:]:
            row(
                "training",
                f"{name} training step (batch 128): recipe's {label(*ours)} vs {label(*other)}",
                times[other] / t_ours,
                f"{t_ours * 1000:.0f} ms vs {times[other] * 1000:.0f} ms",
            )
        keras.backend.clear_session()


def forward_flops(model) -> float:
    """Multiply-adds x 2 of the convolution and dense layers of one forward pass."""
    import math

    import keras

    flops = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            k = layer.kernel.shape
            flops += 2 * math.prod(out[1:]) * k[0] * k[1] * k[2]
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * math.prod(layer.kernel.shape)
    return flops


def bench_flops(quick: bool) -> None:
    import numpy as np

    import zoo
    from zoo.tasks.inference import predict_fn

    print("GFLOP/s", flush=True)
    peak = matmul_peak()
    model = zoo.build("resnet50")
    x = np.random.default_rng(0).random((8 if quick else 16, 224, 224, 3), dtype=np.float32)
    fn = predict_fn(model)
    fn(x)
    t = best_time(lambda: fn(x).numpy(), 2)
    achieved = forward_flops(model) * len(x) / t / 1e9
    row(
        "compute",
        f"ResNet-50 forward (batch {len(x)}) vs this machine's fp32 matmul peak",
        achieved / peak,
        f"{achieved:.0f} vs {peak:.0f} GFLOP/s",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer models and steps")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    start = time.time()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        bench_startup()
        bench_load(tmp)
        bench_hub(tmp)
        bench_inference(tmp, args.quick)
        bench_feature_cache()
        bench_training(args.quick)
        bench_recipe_compute(args.quick)
        bench_flops(args.quick)
    cpu = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    lines = [
        f"Measured by `python -m tools.bench` in {time.time() - start:.0f} s on {cpu}; each ratio "
        "compares two timings taken side by side in the same run (above 1 means the zoo path is faster).",
        "",
        "| area | comparison | ratio | timings |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | **{c}** | {d} |" for a, b, c, d in ROWS],
    ]
    table = "\n".join(lines)
    print(table)
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        if START not in text:
            raise SystemExit(f"README.md lacks the {START} ... {END} markers")
        head, rest = text.split(START, 1)
        readme.write_text(head + START + "\n" + table + "\n" + END + rest.split(END, 1)[1])
    print(f"median ratio {statistics.median(float(r[2].rstrip('x')) for r in ROWS):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
