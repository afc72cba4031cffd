"""A real multi-worker cluster on one machine, and the small training run every strategy repeats.

Chapter 7 trains `demo_model` on `demo_dataset` on one device, on two
mirrored devices and on two worker processes, and compares the losses.
`run_local_workers` starts a ``MultiWorkerMirroredStrategy`` cluster of
worker processes on this machine (``python -m alexnet_tut.workers``), each
with its own ``TF_CONFIG``, and returns what every worker reports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from alexnet_tut.distribute import free_ports, multi_worker_strategy, tf_config, worker_suffix
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet

#: The strategies :func:`run_local_workers` can give its workers.
WORKER_STRATEGIES = ("fit_compatible", "tensorflow")

#: The line a worker prints its JSON report after, so that the parent can find it.
RESULT_MARKER = "ALEXNET_TUT_WORKER_RESULT "


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
# A local cluster
# --------------------------------------------------------------------------

def run_local_workers(num_workers: int = 2, *, steps: int = 5, global_batch: int = 16,
                      image_size: int = 67, num_classes: int = 4, seed: int = 0,
                      strategy: str = "fit_compatible", timeout: float = 240) -> list[dict]:
    """Train :func:`demo_model` with ``MultiWorkerMirroredStrategy`` on ``num_workers`` local processes.

    Each worker is ``python -m alexnet_tut.workers worker`` with its own
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
                        [sys.executable, "-m", "alexnet_tut.workers", "worker", *args],
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
    """``python -m alexnet_tut.workers worker ...``: run one worker and print its report."""
    parser = argparse.ArgumentParser(prog="python -m alexnet_tut.workers")
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
