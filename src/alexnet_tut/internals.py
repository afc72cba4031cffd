"""The one place the package reaches into Keras's or TensorFlow's internals.

Everything else uses their public APIs. What is here has no public
equivalent; it was checked against Keras 3.13.2 with TensorFlow 2.20.0 (the
oldest supported, ``requirements-oldest.txt``) and Keras 3.15.1 with
TensorFlow 2.21.0 (``requirements.txt``); ``make test-oldest`` runs the tests
that exercise it on the oldest.
"""

from __future__ import annotations


def momentum_slot(optimizer, variable):
    """The momentum buffer Keras's ``SGD`` keeps for ``variable``.

    ``SGD.update_step`` finds it with the private ``_get_variable_index``,
    which also resolves the per-replica copies that ``tf.distribute`` hands
    to the step. `alexnet_tut.recipe.PaperSGD` needs the same buffer for its
    fused update.
    """
    return optimizer.momentums[optimizer._get_variable_index(variable)]


def tensorflow_uses_onednn() -> bool:
    """Whether TensorFlow's oneDNN ("MKL") kernels are on in this process.

    TensorFlow decides once, when it starts, from ``TF_ENABLE_ONEDNN_OPTS``
    and the CPU; only its private ``_pywrap_util_port`` reports the decision.
    """
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
