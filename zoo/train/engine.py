"""Transfer-learning utilities: moving weights between related models."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import InputError, ZooWarning, check_finite_history
from zoo.fileio import TMP_TAG, atomic_path, sha256_bytes, write_json
from zoo.tasks.inference import predict_fn
from zoo.train.distribute import fit_ready


def _find_layer(model: Any, name: str) -> Any:
    """Return the layer called ``name``, or the last layer of the stage whose names start with it."""
    names = [layer.name for layer in model.layers]
    if name in names:
        return model.get_layer(name)
    stage = [layer for layer in model.layers if layer.name.startswith(f"{name}_")]
    if stage:
        return stage[-1]
    from zoo.registry import suggest

    close = suggest(name, names)
    if close:
        hint = f"; did you mean {', '.join(map(repr, close))}?"
    else:
        shown = ", ".join(names[:24]) + (f", ... ({len(names)} in all)" if len(names) > 24 else "")
        hint = f"; its layers: {shown}"
    raise InputError(f"{model.name} has no layer or stage {name!r}{hint}")


def _symbolic_output(model: Any, path: str) -> Any:
    """The symbolic output of ``path`` (``"layer"`` or ``"submodel/layer"``) in ``model``'s graph."""
    import keras

    head, _, rest = path.partition("/")
    layer = _find_layer(model, head)
    if not rest:
        return layer.output
    if not isinstance(layer, keras.Model):
        raise InputError(f"{head!r} is not a nested model, so {path!r} does not exist")
    inner = keras.Model(layer.inputs, _symbolic_output(layer, rest))
    outer_inputs = layer._inbound_nodes[0].input_tensors if model is not layer else layer.inputs
    if len(outer_inputs) == 1:
        outer_inputs = outer_inputs[0]
    return inner(outer_inputs)


def default_feature_layers(model: Any) -> list[str]:
    """The layer a functional model's features come from by default: ``pre_logits``, else the penultimate."""
    names = [layer.name for layer in model.layers]
    if "pre_logits" in names:
        return ["pre_logits"]
    return [model.layers[-2].name] if len(model.layers) > 1 else [model.layers[-1].name]


def feature_extractor(model: Any, layers: str | list[str] | None = None) -> Any:
    """Return a model mapping the inputs of ``model`` to the outputs of named layers.

    Args:
        model: A functional ``keras.Model``, or a VAE / DCGAN object (whose
            encoder latents / discriminator features are used).
        layers: A layer name, a stage prefix (``"layer3"`` gives the last layer of
            ResNet stage 3), ``"submodel/layer"`` for nested models, or a list of
            these. ``None`` uses :func:`default_feature_layers`.

    Returns:
        A ``keras.Model`` with one output per requested layer (a single tensor
        when one layer is asked for).
    """
    import keras

    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, keras.Model):  # a VAE: features are the latent means
        return feature_extractor(encoder, layers or ["z_mean"])
    discriminator = getattr(model, "discriminator", None)
    if isinstance(discriminator, keras.Model):  # a DCGAN: the discriminator's penultimate layer
        return feature_extractor(discriminator, layers or [discriminator.layers[-2].name])
    requested = [layers] if isinstance(layers, str) else list(layers or default_feature_layers(model))
    outputs = [_symbolic_output(model, path) for path in requested]
    return keras.Model(
        model.input, outputs[0] if len(outputs) == 1 else outputs, name=f"{model.name}_features"
    )


# --------------------------------------------------------------------------------------
# Cached features
# --------------------------------------------------------------------------------------


