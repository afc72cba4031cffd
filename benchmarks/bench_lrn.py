"""Training speed of the paper model with four LRNs: what the layer costs, and what helps.

All four models are the same `build_alexnet("paper")` network, with every
`LocalResponseNormalization` layer either kept (the book's layer: `keras.ops`,
gradient written out by hand), swapped for the same forward pass left to
automatic differentiation, swapped for `tf.nn.local_response_normalization`
(per tower, like the book's `groups=2`), or removed. They are timed in
alternating rounds in one process, so that load from other programs on a
shared machine hits all alike. Prints a table and writes
`benchmarks/results/lrn.json`.

    .venv/bin/python benchmarks/bench_lrn.py [--batch-size 32] [--rounds 5] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import alexnet_tut  # noqa: E402, F401  (chooses TensorFlow's CPU kernels before TensorFlow starts)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras import ops  # noqa: E402

from alexnet_tut import bench  # noqa: E402
from alexnet_tut.architectures import PAPER_LRN  # noqa: E402
from alexnet_tut.layers import LocalResponseNormalization, _inverse_power  # noqa: E402
from alexnet_tut.models import build_alexnet  # noqa: E402


class TensorFlowLRN(keras.layers.Layer):
    """The reference: tf.nn.local_response_normalization on each channel group."""

    def __init__(self, groups: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, x):
        parts = tf.split(x, self.groups, axis=-1)
        return tf.concat(
            [tf.nn.local_response_normalization(p, depth_radius=PAPER_LRN.depth_radius,
                                                bias=PAPER_LRN.k, alpha=PAPER_LRN.alpha,
                                                beta=PAPER_LRN.beta)
             for p in parts], axis=-1)


class AutodiffLRN(LocalResponseNormalization):
    """The book's forward pass, differentiated by TensorFlow instead of by hand."""

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        rows = ops.reshape(x, (-1, self._group_size))
        z = self.bias + self.alpha * ops.matmul(ops.square(rows), ops.convert_to_tensor(self._band))
        y = rows * _inverse_power(z, self.beta)
        return ops.cast(ops.reshape(y, ops.shape(x)), self.compute_dtype)


def with_lrn(model: keras.Model, make_lrn) -> keras.Model:
    """A copy of ``model`` with each LRN layer replaced by ``make_lrn(layer)`` (``None``: removed)."""
    def swap(layer):
        if isinstance(layer, LocalResponseNormalization):
            replacement = make_lrn(layer)
            return replacement if replacement is not None else keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=swap)
    clone.set_weights(model.get_weights())
    return clone


def compiled(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def time_steps(model, x, y, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps per model per round")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    paper = build_alexnet("paper")
    models = {
        "book LRN": compiled(paper),
        "autodiff LRN": compiled(with_lrn(paper, lambda l: AutodiffLRN.from_config(l.get_config()))),
        "tf.nn LRN": compiled(with_lrn(paper, lambda l: TensorFlowLRN(groups=l.groups, name=l.name))),
        "no LRN": compiled(with_lrn(paper, lambda l: None)),
    }
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch_size, 227, 227, 3)).astype("float32")
    y = rng.integers(0, 1000, args.batch_size).astype("int32")

    for model in models.values():  # compile and warm up outside the timing
        time_steps(model, x, y, 2)
    seconds = {name: 0.0 for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds[name] += time_steps(model, x, y, args.steps)

    images = args.rounds * args.steps * args.batch_size
    rate = {name: images / s for name, s in seconds.items()}
    ratio = rate["book LRN"] / rate["tf.nn LRN"]
    print(f"paper model training step, batch {args.batch_size}, 227×227, fp32, "
          f"{args.rounds} alternating rounds of {args.steps} steps")
    for name, r in rate.items():
        print(f"  {name:<14} {r:7.1f} images/s")
    print(f"  ratio book / tf.nn: {ratio:.2f} (target: at least 0.8)")

    record = {
        "benchmark": "lrn_training_step",
        "batch_size": args.batch_size, "rounds": args.rounds, "steps": args.steps,
        "images_per_second": rate, "ratio_book_over_tf": ratio,
        "machine": bench.machine_record(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.version()},
    }
    out = Path(__file__).parent / "results" / "lrn.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
