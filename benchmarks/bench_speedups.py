"""What each of `alexnet_tut.speedups` buys, measured side by side in one process.

Four measurements, each timed in alternating rounds so that load from other programs on a shared
machine slows both sides alike (median over rounds):

* the training step of the paper model and of the one-tower model with the speed-ups on and off
  (``speedups.disabled()`` while the model is compiled and first called);
* fc6's input gradient, $g W^T$, as TensorFlow asks for it and as $(W g^T)^T$;
* fc6's weight update: Keras's SGD (one op per arithmetic step) against the fused XLA function;
* conv2's grouped convolution: Keras's (XLA on TensorFlow) against one convolution per group.

Prints a table and writes ``benchmarks/results/speedups.json``, with the machine it ran on.

    .venv/bin/python benchmarks/bench_speedups.py [--batch-size 32] [--rounds 5] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import alexnet_tut  # noqa: F401  (chooses TensorFlow's CPU kernels before TensorFlow starts)
from alexnet_tut import bench, devices, speedups
from alexnet_tut.models import build_alexnet
from alexnet_tut.recipe import get_recipe
from alexnet_tut.solver import compile_model

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def training_step(variant: str, batch_size: int, fast: bool):
    """A compiled training step of ``variant`` on one synthetic batch, traced with the speed-ups on or off."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch_size, 227, 227, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, 1000, batch_size).astype("int32"))
    before = speedups.enabled()
    speedups.set_enabled(fast)
    try:
        model = build_alexnet(variant)
        compile_model(model, get_recipe(), batch_size=batch_size)
        model.train_on_batch(x, y)  # traces and compiles under this setting
    finally:
        speedups.set_enabled(before)
    return lambda: float(model.train_on_batch(x, y, return_dict=True)["loss"])


def fc6_input_gradient(batch_size: int):
    """The two ways to compute fc6's input gradient (9,216 × 4,096 weights)."""
    rng = np.random.default_rng(1)
    w = tf.constant(rng.standard_normal((9216, 4096), dtype=np.float32))
    g = tf.constant(rng.standard_normal((batch_size, 4096), dtype=np.float32))
    plain = tf.function(lambda: tf.matmul(g, w, transpose_b=True))
    fast = tf.function(lambda: tf.transpose(tf.matmul(w, g, transpose_b=True)))
    return (lambda: plain().numpy()), (lambda: fast().numpy())


def fc6_update():
    """Keras's SGD step and the fused one, on fc6's 37.7 million weights."""
    rng = np.random.default_rng(2)
    shape = (9216, 4096)
    grad = tf.constant(rng.standard_normal(shape, dtype=np.float32))
    w, v = tf.Variable(tf.zeros(shape)), tf.Variable(tf.zeros(shape))

    @tf.function
    def keras_like():
        v.assign(0.9 * v - 0.01 * (grad + 5e-4 * w))
        w.assign(w + v)

    @tf.function
    def fused():
        new_v, new_w = speedups.fused_momentum_update(w, v, grad, 0.01, 0.9, 5e-4)
        v.assign(new_v)
        w.assign(new_w)

    return (lambda: (keras_like(), w.numpy()[0, 0])), (lambda: (fused(), w.numpy()[0, 0]))


def conv2_grouped(batch_size: int):
    """conv2 (5×5, 96 → 256 maps, two groups) forward and backward, Keras's way and per group."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((batch_size, 27, 27, 96), dtype=np.float32))
    steps = []
    for fast in (False, True):
        layer = speedups.PerGroupConv2D(256, 5, padding="same", groups=2)
        layer.build(x.shape)
        speedups.set_enabled(fast)
        try:
            @tf.function
            def step(layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = tf.reduce_sum(layer(x))
                return tape.gradient(y, [x, layer.kernel.value])
            step()  # trace under this setting
        finally:
            speedups.set_enabled(True)
        steps.append(lambda step=step: [t.numpy() for t in step()])
    return steps


def interleaved(pairs: dict[str, tuple], rounds: int, steps: int) -> dict[str, list[float]]:
    """Milliseconds per call of each side of each pair, rounds alternating A, B, A, B, ..."""
    times = {f"{name}/{side}": [] for name in pairs for side in ("plain", "fast")}
    for fns in pairs.values():
        for fn in fns:
            fn()  # one untimed call after compiling
    for _ in range(rounds):
        for name, (plain, fast) in pairs.items():
            for side, fn in (("plain", plain), ("fast", fast)):
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[f"{name}/{side}"].append((time.perf_counter() - start) / steps * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    b = args.batch_size
    pairs = {
        "paper training step": (training_step("paper", b, False), training_step("paper", b, True)),
        "one-tower training step": (training_step("one_tower", b, False),
                                    training_step("one_tower", b, True)),
        "fc6 input gradient": fc6_input_gradient(b),
        "fc6 weight update": fc6_update(),
        "conv2 grouped, forward + backward": conv2_grouped(b),
    }
    times = interleaved(pairs, args.rounds, args.steps)
    medians = {key: statistics.median(value) for key, value in times.items()}
    print(f"batch {b}, {args.rounds} alternating rounds of {args.steps} calls; median ms per call")
    print(f"{'':36} {'plain':>9} {'fast':>9} {'speed-up':>9}")
    for name in pairs:
        plain, fast = medians[f"{name}/plain"], medians[f"{name}/fast"]
        print(f"{name:36} {plain:9.1f} {fast:9.1f} {plain / fast:8.2f}×")
    record = {
        "benchmark": "speedups", "batch_size": b, "rounds": args.rounds, "steps": args.steps,
        "ms_per_call": times, "median_ms": medians,
        "machine": bench.machine_record(),
        "cpu_kernels": devices.CPU_KERNELS_CHOICE,
    }
    out = Path(__file__).parent / "results" / "speedups.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    main()
