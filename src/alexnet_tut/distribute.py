"""Scaling out: the towers' traffic, data parallelism on logical devices, local workers.

Chapter 7 calls these helpers in one line each:

* :func:`tower_crossings` reads, from the two-tower model's graph, which maps
  cross from one GPU to the other and how many values that is per image.
* :func:`allreduce_values`, :func:`conv_fc_split` and :func:`weird_trick_traffic`
  do the arithmetic of data parallelism against Krizhevsky's (2014) "one weird
  trick": data parallel convolutional layers, model parallel dense layers.
* :func:`split_cpu` and :func:`data_parallel_devices` give
  ``tf.distribute.MirroredStrategy`` two devices on a machine with fewer than
  two GPUs, by splitting the CPU into logical devices.
* :func:`demo_model`, :func:`demo_dataset` and :func:`fit_losses` make the
  small, comparable training run that the chapter repeats on one device, on
  two mirrored devices and on two worker processes.
* :func:`run_local_workers` starts a real ``MultiWorkerMirroredStrategy``
  cluster of worker processes on this machine (``python -m
  alexnet_tut.distribute worker``), each with its own ``TF_CONFIG``, and
  returns what every worker reports.

TensorFlow is imported inside the functions that need it, so that the
arithmetic helpers also run under another Keras backend.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import keras
import numpy as np

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet, layer_table

#: Where a layer that belongs to no tower (fc8 in the paper model) runs.
HOME_TOWER = "gpu1"

#: Bytes per value: the paper trained in float32.
BYTES_PER_VALUE = 4

#: The strategies :func:`run_local_workers` can give its workers.
WORKER_STRATEGIES = ("fit_compatible", "tensorflow")

#: The line a worker prints its JSON report after, so that the parent can find it.
RESULT_MARKER = "ALEXNET_TUT_WORKER_RESULT "


class TooLateToSplitError(AlexnetTutError):
    """TensorFlow's runtime has started, so the CPU can no longer be split into devices."""


# --------------------------------------------------------------------------
# Model parallelism: what crosses between the two towers
# --------------------------------------------------------------------------

def _tower(name: str) -> str | None:
    """``"gpu1"`` for ``conv3_gpu1``; ``None`` for a layer of no tower (``fc8``, ``flatten``)."""
    suffix = name.rsplit("_", 1)[-1]
    return suffix if "_" in name and suffix.startswith("gpu") else None


def _inputs(layer) -> list:
    inputs = layer.input
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _consumer_towers(model: keras.Model, layer, home_tower: str) -> set[str]:
    """The towers that use ``layer``'s output, looking through weightless layers.

    ``Flatten`` and ``Dropout`` belong to no tower and hold no weights: the
    tensor passes through them to the layers that compute with it. A layer
    with weights but no tower (``fc8``) runs on ``home_tower``.
    """
    towers: set[str] = set()
    for other in model.layers:
        if not any(t is layer.output for t in _inputs(other)):
            continue
        tower = _tower(other.name)
        if tower is not None:
            towers.add(tower)
        elif other.count_params():
            towers.add(home_tower)
        else:
            towers |= _consumer_towers(model, other, home_tower)
    return towers


