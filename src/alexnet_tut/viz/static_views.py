"""Figures that answer the reader's controls on a static web page, with no kernel.

An ipywidgets explorer needs a running Python kernel to redraw, and the book's
website has none. This module precomputes the views a reader may ask for (for
example photo × layer × channel group) and embeds them, as JPEG or PNG data
URIs, in one HTML output with plain HTML controls and a few lines of
JavaScript: no library, no network, no server. The same output works in
Jupyter and Colab, beside the live ipywidgets version.

A chapter calls it in one line::

    static_views.explorer_html(views, controls=("photo", "layer", "channels"))

where ``views`` maps a key, one value per control, to a matplotlib figure or an
image array. :func:`feature_map_views` makes the views of chapter 09's feature
maps. Every explorer is built within a byte budget, so that a page stays light.

The HTML is deterministic: the same views give the same bytes, so a notebook's
outputs only change when its figures do.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.viz.figure import displayable, new_figure

#: The most bytes one explorer may add to its page by default. The website's pages stay under
#: 5 MB each; an explorer takes at most half of that.
DEFAULT_BUDGET_BYTES = 2_500_000

#: The image formats an explorer embeds: JPEG for photos and heat maps (a tenth of PNG's
#: size), PNG for line art and pixel grids that JPEG would blur.
IMAGE_FORMATS = ("jpeg", "png")

#: The class names the page's script, its style and the site's browser tests rely on.
CSS_CLASS = "static-explorer"

View = Figure | np.ndarray


def encode_image(view: View, image_format: str = "jpeg", *, dpi: int = 72,
                 quality: int = 80) -> bytes:
    """One view as JPEG or PNG bytes.

    A figure is drawn at ``dpi`` on white. An array is an image: ``uint8``
    values as they are, anything else stretched to ``[0, 1]`` (as
    :func:`alexnet_tut.viz.figure.displayable` does); ``(h, w)`` is grey,
    ``(h, w, 3)`` colour.
    """
    from PIL import Image

    if image_format not in IMAGE_FORMATS:
        raise AlexnetTutError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, "
                              f"got {image_format!r}")
    if isinstance(view, Figure):
        view = _draw(view, dpi)
    array = np.asarray(view)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3) or array.size == 0:
        raise AlexnetTutError(f"a view must be a matplotlib Figure or an image array (h, w) or "
                              f"(h, w, 3), got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.round(displayable(array) * 255).astype("uint8")
    image = Image.fromarray(array)
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _draw(figure: Figure, dpi: int) -> np.ndarray:
    """A figure drawn once by Agg at ``dpi``, as ``uint8`` RGB on white.

    Drawing straight to Agg's buffer draws the figure once; ``savefig`` would
    draw it twice, and a view of dozens takes that time for every view.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    kept = figure.dpi
    figure.set_dpi(dpi)
    try:
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba(), dtype="float32")
    finally:
        figure.set_dpi(kept)
    alpha = rgba[..., 3:] / 255.0  # a transparent figure lands on white
    return np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype("uint8")


def _data_uri(data: bytes, image_format: str) -> str:
    return f"data:image/{image_format};base64," + base64.b64encode(data).decode("ascii")


def _normalise_keys(views: Mapping, controls: Sequence[str]) -> list[tuple[str, ...]]:
    """Every key as a tuple of strings, one per control; one-control keys may be plain."""
    if not controls:
        raise AlexnetTutError("an explorer needs at least one control, e.g. controls=('layer',)")
    if len(set(controls)) != len(controls):
        raise AlexnetTutError(f"control names must differ, got {list(controls)}")
    if not views:
        raise AlexnetTutError("an explorer needs at least one view; pass views={key: figure, ...}")
    keys = []
    for key in views:
        parts = key if isinstance(key, tuple) else (key,)
        if len(parts) != len(controls):
            raise AlexnetTutError(
                f"view key {key!r} has {len(parts)} value(s) but there are {len(controls)} "
                f"controls ({', '.join(controls)}): give one value per control")
        keys.append(tuple(str(part) for part in parts))
    if len(set(keys)) != len(keys):
        raise AlexnetTutError("two view keys are the same once written as text; make them differ")
    return keys


