"""The book's layers against outside oracles: TensorFlow's own LRN and its
gradient, and the paper's formula for the PCA colour shift.

These tests run under any Keras backend (``make test`` runs them under
TensorFlow and again under PyTorch): the layer is computed by the backend in
use, the reference always by ``tf.nn.local_response_normalization``.
"""

import numpy as np
import pytest
from keras import ops

from alexnet_tut.architectures import PAPER_LRN
from alexnet_tut.layers import LocalResponseNormalization
from oracles import rel_err, tf_lrn, tf_lrn_gradient, value_and_grad

tf = pytest.importorskip("tensorflow")

SHAPES = [(2, 7, 7, 8), (1, 13, 13, 96), (3, 5, 4, 256), (4, 3)]
# tf.nn.local_response_normalization's names for the paper's constants (§3.3).
PAPER = dict(depth_radius=PAPER_LRN.depth_radius, bias=PAPER_LRN.k, alpha=PAPER_LRN.alpha,
             beta=PAPER_LRN.beta)


@pytest.mark.parametrize("shape", SHAPES)
def test_lrn_matches_tensorflow_on_random_inputs(shape):
    rng = np.random.default_rng(0)
    # Large activations make the denominator matter: with alpha = 1e-4 and inputs
    # near 1 the layer would be almost a division by 2**0.75 and hide mistakes.
    x = rng.normal(0, 30, size=shape).astype("float32")
    ours = ops.convert_to_numpy(LocalResponseNormalization()(x))
    ref = tf_lrn(x, **PAPER).numpy()
    assert rel_err(ours, ref) < 1e-5


@pytest.mark.parametrize(
    "params",
    [
        dict(depth_radius=1, bias=1.0, alpha=1e-3, beta=0.5),
        dict(depth_radius=0, bias=0.5, alpha=0.1, beta=1.0),
        dict(depth_radius=5, bias=2.0, alpha=1e-2, beta=0.75),
        dict(depth_radius=2, bias=1.5, alpha=1e-3, beta=0.6),  # the general power path
    ],
)
def test_lrn_matches_tensorflow_for_other_parameters(params):
    x = np.random.default_rng(1).normal(0, 5, size=(2, 6, 6, 16)).astype("float32")
    ours = ops.convert_to_numpy(LocalResponseNormalization(**params)(x))
    assert rel_err(ours, tf_lrn(x, **params).numpy()) < 1e-5


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_lrn_gradient_matches_tensorflow(shape):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 30, size=shape).astype("float32")
    upstream = rng.normal(size=shape).astype("float32")
    _, ours = value_and_grad(LocalResponseNormalization(), x, upstream)
    assert rel_err(ours, tf_lrn_gradient(x, upstream, **PAPER)) < 1e-5


@pytest.mark.parametrize(
    "params",
    [
        dict(depth_radius=1, bias=1.0, alpha=1e-3, beta=0.5),
        dict(depth_radius=0, bias=0.5, alpha=0.1, beta=1.0),
        dict(depth_radius=2, bias=1.5, alpha=1e-3, beta=0.6),
    ],
)
def test_lrn_gradient_matches_tensorflow_for_other_parameters(params):
    # The layer's gradient is written out by hand; TensorFlow's is LRNGrad.
    rng = np.random.default_rng(4)
    x = rng.normal(0, 5, size=(2, 6, 6, 16)).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    _, ours = value_and_grad(LocalResponseNormalization(**params), x, upstream)
    assert rel_err(ours, tf_lrn_gradient(x, upstream, **params)) < 1e-5


def test_lrn_gradient_stays_within_each_group():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 30, size=(2, 5, 5, 96)).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    _, ours = value_and_grad(LocalResponseNormalization(groups=2), x, upstream)
    halves = [tf_lrn_gradient(x[..., half], upstream[..., half], **PAPER)
              for half in (slice(0, 48), slice(48, 96))]
    assert rel_err(ours, np.concatenate(halves, axis=-1)) < 1e-5


def test_lrn_groups_normalise_each_group_separately():
    """groups=2 equals two independent LRNs on the channel halves (two GPUs)."""
    x = np.random.default_rng(3).normal(0, 30, size=(2, 5, 5, 96)).astype("float32")
    ours = ops.convert_to_numpy(LocalResponseNormalization(groups=2)(x))
    ref = np.concatenate(
        [tf_lrn(x[..., :48], **PAPER).numpy(), tf_lrn(x[..., 48:], **PAPER).numpy()], axis=-1
    )
    assert rel_err(ours, ref) < 1e-5
    # ...and differs from one LRN over all 96 channels exactly at the seam.
    whole = tf_lrn(x, **PAPER).numpy()
    differs = (np.abs(ours - whole) / np.abs(whole).max()).max(axis=(0, 1, 2)) > 1e-3
    assert set(np.flatnonzero(differs)) == {46, 47, 48, 49}