def weights_fingerprint(model: Any) -> str:
    """sha256 of a model's weight values (names, shapes and bytes), for cache keys."""
    import hashlib

    import keras
    import numpy as np

    digest = hashlib.sha256()
    for var in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(var.value))
        digest.update(f"{var.path}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def feature_cache_dir() -> Path:
    """Where cached features live: ``ZOO_CACHE_DIR/features`` or ``~/.cache/zoo/features``."""
    from zoo.fileio import cache_root

    return cache_root() / "features"


def _batches(dataset: Any) -> Iterator[tuple[Any, Any]]:
    """Yield ``(inputs, labels-or-None)`` numpy batches from a batched dataset."""
    import keras
    import numpy as np

    # NumPy batches: JAX and PyTorch models cannot take TensorFlow tensors.
    for element in getattr(dataset, "as_numpy_iterator", lambda: dataset)():
        element = keras.tree.map_structure(np.asarray, element)
        if isinstance(element, tuple | list) and len(element) == 2:
            x, y = element
            yield x, np.asarray(y)
        elif isinstance(element, dict) and "label" in element:
            yield {k: v for k, v in element.items() if k != "label"}, np.asarray(element["label"])
        else:
            yield element, None


def _update_digest(digest: Any, *values: Any) -> None:
    """Hash arrays (or dicts of them) with their dtypes and shapes; ``None`` values are skipped."""
    import numpy as np

    for value in values:
        if value is None:
            continue
        if isinstance(value, dict):
            for key in sorted(value):
                digest.update(key.encode())
                _update_digest(digest, value[key])
        else:
            array = np.ascontiguousarray(np.asarray(value))
            digest.update(f"{array.dtype}:{array.shape};".encode())
            digest.update(array.tobytes())


def extract_features(
    model: Any,
    dataset: Any,
    *,
    layers: str | list[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    forward: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any]:
    """Compute features of a whole dataset once and cache them on disk.

    The cache key is the sha256 of the model's weights, the requested layers and
    a sha256 fingerprint of the data itself (every input and label is hashed
    while streaming, so changed data never hits a stale cache). A cache hit reads
    the data but never runs the model.

    Args:
        model: Any zoo model (see :func:`feature_extractor`).
        dataset: A batched ``tf.data.Dataset`` (or iterable) of ``(x, y)``,
            ``{"...": x, "label": y}`` or unlabelled inputs. It must not shuffle.
        layers: Feature layers (default: ``pre_logits`` or the model's natural features).
        cache_dir: Cache folder (default :func:`feature_cache_dir`).
        use_cache: ``False`` always recomputes and does not write the cache.
        forward: Computes the features of a batch in place of the Keras extractor's
            compiled forward function (e.g. ``zoo.export.onnx_forward(name, features=True)``,
            the same layers); the cache does not depend on it.

    Returns:
        ``(features, labels)`` as NumPy arrays; ``labels`` is ``None`` without labels.
        With several layers, ``features`` is a list.
    """
    extractor = feature_extractor(model, layers)
    # A re-iterable dataset (tf.data, a list) is read twice, hashing first and running the model
    # second, so inputs never pile up in memory; a one-shot iterator is kept in memory instead.
    reiterable = iter(dataset) is not dataset
    data_digest, labels, inputs = _hash_dataset(dataset, keep_inputs=not reiterable)
    names = ",".join(extractor.output_names) if hasattr(extractor, "output_names") else ""
    key = sha256_bytes("|".join([weights_fingerprint(extractor), names, data_digest]))[:32]
    folder = Path(cache_dir) if cache_dir is not None else feature_cache_dir()
    path = folder / f"{model.name}-{key}.npz"
    cached = _read_feature_cache(path) if use_cache else None
    if cached is not None:
        return cached
    feats = _run_extractor(forward or predict_fn(extractor), dataset, inputs, data_digest)
    all_labels = np.concatenate(labels) if labels else None
    if use_cache:
        _write_feature_cache(path, feats, all_labels)
    return (feats[0] if len(feats) == 1 else feats), all_labels


def _hash_dataset(dataset: Any, *, keep_inputs: bool) -> tuple[str, list[Any], list[Any]]:
    """One pass over the data: its sha256, its labels and (for one-shot iterators) its inputs."""
    import hashlib

    from zoo.progress import batch_count, progress

    inputs, labels, batches = [], [], 0
    digest = hashlib.sha256()
    for x, y in progress(_batches(dataset), "reading data", total=batch_count(dataset)):
        _update_digest(digest, x, y)
        if y is not None:
            labels.append(y)
        if keep_inputs:
            inputs.append(x)
        batches += 1
    if not batches:
        raise InputError("extract_features got an empty dataset")
    return digest.hexdigest(), labels, inputs


def _read_feature_cache(path: Path) -> tuple[Any, Any] | None:
    """Cached ``(features, labels)``, or ``None`` when absent (a damaged entry is removed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            feats = [data[k] for k in sorted(data.files) if k.startswith("features_")]
            labels = data["labels"] if "labels" in data.files else None
        return (feats[0] if len(feats) == 1 else feats), labels
    except (OSError, ValueError, KeyError):
        path.unlink(missing_ok=True)  # a damaged cache entry: recompute it
        return None


def _run_extractor(run: Callable[[Any], Any], dataset: Any, inputs: list[Any], data_digest: str) -> list[Any]:
    """Features of every batch, checking that a re-read dataset is the one that was hashed."""
    import hashlib

    from zoo.progress import batch_count, progress

    outputs: list[list[Any]] = []
    again = hashlib.sha256()
    reiterable = not inputs
    batches = _batches(dataset) if reiterable else ((x, None) for x in inputs)
    total = batch_count(dataset) if reiterable else len(inputs)
    for x, y in progress(batches, "extracting features", total=total):
        if reiterable:
            _update_digest(again, x, y)
        out = run(x)  # the compiled forward function (not eager calls), or another runtime
        out = out if isinstance(out, list | tuple) else [out]
        if not outputs:
            outputs = [[] for _ in out]
        for store, value in zip(outputs, out, strict=True):
            store.append(np.asarray(value))
            if store[-1].shape[1:] != store[0].shape[1:]:
                raise InputError(
                    f"a feature layer gives batches of different shapes ({store[0].shape[1:]} and "
                    f"{store[-1].shape[1:]} an example): a per-token output of texts of different "
                    "lengths cannot be stacked; extract a pooled layer, or leave --layer out for "
                    "the model's own features"
                )
    if reiterable and again.hexdigest() != data_digest:
        raise InputError(
            "extract_features read different data on a second pass: the dataset "
            "shuffles or augments; pass one with a fixed order and no augmentation"
        )
    return [np.concatenate(o) for o in outputs]


def _write_feature_cache(path: Path, feats: list[Any], labels: Any) -> None:
    """Store features in the cache; a cache that cannot be written only costs time (a warning)."""
    arrays = {f"features_{i:02d}": f for i, f in enumerate(feats)}
    if labels is not None:
        arrays["labels"] = labels
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_savez(path, arrays)
    except OSError as exc:
        warnings.warn(
            f"could not write the feature cache {path.parent} ({exc.strerror or exc}); the features "
            "are not cached. Set ZOO_CACHE_DIR to a writable folder to cache them",
            ZooWarning,
            stacklevel=3,
        )


def _atomic_savez(path: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


# --------------------------------------------------------------------------------------
# Fine-tuning
# --------------------------------------------------------------------------------------

STRATEGIES = ("two_phase", "probe", "head", "full")


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` returns.

    Attributes:
        model: The trained model, in its architecture's own form (the layers the
            phases trained are the model's own), every layer trainable again.
        history: Metric name -> per-epoch values over all phases, with ``phase``
            giving the phase of each epoch.
    """

    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)


def split_backbone(model: Any) -> tuple[Any, Any]:
    """Return ``(backbone, head)``: the model up to ``pre_logits``, and its ``head`` layer."""
    import keras

    names = [layer.name for layer in model.layers]
    if "pre_logits" not in names or "head" not in names:
        raise InputError(f"{model.name} has no 'pre_logits' and 'head' layers; load it with include_top=True")
    backbone = keras.Model(model.inputs, model.get_layer("pre_logits").output, name="backbone")
    return backbone, model.get_layer("head")


def backbone_blocks(backbone: Any) -> list[list[Any]]:
    """Group a backbone's weighted layers into blocks, bottom to top.

    Torchvision-style residual blocks (``layer3_1_*``) form one block; a batch
    norm joins the layer before it; any other weighted layer is its own block.
    """
    import re

    import keras

    blocks: list[list[Any]] = []
    keys: list[str] = []
    for layer in backbone.layers:
        if not layer.weights:
            continue
        match = re.match(r"^(layer\d+_\d+)_", layer.name)
        key = match.group(1) if match else layer.name
        joins = blocks and (
            (match and keys[-1] == key) or (not match and isinstance(layer, keras.layers.BatchNormalization))
        )
        if joins:
            blocks[-1].append(layer)
        else:
            blocks.append([layer])
            keys.append(key)
    return blocks


def default_loss(model: Any) -> Any:
    """Sparse categorical cross-entropy on the ``head``'s outputs (logits unless it ends in softmax)."""
    import keras

    head = next((la for la in model.layers if la.name == "head"), None)
    activation = getattr(getattr(head, "activation", None), "__name__", "linear")
    return keras.losses.SparseCategoricalCrossentropy(from_logits=activation != "softmax")


class _PhaseState:
    """The resumable state of one training phase in ``<phase_dir>/backup``, always consistent on disk.

    ``state.json`` (replaced atomically, written last) names the checkpoint it describes:
    the weights with the optimizer (``ckpt-E-S.weights.h5``), the running metric totals of
    the current epoch and the early-stopping best weights (``ckpt-E-S.npz``), the position
    (epoch ``E``, step ``S`` within it), the history of the finished epochs and the
    early-stopping counters. Files of older checkpoints are deleted after it moves on, so a
    kill at any moment leaves the previous or the next checkpoint whole.
    """

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.path = folder / "state.json"

    def load(self) -> dict[str, Any] | None:
        import json

        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not (self.dir / state.get("weights", "-")).is_file():
            return None
        return state

    def save(self, model: Any, state: dict[str, Any], arrays: dict[str, Any]) -> None:

        self.dir.mkdir(parents=True, exist_ok=True)
        stem = f"ckpt-{state['epoch']}-{state['step']}"
        with atomic_path(self.dir / f"{stem}.weights.h5") as tmp:
            model.save_weights(tmp)  # the temporary name ends in the target's suffix
        _atomic_savez(self.dir / f"{stem}.npz", arrays)
        write_json(self.path, {**state, "weights": f"{stem}.weights.h5", "arrays": f"{stem}.npz"})
        self.prune(keep=stem)

    def prune(self, keep: str | None = None) -> None:
        for old in self.dir.glob("ckpt-*"):
            if keep is None or not old.name.startswith(f"{keep}."):
                old.unlink(missing_ok=True)
        for tmp in self.dir.glob(f"{TMP_TAG}*"):
            tmp.unlink(missing_ok=True)


def _run_phase(
    model: Any,
    name: str,
    train: Any,
    val: Any,
    *,
    epochs: int,
    optimizer: Any,
    loss: Any,
    metrics: list[Any],
    checkpoint_dir: Path | None,
    patience: int | None,
    save_every_steps: int | None,
    verbose: Any,
) -> dict[str, list[float]]:
    """Train one phase epoch by epoch; with ``checkpoint_dir``, resumably and exactly.

    The one training loop of every fine-tune (images, word-level text, BERT); ``optimizer``
    is a fresh Keras optimizer (its schedule, if any, counts the phase's own steps).

    Each epoch is one ``fit`` call on ``train(epoch)`` (or ``train`` itself when it is not
    callable). A resumed run restores the weights, the optimizer, the position inside the
    epoch, the epoch's running metrics and the early-stopping state, and skips the batches
    of the interrupted epoch that were already trained on, so with a deterministic
    ``train(epoch)`` it ends with the same weights as an uninterrupted run. Early stopping
    follows ``keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
    restore_best_weights=True)``.
    """
    import json

    phase_dir = checkpoint_dir / name if checkpoint_dir is not None else None
    done = phase_dir / "done.weights.h5" if phase_dir is not None else None
    if done is not None and done.is_file():  # finished before an interruption: reuse it
        model.load_weights(done)
        return json.loads((phase_dir / "history.json").read_text())
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    fit_ready(model)  # several TensorFlow workers: see zoo.train.distribute
    run = _PhaseRun(model, phase_dir, patience if val is not None else None, save_every_steps)
    _announce(name, run, epochs, verbose)
    for epoch in range(run.start_epoch, epochs):
        logs = run.fit_epoch(train(epoch) if callable(train) else train, val, epoch, epochs, verbose)
        stop = run.record_epoch(epoch, logs)
        run.checkpoint(epoch + 1, 0, None)
        if stop:
            break
    return run.finish(done)


def _announce(name: str, run: Any, epochs: int, verbose: Any) -> None:
    """One line on stderr naming the phase, and where a resumed run picks up."""
    from zoo.train.schedules import PHASES

    if verbose == 0:
        return
    title = PHASES[name][1] if name in PHASES else name
    if run.start_epoch or run.start_step:
        where = f"epoch {run.start_epoch + 1}" + (f", step {run.start_step}" if run.start_step else "")
        print(f"{title}: resuming from {where} of {epochs}", file=sys.stderr, flush=True)
    else:
        print(f"{title}: {epochs} epoch{'s' if epochs != 1 else ''}", file=sys.stderr, flush=True)


class _PhaseRun:
    """The state of one phase in progress: position, history, early stopping, checkpoints."""

    def __init__(self, model: Any, phase_dir: Path | None, patience: int | None, save_every: int | None):
        self.model, self.patience, self.save_every = model, patience, save_every
        self.store = None
        if phase_dir is not None:
            phase_dir.mkdir(parents=True, exist_ok=True)
            self.store = _PhaseState(phase_dir / "backup")
        self.history: dict[str, list[float]] = {}
        self.es: dict[str, Any] = {"best": None, "wait": 0, "best_epoch": 0}
        self.best_weights: list[Any] | None = None
        self.start_epoch, self.start_step, self.metric_values = 0, 0, None
        self.steps_per_epoch = 0
        state = self.store.load() if self.store is not None else None
        if state is not None:
            self._restore(state)

    def _restore(self, state: dict[str, Any]) -> None:
        """Load the weights, optimizer, metric totals and early-stopping state of a checkpoint."""
        assert self.store is not None
        self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.store.dir / state["weights"])
        with np.load(self.store.dir / state["arrays"], allow_pickle=False) as arrays:
            count = int(arrays["count"])
            self.metric_values = [arrays[f"metric_{i}"] for i in range(int(arrays["metrics"]))]
            self.best_weights = [arrays[f"best_{i}"] for i in range(count)] if count else None
        self.start_epoch, self.start_step = int(state["epoch"]), int(state["step"])
        self.history, self.es = state["history"], state["early_stopping"]
        self.steps_per_epoch = state.get("steps_per_epoch", 0)

    def checkpoint(self, epoch: int, step: int, values: list[Any] | None) -> None:
        """Save the position ``(epoch, step)`` with everything needed to resume exactly there."""
        if self.store is None:
            return
        best = self.best_weights or []
        arrays: dict[str, Any] = {"count": len(best), "metrics": len(values or [])}
        arrays.update({f"best_{i}": w for i, w in enumerate(best)})
        arrays.update({f"metric_{i}": v for i, v in enumerate(values or [])})
        state = {
            "epoch": epoch,
            "step": step,
            "history": self.history,
            "early_stopping": self.es,
            "steps_per_epoch": self.steps_per_epoch,
        }
        self.store.save(self.model, state, arrays)

    def fit_epoch(self, data: Any, val: Any, epoch: int, epochs: int, verbose: Any) -> dict[str, Any]:
        """One ``fit`` call for one epoch, skipping the batches a resumed epoch already trained on."""
        import keras

        known = int(data.cardinality()) if hasattr(data, "cardinality") else -1
        if known >= 0:
            self.steps_per_epoch = known
        skip = self.start_step if epoch == self.start_epoch else 0
        if skip:
            data = data.skip(skip)
        restore = self.metric_values if epoch == self.start_epoch and skip else None
        steps = _step_checkpoint_type()(self, epoch, skip, restore)
        with warnings.catch_warnings():  # each fit call is one whole pass by design: not a short dataset
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            logs = self.model.fit(
                data,
                validation_data=val,
                epochs=epochs,
                initial_epoch=epoch,
                shuffle=False,
                verbose=verbose,
                callbacks=[steps, keras.callbacks.TerminateOnNaN()],
            ).history
        check_finite_history(logs)
        self.steps_per_epoch = self.steps_per_epoch or steps.steps  # learnt from a whole epoch
        return logs

    def record_epoch(self, epoch: int, logs: dict[str, Any]) -> bool:
        """Add the epoch to the history and update early stopping; ``True`` means stop."""
        for key, values in logs.items():
            self.history.setdefault(key, []).append(float(values[-1]))
        if self.patience is None or "val_loss" not in logs:
            return False
        current, es = float(logs["val_loss"][-1]), self.es
        if self.best_weights is None:
            self.best_weights = self.model.get_weights()
            es["best_epoch"] = epoch
        es["wait"] += 1
        if es["best"] is None or current < es["best"]:
            es.update(best=current, best_epoch=epoch, wait=0)
            self.best_weights = self.model.get_weights()
            return False
        return es["wait"] >= self.patience and epoch > 0

    def finish(self, done: Path | None) -> dict[str, list[float]]:
        """Restore the best weights (early stopping), mark the phase done and drop its checkpoints."""
        if self.patience is not None and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        if done is not None and self.store is not None:
            write_json(done.parent / "history.json", self.history)
            with atomic_path(done) as tmp:
                self.model.save_weights(tmp)  # the temporary name ends in the target's suffix
            self.store.prune()
            self.store.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.store.dir.rmdir()
        return self.history