def explorer_html(
    views: Mapping[tuple | str, View],
    controls: Sequence[str],
    *,
    title: str | None = None,
    captions: Mapping[tuple | str, str] | None = None,
    sliders: Collection[str] = (),
    image_format: str = "jpeg",
    dpi: int = 72,
    quality: int = 80,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
):
    """Views a reader switches between with controls, as one self-contained HTML output.

    Each control offers the values its position takes in the keys, in the
    order they first appear; the first view is shown first. When the reader
    picks a combination that has no view (a model without that layer), the
    explorer shows the closest one that keeps the value just picked, and its
    controls say which. Without JavaScript (a notebook viewer that strips it)
    the first view still shows.

    Args:
        views: key -> view. A key has one value per control, e.g.
            ``("astronaut", "conv2", "channels 0–15")``; a one-control key may
            be a plain string. A view is a matplotlib figure (drawn at ``dpi``)
            or an image array.
        controls: the controls' names, in the keys' order.
        title: a heading above the controls.
        captions: key -> text under the picture; by default the key, joined by " · ".
        sliders: the controls shown as a slider instead of a menu (ordered
            values: channel groups, epochs).
        image_format: ``"jpeg"`` (photos, maps) or ``"png"`` (pixel grids, line art).
        dpi, quality: the figures' resolution, and JPEG's quality (1 to 95).
        budget_bytes: the most bytes the output may take; over it raises an
            error that says what to reduce.

    Returns:
        An ``IPython.display.HTML`` object: a cell's last expression shows it.
    """
    from IPython.display import HTML

    keys = _normalise_keys(views, controls)
    unknown = set(sliders) - set(controls)
    if unknown:
        raise AlexnetTutError(f"sliders {sorted(unknown)} are not controls; the controls are "
                              f"{', '.join(controls)}")
    options = [list(dict.fromkeys(key[c] for key in keys)) for c in range(len(controls))]
    index_keys = [[options[c].index(key[c]) for c in range(len(controls))] for key in keys]

    sources: list[str] = []
    seen: dict[bytes, int] = {}
    images = []
    for view in views.values():
        data = encode_image(view, image_format, dpi=dpi, quality=quality)
        digest = hashlib.sha256(data).digest()
        if digest not in seen:  # identical pictures are stored once
            seen[digest] = len(sources)
            sources.append(_data_uri(data, image_format))
        images.append(seen[digest])

    by_text = {}
    if captions:
        by_text = {tuple(str(p) for p in (k if isinstance(k, tuple) else (k,))): v
                   for k, v in captions.items()}
    texts = [by_text.get(key, " · ".join(key)) for key in keys]
    payload = {"controls": list(controls), "options": options, "keys": index_keys,
               "images": images, "sources": sources, "captions": texts}
    markup = _render(payload, title=title, sliders=set(sliders))
    size = len(markup.encode("utf-8"))
    if size > budget_bytes:
        smaller = ("image_format='jpeg'" if image_format == "png"
                   else f"a lower quality (now {quality})")
        raise AlexnetTutError(
            f"the explorer's {len(keys)} views ({len(sources)} distinct pictures) take "
            f"{size / 1e6:.2f} MB, over its budget of {budget_bytes / 1e6:.2f} MB: pass fewer "
            f"views, a lower dpi (now {dpi}) or {smaller}")
    return HTML(markup)


_STYLE = f"""
.{CSS_CLASS} {{ margin: 0.5em 0 1em; }}
.{CSS_CLASS}-controls {{ display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; margin-bottom: 0.5em; }}
.{CSS_CLASS}-controls label {{ display: inline-flex; align-items: center; gap: 0.4em; }}
.{CSS_CLASS}-controls select {{ max-width: 100%; }}
.{CSS_CLASS} img.{CSS_CLASS}-view {{ max-width: 100%; height: auto; background: #fff; }}
.{CSS_CLASS}-caption {{ font-size: 0.9em; margin: 0.2em 0 0; }}
"""

# The page's part: find this explorer's elements, and on every change show the view that
# matches the controls (or the closest one that keeps the value just changed).
_SCRIPT = """
(function () {
  var here = document.currentScript;
  var root = (here && here.parentNode) || document.getElementById(%(id)s);
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.%(cls)s-data").textContent);
  var picture = root.querySelector("img.%(cls)s-view");
  var caption = root.querySelector(".%(cls)s-caption");
  var inputs = Array.prototype.slice.call(root.querySelectorAll("[data-control]"));
  // The first view's picture is in the page once, as the <img>; its data entry is empty.
  data.sources[data.images[0]] = picture.getAttribute("src");
  function chosen() {
    return inputs.map(function (input) { return parseInt(input.value, 10); });
  }
  function closest(wanted, changed) {
    var best = -1, bestScore = -1;
    data.keys.forEach(function (key, k) {
      if (changed >= 0 && key[changed] !== wanted[changed]) { return; }
      var score = key.filter(function (v, c) { return v === wanted[c]; }).length;
      if (score > bestScore) { best = k; bestScore = score; }
    });
    return best < 0 ? 0 : best;
  }
  function show(k) {
    var key = data.keys[k];
    inputs.forEach(function (input, c) {
      input.value = String(key[c]);
      var out = root.querySelector("output[data-for='" + c + "']");
      if (out) { out.textContent = data.options[c][key[c]]; }
    });
    picture.src = data.sources[data.images[k]];
    picture.alt = data.captions[k];
    caption.textContent = data.captions[k];
    root.setAttribute("data-view", String(k));
  }
  inputs.forEach(function (input, c) {
    function update() { show(closest(chosen(), c)); }
    input.addEventListener("change", update);
    input.addEventListener("input", update);
  });
  show(0);
})();
"""


