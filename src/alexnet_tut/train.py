"""Train AlexNet with the paper's recipe (§5), resumable, and ready for GPUs.

The recipe, each choice with the paper section it comes from:

* SGD with momentum 0.9 and batch 128 (§5).
* Weight decay 0.0005 on the weights (§5), in the paper's own update rule
  $v \\leftarrow 0.9 v - 0.0005 \\epsilon w - \\epsilon \\nabla L$,
  $w \\leftarrow w + v$: :class:`PaperSGD` adds $0.0005 w$ to each kernel's
  gradient before the momentum step, so the decay runs through the momentum as
  in the paper. That is the same gradient as a Keras ``L2(0.00025)`` penalty
  (whose gradient is $2 \\cdot 0.00025 w$; ``build_alexnet(weight_decay=5e-4)``
  offers that form), but the logged loss stays the cross-entropy alone, as in
  Caffe's logs.
  ``SGD(weight_decay=...)`` would be decoupled (outside the momentum) and would
  also decay biases, which the paper does not do.
* Learning rate 0.01 for every layer at batch 128, divided by 10 when the
  validation error stops improving, three times in all (§5): Keras's
  ``ReduceLROnPlateau`` with ``factor=0.1`` and ``min_lr`` at a thousandth of
  the start, which allows exactly three reductions. A smaller batch gets a
  proportionally smaller rate ($0.01 \\cdot B / 128$, the linear scaling rule
  of Goyal et al. 2017), so that each image moves the weights as far as in the
  paper; at batch 128 this is the paper's 0.01.
* Weights from N(0, 0.01) and biases 1 in conv2, conv4, conv5, fc6 and fc7
  (§5) as an option (``paper_init=True``). Caffe's reference model found that
  bias 1 left the loss flat and used 0.1 (``paper_bias=0.1``). The default is
  Keras's Glorot initialiser, which trains a fresh model more reliably.
* Dropout 0.5 on fc6 and fc7 (§4.2), in the model.
* Top-1 and top-5 accuracy (§6), and the 10-patch test (§4.1): the softmax
  averaged over the four corner crops, the centre crop and their mirrors.

``recipe="modern"`` is a clearly labelled departure for small datasets and
short runs: a linear learning-rate warm-up over the first epochs and label
smoothing 0.1. The paper's recipe stays the default.

Nothing is lost when a run dies: ``RUN_DIR/backup`` holds the full training
state after every epoch (weights, optimizer slots, learning rate, iteration
count, epoch counter, the plateau schedule's counters), written to a new file
and then switched to with one atomic rename, so a crash leaves the previous
state intact. ``run(..., resume=True)`` continues from there; the history
(``history.csv``) is trimmed to the restored epoch and appended to, so it reads
as one unbroken run. The best model (by validation top-1) is kept as
``best.keras``, also written atomically, and TensorBoard logs go to
``RUN_DIR/tensorboard``.

On a GPU the run uses mixed precision (``mixed_float16`` on compute capability
7.x, such as the T4; ``mixed_bfloat16`` from 8.0, such as the A100, H100 and
H200), XLA (Keras's ``jit_compile="auto"``) and several steps per compiled
call. With more than one GPU it trains data-parallel with
``tf.distribute.MirroredStrategy``. On several machines (``TF_CONFIG`` set)
it trains with ``MultiWorkerMirroredStrategy``, in the form
:func:`alexnet_tut.distribute.multi_worker_strategy` gives, which works around
two reductions that Keras 3's ``fit`` asks of it and TensorFlow's strategy
cannot do (keras-team/keras#20585).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import keras
import numpy as np
from keras import ops

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet
from alexnet_tut.profiles import Profile, get_profile

TRAIN_VARIANTS: tuple[str, ...] = ("paper", "one_tower", "torchvision")

#: Files and folders of a run directory.
BACKUP_DIR = "backup"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
TENSORBOARD_DIR = "tensorboard"
CONFIG_JSON = "config.json"
REPORT_JSON = "report.json"


@dataclass(frozen=True)
class Recipe:
    """The optimisation choices of a run; the defaults are the paper's (§5).

    Attributes:
        name: ``"paper"`` or ``"modern"``.
        learning_rate: starting learning rate at batch ``reference_batch_size``
            (§5: 0.01 for all layers at batch 128).
        reference_batch_size: the batch ``learning_rate`` is for. A run with
            batch $B$ starts at ``learning_rate * B / reference_batch_size``
            (see :meth:`learning_rate_for`).
        momentum: SGD momentum (§5: 0.9).
        weight_decay: the paper's weight decay (§5: 0.0005) on every kernel,
            applied by :class:`PaperSGD` in the paper's update rule.
        lr_factor: what the learning rate is multiplied by on a plateau (§5: 1/10).
        max_lr_reductions: how many times it may be reduced (§5: three).
        plateau_patience: epochs without a better validation top-1 before a
            reduction. The paper does not say; its schedule was set by hand.
        dropout: dropout rate on fc6 and fc7 (§4.2: 0.5).
        paper_init: N(0, 0.01) weights and the paper's biases (§5).
        paper_bias: the bias of conv2, conv4, conv5, fc6 and fc7 under
            ``paper_init`` (§5: 1; Caffe's reference model: 0.1).
        warmup_epochs: linear learning-rate warm-up (not in the paper).
        label_smoothing: cross-entropy label smoothing (not in the paper).
    """

    name: str = "paper"
    learning_rate: float = 0.01
    reference_batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_factor: float = 0.1
    max_lr_reductions: int = 3
    plateau_patience: int = 2
    dropout: float = 0.5
    paper_init: bool = False
    paper_bias: float = 1.0
    warmup_epochs: int = 0
    label_smoothing: float = 0.0

    def learning_rate_for(self, batch_size: int) -> float:
        """The starting learning rate at ``batch_size``: scaled linearly from the reference batch.

        The paper's 0.01 at batch 128 moves the weights by $0.01/128$ of the
        summed gradient per image. Keeping that per-image step at batch 32
        means 0.0025. Without the scaling the `cpu` profile (batch 32)
        diverged in its fourth epoch on the stand-in; with it, it trains.
        """
        return self.learning_rate * batch_size / self.reference_batch_size

    def min_learning_rate(self, batch_size: int) -> float:
        """The floor that lets ``ReduceLROnPlateau`` reduce exactly ``max_lr_reductions`` times."""
        return self.learning_rate_for(batch_size) * self.lr_factor**self.max_lr_reductions


RECIPES: dict[str, Recipe] = {
    # Krizhevsky et al. (2012), §5.
    "paper": Recipe(),
    # NOT the paper: a warm-up and label smoothing, which help a short run on
    # a small dataset such as Imagenette.
    "modern": Recipe(name="modern", warmup_epochs=2, label_smoothing=0.1),
}


def get_recipe(recipe: str | Recipe = "paper", **overrides: Any) -> Recipe:
    """The recipe called ``recipe`` (``"paper"`` or ``"modern"``), with ``overrides`` applied."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise AlexnetTutError(
                f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    try:
        return replace(recipe, **overrides)
    except TypeError as error:
        raise AlexnetTutError(f"bad recipe setting: {error}") from None


# --------------------------------------------------------------------------
# Model, optimizer, metrics
# --------------------------------------------------------------------------

def build_model(variant: str, image_size: int, num_classes: int, recipe: Recipe) -> keras.Model:
    """The AlexNet ``variant`` for ``image_size`` crops, with the recipe's init, dropout and decay."""
    return build_alexnet(
        variant,
        input_shape=(image_size, image_size, 3),
        num_classes=num_classes,
        dropout=recipe.dropout,
        paper_init=recipe.paper_init,
        paper_bias=recipe.paper_bias,
    )  # no L2 penalty in the model: PaperSGD applies the weight decay


def accuracy_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    """Top-1 and top-5 accuracy, named ``top1`` and ``top5`` (§6 reports both as errors).

    With fewer than five classes ``top5`` counts the top ``num_classes``
    guesses, so it is 1 by construction; it keeps its name so that logs and
    reports have the same columns for every dataset.
    """
    return [
        keras.metrics.SparseCategoricalAccuracy(name="top1"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
    ]


@keras.saving.register_keras_serializable(package="alexnet_tut")
class PaperSGD(keras.optimizers.SGD):
    """SGD with momentum and the paper's weight decay (§5) on every kernel.

    The paper's update is $v \\leftarrow 0.9 v - \\lambda \\epsilon w - \\epsilon
    \\nabla L$, $w \\leftarrow w + v$ with $\\lambda = 0.0005$. Keras's SGD
    computes $v \\leftarrow 0.9 v - \\epsilon g$, $w \\leftarrow w + v$, so
    the same step with $g = \\nabla L + \\lambda w$ is the paper's rule exactly.
    While the learning rate is constant, it is also PyTorch's
    ``SGD(weight_decay=λ)``. On TensorFlow the step runs as one XLA-compiled
    function per weight tensor (see :func:`_fused_momentum_step`); other
    backends hand $g$ to Keras's SGD. The decay is added after the gradients
    of all replicas have been summed, so a distributed run decays once, not
    once per replica. Biases are not decayed, as in Caffe's reference model.

    Args:
        learning_rate, momentum: as ``keras.optimizers.SGD``.
        paper_weight_decay: $\\lambda$ (§5: 0.0005).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9,
                 paper_weight_decay: float = 5e-4, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.paper_weight_decay = float(paper_weight_decay)

    def build(self, variables):
        super().build(variables)
        self._decayed = {self._var_key(v) for v in variables if v.path.endswith("kernel")}

    def update_step(self, gradient, variable, learning_rate):
        decay = self.paper_weight_decay if self._var_key(variable) in self._decayed else 0.0
        if keras.backend.backend() == "tensorflow" and self.momentum and not self.nesterov:
            momentum = self.momentums[self._get_variable_index(variable)]
            new_momentum, new_variable = _fused_momentum_step(
                variable, momentum, gradient, learning_rate, self.momentum, decay)
            self.assign(momentum, new_momentum)
            self.assign(variable, new_variable)
            return
        if decay:
            gradient = ops.add(ops.cast(gradient, variable.dtype), ops.multiply(variable, decay))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "paper_weight_decay": self.paper_weight_decay}


def _fused_momentum_step(variable, momentum, gradient, learning_rate, mu: float,
                         decay: float) -> tuple[Any, Any]:
    """The paper's update for one variable as one XLA-compiled TensorFlow function.

    It returns the new momentum $v' = \\mu v - \\epsilon (g + \\lambda w)$ and the
    new weights $w + v'$. Keras's SGD computes the same numbers with one
    TensorFlow op per arithmetic step. Each op reads and writes a whole tensor,
    and fc6 alone has 38 million weights. On a CPU the update took 11 to 14 %
    of the paper model's training step (``tf.profiler``, two cores, batch 32).
    XLA fuses the arithmetic into one pass that reads $g$, $w$, $v$ and
    writes $v'$, $w'$. On JAX the whole training step is compiled already.
    """
    import tensorflow as tf

    dtype = variable.dtype
    step = _xla_momentum_step()
    return step(tf.convert_to_tensor(variable), tf.convert_to_tensor(momentum),
                tf.cast(gradient, dtype), tf.cast(learning_rate, dtype),
                tf.constant(mu, dtype), tf.constant(decay, dtype))


@functools.cache
def _xla_momentum_step():
    """The compiled update, made once per process, so that TensorFlow is imported only here.

    ``reduce_retracing`` lets one trace serve every weight shape; XLA still
    compiles each shape once.
    """
    import tensorflow as tf

    @tf.function(jit_compile=True, reduce_retracing=True)
    def step(variable, momentum, gradient, learning_rate, mu, decay):
        new_momentum = mu * momentum - learning_rate * (gradient + decay * variable)
        return new_momentum, variable + new_momentum

    return step


def compile_model(
    model: keras.Model,
    recipe: Recipe,
    *,
    batch_size: int | None = None,
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile ``model`` with the paper's SGD (§5), cross-entropy on logits, top-1/top-5.

    ``batch_size`` (the global batch) sets the starting learning rate through
    :meth:`Recipe.learning_rate_for`; ``None`` means the recipe's reference
    batch, i.e. the paper's 0.01.

    ``fc8`` returns float32 logits, so the loss uses ``from_logits=True``,
    which is numerically safer than a softmax layer and right under mixed
    precision. Under ``mixed_float16`` Keras wraps the optimizer in a
    ``LossScaleOptimizer`` by itself.
    """
    num_classes = model.output_shape[-1]
    if recipe.label_smoothing:
        # SparseCategoricalCrossentropy has no label smoothing: use one-hot labels.
        loss = _SmoothedSparseCrossentropy(num_classes, recipe.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=PaperSGD(
            learning_rate=recipe.learning_rate_for(batch_size or recipe.reference_batch_size),
            momentum=recipe.momentum,
            paper_weight_decay=recipe.weight_decay,
        ),
        loss=loss,
        metrics=accuracy_metrics(num_classes),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


@keras.saving.register_keras_serializable(package="alexnet_tut")
class _SmoothedSparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing, taking integer labels (``recipe="modern"``)."""

    def __init__(self, num_classes: int, label_smoothing: float, name: str = "smoothed_xent",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"),
                                    self.num_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "label_smoothing": self.label_smoothing}


# --------------------------------------------------------------------------
# Learning-rate schedule
# --------------------------------------------------------------------------

def plateau_callback(recipe: Recipe, batch_size: int | None = None,
                     verbose: int = 0) -> keras.callbacks.ReduceLROnPlateau:
    """Divide the learning rate by 10 when validation top-1 stops improving, at most 3 times (§5).

    ``batch_size`` is the run's global batch (default: the recipe's reference
    batch); the floor is three reductions below that batch's starting rate.
    """
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_top1",
        mode="max",
        factor=recipe.lr_factor,
        patience=recipe.plateau_patience,
        min_lr=recipe.min_learning_rate(batch_size or recipe.reference_batch_size),
        verbose=verbose,
    )


def warmup_callback(recipe: Recipe,
                    batch_size: int | None = None) -> keras.callbacks.LearningRateScheduler | None:
    """``recipe="modern"`` only: ramp the rate linearly to its start value over the first epochs.

    After the warm-up the scheduler returns the current rate unchanged, so the
    plateau schedule is in charge.
    """
    if not recipe.warmup_epochs:
        return None
    warmup = recipe.warmup_epochs
    target = recipe.learning_rate_for(batch_size or recipe.reference_batch_size)

    def schedule(epoch: int, lr: float) -> float:
        return target * (epoch + 1) / warmup if epoch < warmup else lr

    return keras.callbacks.LearningRateScheduler(schedule)


# --------------------------------------------------------------------------
# Checkpoints that survive a crash
# --------------------------------------------------------------------------

class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore``, crash-safe and carrying the callbacks' counters.

    Keras saves the training state (weights with optimizer slots, learning
    rate and iteration count, and the epoch counter) after every epoch and
    restores it when ``fit`` starts again. Two things are added:

    * Atomic writes. Each state goes to a new file, and a small JSON pointer
      (``state.json``) is replaced with ``os.replace``, which is atomic on
      POSIX and Windows. A crash mid-write leaves the previous state in charge.
    * The counters of stateful callbacks, such as ``ReduceLROnPlateau``'s
      ``best``, ``wait`` and ``cooldown_counter``, which Keras's own callback
      does not save, so a resumed run reduces the learning rate exactly when
      the uninterrupted run would have.

    Put it last in the callback list: it must restore the counters after the
    other callbacks reset them in ``on_train_begin``, and save after they
    update them in ``on_epoch_end``.

    With an integer ``save_freq`` it also saves every that many batches; as in
    Keras, a resumed run then restarts the interrupted epoch from those weights.
    """

    STATE_FILE = "state.json"

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 stateful: dict[str, tuple[keras.callbacks.Callback, tuple[str, ...]]] | None = None):
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=False)
        self.stateful = stateful or {}

    @classmethod
    def read_state(cls, backup_dir: str | os.PathLike) -> dict | None:
        """The saved state's metadata (``epoch``, ``weights``, ``callbacks``), or ``None``."""
        path = Path(backup_dir) / cls.STATE_FILE
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def _save_model(self) -> None:
        backup = Path(self.backup_dir)
        backup.mkdir(parents=True, exist_ok=True)
        name = f"epoch{self._current_epoch:05d}-batch{self._last_batch_seen:07d}.weights.h5"
        partial = backup / f"partial-{name}"
        self.model.save_weights(str(partial), overwrite=True)
        _fsync(partial)
        os.replace(partial, backup / name)
        state = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "weights": name,
            "callbacks": {key: {attr: _jsonable(getattr(cb, attr)) for attr in attrs}
                          for key, (cb, attrs) in self.stateful.items()},
            "seeds": {key: keras.ops.convert_to_numpy(generator.state).tolist()
                      for key, generator in _seed_generators(self.model).items()},
        }
        _atomic_write_text(backup / self.STATE_FILE, json.dumps(state, indent=1))
        for old in backup.glob("*.weights.h5"):  # only now is the old state unneeded
            if old.name != name:
                old.unlink(missing_ok=True)

    def _load_model(self) -> None:
        state = self.read_state(self.backup_dir)
        if state is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(Path(self.backup_dir) / state["weights"]))
        self.model._initial_epoch = state["epoch"]  # what Keras's own callback sets
        self._current_epoch = state["epoch"]
        for key, values in state.get("callbacks", {}).items():
            if key in self.stateful:
                callback = self.stateful[key][0]
                for attr, value in values.items():
                    setattr(callback, attr, value)
        generators = _seed_generators(self.model)
        for key, value in state.get("seeds", {}).items():
            if key in generators:
                generators[key].state.assign(np.asarray(value, dtype=generators[key].state.dtype))


