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


def _squared_distances_to(features: np.ndarray, rows: slice, norms: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from ``features[rows]`` to every row, through their Gram block.

    $\\lVert a - b \\rVert^2 = \\lVert a \\rVert^2 + \\lVert b \\rVert^2 - 2\\,a \\cdot b$:
    one ``(chunk, N)`` block at a time, in float64, so memory grows with
    the chunk, never as ``N × N × D``.
    """
    block = features[rows] @ features.T
    return np.maximum(norms[rows, None] + norms[None, :] - 2.0 * block, 0.0)


def same_class_share(features, labels, k: int = 5, chunk: int = 256) -> float:
    """Share of each image's ``k`` nearest neighbours (Euclidean) that have its label.

    The image itself is left out; ties are broken by index. Distances are
    computed ``chunk`` rows at a time from Gram-matrix blocks
    (`_squared_distances_to`), so 300 images of 227×227×3 pixels need a few
    hundred MB, not the 55 GB of an ``N × N × D`` difference array.
    """
    features = np.asarray(features, dtype="float64").reshape(len(features), -1)
    labels = np.asarray(labels)
    if len(features) != len(labels):
        raise AlexnetTutError(f"{len(features)} feature rows but {len(labels)} labels")
    if not 0 < k < len(labels):
        raise AlexnetTutError(f"k must be between 1 and {len(labels) - 1} (one less than the images), got {k}")
    norms = np.einsum("ij,ij->i", features, features)
    hits = 0
    for begin in range(0, len(features), chunk):
        rows = slice(begin, min(begin + chunk, len(features)))
        d = _squared_distances_to(features, rows, norms)
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = np.inf  # not itself
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
        hits += int(np.sum(labels[nearest] == labels[rows, None]))
    return hits / (len(labels) * k)


def same_class_baselines(labels, k: int = 5) -> tuple[float, float]:
    """``(chance, ceiling)`` for `same_class_share` with these labels.

    Chance: neighbours drawn at random from the other images share an
    image's class with probability $(m_c - 1)/(N - 1)$, for $m_c$ images in
    its class. Ceiling: at most $m_c - 1$ other images share it, so at most
    $\\min(k, m_c - 1)/k$ of its $k$ neighbours can; with $m$ images per
    class that is $(m - 1)/k$ when $m \\le k$. Both are averaged over the images.
    """
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    same = counts[inverse] - 1
    chance = float(np.mean(same / (len(labels) - 1)))
    ceiling = float(np.mean(np.minimum(k, same) / k))
    return chance, ceiling


def first_per_class(batches, per_class: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` images of every class from ``(images, labels)`` batches, streamed.

    Reads batch after batch and keeps only what it needs, so a validation
    set of thousands of images is never held in memory to pick a few
    hundred; it stops as soon as every class is full. Returns
    ``(images, labels)`` in the order they came.
    """
    kept_images, kept_labels = [], []
    counts = np.zeros(num_classes, dtype=int)
    for images, labels in batches:
        images, labels = np.asarray(images), np.asarray(labels)
        for image, label in zip(images, labels):
            if counts[label] < per_class:
                kept_images.append(image)
                kept_labels.append(label)
                counts[label] += 1
        if counts.min() >= per_class:
            break
    if not kept_images:
        raise AlexnetTutError("the batches held no images")
    return np.stack(kept_images), np.asarray(kept_labels)


def plot_neighbours(
    images,
    query_indices: int | Sequence[int],
    neighbour_indices: np.ndarray,
    *,
    distances: np.ndarray | None = None,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """One row per query: the query image, then its neighbours, closest first.

    With ``labels`` (and ``class_names`` to name them) every tile says its
    class, and a neighbour of another class than its query is titled in red
    with an ✗, so the figure shows where the search goes wrong.
    """
    queries = np.atleast_1d(query_indices)
    neighbours = np.atleast_2d(neighbour_indices)
    if distances is not None:
        distances = np.atleast_2d(distances)

    def name(i):
        if labels is None:
            return None
        label = int(labels[i])
        return class_names[label] if class_names is not None else str(label)

    k = neighbours.shape[1]
    title = title or "Nearest neighbours: each row is a query image, then the closest images"
    fig = new_figure(1.8 * (k + 1), 1.9 * len(queries) + 0.4, title)
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    for row, q in enumerate(queries):
        axes[row, 0].imshow(displayable(images[q]))
        query_title = f"query {q}" + (f"\n{name(q)}" if labels is not None else "")
        axes[row, 0].set_title(query_title, fontweight="bold", fontsize="small")
        for col, i in enumerate(neighbours[row], start=1):
            axes[row, col].imshow(displayable(images[i]))
            label = f"#{col}: image {i}"
            colour = "black"
            if labels is not None:
                same = int(labels[i]) == int(labels[q])
                label += f"\n{name(i)}" + ("" if same else " ✗")
                colour = "black" if same else "tab:red"
            if distances is not None:
                label += f"\nd = {distances[row, col - 1]:.3g}"
            axes[row, col].set_title(label, fontsize="small", color=colour)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig


def plot_training_curves(history: Sequence[Mapping[str, float]], *, title: str,
                         chance: float | None = None) -> Figure:
    """Loss, top-1 and top-5 accuracy and the learning rate per epoch, from a run's history.

    ``history`` is :func:`alexnet_tut.checkpoints.read_history`'s list of
    rows (``loss``, ``top1``, ``top5``, their ``val_`` twins,
    ``learning_rate``). The epoch axis has a tick per whole epoch (every few
    epochs on long runs). Dotted vertical lines mark where the learning rate
    was divided, between the last epoch at one rate and the first at the
    next, and the fourth panel shows the rate itself on a log scale. With
    ``chance`` (the top-1 accuracy of a random guess, ``1 / classes``) the
    top-1 panel draws it as a dashed line.
    """
    if not history:
        raise AlexnetTutError("the run has no finished epoch yet: nothing to plot")
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history) + 1)
    fig = new_figure(14, 3.4, title)
    axes = fig.subplots(1, 4)
    rates = [row.get("learning_rate", math.nan) for row in history]
    drops = [e for e, (a, b) in enumerate(zip(rates, rates[1:]), start=1) if b < a]
    for ax, key, label in zip(axes, ("loss", "top1", "top5"),
                              ("cross-entropy loss", "top-1 accuracy", "top-5 accuracy")):
        for prefix, style, name in (("", "-o", "training"), ("val_", "-s", "validation")):
            values = [row.get(prefix + key, math.nan) for row in history]
            ax.plot(epochs, values, style, markersize=3, label=name)
        if key != "loss":
            ax.set_ylim(0, 1.02)
        if key == "top1" and chance is not None:
            ax.axhline(chance, color="black", linestyle="--", linewidth=1, label="chance")
            ax.legend(fontsize=8)
        ax.set_title(label, fontsize=10)
    ax_rate = axes[3]
    ax_rate.plot(epochs, rates, "-o", color="tab:grey", markersize=3)
    ax_rate.set_yscale("log")
    ax_rate.set_title("learning rate", fontsize=10)
    for ax in axes:
        for epoch in drops:
            ax.axvline(epoch + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, len(history) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes[0].legend(fontsize=8)
    if drops:
        axes[3].plot([], [], color="grey", linestyle=":", linewidth=1, label="rate divided")
        axes[3].legend(fontsize=8)
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
