"""What a trained network does: fc7 nearest neighbours (Figure 4), training curves, a confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np
from matplotlib.figure import Figure

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.viz.figure import displayable, new_figure
from alexnet_tut.viz.maps import layer_activations


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
    fig = new_figure(1.8 * (k + 1), 1.9 * len(queries) + 0.4, title)
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    for row, q in enumerate(queries):
        axes[row, 0].imshow(displayable(images[q]))
        axes[row, 0].set_title(f"query {q}", fontweight="bold")
        for col, i in enumerate(neighbours[row], start=1):
            axes[row, col].imshow(displayable(images[i]))
            label = f"#{col}: image {i}"
            if distances is not None:
                label += f"\nd = {distances[row, col - 1]:.3g}"
            axes[row, col].set_title(label, fontsize="small")
    for ax in axes.flat:
        ax.set_axis_off()
    return fig


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
    fig = new_figure(11, 3.4, title)
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
    fig = new_figure(side + 1.5, side, title)
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
