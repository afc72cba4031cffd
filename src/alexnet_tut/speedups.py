"""Speed work: the same arithmetic as Keras's own layers, computed faster on TensorFlow's CPU kernels.

Nothing here changes what the model computes; a reader can skip this module.
Three things are faster than Keras's defaults on TensorFlow, most of all on
CPUs (``benchmarks/README.md`` has the measurements and the commands):

* `PerGroupConv2D`: ``keras.layers.Conv2D`` with ``groups > 1`` run as one
  convolution per group. Keras compiles grouped convolutions with XLA on
  TensorFlow, because TensorFlow's CPU kernel has no groups, and XLA's CPU
  convolutions are far slower than the oneDNN ones TensorFlow uses otherwise.
* `FastInputGradientDense`: ``keras.layers.Dense`` whose input gradient
  $g W^T$ is asked for as $(W g^T)^T$. For a small batch and a large $W$
  (fc6), oneDNN runs the first form several times slower.
* `fused_momentum_update`: the paper's momentum step for one weight tensor as
  one XLA-compiled function, one pass over the tensor instead of one pass per
  arithmetic operation (`alexnet_tut.recipe.PaperSGD` calls it).

One switch turns all three off: ``ALEXNET_TUT_SPEEDUPS=0`` in the
environment, or `set_enabled(False)` / ``with disabled():`` in code. The
layers then run Keras's own ``call`` and the optimizer Keras's own SGD step;
their weights, names and saved form never change. Other backends (JAX,
PyTorch) always take Keras's own path. ``tests/test_speedups.py`` checks
that the model computes the same function either way.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterator

import keras
from keras import ops

_ENABLED = os.environ.get("ALEXNET_TUT_SPEEDUPS", "1").strip().lower() not in ("0", "false", "off", "no")


def enabled() -> bool:
    """Whether the speed-ups are on (``ALEXNET_TUT_SPEEDUPS``, default on) and the backend is TensorFlow."""
    return _ENABLED and keras.backend.backend() == "tensorflow"


def set_enabled(value: bool) -> None:
    """Turn the speed-ups on or off for this process (models built earlier follow too)."""
    global _ENABLED
    _ENABLED = bool(value)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """``with disabled():`` runs Keras's own computations inside the block.

    A compiled function (``fit``'s training step) keeps whatever path it was
    traced with; call the model eagerly, or compile it inside the block.
    """
    before = _ENABLED
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(before)


@keras.saving.register_keras_serializable(package="alexnet_tut")
class PerGroupConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with ``groups > 1`` computed as one convolution per group.

    A grouped convolution with ``groups=2`` is what the paper's conv2, conv4
    and conv5 compute: each GPU's kernels see only that GPU's maps. This layer
    keeps the grouped layer's weights, name and saved form. On TensorFlow it
    splits the input channels and the kernel's output channels into groups,
    convolves each group with its slice, and concatenates the results, in
    channel order, which is exactly what Keras's grouped convolution computes.
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or not enabled():
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        convolve = super().convolution_op
        inputs_per_group = ops.split(inputs, self.groups, axis=axis)
        kernels_per_group = ops.split(kernel, self.groups, axis=-1)
        parts = [convolve(x, k) for x, k in zip(inputs_per_group, kernels_per_group)]
        return ops.concatenate(parts, axis=axis)


@keras.saving.register_keras_serializable(package="alexnet_tut")
class FastInputGradientDense(keras.layers.Dense):
    """``keras.layers.Dense`` whose input gradient is computed as $(W g^T)^T$ on TensorFlow.

    For $y = x W$, TensorFlow computes the input gradient $g W^T$ as
    ``matmul(g, W, transpose_b=True)``; the same numbers asked for as
    ``transpose(matmul(W, g, transpose_b=True))`` run faster when the batch
    is small and $W$ large. The transposes touch only $g$ and the result,
    which are batch-sized. Everything else (weights, name, saved form) is
    Keras's Dense. Sparse inputs and inputs with more than two axes get
    Keras's own computation. Keras's ``model.quantize`` skips subclasses of
    its layers unless called with ``type_check=False``.
    """

    def call(self, inputs, training=None):
        if not enabled() or len(inputs.shape) != 2:
            return super().call(inputs, training=training)
        import tensorflow as tf

        if isinstance(inputs, tf.SparseTensor):
            return super().call(inputs, training=training)

        # Read the kernel (cast to the compute dtype under mixed precision) into a
        # tensor: a custom gradient must not read variables itself.
        x = _matmul_fast_input_gradient(inputs, tf.convert_to_tensor(self.kernel))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


def _matmul_fast_input_gradient(x, kernel):
    """``x @ kernel`` with the input gradient computed as ``(kernel @ g^T)^T``."""

    @ops.custom_gradient
    def matmul(x, kernel):
        def grad(*args, upstream=None):
            if upstream is None:  # TensorFlow and JAX pass it positionally
                (upstream,) = args
            input_grad = ops.transpose(ops.matmul(kernel, ops.transpose(upstream)))
            kernel_grad = ops.matmul(ops.transpose(x), upstream)
            return ops.cast(input_grad, x.dtype), ops.cast(kernel_grad, kernel.dtype)

        return ops.matmul(x, kernel), grad

    return matmul(x, kernel)


def fused_momentum_update(variable, momentum, gradient, learning_rate, mu: float,
                          decay: float) -> tuple[Any, Any]:
    """The paper's update for one variable, as one XLA-compiled TensorFlow function.

    Returns the new momentum $v' = \\mu v - \\epsilon (g + \\lambda w)$ and the
    new weights $w + v'$: the numbers Keras's SGD computes with one TensorFlow
    op per arithmetic step, each reading and writing a whole tensor (fc6 alone
    has 38 million weights). XLA fuses them into one pass that reads $g$,
    $w$, $v$ and writes $v'$, $w'$. TensorFlow only; on JAX the whole
    training step is compiled already.
    """
    import tensorflow as tf

    dtype = variable.dtype
    return _xla_momentum_step()(
        tf.convert_to_tensor(variable), tf.convert_to_tensor(momentum),
        tf.cast(gradient, dtype), tf.cast(learning_rate, dtype),
        tf.constant(mu, dtype), tf.constant(decay, dtype))


@functools.cache
def _xla_momentum_step():
    """The compiled update, made once per process, so that TensorFlow is imported only here.

    ``reduce_retracing`` lets one trace serve every weight shape; XLA still
    compiles each shape once.
    """
    import tensorflow as tf

    @tf.function(jit_compile=True, reduce_retracing=True)
    def step(variable, momentum, gradient, learning_rate, mu, decay):
        new_momentum = mu * momentum - learning_rate * (gradient + decay * variable)
        return new_momentum, variable + new_momentum

    return step
