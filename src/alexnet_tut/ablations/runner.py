"""Chapter 04's runner: configurations trained on the same data, batch order and initial weights,
over several seeds (`run_configs`), every evaluation in one table (`Runs`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet_tut.errors import AlexnetTutError

if TYPE_CHECKING:  # only for the annotations: importing them is slow
    import keras

from alexnet_tut.ablations.data import Budget, SmallImages
from alexnet_tut.ablations.network import build_small_alexnet


# --------------------------------------------------------------------------- the runner

def batch_order(seed: int, epoch: int, num_images: int) -> np.ndarray:
    """The order in which one epoch shows the training images: a permutation fixed by seed and epoch.

    It depends on nothing else, so every configuration trained with a seed
    sees the same batches in the same order.
    """
    return np.random.default_rng([seed, epoch]).permutation(num_images)


def _digest(arrays: Iterable[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _weights_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [np.array(w) for w in layer.get_weights()]
            for layer in model.layers if layer.weights}


def _share_initial_weights(model, donor: Mapping[str, list[np.ndarray]]) -> list[str]:
    """Give ``model`` the donor's initial weights in every layer whose name and shapes match."""
    shared = []
    for layer in model.layers:
        weights = donor.get(layer.name)
        if weights is None or not layer.weights:
            continue
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            shared.append(layer.name)
    return shared


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray, batch: int = 500) -> tuple[float, float]:
    """Mean cross-entropy and error of ``model`` on ``(x, y)`` in inference mode (no dropout)."""
    losses, wrong = [], 0
    for start in range(0, len(x), batch):
        logits = np.asarray(model(x[start:start + batch], training=False), dtype=np.float64)
        labels = y[start:start + batch]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(-log_probs[np.arange(len(labels)), labels])
        wrong += int(np.sum(np.argmax(logits, axis=1) != labels))
    return float(np.mean(np.concatenate(losses))), wrong / len(x)


@dataclass
class Runs:
    """What `run_configs` trained: the histories as one table, and what makes the comparison fair.

    Attributes:
        history: a `pandas.DataFrame`, one row per evaluation: ``config``,
            ``seed``, ``epoch`` (fractional), ``step``; ``running_error``
            (the error on the batches trained since the previous row,
            measured as they were trained, dropout on: what a training log
            shows); ``train_loss`` and ``train_error`` (inference mode, on a
            fixed set of training images), ``val_loss`` and ``val_error``
            (``NaN`` where not measured); and ``seconds`` (training time so
            far, evaluations left out).
        initial_weights: ``(config, seed)`` -> {layer: digest of its initial weights}.
        batch_order: ``(config, seed)`` -> digest of the image indices of every batch, in order.
        shared_layers: ``(config, seed)`` -> the layers that started from the
            first configuration's weights.
        models: ``(config, seed)`` -> the trained Keras model.
    """

    history: Any
    initial_weights: dict
    batch_order: dict
    shared_layers: dict
    models: dict

    def table(self, *configs: str):
        """The history of some configurations only, in the order given."""
        import pandas as pd

        return pd.concat([self.history[self.history["config"] == c] for c in configs],
                         ignore_index=True)


