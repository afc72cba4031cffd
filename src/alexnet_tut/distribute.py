"""Data parallelism: from two GTX 580s to ``tf.distribute``.

Chapter 7 calls these helpers in one line each:

* :func:`allreduce_values`, :func:`conv_fc_split` and :func:`weird_trick_traffic`
  do the arithmetic of data parallelism against Krizhevsky's (2014) "one weird
  trick": data parallel convolutional layers, model parallel dense layers.
* :func:`split_cpu` and :func:`data_parallel_devices` give
  ``tf.distribute.MirroredStrategy`` two devices on a machine with fewer than
  two GPUs, by splitting the CPU into logical devices.
* :func:`tf_config`, :func:`multi_worker_strategy` and :func:`worker_suffix`
  are what a run on several machines needs; `alexnet_tut.workers` starts such
  a cluster of local processes.

TensorFlow is imported inside the functions that need it, so that the
arithmetic helpers also run under another Keras backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Iterator, Sequence

import keras

from alexnet_tut.costs import layer_table
from alexnet_tut.errors import AlexnetTutError


class TooLateToSplitError(AlexnetTutError):
    """TensorFlow's runtime has started, so the CPU can no longer be split into devices."""


# --------------------------------------------------------------------------
# Data parallelism and the one weird trick: communication per step
# --------------------------------------------------------------------------

def allreduce_values(count: int | float, workers: int) -> float:
    """Values each worker sends to all-reduce ``count`` values across ``workers``.

    A ring all-reduce (the bandwidth-optimal algorithm NCCL and TensorFlow's
    collectives use) cuts the vector into ``workers`` pieces, passes partial
    sums around the ring (reduce-scatter), then passes the finished pieces
    around again (all-gather): each worker sends $2 (K - 1) / K$ times the
    vector. That is at most twice the vector, however many workers there are.
    """
    if workers < 1:
        raise AlexnetTutError(f"workers must be at least 1, got {workers}")
    return 2 * (workers - 1) / workers * count


def conv_fc_split(model: keras.Model) -> dict[str, dict[str, int]]:
    """Parameters and multiply-accumulates (per image) of the conv layers and of the fc layers.

    Computed from :func:`alexnet_tut.models.layer_table`: ``Conv2D`` rows
    (grouped ones included) count as ``"conv"``, ``Dense`` rows as ``"fc"``.
    """
    kinds = {"conv": (keras.layers.Conv2D,), "fc": (keras.layers.Dense,)}
    rows = {row["layer"]: row for row in layer_table(model)}
    split = {}
    for part, classes in kinds.items():
        names = [l.name for l in model.layers if isinstance(l, classes)]
        split[part] = {"params": sum(rows[n]["params"] for n in names),
                       "macs": sum(rows[n]["macs"] for n in names)}
    return split


def weird_trick_traffic(model: keras.Model, workers: int, batch_per_worker: int = 128) -> dict:
    """Values each worker sends per training step: pure data parallelism vs the one weird trick.

    * Data parallelism: every worker holds the whole model and all-reduces
      the gradients of all parameters, $2 (K-1)/K \\cdot P$ values, whatever
      the batch.
    * The trick (Krizhevsky 2014): the convolutional layers are data parallel,
      so only their gradients are all-reduced; the dense layers are model
      parallel, worker $k$ computing $1/K$ of every dense layer's units for the
      images of all $K$ workers. Each dense layer then needs its full input
      for all $K b$ images: a worker sends its own $b$ images' fc6 inputs, and
      its slice of the fc6 and fc7 outputs, to the $K-1$ others, in both
      cases $(K-1) \\, b \\, n_{in}$ values; the backward pass sends as many
      gradients back. The dense layers' weights are never exchanged.
      The softmax of the split logits needs a couple of numbers per image
      (a maximum and a sum), which is left out.

    Returns values per worker per step: ``data_parallel``, ``trick_gradients``,
    ``trick_activations``, ``trick`` (their sum), and the parameter counts
    ``params`` and ``conv_params``.
    """
    if batch_per_worker < 1:
        raise AlexnetTutError(f"batch_per_worker must be at least 1, got {batch_per_worker}")
    split = conv_fc_split(model)
    params = model.count_params()
    dense_inputs = sum(int(l.input.shape[-1]) for l in model.layers
                       if isinstance(l, keras.layers.Dense))
    gradients = allreduce_values(split["conv"]["params"], workers)
    activations = 2 * (workers - 1) * batch_per_worker * dense_inputs
    return {
        "workers": workers,
        "batch_per_worker": batch_per_worker,
        "params": params,
        "conv_params": split["conv"]["params"],
        "data_parallel": allreduce_values(params, workers),
        "trick_gradients": gradients,
        "trick_activations": activations,
        "trick": gradients + activations,
    }


