"""Chapter 04's network: a small AlexNet whose activation, pooling, LRN, dropout, depth and
colour augmentation are arguments (`build_small_alexnet`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any


from alexnet_tut.architectures import PAPER_LRN, LRNConstants
from alexnet_tut.errors import AlexnetTutError

if TYPE_CHECKING:  # only for the annotations: importing them is slow
    import keras

from alexnet_tut.ablations.data import IMAGE_SIZE


# --------------------------------------------------------------------------- the network

#: The small AlexNet: five convolutional layers (kernels per layer) and two hidden
#: fully connected ones, in the paper's order, at a quarter to a sixth of its widths.
SMALL_FILTERS: tuple[int, ...] = (24, 48, 64, 64, 48)
SMALL_KERNELS: tuple[int, ...] = (5, 5, 3, 3, 3)
SMALL_POOL_AFTER: tuple[str, ...] = ("conv1", "conv2", "conv5")
SMALL_LRN_AFTER: tuple[str, ...] = ("conv1", "conv2")
SMALL_DENSE: tuple[int, ...] = (256, 256)

#: Figure 1's "four-layer convolutional neural network": the paper does not
#: print its layers. This one has three 5×5 convolutions with overlapping max
#: pooling after each, and one fully connected layer; no LRN and no dropout,
#: since Figure 1 used no regularisation of any kind.
FIGURE1_NETWORK: dict[str, Any] = dict(filters=(32, 32, 64), kernel_sizes=(5, 5, 5),
                                       pool_after=("conv1", "conv2", "conv3"), dense=(),
                                       lrn=False, dropout=0.0)

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh")


def build_small_alexnet(
    *,
    input_shape: tuple[int, int, int] = (IMAGE_SIZE, IMAGE_SIZE, 3),
    num_classes: int = 10,
    activation: str = "relu",
    pool_size: int = 3,
    pool_stride: int = 2,
    lrn: bool = True,
    lrn_constants: LRNConstants = PAPER_LRN,
    dropout: float = 0.5,
    remove: Sequence[str] = (),
    color_pca: Any = None,
    filters: Sequence[int] = SMALL_FILTERS,
    kernel_sizes: Sequence[int] = SMALL_KERNELS,
    pool_after: Sequence[str] = SMALL_POOL_AFTER,
    lrn_after: Sequence[str] = SMALL_LRN_AFTER,
    dense: Sequence[int] = SMALL_DENSE,
    name: str = "small_alexnet",
) -> keras.Model:
    """A small AlexNet-style network whose design choices are arguments.

    The defaults follow the paper's Figure 2 at a fraction of its widths, for
    32×32 images: conv1 (5×5) and conv2 (5×5), each followed by the
    activation, LRN (§3.3) and overlapping max pooling (§3.4); conv3, conv4
    and conv5 (3×3), pooling after conv5; fc6 and fc7 with dropout (§4.2);
    fc8, which outputs logits. Every convolution keeps its input's size
    (``same`` padding), and every pooling layer's output size depends on its
    stride alone (``same`` padding: ceil(input / stride)). So 3×3 and 2×2
    windows give the same shapes, as they did in the paper (55 to 27 pixels
    either way), and the two networks can start from the same weights.

    Args:
        activation: ``"relu"`` or ``"tanh"``, after every hidden layer
            (`keras.layers.Activation` layers named ``conv1_relu``, ``fc6_tanh``...).
        pool_size, pool_stride: the max-pooling window and stride: 3 and 2
            overlap (the paper), 2 and 2 do not.
        lrn: local response normalisation after the activations of the
            layers in ``lrn_after``.
        lrn_constants: its $k$, $n$, $\\alpha$, $\\beta$: the paper's
            (`alexnet_tut.architectures.PAPER_LRN`) unless changed.
        dropout: rate of the dropout after fc6 and fc7 (0: no dropout layers).
        remove: convolutional layers to leave out, e.g. ``("conv3",)`` (§7),
            with their activation and LRN; the pooling after a removed layer
            stays, so that the maps keep their sizes.
        color_pca: a `alexnet_tut.data.ColorPCA`: the paper's colour
            augmentation (§4.1) as the first layer, active in training only.
        filters, kernel_sizes: one entry per convolutional layer, named
            ``conv1``, ``conv2``... in order.
        pool_after: the convolutional layers followed by pooling.
        dense: widths of the hidden fully connected layers ``fc6``, ``fc7``...;
            the last layer is always ``fc8``.

    Layer names stay those of the full network whatever is switched off or
    removed, so that two networks can be compared layer by layer.
    """
    import keras

    from alexnet_tut.layers import LocalResponseNormalization, PCAColorAugmentation

    if activation not in ACTIVATIONS:
        raise AlexnetTutError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if len(filters) != len(kernel_sizes):
        raise AlexnetTutError(f"filters and kernel_sizes need one entry per layer; got "
                              f"{len(filters)} and {len(kernel_sizes)}")
    names = [f"conv{i + 1}" for i in range(len(filters))]
    unknown = sorted(set(remove) - set(names))
    if unknown:
        raise AlexnetTutError(f"cannot remove {', '.join(unknown)}: the layers are {', '.join(names)}")
    if len(remove) >= len(names):
        raise AlexnetTutError("remove leaves no convolutional layer: keep at least one")
    if not 0.0 <= dropout < 1.0:
        raise AlexnetTutError(f"dropout is a rate in [0, 1), got {dropout}")

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if color_pca is not None:
        x = PCAColorAugmentation(color_pca.eigenvalues, color_pca.eigenvectors, name="pca_color")(x)
    for layer, width, size in zip(names, filters, kernel_sizes):
        if layer not in remove:
            x = keras.layers.Conv2D(width, size, padding="same", name=layer)(x)
            x = keras.layers.Activation(activation, name=f"{layer}_{activation}")(x)
            if lrn and layer in lrn_after:
                c = lrn_constants
                x = LocalResponseNormalization(c.depth_radius, c.k, c.alpha, c.beta,
                                               name=f"{layer}_lrn")(x)
        if layer in pool_after:  # a removed layer's pooling stays, so the maps keep their sizes
            x = keras.layers.MaxPooling2D(pool_size, strides=pool_stride, padding="same",
                                          name=f"{layer}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, width in enumerate(dense):
        layer = f"fc{i + 6}"
        x = keras.layers.Dense(width, name=layer)(x)
        x = keras.layers.Activation(activation, name=f"{layer}_{activation}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{layer}_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="fc8")(x)
    return keras.Model(inputs, outputs, name=name)


def layer_table(model: keras.Model) -> list[tuple[str, str, tuple, int]]:
    """``(name, kind, output shape without the batch axis, parameters)`` for every layer."""
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params())
            for layer in model.layers[1:]]


