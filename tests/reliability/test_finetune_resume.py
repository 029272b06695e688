"""``zoo finetune`` SIGKILLed at random points resumes to the result of an uninterrupted run.

The run: LeNet-5 (pretrained on MNIST) fine-tuned two-phase on 192 real scikit-learn digits
(``digits_folder`` of ``tests/test_transfer.py``), 12 steps per epoch, 2 + 2 epochs, a checkpoint
every 3 steps. The same command is run once without interruption and once killed with SIGKILL
at 3 seeded random steps (each time resumed by rerunning the command). The resumed run must end
with the same validation accuracy, the same history and the same weights (tolerance below).
After every kill, ``model.keras`` and ``card.json`` are absent or complete; at the end no
temporary file remains.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_transfer import digits_folder  # noqa: F401  (a fixture: real digits as PNGs)
from zoo.outputs import MARKER

pytestmark = pytest.mark.slow

EPOCHS, TRAIN, BATCH, EVERY = 4, 192, 16, 3
STEPS = TRAIN // BATCH  # per epoch
PHASES = ("probe", "phase2")  # two_phase: a linear probe (one checkpoint when done), then the epochs
TOTAL = EPOCHS * STEPS
KILLS = 3
SEED = 11
#: Tolerance on the final weights and losses. CPU kernels with fixed thread counts are
#: deterministic here, so the resumed run is expected to match bit for bit; the tolerance
#: only absorbs a different summation order should a platform's kernels not be deterministic.
ATOL = 1e-5


def _command(data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "zoo",
        "finetune",
        "lenet5",
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        str(EPOCHS),
        "--max-train",
        str(TRAIN),
        "--batch-size",
        str(BATCH),
        "--lr",
        "3e-3",
        "--save-every-steps",
        str(EVERY),
        "--seed",
        "0",
        "--unfreeze",  # a fixed phase 2: the choice's own resume is tested in tests/test_transfer.py
        "2",
        "--json",
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _progress(out: Path) -> int:
    """Global training step of phase 2 reached, from the checkpoints on disk (-1 before the probe ends)."""
    probe, tune = (out / "checkpoints" / phase for phase in PHASES)
    if not (probe / "done.weights.h5").is_file():
        return -1
    if (tune / "done.weights.h5").is_file():
        return TOTAL
    try:
        state = json.loads((tune / "backup" / "state.json").read_text())
    except (OSError, ValueError):
        return 0
    return state["epoch"] * STEPS + state["step"]


def _check_outputs_whole(out: Path) -> None:
    """``model.keras`` and ``card.json`` are absent or complete and consistent."""
    import zoo
    from zoo.weights.manifest import WeightsEntry
    from zoo.weights.resolve import check_file

    model, card = out / "model.keras", out / "card.json"
    if model.exists():
        zoo.load_keras(model)
    if card.exists():
        entry = WeightsEntry.from_dict("lenet5.finetuned", json.loads(card.read_text()))
        assert check_file(model, entry.files[0]) is None, "card.json does not describe model.keras"


def _summary(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


def test_finetune_killed_at_random_points_resumes_to_the_same_result(digits_folder, tmp_path, record):  # noqa: F811
    import zoo

    reference_out, resumed_out = tmp_path / "reference", tmp_path / "resumed"
    reference = subprocess.Popen(
        _command(digits_folder, reference_out),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(1, TOTAL - EVERY), KILLS))
    watch = [digits_folder]
    for number, target in enumerate(targets, 1):
        with record.case(
            f"fine-tuning SIGKILLed at step {target} of {TOTAL} (kill {number}), then rerun",
            "fine-tuning",
            watch=watch,
        ) as case:
            proc = subprocess.Popen(
                _command(digits_folder, resumed_out),
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 400
            while _progress(resumed_out) < target and proc.poll() is None:
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            assert proc.poll() is None, "the run ended before the kill: " + proc.communicate()[1][-2000:]
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            reached = _progress(resumed_out)
            _check_outputs_whole(resumed_out)
            assert not (resumed_out / "card.json").exists()
            case.outcome = f"killed at step >= {reached}; outputs absent or whole"

    with record.case(
        f"fine-tuning resumed after {KILLS} kills matches the uninterrupted run", "fine-tuning", watch=watch
    ) as case:
        final = subprocess.run(
            _command(digits_folder, resumed_out), env=_env(), capture_output=True, text=True, timeout=600
        )
        assert final.returncode == 0, final.stderr[-3000:]
        ref_out, ref_err = reference.communicate(timeout=600)
        assert reference.returncode == 0, ref_err[-3000:]
        got, want = _summary(final.stdout), _summary(ref_out)

        assert got["metrics"]["top1_accuracy"] == want["metrics"]["top1_accuracy"]
        for key in ("val_accuracy", "val_loss", "loss", "accuracy", "phase"):
            if key == "phase":
                assert got["history"][key] == want["history"][key]
            else:
                np.testing.assert_allclose(got["history"][key], want["history"][key], atol=ATOL, err_msg=key)
        a, b = zoo.load_keras(resumed_out / "model.keras"), zoo.load_keras(reference_out / "model.keras")
        pairs = zip(a.get_weights(), b.get_weights(), strict=True)
        diff = max(float(np.max(np.abs(x - y))) for x, y in pairs)
        assert diff <= ATOL, f"final weights differ by {diff}"
        _check_outputs_whole(resumed_out)
        leftovers = [
            p.relative_to(resumed_out)
            for p in resumed_out.rglob("*")
            if p.name != MARKER
            and (p.name.startswith(".") or p.name.startswith("ckpt-") or p.name in ("state.json", "backup"))
        ]
        assert leftovers == [], f"temporary or checkpoint files left: {leftovers}"
        case.outcome = (
            f"top-1 {got['metrics']['top1_accuracy']:.2f}% both; history equal; "
            f"largest weight difference {diff:.1e}"
        )
