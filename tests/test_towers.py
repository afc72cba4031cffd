"""Model parallelism: what crosses between the paper's two towers, read from the model's graph,
and one training step with each tower on its own device.

The oracles are Figure 2 (the shapes of the maps each GPU hands the other) and
the same step on one device. Placing towers on two logical CPU devices runs in
a fresh Python process, because TensorFlow can split the CPU only before its
runtime starts, and this process may have started it.
"""


import keras
import numpy as np
import pytest

from alexnet_tut import towers
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet
from processes import run_python

needs_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="placing work on devices uses TensorFlow")

F32 = 4  # bytes

# What crosses between the paper's GPUs, from Figure 2's shapes:
# conv3 reads both towers' pooled conv2 maps (13×13, 128 per GPU), fc6 both
# towers' pooled conv5 maps (6×6, 128 per GPU), fc7 both halves of fc6 (2048
# each) and fc8, one layer on GPU 1, the other GPU's half of fc7.
FIGURE_2_CROSSINGS = {
    ("cross3", "pool2_gpu1", "gpu1", "gpu2", 13 * 13 * 128),
    ("cross3", "pool2_gpu2", "gpu2", "gpu1", 13 * 13 * 128),
    ("cross6", "pool5_gpu1", "gpu1", "gpu2", 6 * 6 * 128),
    ("cross6", "pool5_gpu2", "gpu2", "gpu1", 6 * 6 * 128),
    ("cross7", "fc6_gpu1", "gpu1", "gpu2", 2048),
    ("cross7", "fc6_gpu2", "gpu2", "gpu1", 2048),
    ("cross8", "fc7_gpu2", "gpu2", "gpu1", 2048),
}


@pytest.fixture(scope="module")
def branches():
    return build_alexnet("paper", towers="branches")


def test_tower_crossings_are_the_maps_figure_2_sends(branches):
    rows = towers.tower_crossings(branches)
    found = {(r["crossing"], r["tensor"], r["from"], r["to"], r["values"]) for r in rows}
    assert found == FIGURE_2_CROSSINGS
    assert all(r["bytes"] == F32 * r["values"] for r in rows)


def test_towers_exchange_234_496_bytes_per_image_forward(branches):
    total = sum(r["bytes"] for r in towers.tower_crossings(branches))
    assert total == F32 * (2 * 13 * 13 * 128 + 2 * 6 * 6 * 128 + 2 * 2048 + 2048) == 234_496


def test_fc8_on_the_other_tower_reverses_the_last_crossing(branches):
    rows = towers.tower_crossings(branches, home_tower="gpu2")
    assert [(r["tensor"], r["to"]) for r in rows if r["crossing"] == "cross8"] == [
        ("fc7_gpu1", "gpu2")]


def test_tower_crossings_needs_the_branch_model():
    with pytest.raises(AlexnetTutError, match="towers='branches'"):
        towers.tower_crossings(build_alexnet("paper", input_shape=(67, 67, 3)))


# --------------------------------------------------------------------------
# One step with each tower on its own device
# --------------------------------------------------------------------------

SMALL = {"input_shape": (67, 67, 3), "num_classes": 10}  # the smoke profile's images


def small_batch(size=3):
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 255, (size, *SMALL["input_shape"])).astype("float32"),
            rng.integers(0, SMALL["num_classes"], size))


@pytest.fixture(scope="module")
def small_branches():
    return build_alexnet("paper", towers="branches", **SMALL)


@pytest.fixture(scope="module")
def same_device_step(small_branches):
    """Both towers on the default CPU: the bookkeeping without a second device."""
    placement = towers.place_towers(small_branches, ["/device:CPU:0", "/device:CPU:0"])
    images, labels = small_batch()
    return towers.forward_backward_on_two_devices(placement, images, labels)


@needs_tensorflow
def test_two_device_step_computes_the_one_device_loss_and_gradients(small_branches,
                                                                    same_device_step):
    images, labels = small_batch()
    reference = towers.step_on_one_device(small_branches, images, labels)
    np.testing.assert_allclose(same_device_step.logits, reference.logits, rtol=1e-5, atol=1e-5)
    assert float(same_device_step.loss) == pytest.approx(float(reference.loss), rel=1e-5)
    assert sorted(same_device_step.gradients) == sorted(reference.gradients)
    assert len(reference.gradients) == len(small_branches.trainable_weights)
    for path, grad in reference.gradients.items():
        scale = np.abs(grad).max() + 1e-12
        assert np.abs(same_device_step.gradients[path] - grad).max() / scale < 1e-4, path


@needs_tensorflow
def test_two_device_step_moves_the_tower_crossings_forward_and_their_gradients_back(
        small_branches, same_device_step):
    batch = len(small_batch()[1])
    listed = towers.tower_crossings(small_branches)
    moved = same_device_step.transfers
    assert [(r["crossing"], r["tensor"], r["from"], r["to"]) for r in moved] == [
        (r["crossing"], r["tensor"], r["from"], r["to"]) for r in listed]
    for row in moved:
        assert row["forward_bytes"] == row["bytes"] * batch
        assert row["backward_bytes"] == row["forward_bytes"]  # one gradient per value sent


@needs_tensorflow
def test_place_towers_wants_one_device_per_tower(small_branches):
    with pytest.raises(AlexnetTutError, match="2 towers"):
        towers.place_towers(small_branches, ["/device:CPU:0"])


@needs_tensorflow
def test_on_two_logical_cpus_each_tower_keeps_its_weights_gradients_and_work():
    result = run_python("""
        import json
        import numpy as np
        from alexnet_tut import distribute, towers
        from alexnet_tut.models import build_alexnet
        devices = distribute.split_cpu(2)
        model = build_alexnet("paper", towers="branches", input_shape=(67, 67, 3), num_classes=10)
        unplaced = sorted({towers.short_device(v.value.device) for v in model.weights})
        placement = towers.place_towers(model, devices)
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, (2, 67, 67, 3)).astype("float32")
        step = towers.forward_backward_on_two_devices(placement, images, np.array([1, 2]))
        reference = towers.step_on_one_device(model, images, np.array([1, 2]))
        print(json.dumps({
            "unplaced": unplaced,
            "variables": towers.variable_devices(placement),
            "gradients": step.gradient_devices,
            "transfers": [[r["from"], r["to"], r["sent_from"], r["received_on"]]
                          for r in step.transfers],
            "logits_gap": float(np.abs(np.asarray(step.logits) - np.asarray(reference.logits)).max()),
        }))
    """)
    device_of = {"gpu1": "CPU:0", "gpu2": "CPU:1"}
    assert result["unplaced"] == ["CPU:0"]  # built in one piece: every weight on one device
    assert len(result["variables"]) == 15  # conv1-conv5, fc6, fc7 on each tower, and fc8
    for row in result["variables"]:
        assert row["device"] == device_of[row["tower"]], row
    for path, device in result["gradients"].items():
        tower = "gpu2" if "_gpu2/" in path else "gpu1"  # fc8 is on gpu1, the home tower
        assert device == device_of[tower], path
    for sender, receiver, sent_from, received_on in result["transfers"]:
        assert (sent_from, received_on) == (device_of[sender], device_of[receiver])
    assert result["logits_gap"] < 1e-4
