"""AlexNet in Keras 3: the paper's two-tower model, the one-tower model, torchvision's.

`build_alexnet` reads top to bottom like the paper's Figure 2; the widths,
kernel sizes and strides of each variant come from
`alexnet_tut.architectures.ARCHITECTURES`. Layer names are stable across
variants (``conv1`` … ``conv5``, ``fc6``, ``fc7``, ``fc8``) so that chapters,
tests and the pretrained-weight loader can find layers by name.

``fc8`` returns logits (no softmax) in float32, which is what a
``from_logits=True`` loss and mixed precision both want.

Grouped convolutions and the dense layers are built from
`alexnet_tut.speedups`' subclasses of Keras's ``Conv2D`` and ``Dense``: the
same layers, computed faster on TensorFlow's CPU kernels.
"""

from __future__ import annotations

from typing import Literal

import keras
import numpy as np
from keras import layers

from alexnet_tut.architectures import (
    ARCHITECTURES, PAPER_BIAS_ONE_LAYERS, VARIANTS, Architecture, Conv)
from alexnet_tut.layers import LocalResponseNormalization
from alexnet_tut.speedups import FastInputGradientDense, PerGroupConv2D

Variant = Literal["paper", "one_tower", "torchvision"]

__all__ = ["VARIANTS", "build_alexnet", "copy_grouped_to_branches", "default_input_shape"]


def default_input_shape(variant: str) -> tuple[int, int, int]:
    """The input a variant was designed for: 227×227×3 (224×224×3 for torchvision)."""
    size = ARCHITECTURES[variant].input_size
    return (size, size, 3)


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
    arch = ARCHITECTURES[variant]
    input_shape = tuple(input_shape or default_input_shape(variant))
    use_lrn = arch.lrn if lrn is None else bool(lrn)
    kw = _layer_kwargs(paper_init, weight_decay)

    inputs = keras.Input(shape=input_shape, name="image")
    if towers == "branches":
        logits = _paper_branches(inputs, arch, num_classes, use_lrn, dropout, kw)
    else:
        logits = _one_graph(inputs, arch, num_classes, use_lrn, dropout, kw)
    model = keras.Model(inputs, logits, name=f"alexnet_{variant}")
    if paper_init:
        _set_paper_biases(model, paper_bias)
    return model


