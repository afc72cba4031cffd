"""The speed-ups compute what Keras's own layers compute: against per-group ``tf.nn.conv2d``,
NumPy, Keras's ``Dense`` and the whole model with the speed-ups switched off.

These run under every Keras backend; on JAX and PyTorch the layers take Keras's
own path, so the same assertions check that the fallback is exact.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from alexnet_tut import speedups
from alexnet_tut.models import build_alexnet
from alexnet_tut.speedups import FastInputGradientDense, PerGroupConv2D
from oracles import rel_err, value_and_grad

tf = pytest.importorskip("tensorflow")


def per_group_conv(x, kernel, bias, groups):
    """The grouped convolution as ``groups`` ordinary convolutions on split channels.

    ``tf.nn.conv2d`` with a grouped kernel would be the direct oracle, but
    TensorFlow cannot take its gradient on a CPU without oneDNN ("Gradients for
    grouped convolutions are not supported on CPU"); this form runs everywhere.
    """
    xs = tf.split(x, groups, axis=-1)
    ks = tf.split(tf.constant(kernel), groups, axis=-1)
    return tf.concat([tf.nn.conv2d(xi, ki, 1, "SAME") for xi, ki in zip(xs, ks)], -1) + bias


def numpy_grouped_conv(x, kernel, bias, groups):
    """The definition: out[..., o] = sum over its group's inputs of x * kernel, 'same' padding."""
    n, h, w, c = x.shape
    k, _, per_group, out = kernel.shape
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    result = np.zeros((n, h, w, out), "float64")
    outs_per_group = out // groups
    for o in range(out):
        g = o // outs_per_group
        inputs = padded[..., g * per_group:(g + 1) * per_group]
        for dy in range(k):
            for dx in range(k):
                result[..., o] += inputs[:, dy:dy + h, dx:dx + w, :] @ kernel[dy, dx, :, o]
    return result + bias


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_per_group_conv_matches_the_definition_and_split_convolutions(groups):
    rng = np.random.default_rng(groups)
    x = rng.normal(size=(2, 9, 9, 8)).astype("float32")
    layer = PerGroupConv2D(12, 3, padding="same", groups=groups)
    layer.build(x.shape)
    kernel = rng.normal(size=(3, 3, 8 // groups, 12)).astype("float32")
    bias = rng.normal(size=12).astype("float32")
    layer.set_weights([kernel, bias])
    upstream = rng.normal(size=(2, 9, 9, 12)).astype("float32")
    got, got_grad = value_and_grad(layer, x, upstream)

    assert rel_err(got, numpy_grouped_conv(x, kernel, bias, groups)) < 1e-5
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(per_group_conv(xt, kernel, bias, groups) * upstream)
    assert rel_err(got_grad, tape.gradient(loss, xt).numpy()) < 1e-5


def test_per_group_conv_keeps_each_group_to_its_own_channels():
    # Output channels of group 2 must not change when only group 1's inputs change.
    layer = PerGroupConv2D(4, 1, groups=2)
    x = np.random.default_rng(0).normal(size=(1, 3, 3, 6)).astype("float32")
    before = ops.convert_to_numpy(layer(x))
    x[..., :3] += 1.0
    after = ops.convert_to_numpy(layer(x))
    assert np.array_equal(before[..., 2:], after[..., 2:])
    assert not np.allclose(before[..., :2], after[..., :2])


@pytest.mark.parametrize("layer", [lambda: PerGroupConv2D(6, 3, groups=2, name="g"),
                                   lambda: FastInputGradientDense(3, name="g")],
                         ids=["conv", "dense"])
def test_speedup_layers_save_and_load_as_themselves(tmp_path, layer):
    inputs = keras.Input((5, 5, 4) if "Conv" in type(layer()).__name__ else (7,))
    model = keras.Model(inputs, layer()(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("g")) is type(model.get_layer("g"))
    x = np.ones((1, *inputs.shape[1:]), "float32")
    assert np.allclose(ops.convert_to_numpy(model(x)), ops.convert_to_numpy(loaded(x)))


def test_dense_matches_the_math_forward_and_input_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype("float32")
    kernel = rng.normal(size=(6, 5)).astype("float32")
    bias = rng.normal(size=5).astype("float32")
    upstream = rng.normal(size=(4, 5)).astype("float32")
    layer = FastInputGradientDense(5, activation="relu")
    layer.build(x.shape)
    layer.set_weights([kernel, bias])
    got, got_grad = value_and_grad(layer, x, upstream)
    pre = x @ kernel + bias
    assert rel_err(got, np.maximum(pre, 0)) < 1e-6
    assert rel_err(got_grad, (upstream * (pre > 0)) @ kernel.T) < 1e-6


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dense_gradients_and_their_dtypes_equal_keras_dense(policy):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("this compares TensorFlow gradients; other backends run Keras's Dense itself")
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(8, 32)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(8, 16)).astype("float32"))
    weights = [rng.normal(size=(32, 16)).astype("float32"), rng.normal(size=16).astype("float32")]
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        ours = FastInputGradientDense(16, activation="relu")
        reference = keras.layers.Dense(16, activation="relu")
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


def test_the_fast_paths_run_on_tensorflow_and_the_switch_turns_them_off(record_calls):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fast paths are TensorFlow's")
    calls = record_calls(speedups, "_matmul_fast_input_gradient")
    FastInputGradientDense(3)(np.ones((2, 4), "float32"))
    assert calls == [(2, 4)]
    with speedups.disabled():
        assert not speedups.enabled()
        FastInputGradientDense(3)(np.ones((2, 4), "float32"))
    assert calls == [(2, 4)] and speedups.enabled()


def test_the_model_computes_the_same_function_with_and_without_the_speedups():
    model = build_alexnet("paper", input_shape=(67, 67, 3), num_classes=5)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 50, size=(2, 67, 67, 3)).astype("float32")
    upstream = rng.normal(size=(2, 5)).astype("float32")

    def output_and_gradients():
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(model(xt, training=False) * upstream)
        grads = tape.gradient(loss, [xt] + [v.value for v in model.trainable_variables])
        return model(x, training=False).numpy(), [g.numpy() for g in grads]

    if keras.backend.backend() != "tensorflow":
        pytest.skip("compares TensorFlow gradients")
    fast_out, fast_grads = output_and_gradients()
    with speedups.disabled():
        plain_out, plain_grads = output_and_gradients()
    assert rel_err(fast_out, plain_out) < 1e-5
    for fast, plain in zip(fast_grads, plain_grads):
        assert rel_err(fast, plain) < 1e-4


def test_the_environment_variable_turns_the_speedups_off():
    code = "from alexnet_tut import speedups; print(speedups.enabled())"
    for value, expected in (("0", "False"), ("1", "True"), (None, "True")):
        env = {k: v for k, v in os.environ.items() if k != "ALEXNET_TUT_SPEEDUPS"}
        if value is not None:
            env["ALEXNET_TUT_SPEEDUPS"] = value
        env["KERAS_BACKEND"] = "tensorflow"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.stdout.strip() == expected, out.stderr[-2000:]
