"""Benchmark: which fine-tuning strategy wins on real transfer tasks, and by how much.

Every cell runs ``zoo.train.finetune.finetune`` (the code behind ``zoo finetune``) on
one task, one training-set size and one strategy, with the same epochs, batch size,
seed and training subset for every strategy, and reads the top-1 accuracy that the
fine-tune measured on its held-out split (never trained on, never used to pick weights):

- ``default``: what ``zoo finetune`` does when no strategy is given;
- ``probe``: a linear probe, the new head trained on the frozen backbone's cached features;
- ``head``: the new head trained through the frozen backbone, epoch by epoch;
- ``full``: every layer trained from the pretrained weights, with a new head;
- ``scratch``: the same architecture from random weights, every layer trained.

Tasks (the pretrained weights never saw the target data, except where noted):

- ``lenet5-digits``: LeNet-5 (MNIST) -> scikit-learn's 8x8 digits, written as a folder of
  PNGs (797 test images, the rest for training), as a user's folder would be;
- ``lenet5-fashion``: LeNet-5 (MNIST) -> Fashion-MNIST (10,000 test images);
- ``effnet-cifar10``: EfficientNet-Lite0 (ImageNet) -> CIFAR-10, the lossless copy
  (``--max-val`` test images, default 2,000);
- ``lstm-mr``: the LSTM classifier -> MR sentence polarity (its packaged weights were
  trained on MR's other nine folds, so this row measures re-fitting a same-task model);
- ``minilm-mr``: MiniLM-L6 (all-MiniLM-L6-v2) -> MR.

Results are kept in ``docs/strategies.json``: a rerun measures only the missing cells
(``--redo`` measures again). ``--readme`` writes the table into README.md.

Usage:
    ZOO_DATA_DIR=../shared/data python -m tools.bench_strategies [--tasks lenet5-digits,...]
        [--strategies default,probe,...] [--readme]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tools._results import load_cells, save_cell, write_section  # noqa: E402  (after the log level)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "strategies.json"
START, END = "<!-- strategies:start -->", "<!-- strategies:end -->"
STRATEGIES = ("default", "probe", "head", "full", "scratch")

#: name -> (model, data, epochs, training-set sizes, held-out examples or None for all)
TASKS: dict[str, tuple[str, str, int, tuple[int, ...], int | None]] = {
    "lenet5-digits": ("lenet5", "digits", 6, (100, 1000), None),
    "lenet5-fashion": ("lenet5", "fashion_mnist", 6, (200, 2000), None),
    "effnet-cifar10": ("efficientnet_lite0", "cifar10", 3, (200, 1000), 2000),
    "lstm-mr": ("lstm_classifier", "mr", 3, (400, 2000), None),
    "minilm-mr": ("minilm_l6", "mr", 3, (400, 1000), None),
}
TEST_DIGITS = 797
#: Rows with a floor of their own: the default must also beat this accuracy there.
FLOORS = {("minilm-mr", 400): 75.0}


def digits_folder(root: Path) -> Path:
    """scikit-learn's digits as ``root/{train,test}/<digit>/*.png`` (a fixed shuffle, seed 0)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = root / "digits"
    if folder.is_dir():
        return folder
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    for i, index in enumerate(order):
        split = "test" if i < TEST_DIGITS else "train"
        pixels = (digits.images[index] * 255 / 16).round().astype("uint8")  # 0..16 -> 0..255
        path = folder / split / str(digits.target[index])
        path.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path / f"{index:04d}.png")
    return folder