def test_lrn_keeps_float16_inputs_finite():
    """a**2 overflows float16 above 256; the layer sums in float32."""
    x = np.full((1, 2, 2, 8), 300.0, dtype="float16")
    layer = LocalResponseNormalization(dtype="mixed_float16")
    y = ops.convert_to_numpy(layer(x))
    assert y.dtype == np.float16 and np.all(np.isfinite(y))
    ref = tf_lrn(x.astype("float32"), **PAPER).numpy()
    assert rel_err(y.astype("float32"), ref) < 1e-3


def test_lrn_round_trips_through_config():
    layer = LocalResponseNormalization(depth_radius=3, bias=1.0, alpha=2e-4, beta=0.5, groups=2)
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.depth_radius, clone.bias, clone.alpha, clone.beta, clone.groups) == (
        3, 1.0, 2e-4, 0.5, 2,
    )


def test_lrn_rejects_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match="divisible by groups=2"):
        LocalResponseNormalization(groups=2)(np.zeros((1, 2, 2, 5), "float32"))


# ---------------------------------------------------------------------------
# PCAColorAugmentation (paper §4.1): the oracle is the paper's formula in NumPy.

from alexnet_tut.layers import PCAColorAugmentation  # noqa: E402

PCA_VALUES = np.array([0.2, 0.02, 0.004])
PCA_VECTORS = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]  # orthonormal columns


def test_pca_alpha_zero_leaves_the_image_unchanged():
    x = np.random.default_rng(0).uniform(size=(2, 5, 5, 3)).astype("float32")
    zero = PCAColorAugmentation(PCA_VALUES, PCA_VECTORS, stddev=0.0)
    np.testing.assert_array_equal(ops.convert_to_numpy(zero(x)), x)
    np.testing.assert_array_equal(ops.convert_to_numpy(zero.color_shift(np.zeros((4, 3)))), 0.0)
    layer = PCAColorAugmentation(PCA_VALUES, PCA_VECTORS)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)


def test_pca_shift_is_the_papers_formula():
    alpha = np.random.default_rng(1).normal(scale=0.1, size=(5, 3))
    layer = PCAColorAugmentation(PCA_VALUES, PCA_VECTORS)
    expected = np.stack([PCA_VECTORS @ (a * PCA_VALUES) for a in alpha])
    np.testing.assert_allclose(ops.convert_to_numpy(layer.color_shift(alpha)), expected,
                               rtol=1e-5, atol=1e-8)


def test_pca_shift_has_the_covariance_the_math_says():
    """One shift per image, the same on every pixel, with covariance P diag(0.1² λ²) Pᵀ."""
    n = 20000
    x = np.zeros((n, 2, 2, 3), "float32")
    y = ops.convert_to_numpy(PCAColorAugmentation(PCA_VALUES, PCA_VECTORS, seed=0)(x))
    shift = y[:, 0, 0]
    np.testing.assert_array_equal(y, np.broadcast_to(shift[:, None, None], y.shape))
    in_basis = PCA_VECTORS.T @ np.cov(shift, rowvar=False) @ PCA_VECTORS
    expected = (0.1 * PCA_VALUES) ** 2
    np.testing.assert_allclose(np.diag(in_basis), expected, rtol=0.05)  # ~1 % sampling error
    off = in_basis / np.sqrt(np.outer(expected, expected))
    assert np.all(np.abs(off - np.diag(np.diag(off))) < 0.05)
    assert np.all(np.abs(shift.mean(0)) < 4 * 0.1 * PCA_VALUES[0] / np.sqrt(n))


def test_pca_draws_anew_each_call_and_serialises():
    layer = PCAColorAugmentation(PCA_VALUES, PCA_VECTORS, seed=7)
    x = np.zeros((4, 3), "float32").reshape(1, 2, 2, 3)
    first, second = (ops.convert_to_numpy(layer(x)) for _ in range(2))
    assert not np.allclose(first, second)
    assert ops.convert_to_numpy(layer(np.zeros((3, 3, 3), "float32"))).shape == (3, 3, 3)
    clone = PCAColorAugmentation.from_config(layer.get_config())
    np.testing.assert_allclose(clone.eigenvectors, PCA_VECTORS, rtol=1e-6)
    assert clone.stddev == 0.1 and clone.seed == 7
