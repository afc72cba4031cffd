"""The three AlexNet variants against published numbers: the paper's Figure 2 and §3.5,
Caffe's ``bvlc_alexnet`` (the paper's model, 60,965,224 parameters) and torchvision's
``alexnet`` (61,100,840 parameters)."""

import keras
import numpy as np
import pytest
from keras import ops

from alexnet_tut.architectures import ARCHITECTURES, PAPER_LRN, Conv
from alexnet_tut.models import VARIANTS, build_alexnet, copy_grouped_to_branches

# Published parameter counts: the paper's model equals Caffe's bvlc_alexnet (its
# deploy.prototxt); torchvision's is what torchvision.models.alexnet() reports.
# The one-tower count is the paper's with conv2, conv4 and conv5 ungrouped:
# each of their kernels sees twice the channels, 1,413,120 more weights.
PUBLISHED_PARAMS = {"paper": 60_965_224, "one_tower": 60_965_224 + 1_413_120,
                    "torchvision": 61_100_840}

# Figure 2: output of each named layer for a 227×227 image.
PAPER_SHAPES = {
    "conv1": (55, 55, 96), "pool1": (27, 27, 96),
    "conv2": (27, 27, 256), "pool2": (13, 13, 256),
    "conv3": (13, 13, 384), "conv4": (13, 13, 384),
    "conv5": (13, 13, 256), "pool5": (6, 6, 256),
    "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
}
PAPER_LAYER_PARAMS = {
    "conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936,
    "conv5": 442_624, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000,
}
STABLE_NAMES = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]


@pytest.fixture(scope="module")
def models():
    return {v: build_alexnet(v) for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_count_matches_published(models, variant):
    assert models[variant].count_params() == PUBLISHED_PARAMS[variant]


@pytest.mark.parametrize("variant", VARIANTS)
def test_stable_layer_names_exist(models, variant):
    names = {layer.name for layer in models[variant].layers}
    assert set(STABLE_NAMES) <= names


def test_paper_output_shapes_match_figure_2(models):
    model = models["paper"]
    for name, shape in PAPER_SHAPES.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name


def test_paper_per_layer_parameters(models):
    model = models["paper"]
    for name, count in PAPER_LAYER_PARAMS.items():
        assert model.get_layer(name).count_params() == count, name


def test_the_architecture_table_is_figure_2():
    paper = ARCHITECTURES["paper"]
    assert paper.conv[0] == Conv(96, 11, stride=4, padding="valid")  # 96 kernels, 11×11, stride 4
    assert [c.filters for c in paper.conv] == [96, 256, 384, 384, 256]
    assert [c.size for c in paper.conv] == [11, 5, 3, 3, 3]
    assert [c.groups for c in paper.conv] == [1, 2, 1, 2, 2]
    assert paper.fc == (4096, 4096) and paper.lrn and paper.towers == 2
    assert [c.filters for c in ARCHITECTURES["torchvision"].conv] == [64, 192, 384, 256, 256]
    assert (PAPER_LRN.k, PAPER_LRN.n, PAPER_LRN.alpha, PAPER_LRN.beta) == (2, 5, 1e-4, 0.75)


def test_the_lrn_layers_carry_the_papers_constants(models):
    for name in ("lrn1", "lrn2"):
        lrn = models["paper"].get_layer(name)
        assert (lrn.bias, 2 * lrn.depth_radius + 1, lrn.alpha, lrn.beta, lrn.groups) == (
            2.0, 5, 1e-4, 0.75, 2)


def test_paper_towers_are_grouped_exactly_at_conv2_conv4_conv5(models):
    groups = {n: models["paper"].get_layer(n).groups for n in STABLE_NAMES[:5]}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}


def test_relu_follows_every_conv_and_hidden_dense_layer(models):
    """§3.5: a layer without its ReLU is the most common bug in renderings."""
    for variant, model in models.items():
        for name in STABLE_NAMES[:-1]:
            assert model.get_layer(name).activation is keras.activations.relu, (variant, name)
        assert model.get_layer("fc8").activation is keras.activations.linear


def test_lrn_only_in_the_paper_variant_by_default(models):
    def lrn_names(m):
        return [layer.name for layer in m.layers if "LocalResponse" in type(layer).__name__]

    assert lrn_names(models["paper"]) == ["lrn1", "lrn2"]
    assert lrn_names(models["one_tower"]) == []
    assert lrn_names(build_alexnet("one_tower", lrn=True)) == ["lrn1", "lrn2"]
    assert lrn_names(build_alexnet("paper", lrn=False)) == []


def test_torchvision_variant_shapes(models):
    model = models["torchvision"]
    assert tuple(model.input.shape[1:]) == (224, 224, 3)
    assert tuple(model.get_layer("conv1").output.shape[1:]) == (55, 55, 64)
    assert tuple(model.get_layer("pool5").output.shape[1:]) == (6, 6, 256)


def test_224_input_with_valid_padding_is_the_silent_trap():
    """(224 - 11) / 4 + 1 is not an integer: the maps shrink and fc6 loses inputs."""
    model = build_alexnet("paper", input_shape=(224, 224, 3))
    assert tuple(model.get_layer("conv1").output.shape[1:3]) == (54, 54)
    assert tuple(model.get_layer("pool5").output.shape[1:]) == (5, 5, 256)
    assert model.get_layer("fc6").kernel.shape[0] == 6_400


def test_branches_and_grouped_towers_compute_the_same_function():
    keras.utils.set_random_seed(0)
    grouped = build_alexnet("paper", num_classes=10)
    branches = build_alexnet("paper", num_classes=10, towers="branches")
    assert branches.count_params() == grouped.count_params()
    copy_grouped_to_branches(grouped, branches)
    images = np.random.default_rng(0).uniform(0, 255, (2, 227, 227, 3)).astype("float32")
    a = ops.convert_to_numpy(grouped(images, training=False))
    b = ops.convert_to_numpy(branches(images, training=False))
    assert np.abs(a).max() > 1e-3  # a non-trivial output
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(a).max())


def test_paper_init_draws_from_n_0_001_with_bias_one_in_five_layers():
    keras.utils.set_random_seed(0)
    model = build_alexnet("paper", paper_init=True)
    fc6 = ops.convert_to_numpy(model.get_layer("fc6").kernel)
    assert abs(fc6.std() - 0.01) < 2e-4 and abs(fc6.mean()) < 1e-4
    for name in STABLE_NAMES:
        bias = ops.convert_to_numpy(model.get_layer(name).bias)
        expected = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert np.all(bias == expected), name
    caffe = build_alexnet("paper", paper_init=True, paper_bias=0.1, towers="branches")
    assert np.allclose(ops.convert_to_numpy(caffe.get_layer("conv2_gpu1").bias), 0.1)


def test_weight_decay_is_half_the_paper_value_as_keras_l2():
    model = build_alexnet("one_tower", weight_decay=5e-4, num_classes=10)
    regs = {l.name: l.kernel_regularizer for l in model.layers if hasattr(l, "kernel_regularizer")}
    assert all(abs(r.l2 - 2.5e-4) < 1e-12 for r in regs.values() if r is not None)
    assert sum(r is not None for r in regs.values()) == 8


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="variant must be one of"):
        build_alexnet("vgg")
    with pytest.raises(ValueError, match="only for variant='paper'"):
        build_alexnet("one_tower", towers="branches")
