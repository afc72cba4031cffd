"""Model parallelism as the paper did it: what crosses between the two GPUs' towers.

Chapter 3 calls `tower_crossings`, which reads from the two-tower model's
graph (``build_alexnet("paper", towers="branches")``) which maps cross from one
GPU to the other and how many values that is per image.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from alexnet_tut.errors import AlexnetTutError

#: Where a layer that belongs to no tower (fc8 in the paper model) runs.
HOME_TOWER = "gpu1"

#: Bytes per value: the paper trained in float32.
BYTES_PER_VALUE = 4


def _tower(name: str) -> str | None:
    """``"gpu1"`` for ``conv3_gpu1``; ``None`` for a layer of no tower (``fc8``, ``flatten``)."""
    suffix = name.rsplit("_", 1)[-1]
    return suffix if "_" in name and suffix.startswith("gpu") else None


def _inputs(layer) -> list:
    inputs = layer.input
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _consumer_towers(model: keras.Model, layer, home_tower: str) -> set[str]:
    """The towers that use ``layer``'s output, looking through weightless layers.

    ``Flatten`` and ``Dropout`` belong to no tower and hold no weights: the
    tensor passes through them to the layers that compute with it. A layer
    with weights but no tower (``fc8``) runs on ``home_tower``.
    """
    towers: set[str] = set()
    for other in model.layers:
        if not any(t is layer.output for t in _inputs(other)):
            continue
        tower = _tower(other.name)
        if tower is not None:
            towers.add(tower)
        elif other.count_params():
            towers.add(home_tower)
        else:
            towers |= _consumer_towers(model, other, home_tower)
    return towers


def tower_crossings(model: keras.Model, home_tower: str = HOME_TOWER) -> list[dict[str, Any]]:
    """What each GPU sends to the other in one forward pass of one image.

    ``model`` is ``build_alexnet("paper", towers="branches")``: its
    ``Concatenate`` layers (``cross3``, ``cross6``, ``cross7``, ``cross8``) are
    where a layer sees both towers. Every input of such a join that comes from
    one tower and is used by a layer of the other tower has to be copied
    across. A join whose consumer belongs to no tower (``fc8``) is computed on
    ``home_tower``, so only the other tower sends.

    Returns one row per transfer: ``crossing`` (the join), ``tensor`` (the
    layer whose output moves), ``from`` and ``to`` (towers), ``shape``,
    ``values`` and ``bytes`` (float32) per image. The backward pass sends the
    same number of values back: the gradients with respect to those tensors.
    """
    rows = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Concatenate):
            continue
        consumers = _consumer_towers(model, layer, home_tower)
        for tensor in _inputs(layer):
            source = next(o for o in model.layers if o.output is tensor)
            sender = _tower(source.name)
            for receiver in sorted(consumers - {sender}):
                shape = tuple(int(d) for d in tensor.shape[1:])
                rows.append({
                    "crossing": layer.name,
                    "tensor": source.name,
                    "from": sender,
                    "to": receiver,
                    "shape": shape,
                    "values": math.prod(shape),
                    "bytes": math.prod(shape) * BYTES_PER_VALUE,
                })
    if not rows:
        raise AlexnetTutError(
            "no tower crossings found: pass build_alexnet('paper', towers='branches')")
    return rows
