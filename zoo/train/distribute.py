"""Data-parallel training on the engines Keras documents, chosen by the active backend.

* JAX: ``keras.distribution.DataParallel`` over every device. Several processes
  (one per host, or several on one host) start the way Keras documents it:
  ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator's ``host:port`` first),
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``, read by
  ``keras.distribution.initialize``. Every process runs the same command on the same
  data; Keras gives each its share of every global batch.
* TensorFlow: ``tf.distribute.MirroredStrategy`` over the local devices.
  ``"multiworker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``) is refused:
  ``Model.fit`` of Keras 3 fails under it (keras-team/keras#20585).
* PyTorch: Keras has no distribution API for it; data-parallel is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from zoo.backend import keras_backend
from zoo.errors import InputError

#: Choices of ``zoo finetune --distribute``.
DISTRIBUTE = ("none", "data-parallel", "mirrored")
#: The environment ``keras.distribution.initialize`` reads for a multi-process run.
PROCESS_ENV = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def check_distribute(distribute: str | None) -> str:
    """Return the distribution name (``None`` is ``"none"``) or raise :class:`InputError`.

    Refuses a name that is not in :data:`DISTRIBUTE`, and a combination the active
    backend cannot run, saying which backend can.
    """
    name = distribute or "none"
    backend = keras_backend()
    if name == "multiworker":
        raise InputError(
            "--distribute multiworker is not available: Keras 3's Model.fit fails under "
            "tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585). For several hosts use "
            "--distribute data-parallel with KERAS_BACKEND=jax (see 'Scaling out' in the README)"
        )
    if name not in DISTRIBUTE:
        raise InputError(f"distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    if name == "mirrored" and backend != "tensorflow":
        raise InputError(
            "--distribute mirrored is tf.distribute's and needs KERAS_BACKEND=tensorflow "
            f"(active: {backend}); use --distribute data-parallel"
        )
    if name == "data-parallel" and backend not in ("jax", "tensorflow"):
        raise InputError(
            f"--distribute data-parallel runs on JAX (keras.distribution) or TensorFlow (tf.distribute); "
            f"Keras has no distribution API for {backend}: set KERAS_BACKEND=jax"
        )
    if name == "data-parallel" and backend == "tensorflow" and any(k in os.environ for k in PROCESS_ENV):
        raise InputError(
            "several processes need KERAS_BACKEND=jax: Keras 3's Model.fit fails under "
            "tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585)"
        )
    return name


def process_count() -> int:
    """Processes of this run: ``KERAS_DISTRIBUTION_NUM_PROCESSES``, else 1."""
    raw = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "").strip()
    if not raw:
        return 1
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise InputError(f"KERAS_DISTRIBUTION_NUM_PROCESSES must be a positive whole number, got {raw!r}")
    return count


def join_processes(distribute: str | None) -> None:
    """Join the other processes of a multi-process JAX data-parallel run (once per process).

    Call it first: JAX must be told about the other processes before its first computation.
    A single-process run, or another backend or distribution, does nothing here.
    """
    if check_distribute(distribute) != "data-parallel" or keras_backend() != "jax" or process_count() == 1:
        return
    import jax
    import keras

    if jax.distributed.is_initialized():
        return
    missing = [k for k in PROCESS_ENV if not os.environ.get(k, "").strip()]
    if missing:
        raise InputError(f"a multi-process run needs {', '.join(missing)} as well")
    # CPU devices of different processes talk through gloo; accelerators bring their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize()
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"could not join the other processes: {str(exc).splitlines()[0]}") from exc


@contextlib.contextmanager
def distribution_scope(distribute: str | None) -> Iterator[Any]:
    """Build, compile and train inside this scope to train data-parallel.

    Args:
        distribute: ``None``/``"none"``, ``"data-parallel"`` or ``"mirrored"``.

    Yields:
        The number of replicas (devices over every process) that share each global batch.
    """
    name = check_distribute(distribute)
    backend = keras_backend()
    if name == "none":
        yield 1
    elif backend == "jax":
        import keras

        join_processes(name)
        devices = keras.distribution.list_devices()
        # Set for the process, not a thread-local scope: Keras' JAX trainer prepares batches
        # in worker threads, which must see the same distribution.
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    else:
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        with strategy.scope():
            yield strategy.num_replicas_in_sync
