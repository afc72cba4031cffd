"""Layers that Keras 3 does not ship: local response normalisation (paper §3.3)
and PCA colour augmentation (paper §4.1).

Both are written with `keras.ops`, so they run on every Keras backend
(TensorFlow, JAX, PyTorch). The LRN writes its gradient out by hand; tests
check it against TensorFlow's own LRN and its gradient. Layers that only make
Keras's own layers faster on some machines live in `alexnet_tut.speedups`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from alexnet_tut.architectures import PAPER_LRN


@keras.saving.register_keras_serializable(package="alexnet_tut")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels, as in AlexNet §3.3.

    For channel $c$ of an activation $a$ with $C$ channels,

    $b_c = a_c / (k + \\alpha \\sum_{c'=\\max(0, c-r)}^{\\min(C-1, c+r)} a_{c'}^2)^\\beta$

    with $r$ = ``depth_radius``, $k$ = ``bias``. The defaults are the paper's
    (`alexnet_tut.architectures.PAPER_LRN`: $n = 2r + 1 = 5$, $k = 2$,
    $\\alpha = 10^{-4}$, $\\beta = 0.75$), and the semantics are those of
    ``tf.nn.local_response_normalization``: $\\alpha$ is *not* divided by $n$
    (cuda-convnet, Caffe and PyTorch divide it).

    ``groups`` splits the channels into equal groups that are normalised
    separately. ``groups=2`` is what the paper's two GPUs did: each normalised
    its own 48 (conv1) or 128 (conv2) kernel maps and never saw the other's.

    The input is channels-last. The sum is computed in float32 even under a
    mixed-precision policy, because $a^2$ overflows float16 above 256.
    """

    def __init__(
        self,
        depth_radius: int = PAPER_LRN.depth_radius,
        bias: float = PAPER_LRN.k,
        alpha: float = PAPER_LRN.alpha,
        beta: float = PAPER_LRN.beta,
        groups: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if depth_radius < 0:
            raise ValueError(f"depth_radius must be >= 0, got {depth_radius}")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.groups = int(groups)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"LocalResponseNormalization needs a known channel count divisible "
                f"by groups={self.groups}; got input shape {input_shape}"
            )
        # The window sum over channels c - r .. c + r is a matrix product with a
        # band matrix: band[i, j] = 1 when |i - j| <= r. One matmul is faster
        # than 2r + 1 shifted slices on every backend. Each group gets its own
        # band: the channels are viewed as [..., groups, channels / groups].
        self._group_size = channels // self.groups
        index = np.arange(self._group_size)
        self._band = (np.abs(index[:, None] - index[None, :]) <= self.depth_radius).astype("float32")
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        rows = ops.reshape(x, (-1, self._group_size))  # one row per pixel and group
        y = _lrn_rows(rows, self._band, self.bias, self.alpha, self.beta)
        return ops.cast(ops.reshape(y, ops.shape(x)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
            groups=self.groups,
        )
        return config


def _lrn_rows(x, band: np.ndarray, bias: float, alpha: float, beta: float):
    """LRN of each row of ``x`` [M, C], with its gradient written out.

    Forward: $z = k + \\alpha\\, x^2 B$, $y = x z^{-\\beta}$ ($B$ the band).
    Backward, for an upstream gradient $g$:
    $\\partial L / \\partial x = g z^{-\\beta} - 2 \\alpha \\beta\\, x \\, (g y / z) B^T$.
    Automatic differentiation of the forward pass gives the same numbers
    through more passes over the activations, and an LRN's cost is those
    passes: it does little arithmetic on a lot of memory
    (``benchmarks/bench_lrn.py`` measures the difference). For the same
    reason the constants $\\alpha$ and $2 \\alpha \\beta$ ride in the small
    band matrix instead of costing a pass each. The band is symmetric, so
    $B^T = B$.
    """
    forward_band = ops.convert_to_tensor(alpha * band)
    backward_band = ops.convert_to_tensor(2.0 * alpha * beta * band)  # B is symmetric

    @ops.custom_gradient
    def lrn(x):
        z = bias + ops.matmul(ops.square(x), forward_band)
        power = _inverse_power(z, beta)
        y = x * power

        def grad(*args, upstream=None):
            if upstream is None:  # TensorFlow and JAX pass it positionally
                (upstream,) = args
            return upstream * power - x * ops.matmul(upstream * y / z, backward_band)

        return y, grad

    return lrn(x)


def _inverse_power(z, beta: float):
    """z ** -beta. A general power is exp(-beta * log z), slow on CPUs; the
    paper's beta = 0.75 is z ** -0.5 * z ** -0.25, two cheap square roots."""
    if beta == 0.75:
        r = ops.rsqrt(z)
        return r * ops.sqrt(r)
    if beta == 0.5:
        return ops.rsqrt(z)
    if beta == 1.0:
        return 1.0 / z
    return ops.power(z, -beta)


@keras.saving.register_keras_serializable(package="alexnet_tut")
class PCAColorAugmentation(keras.layers.Layer):
    """The paper's "fancy PCA" colour augmentation (AlexNet §4.1).

    To every RGB pixel of an image it adds the same colour shift

    $[p_1\\ p_2\\ p_3]\\,[\\alpha_1\\lambda_1\\ \\alpha_2\\lambda_2\\ \\alpha_3\\lambda_3]^T$,

    where $p_i$ and $\\lambda_i$ are the eigenvectors and eigenvalues of the
    $3 \\times 3$ covariance of RGB pixel values over the training set, and
    $\\alpha_i \\sim N(0, \\sigma)$ with $\\sigma = 0.1$ is drawn once per image
    each time the image is shown. The shift moves an image along the
    directions in which natural colours vary most, so the network learns that
    an object's identity does not depend on the colour or intensity of the
    light.

    The formula is literal: the shift is $\\alpha\\lambda$, not
    $\\alpha\\sqrt{\\lambda}$, so its size depends on the units of the pixels.
    Compute the eigenvalues on pixels in the same units as the inputs
    (``alexnet_tut.data`` uses pixels scaled to $[0, 1]$, as fb.resnet.torch
    and most re-implementations do).

    Args:
        eigenvalues: the three eigenvalues $\\lambda_i$.
        eigenvectors: $3 \\times 3$ matrix whose *columns* are the $p_i$
            (the layout ``numpy.linalg.eigh`` returns).
        stddev: standard deviation $\\sigma$ of the $\\alpha_i$ (paper: 0.1).
        seed: seed of the layer's random generator.

    Inputs are channels-last images, ``(..., H, W, 3)`` with a batch axis or
    ``(H, W, 3)`` without one. With ``training=False`` the layer is the
    identity, like the Keras augmentation layers.
    """

    def __init__(self, eigenvalues, eigenvectors, stddev: float = 0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.eigenvalues = [float(v) for v in ops.convert_to_numpy(eigenvalues).reshape(3)]
        vectors = ops.convert_to_numpy(eigenvectors)
        if tuple(vectors.shape) != (3, 3):
            raise ValueError(f"eigenvectors must be 3x3, got shape {vectors.shape}")
        self.eigenvectors = [[float(v) for v in row] for row in vectors]
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def color_shift(self, alpha):
        """The RGB shift $P(\\alpha \\circ \\lambda)$ for each row of ``alpha`` (shape ``(N, 3)``)."""
        vectors = ops.convert_to_tensor(self.eigenvectors, dtype="float32")
        values = ops.convert_to_tensor(self.eigenvalues, dtype="float32")
        return ops.matmul(ops.cast(alpha, "float32") * values, ops.transpose(vectors))

    def call(self, inputs, training=True):
        if not training or self.stddev == 0.0:
            return inputs
        x = ops.convert_to_tensor(inputs)
        batched = len(x.shape) == 4
        batch = ops.shape(x)[0] if batched else 1
        alpha = keras.random.normal((batch, 3), stddev=self.stddev, seed=self.seed_generator)
        shift = self.color_shift(alpha)  # (batch, 3)
        shift = ops.reshape(shift, (batch, 1, 1, 3) if batched else (1, 1, 3))
        return ops.cast(ops.cast(x, "float32") + shift, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "eigenvalues": self.eigenvalues,
                "eigenvectors": self.eigenvectors, "stddev": self.stddev, "seed": self.seed}
