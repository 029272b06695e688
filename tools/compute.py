"""Choose a recipe's backend and precision by measuring its training step on each.

Keras picks its backend once per process, so each candidate (``backend:precision``)
runs in a fresh process: it builds and compiles the recipe's model exactly as
tools/train.py does (same optimizer, loss and compile settings) and times
``train_on_batch`` on one batch of the recipe's size. The fastest candidate wins.
``python tools/train.py NAME --compute fastest`` trains with the winner and records
every timing in the run folder and in the manifest record.

Usage:
    python -m tools.compute vgg11_cifar.cifar10
    python -m tools.compute lenet5.mnist --candidates tensorflow:float32,torch:float32 --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16")
CANDIDATES = tuple(f"{b}:{p}" for b in BACKENDS for p in PRECISIONS)


def candidates_for(recipe: dict) -> list[str]:
    """The candidates a recipe can train with: image classifiers on every backend and precision.

    Text classifiers and the character model take token ids, and the VAE's and DCGAN's
    ``train_step`` needs TensorFlow: those recipes keep their declared precision, unmeasured.
    """
    return list(CANDIDATES) if recipe.get("kind", "classifier") == "classifier" else []


def parse_candidates(text: str) -> list[str]:
    """``"tensorflow:float32,torch:float32"`` -> a checked list of candidates."""
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CANDIDATES]
    if unknown or not chosen:
        raise SystemExit(
            f"unknown candidate(s) {', '.join(unknown) or '(none)'}: use {', '.join(CANDIDATES)}"
        )
    return chosen


def measure(recipe: dict, candidates: list[str], steps: int = 5) -> dict[str, float]:
    """Milliseconds of one training step (best of ``steps``) of each candidate, each in its own process."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-compute-") as tmp:
        path = Path(tmp) / "recipe.json"
        path.write_text(json.dumps(recipe, default=list))
        for candidate in candidates:
            backend, precision = candidate.split(":")
            proc = subprocess.run(
                [sys.executable, "-m", "tools.compute", "--worker", str(path), precision, str(steps)],
                env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"measuring {candidate} failed:\n{proc.stderr[-2000:]}")
            results[candidate] = json.loads(proc.stdout.strip().splitlines()[-1])["step_ms"]
            print(f"  {candidate}: {results[candidate]:.1f} ms a step", flush=True)
    return results


def fastest(step_ms: dict[str, float]) -> tuple[str, str]:
    """``(backend, precision)`` of the fastest measured candidate."""
    backend, precision = min(step_ms, key=step_ms.__getitem__).split(":")
    return backend, precision


def _worker(recipe_path: str, precision: str, steps: int) -> float:
    """One candidate, in this process's backend: the best time of ``steps`` training steps, in ms."""
    import keras
    import numpy as np

    try:  # run as python -m tools.compute (tests, the train tool)
        from tools._results import best_time
        from tools.train import build_model, compile_for_training
    except ImportError:
        from _results import best_time
        from train import build_model, compile_for_training

    recipe = json.loads(Path(recipe_path).read_text())
    keras.mixed_precision.set_global_policy(precision)
    model = compile_for_training(build_model(recipe), recipe, steps_per_epoch=1000)
    rng = np.random.default_rng(0)
    batch, classes = recipe["batch_size"], len(recipe["labels"])
    x = rng.random((batch, *recipe["input_shape"]), np.float32)
    y = rng.integers(0, classes, batch)
    if recipe.get("label_smoothing"):
        y = np.eye(classes, dtype=np.float32)[y]
    model.train_on_batch(x, y)  # tracing and compilation; best_time's warm-up is the second untimed step
    return 1000 * best_time(lambda: model.train_on_batch(x, y), steps, warmup=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps({"step_ms": _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))}))
        return 0
    try:
        from tools.recipes import RECIPES
    except ImportError:
        from recipes import RECIPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument(
        "--candidates", help=f"comma-separated backend:precision (default: {', '.join(CANDIDATES)})"
    )
    parser.add_argument(
        "--steps", type=int, default=5, help="timed steps per candidate (after 2 warm-up steps)"
    )
    args = parser.parse_args()
    recipe = RECIPES[args.name]
    candidates = parse_candidates(args.candidates) if args.candidates else candidates_for(recipe)
    if not candidates:
        raise SystemExit(f"{args.name} is not an image classifier recipe: it keeps its declared precision")
    step_ms = measure(recipe, candidates, args.steps)
    backend, precision = fastest(step_ms)
    print(json.dumps({"backend": backend, "precision": precision, "step_ms": step_ms}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