def _seed_generators(model: keras.Model) -> dict[str, Any]:
    """The random-number generators of the model's layers (dropout), by layer name.

    Keras does not save their state with the weights; restoring it gives a
    resumed run the same dropout masks as an uninterrupted one.
    """
    return {layer.name: layer.seed_generator for layer in model._flatten_layers()
            if isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator)}


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras's ``ModelCheckpoint``, writing to a temporary file renamed into place."""

    def _save_model(self, epoch, batch, logs):
        final = self._get_file_path(epoch, batch, logs)
        partial = os.path.join(os.path.dirname(final),
                               f"partial-{os.path.basename(final)}")
        template = self.filepath
        self.filepath = partial
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = template
        if os.path.exists(partial):
            _fsync(partial)
            os.replace(partial, final)


def _fsync(path: str | os.PathLike) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _atomic_write_text(path: Path, text: str) -> None:
    partial = path.with_name(f"partial-{path.name}")
    with open(partial, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------
# Speed and history
# --------------------------------------------------------------------------

class Throughput(keras.callbacks.Callback):
    """Add ``epoch_time_s`` and ``images_per_sec`` (training only) to each epoch's logs.

    The clock runs from the start of the epoch to the start of validation, so
    it counts the training steps and the input pipeline but not evaluation.
    Put it before ``CSVLogger`` so that the columns reach the history.
    """

    def __init__(self, images_per_epoch: int):
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self._start = self._train_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._train_end = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self._start is None:
            return
        seconds = (self._train_end or time.perf_counter()) - self._start
        logs["epoch_time_s"] = seconds
        logs["images_per_sec"] = self.images_per_epoch / seconds if seconds > 0 else 0.0


def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The per-epoch history of a run (``history.csv``), one dict per epoch, numbers as floats."""
    path = Path(run_dir) / HISTORY_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            for row in rows]


def _trim_history(path: Path, epochs_done: int) -> None:
    """Keep the rows of the first ``epochs_done`` epochs: later ones were not checkpointed."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if not lines:
        return
    header, body = lines[0], lines[1:]
    kept = [line for line in body if line.strip() and int(line.split(",", 1)[0]) < epochs_done]
    if len(kept) != len(body):
        _atomic_write_text(path, header + "".join(kept))


# --------------------------------------------------------------------------
# Hardware: precision and distribution
# --------------------------------------------------------------------------

def choose_precision() -> str:
    """The Keras dtype policy this machine trains fastest with.

    ``mixed_bfloat16`` on GPUs of compute capability 8.0 and above (A100,
    H100, H200), ``mixed_float16`` on 7.x (V100, T4: tensor cores without
    bfloat16), and ``float32`` on older GPUs and on CPUs, where TensorFlow
    warns that mixed precision is slow.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "float32"
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = tuple(details.get("compute_capability") or (0, 0))
    if capability >= (8, 0):
        return "mixed_bfloat16"
    if capability >= (7, 0):
        return "mixed_float16"
    return "float32"


def choose_strategy():
    """The ``tf.distribute`` strategy for this machine (or these machines).

    * ``TF_CONFIG`` set (several machines): ``MultiWorkerMirroredStrategy``.
      Each machine runs the same program with its own ``TF_CONFIG``, e.g. on
      the first of two::

          TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                      "task": {"type": "worker", "index": 0}}'

      and ``"index": 1`` on the second. Worker 0 (the chief) writes the run
      folder; the others write ``<folder>/worker<i>``
      (:func:`alexnet_tut.distribute.worker_suffix`).
      The batch size is the global one, split across all replicas. The
      strategy is :func:`alexnet_tut.distribute.multi_worker_strategy`, which
      ``Model.fit`` can train under in Keras 3.
    * More than one GPU: ``MirroredStrategy`` (data parallelism, one replica
      per GPU, gradients summed with all-reduce).
    * Otherwise the default strategy (one device).
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        from alexnet_tut.distribute import multi_worker_strategy

        return multi_worker_strategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------

