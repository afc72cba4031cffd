"""Feature maps: what one image looks like at any layer of a model."""

from __future__ import annotations

import math

import keras
import numpy as np
from matplotlib.figure import Figure

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.pretrained import centre_crop, resize_short_side
from alexnet_tut.viz.figure import displayable, new_figure


def fit_to_model(image: np.ndarray, model: keras.Model) -> np.ndarray:
    """A photo (values 0–255, any size) resized and centre-cropped to the model's input.

    The shorter side is resized to the input size, then the centre square is
    kept. Values stay in 0–255, as float32; apply the model's own
    normalisation afterwards if it has one.
    """
    size = model.input_shape[1]
    return centre_crop(resize_short_side(image, size), size).astype("float32")


def _layer_output_model(model: keras.Model, layer_name: str) -> keras.Model:
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise AlexnetTutError(
            f"model {model.name} has no layer {layer_name!r}; its layers are {', '.join(names)}"
        )
    return keras.Model(model.input, model.get_layer(layer_name).output)


def _batch(model: keras.Model, images) -> np.ndarray:
    images = np.asarray(images, dtype="float32")
    expected = tuple(model.input_shape[1:])
    if images.shape[1:] != expected:
        raise AlexnetTutError(
            f"images are {'×'.join(map(str, images.shape[1:]))} but {model.name} takes "
            f"{'×'.join(map(str, expected))}; resize them first, e.g. with viz.fit_to_model"
        )
    return images


def feature_maps(model: keras.Model, image: np.ndarray, layer_name: str) -> np.ndarray:
    """The activations of one image at one named layer (inference mode).

    Builds ``keras.Model(model.input, model.get_layer(layer_name).output)``, so
    any layer works: ``conv3``, ``lrn1``, ``pool5``, ``fc7``, ``conv2_gpu1``…
    Returns ``(height, width, channels)`` for spatial layers, ``(units,)`` for
    dense ones.
    """
    sub = _layer_output_model(model, layer_name)
    x = _batch(model, np.asarray(image)[None])
    return keras.ops.convert_to_numpy(sub(x, training=False))[0]


def layer_activations(
    model: keras.Model, images, layer_name: str = "fc7", batch_size: int = 32
) -> np.ndarray:
    """The activations of many images at one layer, flattened: ``(images, features)``."""
    sub = _layer_output_model(model, layer_name)
    out = sub.predict(_batch(model, images), batch_size=batch_size, verbose=0)
    return np.asarray(out).reshape(len(out), -1)


def spatial_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers whose outputs are maps (height × width × channels)."""
    return [
        layer.name
        for layer in model.layers
        if len(layer.output.shape) == 4
        and not isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D))
    ]


def plot_feature_maps(
    model: keras.Model,
    image: np.ndarray,
    layer_name: str,
    *,
    max_channels: int = 64,
    title: str | None = None,
) -> Figure:
    """The first ``max_channels`` channels of one layer's output for one image, as a grid.

    All tiles share one colour scale (dark = 0 after a ReLU), so silent
    channels look silent. A dense layer's vector is drawn as one square image.
    """
    maps = feature_maps(model, image, layer_name)
    if maps.ndim == 1:
        side = math.ceil(math.sqrt(maps.size))
        square = np.full(side * side, np.nan, dtype="float32")
        square[: maps.size] = maps
        fig = new_figure(5, 5, title or f"{layer_name} of {model.name}: {maps.size} activations, row by row")
        ax = fig.subplots()
        ax.imshow(square.reshape(side, side), cmap="viridis")
        ax.set_axis_off()
        return fig
    h, w, channels = maps.shape
    n = min(channels, max_channels)
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    title = title or (
        f"{layer_name} of {model.name}: {n} of {channels} channels, {h}×{w} each (shared colour scale)"
    )
    fig = new_figure(max(6, columns * 1.0), rows * 1.0 + 0.5, title)
    axes = fig.subplots(rows, columns, squeeze=False)
    low, high = float(maps.min()), float(maps.max())
    for c, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if c < n:
            ax.imshow(maps[..., c], cmap="viridis", vmin=low, vmax=high)
    return fig


def _upsample(channel_map: np.ndarray, height: int, width: int) -> np.ndarray:
    resized = keras.ops.image.resize(channel_map[..., None], (height, width), interpolation="bilinear")
    return keras.ops.convert_to_numpy(resized)[..., 0]


def strongest_channels(maps: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` channels with the largest mean activation, strongest first."""
    return np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:k]


def plot_strongest_channels(
    model: keras.Model, image: np.ndarray, layer_name: str, k: int = 4, *, title: str | None = None
) -> Figure:
    """The photo, then the ``k`` most active channels upsampled and overlaid on it.

    "Most active" means the largest mean activation over the map. The maps are
    stretched bilinearly to the photo's size, so positions line up only
    roughly (each map pixel sees a large, overlapping window of the photo).
    """
    maps = feature_maps(model, image, layer_name)
    if maps.ndim != 3:
        raise AlexnetTutError(
            f"{layer_name} has no spatial maps; pick one of {', '.join(spatial_layer_names(model))}"
        )
    photo = displayable(image)
    best = strongest_channels(maps, k)
    title = title or f"{layer_name} of {model.name}: the {len(best)} most active of {maps.shape[-1]} channels"
    fig = new_figure(3 * (len(best) + 1), 3.4, title)
    axes = fig.subplots(1, len(best) + 1, squeeze=False)[0]
    axes[0].imshow(photo)
    axes[0].set_title("input")
    for ax, c in zip(axes[1:], best):
        ax.imshow(photo)
        ax.imshow(_upsample(maps[..., c], *photo.shape[:2]), cmap="inferno", alpha=0.6)
        ax.set_title(f"channel {c} (mean {maps[..., c].mean():.2g})")
    for ax in axes:
        ax.set_axis_off()
    return fig
