"""Quantisation-aware distillation for int8 TFLite exports.

Float weights whose int8 model follows the original Keras outputs, resumable from a
checkpoint folder the export owns. Runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from zoo.errors import InputError
from zoo.export._common import CALIBRATION_IMAGES, QAT_BATCH, QAT_LEARNING_RATE, ExportError, Ranges
from zoo.export.quantize import _int8_grid, bias_corrected
from zoo.export.sequential import sequentially_rounded
from zoo.export.simulation import _weights_by_name, int8_simulation


def _distillation_loss(y: Any, target: Any) -> Any:
    """The logits' mean squared error plus the KL divergence of their softmax (``target``'s from ``y``'s)."""
    import keras

    ops = keras.ops
    kl = ops.sum(ops.softmax(target) * (ops.log_softmax(target) - ops.log_softmax(y)), axis=-1)
    return ops.mean(ops.square(y - target)) + ops.mean(kl)


def _rounded_kernels(student: Any) -> dict[int, bool]:
    """The id of each kernel distillation rounds going forward -> whether it is depthwise."""
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    return {
        id(layer.kernel): isinstance(layer, keras.layers.DepthwiseConv2D)
        for layer in student.layers
        if isinstance(layer, kinds)
    }


def _on_grid(value: Any, depthwise: bool | None) -> Any:
    """``value`` on :func:`int8_weights`' grid going forward, unchanged for the gradient (``None``: as is)."""
    import keras

    if depthwise is None:
        return value
    return value + keras.ops.stop_gradient(_int8_grid(value, depthwise) - value)