def ten_crop_top1(model: keras.Model, ten_crop_dataset: Iterable) -> float:
    """Top-1 accuracy of the 10-patch test (§4.1): softmax averaged over 10 crops per image.

    ``ten_crop_dataset`` yields ``(patches [B, 10, S, S, 3], labels [B])``.
    """
    correct = total = 0
    for patches, labels in _as_numpy(ten_crop_dataset):
        probabilities = ten_crop_probabilities(model, patches)
        correct += int(np.sum(np.argmax(probabilities, axis=-1) == np.asarray(labels)))
        total += len(labels)
    return correct / total if total else math.nan


def ten_crop_probabilities(model: keras.Model, patches: np.ndarray) -> np.ndarray:
    """Class probabilities ``[B, classes]``: the mean softmax over each image's 10 patches."""
    patches = np.asarray(patches)
    batch, crops = patches.shape[:2]
    flat = patches.reshape((-1,) + patches.shape[2:])
    if _multi_worker(getattr(model, "distribute_strategy", None)):
        # predict_on_batch would split the patches across the workers, and
        # its answer here is wrong (a 10-crop top-1 of 12.5 % for weights that
        # score 41.7 % on one device); each worker scores all patches instead.
        logits = np.asarray(keras.ops.convert_to_numpy(model(flat, training=False)),
                            dtype="float64")
    else:
        logits = np.asarray(model.predict_on_batch(flat), dtype="float64")
    logits -= logits.max(axis=-1, keepdims=True)
    softmax = np.exp(logits)
    softmax /= softmax.sum(axis=-1, keepdims=True)
    return softmax.reshape(batch, crops, -1).mean(axis=1)


