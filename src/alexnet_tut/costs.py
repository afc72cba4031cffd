"""What a model costs: output shapes, parameters, multiply-accumulates and memory, layer by layer.

Read from the built ``keras.Model`` itself, so that the numbers the chapters
print are the model's, not typed: `layer_table` (a list of rows, what other
modules read), `layer_frame` (the same rows as a pandas DataFrame with a total
row, what the chapters show), `total_macs`, and `activation_bytes` (the memory
a training step keeps for the backward pass).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras

from alexnet_tut.errors import AlexnetTutError

if TYPE_CHECKING:  # pandas is imported only by the function that needs it
    import pandas as pd

#: Bytes per value: float32, the precision the paper trained in and Keras's default.
BYTES_PER_VALUE = 4

#: Layers whose output only reshapes their input: it shares the input's memory.
RESHAPE_KINDS = ("Flatten", "Reshape")


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer: name, kind, output shape, neurons, parameters, multiply-accumulates.

    ``neurons`` is the number of values the layer outputs per image (what
    the paper's Figure 2 counts for its learned layers).

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
                "kind": _kind(layer),
                "output": "×".join(str(d) for d in out_shape),
                "neurons": math.prod(out_shape),
                "params": layer.count_params(),
                "macs": _macs(layer, out_shape),
            }
        )
    return rows


def _kind(layer) -> str:
    """The layer's class, as Keras names it: ``"Conv2D, groups=2"`` for a grouped convolution.

    `alexnet_tut.speedups`' subclasses compute exactly what their Keras base
    class computes, so the table names the base class.
    """
    cls = type(layer)
    if cls.__module__ == "alexnet_tut.speedups":
        cls = cls.__mro__[1]
    groups = getattr(layer, "groups", 1)
    return cls.__name__ + (f", groups={groups}" if isinstance(layer, keras.layers.Conv2D)
                           and groups > 1 else "")


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


def layer_frame(model: keras.Model, *, totals: bool = True) -> "pd.DataFrame":
    """`layer_table` as a DataFrame indexed by layer name, with a ``total`` row.

    The columns are ``kind``, ``output``, ``neurons``, ``params`` and
    ``macs``. The ``total`` row sums the three number columns over every
    layer listed; ``totals=False`` leaves it out.
    """
    import pandas as pd

    frame = pd.DataFrame(layer_table(model)).set_index("layer")
    if totals:
        frame.loc["total"] = {
            "kind": "", "output": "",
            **{column: int(frame[column].sum()) for column in ("neurons", "params", "macs")},
        }
    return frame.astype({"neurons": "int64", "params": "int64", "macs": "int64"})


def activation_bytes(model: keras.Model, batch_size: int,
                     bytes_per_value: int = BYTES_PER_VALUE) -> int:
    """Bytes of layer outputs one training step keeps for the backward pass.

    Backpropagation needs each layer's output (its input, for the layer
    above) until the gradients reach it, so a step holds every output of the
    forward pass at once: the sum of the ``neurons`` column of
    `layer_table`, times the batch, times ``bytes_per_value``. ``Flatten``
    only reshapes its input, so its output is not counted twice.

    This is the count of the model's own outputs, not a framework's peak:
    the input batch, the gradients with respect to the activations, dropout
    masks and convolution workspace come on top.
    """
    if batch_size < 1:
        raise AlexnetTutError(f"batch_size must be at least 1, got {batch_size}")
    values = sum(row["neurons"] for row in layer_table(model) if row["kind"] not in RESHAPE_KINDS)
    return values * batch_size * bytes_per_value
