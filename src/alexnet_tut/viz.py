"""Looking inside AlexNet: first-layer filters, feature maps, an explorer, fc7 neighbours.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` with a white
background and a title. The figure is not left open in pyplot, so a notebook
shows it exactly once: as the cell's last expression, or with ``display(fig)``.
Nothing here needs a screen (the Agg backend is enough) and nothing calls
TensorFlow directly (only ``keras.ops`` and NumPy), so the helpers run under
any Keras backend.

Images passed to a model are model-ready arrays, ``(height, width, 3)`` at
the model's input size. For display they are contrast-stretched to ``[0, 1]``
(``uint8`` images are simply divided by 255), so normalised inputs such as
:func:`alexnet_tut.pretrained.preprocess_torchvision`'s still look like photos.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.pretrained import centre_crop, resize_short_side

TOWER_COLOURS = ("tab:blue", "tab:orange")


def _figure(width: float, height: float, title: str) -> Figure:
    """A white, titled figure that pyplot does not keep (see the module docstring)."""
    fig = plt.figure(figsize=(width, height), facecolor="white", layout="constrained")
    plt.close(fig)
    fig.suptitle(title)
    return fig


def _unit_range(x: np.ndarray) -> np.ndarray:
    """Stretch ``x`` linearly to ``[0, 1]`` (a constant array becomes 0.5)."""
    x = np.asarray(x, dtype="float32")
    low, high = float(x.min()), float(x.max())
    if high - low < 1e-12:
        return np.full_like(x, 0.5)
    return (x - low) / (high - low)


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image as matplotlib shows it: ``uint8`` / 255, anything else stretched."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype("float32") / 255.0
    return _unit_range(image)


# ------------------------------------------------------------ conv1 filters


def conv1_kernels(model: keras.Model) -> np.ndarray:
    """The first layer's kernels, one per row: ``(kernels, height, width, 3)``.

    For a ``towers="branches"`` paper model the two towers' kernels are
    concatenated, GPU 1's first, the same order as the grouped model.
    """
    names = {layer.name for layer in model.layers}
    if "conv1" in names:
        kernel = keras.ops.convert_to_numpy(model.get_layer("conv1").kernel)
    elif {"conv1_gpu1", "conv1_gpu2"} <= names:
        kernel = np.concatenate(
            [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in ("conv1_gpu1", "conv1_gpu2")],
            axis=-1,
        )
    else:
        raise AlexnetTutError(f"model {model.name} has no conv1 layer; build it with build_alexnet")
    return np.moveaxis(kernel, -1, 0)  # (h, w, 3, n) -> (n, h, w, 3)


def is_two_tower(model: keras.Model) -> bool:
    """Whether ``model`` is the paper's two-GPU model (grouped or as branches)."""
    names = {layer.name for layer in model.layers}
    if "conv1_gpu1" in names:
        return True
    return "conv2" in names and getattr(model.get_layer("conv2"), "groups", 1) == 2


def tower_blocks(model: keras.Model) -> list[tuple[str, slice]]:
    """The conv1 kernels in blocks: one per GPU for the paper model, else one.

    Returns ``[(label, slice into conv1_kernels(model)), ...]``, e.g.
    ``("GPU 1 (kernels 1–48)", slice(0, 48))``.
    """
    n = conv1_kernels(model).shape[0]
    if not is_two_tower(model):
        return [(f"all {n} kernels", slice(0, n))]
    half = n // 2
    return [
        (f"GPU 1 (kernels 1–{half})", slice(0, half)),
        (f"GPU 2 (kernels {half + 1}–{n})", slice(half, n)),
    ]