@functools.cache
def _step_checkpoint_type() -> type:
    """The Keras callback class (made on first use: Keras loads only when training starts)."""
    import keras

    class StepCheckpoint(keras.callbacks.Callback):
        """Checkpoints inside an epoch and restores a resumed epoch's running metric totals."""

        def __init__(self, run: _PhaseRun, epoch: int, first_step: int, restore: list[Any] | None) -> None:
            super().__init__()
            self.run, self.epoch, self.first_step, self.restore = run, epoch, first_step, restore
            self.steps = first_step

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            # Saved before a step rather than after one, and only when the epoch's length is
            # known: a saved position always has a batch left (a resumed epoch is never empty).
            # Keras calls this once more past the end of a dataset of unknown cardinality.
            step, every, length = self.first_step + batch, self.run.save_every, self.run.steps_per_epoch
            if batch and every and step % every == 0 and length and step < length:
                self.run.checkpoint(
                    self.epoch, step, [np.array(v) for m in self.model.metrics for v in m.variables]
                )

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps = self.first_step + batch + 1
            if batch == 0 and self.restore:  # the metrics exist now: add the earlier steps' totals
                variables = [v for m in self.model.metrics for v in m.variables]
                for variable, value in zip(variables, self.restore, strict=True):
                    variable.assign_add(value)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.model.stop_training = True  # one epoch per fit call

    return StepCheckpoint