def tower_crossings(model: keras.Model, home_tower: str = HOME_TOWER) -> list[dict[str, Any]]:
    """What each GPU sends to the other in one forward pass of one image.

    ``model`` is ``build_alexnet("paper", towers="branches")``: its
    ``Concatenate`` layers (``cross3``, ``cross6``, ``cross7``, ``cross8``) are
    where a layer sees both towers. Every input of such a join that comes from
    one tower and is used by a layer of the other tower has to be copied
    across. A join whose consumer belongs to no tower (``fc8``) is computed on
    ``home_tower``, so only the other tower sends.

    Returns one row per transfer: ``crossing`` (the join), ``tensor`` (the
    layer whose output moves), ``from`` and ``to`` (towers), ``shape``,
    ``values`` and ``bytes`` (float32) per image. The backward pass sends the
    same number of values back: the gradients with respect to those tensors.
    """
    rows = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Concatenate):
            continue
        consumers = _consumer_towers(model, layer, home_tower)
        for tensor in _inputs(layer):
            source = next(o for o in model.layers if o.output is tensor)
            sender = _tower(source.name)
            for receiver in sorted(consumers - {sender}):
                shape = tuple(int(d) for d in tensor.shape[1:])
                rows.append({
                    "crossing": layer.name,
                    "tensor": source.name,
                    "from": sender,
                    "to": receiver,
                    "shape": shape,
                    "values": math.prod(shape),
                    "bytes": math.prod(shape) * BYTES_PER_VALUE,
                })
    if not rows:
        raise AlexnetTutError(
            "no tower crossings found: pass build_alexnet('paper', towers='branches')")
    return rows


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
# A small training run that every strategy repeats
# --------------------------------------------------------------------------

def demo_model(image_size: int = 67, num_classes: int = 4, *, seed: int = 0,
               learning_rate: float = 0.01, dropout: float = 0.0) -> keras.Model:
    """The paper's two-tower model at a small size, compiled with SGD and momentum 0.9 (§5).

    Dropout defaults to 0 so that two runs on the same batches are comparable
    (the masks would differ between strategies). The initial weights depend only
    on ``seed``: the function seeds Python, NumPy and the backend
    (``keras.utils.set_random_seed``) before building, so the model is the
    same in every process. Build it inside ``strategy.scope()`` to train it
    with that strategy.
    """
    keras.utils.set_random_seed(seed)
    model = build_alexnet("paper", input_shape=(image_size, image_size, 3),
                          num_classes=num_classes, dropout=dropout)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    return model


