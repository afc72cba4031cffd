"""The solver: the paper's SGD (§5), its learning-rate schedule, the loss, and ``compile_model``.

It carries out a `alexnet_tut.recipe.Recipe`, as Caffe's solver carries out
the ``base_lr``, ``lr_policy``, ``momentum`` and ``weight_decay`` of its
solver file:

* `PaperSGD`: momentum SGD with the weight decay inside the momentum update,
  as §5 writes the rule.
* `LearningRateSchedule`: the whole schedule of a run, in one callback: the
  start scaled from the paper's batch of 128, the optional warm-up, and the
  division by 10 on plateaus, three times at most.
* `compile_model`: the optimizer, cross-entropy on logits (label-smoothed for
  ``recipe="modern"``) and top-1/top-5 accuracy on a model.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from alexnet_tut import speedups
from alexnet_tut.internals import momentum_slot
from alexnet_tut.models import build_alexnet
from alexnet_tut.recipe import Recipe


# --------------------------------------------------------------------------
# The learning-rate schedule, all of it
# --------------------------------------------------------------------------

class LearningRateSchedule(keras.callbacks.ReduceLROnPlateau):
    """The learning rate of a run, from its first step to its last (§5), in one callback.

    1. **Start.** The paper's 0.01 is for batches of 128. A run with batch
       $B$ starts at $0.01 \\cdot B / 128$ (`starting_rate`), so that each
       image moves the weights as far as in the paper (the linear scaling rule
       of Goyal et al. 2017); at batch 128 it is the paper's 0.01.
    2. **Warm-up** (``recipe="modern"`` only): over the first
       ``warmup_epochs`` epochs the rate climbs linearly to its start value.
    3. **Plateaus.** When the validation top-1 has not improved for
       ``plateau_patience`` epochs, the rate is divided by 10 (Keras's
       ``ReduceLROnPlateau``), at most three times: the floor is three
       divisions below the start.

    Its counters (the best top-1 so far, epochs waited) are part of a run's
    checkpoint: `get_state` gives them, `restore` puts them back before
    training continues, so that a resumed run divides the rate exactly when
    the uninterrupted run would have. `reductions` counts the divisions made.
    """

    def __init__(self, recipe: Recipe, batch_size: int | None = None, *, verbose: int = 0):
        self.recipe = recipe
        self.initial = self.starting_rate(recipe, batch_size)
        self.floor = self.initial * recipe.lr_factor ** recipe.max_lr_reductions
        super().__init__(monitor="val_top1", mode="max", factor=recipe.lr_factor,
                         patience=recipe.plateau_patience, min_lr=self.floor, verbose=verbose)
        self._restored: dict | None = None

    @staticmethod
    def starting_rate(recipe: Recipe, batch_size: int | None = None) -> float:
        """The rate a run with ``batch_size`` (default the recipe's reference) starts at."""
        return recipe.learning_rate * (batch_size or recipe.reference_batch_size) \
            / recipe.reference_batch_size

    def get_state(self) -> dict:
        """The counters a checkpoint keeps: ``best``, ``wait``, ``cooldown_counter``."""
        return {"best": _jsonable(self.best), "wait": int(self.wait),
                "cooldown_counter": int(self.cooldown_counter)}

    def restore(self, state: dict | None) -> None:
        """Continue from a checkpoint's `get_state` when training (re)starts."""
        self._restored = dict(state) if state else None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the counters
        if self._restored:
            best = self._restored.get("best")
            self.best = self.best if best is None else best
            self.wait = self._restored.get("wait", 0)
            self.cooldown_counter = self._restored.get("cooldown_counter", 0)

    def on_epoch_begin(self, epoch, logs=None):
        warmup = self.recipe.warmup_epochs
        if epoch < warmup:
            self.model.optimizer.learning_rate = self.initial * (epoch + 1) / warmup

    def reductions(self, learning_rate: float) -> int:
        """How many times the rate was divided to reach ``learning_rate``."""
        if not learning_rate:
            return 0
        return int(round(math.log(self.initial / learning_rate) / math.log(1 / self.recipe.lr_factor)))


def _jsonable(value: Any) -> Any:
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------
# Optimizer, loss, metrics, model
# --------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="alexnet_tut")
class PaperSGD(keras.optimizers.SGD):
    """SGD with momentum and the paper's weight decay (§5) on every kernel.

    The paper's update is $v \\leftarrow 0.9 v - \\lambda \\epsilon w - \\epsilon
    \\nabla L$, $w \\leftarrow w + v$ with $\\lambda = 0.0005$. Keras's SGD
    computes $v \\leftarrow 0.9 v - \\epsilon g$, $w \\leftarrow w + v$, so
    the same step with $g = \\nabla L + \\lambda w$ is the paper's rule
    exactly. While the learning rate is constant, it is also PyTorch's
    ``SGD(weight_decay=λ)``. The decay goes on every weight tensor with two
    or more axes (the kernels), not on the biases, as in Caffe's reference
    model. It is added after the gradients of all replicas have been summed,
    so a distributed run decays once, not once per replica. On TensorFlow the
    step runs as one fused function per tensor
    (`alexnet_tut.speedups.fused_momentum_update`) unless the speed-ups are off.

    Args:
        learning_rate, momentum: as ``keras.optimizers.SGD``.
        paper_weight_decay: $\\lambda$ (§5: 0.0005).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9,
                 paper_weight_decay: float = 5e-4, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.paper_weight_decay = float(paper_weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        decay = self.paper_weight_decay if len(variable.shape) >= 2 else 0.0
        if speedups.enabled() and self.momentum and not self.nesterov:
            momentum = momentum_slot(self, variable)
            new_momentum, new_variable = speedups.fused_momentum_update(
                variable, momentum, gradient, learning_rate, self.momentum, decay)
            self.assign(momentum, new_momentum)
            self.assign(variable, new_variable)
            return
        if decay:
            gradient = ops.add(ops.cast(gradient, variable.dtype), ops.multiply(variable, decay))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "paper_weight_decay": self.paper_weight_decay}


@keras.saving.register_keras_serializable(package="alexnet_tut")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy on logits with label smoothing, taking integer labels."""

    def __init__(self, num_classes: int, label_smoothing: float, name: str = "smoothed_xent",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "label_smoothing": self.label_smoothing}


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


def build_model(variant: str, image_size: int, num_classes: int, recipe: Recipe) -> keras.Model:
    """The AlexNet ``variant`` for ``image_size`` crops, with the recipe's init and dropout.

    No L2 penalty goes into the model: `PaperSGD` applies the weight decay.
    """
    return build_alexnet(
        variant,
        input_shape=(image_size, image_size, 3),
        num_classes=num_classes,
        dropout=recipe.dropout,
        paper_init=recipe.paper_init,
        paper_bias=recipe.paper_bias,
    )


def compile_model(
    model: keras.Model,
    recipe: Recipe,
    *,
    batch_size: int | None = None,
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile ``model`` with the paper's SGD (§5), cross-entropy on logits, top-1/top-5.

    ``batch_size`` (the global batch) sets the starting learning rate
    (`LearningRateSchedule.starting_rate`); ``None`` means the recipe's
    reference batch, the paper's 0.01. ``fc8`` returns float32 logits, so the
    loss uses ``from_logits=True``, which is numerically safer than a softmax
    layer and right under mixed precision. Under ``mixed_float16`` Keras
    wraps the optimizer in a ``LossScaleOptimizer`` by itself.
    """
    num_classes = model.output_shape[-1]
    if recipe.label_smoothing:
        loss = SmoothedSparseCrossentropy(num_classes, recipe.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=PaperSGD(
            learning_rate=LearningRateSchedule.starting_rate(recipe, batch_size),
            momentum=recipe.momentum,
            paper_weight_decay=recipe.weight_decay,
        ),
        loss=loss,
        metrics=accuracy_metrics(num_classes),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
