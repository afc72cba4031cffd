"""The "looking inside" figures: rendered headlessly, and checked for what they draw.

Models are built at 67×67 input (the smallest size every layer accepts) with
10 classes, so the module runs in seconds; filters and feature maps do not
depend on the input size.
"""

import pathlib

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.image  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from alexnet_tut import viz  # noqa: E402
from alexnet_tut.errors import AlexnetTutError  # noqa: E402
from alexnet_tut.models import build_alexnet  # noqa: E402

SIZE = 67
# Output side of each layer for a 67×67 input, by hand: (67 − 11)/4 + 1 = 15,
# pools (n − 3)//2 + 1; torchvision pads by 2 first: (71 − 11)//4 + 1 = 16.
SIDES = {
    "paper": {"conv1": 15, "lrn1": 15, "pool1": 7, "conv2": 7, "lrn2": 7, "pool2": 3,
              "conv3": 3, "conv4": 3, "conv5": 3, "pool5": 1},
    "torchvision": {"pad1": 71, "conv1": 16, "pool1": 7, "conv2": 7, "pool2": 3,
                    "conv3": 3, "conv4": 3, "conv5": 3, "pool5": 1},
}
WIDTHS = {
    "paper": {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256},
    "one_tower": {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256},
    "torchvision": {"conv1": 64, "conv2": 192, "conv3": 384, "conv4": 256, "conv5": 256},
}


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    shape = (SIZE, SIZE, 3)
    return {
        "paper": build_alexnet("paper", input_shape=shape, num_classes=10),
        "branches": build_alexnet("paper", towers="branches", input_shape=shape, num_classes=10),
        "one_tower": build_alexnet("one_tower", input_shape=shape, num_classes=10),
        "torchvision": build_alexnet("torchvision", input_shape=shape, num_classes=10),
    }