def split_epochs(strategy: str, epochs: int | tuple[int, int]) -> tuple[int, int]:
    """The one epoch policy of every fine-tune: ``(head_epochs, fine_tune_epochs)``.

    ``"head"`` and ``"full"`` spend every epoch in their single phase; ``"two_phase"``
    spends them all fine-tuning (its linear probe on cached features comes first and
    counts no epochs); ``"probe"`` spends none. A pair is taken as given.

    Raises:
        InputError: For an unknown strategy or a negative or empty epoch count.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not isinstance(epochs, int):
        head, tune = (int(n) for n in epochs)
    elif strategy == "head":
        head, tune = epochs, 0
    elif strategy == "probe":
        head, tune = 0, 0
    else:
        head, tune = 0, epochs
    if head < 0 or tune < 0 or (head + tune < 1 and strategy != "probe"):
        raise InputError(f"epochs must add up to at least 1, got {epochs!r}")
    return head, tune


def _merge(merged: dict[str, list[Any]], history: dict[str, list[float]], phase: str) -> None:
    """Append a phase's epochs; a metric the phase lacks (or only it has) is ``None`` elsewhere."""
    epochs = len(next(iter(history.values()), []))
    before = len(merged.get("phase", []))
    for key in [*merged, *(k for k in history if k not in merged)]:
        if key != "phase":
            merged.setdefault(key, [None] * before).extend(history.get(key, [None] * epochs))
    merged.setdefault("phase", []).extend([phase] * epochs)


