"""The kernel-free explorer (viz.static_views): its HTML, its pictures, its feature-map views.

The explorer's script is exercised in a real browser by tests/site (test_site_checker.py);
here the HTML it carries is parsed back and checked against what it was given, and the
feature-map views against viz.feature_maps, the helper the live explorer uses.
"""

import html.parser
import io
import json

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from alexnet_tut import viz  # noqa: E402
from alexnet_tut.errors import AlexnetTutError  # noqa: E402
from alexnet_tut.models import build_alexnet  # noqa: E402
from alexnet_tut.viz import static_views  # noqa: E402
from alexnet_tut.viz.figure import new_figure, unit_range  # noqa: E402

SIZE = 67  # the smallest input every layer accepts (as in test_viz.py)


class _Explorer(html.parser.HTMLParser):
    """The parts of an explorer's HTML: its controls, first picture, caption, data, scripts."""

    def __init__(self):
        super().__init__()
        self.selects, self.ranges, self.options, self.images, self.scripts = [], [], [], [], []
        self.caption, self._in, self._text = None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self.selects.append(attrs)
            self.options.append([])
        elif tag == "option":
            self.options[-1].append(attrs)
            self._in = "option"
        elif tag == "input" and attrs.get("type") == "range":
            self.ranges.append(attrs)
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "script":
            self.scripts.append(attrs)
            self._in, self._text = "script", []
        elif tag == "p" and attrs.get("class") == "static-explorer-caption":
            self._in, self._text = "caption", []

    def handle_data(self, data):
        if self._in in ("script", "caption"):
            self._text.append(data)
        elif self._in == "option":
            self.options[-1][-1]["text"] = data

    def handle_endtag(self, tag):
        if tag == "script" and self._in == "script":
            self.scripts[-1]["text"] = "".join(self._text)
        elif tag == "p" and self._in == "caption":
            self.caption = "".join(self._text)
        self._in = None if tag in ("script", "p", "option") else self._in


def parse(output) -> tuple[_Explorer, dict]:
    """The explorer's parts, and its data with every picture filled in.

    The first view's picture is in the page once, as the ``<img>``; the data leaves its
    entry empty (the script fills it in), and so does this.
    """
    parser = _Explorer()
    parser.feed(output.data)
    data = json.loads(next(s for s in parser.scripts if s.get("type") == "application/json")["text"])
    assert data["sources"][data["images"][0]] == ""
    data["sources"][data["images"][0]] = parser.images[0]["src"]
    return parser, data


def decode(uri: str) -> np.ndarray:
    import base64

    header, encoded = uri.split(",", 1)
    assert header in ("data:image/png;base64", "data:image/jpeg;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))


def squares() -> dict[tuple[str, str], np.ndarray]:
    """Six small pictures, colour × size, each different."""
    views = {}
    for colour, rgb in {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 220)}.items():
        for size in ("small", "large"):
            image = np.full((20, 30, 3), 255, dtype="uint8")
            half = 3 if size == "small" else 8
            image[10 - half:10 + half, 15 - half:15 + half] = rgb
            views[(colour, size)] = image
    return views


# ------------------------------------------------------------------ the explorer's HTML


def test_explorer_carries_every_view_with_one_control_per_key_position():
    views = squares()
    output = static_views.explorer_html(views, controls=("colour", "size"), image_format="png",
                                        title="squares")
    page, data = parse(output)
    assert data["controls"] == ["colour", "size"]
    assert data["options"] == [["red", "green", "blue"], ["small", "large"]]  # first-seen order
    assert [[o["text"] for o in options] for options in page.options] == data["options"]
    # Each key, written as option indices, leads to its own picture, pixel for pixel (PNG).
    for key, view in views.items():
        k = data["keys"].index([data["options"][0].index(key[0]), data["options"][1].index(key[1])])
        np.testing.assert_array_equal(decode(data["sources"][data["images"][k]]), view)
        assert data["captions"][k] == " · ".join(key)
    # The first view is in the page as a plain <img>, so it shows without JavaScript.
    (picture,) = page.images
    np.testing.assert_array_equal(decode(picture["src"]), views[("red", "small")])
    assert picture["alt"] == page.caption == "red · small"
    assert "squares" in output.data


def test_identical_pictures_are_stored_once():
    views = squares()
    views[("red", "large")] = views[("red", "small")].copy()
    _, data = parse(static_views.explorer_html(views, controls=("colour", "size"),
                                               image_format="png"))
    assert len(data["keys"]) == 6 and len(data["sources"]) == 5
    assert data["images"][0] == data["images"][1]


