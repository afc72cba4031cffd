"""Outside oracles the layer tests share: TensorFlow's LRN and its gradient, and autodiff on any backend.

The reference is always TensorFlow's own op; the layer under test runs on the
active Keras backend.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf


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