def _multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several worker processes (``TF_CONFIG``)."""
    if keras.backend.backend() != "tensorflow" or strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _as_numpy(dataset: Iterable) -> Iterable:
    return dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else dataset


# --------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------

def run(
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    variant: str = "paper",
    epochs: int | None = None,
    batch_size: int | None = None,
    profile: str | Profile | None = None,
    resume: bool = False,
    recipe: str | Recipe = "paper",
    precision: str | None = None,
    jit_compile: bool | str = "auto",
    steps_per_execution: int | None = None,
    checkpoint_every_steps: int | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    seed: int = 0,
    verbose: int | str = "auto",
) -> dict:
    """Train one AlexNet with the paper's recipe, and return (and save) its report.

    Args:
        data_dir: an ImageNet-layout folder (``train/<class>/``, ``val/<class>/``);
            ``None`` picks the data as ``alexnet_tut.data.resolve_source`` does.
        out_dir: the run folder: ``backup/`` (the resumable state),
            ``best.keras``, ``history.csv``, ``tensorboard/``, ``config.json``
            and ``report.json``.
        variant: ``"paper"`` (two towers), ``"one_tower"`` or ``"torchvision"``.
        epochs, batch_size: default to the profile's.
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"``, ``"auto"`` or a :class:`Profile`;
            default ``$ALEXNET_TUT_PROFILE``, else ``auto``.
        resume: continue the run in ``out_dir`` from its last saved epoch.
            Without it, ``out_dir`` must not already hold a run.
        recipe: ``"paper"`` (default), ``"modern"``, or a :class:`Recipe`.
        precision: a Keras dtype policy; default :func:`choose_precision`.
        jit_compile: passed to ``Model.compile`` (``"auto"``: XLA on GPUs).
        steps_per_execution: batches per compiled call; default 16 on a GPU
            (a step takes milliseconds there), 1 on a CPU.
        checkpoint_every_steps: also save the state every this many batches.
        callbacks: extra Keras callbacks (run before the checkpointing ones).
        seed: seeds Python, NumPy and the backend, and the data order.
        verbose: ``fit``'s verbosity; 0 also silences the start-up summary.

    Returns:
        The report (also written to ``out_dir/report.json``): ``top1``,
        ``top5`` and ``ten_crop_top1`` on the validation set, ``images_per_sec``,
        ``wall_time_s``, the data source, the profile and the epochs.
    """
    started = time.perf_counter()
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    recipe = get_recipe(recipe)
    epochs = prof.epochs if epochs is None else epochs
    batch_size = prof.batch_size if batch_size is None else batch_size
    _check_arguments(variant, epochs, batch_size, checkpoint_every_steps)
    say = print if verbose not in (0, False) else (lambda *a, **k: None)

    import tensorflow as tf  # noqa: F401  (tf.data and tf.distribute)

    from alexnet_tut import data

    strategy = choose_strategy()  # first: a multi-worker strategy starts this worker's server
    out = Path(out_dir)
    if os.environ.get("TF_CONFIG"):
        from alexnet_tut.distribute import worker_suffix

        out = out / worker_suffix()  # the chief writes out_dir, worker i out_dir/worker<i>
    config = {"variant": variant, "profile": prof.name, "image_size": prof.image_size,
              "resize": prof.resize, "batch_size": batch_size, "recipe": asdict(recipe),
              "seed": seed}
    _check_run_dir(out, config, resume)

    source = data.resolve_source(prof, Path(data_dir) if data_dir is not None else None)
    keras.utils.set_random_seed(seed)
    datasets = data.load_profile_datasets(source.root, prof, batch_size=batch_size, seed=seed)
    num_classes = len(datasets.class_names)
    if datasets.num_train == 0 or datasets.num_val == 0:
        raise AlexnetTutError(f"no training or validation images in {source.root}")
    train_data = _with_known_length(datasets.train, math.ceil(datasets.num_train / batch_size))
    val_data = _with_known_length(datasets.val, math.ceil(datasets.num_val / batch_size))
    _write_config(out, config)

    precision = precision or choose_precision()
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    if steps_per_execution is None:
        steps_per_execution = 16 if on_gpu else 1

    state = ResumableBackup.read_state(out / BACKUP_DIR)
    done = state["epoch"] if state else 0
    _check_workers_agree(strategy, done)
    if resume and state is None:
        say(f"nothing to resume in {out}: starting a new run")
    say(f"data: {source.description}")
    say(f"profile: {prof.name} ({prof.image_size}px crops of {prof.resize}px images, "
        f"batch {batch_size}, {epochs} epochs); {datasets.num_train} training and "
        f"{datasets.num_val} validation images, {num_classes} classes")
    say(f"model: {variant}; recipe: {recipe.name} (learning rate "
        f"{recipe.learning_rate_for(batch_size):g} at batch {batch_size}); precision: {precision}; "
        f"replicas: {strategy.num_replicas_in_sync}"
        + (f"; resuming after epoch {done}" if done else ""))

    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        with strategy.scope():
            model = build_model(variant, prof.image_size, num_classes, recipe)
            compile_model(model, recipe, batch_size=batch_size, jit_compile=jit_compile,
                          steps_per_execution=steps_per_execution)
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)

    if 0 < done < epochs:  # a finished run trains no more, so needs no replay
        say(f"replaying the data order of the {done} finished epoch(s)")
        _fast_forward(train_data, done)

    history_path = out / HISTORY_CSV
    _trim_history(history_path, done)
    past = read_history(out)
    best_so_far = max((row.get("val_top1", -1.0) for row in past), default=None)

    plateau = plateau_callback(recipe, batch_size, verbose=1 if say is print else 0)
    scheduled = [cb for cb in (warmup_callback(recipe, batch_size),) if cb is not None]
    all_callbacks = [
        *callbacks,
        *scheduled,
        plateau,
        Throughput(datasets.num_train),
        keras.callbacks.CSVLogger(str(history_path), append=True),
        *tensorboard_callbacks(out / TENSORBOARD_DIR),
        AtomicModelCheckpoint(str(out / BEST_MODEL), monitor="val_top1", mode="max",
                              save_best_only=True, initial_value_threshold=best_so_far),
        ResumableBackup(out / BACKUP_DIR, save_freq=checkpoint_every_steps or "epoch",
                        stateful={"plateau": (plateau, ("best", "wait", "cooldown_counter"))}),
    ]
    model.fit(train_data, validation_data=val_data, epochs=epochs, shuffle=False,
              callbacks=all_callbacks, verbose=verbose)

    report = _report(model, datasets, val_data, out, source, prof, variant, recipe, epochs, batch_size,
                     precision, strategy.num_replicas_in_sync, done, started)
    _atomic_write_text(out / REPORT_JSON, json.dumps(report, indent=2))
    say(format_report(report))
    return report


def _check_workers_agree(strategy, done: int) -> None:
    """Refuse to resume a multi-worker run whose workers saved different epochs.

    Every worker restores its own backup. The workers save at the end of the
    same epoch, but a crash can fall between two of them saving; resuming from
    different epochs would train different models in lockstep, or hang.
    """
    if not _multi_worker(strategy):
        return
    import tensorflow as tf

    mine = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant([done], dtype=tf.int32))
    epochs = [int(e) for e in strategy.gather(mine, axis=0).numpy()]
    if min(epochs) != max(epochs):
        raise AlexnetTutError(
            f"cannot resume: the workers' backups end at different epochs {sorted(set(epochs))}; "
            f"copy the backup/ folder of a worker at epoch {max(epochs)} over the others' "
            "(all workers hold the same weights after the same epoch), then --resume again")


def tensorboard_callbacks(log_dir: Path) -> list[keras.callbacks.Callback]:
    """Keras's ``TensorBoard`` callback (per-epoch scalars), if the ``tensorboard`` package is installed.

    TensorFlow 2.21 no longer installs TensorBoard itself; without it the run
    still has the CSV history.
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return []
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)]