def fine_tune(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    strategy: str = "two_phase",
    epochs: int | tuple[int, int] = 10,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
    unfreeze: int | str = 2,
    head_dropout: float = 0.0,
    patience: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    save_every_steps: int | None = None,
    loss: Any = None,
    metrics: list[Any] | None = None,
    verbose: Any = "auto",
) -> FineTuneResult:
    """Fine-tune a classifier: by default a linear probe, then the top blocks with it (LP-FT).

    ``"two_phase"`` (the default): the new head first trains alone on the frozen backbone's
    features, computed once (:func:`probe_head`, a linear probe that costs about one epoch of
    inference), then the top ``unfreeze`` blocks (word embeddings stay frozen) join it for
    every epoch, by SGD with momentum at ``fine_tune_learning_rate``, starting from a head
    that already fits: the probe-then-fine-tune recipe of Kumar et al. 2022, which keeps the
    pretrained features from being torn up by a random head's gradients. ``"probe"`` is the
    probe alone; ``"head"`` trains the head through the frozen backbone (called with
    ``training=False``, so batch norm stays in inference mode) epoch by epoch; ``"full"``
    trains the model as built. Epochs follow :func:`split_epochs` and are fixed: ``val`` is
    measured but picks no weights unless
    ``patience`` asks for early stopping. ``checkpoint_dir`` makes it resumable; call it in
    a ``tf.distribute.Strategy`` scope (where the model was built) to distribute.

    Args:
        model: A classifier with ``pre_logits`` and ``head`` layers (e.g. from
            ``zoo.load(name, num_classes=N)``).
        train: Batched training dataset of ``(x, y)``, or a function ``epoch -> dataset``
            giving each epoch's batches in a deterministic order; with it, a run
            interrupted mid-epoch resumes to the same weights as an uninterrupted run.
        val: Batched validation dataset, or ``None``.
        strategy: One of :data:`STRATEGIES`.
        epochs: Total epochs (see :func:`split_epochs`) or ``(phase1, phase2)``.
        learning_rate: Adam learning rate of the probe and the head (and of ``"full"``).
        fine_tune_learning_rate: Learning rate of phase 2, SGD with momentum 0.9 (default
            :data:`FINE_TUNE_LR`).
        unfreeze: Number of top backbone blocks to unfreeze in phase 2, or ``"all"``.
        head_dropout: Dropout rate added before the head in the composed model.
        patience: Early-stopping patience in epochs (``None``, the default: fixed epochs).
        checkpoint_dir: Folder for resumable checkpoints (written atomically).
        save_every_steps: Also checkpoint every N steps (resume inside an epoch).
        loss: Loss (default: sparse categorical cross-entropy matching the head).
        metrics: Metrics (default: accuracy).
        verbose: Passed to ``fit``.

    Returns:
        A :class:`FineTuneResult`.
    """
    head_epochs, tune_epochs = split_epochs(strategy, epochs)
    common = {
        "loss": loss or default_loss(model),
        "metrics": metrics or ["accuracy"],
        "checkpoint_dir": Path(checkpoint_dir) if checkpoint_dir is not None else None,
        "patience": patience,
        "save_every_steps": save_every_steps,
        "verbose": verbose,
    }
    rates = (learning_rate, fine_tune_learning_rate or FINE_TUNE_LR)
    merged = _run_strategy(
        model, strategy, train, val, (head_epochs, tune_epochs), rates, unfreeze, head_dropout, common
    )
    _make_trainable(model)  # the phases trained the model's own layers (composed shares them)
    return FineTuneResult(model, merged)


def _run_strategy(
    model: Any,
    strategy: str,
    train: Any,
    val: Any,
    epochs: tuple[int, int],
    rates: tuple[float, float],
    unfreeze: int | str,
    head_dropout: float,
    common: dict[str, Any],
) -> dict[str, list[Any]]:
    """The phases of one strategy (see :func:`fine_tune`); returns the merged history."""
    import keras

    merged: dict[str, list[Any]] = {}
    if strategy == "full":
        optimizer = keras.optimizers.Adam(rates[0])
        history = _run_phase(model, "full", train, val, epochs=epochs[1], optimizer=optimizer, **common)
        _merge(merged, history, "full")
        return merged
    composed, backbone = _compose(model, head_dropout)
    if strategy in ("two_phase", "probe"):
        backbone.trainable = False
        head = model.get_layer("head")  # _compose checked that it exists
        _merge(merged, probe_head(backbone, head, train, val, learning_rate=rates[0], common=common), "probe")
    _head_then_blocks(composed, backbone, train, val, epochs, rates, unfreeze, common, merged)
    return merged


#: Optimizer steps of the linear probe (at least :data:`PROBE_MIN_PASSES` passes over the features).
PROBE_STEPS = 1500
PROBE_MIN_PASSES = 10
PROBE_BATCH = 64
#: Phase 2 of ``"two_phase"``: SGD with momentum at this learning rate unless one is given.
FINE_TUNE_LR = 0.02
FINE_TUNE_MOMENTUM = 0.9


def _features_of(backbone: Any, data: Any) -> tuple[Any, Any]:
    """The frozen backbone's features (inference mode) and the labels of every batch of ``data``."""
    feats, labels, run = [], [], predict_fn(backbone)
    for x, y in _batches(data):
        feats.append(np.asarray(run(x), dtype="float32"))
        labels.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(labels)


