"""Reading chapter 04's results: crossing epochs, final errors, paired differences over seeds,
the sentences the chapter prints, LRN's activity and the curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:  # only for the annotations: importing them is slow
    import keras
    import pandas as pd



# --------------------------------------------------------------------------- reading the table

def crossing_epochs(history: pd.DataFrame, threshold: float, metric: str = "train_error") -> pd.DataFrame:
    """The epoch at which each run's ``metric`` first falls to ``threshold``: a table config × seed.

    Linear between the two evaluations that bracket the crossing, the way one
    reads a crossing off a plotted curve; ``NaN`` where a run never gets there.
    """
    import pandas as pd

    values = {}
    for (config, seed), run in history.groupby(["config", "seed"], sort=False):
        epochs, errors = run["epoch"].to_numpy(), run[metric].to_numpy()
        below = np.flatnonzero(errors <= threshold)
        if not len(below):
            values[(config, seed)] = np.nan
        elif below[0] == 0:
            values[(config, seed)] = 0.0
        else:
            i = below[0]
            e0, e1, y0, y1 = epochs[i - 1], epochs[i], errors[i - 1], errors[i]
            values[(config, seed)] = float(e0 + (e1 - e0) * (y0 - threshold) / (y0 - y1))
    series = pd.Series(values, dtype=float)
    series.index.names = ["config", "seed"]
    return series.unstack("seed").reindex(history["config"].unique())


def final_values(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each run's last value of ``metric``: a table config × seed."""
    last = history.sort_values("step", kind="stable").groupby(["config", "seed"], sort=False)[metric].last()
    return last.unstack("seed").reindex(history["config"].unique())


def final_errors(history: pd.DataFrame) -> pd.DataFrame:
    """Each run's last training and validation error and their gap, in percent: (measure, config) × seed.

    The gap, validation minus training error, is how much a network overfits.
    """
    import pandas as pd

    train = 100 * final_values(history, "train_error")
    val = 100 * final_values(history, "val_error")
    return pd.concat({"training error (%)": train, "validation error (%)": val,
                      "gap (points)": val - train})


def paired_differences(table: pd.DataFrame, a: str, b: str) -> np.ndarray:
    """Seed by seed, row ``b`` minus row ``a`` of a config × seed table."""
    return (table.loc[b] - table.loc[a]).to_numpy(dtype=float)


def spread(values: Sequence[float], digits: int = 1) -> str:
    """``mean ± sd (min to max)`` of values over seeds, as a short string; ``NaN``s are counted."""
    v = np.asarray(values, dtype=float)
    missing = int(np.sum(~np.isfinite(v)))
    v = v[np.isfinite(v)]
    if not len(v):
        return "never reached"
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    f = f".{digits}f"
    text = f"{np.mean(v):{f}} ± {sd:{f}} (min {np.min(v):{f}}, max {np.max(v):{f}})"
    return text + (f", {missing} run(s) never reached it" if missing else "")


def verdict(differences: Sequence[float]) -> str:
    """``"lower"``, ``"higher"`` or ``"unresolved"``: what per-seed differences say, if anything.

    A direction counts only when every seed points that way (all below zero,
    or all above) and the mean exceeds the seeds' standard deviation; one
    seed never counts, nor does a ``NaN``.
    """
    d = np.asarray(differences, dtype=float)
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return "unresolved"
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    if abs(mean) <= sd:
        return "unresolved"
    if np.all(d < 0):
        return "lower"
    if np.all(d > 0):
        return "higher"
    return "unresolved"


def effect_sentence(differences: Sequence[float], *, what: str, paper: str,
                    resolution: float | None = None, quantity: str = "the error") -> str:
    """An honest reading of a paired effect measured over seeds, in one or two sentences.

    ``differences`` are per-seed values of (with the paper's choice) minus
    (without it), in percentage points of ``quantity`` (an error, or the gap
    between two errors), so negative means that the paper's choice lowered
    it. `verdict` decides whether the seeds show an effect; ``resolution``
    (points per validation image) is named when the effect is within three
    images.
    """
    d = np.asarray(differences, dtype=float)
    mean = float(np.mean(d))
    seeds = ", ".join(f"{x:+.1f}" for x in d)
    line = (f"{what}: {mean:+.1f} points on average over {len(d)} seed(s) ({seeds}); "
            f"the paper: {paper}. ")
    seen = verdict(d)
    if len(d) < 2:
        line += "One seed cannot separate an effect from run-to-run noise."
    elif seen == "lower":
        line += f"Every seed agrees: here the paper's choice lowered {quantity}."
    elif seen == "higher":
        line += f"Every seed agrees: here the paper's choice raised {quantity}, the opposite of the paper."
    else:
        line += (f"The seeds disagree, or the mean is within their standard deviation "
                 f"({np.std(d, ddof=1):.1f}): at this scale the effect does not show.")
    if resolution is not None and abs(mean) < 3 * resolution:
        line += f" One validation image is {resolution:.1f} points, so this is within three images."
    return line


