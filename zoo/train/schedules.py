"""Training machinery shared by the recipe tool and fine-tuning: schedules, resumable fit, curves."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from zoo.errors import missing_dependency
from zoo.fileio import atomic_path


@keras.saving.register_keras_serializable(package="zoo")
class OneCycle(keras.optimizers.schedules.CosineDecay):
    """One-cycle learning rate: Keras' ``CosineDecay`` with linear warm-up, named by its peak.

    Linear warm-up from ``max_lr / div`` to ``max_lr`` over ``pct_start`` of the steps, then
    cosine decay to ``max_lr / final_div``. The arithmetic is Keras'; this class only keeps the
    one-cycle parameters (and the name older checkpoints and model files refer to).

    Args:
        max_lr: Peak learning rate.
        total_steps: Number of optimizer steps of the whole run.
        pct_start: Fraction of the steps spent warming up.
        div: ``max_lr / div`` is the starting learning rate.
        final_div: ``max_lr / final_div`` is the final learning rate.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.25,
        div: float = 25.0,
        final_div: float = 1e4,
    ) -> None:
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div = float(div)
        self.final_div = float(final_div)
        warm = max(1.0, self.total_steps * self.pct_start)
        super().__init__(
            self.max_lr / self.div,
            decay_steps=max(1.0, self.total_steps - warm),
            alpha=1.0 / self.final_div,
            warmup_target=self.max_lr,
            warmup_steps=warm,
        )

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div": self.div,
            "final_div": self.final_div,
        }


def resumable_fit(
    model: keras.Model,
    train: Any,
    *,
    epochs: int,
    validation: Any = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    save_every_steps: int | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """``model.fit`` that resumes after an interruption.

    With ``checkpoint_dir`` set, ``keras.callbacks.BackupAndRestore`` keeps the
    model, optimizer and epoch (and, with ``save_every_steps``, the step inside an
    epoch) so that running the same call again continues where it stopped. The
    backup is deleted when training completes.

    Args:
        model: A compiled model.
        train: Training ``tf.data.Dataset``.
        epochs: Total number of epochs.
        validation: Optional validation dataset.
        checkpoint_dir: Folder for the backup; ``None`` disables resuming.
        save_every_steps: Also back up every N steps (for long epochs).
        callbacks: Extra callbacks.
        verbose: Passed to ``fit``.

    Returns:
        The ``History`` of the run (of the resumed part after a resume).
    """
    cbs = list(callbacks or [])
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        cbs.append(
            keras.callbacks.BackupAndRestore(
                str(checkpoint_dir), save_freq=save_every_steps or "epoch", delete_checkpoint=True
            )
        )
    return model.fit(
        train, validation_data=validation, epochs=epochs, callbacks=cbs, verbose=verbose, shuffle=False
    )


class EpochTimer(keras.callbacks.Callback):
    """Add each epoch's wall time, in seconds, to its logs as ``epoch_seconds``.

    Put it before ``CSVLogger`` so the time lands in the log file.
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


#: Fine-tuning phases: the short label the curves give each, and the title its start announces.
PHASES = {
    "probe": ("linear probe", "phase 1, linear probe (features computed once)"),
    "phase1": ("head", "phase 1, head (backbone frozen)"),
    "phase2": ("fine-tune", "phase 2, fine-tune (top blocks unfrozen)"),
    "head": ("head", "phase 1, head"),
    "full": ("full", "full fine-tune"),
    "encoder": ("encoder", "phase 2, encoder"),
    "contrast": ("contrastive", "contrastive pairs, encoder (SetFit; the probe follows)"),
}


def plot_history(history: dict[str, list[Any]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Write a PNG of training curves (see :func:`history_figure`).

    Raises:
        MissingDependencyError: Without matplotlib (the ``plots`` extra).
    """
    fig = history_figure(history, title)
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return out


def history_figure(history: dict[str, list[Any]], title: str = "") -> Any:
    """A matplotlib figure of training curves: one panel per metric, train and validation together.

    A ``"phase"`` list in ``history`` (one name an epoch, as fine-tuning records it) marks
    where each phase starts and names it above its epochs. Close the figure when done.

    Raises:
        MissingDependencyError: Without matplotlib (the ``plots`` extra).
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise missing_dependency("training curves", "plots", ("matplotlib",)) from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    skip = ("learning_rate", "epoch_seconds", "phase")
    metrics = [k for k in history if not k.startswith("val_") and k not in skip]
    phases = history.get("phase") or []
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        epochs = range(1, len(history[name]) + 1)
        # None (an epoch of a phase without this metric) is a gap in the curve
        ax.plot(epochs, np.array(history[name], dtype=float), label="train", marker=".")
        if f"val_{name}" in history:
            ax.plot(epochs, np.array(history[f"val_{name}"], dtype=float), label="validation", marker=".")
        _mark_phases(ax, phases)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(name, pad=16 if len(set(phases)) > 1 else 6)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _mark_phases(ax: Any, phases: list[str]) -> None:
    """A dashed line where each phase after the first starts; each phase's name above its epochs."""
    starts = [i for i, phase in enumerate(phases) if i == 0 or phase != phases[i - 1]]
    if len(starts) < 2:
        return
    centres, names = [], []
    for first, end in zip(starts, [*starts[1:], len(phases)], strict=True):
        if first:
            ax.axvline(first + 0.5, color="grey", linestyle="--", linewidth=0.8)
        centres.append((first + end + 1) / 2)
        names.append(PHASES.get(phases[first], (phases[first],))[0])
    top = ax.secondary_xaxis("top")
    top.set_xticks(centres, names)
    top.tick_params(length=0, labelsize=8, labelcolor="dimgrey")
