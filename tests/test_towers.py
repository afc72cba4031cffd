"""Model parallelism: what crosses between the paper's two towers, read from the model's graph.

The oracle is Figure 2: the shapes of the maps each GPU hands the other.
"""

import pytest

from alexnet_tut import towers
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet

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
