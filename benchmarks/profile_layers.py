"""Where a training step's time goes: each layer's forward and backward pass, timed at its real shape.

Every layer of the model (convolutions, LRN, pooling, dense layers) is timed on its own, on a batch
of the shape it receives inside the model, forward and backward (the gradients with respect to its
input and its weights), as one compiled `tf.function`; so is the optimizer's update of every weight
tensor. The parts add up to about one training step. Run it once with TensorFlow's oneDNN kernels
on and once with them off, one process each, to see which layers fall back to slow kernels:

    TF_ENABLE_ONEDNN_OPTS=1 .venv/bin/python benchmarks/profile_layers.py --json on.json
    TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python benchmarks/profile_layers.py --json off.json

``ONEDNN_MAX_CPU_ISA=AVX2`` makes oneDNN use AVX2 only, as on a CPU without AVX-512.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import alexnet_tut  # noqa: F401  (chooses TensorFlow's CPU kernels before TensorFlow starts)
from alexnet_tut import bench
from alexnet_tut.models import build_alexnet
from alexnet_tut.recipe import get_recipe
from alexnet_tut.solver import PaperSGD

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def layer_step(layer: keras.layers.Layer, batch_shape: tuple[int, ...]):
    """Forward and backward through one layer, as a compiled function."""
    x = tf.constant(np.random.default_rng(0).standard_normal(batch_shape, dtype=np.float32))
    weights = [v.value for v in layer.trainable_variables]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return tape.gradient(loss, [x, *weights])

    return lambda: [g.numpy() for g in step() if g is not None][:1]


def update_step(model: keras.Model):
    """The optimizer's update of every weight tensor of ``model``, as in a training step."""
    optimizer = PaperSGD(learning_rate=0.0025, momentum=get_recipe().momentum)
    variables = model.trainable_variables
    optimizer.build(variables)
    grads = [tf.ones_like(v.value) * 1e-3 for v in variables]

    @tf.function
    def step():
        optimizer.apply(grads, variables)

    return lambda: (step(), variables[0].numpy()[0])


def profile(variant: str, batch: int, rounds: int, steps: int) -> dict[str, float]:
    model = build_alexnet(variant)
    parts = {}
    for layer in model.layers[1:]:
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Dropout)):
            continue
        shape = (batch, *layer.input.shape[1:])
        parts[layer.name] = layer_step(layer, shape)
    parts["optimizer update"] = update_step(model)
    for fn in parts.values():
        fn()  # compile
        fn()
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    machine = bench.machine_record()
    print(bench.describe_machine(machine))
    record = {"batch_size": args.batch_size, "machine": machine, "ms": {}}
    for variant in ("paper", "one_tower"):
        ms = profile(variant, args.batch_size, args.rounds, args.steps)
        record["ms"][variant] = ms
        total = sum(ms.values())
        print(f"\n{variant}: {total:.0f} ms in all (batch {args.batch_size}, median of {args.rounds} rounds)")
        for name, value in sorted(ms.items(), key=lambda kv: -kv[1]):
            print(f"  {name:18} {value:8.1f} ms  {value / total:5.1%}")
    out = args.json or Path(__file__).parent / "results" / "profile_layers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
