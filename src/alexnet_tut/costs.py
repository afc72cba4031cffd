"""What a model costs: output shapes, parameters and multiply-accumulates, layer by layer.

Read from the built ``keras.Model`` itself, so that the numbers the chapters
print are the model's, not typed: `layer_table` and `total_macs`.
"""

from __future__ import annotations

import math

import keras


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer: name, kind, output shape, neurons, parameters, multiply-accumulates.

    Multiply-accumulates (MACs) count one multiplication and one addition per
    weight use, for a single image: a convolution costs
    $H_{out} W_{out} C_{out} \\cdot k_h k_w C_{in} / groups$, a dense layer
    $n_{in} n_{out}$. Pooling, LRN, ReLU and dropout are counted as 0 MACs,
    which is how torchvision's published 0.714 G for its AlexNet counts.
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        out_shape = tuple(layer.output.shape[1:])
        rows.append(
            {
                "layer": layer.name,
                "kind": type(layer).__name__,
                "output": "×".join(str(d) for d in out_shape),
                "neurons": math.prod(out_shape),
                "params": layer.count_params(),
                "macs": _macs(layer, out_shape),
            }
        )
    return rows


def _macs(layer, out_shape) -> int:
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw_ = layer.kernel_size
        c_in = layer.input.shape[-1]
        return math.prod(out_shape) * kh * kw_ * c_in // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return layer.input.shape[-1] * layer.units
    return 0


def total_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image (see :func:`layer_table`)."""
    return sum(row["macs"] for row in layer_table(model))