def _probe_data(backbone: Any, train: Any, val: Any, seed: int) -> tuple[Any, Any]:
    """The probe's training batches (every pass of :data:`PROBE_STEPS`) and validation batches."""
    import tensorflow as tf

    x, y = _features_of(backbone, train(0) if callable(train) else train)
    passes = max(PROBE_MIN_PASSES, -(-PROBE_STEPS * PROBE_BATCH // len(x)))
    data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .repeat(passes)
        .batch(PROBE_BATCH)
    )
    if val is None:
        return data, None
    vx, vy = _features_of(backbone, val)
    return data, tf.data.Dataset.from_tensor_slices((vx, vy)).batch(256)


def probe_head(
    backbone: Any,
    head: Any,
    train: Any,
    val: Any,
    *,
    learning_rate: float,
    common: dict[str, Any],
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``head`` alone on the frozen backbone's features, computed once: a linear probe.

    The features of one pass over ``train`` (``train(0)`` when it is a function) are
    held in memory and the head trains on them for :data:`PROBE_STEPS` Adam steps
    (at least :data:`PROBE_MIN_PASSES` passes), which costs about one epoch of the
    backbone's inference. The whole probe is one "epoch" of the phase runner, so it
    checkpoints and resumes like every phase.
    """
    import keras

    folder = common["checkpoint_dir"]
    finished = folder is not None and (folder / "probe" / "done.weights.h5").is_file()
    data, val_data = (None, None) if finished else _probe_data(backbone, train, val, seed)
    inputs = keras.Input((int(head.kernel.shape[0]),), name="features")
    probe = keras.Model(inputs, head(inputs), name="probe")
    optimizer = keras.optimizers.Adam(learning_rate)
    # Seconds of work: checkpointed when done, rerun whole (to the same weights) if interrupted.
    settings = {**common, "save_every_steps": None, "patience": None}
    return _run_phase(probe, "probe", data, val_data, epochs=1, optimizer=optimizer, **settings)


def _head_then_blocks(
    composed: Any,
    backbone: Any,
    train: Any,
    val: Any,
    epochs: tuple[int, int],
    rates: tuple[float, float],
    unfreeze: int | str,
    common: dict[str, Any],
    merged: dict[str, list[Any]],
) -> None:
    """Phase 1 trains the head on the frozen backbone; phase 2 also the top ``unfreeze`` blocks."""
    import keras

    if epochs[0]:
        backbone.trainable = False
        optimizer = keras.optimizers.Adam(rates[0])
        history = _run_phase(composed, "phase1", train, val, epochs=epochs[0], optimizer=optimizer, **common)
        _merge(merged, history, "head")
    if epochs[1]:
        _unfreeze_top(backbone, unfreeze)
        # SGD, not Adam: its steps scale with the gradients, so a head the probe already fitted
        # moves the pretrained layers little, and a poor fit moves them a lot (Kumar et al. 2022).
        optimizer = keras.optimizers.SGD(rates[1], momentum=FINE_TUNE_MOMENTUM)
        history = _run_phase(composed, "phase2", train, val, epochs=epochs[1], optimizer=optimizer, **common)
        _merge(merged, history, "fine-tune")


def _make_trainable(model: Any) -> None:
    """Undo the phases' freezing on every layer, nested models included."""
    model.trainable = True
    for layer in model.layers:
        layer.trainable = True
        if hasattr(layer, "layers"):
            _make_trainable(layer)


def _compose(model: Any, head_dropout: float) -> tuple[Any, Any]:
    """The classifier as ``head(backbone(x, training=False))``; returns it and its backbone."""
    import keras

    backbone, head = split_backbone(model)
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0]),
        model.input,
    )
    x = backbone(inputs, training=False)
    if head_dropout:
        x = keras.layers.Dropout(head_dropout, name="head_dropout")(x)
    return keras.Model(inputs, head(x), name=model.name), backbone


def _unfreeze_top(backbone: Any, unfreeze: int | str) -> None:
    """Make the top ``unfreeze`` blocks of ``backbone`` (or ``"all"``) trainable, the rest frozen."""
    import keras

    backbone.trainable = True
    blocks = backbone_blocks(backbone)
    keep = len(blocks) if unfreeze == "all" else int(unfreeze)
    for block in blocks[: max(0, len(blocks) - keep)]:
        for layer in block:
            layer.trainable = False
    for layer in backbone.layers:
        # A small training set updates only the rows of the words it holds, moving them away from
        # the rows of every word it lacks: word embeddings stay as pretrained.
        if isinstance(layer, keras.layers.Embedding):
            layer.trainable = False


# --------------------------------------------------------------------------------------
# BERT text classifiers: the same runner, with BERT's optimizer recipe
# --------------------------------------------------------------------------------------

#: Encoder layers train at ``learning_rate / ENCODER_LR_DIVISOR`` (5e-5 for the default 1e-3).
ENCODER_LR_DIVISOR = 20


def bert_blocks(model: Any) -> list[list[Any]]:
    """Group a BERT classifier's weighted layers bottom to top: embeddings, each encoder layer, pooler.

    The ``head`` is not part of any block.
    """
    import re

    blocks: dict[str, list[Any]] = {}
    for layer in model.layers:
        if not layer.weights or layer.name == "head":
            continue
        match = re.match(r"^(embeddings|encoder_layer_\d+|pooler)", layer.name)
        key = match.group(1) if match else layer.name
        blocks.setdefault(key, []).append(layer)
    return list(blocks.values())


def set_trainable_top(model: Any, unfreeze: int | str) -> int:
    """Make the ``head`` and the top ``unfreeze`` blocks of :func:`bert_blocks` trainable, freeze the rest.

    ``unfreeze`` counts the pooler as a block: ``3`` trains the pooler and the two
    top encoder layers; ``"all"`` trains everything. Returns the number of blocks trained.
    """
    blocks = bert_blocks(model)
    keep = len(blocks) if unfreeze == "all" else max(0, min(int(unfreeze), len(blocks)))
    for index, block in enumerate(blocks):
        for layer in block:
            layer.trainable = index >= len(blocks) - keep
    model.get_layer("head").trainable = True
    return keep