def plot_filters(model: keras.Model, *, title: str | None = None, columns: int = 16) -> Figure:
    """The conv1 kernels as a grid of RGB tiles, like the paper's Figure 3.

    Each kernel is contrast-normalised on its own (its minimum becomes black,
    its maximum white), so weak and strong kernels are equally visible. The
    paper model's kernels are drawn as two labelled blocks, one per GPU.
    """
    kernels = conv1_kernels(model)
    blocks = tower_blocks(model)
    n, h, w, _ = kernels.shape
    rows = [math.ceil((block.stop - block.start) / columns) for _, block in blocks]
    title = title or f"conv1 of {model.name}: {n} kernels of {h}×{w}×3, each contrast-normalised"
    fig = _figure(columns * 0.55, sum(rows) * 0.55 + 0.5 * len(blocks) + 0.4, title)
    subfigs = fig.subfigures(len(blocks), 1, height_ratios=rows, squeeze=False)[:, 0]
    for subfig, (label, block), n_rows in zip(subfigs, blocks, rows):
        subfig.suptitle(label, fontsize="medium")
        axes = subfig.subplots(n_rows, columns, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, kernel in zip(axes.flat, kernels[block]):
            ax.imshow(_unit_range(kernel), interpolation="nearest")
    return fig


def filter_colourfulness(kernels: np.ndarray) -> np.ndarray:
    """How much each kernel cares about colour, from 0 (grey) to 1 (pure colour).

    For one kernel ``k`` (height × width × 3): at each pixel take the standard
    deviation across its R, G, B weights, average that over the pixels, and
    divide by the standard deviation of all the kernel's weights. A kernel
    with equal weights in the three channels (it sees only brightness) scores
    0; one whose channels cancel at every pixel (it sees only colour
    differences) scores 1. The ratio does not depend on the kernel's scale.

    Args:
        kernels: ``(kernels, height, width, 3)``, e.g. :func:`conv1_kernels`.
    """
    kernels = np.asarray(kernels, dtype="float64")
    chroma = kernels.std(axis=-1).mean(axis=(1, 2))
    scale = kernels.std(axis=(1, 2, 3))
    return chroma / np.maximum(scale, 1e-12)


def filter_spectrum(kernels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each kernel's power spectrum, radially averaged: which spatial frequencies it picks up.

    The 2-D FFT power of each colour channel is summed over channels, then
    averaged over rings of equal spatial frequency $\\sqrt{f_x^2 + f_y^2}$
    (rings one frequency step, ``1/width``, apart; the mean weight is
    frequency 0). Each kernel's spectrum is normalised to sum to 1, so the
    numbers are the share of its power at each frequency.

    Returns:
        ``(frequencies, power)``: frequencies in cycles per pixel, shape
        ``(bins,)``; power, shape ``(kernels, bins)``. Frequencies above 0.5
        exist only along the diagonals.
    """
    kernels = np.asarray(kernels, dtype="float64")
    _, h, w, _ = kernels.shape
    power = (np.abs(np.fft.fft2(kernels, axes=(1, 2))) ** 2).sum(axis=-1)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    ring = np.rint(np.sqrt(fx**2 + fy**2) * max(h, w)).astype(int)  # (h, w)
    counts = np.bincount(ring.ravel())
    radial = np.stack([np.bincount(ring.ravel(), weights=p.ravel()) / counts for p in power])
    radial /= np.maximum(radial.sum(axis=1, keepdims=True), 1e-30)
    return np.arange(len(counts)) / max(h, w), radial


def dead_filters(kernels: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Indices of "dead" kernels: norm below ``threshold`` × the median kernel norm.

    A kernel that training drove (nearly) to zero responds to nothing; Zeiler
    & Fergus (2013) saw several in AlexNet's first layer.
    """
    kernels = np.asarray(kernels, dtype="float64")
    norms = np.sqrt((kernels**2).reshape(len(kernels), -1).sum(axis=1))
    return np.flatnonzero(norms < threshold * np.median(norms))


def plot_filter_statistics(
    model: keras.Model, *, title: str | None = None, dead_threshold: float = 0.1
) -> Figure:
    """Colourfulness of every conv1 kernel by tower, and the towers' mean spectra.

    Left: one bar per kernel (:func:`filter_colourfulness`), coloured by GPU,
    with each tower's mean as a dashed line and dead kernels
    (:func:`dead_filters`) marked with a cross. Right: the mean share of
    power at each spatial frequency (:func:`filter_spectrum`) per tower, with
    the middle half of the kernels shaded.
    """
    kernels = conv1_kernels(model)
    colour = filter_colourfulness(kernels)
    freqs, power = filter_spectrum(kernels)
    dead = dead_filters(kernels, dead_threshold)
    title = title or f"conv1 of {model.name}: colour and frequency ({len(dead)} dead kernels)"
    fig = _figure(12, 4, title)
    ax_colour, ax_freq = fig.subplots(1, 2, width_ratios=(3, 2))

    for (label, block), c in zip(tower_blocks(model), TOWER_COLOURS):
        index = np.arange(len(kernels))[block]
        mean = colour[block].mean()
        ax_colour.bar(index + 1, colour[block], color=c, label=f"{label}: mean {mean:.2f}")
        ax_colour.hlines(mean, index[0] + 0.5, index[-1] + 1.5, colors=c, linestyles="--")
        middle = np.percentile(power[block], [25, 75], axis=0)
        ax_freq.plot(freqs, power[block].mean(axis=0), color=c, marker="o", label=label)
        ax_freq.fill_between(freqs, middle[0], middle[1], color=c, alpha=0.2)
    if len(dead):
        ax_colour.plot(dead + 1, np.zeros(len(dead)), "kx", label=f"dead (< {dead_threshold:g}× median norm)")
    ax_colour.set(xlabel="kernel", ylabel="colourfulness (0 = grey, 1 = pure colour)",
                  title="colour", xlim=(0, len(kernels) + 1), ylim=(0, 1.3))
    ax_colour.legend(loc="upper left", fontsize="small", ncols=2)
    ax_freq.set(xlabel="spatial frequency (cycles per pixel)", ylabel="share of power",
                title="frequency content (mean per tower)")
    ax_freq.legend(fontsize="small")
    return fig


# ------------------------------------------------------------- feature maps


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
        fig = _figure(5, 5, title or f"{layer_name} of {model.name}: {maps.size} activations, row by row")
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
    fig = _figure(max(6, columns * 1.0), rows * 1.0 + 0.5, title)
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
    photo = _displayable(image)
    best = strongest_channels(maps, k)
    title = title or f"{layer_name} of {model.name}: the {len(best)} most active of {maps.shape[-1]} channels"
    fig = _figure(3 * (len(best) + 1), 3.4, title)
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


# ---------------------------------------------------------------- explorer


class FeatureMapExplorer:
    """Pick a photo, a model, a layer and a channel; see that channel's feature map.

    Four ipywidgets controls (``photo``, ``model``, ``layer``, ``channel``)
    and an ``output`` area that is redrawn whenever a value changes. The
    layer list follows the chosen model, and the channel slider the chosen
    layer. Display it with :meth:`show`, which also shows the default view as
    a static figure: a website built from the notebook has no kernel to run
    the callback, and the page should not be blank there.

    Args:
        photos: name -> photo (values 0–255, any size).
        models: name -> model (any variant; a model can be tried on every photo).
        prepare: turns a photo into a model input, ``prepare(photo, model)``;
            by default :func:`fit_to_model`. Pass e.g.
            ``lambda p, m: preprocess_torchvision(p)[0]`` for pretrained weights.
        layer: the layer shown first (default ``"conv1"``).
    """

    def __init__(
        self,
        photos: Mapping[str, np.ndarray],
        models: Mapping[str, keras.Model],
        *,
        prepare: Callable[[np.ndarray, keras.Model], np.ndarray] = fit_to_model,
        layer: str = "conv1",
    ) -> None:
        import ipywidgets as widgets

        self.photos = dict(photos)
        self.models = dict(models)
        self.prepare = prepare
        self._maps: dict[tuple[str, str, str], np.ndarray] = {}
        self.last_figure: Figure | None = None

        first_model = self.models[next(iter(self.models))]
        layers = spatial_layer_names(first_model)
        self.photo = widgets.Dropdown(options=list(self.photos), description="photo")
        self.model = widgets.Dropdown(options=list(self.models), description="model")
        self.layer = widgets.Dropdown(options=layers, value=layer if layer in layers else layers[0], description="layer")
        self.channel = widgets.IntSlider(value=0, min=0, max=1, description="channel", continuous_update=False)
        self.output = widgets.Output()
        self.widget = widgets.VBox(
            [widgets.HBox([self.photo, self.model]), widgets.HBox([self.layer, self.channel]), self.output]
        )
        self._syncing = False
        self._sync_controls()
        self.default_view = self.view()
        for control in (self.photo, self.model, self.layer, self.channel):
            control.observe(self._on_change, names="value")
        self.render()

    def view(self) -> tuple[str, str, str, int]:
        """The current choice: ``(photo, model, layer, channel)``."""
        return self.photo.value, self.model.value, self.layer.value, self.channel.value

    def _on_change(self, change) -> None:
        if self._syncing:  # a control being adjusted by _sync_controls
            return
        self._sync_controls()
        self.render()

    def _sync_controls(self) -> None:
        """Offer the chosen model's layers and the chosen layer's channels."""
        self._syncing = True
        try:
            layers = spatial_layer_names(self.models[self.model.value])
            if list(self.layer.options) != layers:
                current = self.layer.value
                self.layer.options = layers
                self.layer.value = current if current in layers else layers[0]
            channels = self.feature_maps(self.photo.value, self.model.value, self.layer.value).shape[-1]
            self.channel.max = channels - 1
        finally:
            self._syncing = False

    def feature_maps(self, photo: str, model: str, layer: str) -> np.ndarray:
        """The maps of one photo at one layer of one model (computed once, then cached)."""
        key = (photo, model, layer)
        if key not in self._maps:
            m = self.models[model]
            self._maps[key] = feature_maps(m, self.prepare(self.photos[photo], m), layer)
        return self._maps[key]

    def figure(self, photo: str, model: str, layer: str, channel: int, *, title: str | None = None) -> Figure:
        """One view: the model's input, the channel's map, and the map over the photo."""
        m = self.models[model]
        photo_image = _displayable(self.prepare(self.photos[photo], m))
        maps = self.feature_maps(photo, model, layer)
        channel_map = maps[..., channel]
        h, w = channel_map.shape
        title = title or f"{photo} through {model}: {layer}, channel {channel} of {maps.shape[-1]} ({h}×{w})"
        fig = _figure(12, 4, title)
        ax_photo, ax_map, ax_over = fig.subplots(1, 3)
        ax_photo.imshow(photo_image)
        ax_photo.set_title("input")
        ax_photo.set_axis_off()
        shown = ax_map.imshow(channel_map, cmap="viridis")
        fig.colorbar(shown, ax=ax_map, label="activation")
        ax_map.set(title=f"{layer} channel {channel}", xlabel="x (map pixels)", ylabel="y (map pixels)")
        ax_over.imshow(photo_image)
        ax_over.imshow(_upsample(channel_map, *photo_image.shape[:2]), cmap="inferno", alpha=0.6)
        ax_over.set_title("over the input")
        ax_over.set_axis_off()
        return fig

    def render(self) -> Figure:
        """Redraw the output area for the current choice; returns (and keeps) the figure.

        The figure replaces the output area's ``outputs`` in one update. It
        does not go through ``with self.output:``, because headless runners
        (nbclient, which builds the website and runs nbval) route captured
        output through extra messages. The book's build hung twice in chapter
        09, the only chapter with an output widget. Outside IPython (a script,
        a test) there is no display formatter, and the output area stays empty.
        """
        from IPython import get_ipython

        self.last_figure = self.figure(*self.view())
        shell = get_ipython()
        if shell is not None:
            data, metadata = shell.display_formatter.format(self.last_figure)
            self.output.outputs = (
                {"output_type": "display_data", "data": data, "metadata": metadata},)
        return self.last_figure

    def static_figure(self) -> Figure:
        """The default view (the choice the explorer started with), as a plain figure."""
        photo, model, layer, channel = self.default_view
        fig = self.figure(photo, model, layer, channel)
        fig.suptitle(f"Static view (no live kernel): {fig.get_suptitle()}")
        return fig

    def show(self) -> None:
        """Display the live controls and, below them, the default view as a static figure."""
        from IPython.display import display

        display(self.widget)
        display(self.static_figure())


# ------------------------------------------------------ nearest neighbours


def nearest_neighbours(
    model: keras.Model,
    images,
    query_index: int | Sequence[int],
    k: int = 5,
    layer: str = "fc7",
) -> tuple[np.ndarray, np.ndarray]:
    """The images whose ``layer`` activations are closest to a query image's (Figure 4, right).

    Distances are Euclidean between the flattened activations, as in §6.1 of
    the paper; the query itself is left out.

    Returns:
        ``(indices, distances)``, closest first: shape ``(k,)`` for one query
        index, ``(queries, k)`` for a sequence of them.
    """
    features = layer_activations(model, images, layer)
    queries = np.atleast_1d(query_index)
    indices, distances = [], []
    for q in queries:
        d = np.linalg.norm(features - features[q], axis=1)
        order = np.argsort(d, kind="stable")
        order = order[order != q][:k]
        indices.append(order)
        distances.append(d[order])
    indices, distances = np.stack(indices), np.stack(distances)
    if np.ndim(query_index) == 0:
        return indices[0], distances[0]
    return indices, distances


def plot_neighbours(
    images,
    query_indices: int | Sequence[int],
    neighbour_indices: np.ndarray,
    *,
    distances: np.ndarray | None = None,
    title: str | None = None,
) -> Figure:
    """One row per query: the query image, then its neighbours, closest first."""
    queries = np.atleast_1d(query_indices)
    neighbours = np.atleast_2d(neighbour_indices)
    if distances is not None:
        distances = np.atleast_2d(distances)
    k = neighbours.shape[1]
    title = title or "Nearest neighbours: each row is a query image, then the closest images"
    fig = _figure(1.8 * (k + 1), 1.9 * len(queries) + 0.4, title)
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    for row, q in enumerate(queries):
        axes[row, 0].imshow(_displayable(images[q]))
        axes[row, 0].set_title(f"query {q}", fontweight="bold")
        for col, i in enumerate(neighbours[row], start=1):
            axes[row, col].imshow(_displayable(images[i]))
            label = f"#{col}: image {i}"
            if distances is not None:
                label += f"\nd = {distances[row, col - 1]:.3g}"
            axes[row, col].set_title(label, fontsize="small")
    for ax in axes.flat:
        ax.set_axis_off()
    return fig


# ------------------------------------------------- training curves and errors


def plot_training_curves(history: Sequence[Mapping[str, float]], *, title: str) -> Figure:
    """Loss, top-1 and top-5 accuracy per epoch, training and validation, from a run's history.

    ``history`` is :func:`alexnet_tut.train.read_history`'s list of rows
    (``loss``, ``top1``, ``top5``, their ``val_`` twins, ``learning_rate``).
    Dotted vertical lines mark the epochs after which the learning rate was
    divided, so the schedule's effect is visible.
    """
    if not history:
        raise AlexnetTutError("the run has no finished epoch yet: nothing to plot")
    epochs = np.arange(1, len(history) + 1)
    fig = _figure(11, 3.4, title)
    axes = fig.subplots(1, 3)
    rates = [row.get("learning_rate", math.nan) for row in history]
    drops = [e for e, (a, b) in enumerate(zip(rates, rates[1:]), start=1) if b < a]
    for ax, key, label in zip(axes, ("loss", "top1", "top5"),
                              ("cross-entropy loss", "top-1 accuracy", "top-5 accuracy")):
        for prefix, style, name in (("", "-o", "training"), ("val_", "-s", "validation")):
            values = [row.get(prefix + key, math.nan) for row in history]
            ax.plot(epochs, values, style, markersize=3, label=name)
        for epoch in drops:
            ax.axvline(epoch + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=10)
        if key != "loss":
            ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=8)
    return fig


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int],
                     num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``: row $i$ says where class $i$'s images went."""
    labels, predictions = np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)
    if labels.shape != predictions.shape:
        raise AlexnetTutError(
            f"{labels.size} labels but {predictions.size} predictions: they must pair up")
    if labels.size and (min(labels.min(), predictions.min()) < 0
                        or max(labels.max(), predictions.max()) >= num_classes):
        raise AlexnetTutError(f"class indices must lie in [0, {num_classes})")
    matrix = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], *,
                          title: str) -> Figure:
    """The confusion matrix as a grid, each row scaled to its class's share, with the counts."""
    matrix = np.asarray(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise AlexnetTutError(f"a {matrix.shape} matrix does not fit {n} class names")
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = 1.2 + 0.55 * n
    fig = _figure(side + 1.5, side, title)
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="share of the true class")
    return fig