def _check_arguments(variant: str, epochs: int, batch_size: int,
                     checkpoint_every_steps: int | None) -> None:
    if variant not in TRAIN_VARIANTS:
        raise AlexnetTutError(
            f"unknown variant {variant!r}: choose one of {', '.join(TRAIN_VARIANTS)}")
    if not isinstance(epochs, int) or epochs < 1:
        raise AlexnetTutError(f"--epochs must be a whole number of at least 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise AlexnetTutError(
            f"--batch-size must be a whole number of at least 1, got {batch_size!r}")
    if checkpoint_every_steps is not None and checkpoint_every_steps < 1:
        raise AlexnetTutError("checkpoint_every_steps must be at least 1")


def _check_run_dir(out: Path, config: dict, resume: bool) -> None:
    """Refuse to overwrite a run, or to resume one with different settings."""
    if out.exists() and not out.is_dir():
        raise AlexnetTutError(f"--out {out} is a file, not a folder")
    config_path = out / CONFIG_JSON
    if not config_path.exists():
        return
    if not resume:
        raise AlexnetTutError(
            f"{out} already holds a training run: pass --resume to continue it, "
            "or choose another --out")
    before = json.loads(config_path.read_text())
    for key, value in config.items():
        if before.get(key) != value:
            raise AlexnetTutError(
                f"cannot resume {out}: it was started with {key}={before.get(key)!r}, "
                f"not {value!r}")