# --------------------------------------------------------------------------
# Devices for data parallelism on one machine
# --------------------------------------------------------------------------

def split_cpu(count: int = 2) -> list[str]:
    """Split the CPU into ``count`` logical devices, and return their names.

    ``tf.distribute`` strategies place one replica per device. Without two
    GPUs, TensorFlow can still present the CPU as several logical devices,
    which share the cores but are separate devices to every strategy. This
    must happen before TensorFlow starts its runtime (before the first tensor
    or operation); calling it again with the same ``count`` is harmless.

    Raises:
        TooLateToSplitError: the runtime has already started.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu) or []
    if len(current) != count:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
        except RuntimeError:
            raise TooLateToSplitError(
                f"TensorFlow has already started, so the CPU can no longer be split into "
                f"{count} devices: restart the kernel and run this cell before any other "
                "TensorFlow code") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def data_parallel_devices(count: int = 2) -> list[str]:
    """``count`` devices for data parallelism: GPUs if there are enough, else logical CPUs.

    With fewer than ``count`` GPUs (a laptop, or a Colab runtime with one GPU),
    the devices are logical CPU devices from :func:`split_cpu`, so a one-device
    run and a mirrored run compare like with like.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= count:
        return [d.name for d in tf.config.list_logical_devices("GPU")][:count]
    return split_cpu(count)[:count]


# --------------------------------------------------------------------------
# Several workers: TF_CONFIG
# --------------------------------------------------------------------------

def tf_config(workers: Sequence[str], index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``workers`` (``"host:port"``).

    Every worker gets the same ``cluster`` and its own ``task``. Worker 0 is
    the chief: it does the bookkeeping (checkpoints, logs) as well as its
    share of the training.
    """
    if not 0 <= index < len(workers):
        raise AlexnetTutError(f"worker index {index} is not in a cluster of {len(workers)}")
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports on localhost that are free now (the system picks them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@contextlib.contextmanager
def tf_config_env(config: dict) -> Iterator[None]:
    """Set ``TF_CONFIG`` to ``config`` inside the ``with`` block, and restore it after."""
    before = os.environ.get("TF_CONFIG")
    os.environ["TF_CONFIG"] = json.dumps(config)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TF_CONFIG", None)
        else:
            os.environ["TF_CONFIG"] = before


def multi_worker_strategy():
    """A ``tf.distribute.MultiWorkerMirroredStrategy`` that Keras 3's ``Model.fit`` can train under.

    Keras 3.15's TensorFlow trainer asks the strategy for two reductions that
    ``MultiWorkerMirroredStrategy`` cannot do (keras-team/keras#20585):

    * before the first step it averages a whole ``(images, labels)`` batch,
      a tuple, with one ``strategy.reduce`` call; ``MirroredStrategy`` reduces
      each element of a tuple, the multi-worker strategy only single values;
    * after every step it averages each replica's scalar loss and metrics with
      ``axis=0``, which a scalar does not have.

    This strategy's ``reduce`` does each element on its own, and reduces
    scalars over the replicas alone (``axis=None``), which is the mean that
    was asked for. Everything else is TensorFlow's strategy, unchanged.
    ``tests/test_distribute.py`` checks that ``fit`` under it gives the
    one-device losses, and that ``alexnet-tut train`` runs on two workers.

    Like any ``MultiWorkerMirroredStrategy``, create it before anything else
    touches TensorFlow, with ``TF_CONFIG`` set.
    """
    import tensorflow as tf

    class FitCompatibleMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def reduce_one(item):
                scalar = all(getattr(t, "shape", None) is not None and t.shape.rank == 0
                             for t in self.experimental_local_results(item))
                return super(FitCompatibleMultiWorkerStrategy, self).reduce(
                    reduce_op, item, None if scalar else axis)

            return tf.nest.map_structure(reduce_one, value)

    return FitCompatibleMultiWorkerStrategy()


def worker_suffix() -> str:
    """``""`` on the chief, ``"worker<i>"`` on the other workers named in ``TF_CONFIG``.

    Each worker of a multi-worker run writes its checkpoints to its own folder,
    ``RUN_DIR/<suffix>``, so that no two workers write the same file.
    """
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if task.get("type", "worker") in ("worker", "chief") and int(task.get("index", 0)) == 0:
        return ""
    return f"{task.get('type', 'worker')}{task.get('index', 0)}"
