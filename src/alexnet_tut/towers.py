"""Model parallelism as the paper did it: what crosses between the two GPUs' towers.

Chapters 3 and 7 call these on the two-tower model written as branches
(``build_alexnet("paper", towers="branches")``):

* `tower_crossings` reads from the model's graph which maps cross from one
  GPU to the other, and how many values that is per image;
* `place_towers` copies the model so that each tower's weights are created on
  its own device, and `variable_devices` shows where each weight lives;
* `forward_backward_on_two_devices` runs one forward and backward pass with
  each tower on its device, copies exactly the tensors `tower_crossings`
  lists (and their gradients on the way back), and measures what it copied;
  `step_on_one_device` is the same step on one device, to compare with.

TensorFlow is imported inside the functions that place work on devices, so
that `tower_crossings` also runs under another Keras backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

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


# --------------------------------------------------------------------------
# The towers on two devices
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class TowerPlacement:
    """The branch model with each tower's weights created on its own device.

    Attributes:
        model: the ``towers="branches"`` model whose graph is followed.
        devices: tower name (``"gpu1"``, ``"gpu2"``) to TensorFlow device name.
        layers: layer name to the layer that computes it: for a layer with
            weights, a copy built on its tower's device (``fc8``, which has no
            tower, on ``home_tower``'s); weightless layers are the model's own.
        home_tower: where the layers of no tower run.
        crossings: the model's `tower_crossings`, the only tensors that move.
    """

    model: keras.Model
    devices: dict[str, str]
    layers: dict[str, keras.layers.Layer]
    home_tower: str
    crossings: list[dict[str, Any]]


def place_towers(model: keras.Model, devices: Sequence[str],
                 home_tower: str = HOME_TOWER) -> TowerPlacement:
    """Copy ``model``'s layers so that each tower's weights live on its own device.

    A variable lives on the device that was current when it was created, and
    Keras creates a layer's variables when it builds the layer. The branch
    model was built in one piece, so all its weights sit on one device; here
    each layer with weights is rebuilt inside ``tf.device`` of its tower
    (``devices[0]`` for ``gpu1``, ``devices[1]`` for ``gpu2``) and given the
    model's weights. That is the paper's scheme: a GPU holds its own half of
    the kernels and never reads the other half.
    """
    import tensorflow as tf

    crossings = tower_crossings(model, home_tower)
    towers = sorted({t for layer in model.layers if (t := _tower(layer.name))})
    if len(devices) != len(towers):
        raise AlexnetTutError(
            f"the model has {len(towers)} towers ({', '.join(towers)}); pass that many devices, "
            f"got {len(devices)}")
    device_of = dict(zip(towers, devices))
    layers = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not layer.weights:
            layers[layer.name] = layer
            continue
        copy = type(layer).from_config(layer.get_config())
        with tf.device(device_of[_tower(layer.name) or home_tower]):
            copy.build(layer.input.shape)
        copy.set_weights(layer.get_weights())
        layers[layer.name] = copy
    return TowerPlacement(model, device_of, layers, home_tower, crossings)


def short_device(name: str) -> str:
    """``"CPU:1"`` for ``"/job:localhost/replica:0/task:0/device:CPU:1"``."""
    return name.rsplit("device:", 1)[-1]


def variable_devices(placement: TowerPlacement) -> list[dict[str, Any]]:
    """One row per layer with weights: its tower, parameters, and the device its variables live on."""
    rows = []
    for name, layer in placement.layers.items():
        if not layer.weights:
            continue
        devices = sorted({short_device(v.value.device) for v in layer.weights})
        rows.append({"layer": name, "tower": _tower(name) or placement.home_tower,
                     "params": layer.count_params(), "device": ", ".join(devices)})
    return rows


@dataclass(frozen=True)
class TwoDeviceStep:
    """What `forward_backward_on_two_devices` computed and moved.

    Attributes:
        logits: the model's output for the batch.
        loss: the mean cross-entropy of the batch.
        gradients: variable path (``"conv1_gpu2/kernel"``) to the gradient of
            the loss with respect to it.
        gradient_devices: variable path to the device its gradient was computed on.
        transfers: one row per `tower_crossings` row, with what was measured:
            ``forward_bytes`` (the tensor copied to the other device) and
            ``backward_bytes`` (its gradient, copied back), for the whole batch,
            and the devices ``sent_from`` and ``received_on``.
    """

    logits: Any
    loss: Any
    gradients: dict[str, Any]
    gradient_devices: dict[str, str]
    transfers: list[dict[str, Any]]


def forward_backward_on_two_devices(placement: TowerPlacement, images, labels) -> TwoDeviceStep:
    """One forward and backward pass of the branch model with each tower on its own device.

    The forward pass runs the layers in the graph's order, each inside
    ``tf.device`` of its tower, and a weightless layer of no tower
    (``cross3``, ``flatten``, ``drop7``) on every tower that uses its output.
    Where a layer needs a tensor computed on the other device, the tensor is
    copied there (``tf.identity`` on the receiving device): those copies must
    be exactly the rows of `tower_crossings`, which is checked.

    The backward pass retraces the graph in reverse, one layer at a time, each
    on its own device: a layer turns the gradient of its output into the
    gradients of its inputs and of its weights. The gradient with respect to
    a copied tensor is copied back to the device that sent it. That is the
    backward traffic, measured here as well.

    Dropout is off (inference mode), so the step is deterministic and can be
    compared with `step_on_one_device`. Python runs the loop eagerly, one
    operation after another, so the two devices take turns rather than work
    at the same time: this shows where work and data go, not a speed-up.
    """
    import tensorflow as tf

    model, devices = placement.model, placement.devices
    values: dict[tuple[str, str], Any] = {}  # (layer, tower) -> its output on that tower's device
    inputs: dict[tuple[str, str], list] = {}  # (layer, tower) -> [(node | None, tensor used)]
    tapes: dict[tuple[str, str], Any] = {}  # (layer, tower) -> the tape of that layer's operations
    copies: dict[tuple[str, str], dict] = {}  # (tensor, to) -> the transfer and the copy
    order: list[tuple[str, tuple[str, str]]] = []  # ("layer" | "copy", key), in the order computed
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        placed = placement.layers[layer.name]
        for tower in sorted(_runs_on(model, layer, placement.home_tower)):
            key = (layer.name, tower)
            used = [_input_on(tower, tensor, layer.name, model, images, values, copies, order,
                              devices) for tensor in _inputs(layer)]
            args = [tensor for _, tensor in used]
            # One tape per layer, watching only its inputs and weights: its backward
            # step then covers this layer's operations and nothing below it.
            with tf.device(devices[tower]), tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch([tensor for node, tensor in used if node is not None])
                tape.watch([w.value for w in placed.trainable_weights])
                values[key] = placed(args if isinstance(layer.input, (list, tuple)) else args[0])
            inputs[key], tapes[key] = used, tape
            order.append(("layer", key))
    output_key = order[-1][1]
    with tf.device(devices[output_key[1]]), tf.GradientTape() as tape:
        tape.watch(values[output_key])
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, values[output_key], from_logits=True))
    with tf.device(devices[output_key[1]]):
        upstream = {("layer", output_key): tape.gradient(loss, values[output_key])}

    gradients, gradient_devices = {}, {}
    for kind, key in reversed(order):
        grad = upstream.pop((kind, key), None)
        if grad is None:  # nothing the loss depends on
            continue
        if kind == "copy":  # every user of the copy is done: send its gradient back
            record = copies[key]
            with tf.device(devices[record["from"]]):
                grad = tf.identity(grad)
            record["backward_bytes"] = _nbytes(grad)
            _accumulate(upstream, ("layer", (record["tensor"], record["from"])), grad)
            continue
        weights = placement.layers[key[0]].trainable_weights
        sources = [(node, tensor) for node, tensor in inputs[key] if node is not None]
        with tf.device(devices[key[1]]):
            grads = tapes.pop(key).gradient(
                values[key], [t for _, t in sources] + [w.value for w in weights],
                output_gradients=grad)
        for (node, _), input_grad in zip(sources, grads):
            _accumulate(upstream, node, input_grad)
        for variable, weight_grad in zip(weights, grads[len(sources):]):
            gradients[variable.path] = weight_grad
            gradient_devices[variable.path] = short_device(weight_grad.device)

    transfers = _check_transfers(placement.crossings, copies)
    return TwoDeviceStep(values[output_key], loss, gradients, gradient_devices, transfers)


def step_on_one_device(model: keras.Model, images, labels) -> TwoDeviceStep:
    """The same step as `forward_backward_on_two_devices`, on the default device, nothing moved."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = model(images)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True))
    weights = model.trainable_weights
    grads = tape.gradient(loss, weights)
    return TwoDeviceStep(logits, loss, {w.path: g for w, g in zip(weights, grads)},
                         {w.path: short_device(g.device) for w, g in zip(weights, grads)}, [])


