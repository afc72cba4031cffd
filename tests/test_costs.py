"""The per-layer table against arithmetic done by hand from Figure 2, and torchvision's published cost."""

import pytest

from alexnet_tut.costs import activation_bytes, layer_frame, layer_table, total_macs
from alexnet_tut.errors import AlexnetTutError
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


# Values each layer of the paper model outputs per image, from Figure 2's shapes: conv1 and
# conv2 twice (the convolution and its LRN), then the pools, conv3-5, and fc6-fc8 (fc6 and
# fc7 twice: the layer and its dropout). Flatten only reshapes pool5 and is not counted.
PAPER_ACTIVATIONS = (
    2 * 55 * 55 * 96 + 27 * 27 * 96
    + 2 * 27 * 27 * 256 + 13 * 13 * 256
    + 2 * 13 * 13 * 384 + 13 * 13 * 256 + 6 * 6 * 256
    + 2 * 4096 + 2 * 4096 + 1000
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


def test_layer_frame_total_row_sums_the_columns(paper):
    frame = layer_frame(paper)
    assert frame.index[-1] == "total"
    assert frame.loc["total", "params"] == 60_965_224 == paper.count_params()
    assert frame.loc["total", "macs"] == PAPER_MACS
    assert frame.loc["total", "neurons"] == PAPER_ACTIVATIONS + 6 * 6 * 256  # + flatten
    assert frame.loc["conv2", "kind"] == "Conv2D, groups=2"
    assert frame.loc["conv3", "kind"] == "Conv2D" and frame.loc["fc6", "kind"] == "Dense"
    assert list(layer_frame(paper, totals=False).index) == [r["layer"] for r in layer_table(paper)]


def test_activation_bytes_are_figure_2_shapes_times_batch_times_four(paper):
    assert activation_bytes(paper, 128) == PAPER_ACTIVATIONS * 128 * 4
    assert round(activation_bytes(paper, 128) / 1e9, 2) == 0.65  # about 0.65 GB at batch 128
    assert activation_bytes(paper, 1, bytes_per_value=2) == PAPER_ACTIVATIONS * 2


def test_activation_bytes_rejects_an_empty_batch(paper):
    with pytest.raises(AlexnetTutError, match="batch_size"):
        activation_bytes(paper, 0)