def bert_optimizer(learning_rate: float, total_steps: int, *, warmup: float = 0.1) -> Any:
    """AdamW for BERT: linear warm-up to ``learning_rate``, cosine decay, clipnorm 1, no decay on norms."""
    import keras

    total = max(1, int(total_steps))
    warm = max(1, int(total * warmup))
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate / 25,
        decay_steps=max(1, total - warm),
        alpha=1e-4,  # ends at learning_rate / 1e4
        warmup_target=learning_rate,
        warmup_steps=warm,
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def fine_tune_text(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    strategy: str = "two_phase",
    epochs: int | tuple[int, int] = 3,
    learning_rate: float = 1e-3,
    encoder_learning_rate: float | None = None,
    unfreeze: int | str = "all",
    steps_per_epoch: int,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    save_every_steps: int | None = None,
    contrastive: bool = False,
    verbose: Any = "auto",
) -> dict[str, list[float]]:
    """Fine-tune a BERT classifier (``include_top=True``) in place, with the runner of :func:`fine_tune`.

    ``"head"`` trains only the ``head`` at ``learning_rate``; ``"full"`` trains the
    top ``unfreeze`` blocks (see :func:`set_trainable_top`; ``"all"``: the whole
    model) and the head at ``encoder_learning_rate``; ``"probe"`` trains the head on
    the frozen encoder's features (:func:`probe_head`); ``"two_phase"`` runs
    ``"probe"`` then ``"full"``, epochs split by :func:`split_epochs`; with
    ``contrastive`` (sentence-embedding encoders) it is :func:`contrast_encoder` for
    every epoch, then the probe on the new embeddings (SetFit). Each phase
    uses :func:`bert_optimizer`, a fixed number of epochs (the validation split
    picks no weights) and resumes from ``checkpoint_dir`` after an interruption.

    Args:
        model: A zoo BERT model with a classification top.
        train: Batched ``(inputs, label)`` dataset, or a function ``epoch -> dataset``.
        val: Batched validation dataset or ``None``.
        strategy: One of :data:`STRATEGIES`.
        epochs: Total epochs, or ``(head_epochs, encoder_epochs)``.
        learning_rate: Peak learning rate of the head phase.
        encoder_learning_rate: Peak learning rate when encoder layers train
            (default ``learning_rate / ENCODER_LR_DIVISOR``).
        unfreeze: Blocks trained with the encoder learning rate.
        steps_per_epoch: Batches per epoch (for the schedule).
        checkpoint_dir: Folder for resumable checkpoints.
        save_every_steps: Also checkpoint every N steps.
        contrastive: Fine-tune the encoder on sentence pairs first (see :func:`contrast_encoder`).
        verbose: Passed to ``fit``.

    Returns:
        The merged history, with a ``phase`` entry per epoch.
    """
    head_epochs, tune_epochs = split_epochs(strategy, epochs)
    encoder_lr = encoder_learning_rate or learning_rate / ENCODER_LR_DIVISOR
    common = {
        "loss": default_loss(model),
        "metrics": ["accuracy"],
        "checkpoint_dir": Path(checkpoint_dir) if checkpoint_dir is not None else None,
        "patience": None,
        "save_every_steps": save_every_steps,
        "verbose": verbose,
    }
    merged: dict[str, list[Any]] = {}
    if strategy == "two_phase" and contrastive and tune_epochs:
        backbone, _ = split_backbone(model)
        _merge(merged, contrast_encoder(backbone, train, epochs=tune_epochs, common=common), "contrast")
        tune_epochs = 0  # the probe below fits the head on the contrasted embeddings (SetFit)
    if strategy in ("two_phase", "probe"):
        backbone, head = split_backbone(model)
        backbone.trainable = False
        probe = probe_head(backbone, head, train, val, learning_rate=learning_rate, common=common)
        _merge(merged, probe, "probe")
    for phase, n, lr, top in (
        ("head", head_epochs, learning_rate, 0),
        ("encoder", tune_epochs, encoder_lr, unfreeze),
    ):
        if n <= 0:
            continue
        set_trainable_top(model, top)
        optimizer = bert_optimizer(lr, n * steps_per_epoch)
        _merge(merged, _run_phase(model, phase, train, val, epochs=n, optimizer=optimizer, **common), phase)
    _make_trainable(model)
    return merged


#: Contrastive phase: pairs per epoch (at least two per example), batch and AdamW learning rate.
CONTRAST_PAIRS = 3200
CONTRAST_BATCH = 16
CONTRAST_LR = 2e-5


def _token_ids(train: Any) -> tuple[Any, Any]:
    """Every example's right-padded ``input_ids`` (one array) and its label, from ``train(0)``."""
    rows, labels = [], []
    for x, y in _batches(train(0) if callable(train) else train):
        rows.extend(list(np.asarray(x["input_ids"])))
        labels.append(np.asarray(y))
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, np.concatenate(labels)


