"""What every figure of the book shares: a white background, a title, nothing left open in pyplot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

TOWER_COLOURS = ("tab:blue", "tab:orange")


def new_figure(width: float, height: float, title: str) -> Figure:
    """A white, titled figure that pyplot does not keep (see the module docstring)."""
    fig = plt.figure(figsize=(width, height), facecolor="white", layout="constrained")
    plt.close(fig)
    fig.suptitle(title)
    return fig


def unit_range(x: np.ndarray) -> np.ndarray:
    """Stretch ``x`` linearly to ``[0, 1]`` (a constant array becomes 0.5)."""
    x = np.asarray(x, dtype="float32")
    low, high = float(x.min()), float(x.max())
    if high - low < 1e-12:
        return np.full_like(x, 0.5)
    return (x - low) / (high - low)


def displayable(image: np.ndarray) -> np.ndarray:
    """An image as matplotlib shows it: ``uint8`` / 255, anything else stretched."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype("float32") / 255.0
    return unit_range(image)