def _render(payload: dict, *, title: str | None, sliders: set[str]) -> str:
    """The explorer's HTML: heading, controls, the first view, its caption, data and script.

    The first view's picture is written once, as the ``<img>`` a reader sees without
    JavaScript; its entry in the data is left empty and the script fills it in.
    """
    sources = list(payload["sources"])
    first_source = sources[payload["images"][0]]
    sources[payload["images"][0]] = ""
    body = json.dumps({**payload, "sources": sources}, ensure_ascii=True, separators=(",", ":"))
    element_id = f"{CSS_CLASS}-" + hashlib.sha256(body.encode()).hexdigest()[:12]
    parts = [f'<div class="{CSS_CLASS}" id="{element_id}">', f"<style>{_STYLE}</style>"]
    if title:
        parts.append(f'<p class="{CSS_CLASS}-title"><strong>{html.escape(title)}</strong></p>')
    parts.append(f'<form class="{CSS_CLASS}-controls" onsubmit="return false">')
    first = payload["keys"][0]
    for c, (name, values) in enumerate(zip(payload["controls"], payload["options"])):
        label = html.escape(name)
        if name in sliders:
            parts.append(
                f'<label>{label} <input type="range" data-control="{c}" min="0" '
                f'max="{len(values) - 1}" step="1" value="{first[c]}" aria-label="{label}">'
                f'<output data-for="{c}">{html.escape(values[first[c]])}</output></label>')
        else:
            choices = "".join(
                f'<option value="{i}"{" selected" if i == first[c] else ""}>{html.escape(v)}</option>'
                for i, v in enumerate(values))
            parts.append(f'<label>{label} <select data-control="{c}">{choices}</select></label>')
    parts.append("</form>")
    caption = html.escape(payload["captions"][0])
    parts.append(f'<img class="{CSS_CLASS}-view" src="{first_source}" alt="{caption}">')
    parts.append(f'<p class="{CSS_CLASS}-caption">{caption}</p>')
    # "</" cannot appear inside a script element; JSON allows "<\/" for it.
    safe_body = body.replace("</", "<\\/")
    parts.append(f'<script type="application/json" class="{CSS_CLASS}-data">{safe_body}</script>')
    parts.append("<script>" + _SCRIPT % {"id": json.dumps(element_id), "cls": CSS_CLASS}
                 + "</script>")
    parts.append("</div>")
    return "\n".join(parts)


# ------------------------------------------------------------- feature maps (chapter 09)


def channel_groups(channels: int, per_view: int, groups: int | None = None) -> list[range]:
    """The channels ``0..channels-1`` cut into groups of ``per_view``: the first ``groups``."""
    if per_view < 1:
        raise AlexnetTutError(f"per_view must be at least 1, got {per_view}")
    cuts = [range(start, min(start + per_view, channels)) for start in range(0, channels, per_view)]
    return cuts if groups is None else cuts[:groups]


