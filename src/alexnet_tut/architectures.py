"""The numbers of each AlexNet variant, in one table the model builder reads.

This module holds data, not code, and imports nothing heavy, so that the
command line can offer the variants without starting TensorFlow.

* ``paper``: Krizhevsky, Sutskever & Hinton (2012), §3.5 and Figure 2: two
  towers (one per GTX 580), conv2, conv4 and conv5 see only their own tower's
  maps, local response normalisation after conv1 and conv2 (§3.3).
* ``one_tower``: the same widths with every kernel seeing every channel of the
  layer below and no LRN, as many renderings build AlexNet.
* ``torchvision``: torchvision's ``alexnet``, which its documentation bases on
  Krizhevsky (2014), "One weird trick": 64-192-384-256-256 kernels (that
  paper's footnote lists 384 for conv4; torchvision's 256 comes from
  cuda-convnet2's one-GPU configuration, pytorch/vision#463), 224×224 input
  with two pixels of zero padding in conv1, no LRN, dropout on the inputs of
  fc6 and fc7.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LRNConstants:
    """The constants of local response normalisation (§3.3).

    $b_c = a_c / (k + \\alpha \\sum a_{c'}^2)^\\beta$, the sum over ``n``
    adjacent channels centred on $c$. The paper prints $k = 2$, $n = 5$,
    $\\alpha = 10^{-4}$, $\\beta = 0.75$ and the formula with $\\alpha$ as it
    stands; cuda-convnet and Caffe divide $\\alpha$ by $n$, PyTorch's
    ``LocalResponseNorm`` does too.
    """

    k: float = 2.0
    n: int = 5
    alpha: float = 1e-4
    beta: float = 0.75

    @property
    def depth_radius(self) -> int:
        """Channels on each side of the centre: ``tf.nn.local_response_normalization``'s name."""
        return (self.n - 1) // 2


#: The paper's LRN (§3.3). Every LRN in the package, the PyTorch comparison
#: model, the benchmarks and the tests take their constants from here.
PAPER_LRN = LRNConstants()


@dataclass(frozen=True)
class Conv:
    """One convolutional layer: ``filters`` kernels of ``size``×``size``, a stride, padding.

    ``padding`` is ``"valid"``, ``"same"`` or a number of zero pixels added on
    every side before a ``valid`` convolution (torchvision's conv1). ``groups``
    is 2 where a layer of the paper model sees only its own tower's maps.
    """

    filters: int
    size: int
    stride: int = 1
    padding: str | int = "same"
    groups: int = 1


@dataclass(frozen=True)
class Architecture:
    """One AlexNet variant, layer by layer.

    Attributes:
        input_size: side of the square input image.
        conv: conv1 … conv5. Max-pooling 3×3 with stride 2 (§3.4, overlapping)
            follows conv1, conv2 and conv5.
        fc: widths of fc6 and fc7; fc8 has one unit per class.
        lrn: local response normalisation after conv1 and conv2 (after the
            ReLU, before the pooling, §3.3).
        towers: how many GPUs the model was split over; each tower normalises
            only its own maps.
        dropout_on_inputs: drop the inputs of fc6 and fc7 (torchvision) instead
            of their outputs (the paper, §4.2).
    """

    input_size: int
    conv: tuple[Conv, Conv, Conv, Conv, Conv]
    fc: tuple[int, int] = (4096, 4096)
    lrn: bool = False
    towers: int = 1
    dropout_on_inputs: bool = False


ARCHITECTURES: dict[str, Architecture] = {
    # §3.5 and Figure 2. 227, not the printed 224: (227 - 11) / 4 + 1 = 55.
    "paper": Architecture(
        input_size=227,
        conv=(
            Conv(96, 11, stride=4, padding="valid"),  # 48 per GPU
            Conv(256, 5, groups=2),                     # own GPU only
            Conv(384, 3),                               # sees both GPUs
            Conv(384, 3, groups=2),                     # own GPU only
            Conv(256, 3, groups=2),                     # own GPU only
        ),
        lrn=True,
        towers=2,
    ),
    "one_tower": Architecture(
        input_size=227,
        conv=(Conv(96, 11, stride=4, padding="valid"), Conv(256, 5), Conv(384, 3),
              Conv(384, 3), Conv(256, 3)),
    ),
    # torchvision/models/alexnet.py (after cuda-convnet2's layers-imagenet-1gpu.cfg).
    "torchvision": Architecture(
        input_size=224,
        conv=(Conv(64, 11, stride=4, padding=2), Conv(192, 5), Conv(384, 3),
              Conv(256, 3), Conv(256, 3)),
        dropout_on_inputs=True,
    ),
}

VARIANTS: tuple[str, ...] = tuple(ARCHITECTURES)

#: The paper's bias initialisation (§5): 1 in these layers, 0 elsewhere.
PAPER_BIAS_ONE_LAYERS: tuple[str, ...] = ("conv2", "conv4", "conv5", "fc6", "fc7")