def sentence_pairs(labels: Any, epoch: int, *, seed: int = 0, pairs: int | None = None) -> Any:
    """One epoch's ``(a, b, same)`` example pairs: half of each label, half across labels.

    Every example is the first of as many same-label as cross-label pairs, at least
    one of each, ``pairs`` in all or more (``CONTRAST_PAIRS``, read when called, if
    ``None``); the draw is a function of ``(seed, epoch)``.
    """
    if pairs is None:
        pairs = CONTRAST_PAIRS
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, epoch])
    per_example = max(1, -(-pairs // (2 * len(labels))))
    rows = []
    for i in np.tile(np.arange(len(labels)), per_example):
        same, other = np.flatnonzero(labels == labels[i]), np.flatnonzero(labels != labels[i])
        if len(same) > 1:
            rows.append((i, rng.choice(same[same != i]), 1.0))
        if len(other):
            rows.append((i, rng.choice(other), 0.0))
    rows = np.array(rows)
    return rows[rng.permutation(len(rows))]


def _pair_model(backbone: Any) -> Any:
    """``cos(backbone(a), backbone(b))`` for two BERT input dicts ``a_*`` and ``b_*``."""
    import keras

    keys = ("input_ids", "token_type_ids", "attention_mask")
    sides = [{k: keras.Input((None,), dtype="int32", name=f"{s}_{k}") for k in keys} for s in "ab"]
    embeddings = [backbone({k: side[k] for k in keys}) for side in sides]
    cosine = keras.layers.Dot(axes=-1, normalize=True, name="cosine")(embeddings)
    return keras.Model({t.name: t for side in sides for t in side.values()}, cosine, name="pairs")


def contrast_encoder(backbone: Any, train: Any, *, epochs: int, common: dict[str, Any], seed: int = 0) -> Any:
    """Fine-tune a sentence encoder contrastively on pairs of the training texts (SetFit).

    Pairs of the same label are pulled to cosine similarity 1 and pairs of different
    labels to 0 (squared error, as SetFit's ``CosineSimilarityLoss``), with AdamW at
    :data:`CONTRAST_LR`, :data:`CONTRAST_PAIRS` pairs per epoch (:func:`sentence_pairs`).
    Few labelled examples make many pairs, which is why it beats training a classifier
    through the encoder when examples are few (Tunstall et al. 2022). A checkpointed phase.
    """
    import keras
    import tensorflow as tf

    from zoo.preprocessing.wordpiece import bert_inputs

    ids, labels = _token_ids(train)
    backbone.trainable = True

    def epoch_pairs(epoch: int) -> Any:
        rows = sentence_pairs(labels, epoch, seed=seed)
        a, b = rows[:, 0].astype(int), rows[:, 1].astype(int)

        def side(prefix: str, x: Any) -> dict[str, Any]:
            return {f"{prefix}_{k}": v for k, v in bert_inputs(x).items()}

        return (
            tf.data.Dataset.from_tensor_slices((ids[a], ids[b], rows[:, 2:3].astype("float32")))
            .batch(CONTRAST_BATCH)
            .map(lambda x, y, same: ({**side("a", x), **side("b", y)}, same))
        )

    optimizer = keras.optimizers.AdamW(CONTRAST_LR, weight_decay=0.01)
    # The loss of pairs is not the classifier's: the merged history keeps it apart.
    settings = {**common, "loss": "mean_squared_error", "metrics": [], "patience": None}
    pairs = _pair_model(backbone)
    history = _run_phase(pairs, "contrast", epoch_pairs, None, epochs=epochs, optimizer=optimizer, **settings)
    return {("pair_loss" if k == "loss" else k): v for k, v in history.items()}


def _labels_if_any(data: str, columns: dict[str, Any], data_dir: str | None) -> dict[str, Any]:
    """``columns`` for text ``data``; a table without the default ``label`` column is read unlabelled.

    Features need no labels: a CSV of sentences alone is embedded, and its archive has no ``labels``.
    """
    import zoo.data
    from zoo.errors import DataError

    if columns.get("label_column", "label") != "label" or not os.path.exists(data):
        return columns
    try:
        zoo.data.info(data, data_dir=data_dir, **columns)
        return columns
    except DataError as labelled_error:
        unlabelled = {"text_column": "text", **columns, "label_column": None}
        try:
            zoo.data.info(data, data_dir=data_dir, **unlabelled)
        except DataError:
            raise labelled_error from None
        return unlabelled


def extract_to_file(
    name: str,
    data: str,
    out: str | os.PathLike[str],
    *,
    split: str = "train",
    layers: list[str] | None = None,
    batch_size: int = 256,
    data_dir: str | None = None,
    overwrite: bool = False,
    forward: Callable[[Any], Any] | None = None,
    columns: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, tuple[int, ...]]]:
    """Extract features of a dataset with pretrained weights and write them to an ``.npz``.

    The entry's preprocessing is used (resized to the model's input when the data
    differs in size); a VAE's features are its latent means and a GAN's its discriminator's
    penultimate layer (see :func:`feature_extractor`). Features go through the on-disk cache
    of :func:`extract_features` (``forward``: another runtime's batch function for the same layers).
    ``out`` follows :mod:`zoo.outputs`: a new file, or with ``overwrite`` one zoo wrote.
    ``columns``: text models on CSV/TSV/JSONL data, ``zoo.data.load``'s ``text_column`` and
    ``label_column``.

    Returns:
        The written path and the shape of each stored array.
    """
    import numpy as np

    import zoo.data
    from zoo import api, outputs
    from zoo.tasks import task_of

    outputs.check_file_target(out, overwrite)  # before any work
    if Path(out).suffix.lower() != ".npz":  # numpy.load and other tools look for the suffix
        raise InputError(f"the features file must end in .npz, got {str(out)!r}")
    entry = api.weights_entry(name)
    task = task_of(entry)
    if task == "language-modeling":
        raise InputError(
            f"{entry.name} ({task}) has no features for zoo extract, which reads classifiers, "
            "encoders and the generative models' image readers: see zoo list --task "
            "image-classification (or text-classification, text-embedding, image-generation)"
        )
    model = api.load(entry.name)
    if task == "text-embedding" and not layers:  # what the encoder is for: its sentence embeddings
        from zoo.tasks.embed import sentence_embedding_model

        model, layers = sentence_embedding_model(model), ["sentence_embedding"]
    if entry.preprocessing.get("type") == "text":  # its vocabulary is the one beside the weights
        from zoo.tasks.text_classify import labelled_text

        options = _labels_if_any(data, dict(columns or {}), data_dir)
        dataset = labelled_text(entry, data, split, batch_size=batch_size, data_dir=data_dir, options=options)
    elif columns:
        raise InputError(f"{entry.name} reads images: table columns are for text models")
    else:
        reader = next(  # what reads the images: a VAE's encoder, a GAN's discriminator
            (
                m
                for m in (getattr(model, "encoder", None), getattr(model, "discriminator", None))
                if m is not None
            ),
            model,
        )
        spec = zoo.data.fit_spec(
            data, split, dict(entry.preprocessing), tuple(reader.input_shape[1:3]), data_dir=data_dir
        )
        dataset = zoo.data.load(
            data, split, preprocessing=spec, as_supervised=True, batch_size=batch_size, data_dir=data_dir
        )
    feats, labels = extract_features(model, dataset, layers=layers, forward=forward)
    feats = feats if isinstance(feats, list) else [feats]
    arrays = {f"features_{i:02d}" if len(feats) > 1 else "features": f for i, f in enumerate(feats)}
    if labels is not None:
        arrays["labels"] = labels
    with outputs.output_file(out, overwrite=overwrite, command=f"zoo extract {entry.name}") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(out), {k: tuple(v.shape) for k, v in arrays.items()}
