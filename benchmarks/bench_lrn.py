"""Training speed of the paper model: the book's keras.ops LRN against TensorFlow's LRN.

Both models are the same `build_alexnet("paper")` network; in the second, every
`LocalResponseNormalization` layer is swapped for one that calls
`tf.nn.local_response_normalization` (per tower, like the book's `groups=2`).
The two are timed in alternating rounds in one process, so that load from
other programs on a shared machine hits both alike. Prints a table and writes
`benchmarks/results/lrn.json`.

    .venv/bin/python benchmarks/bench_lrn.py [--batch-size 16] [--rounds 5] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from alexnet_tut.layers import LocalResponseNormalization  # noqa: E402
from alexnet_tut.models import build_alexnet  # noqa: E402


class TensorFlowLRN(keras.layers.Layer):
    """The reference: tf.nn.local_response_normalization on each channel group."""

    def __init__(self, groups: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, x):
        parts = tf.split(x, self.groups, axis=-1)
        return tf.concat(
            [tf.nn.local_response_normalization(p, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
             for p in parts], axis=-1)


def with_tensorflow_lrn(model: keras.Model) -> keras.Model:
    def swap(layer):
        if isinstance(layer, LocalResponseNormalization):
            return TensorFlowLRN(groups=layer.groups, name=layer.name)
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
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps per model per round")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    ours = compiled(build_alexnet("paper"))
    reference = compiled(with_tensorflow_lrn(ours))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch_size, 227, 227, 3)).astype("float32")
    y = rng.integers(0, 1000, args.batch_size).astype("int32")

    for model in (ours, reference):  # compile and warm up outside the timing
        time_steps(model, x, y, 2)
    seconds = {"keras.ops LRN": 0.0, "tf.nn LRN": 0.0}
    for _ in range(args.rounds):
        seconds["keras.ops LRN"] += time_steps(ours, x, y, args.steps)
        seconds["tf.nn LRN"] += time_steps(reference, x, y, args.steps)

    images = args.rounds * args.steps * args.batch_size
    rate = {name: images / s for name, s in seconds.items()}
    ratio = rate["keras.ops LRN"] / rate["tf.nn LRN"]
    print(f"paper model training step, batch {args.batch_size}, 227×227, fp32, "
          f"{args.rounds} alternating rounds of {args.steps} steps")
    for name, r in rate.items():
        print(f"  {name:<14} {r:7.1f} images/s")
    print(f"  ratio keras.ops / tf.nn: {ratio:.2f} (target: at least 0.8)")

    record = {
        "benchmark": "lrn_training_step",
        "batch_size": args.batch_size, "rounds": args.rounds, "steps": args.steps,
        "images_per_second": rate, "ratio_keras_ops_over_tf": ratio,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
        "versions": {"tensorflow": tf.__version__, "keras": keras.version()},
    }
    out = Path(__file__).parent / "results" / "lrn.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
