"""The first layer's kernels (the paper's Figure 3): pictures, colour, frequency content, dead kernels."""

from __future__ import annotations

import math
from collections.abc import Mapping

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
    n, h, w, _ = kernels.shape
    title = title or f"conv1 of {model.name}: {n} kernels of {h}×{w}×3, each contrast-normalised"
    return _kernel_grid(kernels, tower_blocks(model), title, columns)


def plot_filter_changes(initial: keras.Model, trained: keras.Model, *, title: str | None = None,
                        columns: int = 16) -> Figure:
    """What training added to each conv1 kernel: ``trained − initial``, as RGB tiles.

    A short run moves the kernels by a fraction of their random start, so the
    trained tiles still look like their initial noise; the difference shows
    the part training put there. Each tile is contrast-normalised on its own,
    as in `plot_filters`. The two models must have the same conv1.
    """
    before, after = conv1_kernels(initial), conv1_kernels(trained)
    if before.shape != after.shape:
        raise AlexnetTutError(
            f"conv1 kernels of shape {before.shape[1:]} and {after.shape[1:]} (×{len(before)} and "
            f"×{len(after)}) cannot be compared: pass the same model before and after training")
    n, h, w, _ = after.shape
    title = title or f"conv1 of {trained.name} minus its initial weights: {n} kernels of {h}×{w}×3"
    return _kernel_grid(after - before, tower_blocks(trained), title, columns)


def _kernel_grid(kernels: np.ndarray, blocks: list[tuple[str, slice]], title: str,
                 columns: int) -> Figure:
    """Kernels ``(n, h, w, 3)`` as contrast-normalised tiles, one labelled block per tower."""
    rows = [math.ceil((block.stop - block.start) / columns) for _, block in blocks]
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


#: The width of `filter_spectrum`'s frequency bins, in cycles per pixel. With
#: 1/16, the Nyquist limits of a stride of 4 (1/8) and of 2 (1/4) are bin edges,
#: and every bin of an 11×11 kernel holds at least one Fourier coefficient.
SPECTRUM_BIN_WIDTH = 1 / 16


def _radial_frequencies(height: int, width: int) -> np.ndarray:
    """The spatial frequency $\\sqrt{f_x^2 + f_y^2}$ (cycles per pixel) of each 2-D DFT coefficient."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return np.sqrt(fx**2 + fy**2)


def _spectrum_bins(height: int, width: int, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Each DFT coefficient's bin index ``(h, w)``, and the bins' centre frequencies."""
    if not bin_width > 0:
        raise AlexnetTutError(f"bin_width must be positive, got {bin_width!r}")
    radius = _radial_frequencies(height, width)
    index = np.floor(radius / bin_width + 1e-9).astype(int)
    centres = (np.arange(index.max() + 1) + 0.5) * bin_width
    return index, centres


def filter_spectrum(
    kernels: np.ndarray, bin_width: float = SPECTRUM_BIN_WIDTH
) -> tuple[np.ndarray, np.ndarray]:
    """Each kernel's share of power in bands of spatial frequency: which frequencies it picks up.

    The 2-D DFT power $|K(f_x, f_y)|^2$ of each colour channel is summed
    over the channels. Every Fourier coefficient then adds its power to the
    band that holds its frequency $\\sqrt{f_x^2 + f_y^2}$; bands are
    ``bin_width`` wide, starting at 0 (the kernel's mean weight is
    frequency 0). Each kernel's bands are normalised to sum to 1.

    Power is *summed* per band, not averaged over a ring: then a band's
    share is the share of the kernel's energy (Parseval), and white noise,
    which has the same expected power in every coefficient, gives each band
    its share of the coefficients (`white_noise_spectrum`). For 11×11 white
    noise about 96 % of the power lies above 1/8 cycles per pixel, because
    116 of the 121 coefficients do; a blurred blob keeps almost all of it
    below.

    With the default width of 1/16, 1/8 and 1/4 are band edges, so
    ``power[:, freqs > 1 / 8].sum(axis=1)`` is exactly the share above 1/8.

    Returns:
        ``(frequencies, power)``: the bands' centre frequencies in cycles per
        pixel, shape ``(bins,)``; each kernel's share of power per band,
        shape ``(kernels, bins)``. Frequencies above 0.5 exist only towards
        the corners of the DFT (the diagonals).
    """
    kernels = np.asarray(kernels, dtype="float64")
    if kernels.ndim != 4:
        raise AlexnetTutError(
            f"kernels must be (kernels, height, width, channels), got shape {kernels.shape}")
    _, h, w, _ = kernels.shape
    index, centres = _spectrum_bins(h, w, bin_width)
    power = (np.abs(np.fft.fft2(kernels, axes=(1, 2))) ** 2).sum(axis=-1)  # (n, h, w)
    flat = index.ravel()
    bands = np.stack([np.bincount(flat, weights=p.ravel(), minlength=len(centres)) for p in power])
    bands /= np.maximum(bands.sum(axis=1, keepdims=True), 1e-30)
    return centres, bands