def _train_one(arguments: dict, learning_rate: float, seed: int, donor, data: SmallImages,
               budget: Budget, epochs: int, evaluations: int, measure_val: bool,
               train_eval_images: int):
    """One run: build, share the donor's weights, train in the seed's batch order, evaluate."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_small_alexnet(**arguments)
    shared = list(_weights_by_layer(model)) if donor is None else _share_initial_weights(model, donor)
    initial = {name: _digest(w) for name, w in _weights_by_layer(model).items()}
    keras.utils.set_random_seed(seed)  # dropout masks and colour shifts start alike
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    n = len(data.x_train)
    steps = -(-n // budget.batch_size)
    if budget.max_steps_per_epoch:
        steps = min(steps, budget.max_steps_per_epoch)
    total = steps * epochs
    marks = {max(1, round(total * (k + 1) / evaluations)) for k in range(evaluations)}
    x_seen, y_seen = data.x_train[:train_eval_images], data.y_train[:train_eval_images]
    rows, seen = [], [0, 0]  # images trained on and misclassified since the last record
    missing = (np.nan, np.nan)

    def record(epoch: float, step: int, seconds: float) -> None:
        train_loss, train_error = evaluate(model, x_seen, y_seen) if len(x_seen) else missing
        val_loss, val_error = evaluate(model, data.x_val, data.y_val) if measure_val else missing
        running = seen[1] / seen[0] if seen[0] else np.nan
        rows.append(dict(seed=seed, epoch=round(epoch, 4), step=step, running_error=running,
                         train_loss=train_loss, train_error=train_error, val_loss=val_loss,
                         val_error=val_error, seconds=seconds))
        seen[:] = [0, 0]

    order_hash, seconds, step = hashlib.sha256(), 0.0, 0
    record(0.0, 0, 0.0)
    for epoch in range(epochs):
        order = batch_order(seed, epoch, n)
        for i in range(steps):
            index = order[i * budget.batch_size:(i + 1) * budget.batch_size]
            order_hash.update(index.tobytes())
            start = time.perf_counter()
            loss, accuracy = model.train_on_batch(data.x_train[index], data.y_train[index])
            seconds += time.perf_counter() - start
            loss, step = float(loss), step + 1
            seen[0] += len(index)
            seen[1] += len(index) - round(float(accuracy) * len(index))
            if not np.isfinite(loss):
                raise AlexnetTutError(f"seed {seed}: the loss became {loss} at step {step}; "
                                      "lower the learning rate")
            if step in marks:
                record(step / steps, step, seconds)
    return rows, model, shared, initial, order_hash.hexdigest()[:16]


def run_configs(
    configs: Mapping[str, Mapping[str, Any]],
    data: SmallImages,
    budget: Budget,
    *,
    base: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    seeds: Sequence[int] | None = None,
    evaluations: int | None = None,
    measure_val: bool = True,
    train_eval_images: int | None = None,
    cache: dict | None = None,
    verbose: bool = True,
) -> Runs:
    """Train every configuration with every seed; return their histories as one table.

    ``configs`` maps a label to what makes that configuration differ from
    ``base``: `build_small_alexnet` arguments, and optionally a
    ``learning_rate`` (else ``budget.learning_rate``). For example
    ``{"ReLU": {}, "tanh": {"activation": "tanh"}}``. For each seed (the
    budget's, unless ``seeds`` is given):

    * the first configuration's initial weights are given to every other
      configuration, in every layer whose name and shapes agree (all layers,
      unless a change alters a layer's shape, as removing the layer that
      feeds it does);
    * every configuration sees the same batches in the same order (`batch_order`);
    * dropout masks and colour shifts start from the same random state.

    Each run trains with SGD, momentum 0.9 and no weight decay, for
    ``epochs`` (else ``budget.epochs``). Before training and then
    ``evaluations`` times (else ``budget.evaluations``), evenly spaced, it
    measures, in inference
    mode, the loss and error on the first ``train_eval_images`` training
    images (always the same ones; by default as many as there are
    validation images, so that both errors are equally precise; 0 skips
    them) and, with ``measure_val``, on the validation images. The error on the batches as they are trained
    comes for free.

    ``cache``, a dict the caller keeps, holds finished runs: a configuration
    that was trained before with the same arguments, seed, rate, epochs and
    data is taken from it instead of being trained again. Experiments that
    share the paper's configuration train it once.
    """
    import logging

    if not configs:
        raise AlexnetTutError("run_configs needs at least one configuration")
    # Every new model traces its own training step; TensorFlow warns about "retracing"
    # after a few. Here that is expected, so the warning is kept out of the output.
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        return _run_configs(configs, data, budget, base, epochs, seeds, evaluations,
                            measure_val, train_eval_images, cache, verbose)
    finally:
        tf_logger.setLevel(level)


def _run_configs(configs, data, budget, base, epochs, seeds, evaluations, measure_val,
                 train_eval_images, cache, verbose) -> Runs:
    import pandas as pd

    epochs = budget.epochs if epochs is None else int(epochs)
    seeds = tuple(budget.seeds if seeds is None else seeds)
    evaluations = int(evaluations or budget.evaluations)
    if train_eval_images is None:
        train_eval_images = len(data.x_val)
    base = dict(base or {})
    rows, runs = [], Runs(None, {}, {}, {}, {})
    for seed in seeds:
        donor = None
        for label, overrides in configs.items():
            overrides = dict(overrides)
            learning_rate = float(overrides.pop("learning_rate", budget.learning_rate))
            arguments = {"input_shape": data.x_train.shape[1:], "num_classes": data.num_classes,
                         **base, **overrides}
            if donor is None:  # the first configuration's initial weights, for everyone
                import keras

                keras.utils.set_random_seed(seed)
                donor = _weights_by_layer(build_small_alexnet(**arguments))
            donor_digest = _digest(v for weights in donor.values() for v in weights)
            key = (repr(sorted(arguments.items())), learning_rate, seed, epochs, evaluations,
                   measure_val, train_eval_images, budget, id(data), donor_digest)
            if cache is not None and key in cache:
                result, how = cache[key], "from the cache"
            else:
                result = _train_one(arguments, learning_rate, seed, donor, data, budget, epochs,
                                    evaluations, measure_val, train_eval_images)
                how = f"{result[0][-1]['seconds']:.0f} s"
                if cache is not None:
                    cache[key] = result
            history, model, shared, initial, order = result
            rows += [{"config": label, **row} for row in history]
            runs.models[(label, seed)], runs.shared_layers[(label, seed)] = model, shared
            runs.initial_weights[(label, seed)], runs.batch_order[(label, seed)] = initial, order
            if verbose:
                last = history[-1]
                train = last["train_error"] if train_eval_images else last["running_error"]
                val = f", validation error {last['val_error']:.1%}" if measure_val else ""
                print(f"{label:>24}, seed {seed}: training error {train:.1%}{val} ({how})")
    runs.history = pd.DataFrame(rows)
    return runs