@pytest.fixture(scope="module")
def photo():
    """A smooth colour image (0–255): gradients, so maps have structure."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    return (255 * np.stack([x, y, 0.5 + 0.5 * np.sin(8 * x * y)], axis=-1)).astype("float32")


def render(fig, tmp_path, name="figure.png"):
    """Save as PNG headlessly and read it back; the background must be white."""
    path = pathlib.Path(tmp_path) / name
    fig.savefig(path)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    np.testing.assert_allclose(pixels[0, 0, :3], 1.0)  # white corner
    return pixels


def image_axes(fig):
    return [ax for ax in fig.get_axes() if ax.images]


def unit_range(x):
    return (x - x.min()) / (x.max() - x.min())


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    "variant, tiles, blocks",
    [
        ("paper", 96, ["GPU 1 (kernels 1–48)", "GPU 2 (kernels 49–96)"]),
        ("branches", 96, ["GPU 1 (kernels 1–48)", "GPU 2 (kernels 49–96)"]),
        ("one_tower", 96, ["all 96 kernels"]),
        ("torchvision", 64, ["all 64 kernels"]),
    ],
)
def test_plot_filters_draws_one_tile_per_kernel(models, tmp_path, variant, tiles, blocks):
    fig = viz.plot_filters(models[variant])
    render(fig, tmp_path)
    assert len(image_axes(fig)) == tiles
    assert [sub.get_suptitle() for sub in fig.subfigs] == blocks
    assert fig.get_suptitle().startswith(f"conv1 of {models[variant].name}: {tiles} kernels of 11×11×3")
    assert not any(ax.axison for ax in fig.get_axes())


def test_filter_tiles_are_each_kernel_contrast_normalised(models):
    model = models["branches"]
    fig = viz.plot_filters(model, title="Figure 3")
    assert fig.get_suptitle() == "Figure 3"
    drawn = [ax.images[0].get_array() for ax in image_axes(fig)]
    gpu1 = keras.ops.convert_to_numpy(model.get_layer("conv1_gpu1").kernel)
    gpu2 = keras.ops.convert_to_numpy(model.get_layer("conv1_gpu2").kernel)
    np.testing.assert_allclose(drawn[0], unit_range(gpu1[..., 0]), atol=1e-6)
    np.testing.assert_allclose(drawn[48], unit_range(gpu2[..., 0]), atol=1e-6)
    np.testing.assert_allclose(drawn[95], unit_range(gpu2[..., 47]), atol=1e-6)


def grey_and_colour_kernels(n=8, rng=np.random.default_rng(0)):
    """n grey kernels (R = G = B) then n pure-colour ones (R + G + B = 0 at each pixel)."""
    grey = np.repeat(rng.normal(size=(n, 11, 11, 1)), 3, axis=-1)
    a = rng.choice([-1.0, 1.0], size=(n, 11, 11, 1))
    colour = np.concatenate([a, -a, np.zeros_like(a)], axis=-1)
    return np.concatenate([grey, colour])


def test_colourfulness_is_0_for_grey_1_for_pure_colour():
    kernels = grey_and_colour_kernels()
    score = viz.filter_colourfulness(kernels)
    np.testing.assert_allclose(score[:8], 0, atol=1e-12)
    np.testing.assert_allclose(score[8:], 1, atol=1e-12)
    np.testing.assert_allclose(viz.filter_colourfulness(kernels * 7.5), score, atol=1e-12)  # scale-free
    mixed = viz.filter_colourfulness(kernels[:8] + 0.3 * kernels[8:])
    assert np.all((mixed > 0.05) & (mixed < 0.95))


def band_of(frequency, width=viz.SPECTRUM_BIN_WIDTH):
    return int(frequency // width)


def test_spectrum_of_stripes_and_of_a_constant_sits_in_one_band():
    x = np.arange(11)
    stripes = np.cos(2 * np.pi * 3 * x / 11)[None, :, None] * np.ones((11, 1, 3))
    constant = np.ones((11, 11, 3))
    freqs, power = viz.filter_spectrum(np.stack([stripes, constant]))
    np.testing.assert_allclose(np.diff(freqs), viz.SPECTRUM_BIN_WIDTH)
    np.testing.assert_allclose(power.sum(axis=1), 1)
    assert np.argmax(power[0]) == band_of(3 / 11) and power[0, band_of(3 / 11)] == pytest.approx(1)
    assert power[1, 0] == pytest.approx(1)


def test_spectrum_counts_power_per_coefficient_so_white_noise_is_96_percent_above_one_eighth():
    """White noise has the same expected power at each of the 121 coefficients of an 11×11
    DFT; 116 of them lie above 1/8 cycles per pixel (NumPy's fftfreq is the oracle)."""
    kernels = np.random.default_rng(0).normal(size=(2000, 11, 11, 3))
    freqs, power = viz.filter_spectrum(kernels)
    f = np.fft.fftfreq(11)
    radius = np.hypot(f[:, None], f[None, :])
    share_above = np.mean(radius > 1 / 8)
    assert share_above == pytest.approx(116 / 121)
    above = power[:, freqs > 1 / 8].sum(axis=1)  # 1/8 is a band edge
    assert above.mean() == pytest.approx(share_above, abs=0.002)
    assert 0.95 < above.mean() < 0.97
    # the expected curve is the share of coefficients per band, and no band is empty
    noise_freqs, expected = viz.white_noise_spectrum(11)
    np.testing.assert_allclose(noise_freqs, freqs)
    np.testing.assert_allclose(power.mean(axis=0), expected, atol=0.004)
    assert np.all(expected > 0)
    np.testing.assert_allclose(expected * 121, np.histogram(
        radius, bins=np.arange(len(freqs) + 1) * viz.SPECTRUM_BIN_WIDTH)[0])


def test_spectrum_of_a_gaussian_blob_is_almost_all_below_one_eighth():
    y, x = np.mgrid[-5:6, -5:6]
    blob = np.exp(-(x**2 + y**2) / (2 * 3.0**2))[..., None] * np.ones(3)
    freqs, power = viz.filter_spectrum(blob[None])
    assert power[0, freqs > 1 / 8].sum() < 0.05
    assert power[0, 0] > 0.5  # mostly its mean


def test_spectrum_shares_are_energy_shares_by_parseval():
    """A band's share is its coefficients' |K|² over the kernel's energy N·Σk² (Parseval)."""
    kernel = np.random.default_rng(3).normal(size=(11, 11, 3))
    freqs, power = viz.filter_spectrum(kernel[None])
    energy = 121 * np.sum(kernel**2)
    dft = np.abs(np.fft.fft2(kernel, axes=(0, 1))) ** 2
    f = np.fft.fftfreq(11)
    low = np.hypot(f[:, None], f[None, :]) < 1 / 8
    assert power[0, freqs < 1 / 8].sum() == pytest.approx(dft[low].sum() / energy)


def test_spectrum_rejects_a_single_kernel_without_its_batch_axis():
    with pytest.raises(AlexnetTutError, match=r"\(kernels, height, width, channels\)"):
        viz.filter_spectrum(np.ones((11, 11, 3)))


def test_dead_filters_are_the_tiny_ones():
    kernels = np.random.default_rng(0).normal(size=(20, 11, 11, 3))
    kernels[[3, 17]] *= 1e-3
    assert viz.dead_filters(kernels).tolist() == [3, 17]
    assert viz.dead_filters(kernels, threshold=1e-4).tolist() == []


def test_plot_filter_statistics_shows_the_tower_split(models, tmp_path):
    """Make GPU 1's kernels grey and GPU 2's coloured (and kill two): the figure must say so."""
    model = build_alexnet("paper", input_shape=(SIZE, SIZE, 3), num_classes=10)
    kernels = grey_and_colour_kernels(48)
    kernels[[5, 60]] = 0.0
    bias = np.zeros(96, "float32")
    model.get_layer("conv1").set_weights([np.moveaxis(kernels, 0, -1).astype("float32"), bias])
    fig = viz.plot_filter_statistics(model)
    render(fig, tmp_path)
    ax_colour, ax_freq = fig.get_axes()
    assert ax_colour.get_xlabel() == "kernel"
    assert ax_colour.get_ylabel().startswith("colourfulness")
    assert ax_freq.get_xlabel() == "spatial frequency (cycles per pixel)"
    assert ax_freq.get_ylabel() == "share of power"
    legend = sorted(t.get_text() for t in ax_colour.get_legend().get_texts())
    assert legend == [
        "GPU 1 (kernels 1–48): mean 0.00",
        "GPU 2 (kernels 49–96): mean 0.98",  # 47 of 48 score 1, the dead one 0
        "dead (< 0.1× median norm)",
    ]
    assert "(2 dead kernels)" in fig.get_suptitle()
    assert len(ax_colour.patches) == 96  # one bar per kernel
    labels = [t.get_text() for t in ax_freq.get_legend().get_texts()]
    assert labels == ["GPU 1 (kernels 1–48)", "GPU 2 (kernels 49–96)", "white noise (expected)"]


def test_plot_filter_statistics_one_tower(models, tmp_path):
    fig = viz.plot_filter_statistics(models["torchvision"])
    render(fig, tmp_path)
    assert len(fig.get_axes()[0].patches) == 64
    assert len(fig.get_axes()[1].get_lines()) == 2  # the tower and white noise


def test_plot_filter_changes_draws_trained_minus_initial(models, tmp_path):
    initial = models["paper"]
    trained = keras.models.clone_model(initial)
    kernel, bias = initial.get_layer("conv1").get_weights()
    step = np.zeros_like(kernel)
    step[:, :, 0, 7] = 1.0  # kernel 8 gains a red plane; the others do not change
    trained.get_layer("conv1").set_weights([kernel + step, bias])
    fig = viz.plot_filter_changes(initial, trained)
    render(fig, tmp_path)
    tiles = [ax.images[0].get_array() for ax in image_axes(fig)]
    assert len(tiles) == 96 and "minus its initial weights" in fig.get_suptitle()
    np.testing.assert_allclose(tiles[7][..., 0], 1.0)  # red stretched to white
    np.testing.assert_allclose(tiles[7][..., 1:], 0.0)
    with pytest.raises(AlexnetTutError, match="cannot be compared"):
        viz.plot_filter_changes(models["torchvision"], trained)


def test_plot_filter_spectra_draws_each_set_and_white_noise(tmp_path):
    rng = np.random.default_rng(0)
    sets = {"noise": rng.normal(size=(16, 11, 11, 3)), "smooth": np.ones((4, 11, 11, 3))}
    fig = viz.plot_filter_spectra(sets, title="spectra", limits={"stride 4": 1 / 8})
    render(fig, tmp_path)
    ax = fig.get_axes()[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["noise", "smooth", "white noise (expected)"]
    assert ax.get_xlabel() == "spatial frequency (cycles per pixel)"
    with pytest.raises(AlexnetTutError, match="different sizes"):
        viz.plot_filter_spectra({"a": np.ones((1, 11, 11, 3)), "b": np.ones((1, 7, 7, 3))}, title="x")


def test_filter_norms_against_numpy():
    kernels = np.random.default_rng(1).normal(size=(5, 11, 11, 3))
    np.testing.assert_allclose(viz.filter_norms(kernels),
                               [np.linalg.norm(k.ravel()) for k in kernels])


# ------------------------------------------------------------- feature maps


@pytest.mark.parametrize("variant", ["paper", "one_tower", "torchvision"])
def test_feature_map_shapes_per_layer(models, photo, variant):
    sides = SIDES["torchvision" if variant == "torchvision" else "paper"]
    if variant == "one_tower":  # no LRN by default
        sides = {k: v for k, v in sides.items() if not k.startswith("lrn")}
    widths = WIDTHS[variant]
    for layer, side in sides.items():
        maps = viz.feature_maps(models[variant], photo, layer)
        channels = 3 if layer == "pad1" else widths.get(layer) or widths["conv" + layer[-1]]
        assert maps.shape == (side, side, channels), layer
    assert viz.feature_maps(models[variant], photo, "fc7").shape == (4096,)
    assert viz.feature_maps(models[variant], photo, "fc8").shape == (10,)


def test_feature_maps_every_layer_of_the_branches_model(models, photo):
    model = models["branches"]
    expected = {"conv1_gpu1": (15, 15, 48), "lrn2_gpu2": (7, 7, 128), "cross3": (3, 3, 256),
                "conv5_gpu2": (3, 3, 128), "fc6_gpu1": (2048,), "cross8": (4096,)}
    for layer in model.layers:
        maps = viz.feature_maps(model, photo, layer.name)
        assert maps.shape == tuple(layer.output.shape[1:])
        if layer.name in expected:
            assert maps.shape == expected[layer.name]


def test_conv1_map_matches_a_hand_convolution(models, photo):
    """conv1 at map position (i, j) sees the 11×11 patch at (4i, 4j): ReLU(patch·kernel + bias)."""
    model = models["paper"]
    kernel, bias = model.get_layer("conv1").get_weights()
    maps = viz.feature_maps(model, photo, "conv1")
    for i, j, c in [(0, 0, 0), (7, 3, 50), (14, 14, 95)]:
        patch = photo[4 * i : 4 * i + 11, 4 * j : 4 * j + 11]
        expected = max(0.0, float(np.sum(patch * kernel[..., c]) + bias[c]))
        assert maps[i, j, c] == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_feature_maps_of_fc8_are_the_logits(models, photo):
    model = models["one_tower"]
    logits = keras.ops.convert_to_numpy(model(photo[None], training=False))[0]
    np.testing.assert_allclose(viz.feature_maps(model, photo, "fc8"), logits, rtol=1e-5, atol=1e-5)


def test_feature_maps_errors_are_one_line(models, photo):
    with pytest.raises(AlexnetTutError, match="has no layer 'conv6'; its layers are .*conv5"):
        viz.feature_maps(models["paper"], photo, "conv6")
    with pytest.raises(AlexnetTutError, match="images are 50×50×3 but .* takes 67×67×3"):
        viz.feature_maps(models["paper"], photo[:50, :50], "conv1")


def test_fit_to_model_resizes_and_crops(models):
    photo = np.zeros((100, 200, 3), "uint8")
    assert viz.fit_to_model(photo, models["paper"]).shape == (SIZE, SIZE, 3)


def test_receptive_fields_of_the_paper_model_are_the_published_ones():
    """11, 19, 51, 67, 99, 131, 163, 195: conv1 to pool5 (conv5 follows two poolings)."""
    rows = {r["layer"]: r for r in viz.receptive_fields(build_alexnet("paper"))}
    sizes = {name: rows[name]["size"] for name in
             ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")}
    assert sizes == {"conv1": 11, "pool1": 19, "conv2": 51, "pool2": 67, "conv3": 99,
                     "conv4": 131, "conv5": 163, "pool5": 195}
    assert rows["lrn1"]["size"] == 11  # LRN works per position
    assert [rows[n]["jump"] for n in ("conv1", "pool1", "pool2", "pool5")] == [4, 8, 16, 32]
    assert [rows[n]["side"] for n in ("conv1", "pool1", "pool2", "conv5", "pool5")] == [55, 27, 13, 13, 6]


def positive_paper_model():
    """The paper model with every weight positive and no biases: a unit is non-zero exactly
    when an input pixel it sees is (ReLU, LRN and max pooling keep positive values positive)."""
    keras.utils.set_random_seed(2)
    model = build_alexnet("paper", num_classes=10)
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None:
            kernel, bias = layer.get_weights()
            layer.set_weights([np.abs(kernel) + 0.01, np.zeros_like(bias)])
    return model


@pytest.mark.parametrize("layer, unit", [("conv2", 13), ("pool2", 6), ("conv5", 6),
                                         ("pool5", 2), ("pool5", 3)])
def test_receptive_fields_match_which_pixels_a_unit_responds_to(layer, unit):
    """Outside oracle: light single pixels and see which ones reach a unit of the real model."""
    model = positive_paper_model()
    row = next(r for r in viz.receptive_fields(model) if r["layer"] == layer)
    first = row["start"] + unit * row["jump"]
    last = first + row["size"] - 1
    side = model.input_shape[1]
    centre = min(max((first + last) // 2, 0), side - 1)
    columns = [x for x in (first - 1, first, (first + last) // 2, last, last + 1) if 0 <= x < side]
    images = np.zeros((len(columns), side, side, 3), "float32")
    for i, x in enumerate(columns):
        images[i, centre, x] = 1.0
    probe = keras.Model(model.input, model.get_layer(layer).output)
    response = keras.ops.convert_to_numpy(probe(images))[:, unit, unit].max(axis=-1)
    for x, value in zip(columns, response):
        assert (value > 0) == (first <= x <= last), (layer, unit, x)


def test_receptive_fields_count_the_padding_of_torchvisions_conv1():
    rows = {r["layer"]: r for r in viz.receptive_fields(build_alexnet("torchvision"))}
    assert rows["conv1"]["start"] == -2 and rows["conv1"]["size"] == 11
    assert rows["pool5"]["size"] == 195 and "pad1" not in rows


@pytest.mark.parametrize("layer, tiles", [("conv1", 64), ("conv3", 64), ("pool5", 64)])
def test_plot_feature_maps_grid(models, photo, tmp_path, layer, tiles):
    fig = viz.plot_feature_maps(models["paper"], photo, layer)
    render(fig, tmp_path)
    assert len(image_axes(fig)) == tiles
    assert fig.get_suptitle().startswith(f"{layer} of alexnet_paper: 64 of ")


def test_plot_feature_maps_titles_tiles_with_channel_numbers_and_draws_a_colour_bar(models, photo):
    model = models["paper"]
    fig = viz.plot_feature_maps(model, photo, "conv2", channels=[200, 3, 77])
    tiles = image_axes(fig)
    assert [ax.get_title() for ax in tiles] == ["200", "3", "77"]
    maps = viz.feature_maps(model, photo, "conv2")
    np.testing.assert_allclose(tiles[0].images[0].get_array(), maps[..., 200])
    low, high = tiles[1].images[0].get_clim()
    assert low == pytest.approx(maps[..., [200, 3, 77]].min())
    assert high == pytest.approx(maps[..., [200, 3, 77]].max())
    bars = [ax for ax in fig.get_axes() if ax.get_ylabel() == "activation"]
    assert len(bars) == 1  # one colour bar for the shared scale
    with pytest.raises(AlexnetTutError, match="channels 0 to 255; there is no channel 256"):
        viz.plot_feature_maps(model, photo, "conv2", channels=[256])


def test_plot_feature_maps_small_layer_and_dense_layer(models, photo, tmp_path):
    fig = viz.plot_feature_maps(models["torchvision"], photo, "conv1", max_channels=10, title="t")
    render(fig, tmp_path)
    assert len(image_axes(fig)) == 10 and fig.get_suptitle() == "t"
    first = image_axes(fig)[0].images[0].get_array()
    np.testing.assert_allclose(first, viz.feature_maps(models["torchvision"], photo, "conv1")[..., 0])
    fig = viz.plot_feature_maps(models["torchvision"], photo, "fc7")
    render(fig, tmp_path, "dense.png")
    assert len(image_axes(fig)) == 1 and "4096 activations" in fig.get_suptitle()


def test_plot_strongest_channels(models, photo, tmp_path):
    model = models["paper"]
    fig = viz.plot_strongest_channels(model, photo, "conv2", k=3)
    render(fig, tmp_path)
    maps = viz.feature_maps(model, photo, "conv2")
    means = maps.mean(axis=(0, 1))
    best = sorted(range(maps.shape[-1]), key=lambda c: -means[c])[:3]  # brute force
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes][0] == "input"
    assert [ax.get_title().split(" (")[0] for ax in axes[1:]] == [f"channel {c}" for c in best]
    overlay = axes[1].images[1].get_array()
    assert overlay.shape == (SIZE, SIZE)  # upsampled to the photo
    # bilinear upsampling stays within the map's range (backends differ in the details)
    assert overlay.max() == pytest.approx(maps[..., best[0]].max(), rel=0.05)
    assert "the 3 most active of 256 channels" in fig.get_suptitle()


def test_plot_strongest_channels_of_a_dense_layer_says_what_to_do(models, photo):
    with pytest.raises(AlexnetTutError, match="fc7 has no spatial maps; pick one of conv1"):
        viz.plot_strongest_channels(models["paper"], photo, "fc7")


# ---------------------------------------------------------------- explorer


@pytest.fixture()
def explorer(models):
    rng = np.random.default_rng(0)
    photos = {
        "noise": rng.integers(0, 256, (80, 100, 3)).astype("uint8"),
        "tall": rng.integers(0, 256, (90, 70, 3)).astype("uint8"),
    }
    chosen = {"paper": models["paper"], "branches": models["branches"],
              "torchvision": models["torchvision"]}
    return viz.FeatureMapExplorer(photos, chosen)


def test_explorer_starts_on_conv1(explorer, tmp_path):
    assert explorer.view() == ("noise", "paper", "conv1", 0)
    assert explorer.channel.max == 95
    assert explorer.last_figure.get_suptitle() == "noise through paper: conv1, channel 0 of 96 (15×15)"
    render(explorer.last_figure, tmp_path)
    ax_map = explorer.last_figure.get_axes()[1]
    assert ax_map.get_xlabel() == "x (map pixels)" and ax_map.get_ylabel() == "y (map pixels)"


def test_explorer_callback_follows_the_widgets(explorer):
    explorer.layer.value = "conv2"
    assert explorer.channel.max == 255
    assert explorer.last_figure.get_suptitle() == "noise through paper: conv2, channel 0 of 256 (7×7)"

    explorer.channel.value = 200
    assert "channel 200 of 256" in explorer.last_figure.get_suptitle()
    drawn = explorer.last_figure.get_axes()[1].images[0].get_array()
    photo = viz.fit_to_model(explorer.photos["noise"], explorer.models["paper"])
    expected = viz.feature_maps(explorer.models["paper"], photo, "conv2")[..., 200]
    np.testing.assert_allclose(drawn, expected)

    explorer.model.value = "torchvision"  # same layer name exists: kept; 192 channels
    assert explorer.layer.value == "conv2" and explorer.channel.max == 191
    assert explorer.channel.value == 191  # clamped to the new layer's last channel
    assert explorer.last_figure.get_suptitle() == "noise through torchvision: conv2, channel 191 of 192 (7×7)"

    explorer.model.value = "branches"  # no "conv2" there: the layer list changes
    assert explorer.layer.options[0] == "conv1_gpu1" and "cross3" in explorer.layer.options
    assert explorer.layer.value == "conv1_gpu1" and explorer.channel.max == 47

    explorer.photo.value = "tall"
    assert explorer.last_figure.get_suptitle().startswith("tall through branches: conv1_gpu1")


def test_explorer_show_displays_widget_and_static_default_view(explorer, monkeypatch):
    import IPython.display

    explorer.layer.value = "pool2"  # the static figure is still the default view
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    explorer.show()
    assert shown[0] is explorer.widget
    assert shown[1].get_suptitle() == (
        "Static view (no live kernel): noise through paper: conv1, channel 0 of 96 (15×15)"
    )


# ------------------------------------------------------ nearest neighbours


@pytest.fixture(scope="module")
def images(photo):
    rng = np.random.default_rng(1)
    return np.stack([photo * rng.uniform(0.2, 1.0) + rng.normal(0, 30, photo.shape) for _ in range(7)])


def brute_force_neighbours(features, q, k):
    """Distances by an explicit loop; ties broken by index."""
    d = [(float(np.sqrt(np.sum((features[i] - features[q]) ** 2))), i)
         for i in range(len(features)) if i != q]
    d.sort()
    return [i for _, i in d[:k]], [dist for dist, _ in d[:k]]


def test_nearest_neighbours_match_brute_force(models, images):
    model = models["paper"]
    features = np.stack([viz.feature_maps(model, image, "fc7") for image in images])
    indices, distances = viz.nearest_neighbours(model, images, 2, k=4)
    expected_indices, expected_distances = brute_force_neighbours(features, 2, 4)
    assert indices.tolist() == expected_indices
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4)

    indices, distances = viz.nearest_neighbours(model, images, [0, 5], k=3, layer="pool5")
    pool5 = np.stack([viz.feature_maps(model, image, "pool5").ravel() for image in images])
    assert indices.shape == (2, 3)
    assert indices[1].tolist() == brute_force_neighbours(pool5, 5, 3)[0]


def test_plot_neighbours_rows(models, images, tmp_path):
    indices, distances = viz.nearest_neighbours(models["paper"], images, [0, 3], k=4)
    fig = viz.plot_neighbours(images, [0, 3], indices, distances=distances)
    render(fig, tmp_path)
    axes = np.array(fig.get_axes()).reshape(2, 5)
    assert [ax.get_title() for ax in axes[:, 0]] == ["query 0", "query 3"]
    assert axes[1, 1].get_title() == f"#1: image {indices[1, 0]}\nd = {distances[1, 0]:.3g}"
    assert len(image_axes(fig)) == 10
    assert fig.get_suptitle().startswith("Nearest neighbours")


def test_plot_neighbours_names_classes_and_marks_the_wrong_ones(models, images):
    indices = np.array([[1, 2], [0, 4]])
    labels = np.array([0, 0, 1, 1, 0, 1, 1])
    fig = viz.plot_neighbours(images, [0, 3], indices, labels=labels, class_names=["cat", "dog"])
    axes = np.array(fig.get_axes()).reshape(2, 3)
    assert axes[0, 0].get_title() == "query 0\ncat"
    assert axes[0, 1].get_title() == "#1: image 1\ncat"  # same class: no mark
    assert axes[0, 2].get_title() == "#2: image 2\ndog ✗"
    assert axes[0, 2].title.get_color() == "tab:red"
    assert axes[1, 1].get_title() == "#1: image 0\ncat ✗"


def brute_force_share(features, labels, k):
    """The N × N × D way, for a handful of images: every pair's difference, then its norm."""
    d = np.linalg.norm(features[:, None] - features[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.mean(labels[nearest] == labels[:, None])


@pytest.mark.parametrize("chunk", [1, 4, 256])
def test_same_class_share_matches_brute_force_in_any_chunk(chunk):
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 6)
    features = rng.normal(size=(24, 50)) + 1.5 * labels[:, None]  # classes drift apart
    expected = brute_force_share(features, labels, 5)
    assert viz.same_class_share(features, labels, k=5, chunk=chunk) == pytest.approx(expected)
    assert 0.25 < expected < 1


def test_same_class_baselines_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])  # 6 images: 3, 2 and 1 per class
    chance, ceiling = viz.same_class_baselines(labels, k=2)
    assert chance == pytest.approx((3 * 2 / 5 + 2 * 1 / 5 + 0) / 6)
    assert ceiling == pytest.approx((3 * 1 + 2 * 0.5 + 0) / 6)
    m, k = 4, 5  # m images per class, k neighbours: (m - 1)/k
    assert viz.same_class_baselines(np.repeat(np.arange(3), m), k)[1] == pytest.approx((m - 1) / k)
    with pytest.raises(AlexnetTutError, match="k must be between 1 and 5"):
        viz.same_class_share(np.zeros((6, 2)), labels, k=6)


def test_first_per_class_keeps_a_few_of_each_and_stops_reading():
    read = []

    def batches():
        for start in range(0, 40, 4):  # classes in folder order: 0 x 10, 1 x 10, ...
            read.append(start)
            labels = np.arange(start, start + 4) // 10
            yield np.arange(start, start + 4)[:, None] * np.ones((1, 2)), labels

    images, labels = viz.first_per_class(batches(), per_class=3, num_classes=4)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert images[:, 0].tolist() == [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32]
    assert read[-1] == 32  # the last batch it needed; nothing after it was read


def test_plot_parallelism_draws_every_crossing_of_the_model_and_the_ring(tmp_path):
    from alexnet_tut import towers

    branches = build_alexnet("paper", towers="branches", input_shape=(SIZE, SIZE, 3), num_classes=10)
    crossings = towers.tower_crossings(branches)
    fig = viz.plot_parallelism(crossings, branches.count_params(), replicas=4, title="two ways")
    render(fig, tmp_path)
    ax_model, ax_data = fig.get_axes()
    labels = [t.get_text() for t in ax_model.texts]
    assert sorted(l for l in labels if l[0].isdigit()) == sorted(f"{r['values']:,}" for r in crossings)
    assert labels.count("fc8") == 1 and labels.count("conv3") == 2  # one fc8, on the tower fc7 crosses to
    assert len(crossings) == 7  # pool2 both ways, pool5 both ways, fc6 both ways, fc7 one way
    centre = next(t.get_text() for t in ax_data.texts if t.get_text().startswith("ring"))
    sent = 2 * 3 / 4 * branches.count_params()
    assert f"= {sent / 1e6:,.1f} M gradients" in centre
    assert sum(t.get_text().startswith("replica") for t in ax_data.texts) == 4
    with pytest.raises(AlexnetTutError, match="at least 2 replicas"):
        viz.plot_parallelism(crossings, 10, replicas=1, title="x")


# -------------------------------------------------------------- portability


@pytest.mark.parametrize("module", sorted(p.name for p in pathlib.Path(viz.__file__).parent.glob("*.py"))
                         + ["../pretrained.py"])
def test_helpers_use_no_tensorflow_directly(module):
    """keras.ops and NumPy only, so the helpers run under any Keras backend."""
    source = (pathlib.Path(viz.__file__).parent / module).read_text()
    assert "import tensorflow" not in source and "tf." not in source


# --------------------------------------------------------------------------
# Training curves and the confusion matrix


def test_confusion_matrix_counts_pairs_against_a_hand_count():
    labels = [0, 0, 1, 2, 2, 2]
    predictions = [0, 1, 1, 2, 0, 2]
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(viz.confusion_matrix(labels, predictions, 3), expected)
    assert viz.confusion_matrix([], [], 2).sum() == 0


def test_confusion_matrix_rejects_mismatched_or_out_of_range_input():
    with pytest.raises(AlexnetTutError, match="pair up"):
        viz.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(AlexnetTutError, match=r"\[0, 2\)"):
        viz.confusion_matrix([0, 2], [0, 1], 2)


def test_plot_confusion_matrix_labels_axes_with_class_names():
    fig = viz.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["tench", "church"], title="cm")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tench", "church"]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "3", "4"]  # zero cells stay blank
    with pytest.raises(AlexnetTutError, match="does not fit"):
        viz.plot_confusion_matrix(np.zeros((3, 3)), ["a", "b"], title="x")


def test_training_curves_plot_both_splits_and_mark_learning_rate_drops():
    history = [{"loss": 2.0 - e / 10, "val_loss": 2.1 - e / 10, "top1": 0.1 * e,
                "val_top1": 0.1 * e, "top5": 0.5, "val_top5": 0.5,
                "learning_rate": 0.01 if e < 2 else 0.001} for e in range(4)]
    fig = viz.plot_training_curves(history, title="run")
    loss_axis = fig.axes[0]
    lines = [l for l in loss_axis.get_lines() if len(l.get_xdata()) == 4]
    assert len(lines) == 2  # training and validation
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 1.9, 1.8, 1.7])
    drops = [l for l in loss_axis.get_lines() if l.get_linestyle() == ":"]
    assert [float(l.get_xdata()[0]) for l in drops] == [2.5]  # after epoch 2
    ticks = [t for t in loss_axis.get_xticks() if 0.5 <= t <= 4.5]
    assert ticks == [1, 2, 3, 4]  # whole epochs only
    rate_axis = fig.axes[3]
    assert rate_axis.get_yscale() == "log" and rate_axis.get_title() == "learning rate"
    np.testing.assert_allclose(rate_axis.get_lines()[0].get_ydata(), [0.01, 0.01, 0.001, 0.001])
    top1 = viz.plot_training_curves(history, title="run", chance=0.25).axes[1]
    assert [l.get_ydata()[0] for l in top1.get_lines() if l.get_linestyle() == "--"] == [0.25]
    with pytest.raises(AlexnetTutError, match="no finished epoch"):
        viz.plot_training_curves([], title="empty")