def _runs_on(model: keras.Model, layer, home_tower: str) -> set[str]:
    """The towers a layer is computed on: its own, ``home_tower`` (fc8), or its users' (a join)."""
    tower = _tower(layer.name)
    if tower is not None:
        return {tower}
    if layer.weights:
        return {home_tower}
    return _consumer_towers(model, layer, home_tower)


def _input_on(tower, tensor, consumer, model, images, values, copies, order, devices):
    """``(node, tensor)``: one input of ``consumer`` on ``tower``, copied there if computed elsewhere.

    ``node`` is ``None`` for the images (every device is given the batch),
    ``("layer", key)`` for a tensor computed on this tower, and
    ``("copy", key)`` for a tensor copied from the other tower: a transfer,
    recorded in ``copies`` the first time it is needed.
    """
    import tensorflow as tf

    producer = next(layer for layer in model.layers if layer.output is tensor)
    if isinstance(producer, keras.layers.InputLayer):
        return None, images
    if (producer.name, tower) in values:
        return ("layer", (producer.name, tower)), values[(producer.name, tower)]
    key = (producer.name, tower)
    if key not in copies:
        sender = next(t for (name, t) in values if name == producer.name)
        sent = values[(producer.name, sender)]
        with tf.device(devices[tower]):
            copy = tf.identity(sent)
        copies[key] = {
            "crossing": consumer, "tensor": producer.name, "from": sender, "to": tower,
            "copy": copy, "forward_bytes": _nbytes(copy), "backward_bytes": 0,
            "sent_from": short_device(sent.device), "received_on": short_device(copy.device)}
        order.append(("copy", key))
    return ("copy", key), copies[key]["copy"]


def _accumulate(upstream: dict, node, grad) -> None:
    """Add ``grad`` to the gradient flowing into ``node`` (a tensor used by several layers)."""
    upstream[node] = grad if upstream.get(node) is None else upstream[node] + grad


def _nbytes(tensor) -> int:
    return int(math.prod(tensor.shape)) * tensor.dtype.size


def _check_transfers(crossings: list[dict], copies: dict) -> list[dict[str, Any]]:
    """The measured transfers in `tower_crossings`' order; an error if the two disagree."""
    moved = {(r["crossing"], r["tensor"], r["from"], r["to"]): r for r in copies.values()}
    listed = [(r["crossing"], r["tensor"], r["from"], r["to"]) for r in crossings]
    if sorted(moved) != sorted(listed):
        raise AlexnetTutError(
            f"the two-device run moved {sorted(moved)}, but tower_crossings lists {sorted(listed)}")
    rows = []
    for row in crossings:
        record = moved[(row["crossing"], row["tensor"], row["from"], row["to"])]
        rows.append({**row, **{k: record[k] for k in (
            "forward_bytes", "backward_bytes", "sent_from", "received_on")}})
    return rows