def plot_map_group(photo: np.ndarray, maps: np.ndarray, channels: range, *, title: str) -> Figure:
    """The input beside a grid of some channels' maps, on one shared colour scale.

    One image holds all the tiles (white gutters between them), so a figure
    draws fast enough to make dozens of views. Each tile is labelled with its
    channel number, counted from 0 as the layer's last axis is indexed; the
    shared scale (a colour bar) keeps silent channels dark.
    """
    h, w = maps.shape[:2]
    columns = math.ceil(math.sqrt(len(channels)))
    rows = math.ceil(len(channels) / columns)
    gutter = max(1, round(max(h, w) / 12))
    mosaic = np.full((rows * (h + gutter) - gutter, columns * (w + gutter) - gutter), np.nan,
                     dtype="float32")
    for i, c in enumerate(channels):
        y, x = (i // columns) * (h + gutter), (i % columns) * (w + gutter)
        mosaic[y:y + h, x:x + w] = maps[..., c]
    # A fixed layout: constrained layout would take most of the drawing time of every view.
    fig = new_figure(7, 3.6, title)
    fig.set_layout_engine("none")
    ax_photo = fig.add_axes((0.02, 0.04, 0.36, 0.78))
    ax_maps = fig.add_axes((0.41, 0.04, 0.47, 0.78))
    ax_bar = fig.add_axes((0.90, 0.12, 0.018, 0.62))
    ax_photo.imshow(displayable(photo))
    ax_photo.set_title("input")
    ax_photo.set_axis_off()
    cmap = colormaps["viridis"].with_extremes(bad="white")
    low, high = float(np.nanmin(mosaic)), float(np.nanmax(mosaic))
    shown = ax_maps.imshow(mosaic, cmap=cmap, vmin=low, vmax=high if high > low else low + 1,
                           interpolation="nearest")
    for i, c in enumerate(channels):
        y, x = (i // columns) * (h + gutter), (i % columns) * (w + gutter)
        ax_maps.text(x, y, str(c), color="white", fontsize=7, va="top", ha="left",
                     bbox={"boxstyle": "square,pad=0.1", "facecolor": "black", "alpha": 0.6,
                           "linewidth": 0})
    ax_maps.set_title(f"channels {channels[0]}–{channels[-1]} ({h}×{w} each)")
    ax_maps.set_axis_off()
    fig.colorbar(shown, cax=ax_bar, label="activation")
    return fig


def layer_maps(model, image: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """One image's maps at each of ``layers`` the model has, from one forward pass.

    The same numbers as :func:`alexnet_tut.viz.feature_maps` layer by layer
    (inference mode), with one Keras model for all the layers instead of one
    per layer. Layers the model lacks are left out.
    """
    import keras

    names = [name for name in layers if name in {layer.name for layer in model.layers}]
    if not names:
        return {}
    sub = keras.Model(model.input, [model.get_layer(name).output for name in names])
    outputs = sub(np.asarray(image, dtype="float32")[None], training=False)
    if len(names) == 1:  # a model with one output returns the tensor, not a list
        outputs = [outputs]
    maps = {name: keras.ops.convert_to_numpy(out)[0] for name, out in zip(names, outputs)}
    flat = [name for name, value in maps.items() if value.ndim != 3]
    if flat:
        raise AlexnetTutError(f"{flat[0]} has no spatial maps; pass spatial layers only, "
                              f"e.g. layers=('conv1', 'conv2')")
    return maps


def feature_map_views(
    photos: Mapping[str, np.ndarray],
    models: Mapping[str, object],
    *,
    prepare: Callable[[np.ndarray, object], np.ndarray] | None = None,
    layers: Sequence[str] = ("conv1", "conv2", "conv3", "conv4", "conv5"),
    per_view: int = 16,
    groups: int | None = 2,
) -> dict[tuple[str, str, str, str], Figure]:
    """Every photo × model × layer × channel group, as figures for :func:`explorer_html`.

    Each model runs each photo once for all the layers (:func:`layer_maps`);
    a view shows the input and ``per_view`` channels of one layer. A model
    without one of ``layers`` is skipped for it. With one model the key still
    names it, so that the controls read the same as the live explorer's.

    Args:
        photos: name -> photo (values 0–255, any size).
        models: name -> model.
        prepare: turns a photo into a model input, ``prepare(photo, model)``;
            by default :func:`alexnet_tut.viz.fit_to_model`.
        layers: the layers offered; spatial ones only.
        per_view: channels in one view (16 make a 4 × 4 grid).
        groups: how many groups of ``per_view`` channels per layer, from
            channel 0 (``None``: all of them; the page grows with each).

    Returns:
        ``{(photo, model, layer, "channels a–b"): figure}``, in that order. Pass it
        to ``explorer_html(views, controls=("photo", "model", "layer", "channels"))``.
    """
    from alexnet_tut.viz.maps import fit_to_model

    prepare = prepare or fit_to_model
    views: dict[tuple[str, str, str, str], Figure] = {}
    for photo_name, photo in photos.items():
        for model_name, model in models.items():
            image = prepare(photo, model)
            for layer, maps in layer_maps(model, image, layers).items():
                for group in channel_groups(maps.shape[-1], per_view, groups):
                    label = f"channels {group[0]}–{group[-1]}"
                    title = (f"{photo_name} through {model_name}: {layer}, {label} of "
                             f"{maps.shape[-1]}")
                    views[(photo_name, model_name, layer, label)] = plot_map_group(
                        image, maps, group, title=title)
    if not views:
        raise AlexnetTutError(f"none of the models has any of the layers {', '.join(layers)}")
    return views
