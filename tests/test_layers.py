"""The book's layers against outside oracles: TensorFlow's own LRN and grouped
convolution, and the paper's formula for the PCA colour shift.

These tests run under any Keras backend (``make test`` runs them under
TensorFlow and again under PyTorch): the layer is computed by the backend in
use, the reference always by ``tf.nn.local_response_normalization``.
"""

import keras
import numpy as np
import pytest
from keras import ops

from alexnet_tut.layers import Dense, LocalResponseNormalization

tf = pytest.importorskip("tensorflow")

SHAPES = [(2, 7, 7, 8), (1, 13, 13, 96), (3, 5, 4, 256), (4, 3)]
PAPER = dict(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)


def tf_lrn(x, **params):
    """TensorFlow's LRN (4-D only) applied to any rank by folding leading axes."""
    return tf_lrn_tensor(tf.constant(x), **params)


def tf_lrn_gradient(x, upstream, **params):
    """d(sum(tf_lrn(x) * upstream))/dx: TensorFlow's own LRN gradient (LRNGrad)."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(tf_lrn_tensor(xt, **params) * upstream)
    return tape.gradient(loss, xt).numpy()


def tf_lrn_tensor(xt, **params):
    x4 = tf.reshape(xt, (-1, 1, 1, xt.shape[-1]))
    return tf.reshape(tf.nn.local_response_normalization(x4, **params), xt.shape)


def value_and_grad(layer, x, upstream):
    """The layer's output and d(sum(output * upstream))/dx, with the active backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            loss = tf.reduce_sum(y * upstream)
        return y.numpy(), tape.gradient(loss, xt).numpy()
    if backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        y = layer(xt)
        (y * torch.tensor(upstream)).sum().backward()
        return y.detach().numpy(), xt.grad.numpy()
    if backend == "jax":
        import jax

        fn = lambda v: (layer(v) * upstream).sum()  # noqa: E731
        return np.asarray(layer(x)), np.asarray(jax.grad(fn)(x))
    pytest.skip(f"no gradient helper for backend {backend}")


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


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


# ---------------------------------------------------------------------------
# GroupedConv2D: the oracle is TensorFlow's own grouped convolution.

from alexnet_tut.layers import GroupedConv2D  # noqa: E402


def tf_grouped_conv(x, kernel, bias, groups, padding="SAME"):
    """``tf.nn.conv2d`` with a kernel of C_in / groups input channels is TensorFlow's grouped conv."""
    assert kernel.shape[2] * groups == x.shape[-1]
    return tf.nn.conv2d(tf.constant(x), tf.constant(kernel), 1, padding) + bias


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_grouped_conv_matches_tensorflow_forward_and_gradient(groups):
    rng = np.random.default_rng(groups)
    x = rng.normal(size=(2, 9, 9, 8)).astype("float32")
    layer = GroupedConv2D(12, 3, padding="same", groups=groups)
    layer.build(x.shape)
    kernel = rng.normal(size=(3, 3, 8 // groups, 12)).astype("float32")
    bias = rng.normal(size=12).astype("float32")
    layer.set_weights([kernel, bias])
    upstream = rng.normal(size=(2, 9, 9, 12)).astype("float32")
    got, got_grad = value_and_grad(layer, x, upstream)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        want = tf_grouped_conv(xt, kernel, bias, groups)
        loss = tf.reduce_sum(want * upstream)
    assert rel_err(got, want.numpy()) < 1e-5
    assert rel_err(got_grad, tape.gradient(loss, xt).numpy()) < 1e-5


def test_grouped_conv_keeps_each_group_to_its_own_channels():
    # Output channels of group 2 must not change when only group 1's inputs change.
    layer = GroupedConv2D(4, 1, groups=2)
    x = np.random.default_rng(0).normal(size=(1, 3, 3, 6)).astype("float32")
    before = ops.convert_to_numpy(layer(x))
    x[..., :3] += 1.0
    after = ops.convert_to_numpy(layer(x))
    assert np.array_equal(before[..., 2:], after[..., 2:])
    assert not np.allclose(before[..., :2], after[..., :2])


def test_grouped_conv_saves_and_loads_as_itself(tmp_path):
    inputs = keras.Input((5, 5, 4))
    model = keras.Model(inputs, GroupedConv2D(6, 3, groups=2, name="g")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("g"), GroupedConv2D) and loaded.get_layer("g").groups == 2
    x = np.ones((1, 5, 5, 4), "float32")
    assert np.allclose(ops.convert_to_numpy(model(x)), ops.convert_to_numpy(loaded(x)))


def test_dense_matches_the_math_forward_and_input_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype("float32")
    kernel = rng.normal(size=(6, 5)).astype("float32")
    bias = rng.normal(size=5).astype("float32")
    upstream = rng.normal(size=(4, 5)).astype("float32")
    layer = Dense(5, activation="relu")
    layer.build(x.shape)
    layer.set_weights([kernel, bias])
    got, got_grad = value_and_grad(layer, x, upstream)
    pre = x @ kernel + bias
    assert rel_err(got, np.maximum(pre, 0)) < 1e-6
    assert rel_err(got_grad, (upstream * (pre > 0)) @ kernel.T) < 1e-6


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dense_gradients_equal_keras_dense(policy):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the faster input gradient is TensorFlow's path; other backends run Keras's")
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(8, 32)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(8, 16)).astype("float32"))
    weights = [rng.normal(size=(32, 16)).astype("float32"), rng.normal(size=16).astype("float32")]
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        ours, reference = Dense(16, activation="relu"), keras.layers.Dense(16, activation="relu")
        results = []
        for layer in (ours, reference):
            layer.build(x.shape)
            layer.set_weights(weights)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.cast(layer(x), "float32") * upstream)
            results.append([g.numpy() for g in tape.gradient(loss, [x, layer.kernel.value,
                                                                    layer.bias.value])])
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    tolerance = 1e-6 if policy == "float32" else 1e-2
    for got, want in zip(*results):
        assert got.dtype == want.dtype
        assert rel_err(got, want) < tolerance


def test_dense_saves_and_loads_as_itself(tmp_path):
    inputs = keras.Input((7,))
    model = keras.Model(inputs, Dense(3, name="fc")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("fc"), Dense)
    x = np.ones((2, 7), "float32")
    assert np.allclose(ops.convert_to_numpy(model(x)), ops.convert_to_numpy(loaded(x)))


def test_dense_takes_the_fast_input_gradient_on_tensorflow(record_calls):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the faster input gradient is TensorFlow's path")
    import alexnet_tut.layers as book_layers

    calls = record_calls(book_layers, "_matmul_fast_input_gradient")
    Dense(3)(np.ones((2, 4), "float32"))
    assert calls == [(2, 4)]
