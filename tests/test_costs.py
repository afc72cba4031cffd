"""The per-layer table against arithmetic done by hand from Figure 2, and torchvision's published cost."""

import pytest

from alexnet_tut.costs import layer_table, total_macs
from alexnet_tut.models import build_alexnet


def conv_macs(out_side, out_channels, kernel, in_channels, groups=1):
    return out_side * out_side * out_channels * kernel * kernel * in_channels // groups


# Figure 2, layer by layer: output side, kernels, kernel size, input channels, groups.
PAPER_MACS = (
    conv_macs(55, 96, 11, 3)
    + conv_macs(27, 256, 5, 96, 2)
    + conv_macs(13, 384, 3, 256)
    + conv_macs(13, 384, 3, 384, 2)
    + conv_macs(13, 256, 3, 384, 2)
    + 9216 * 4096 + 4096 * 4096 + 4096 * 1000
)


@pytest.fixture(scope="module")
def paper():
    return build_alexnet("paper")


def test_paper_macs_are_figure_2_by_hand(paper):
    assert total_macs(paper) == PAPER_MACS  # 724,406,816: about 0.72 G


def test_one_tower_costs_the_ungrouped_layers_twice():
    grouped = conv_macs(27, 256, 5, 96, 2) + conv_macs(13, 384, 3, 384, 2) \
        + conv_macs(13, 256, 3, 384, 2)
    assert total_macs(build_alexnet("one_tower")) == PAPER_MACS + grouped


def test_torchvision_costs_what_torchvision_publishes():
    # torchvision's AlexNet_Weights.IMAGENET1K_V1 lists 0.714 G operations per image.
    assert round(total_macs(build_alexnet("torchvision")) / 1e9, 3) == 0.714


def test_layer_table_counts_the_paper_neurons(paper):
    rows = {r["layer"]: r for r in layer_table(paper)}
    assert rows["conv1"]["neurons"] == 55 * 55 * 96  # Figure 2 prints 253,440 (a typo)
    assert [rows[n]["neurons"] for n in ("conv2", "conv3", "conv4", "conv5")] == [
        186_624, 64_896, 64_896, 43_264,
    ]
    assert sum(r["params"] for r in rows.values()) == 60_965_224
    assert rows["conv2"]["output"] == "27×27×256" and rows["pool1"]["macs"] == 0
