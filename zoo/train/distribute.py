"""Data-parallel training on the engines Keras documents, chosen by the active backend.

* JAX: ``keras.distribution.DataParallel`` over every device. Several processes
  (one per host, or several on one host) start the way Keras documents it:
  ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator's ``host:port`` first),
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``, read by
  ``keras.distribution.initialize``. Every process runs the same command on the same
  data; Keras gives each its share of every global batch.
* TensorFlow: ``tf.distribute.MirroredStrategy`` over the local devices; with
  ``TF_CONFIG`` set (the cluster's workers and this process's index, as TensorFlow
  documents), ``tf.distribute.MultiWorkerMirroredStrategy`` over every worker. Keras 3's
  ``Model.fit`` fails under the latter (keras-team/keras#20585: it reduces a
  ``PerReplica`` batch eagerly to build the model, and every scalar log over axis 0);
  :func:`fit_ready` gives such a model train and test functions that reduce the logs
  over the replicas only, and skips the eager build (the model is built already).
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


def can_data_parallel(backend: str | None = None) -> bool:
    """Whether ``--distribute data-parallel`` runs on ``backend`` (default: the active one)."""
    return (backend or keras_backend()) in ("jax", "tensorflow")


def check_distribute(distribute: str | None) -> str:
    """Return the distribution name (``None`` is ``"none"``) or raise :class:`InputError`.

    Refuses a name that is not in :data:`DISTRIBUTE`, and a combination the active
    backend cannot run, saying which backend can.
    """
    name = distribute or "none"
    backend = keras_backend()
    if name == "multiworker":
        raise InputError(
            "--distribute multiworker is spelled --distribute data-parallel: with TF_CONFIG set it "
            "runs tf.distribute.MultiWorkerMirroredStrategy (see 'Scaling out' in the README)"
        )
    if name not in DISTRIBUTE:
        raise InputError(f"distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    if name == "mirrored" and backend != "tensorflow":
        raise InputError(
            "--distribute mirrored is tf.distribute's and needs KERAS_BACKEND=tensorflow "
            f"(active: {backend}); use --distribute data-parallel"
        )
    if name == "data-parallel" and not can_data_parallel(backend):
        raise InputError(
            f"--distribute data-parallel runs on JAX (keras.distribution) or TensorFlow (tf.distribute); "
            f"Keras has no distribution API for {backend}: set KERAS_BACKEND=jax"
        )
    if name == "data-parallel" and backend == "tensorflow" and any(k in os.environ for k in PROCESS_ENV):
        raise InputError(
            "KERAS_DISTRIBUTION_* start JAX processes; TensorFlow's workers read TF_CONFIG "
            "(MultiWorkerMirroredStrategy): set TF_CONFIG instead, or KERAS_BACKEND=jax"
        )
    if name == "mirrored" and _tf_config():
        raise InputError(
            "--distribute mirrored is one machine's; with TF_CONFIG set use --distribute data-parallel"
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


def _tf_config() -> bool:
    """Whether ``TF_CONFIG`` describes a cluster of TensorFlow workers."""
    return bool(os.environ.get("TF_CONFIG", "").strip())


#: The process's one MultiWorkerMirroredStrategy (TensorFlow allows one, made before any op).
_TF_WORKERS: list[Any] = []


def _tf_workers() -> Any:
    """The MultiWorkerMirroredStrategy of ``TF_CONFIG``, made once per process."""
    if not _TF_WORKERS:
        import json

        import tensorflow as tf

        try:
            config = json.loads(os.environ["TF_CONFIG"])
            workers = config["cluster"]["worker"]
            index = int(config["task"]["index"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                'TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                f'"task": {{"type": "worker", "index": 0}}}} ({type(exc).__name__}: {exc})'
            ) from exc
        if not 0 <= index < len(workers):
            raise InputError(f"TF_CONFIG's task index {index} is not one of its {len(workers)} workers")
        try:
            _TF_WORKERS.append(tf.distribute.MultiWorkerMirroredStrategy())
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"could not join the other workers: {str(exc).splitlines()[0]}") from exc
    return _TF_WORKERS[0]


def join_processes(distribute: str | None) -> None:
    """Join the other processes of a multi-process data-parallel run (once per process).

    Call it first: JAX must be told about the other processes before its first
    computation, and TensorFlow's MultiWorkerMirroredStrategy must exist before its first
    operation. A single-process run, or another distribution, does nothing here.
    """
    name = check_distribute(distribute)
    if name == "data-parallel" and keras_backend() == "tensorflow" and _tf_config():
        _tf_workers()
        return
    if name != "data-parallel" or keras_backend() != "jax" or process_count() == 1:
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

        if name == "data-parallel" and _tf_config():
            strategy = _tf_workers()
        else:
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        with strategy.scope():
            yield strategy.num_replicas_in_sync


def process_index() -> int:
    """This process's index among the processes of a multi-process run (0 when alone)."""
    if keras_backend() == "tensorflow" and _TF_WORKERS:
        return int(_TF_WORKERS[0].cluster_resolver.task_id or 0)
    if keras_backend() == "jax" and process_count() > 1:
        import jax

        return jax.process_index()
    return 0


def fit_ready(model: Any) -> None:
    """Let a compiled model ``fit`` and ``evaluate`` under MultiWorkerMirroredStrategy.

    Call it after every ``compile`` (which resets the functions set here); any other
    model, backend or strategy is left as it is. Works around keras-team/keras#20585:
    Keras' own step functions reduce every scalar log over axis 0 across workers, and
    ``fit`` first reduces a ``PerReplica`` batch eagerly to build the model. Here the
    logs are averaged over the replicas (their metrics are synchronised), and the model,
    built already, uses the strategy of the scope ``fit`` runs in.
    """
    if keras_backend() != "tensorflow" or not _TF_WORKERS:
        return
    import keras
    import tensorflow as tf

    strategy = _TF_WORKERS[0]
    if getattr(model, "_distribute_strategy", None) is not strategy:
        return

    def make(step: Any) -> Any:
        @tf.function(reduce_retracing=True)
        def one_step(data: Any) -> Any:
            outputs = strategy.run(step, args=(data,))
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), outputs)

        def function(iterator: Any) -> Any:
            data = iterator.get_next_as_optional()
            if not data.has_value():
                raise StopIteration
            return one_step(data.get_value())

        return function

    model.optimizer.build(model.trainable_variables)  # in the strategy's scope, not a replica's
    model._distribute_strategy = None  # private: fit's eager build reads it; fit's scope supplies it
    model.train_function, model.test_function = make(model.train_step), make(model.test_step)
