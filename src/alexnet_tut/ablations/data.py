"""Chapter 04's data: CIFAR-10 when it can be had, else the offline stand-in, as 32×32 arrays;
and how much each profile trains (`Budget`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet_tut.errors import AlexnetTutError

if TYPE_CHECKING:  # only for the annotations: importing them is slow
    pass



#: Side of the images the experiments train on: CIFAR-10's 32 pixels.
IMAGE_SIZE = 32

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck")
#: What ``keras.datasets.cifar10`` downloads (Keras fetches it itself, not through ALEXNET_TUT_MIRROR).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

#: The paper's Figure 1 threshold: 25 % training error on CIFAR-10.
PAPER_THRESHOLD = 0.25


# --------------------------------------------------------------------------- budgets

@dataclass(frozen=True)
class Budget:
    """How much chapter 04 trains under one profile.

    Attributes:
        name: the profile's name.
        train_images: cap on training images, drawn evenly from the classes
            (``None``: all of them).
        val_images: cap on validation images, likewise.
        epochs: passes over the training images in one run of the small AlexNet.
        race_epochs: passes in the ReLU/tanh race, whose smaller network
            learns faster.
        seeds: the seeds every configuration is trained with.
        batch_size: images per step.
        learning_rate: SGD's rate (momentum 0.9), the same for every configuration.
        evaluations: how many times a run measures its errors after the
            start, evenly spaced in steps.
        max_steps_per_epoch: stop an epoch after this many steps (``None``: never).
    """

    name: str
    train_images: int | None
    val_images: int | None
    epochs: int
    race_epochs: int
    seeds: tuple[int, ...]
    batch_size: int
    learning_rate: float = 0.01
    evaluations: int = 8
    max_steps_per_epoch: int | None = None

    def describe(self) -> str:
        """One line for people."""
        line = (f"{self.name} budget: {_at_most(self.train_images)} training and "
                f"{_at_most(self.val_images)} validation images; {_epochs(self.epochs)} "
                f"({_epochs(self.race_epochs)} in the race), seeds {list(self.seeds)}, "
                f"batch {self.batch_size}, SGD at {self.learning_rate} with momentum 0.9")
        if self.max_steps_per_epoch:
            line += f", at most {self.max_steps_per_epoch} steps per epoch"
        return line


def _at_most(cap: int | None) -> str:
    return "all" if cap is None else f"at most {cap:,}"


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("s" if count != 1 else "")


BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", train_images=96, val_images=48, epochs=1, race_epochs=1,
                    seeds=(0, 1), batch_size=16, evaluations=2, max_steps_per_epoch=2),
    "cpu": Budget("cpu", train_images=1000, val_images=500, epochs=16, race_epochs=6,
                  seeds=(0, 1, 2), batch_size=32, evaluations=8),
    "gpu": Budget("gpu", train_images=None, val_images=None, epochs=30, race_epochs=30,
                  seeds=(0, 1, 2), batch_size=128, evaluations=30),
}


def budget_for(profile) -> Budget:
    """Chapter 04's `Budget` for a profile (a `alexnet_tut.profiles.Profile` or its name).

    Under ``ALEXNET_TUT_REHEARSAL`` the profile's budget is kept but every
    epoch stops after a few steps, as the other chapters' rehearsals do.
    """
    name = getattr(profile, "name", profile)
    if name not in BUDGETS:
        raise AlexnetTutError(f"no chapter 04 budget for profile {name!r}: "
                              f"choose one of {', '.join(BUDGETS)}")
    budget = BUDGETS[name]
    if getattr(profile, "rehearsal", False):
        from alexnet_tut.profiles import REHEARSAL_EPOCHS, REHEARSAL_STEPS

        budget = replace(budget, epochs=min(budget.epochs, REHEARSAL_EPOCHS),
                         race_epochs=min(budget.race_epochs, REHEARSAL_EPOCHS),
                         evaluations=min(budget.evaluations, REHEARSAL_EPOCHS),
                         max_steps_per_epoch=REHEARSAL_STEPS)
    return budget


# --------------------------------------------------------------------------- data

@dataclass
class SmallImages:
    """Small images in NumPy arrays, ready to train on.

    Attributes:
        x_train, x_val: float32 ``[N, 32, 32, 3]``, pixels scaled to [0, 1]
            minus the per-channel training mean.
        y_train, y_val: int32 labels.
        class_names: label ``i`` is ``class_names[i]``.
        kind: ``"cifar10"`` or ``"standin"``.
        description: one line for people: which data, and why.
        mean: the per-channel mean that was subtracted, (3,), [0, 1] units.
        pca: the colour PCA of the training pixels (`alexnet_tut.data.ColorPCA`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]
    kind: str
    description: str
    mean: np.ndarray
    pca: Any

    @property
    def suffix(self) -> str:
        """What every figure made from the stand-in adds to its title."""
        return " (offline stand-in)" if self.kind == "standin" else ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def chance_error(num_classes: int) -> float:
    """The error of a uniform random guess among ``num_classes`` classes."""
    return 1.0 - 1.0 / num_classes


def race_threshold(num_classes: int) -> float:
    """The training error the ReLU/tanh race is run to.

    On CIFAR-10 it is the paper's 25 % (Figure 1). With another number of
    classes it is the error that stands as far below a random guess's:
    25 % is 27.8 % of CIFAR-10's 90 % chance error, so six classes (chance
    83.3 %) get 23.1 %. The rule is fixed before any run, never fitted to one.
    """
    return PAPER_THRESHOLD * chance_error(num_classes) / chance_error(len(CIFAR10_CLASSES))


def _cifar10_cached() -> bool:
    """Whether Keras already holds a CIFAR-10 download (then no network is needed)."""
    home = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "datasets"
    return any(home.glob("cifar-10-batches-py*"))


