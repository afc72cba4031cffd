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


def receptive_fields(model: keras.Model) -> list[dict]:
    """Which input pixels each spatial layer's units see, computed from the layers' geometry.

    Walks the model's graph from its input. A convolution or pooling with
    window $k$ and stride $s$ on a layer whose units are $j$ input pixels
    apart and see $r$ pixels makes units that see $r + (k - 1)\\,j$ pixels,
    $j\\,s$ apart; padding moves where the first one starts. Layers that
    work per position (ReLU, LRN, dropout, a concatenation of towers) change
    nothing.

    Returns:
        One dict per layer with a spatial output, in the model's order:
        ``layer``, ``side`` (its map is ``side`` × ``side``), ``size`` (each
        unit sees ``size`` × ``size`` input pixels, clipped by nothing: near
        the borders part of it is padding), ``jump`` (input pixels between
        neighbouring units) and ``start`` (input column of the first pixel
        unit 0 sees; negative when it starts in the padding). Unit $i$ sees
        columns ``start + i·jump`` to ``start + i·jump + size − 1``, and the
        same rows.
    """
    geometry: dict[int, tuple[int, int, int]] = {}  # id(output tensor) -> (size, jump, start)
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            geometry[id(layer.output)] = (1, 1, 0)
            continue
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        known = [geometry[id(t)] for t in inputs if id(t) in geometry]
        if not known or len(layer.output.shape) != 4:
            continue  # a dense layer, or one that does not follow from the input's geometry
        size, jump, start = known[0]
        side_in = inputs[0].shape[1]
        window = _window(layer)
        if window is not None:
            k, stride, padding = window
            before = _padding_before(side_in, k, stride, padding)
            size, start, jump = size + (k - 1) * jump, start - before * jump, jump * stride
        elif isinstance(layer, keras.layers.ZeroPadding2D):
            start -= layer.padding[0][0] * jump
        geometry[id(layer.output)] = (size, jump, start)
        if layer.name in spatial_layer_names(model):
            rows.append({"layer": layer.name, "side": int(layer.output.shape[1]), "size": size,
                         "jump": jump, "start": start})
    return rows


def _window(layer) -> tuple[int, int, str] | None:
    """``(window, stride, padding)`` of a convolution or pooling layer along the rows, else ``None``."""
    if isinstance(layer, keras.layers.Conv2D):
        (k, _), (stride, _) = layer.kernel_size, layer.strides
        if tuple(layer.dilation_rate) != (1, 1):
            raise AlexnetTutError(f"{layer.name} is dilated: receptive_fields does not handle that")
        return k, stride, layer.padding
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return layer.pool_size[0], layer.strides[0], layer.padding
    return None


def _padding_before(side: int, k: int, stride: int, padding: str) -> int:
    """Zeros Keras adds before the first row: none for ``valid``, half of what ``same`` needs."""
    if padding == "valid":
        return 0
    total = max((math.ceil(side / stride) - 1) * stride + k - side, 0)
    return total // 2


def plot_feature_maps(
    model: keras.Model,
    image: np.ndarray,
    layer_name: str,
    *,
    max_channels: int = 64,
    channels: list[int] | np.ndarray | None = None,
    title: str | None = None,
) -> Figure:
    """Channels of one layer's output for one image, as a grid with one shared colour scale.

    Shows ``channels`` when given, else the first ``max_channels``. Each tile
    is titled with its channel number (counted from 0, as the layer's last
    axis is indexed). All tiles share one colour scale, drawn as a colour
    bar, so silent channels look silent (0 is dark after a ReLU). A dense
    layer's vector is drawn as one square image, row by row.
    """
    maps = feature_maps(model, image, layer_name)
    if maps.ndim == 1:
        side = math.ceil(math.sqrt(maps.size))
        square = np.full(side * side, np.nan, dtype="float32")
        square[: maps.size] = maps
        fig = new_figure(5.5, 5, title or f"{layer_name} of {model.name}: {maps.size} activations, row by row")
        ax = fig.subplots()
        shown = ax.imshow(square.reshape(side, side), cmap="viridis")
        ax.set_axis_off()
        fig.colorbar(shown, ax=ax, label="activation", shrink=0.8)
        return fig
    h, w, total = maps.shape
    if channels is None:
        chosen = list(range(min(total, max_channels)))
    else:
        chosen = [int(c) for c in channels]
        bad = [c for c in chosen if not 0 <= c < total]
        if bad:
            raise AlexnetTutError(
                f"{layer_name} has channels 0 to {total - 1}; there is no channel {bad[0]}")
    n = len(chosen)
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    title = title or (
        f"{layer_name} of {model.name}: {n} of {total} channels, {h}×{w} each (shared colour scale)"
    )
    fig = new_figure(max(6, columns * 1.0) + 1.0, rows * 1.1 + 0.6, title)
    axes = fig.subplots(rows, columns, squeeze=False)
    low, high = float(maps[..., chosen].min()), float(maps[..., chosen].max())
    shown = None
    for ax, c in zip(axes.flat, chosen):
        shown = ax.imshow(maps[..., c], cmap="viridis", vmin=low, vmax=high)
        ax.set_title(str(c), fontsize="x-small", pad=2)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes, label="activation", shrink=0.8)
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