def run_cell(task: str, size: int, strategy: str, work: Path) -> dict:
    """Fine-tune one cell and return its measured accuracy and time."""
    from zoo.train.finetune import finetune

    model, data, epochs, _, max_val = TASKS[task]
    if data == "digits":
        data = str(digits_folder(work))
    kwargs: dict = {"epochs": epochs, "max_train": size, "max_val": max_val, "seed": 0, "verbose": 0}
    if strategy == "scratch":
        kwargs.update(strategy="full", weights=None)
    elif strategy != "default":
        kwargs["strategy"] = strategy
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        summary = finetune(model, data, Path(tmp) / "out", **kwargs)
    return {
        "top1_accuracy": round(float(summary["metrics"]["top1_accuracy"]), 2),
        "held_out": int(summary["metrics"]["num_examples"]),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _key(task: str, size: int, strategy: str) -> str:
    return f"{task}/{size}/{strategy}"


def load_results() -> dict:
    return load_cells(RESULTS)


def save_results(results: dict, key: str) -> None:
    """Write the cell ``key`` into the results file, keeping every other cell (see :func:`save_cell`)."""
    save_cell(RESULTS, results, key)


def verdicts(cells: dict, task: str, size: int) -> tuple[str, float | None]:
    """Whether the default met both bars on one row: never below scratch, within 1 point of the best."""
    row = {s: cells.get(_key(task, size, s), {}).get("top1_accuracy") for s in STRATEGIES}
    if any(v is None for v in row.values()):
        return "incomplete", None
    best = max(row.values())
    gap = best - row["default"]
    ok = row["default"] >= row["scratch"] and gap <= 1.0
    floor = FLOORS.get((task, size))
    if floor is not None and not row["default"] > floor:
        return f"missed (not above {floor:g}%)", gap
    return ("met" if ok else "missed"), gap


def table(results: dict) -> str:
    cells = results["cells"]
    lines = [
        "| task | train examples | held-out | epochs | "
        + " | ".join(STRATEGIES)
        + " | default vs best | bars |",
        "|---|---|---|---|" + "---|" * len(STRATEGIES) + "---|---|",
    ]
    for task, (model, data, epochs, sizes, _) in TASKS.items():
        for size in sizes:
            row = [cells.get(_key(task, size, s)) for s in STRATEGIES]
            values = [c["top1_accuracy"] if c else None for c in row]
            best = max((v for v in values if v is not None), default=None)
            shown = ["-" if v is None else (f"**{v:.2f}**" if v == best else f"{v:.2f}") for v in values]
            held = next((f"{c['held_out']:,}" for c in row if c), "-")
            verdict, gap = verdicts(cells, task, size)
            gap_text = "-" if gap is None else ("best" if gap <= 0 else f"-{gap:.2f}")
            lines.append(
                f"| {model} -> {data} | {size:,} | {held} | {epochs} | "
                + " | ".join(shown)
                + f" | {gap_text} | {verdict} |"
            )
    return "\n".join(lines)


def write_readme(results: dict) -> None:
    body = (
        f"Top-1 accuracy (%) on each task's held-out split, measured by `{results['command']}` "
        f"on {results['machine']}. Bars: the default never below scratch and at most 1 point "
        "below the best strategy; MiniLM with 400 examples above 75%. The default (`two_phase`, "
        "`--unfreeze auto`) chooses its phase-2 setting on 20% of the training examples, held back "
        "from its trials; the held-out split plays no part in any choice.\n\n" + table(results) + "\n"
    )
    write_section(ROOT / "README.md", START, END, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--sizes", help="comma-separated training-set sizes (default: each task's own)")
    parser.add_argument("--redo", action="store_true", help="measure cells that already have results")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md and stop")
    args = parser.parse_args()

    results = load_results()
    if args.readme:
        write_readme(results)
        print(table(results))
        return 0
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS] + [
        s for s in args.strategies.split(",") if s not in STRATEGIES
    ]
    if unknown:
        parser.error(f"unknown task or strategy: {', '.join(unknown)}")
    import platform

    results["command"] = "python -m tools.bench_strategies"
    results["machine"] = f"{os.cpu_count()} CPU cores, {platform.machine()}"
    work = Path(tempfile.mkdtemp(prefix="zoo-strategies-"))
    for task in tasks:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else TASKS[task][3]
        for size in sizes:
            for strategy in args.strategies.split(","):
                key = _key(task, size, strategy)
                if key in results["cells"] and not args.redo:
                    continue
                cell = run_cell(task, size, strategy, work)
                results["cells"][key] = cell
                save_results(results, key)
                print(f"{key}: {cell['top1_accuracy']:.2f}% in {cell['seconds']:.0f} s", flush=True)
    print(table(results))
    print("command:", shlex.join(["python", "-m", "tools.bench_strategies", *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
