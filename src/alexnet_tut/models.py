"""AlexNet in Keras 3: the paper's two-tower model, the one-tower model, torchvision's.

Each builder reads top to bottom like the paper's Figure 2. Layer names are
stable across variants (``conv1`` … ``conv5``, ``fc6``, ``fc7``, ``fc8``) so that
chapters, tests and the pretrained-weight loader can find layers by name.

``fc8`` returns logits (no softmax) in float32, which is what a
``from_logits=True`` loss and mixed precision both want.
"""

from __future__ import annotations

import math
from typing import Literal

import keras
import numpy as np
from keras import layers

from alexnet_tut.layers import Dense, GroupedConv2D, LocalResponseNormalization

Variant = Literal["paper", "one_tower", "torchvision"]
VARIANTS: tuple[str, ...] = ("paper", "one_tower", "torchvision")

#: The paper's bias initialisation (§5): 1 in these layers, 0 elsewhere.
PAPER_BIAS_ONE_LAYERS: tuple[str, ...] = ("conv2", "conv4", "conv5", "fc6", "fc7")

DEFAULT_INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "paper": (227, 227, 3),
    "one_tower": (227, 227, 3),
    "torchvision": (224, 224, 3),
}


def build_alexnet(
    variant: Variant = "paper",
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1000,
    lrn: bool | None = None,
    dropout: float = 0.5,
    paper_init: bool = False,
    paper_bias: float = 1.0,
    weight_decay: float = 0.0,
    towers: Literal["grouped", "branches"] = "grouped",
) -> keras.Model:
    """Build one AlexNet variant as a functional ``keras.Model``.

    Args:
        variant: ``"paper"`` (two towers: grouped conv2/4/5 and LRN, 227 input),
            ``"one_tower"`` (96-256-384-384-256 with every layer seeing every
            channel, no LRN) or ``"torchvision"`` (64-192-384-256-256, 224 input,
            padding 2 in conv1, no LRN).
        input_shape: height, width, channels. Defaults to 227×227×3 (224×224×3
            for torchvision). Smaller images work; fc6 then has fewer inputs.
        num_classes: width of ``fc8``.
        lrn: add local response normalisation after conv1 and conv2. ``None``
            means the variant's default (on for ``"paper"`` only).
        dropout: dropout rate on fc6 and fc7 (the paper's 0.5).
        paper_init: initialise as §5 does: every kernel from N(0, 0.01), biases
            ``paper_bias`` in conv2, conv4, conv5, fc6 and fc7 and 0 elsewhere.
            Off by default: Keras's Glorot initialiser trains a fresh model more
            reliably.
        paper_bias: the bias of those five layers under ``paper_init``. The paper
            used 1; Caffe's reference model found that 1 left the loss flat and
            used 0.1.
        weight_decay: the paper's weight decay (0.0005 in §5). It is added as
            ``L2(weight_decay / 2)`` on every kernel, because Keras's L2 penalty
            $l \\sum w^2$ has gradient $2 l w$ while the paper's update uses
            $\\lambda w$.
        towers: for ``"paper"`` only. ``"grouped"`` expresses the two towers as
            grouped convolutions (``groups=2``), which is fast and compact;
            ``"branches"`` builds them as two explicit branches, layer by layer,
            as Figure 2 draws them. Both compute the same function
            (:func:`copy_grouped_to_branches` moves weights between them).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if towers not in ("grouped", "branches"):
        raise ValueError(f"towers must be 'grouped' or 'branches', got {towers!r}")
    if towers == "branches" and variant != "paper":
        raise ValueError("towers='branches' exists only for variant='paper'")
    input_shape = tuple(input_shape or DEFAULT_INPUT_SHAPES[variant])
    use_lrn = (variant == "paper") if lrn is None else bool(lrn)
    kw = _layer_kwargs(paper_init, weight_decay)

    inputs = keras.Input(shape=input_shape, name="image")
    if variant == "paper" and towers == "branches":
        logits = _paper_branches(inputs, num_classes, use_lrn, dropout, kw)
    else:
        logits = _single_graph(variant, inputs, num_classes, use_lrn, dropout, kw)
    model = keras.Model(inputs, logits, name=f"alexnet_{variant}")
    if paper_init:
        _set_paper_biases(model, paper_bias)
    return model


def _layer_kwargs(paper_init: bool, weight_decay: float) -> dict:
    kw: dict = {}
    if paper_init:
        kw["kernel_initializer"] = keras.initializers.RandomNormal(stddev=0.01)
        kw["bias_initializer"] = "zeros"
    if weight_decay:
        kw["kernel_regularizer"] = keras.regularizers.L2(weight_decay / 2)
    return kw


def _conv(filters, size, name, kw, strides=1, padding="same", groups=1):
    conv = GroupedConv2D if groups > 1 else layers.Conv2D  # see GroupedConv2D for why
    return conv(
        filters, size, strides=strides, padding=padding, groups=groups,
        activation="relu", name=name, **kw,
    )


def _pool(name):
    # Overlapping pooling (§3.4): 3×3 windows every 2 pixels.
    return layers.MaxPooling2D(pool_size=3, strides=2, name=name)


def _single_graph(variant, inputs, num_classes, use_lrn, dropout, kw):
    """The paper model with grouped convolutions, or a one-tower model."""
    if variant == "torchvision":
        widths, groups = (64, 192, 384, 256, 256), 1
    elif variant == "one_tower":
        widths, groups = (96, 256, 384, 384, 256), 1
    else:
        widths, groups = (96, 256, 384, 384, 256), 2
    lrn_groups = groups  # each paper GPU normalises only its own kernel maps

    x = inputs
    if variant == "torchvision":
        x = layers.ZeroPadding2D(2, name="pad1")(x)
    x = _conv(widths[0], 11, "conv1", kw, strides=4, padding="valid")(x)
    if use_lrn:
        x = LocalResponseNormalization(groups=lrn_groups, name="lrn1")(x)
    x = _pool("pool1")(x)
    x = _conv(widths[1], 5, "conv2", kw, groups=groups)(x)
    if use_lrn:
        x = LocalResponseNormalization(groups=lrn_groups, name="lrn2")(x)
    x = _pool("pool2")(x)
    x = _conv(widths[2], 3, "conv3", kw)(x)  # sees both towers
    x = _conv(widths[3], 3, "conv4", kw, groups=groups)(x)
    x = _conv(widths[4], 3, "conv5", kw, groups=groups)(x)
    x = _pool("pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    if variant == "torchvision":
        # torchvision drops the *inputs* of fc6 and fc7; the paper drops outputs.
        x = layers.Dropout(dropout, name="drop6")(x)
        x = Dense(4096, activation="relu", name="fc6", **kw)(x)
        x = layers.Dropout(dropout, name="drop7")(x)
        x = Dense(4096, activation="relu", name="fc7", **kw)(x)
    else:
        x = Dense(4096, activation="relu", name="fc6", **kw)(x)
        x = layers.Dropout(dropout, name="drop6")(x)
        x = Dense(4096, activation="relu", name="fc7", **kw)(x)
        x = layers.Dropout(dropout, name="drop7")(x)
    return Dense(num_classes, name="fc8", dtype="float32", **kw)(x)


def _paper_branches(inputs, num_classes, use_lrn, dropout, kw):
    """The paper model as Figure 2 draws it: one branch per GPU.

    Data crosses between the towers only at conv3, fc6, fc7 and fc8, where a
    layer sees the concatenation of both towers' outputs.
    """
    towers = ("gpu1", "gpu2")
    pooled2 = []
    for t in towers:
        x = _conv(48, 11, f"conv1_{t}", kw, strides=4, padding="valid")(inputs)
        if use_lrn:
            x = LocalResponseNormalization(name=f"lrn1_{t}")(x)
        x = _pool(f"pool1_{t}")(x)
        x = _conv(128, 5, f"conv2_{t}", kw)(x)
        if use_lrn:
            x = LocalResponseNormalization(name=f"lrn2_{t}")(x)
        pooled2.append(_pool(f"pool2_{t}")(x))

    both = layers.Concatenate(name="cross3")(pooled2)  # the towers exchange maps
    pooled5 = []
    for t in towers:
        x = _conv(192, 3, f"conv3_{t}", kw)(both)
        x = _conv(192, 3, f"conv4_{t}", kw)(x)
        x = _conv(128, 3, f"conv5_{t}", kw)(x)
        pooled5.append(_pool(f"pool5_{t}")(x))

    x = layers.Concatenate(name="cross6")(pooled5)
    x = layers.Flatten(name="flatten")(x)
    fc6 = [Dense(2048, activation="relu", name=f"fc6_{t}", **kw)(x) for t in towers]
    x = layers.Dropout(dropout, name="drop6")(layers.Concatenate(name="cross7")(fc6))
    fc7 = [Dense(2048, activation="relu", name=f"fc7_{t}", **kw)(x) for t in towers]
    x = layers.Dropout(dropout, name="drop7")(layers.Concatenate(name="cross8")(fc7))
    return Dense(num_classes, name="fc8", dtype="float32", **kw)(x)


def _set_paper_biases(model: keras.Model, value: float) -> None:
    for layer in model.layers:
        base = layer.name.split("_gpu")[0]
        if base in PAPER_BIAS_ONE_LAYERS and getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.full(layer.bias.shape, value, dtype="float32"))


def copy_grouped_to_branches(grouped: keras.Model, branches: keras.Model) -> None:
    """Copy the weights of a ``towers="grouped"`` paper model into a ``"branches"`` one.

    A grouped convolution with ``groups=2`` gives output channels ``[0, C/2)``
    to the first group and ``[C/2, C)`` to the second, so tower ``gpu1`` takes
    the first half of every kernel's outputs and ``gpu2`` the second half.
    """
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        kernel, bias = grouped.get_layer(name).get_weights()
        half = kernel.shape[-1] // 2
        branches.get_layer(f"{name}_gpu1").set_weights([kernel[..., :half], bias[:half]])
        branches.get_layer(f"{name}_gpu2").set_weights([kernel[..., half:], bias[half:]])
    branches.get_layer("fc8").set_weights(grouped.get_layer("fc8").get_weights())


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer: name, kind, output shape, parameters, multiply-accumulates.

    Multiply-accumulates (MACs) count one multiplication and one addition per
    weight use, for a single image: a convolution costs
    $H_{out} W_{out} C_{out} \\cdot k_h k_w C_{in} / groups$, a dense layer
    $n_{in} n_{out}$. Pooling, LRN, ReLU and dropout are counted as 0 MACs,
    which is how the published 724 M (paper) and 714 M (torchvision) figures
    count.
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