def _distillation_step(student: Any, kernels: dict[int, bool], optimizer: Any) -> Callable[[Any, Any], Any]:
    """One step of :func:`distil_int8` on the Keras backend in use: ``step(inputs, teacher_logits) -> loss``.

    ``kernels`` maps the id of each kernel rounded going forward to whether it is depthwise.
    TensorFlow traces the step with ``tf.function``, JAX compiles it with ``jax.jit`` and
    keeps the values outside the variables until ``step.sync()`` writes them back (a no-op
    elsewhere), PyTorch runs it eagerly under autograd.
    """
    import keras

    trainable = student.trainable_variables
    grid = [kernels.get(id(v)) for v in trainable]
    frozen = [v.value for v in student.non_trainable_variables]

    def loss_of(values: list, x: Any, target: Any) -> Any:
        on_grid = [_on_grid(v, depthwise) for v, depthwise in zip(values, grid, strict=True)]
        y, _ = student.stateless_call(on_grid, frozen, x, training=False)
        return _distillation_loss(keras.ops.cast(y, "float32"), target)

    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_step(trainable, optimizer, loss_of)
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(x: Any, target: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_of([v.value for v in trainable], x, target)
            optimizer.apply(tape.gradient(loss, trainable), trainable)
            return loss

    elif backend == "torch":
        import torch

        def step(x: Any, target: Any) -> Any:
            loss = loss_of([v.value for v in trainable], x, target)
            optimizer.apply(list(torch.autograd.grad(loss, [v.value for v in trainable])), trainable)
            return loss.detach()

    else:
        raise ExportError(
            f"quantisation-aware distillation runs on TensorFlow, JAX or PyTorch, not {backend}"
        )
    step.sync = lambda: None  # type: ignore[attr-defined]
    return step


def _jax_step(trainable: list, optimizer: Any, loss_of: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """:func:`_distillation_step` on JAX: a compiled pure update; ``step.sync()`` writes the variables."""
    import jax

    @jax.jit
    def update(values: list, slots: list, x: Any, target: Any) -> tuple[Any, list, list]:
        loss, grads = jax.value_and_grad(loss_of)(values, x, target)
        values, slots = optimizer.stateless_apply(slots, grads, values)
        return loss, values, slots

    state = {"values": [v.value for v in trainable], "slots": [v.value for v in optimizer.variables]}

    def step(x: Any, target: Any) -> Any:
        loss, state["values"], state["slots"] = update(state["values"], state["slots"], x, target)
        return loss

    def sync() -> None:
        values = [*state["values"], *state["slots"]]
        for variable, value in zip([*trainable, *optimizer.variables], values, strict=True):
            variable.assign(value)

    step.sync = sync  # type: ignore[attr-defined]
    return step


#: What distillation starts from, by ``zoo export --rounding``.
_STARTS = {
    "per-layer": "kernels rounded with error compensation, bias-corrected",
    "sequential": "kernels rounded layer after layer on the int8 model's inputs, bias-corrected",
}


def distillation_start(
    model: Any, calibration: Any, rounding: str = "per-layer", levels: dict[str, int] | None = None
) -> tuple[Any, int]:
    """The weights distillation starts from: post-training quantisation's, by ``rounding``.

    ``"per-layer"``: :func:`~zoo.export.quantize.bias_corrected`; ``"sequential"``:
    :func:`~zoo.export.sequential.sequentially_rounded` (which simulates ``levels``).

    Returns:
        The starting model and how many layers' biases or norms were corrected.
    """
    if rounding == "sequential":
        start, counts = sequentially_rounded(model, calibration, levels=levels)
        return start, counts["corrected"]
    return bias_corrected(model, calibration)


def distillation_inputs(
    entry: Any,
    images: Any,
    *,
    steps: int,
    data: str,
    split: str = "train",
    seed: int = 0,
    levels: dict[str, int] | None = None,
    rounding: str = "per-layer",
    equalized: bool = False,
    keep_kernels: bool = False,
    calibration_images: int = CALIBRATION_IMAGES,
) -> dict[str, Any]:
    """What a distillation of ``entry``'s weights depends on: resuming one needs all of it equal.

    ``images`` are the source images (before any resize) batches are drawn from; their
    first ``calibration_images`` set the activation ranges. The backend is not part
    of it: TensorFlow, JAX and PyTorch runs continue each other. ``levels`` is
    :func:`distil_int8`'s (recorded only when given); ``rounding`` is
    :func:`distillation_start`'s; ``equalized`` says the start was rounded from the model
    :func:`zoo.export.equalized` returns; ``keep_kernels`` is :func:`distil_int8`'s (recorded
    only when set).
    """
    import numpy as np

    from zoo.fileio import sha256_bytes

    arrays = [np.ascontiguousarray(image) for image in images]
    digest = sha256_bytes(*(part for a in arrays for part in (f"{a.shape}{a.dtype}", a.tobytes())))
    return {
        "weights": entry.name,
        "weights_sha256": getattr(entry, "sha256", None),
        "preprocessing": dict(entry.preprocessing),
        "images": {"data": data, "split": split, "count": len(images), "sha256": digest},
        "calibration_images": calibration_images,
        "start": _STARTS[rounding] + (", streams equalised first" if equalized else ""),
        "steps": steps,
        "batch": QAT_BATCH,
        "learning_rate": QAT_LEARNING_RATE,
        "schedule": "cosine to zero",
        "loss": "logits mse + softmax kl",
        "seed": seed,
        **({"levels": dict(levels)} if levels else {}),
        **({"trains": "batch norms and biases"} if keep_kernels else {}),
    }


class ResizedImages:
    """Images resized when indexed, a batch at a time: distillation's draws at the model's size.

    Indexing with an array of positions (as :func:`distil_int8` draws batches) gives those
    images through ``resize``; ``source`` is an array, or a list of images of several sizes
    (a user's photos). The resized set is never held whole (50,000 CIFAR-10 images at
    224x224 would take 7.5 GB).
    """

    def __init__(self, source: Any, resize: Callable[[Any], Any]) -> None:
        self.source, self.resize = source, resize

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: Any) -> Any:
        import numpy as np

        if isinstance(self.source, np.ndarray):
            return np.asarray(self.resize(self.source[index]))
        return np.stack([np.asarray(self.resize(self.source[i])) for i in np.atleast_1d(index)])


#: Distillation steps between two checkpoints.
QAT_CHECKPOINT_EVERY = 250


def distil_int8(
    model: Any,
    images: Any,
    calibration: Any,
    *,
    steps: int,
    transform: Callable[[Any], Any] | None = None,
    start: Any = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    inputs: dict[str, Any] | None = None,
    overwrite: bool = False,
    ranges: Ranges | None = None,
    levels: dict[str, int] | None = None,
    keep_kernels: bool = False,
) -> Any:
    """Quantisation-aware distillation: float weights whose int8 model follows ``model``'s outputs.

    A copy of ``start`` (default ``model``; :func:`bias_corrected` gives a better start) that
    simulates TFLite's int8 arithmetic (:func:`int8_simulation`, kernels rounded per output
    channel with straight-through gradients) is trained with Adam (:data:`QAT_LEARNING_RATE`,
    decayed to zero along a cosine) to match ``model``'s logits (their mean squared error plus
    the KL divergence of their softmax, which weighs the classes that decide the top-1) on
    batches of :data:`QAT_BATCH` of ``images`` (mirrored at random), with its batch norms in
    inference mode. Runs on the TensorFlow, JAX and PyTorch backends. The same inputs and
    ``seed`` give the same weights, bit for bit on TensorFlow only with oneDNN's kernels off
    (``TF_ENABLE_ONEDNN_OPTS=0`` before it is imported): with them, runs side by side drift
    apart in the last bits.

    Args:
        model: The float Keras model the int8 model should follow (not changed).
        images: Images to draw training batches from: model inputs, or what ``transform``
            turns into them (one batch at a time, so that raw uint8 images stay small).
        calibration: Model inputs that set the activation ranges.
        steps: Training steps.
        transform: Makes a batch of ``images`` into model inputs (default: they are).
        start: The weights distillation starts from: a model of ``model``'s architecture.
        seed: Seed of the batch draws and mirrors.
        progress: Show a progress bar.
        checkpoint: A folder the state is saved to every :data:`QAT_CHECKPOINT_EVERY` steps
            and at the end (an owned output, see :mod:`zoo.outputs`); a run with the same
            ``inputs`` continues from it, or returns at once when it is finished.
        inputs: What the run depends on (:func:`distillation_inputs`); needed with ``checkpoint``.
        overwrite: Start again over another run's state in ``checkpoint``.
        ranges: The simulated activation ranges (default: :func:`int8_ranges` of ``start``).
        levels: Layers the simulation rounds to that many steps, not 256 (:func:`int8_simulation`'s).
        keep_kernels: Train only the batch norms and biases; the kernels keep the int8 values
            ``start``'s rounding gave them (:func:`_student`).

    Returns:
        A model of ``model``'s architecture with the distilled float weights.

    Raises:
        InputError: When ``checkpoint`` holds another run's state or files zoo did not write.
    """
    import keras
    import numpy as np

    from zoo.tasks.inference import predict_fn

    simulated = (calibration, ranges, levels)
    student, optimizer = _student(model if start is None else start, simulated, steps, keep_kernels)
    with _distillation_state(checkpoint, inputs, student, optimizer, overwrite) as state:
        step = _distillation_step(student, _rounded_kernels(student), optimizer)
        teacher = predict_fn(model, fold=False)
        rng = np.random.default_rng(seed)
        bar = keras.utils.Progbar(steps, verbose=1 if progress else 0, unit_name="step")
        for done in range(steps):
            drawn, mirror = rng.integers(0, len(images), QAT_BATCH), rng.random(QAT_BATCH) < 0.5
            if done < state.done:  # resumed: the draws are replayed so the next batches are the same
                continue
            x = _batch(images, drawn, mirror, transform)
            target = keras.ops.convert_to_tensor(np.asarray(teacher(x), np.float32))
            loss = step(keras.ops.convert_to_tensor(x), target)
            bar.update(done + 1, [("loss", float(loss))])
            if (done + 1) % QAT_CHECKPOINT_EVERY == 0 or done + 1 == steps:
                step.sync()
                state.save(done + 1)
    return _weights_by_name(student, keras.models.clone_model(model))


def _student(start: Any, simulated: tuple[Any, Any, Any], steps: int, keep_kernels: bool) -> tuple[Any, Any]:
    """The int8 simulation of ``start`` that :func:`distil_int8` trains, and its optimizer.

    ``simulated`` is the simulation's ``(calibration, ranges, levels)``. With ``keep_kernels``
    the kernels are not trainable, so an error-compensated rounding (which training's
    rounding to nearest would undo) keeps its int8 values; a batch norm's gamma moves its
    kernel's per-channel scale, not those values.
    """
    import keras

    calibration, ranges, levels = simulated
    student = int8_simulation(start, calibration, ranges=ranges, levels=levels)
    if keep_kernels:
        kernels = _rounded_kernels(student)
        for variable in student.trainable_variables:
            if id(variable) in kernels:
                variable.trainable = False
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(QAT_LEARNING_RATE, steps))
    optimizer.build(student.trainable_variables)
    return student, optimizer