def fastest(crossings: pd.DataFrame, prefix: str) -> str | None:
    """The row of a crossing table, among those starting with ``prefix``, that crossed first on average.

    A row where any seed never crossed counts as never; ``None`` when no row crossed in every seed.
    """
    rows = crossings.loc[[label for label in crossings.index if label.startswith(prefix)]]
    mean = rows.fillna(np.inf).mean(axis=1)
    return None if not np.isfinite(mean.min()) else str(mean.idxmin())


def race_sentence(ratios: Sequence[float], *, paper: float = 6.0) -> str:
    """A reading of the ReLU/tanh race: per seed, tanh's epochs to the threshold over ReLU's."""
    r = np.asarray(ratios, dtype=float)
    if not len(r) or not np.all(np.isfinite(r)):
        return ("At least one run never reached the threshold, so this run cannot say which is "
                "faster; train for more epochs.")
    text = f"tanh needed {spread(r, 2)} times as many epochs as ReLU (the paper: about {paper:g}). "
    if np.all(r > 1):
        return text + "ReLU got there first in every seed."
    if np.all(r < 1):
        return text + "tanh got there first in every seed: at this scale, the opposite of Figure 1."
    return text + "The seeds disagree on which is faster: at this scale the race is a tie."


def lrn_activity(model: keras.Model, x: np.ndarray) -> list[tuple[str, float, float]]:
    """How much each LRN layer of ``model`` normalises on images ``x``.

    An LRN divides $a_c$ by $(k + \\alpha \\sum a_{c'}^2)^\\beta$. When
    $\\alpha \\sum a^2$ is small next to $k$, that is a division by the
    constant $k^\\beta$ and no normalisation at all. Returns, per LRN layer,
    its name and the median and 99th percentile over all positions and
    channels of $\\alpha \\sum a^2 / k$.
    """
    import keras

    from alexnet_tut.layers import LocalResponseNormalization

    layers = [layer for layer in model.layers if isinstance(layer, LocalResponseNormalization)]
    if not layers:
        return []
    probe = keras.Model(model.input, [layer.input for layer in layers])
    outputs = probe(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    result = []
    for layer, a in zip(layers, outputs):
        squares = np.asarray(a, dtype=np.float64) ** 2
        r = layer.depth_radius
        padded = np.pad(squares, [(0, 0)] * (squares.ndim - 1) + [(r, r)])
        total = np.cumsum(padded, axis=-1)
        total = np.concatenate([np.zeros_like(total[..., :1]), total], axis=-1)
        window = total[..., 2 * r + 1:] - total[..., :-(2 * r + 1)]
        ratio = layer.alpha * window / layer.bias
        result.append((layer.name, float(np.median(ratio)), float(np.percentile(ratio, 99))))
    return result


#: How `plot_histories` names the columns of `Runs.history`.
METRIC_NAMES: dict[str, str] = {"running_error": "training error", "train_error": "training",
                                "val_error": "validation", "train_loss": "training loss",
                                "val_loss": "validation loss"}


def plot_histories(history: pd.DataFrame, metrics: str | Sequence[str] = "val_error", *,
                   title: str, ax=None, threshold: float | None = None, ylabel: str | None = None):
    """One line per configuration and metric (the mean over seeds), the seeds' range shaded.

    ``metrics`` are columns of `Runs.history`; errors are plotted in percent.
    With two metrics the first is drawn dashed, the second solid, in the
    configuration's colour. Returns the axes.
    """
    import matplotlib.pyplot as plt

    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    percent = all(m.endswith("error") for m in metrics)
    scale = 100.0 if percent else 1.0
    styles = ["--", "-"] if len(metrics) == 2 else ["-"] * len(metrics)
    for i, (config, runs) in enumerate(history.groupby("config", sort=False)):
        color = f"C{i}"
        for metric, style in zip(metrics, styles):
            by_epoch = runs.groupby("epoch")[metric]
            epochs = by_epoch.mean().index.to_numpy()
            name = METRIC_NAMES.get(metric, metric.replace("_", " "))
            label = config if len(metrics) == 1 else f"{config}, {name}"
            ax.plot(epochs, scale * by_epoch.mean().to_numpy(), style, color=color, label=label)
            ax.fill_between(epochs, scale * by_epoch.min().to_numpy(),
                            scale * by_epoch.max().to_numpy(), color=color, alpha=0.15, linewidth=0)
    if threshold is not None:
        ax.axhline(scale * threshold, color="gray", linestyle=":", linewidth=1,
                   label=f"threshold {scale * threshold:.1f}" + (" %" if percent else ""))
    ax.set_xlabel("epochs")
    if percent:
        default = "error (%)"
    else:
        default = " and ".join(METRIC_NAMES.get(m, m.replace("_", " ")) for m in metrics)
    ax.set_ylabel(ylabel or default)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