def _try_cifar10(profile) -> tuple[tuple | None, str]:
    """CIFAR-10's four arrays and a note, or ``None`` and why not.

    Never tries the network under a ``standin_only`` profile (``smoke``), when
    ``ALEXNET_TUT_OFFLINE`` is set, or when the download host does not answer
    within a few seconds; any failure of the download itself is caught.
    """
    if getattr(profile, "standin_only", False):
        return None, f"the {profile.name} profile always uses the stand-in"
    cached = _cifar10_cached()
    if os.environ.get("ALEXNET_TUT_OFFLINE") and not cached:
        return None, "ALEXNET_TUT_OFFLINE is set, so no download was tried"
    if not cached:
        from alexnet_tut import downloads

        if not downloads.reachable(CIFAR10_URL, through_mirror=False):
            return None, "offline: CIFAR-10 could not be downloaded"
    try:
        import keras

        return keras.datasets.cifar10.load_data(), "keras.datasets.cifar10"
    except Exception as error:  # any failure falls back to the stand-in
        return None, f"CIFAR-10 download failed: {error}"


def _balanced_subset(labels: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``cap`` items, as evenly spread over the classes as possible, sorted."""
    if cap is None or cap >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = cap // len(classes)
    keep = [rng.choice(np.flatnonzero(labels == c), size=min(per_class, int(np.sum(labels == c))),
                       replace=False) for c in classes]
    return np.sort(np.concatenate(keep))


def standin_files(root: Path, report: Mapping[str, Any], split: str) -> list[tuple[Path, int]]:
    """The ``(path, label)`` pairs of one split that `alexnet_tut.data.scan` found usable.

    Reads the classes from the report (label ``i`` is ``report["class_ids"][i]``)
    and leaves out every file the report lists as skipped, so the counts are
    always the scan's, whatever the stand-in holds.
    """
    from alexnet_tut.data.folders import IMAGE_SUFFIXES

    root = Path(root)
    skipped = {item["path"] for item in report["skipped"]}
    pairs = []
    for label, wnid in enumerate(report["class_ids"]):
        folder = root / split / wnid
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (path.is_file() and not path.name.startswith(".")
                    and path.suffix.lower() in IMAGE_SUFFIXES and rel not in skipped):
                pairs.append((path, label))
    return pairs


def small_image(path: Path, size: int = IMAGE_SIZE) -> np.ndarray:
    """An image file as uint8 ``[size, size, 3]``: the centre square, shrunk with a Lanczos filter.

    The filter averages over the pixels it shrinks (the stand-in's 192-pixel
    images shrink six times), where TensorFlow's default bilinear resize
    would alias.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        square = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8)


def _load_standin(profile, size: int) -> tuple[tuple, list[str], str]:
    from alexnet_tut.data import resolve_source, scan

    source = resolve_source(replace(profile, standin_only=True) if hasattr(profile, "standin_only")
                            else profile)
    report = scan(source.root)
    arrays = []
    for split in ("train", "val"):
        pairs = standin_files(source.root, report, split)
        if not pairs:
            raise AlexnetTutError(f"{source.root / split} holds no usable images: "
                                  "delete the folder so that the stand-in is written again")
        arrays.append((np.stack([small_image(path, size) for path, _ in pairs]),
                       np.array([label for _, label in pairs], dtype=np.int32)))
    return tuple(arrays), list(report["classes"]), source.description


def load_small_images(profile, *, seed: int = 0) -> SmallImages:
    """The chapter's data as arrays: CIFAR-10 when it can be had, else the offline stand-in.

    CIFAR-10 comes through ``keras.datasets.cifar10`` (its 10,000 test images
    serve as the validation set); the stand-in's folder through
    `alexnet_tut.data.resolve_source` and its files through
    `alexnet_tut.data.scan`, each image shrunk to CIFAR-10's 32 pixels
    (`small_image`). The profile's `Budget` caps the images per split, drawn
    evenly from the classes with ``seed``; the training images come in a
    shuffled order, so that any first few of them mix the classes. Pixels
    are scaled to [0, 1] and the per-channel training mean is subtracted;
    the colour PCA of the training pixels is computed on the way, for the
    colour-augmentation experiment.
    Prints nothing: ``description`` says which data it is and why.
    """
    from alexnet_tut.data.pipeline import pca_from_covariance

    budget = budget_for(profile)
    cifar, note = _try_cifar10(profile)
    if cifar is not None:
        (x_train, y_train), (x_val, y_val) = cifar
        y_train, y_val = y_train.reshape(-1).astype(np.int32), y_val.reshape(-1).astype(np.int32)
        names, kind = list(CIFAR10_CLASSES), "cifar10"
        description = "CIFAR-10 (keras.datasets.cifar10; its test set as validation)"
    else:
        ((x_train, y_train), (x_val, y_val)), names, where = _load_standin(profile, IMAGE_SIZE)
        kind, description = "standin", f"{where}, shrunk to {IMAGE_SIZE}x{IMAGE_SIZE} ({note})"
    rng = np.random.default_rng(seed)
    train = rng.permutation(_balanced_subset(y_train, budget.train_images, rng))  # classes mixed
    val = _balanced_subset(y_val, budget.val_images, rng)
    x_train, y_train, x_val, y_val = x_train[train], y_train[train], x_val[val], y_val[val]

    pixels = x_train.reshape(-1, 3).astype(np.float64) / 255.0
    mean = pixels.mean(axis=0).astype(np.float32)
    pca = pca_from_covariance(np.cov(pixels, rowvar=False))
    return SmallImages(x_train.astype(np.float32) / 255.0 - mean, y_train,
                       x_val.astype(np.float32) / 255.0 - mean, y_val,
                       names, kind, description, mean, pca)