def _batch(images: Any, drawn: Any, mirror: Any, transform: Callable[[Any], Any] | None) -> Any:
    """Model inputs of the ``drawn`` images, those ``mirror`` marks mirrored left to right."""
    import numpy as np

    x = np.asarray(images[drawn])
    x = np.where(mirror[:, None, None, None], x[:, :, ::-1], x) if x.ndim == 4 else x
    return np.asarray(transform(x) if transform else x, np.float32)


class _DistillationState:
    """Where :func:`distil_int8` saves and finds its state (``done`` steps); no folder: nothing saved."""

    FILE = "distillation.npz"

    def __init__(self, folder: Any, student: Any, optimizer: Any) -> None:
        self.folder, self.student, self.optimizer, self.done = folder, student, optimizer, 0

    def _variables(self) -> list:
        return [*self.student.weights, *self.optimizer.variables]

    @staticmethod
    def _slot(path: str) -> str:
        """An optimizer variable's path, the optimizer's own name left out (Keras numbers it per process)."""
        return f"optimizer/{path.split('/', 1)[-1]}"

    def _names(self) -> list[str]:
        return [
            *(v.path for v in self.student.weights),
            *(self._slot(v.path) for v in self.optimizer.variables),
        ]

    def load(self) -> None:
        import numpy as np

        path = self.folder.path / self.FILE
        if not (self.folder.resumed and self.folder.owns(self.FILE)):
            return
        with np.load(path) as saved:
            names, count = [str(n) for n in saved["names"]], len(self.student.weights)
            names[count:] = [self._slot(n) for n in names[count:]]
            variables = self._variables()
            if names != self._names():
                raise InputError(f"{path} holds another model's variables; choose another checkpoint folder")
            for i, variable in enumerate(variables):
                variable.assign(saved[f"v{i}"])
            self.done = int(saved["done"])

    def save(self, done: int) -> None:
        import keras
        import numpy as np

        if self.folder is None:
            return
        variables = self._variables()
        arrays = {f"v{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
        names = np.array(self._names())
        with self.folder.write(self.FILE) as tmp, open(tmp, "wb") as f:
            np.savez(f, names=names, done=np.int64(done), backend=np.array(keras.backend.backend()), **arrays)
        self.done = done


@contextlib.contextmanager
def _distillation_state(
    checkpoint: str | os.PathLike[str] | None,
    inputs: dict[str, Any] | None,
    student: Any,
    optimizer: Any,
    overwrite: bool = False,
) -> Iterator[_DistillationState]:
    """The :class:`_DistillationState` of ``checkpoint`` (loaded when it holds this run), held locked."""
    if checkpoint is None:
        yield _DistillationState(None, student, optimizer)
        return
    if inputs is None:
        raise InputError("a distillation checkpoint needs the run's inputs (distillation_inputs)")
    from zoo import outputs

    owned = outputs.output_folder(checkpoint, command="distil-int8", inputs=inputs, overwrite=overwrite)
    with owned as folder:
        state = _DistillationState(folder, student, optimizer)
        state.load()
        yield state
