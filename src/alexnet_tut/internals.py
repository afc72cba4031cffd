"""The one place the package reaches into Keras internals.

Everything else uses Keras's public API. What is here has no public
equivalent; it was checked against Keras 3.13.2 (the oldest supported, see
``requirements-oldest.txt``) and 3.15.1 (``requirements.txt``), and
``make test-oldest`` runs the tests that exercise it on the oldest.
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