def demo_dataset(steps: int, global_batch: int, image_size: int = 67, num_classes: int = 4,
                 *, seed: int = 0, contrast: float = 32.0):
    """``steps`` batches of ``global_batch`` synthetic images that a network can learn.

    Each class has a colour; an image is half noise and half its class's
    colour, centred on 0 and scaled to [-contrast, contrast]. At the default
    contrast the paper's learning rate lowers the loss within a few steps and
    training stays smooth. Much larger inputs make the steps so large that
    the loss jumps around, and such chaotic training amplifies round-off: two
    runs that differ in the last bit drift apart step by step, which would
    hide what a comparison of two strategies should show. Returns a
    ``tf.data`` dataset of ``(images, labels)`` batches, the same in every
    process.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    count = steps * global_batch
    labels = rng.integers(0, num_classes, size=count).astype("int32")
    palette = rng.uniform(0, 1, size=(num_classes, 3)).astype("float32")
    noise = rng.uniform(0, 1, size=(count, image_size, image_size, 3)).astype("float32")
    images = contrast * (noise + palette[labels][:, None, None, :] - 1)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(global_batch)


def fit_losses(model: keras.Model, dataset, steps: int) -> list[float]:
    """Train ``model`` with ``fit`` for ``steps`` batches and return the loss of each step.

    Keras reports an epoch's running mean, so each "epoch" here is one step
    (``steps_per_epoch=1``); the dataset's iterator carries on across epochs.
    Each loss is the one computed in that step's forward pass, before the
    update. Under a distribution strategy it is the mean over the global batch.
    """
    history = model.fit(dataset, epochs=steps, steps_per_epoch=1, shuffle=False, verbose=0)
    return [float(v) for v in history.history["loss"]]


def custom_loop_losses(strategy, model: keras.Model, dataset, global_batch: int) -> list[float]:
    """Train with a hand-written distributed step and return the global-batch loss of each step.

    This is what ``fit`` does under a strategy, written out: every replica
    computes the loss of its slice of the batch, sums it and divides by the
    *global* batch size (``tf.nn.compute_average_loss``), so that summing the
    replicas' gradients, which the optimizer's all-reduce does, gives the
    gradient of the mean loss over the global batch.
    """
    import tensorflow as tf

    optimizer = model.optimizer
    with strategy.scope():
        optimizer.build(model.trainable_variables)

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_image = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # all-reduces
        return loss

    @tf.function
    def train_step(images, labels):
        per_replica = strategy.run(replica_step, args=(images, labels))
        return strategy.reduce("SUM", per_replica, axis=None)

    return [float(train_step(images, labels))
            for images, labels in strategy.experimental_distribute_dataset(dataset)]


# --------------------------------------------------------------------------
# Several workers: TF_CONFIG and a local cluster
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


def run_local_workers(num_workers: int = 2, *, steps: int = 5, global_batch: int = 16,
                      image_size: int = 67, num_classes: int = 4, seed: int = 0,
                      strategy: str = "fit_compatible", timeout: float = 240) -> list[dict]:
    """Train :func:`demo_model` with ``MultiWorkerMirroredStrategy`` on ``num_workers`` local processes.

    Each worker is ``python -m alexnet_tut.distribute worker`` with its own
    ``TF_CONFIG`` (:func:`tf_config`) on free localhost ports. The workers
    run on the CPU (``CUDA_VISIBLE_DEVICES=-1``, so they do not fight over a
    GPU) and build the same model and the same batches. Each trains it twice
    from the same start: once with :func:`custom_loop_losses`, once with
    ``Model.fit`` (:func:`fit_losses`); tf.data gives each worker its share of
    every global batch. No network beyond localhost is used.

    ``strategy`` is ``"fit_compatible"`` (:func:`multi_worker_strategy`, the
    one ``alexnet-tut train`` uses) or ``"tensorflow"`` (TensorFlow's own
    ``MultiWorkerMirroredStrategy``, under which Keras 3.15's ``fit`` fails).

    Returns each worker's report, in worker order: ``task``, ``replicas``,
    ``local_batch`` (the images of the first global batch this worker got),
    ``losses`` (the global batch's loss at each step of the hand-written
    loop), ``fit`` (``"works"``, or the name of the exception ``fit`` raised),
    ``fit_losses`` (the same for ``fit``; ``None`` if it failed) and
    ``run_dir`` (the folder this worker writes to: the chief ``RUN_DIR``, the
    others ``RUN_DIR/worker<i>``).

    Raises:
        AlexnetTutError: a worker failed, or the cluster did not finish within
            ``timeout`` seconds; the message ends with the worker's last error line.
    """
    if strategy not in WORKER_STRATEGIES:
        raise AlexnetTutError(f"unknown strategy {strategy!r}: choose one of "
                              f"{', '.join(WORKER_STRATEGIES)}")
    cluster = [f"localhost:{port}" for port in free_ports(num_workers)]
    args = ["--steps", str(steps), "--global-batch", str(global_batch),
            "--image-size", str(image_size), "--classes", str(num_classes), "--seed", str(seed),
            "--strategy", strategy]
    with tempfile.TemporaryDirectory(prefix="alexnet-tut-workers-") as tmp:
        logs = [(Path(tmp) / f"worker{i}.out", Path(tmp) / f"worker{i}.err")
                for i in range(num_workers)]
        procs = []
        try:
            for i, (out, err) in enumerate(logs):
                env = {**os.environ, "TF_CONFIG": json.dumps(tf_config(cluster, i)),
                       "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": "-1",
                       "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
                with open(out, "w") as stdout, open(err, "w") as stderr:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "alexnet_tut.distribute", "worker", *args],
                        env=env, stdout=stdout, stderr=stderr))
            _wait_for_workers(procs, logs, timeout)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return [_read_report(i, out, err) for i, (out, err) in enumerate(logs)]


def _wait_for_workers(procs, logs, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        for i, proc in enumerate(procs):
            if proc.poll() not in (None, 0):
                raise AlexnetTutError(
                    f"worker {i} failed (exit status {proc.returncode}): "
                    f"{_last_error(logs[i][1]) or 'no error message'}")
        if time.monotonic() > deadline:
            raise AlexnetTutError(
                f"the {len(procs)} local workers did not finish within {timeout:g} s: "
                "the machine may be busy (pass a larger timeout), or a worker may be "
                "waiting for one that cannot connect")
        time.sleep(0.1)
    for i, proc in enumerate(procs):
        if proc.returncode != 0:
            raise AlexnetTutError(
                f"worker {i} failed (exit status {proc.returncode}): "
                f"{_last_error(logs[i][1]) or 'no error message'}")


def _last_error(path: Path) -> str:
    """The error a worker died with: its last ``...Error: message`` line on stderr.

    Falls back to the last line that is not one of TensorFlow's log lines.
    """
    lines = [l.strip() for l in path.read_text(errors="replace").splitlines()]
    lines = [l for l in lines if l and not l.startswith(("I0000", "W0000", "WARNING: All log"))]
    errors = [l for l in lines if re.match(r"^[\w.]*(Error|Exception)\b", l)]
    found = errors[-1] if errors else lines[-1] if lines else ""
    return found[:300]


def _read_report(index: int, out: Path, err: Path) -> dict:
    for line in out.read_text().splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    raise AlexnetTutError(
        f"worker {index} printed no report: {_last_error(err) or 'no error message'}")


def _worker(args: argparse.Namespace) -> dict:
    """One worker of :func:`run_local_workers`: its ``TF_CONFIG`` is in the environment."""
    import tensorflow as tf

    # The strategy must exist before anything else touches TensorFlow: it
    # starts this worker's server, which the other workers connect to.
    if args.strategy == "fit_compatible":
        strategy = multi_worker_strategy()
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    dataset = demo_dataset(args.steps, args.global_batch, args.image_size, args.classes,
                           seed=args.seed)
    with strategy.scope():
        model = demo_model(args.image_size, args.classes, seed=args.seed)
    first_images, _ = next(iter(strategy.experimental_distribute_dataset(dataset)))
    local_batch = int(strategy.experimental_local_results(first_images)[0].shape[0])
    losses = custom_loop_losses(strategy, model, dataset, args.global_batch)
    report = {
        "task": json.loads(os.environ["TF_CONFIG"])["task"]["index"],
        "replicas": strategy.num_replicas_in_sync,
        "local_batch": local_batch,
        "losses": losses,
        "run_dir": os.path.join("RUN_DIR", worker_suffix()) if worker_suffix() else "RUN_DIR",
    }
    with strategy.scope():
        model = demo_model(args.image_size, args.classes, seed=args.seed)  # the same start
    try:
        report["fit_losses"] = fit_losses(model, dataset, args.steps)
        report["fit"] = "works"
    except Exception as error:  # noqa: BLE001 (reported, not hidden)
        report["fit_losses"] = None
        report["fit"] = type(error).__name__
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alexnet_tut.distribute worker ...``: run one worker and print its report."""
    parser = argparse.ArgumentParser(prog="python -m alexnet_tut.distribute")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="one MultiWorkerMirroredStrategy worker "
                                 "(reads TF_CONFIG)")
    worker.add_argument("--steps", type=int, default=5)
    worker.add_argument("--global-batch", type=int, default=16)
    worker.add_argument("--image-size", type=int, default=67)
    worker.add_argument("--classes", type=int, default=4)
    worker.add_argument("--seed", type=int, default=0)
    worker.add_argument("--strategy", choices=WORKER_STRATEGIES, default=WORKER_STRATEGIES[0],
                        help="fit_compatible: multi_worker_strategy(); tensorflow: "
                        "tf.distribute.MultiWorkerMirroredStrategy as it is")
    args = parser.parse_args(argv)
    if not os.environ.get("TF_CONFIG"):
        print("error: set TF_CONFIG (see alexnet_tut.distribute.tf_config)", file=sys.stderr)
        return 2
    report = _worker(args)
    print(RESULT_MARKER + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