def test_a_slider_control_is_a_range_over_its_values():
    page, _ = parse(static_views.explorer_html(squares(), controls=("colour", "size"),
                                               sliders=("size",)))
    (slider,) = page.ranges
    assert (slider["min"], slider["max"], slider["value"]) == ("0", "1", "0")
    assert slider["data-control"] == "1" and len(page.selects) == 1


def test_one_control_takes_plain_keys_and_custom_captions():
    views = {"before": np.zeros((4, 4, 3), "uint8"), "after": np.full((4, 4, 3), 200, "uint8")}
    _, data = parse(static_views.explorer_html(views, controls=("weights",),
                                               captions={"after": "after training"}))
    assert data["options"] == [["before", "after"]]
    assert data["captions"] == ["before", "after training"]


def test_the_same_views_give_the_same_html():
    first = static_views.explorer_html(squares(), controls=("colour", "size")).data
    again = static_views.explorer_html(squares(), controls=("colour", "size")).data
    assert first == again


def test_text_cannot_close_the_script_that_carries_it():
    views = {"</script><script>alert(1)</script>": np.zeros((4, 4, 3), "uint8"),
             "plain": np.ones((4, 4, 3), "uint8")}
    output = static_views.explorer_html(views, controls=("name",))
    page, data = parse(output)
    assert data["options"][0][0] == "</script><script>alert(1)</script>"
    assert len(page.scripts) == 2  # the data and the explorer's own script, nothing injected


def test_explorer_over_its_budget_says_what_to_reduce():
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3)).astype("uint8")
    views = {str(i): np.roll(noise, i, axis=0) for i in range(5)}
    with pytest.raises(AlexnetTutError, match=r"5 views .* over its budget of 0.10 MB: pass fewer "
                                              r"views, a lower dpi \(now 72\) or image_format='jpeg'"):
        static_views.explorer_html(views, controls=("shift",), image_format="png",
                                   budget_bytes=100_000)


@pytest.mark.parametrize(("views", "controls", "message"), [
    ({("a",): np.zeros((2, 2, 3))}, ("x", "y"), r"has 1 value\(s\) but there are 2 controls"),
    ({}, ("x",), "at least one view"),
    ({"a": np.zeros((2, 2, 3))}, (), "at least one control"),
    ({"a": np.zeros((2, 2, 3))}, ("x", "x"), "control names must differ"),
    ({1: np.zeros((2, 2, 3)), "1": np.zeros((2, 2, 3))}, ("x",), "same once written as text"),
    ({"a": np.zeros((2, 2, 4))}, ("x",), r"image array \(h, w\) or \(h, w, 3\)"),
])
def test_bad_views_or_controls_say_what_to_do(views, controls, message):
    with pytest.raises(AlexnetTutError, match=message):
        static_views.explorer_html(views, controls=controls)


def test_unknown_slider_and_format_say_what_to_do():
    with pytest.raises(AlexnetTutError, match=r"sliders \['depth'\] are not controls"):
        static_views.explorer_html(squares(), controls=("colour", "size"), sliders=("depth",))
    with pytest.raises(AlexnetTutError, match="image_format must be one of jpeg, png"):
        static_views.encode_image(np.zeros((2, 2, 3), "uint8"), "gif")


# ------------------------------------------------------------------------ the pictures


def test_a_figure_is_encoded_with_the_pixels_savefig_draws():
    # No layout engine: matplotlib 3.10's constrained layout places text a pixel apart
    # between savefig and a direct draw (3.11's does not).
    fig = Figure(figsize=(3, 2), facecolor="white")
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 0], color="tab:red")
    ax.set(xlabel="x", ylabel="y")
    ours = np.asarray(Image.open(io.BytesIO(static_views.encode_image(fig, "png", dpi=50))))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50, facecolor="white")
    np.testing.assert_array_equal(ours, np.asarray(Image.open(buffer).convert("RGB")))
    assert ours.shape == (100, 150, 3)


def test_a_transparent_figure_lands_on_white():
    fig = new_figure(1, 1, "")
    fig.patch.set_alpha(0.0)
    pixels = np.asarray(Image.open(io.BytesIO(static_views.encode_image(fig, "png", dpi=20))))
    assert pixels.shape == (20, 20, 3) and (pixels == 255).all()


def test_float_images_are_stretched_like_displayable():
    ramp = np.linspace(-1.0, 3.0, 16, dtype="float32").reshape(4, 4)
    pixels = np.asarray(Image.open(io.BytesIO(static_views.encode_image(ramp, "png"))))
    np.testing.assert_array_equal(pixels, np.round(unit_range(ramp) * 255))