def _one_graph(inputs, arch: Architecture, num_classes, use_lrn, dropout, kw):
    """Figure 2 as one graph: the paper's towers as grouped convolutions, or one tower."""
    conv1, conv2, conv3, conv4, conv5 = arch.conv
    x = inputs
    if isinstance(conv1.padding, int):  # torchvision: zero pixels on every side
        x = layers.ZeroPadding2D(conv1.padding, name="pad1")(x)
    x = _conv("conv1", conv1, kw)(x)
    if use_lrn:  # after the ReLU, before the pooling (§3.3); one LRN per tower
        x = LocalResponseNormalization(groups=arch.towers, name="lrn1")(x)
    x = _pool("pool1")(x)
    x = _conv("conv2", conv2, kw)(x)
    if use_lrn:
        x = LocalResponseNormalization(groups=arch.towers, name="lrn2")(x)
    x = _pool("pool2")(x)
    x = _conv("conv3", conv3, kw)(x)
    x = _conv("conv4", conv4, kw)(x)
    x = _conv("conv5", conv5, kw)(x)
    x = _pool("pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    fc6, fc7 = arch.fc
    if arch.dropout_on_inputs:  # torchvision drops the inputs of fc6 and fc7
        x = _dense("fc6", fc6, kw)(layers.Dropout(dropout, name="drop6")(x))
        x = _dense("fc7", fc7, kw)(layers.Dropout(dropout, name="drop7")(x))
    else:  # the paper drops their outputs (§4.2)
        x = layers.Dropout(dropout, name="drop6")(_dense("fc6", fc6, kw)(x))
        x = layers.Dropout(dropout, name="drop7")(_dense("fc7", fc7, kw)(x))
    return _logits(num_classes, kw)(x)


def _paper_branches(inputs, arch: Architecture, num_classes, use_lrn, dropout, kw):
    """The paper model as Figure 2 draws it: one branch per GPU.

    Each tower holds half of every layer's kernels. Data crosses between the
    towers only at conv3, fc6, fc7 and fc8, where a layer sees the
    concatenation of both towers' outputs.
    """
    conv1, conv2, conv3, conv4, conv5 = (_per_tower(c, arch.towers) for c in arch.conv)
    gpus = [f"gpu{i + 1}" for i in range(arch.towers)]
    pooled2 = []
    for gpu in gpus:
        x = _conv(f"conv1_{gpu}", conv1, kw)(inputs)
        if use_lrn:
            x = LocalResponseNormalization(name=f"lrn1_{gpu}")(x)
        x = _pool(f"pool1_{gpu}")(x)
        x = _conv(f"conv2_{gpu}", conv2, kw)(x)
        if use_lrn:
            x = LocalResponseNormalization(name=f"lrn2_{gpu}")(x)
        pooled2.append(_pool(f"pool2_{gpu}")(x))

    both = layers.Concatenate(name="cross3")(pooled2)  # the towers exchange maps
    pooled5 = []
    for gpu in gpus:
        x = _conv(f"conv3_{gpu}", conv3, kw)(both)
        x = _conv(f"conv4_{gpu}", conv4, kw)(x)
        x = _conv(f"conv5_{gpu}", conv5, kw)(x)
        pooled5.append(_pool(f"pool5_{gpu}")(x))

    x = layers.Concatenate(name="cross6")(pooled5)
    x = layers.Flatten(name="flatten")(x)
    fc6, fc7 = (units // arch.towers for units in arch.fc)
    x = layers.Concatenate(name="cross7")([_dense(f"fc6_{gpu}", fc6, kw)(x) for gpu in gpus])
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Concatenate(name="cross8")([_dense(f"fc7_{gpu}", fc7, kw)(x) for gpu in gpus])
    x = layers.Dropout(dropout, name="drop7")(x)
    return _logits(num_classes, kw)(x)


def _per_tower(conv: Conv, towers: int) -> Conv:
    """One tower's share of a layer: 1/``towers`` of its kernels, no groups left."""
    return Conv(conv.filters // towers, conv.size, conv.stride, conv.padding, groups=1)


def _layer_kwargs(paper_init: bool, weight_decay: float) -> dict:
    kw: dict = {}
    if paper_init:
        kw["kernel_initializer"] = keras.initializers.RandomNormal(stddev=0.01)
        kw["bias_initializer"] = "zeros"
    if weight_decay:
        kw["kernel_regularizer"] = keras.regularizers.L2(weight_decay / 2)
    return kw


def _conv(name: str, conv: Conv, kw: dict):
    """A convolution and its ReLU (§3.5: every convolutional layer has one).

    Integer padding is added by a ``ZeroPadding2D`` layer before it (see
    :func:`_one_graph`), so the convolution itself is ``valid``.
    """
    padding = "valid" if isinstance(conv.padding, int) else conv.padding
    layer = PerGroupConv2D if conv.groups > 1 else layers.Conv2D
    return layer(conv.filters, conv.size, strides=conv.stride, padding=padding,
                 groups=conv.groups, activation="relu", name=name, **kw)


def _pool(name: str):
    # Overlapping pooling (§3.4): 3×3 windows every 2 pixels.
    return layers.MaxPooling2D(pool_size=3, strides=2, name=name)


def _dense(name: str, units: int, kw: dict):
    """A fully connected layer and its ReLU (§3.5)."""
    return FastInputGradientDense(units, activation="relu", name=name, **kw)


def _logits(num_classes: int, kw: dict):
    """fc8: one logit per class, no ReLU, float32 even under mixed precision."""
    return FastInputGradientDense(num_classes, name="fc8", dtype="float32", **kw)


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