def white_noise_spectrum(
    kernel_size: int | tuple[int, int], bin_width: float = SPECTRUM_BIN_WIDTH
) -> tuple[np.ndarray, np.ndarray]:
    """The expected `filter_spectrum` of white-noise kernels: each band's share of the coefficients.

    Independent random weights (any initialiser that draws them so) have the
    same expected power at every Fourier coefficient, so the expected share
    of a band is the number of coefficients in it over their total. A
    kernel that departs from this curve prefers some frequencies.
    """
    h, w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    index, centres = _spectrum_bins(h, w, bin_width)
    counts = np.bincount(index.ravel(), minlength=len(centres)).astype("float64")
    return centres, counts / counts.sum()


def filter_norms(kernels: np.ndarray) -> np.ndarray:
    """The Euclidean norm of each kernel (all its weights), shape ``(kernels,)``."""
    kernels = np.asarray(kernels, dtype="float64")
    return np.sqrt((kernels**2).reshape(len(kernels), -1).sum(axis=1))


def dead_filters(kernels: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Indices of "dead" kernels: norm below ``threshold`` × the median kernel norm.

    A kernel that training drove (nearly) to zero responds to nothing; Zeiler
    & Fergus (2013) saw several in AlexNet's first layer.
    """
    norms = filter_norms(kernels)
    return np.flatnonzero(norms < threshold * np.median(norms))


def plot_filter_statistics(
    model: keras.Model, *, title: str | None = None, dead_threshold: float = 0.1
) -> Figure:
    """Colourfulness of every conv1 kernel by tower, and the towers' spectra.

    Left: one bar per kernel (:func:`filter_colourfulness`), coloured by GPU,
    with each tower's mean as a dashed line and dead kernels
    (:func:`dead_filters`) marked with a cross. Right: each tower's mean
    share of power per frequency band (:func:`filter_spectrum`), the middle
    half of its kernels shaded, and the share white noise would have
    (:func:`white_noise_spectrum`) as a dashed black line.
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
    _, noise = white_noise_spectrum(kernels.shape[1:3])
    ax_freq.plot(freqs, noise, "k--", linewidth=1, label="white noise (expected)")
    if len(dead):
        ax_colour.plot(dead + 1, np.zeros(len(dead)), "kx", label=f"dead (< {dead_threshold:g}× median norm)")
    ax_colour.set(xlabel="kernel", ylabel="colourfulness (0 = grey, 1 = pure colour)",
                  title="colour", xlim=(0, len(kernels) + 1), ylim=(0, 1.3))
    ax_colour.legend(loc="upper left", fontsize="small", ncols=2)
    ax_freq.set(xlabel="spatial frequency (cycles per pixel)", ylabel="share of power",
                title="frequency content (mean per tower)")
    ax_freq.legend(fontsize="small")
    return fig


def plot_filter_spectra(kernel_sets: Mapping[str, np.ndarray], *, title: str,
                        limits: Mapping[str, float] | None = None) -> Figure:
    """The mean `filter_spectrum` of several sets of kernels, against white noise's.

    Args:
        kernel_sets: label -> kernels ``(n, h, w, 3)``, all of one kernel size.
        title: the figure's title.
        limits: label -> frequency, drawn as dotted vertical lines (for
            example the Nyquist limits of a stride of 4 and of 2).
    """
    sizes = {np.shape(k)[1:3] for k in kernel_sets.values()}
    if len(sizes) != 1:
        raise AlexnetTutError(f"kernel sets of different sizes {sorted(sizes)}: plot them apart")
    fig = new_figure(7.5, 3.8, title)
    ax = fig.subplots()
    for label, kernels in kernel_sets.items():
        freqs, power = filter_spectrum(kernels)
        ax.plot(freqs, power.mean(axis=0), marker="o", label=label)
    freqs, noise = white_noise_spectrum(sizes.pop())
    ax.plot(freqs, noise, "k--", linewidth=1, label="white noise (expected)")
    for i, (label, frequency) in enumerate((limits or {}).items()):
        ax.axvline(frequency, color="grey", linestyle=":", linewidth=1)
        ax.text(frequency, 0.98 - 0.07 * i, f" {label}", transform=ax.get_xaxis_transform(),
                fontsize="small", color="dimgrey", va="top")
    ax.set(xlabel="spatial frequency (cycles per pixel)",
           ylabel="mean share of power per band", ylim=(0, None))
    ax.legend(fontsize="small", loc="upper right")
    return fig