def test_jpeg_is_smaller_than_png_for_a_photo_like_view():
    y, x = np.mgrid[0:120, 0:160]
    photo = (127 + 60 * np.sin(x / 7.0)[..., None] * np.cos(y / 9.0)[..., None]
             + np.random.default_rng(1).normal(0, 8, (120, 160, 3))).clip(0, 255).astype("uint8")
    assert len(static_views.encode_image(photo, "jpeg")) < len(static_views.encode_image(photo, "png")) / 2


# -------------------------------------------------------------- feature maps (chapter 09)


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    shape = (SIZE, SIZE, 3)
    return {"paper": build_alexnet("paper", input_shape=shape, num_classes=10),
            "torchvision": build_alexnet("torchvision", input_shape=shape, num_classes=10)}


@pytest.fixture(scope="module")
def photos():
    rng = np.random.default_rng(2)
    return {"noise": rng.integers(0, 256, (80, 90, 3)).astype("uint8"),
            "ramp": np.broadcast_to(np.linspace(0, 255, 70, dtype="float32")[None, :, None],
                                    (70, 70, 3)).astype("uint8")}


def test_channel_groups_cut_every_channel_once():
    assert static_views.channel_groups(40, 16) == [range(16), range(16, 32), range(32, 40)]
    assert static_views.channel_groups(40, 16, groups=2) == [range(16), range(16, 32)]
    with pytest.raises(AlexnetTutError, match="per_view must be at least 1"):
        static_views.channel_groups(40, 0)


def test_layer_maps_match_feature_maps_layer_by_layer(models, photos):
    model = models["paper"]
    image = viz.fit_to_model(photos["noise"], model)
    maps = static_views.layer_maps(model, image, ("conv1", "lrn1", "no_such_layer", "conv5"))
    assert list(maps) == ["conv1", "lrn1", "conv5"]
    for name, value in maps.items():
        np.testing.assert_allclose(value, viz.feature_maps(model, image, name), rtol=1e-5, atol=1e-5)
    with pytest.raises(AlexnetTutError, match="fc7 has no spatial maps"):
        static_views.layer_maps(model, image, ("conv1", "fc7"))


def test_feature_map_views_cover_photo_model_layer_and_channel_group(models, photos):
    views = static_views.feature_map_views(photos, models, layers=("lrn1", "conv2"),
                                           per_view=16, groups=2)
    # torchvision's AlexNet has no LRN: only its conv2 is offered.
    expected = [(p, m, layer, group) for p in photos for m in models
                for layer in (("lrn1", "conv2") if m == "paper" else ("conv2",))
                for group in ("channels 0–15", "channels 16–31")]
    assert list(views) == expected
    assert views[("ramp", "torchvision", "conv2", "channels 16–31")].get_suptitle() == (
        "ramp through torchvision: conv2, channels 16–31 of 192")


def test_a_map_group_view_draws_the_layers_own_numbers(models, photos):
    model = models["paper"]
    view = static_views.feature_map_views({"noise": photos["noise"]}, {"paper": model},
                                          layers=("conv2",), per_view=4, groups=2)
    fig = view[("noise", "paper", "conv2", "channels 4–7")]
    ax_maps = fig.get_axes()[1]
    mosaic = np.ma.getdata(ax_maps.images[0].get_array())
    expected = viz.feature_maps(model, viz.fit_to_model(photos["noise"], model), "conv2")
    h, w = expected.shape[:2]
    gutter = max(1, round(max(h, w) / 12))
    # 4 channels: a 2 × 2 grid of tiles, channel 4 top left, 7 bottom right.
    for i, channel in enumerate(range(4, 8)):
        y, x = (i // 2) * (h + gutter), (i % 2) * (w + gutter)
        np.testing.assert_allclose(mosaic[y:y + h, x:x + w], expected[..., channel], rtol=1e-5,
                                   atol=1e-5)
    assert [t.get_text() for t in ax_maps.texts] == ["4", "5", "6", "7"]
    assert fig.get_axes()[2].get_ylabel() == "activation"


def test_feature_map_views_fit_the_default_budget_for_five_photos_five_layers_two_groups(
        models):
    # Chapter 09's size of explorer, on scikit-image's photographs (its photos are these).
    import skimage.data

    five = {name: getattr(skimage.data, name)() for name in
            ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")}
    views = static_views.feature_map_views(five, {"paper": models["paper"]}, groups=2)
    assert len(views) == 50
    output = static_views.explorer_html(views, controls=("photo", "model", "layer", "channels"))
    assert len(output.data.encode()) < static_views.DEFAULT_BUDGET_BYTES


def test_feature_map_views_without_any_of_the_layers_say_so(models, photos):
    with pytest.raises(AlexnetTutError, match="none of the models has any of the layers lrn9"):
        static_views.feature_map_views(photos, models, layers=("lrn9",))
