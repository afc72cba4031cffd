"""An ipywidgets explorer: pick a photo, a model, a layer and a channel; see its feature map."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import keras
import numpy as np
from matplotlib.figure import Figure

from alexnet_tut.viz.figure import displayable, new_figure
from alexnet_tut.viz.maps import _upsample, feature_maps, fit_to_model, spatial_layer_names


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
        photo_image = displayable(self.prepare(self.photos[photo], m))
        maps = self.feature_maps(photo, model, layer)
        channel_map = maps[..., channel]
        h, w = channel_map.shape
        title = title or f"{photo} through {model}: {layer}, channel {channel} of {maps.shape[-1]} ({h}×{w})"
        fig = new_figure(12, 4, title)
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