def _write_config(out: Path, config: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_JSON).exists():
        _atomic_write_text(out / CONFIG_JSON, json.dumps(config, indent=2))


def _fast_forward(dataset, epochs: int) -> None:
    """Draw ``epochs`` passes from ``dataset`` without training, so the next pass is a new one.

    The pipeline reshuffles and redraws its crops, mirrors and colour shifts on
    every pass. A resumed run that started its data from the first pass again
    would train on exactly the batches it has already seen (and fits them far
    too well). Replaying the passes costs input-pipeline time only, and gives
    the batches an uninterrupted run would have seen.
    """
    for _ in range(epochs):
        for _ in dataset:
            pass


def _with_known_length(dataset, steps: int):
    """Tell tf.data how many batches an epoch has, so that the first epoch has a progress bar.

    The data module's scan has already left out unreadable files, so the
    count is exact.
    """
    import tensorflow as tf

    if int(dataset.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY):
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))
    return dataset


def _report(model, datasets, val_data, out, source, prof, variant, recipe, epochs, batch_size,
            precision, replicas, resumed_from, started) -> dict:
    results = model.evaluate(val_data, verbose=0, return_dict=True)
    history = read_history(out)
    speeds = [row["images_per_sec"] for row in history if "images_per_sec" in row]
    steady = speeds[1:] or speeds  # the first epoch includes compilation
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return {
        "top1": float(results["top1"]),
        "top5": float(results["top5"]),
        "ten_crop_top1": ten_crop_top1(model, datasets.val_ten_crop),
        "val_loss": float(results["loss"]),
        "best_val_top1": max((row["val_top1"] for row in history), default=math.nan),
        "images_per_sec": float(np.median(steady)) if steady else math.nan,
        "wall_time_s": time.perf_counter() - started,
        "train_time_s": float(sum(row.get("epoch_time_s", 0.0) for row in history)),
        "epochs": epochs,
        "epochs_in_history": len(history),
        "resumed_from_epoch": resumed_from,
        "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "learning_rate": learning_rate,
        "lr_reductions": int(round(math.log(recipe.learning_rate_for(batch_size) / learning_rate)
                                   / math.log(1 / recipe.lr_factor))) if learning_rate else 0,
        "data_source": source.description,
        "data_kind": source.kind,
        "profile": prof.name,
        "variant": variant,
        "recipe": recipe.name,
        "image_size": prof.image_size,
        "batch_size": batch_size,
        "num_train": datasets.num_train,
        "num_val": datasets.num_val,
        "num_classes": len(datasets.class_names),
        "precision": precision,
        "replicas": replicas,
        "keras_backend": keras.backend.backend(),
        "run_dir": str(out),
    }


def format_report(report: dict) -> str:
    """The report as a few human lines."""
    return (
        f"validation top-1 {report['top1']:.1%}, top-5 {report['top5']:.1%}, "
        f"10-crop top-1 {report['ten_crop_top1']:.1%} "
        f"({report['num_val']} images, {report['num_classes']} classes)\n"
        f"{report['epochs_in_history']} epochs, {report['images_per_sec']:.1f} training images/s, "
        f"wall time {report['wall_time_s']:.1f} s; report: "
        f"{Path(report['run_dir']) / REPORT_JSON}"
    )
