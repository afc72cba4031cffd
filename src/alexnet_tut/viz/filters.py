"""The first layer's kernels (the paper's Figure 3): pictures, colour, frequency content, dead kernels."""

from __future__ import annotations

import math

import keras
import numpy as np
from matplotlib.figure import Figure

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.viz.figure import TOWER_COLOURS, new_figure, unit_range


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
    fig = new_figure(columns * 0.55, sum(rows) * 0.55 + 0.5 * len(blocks) + 0.4, title)
    subfigs = fig.subfigures(len(blocks), 1, height_ratios=rows, squeeze=False)[:, 0]
    for subfig, (label, block), n_rows in zip(subfigs, blocks, rows):
        subfig.suptitle(label, fontsize="medium")
        axes = subfig.subplots(n_rows, columns, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, kernel in zip(axes.flat, kernels[block]):
            ax.imshow(unit_range(kernel), interpolation="nearest")
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
    fig = new_figure(12, 4, title)
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
