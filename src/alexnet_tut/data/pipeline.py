"""The paper's input pipeline (§2, §4.1) in ``tf.data``.

`load_datasets` turns an ImageNet-layout folder into three pipelines, in
these steps:

1. scan the folder and keep the files TensorFlow can decode (`scan`), at most
   a profile's number per class;
2. decode each image once, resize its shorter side (256 in the paper) and keep
   the centre square, and cache those squares (`decode_and_resize`);
3. compute the per-channel mean and the colour PCA from a sample of the
   training images (`color_statistics`);
4. training: shuffle, a random crop (227 in the paper) and its mirror, the
   PCA colour shift (`alexnet_tut.layers.PCAColorAugmentation`), minus the mean;
5. validation: the centre crop, and the ten patches of §4.1 (`ten_crops`).
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_tut.data.folders import _scan
from alexnet_tut.errors import AlexnetTutError

#: What ``load_datasets(cache=...)`` and ``alexnet-tut train --cache`` accept.
CACHE_CHOICES: tuple[str, ...] = ("auto", "memory", "disk", "none")


@dataclass
class ColorPCA:
    """Principal components of RGB pixel values, pixels scaled to [0, 1].

    ``eigenvalues`` (3,) in decreasing order; ``eigenvectors`` (3, 3) with
    the components as *columns*, each signed so that its entries sum to >= 0.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


@dataclass
class Datasets:
    """The training and evaluation pipelines, and what they were built from.

    Attributes:
        train: ``(images, labels)`` batches: float32 ``[B, S, S, 3]`` and int32
            ``[B]``; shuffled, random crop, mirror, PCA colour shift, minus ``mean``.
            Pixel units are 0-255 minus the mean (as in the paper and Caffe).
        val: the same for the validation images, centre crop, in order.
        val_ten_crop: ``(images, labels)`` batches with images
            ``[B, 10, S, S, 3]``: the four corner crops, the centre crop and
            the mirrors of those five (paper §4.1), with ``B`` a tenth of the
            batch size (`ten_crop_batch`), so that a batch holds as many
            patches as a validation batch holds images. It shares ``val``'s cache.
        class_names: readable class names; label ``i`` is ``class_names[i]``.
        num_train, num_val: images per split after caps and skips.
        mean: per-channel training mean, (3,) float32 in 0-255 units.
        pca: colour PCA of the training pixels (``[0, 1]`` units).
        report: `scan`'s report of the folder.
    """

    train: Any
    val: Any
    val_ten_crop: Any
    class_names: list[str]
    num_train: int
    num_val: int
    mean: np.ndarray
    pca: ColorPCA
    report: dict[str, Any] = field(repr=False, default_factory=dict)


def load_datasets(
    root: Path,
    profile,
    *,
    batch_size: int | None = None,
    augment: bool = True,
    pca: bool = True,
    cache: bool | str = "auto",
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    stats_images: int = 500,
) -> Datasets:
    """Build the paper's input pipelines (§4.1) from an ImageNet-layout folder, at a profile's sizes.

    Args:
        root: the folder (``train/<class>/``, ``val/<class>/``).
        profile: an `alexnet_tut.profiles.Profile`: its ``image_size`` (the
            crop), ``resize`` (the shorter side before cropping), batch size
            and caps on images per class.
        batch_size: defaults to the profile's.
        augment: random crops, mirrors and the colour shift; ``False`` gives
            centre crops (to look at the data, or to evaluate).
        pca: the PCA colour shift (with ``augment``).
        cache: where the decoded squares are kept after the first epoch:
            ``"auto"`` (the default) in memory when they fit comfortably, else
            in files under ``cache_dir`` (`plan_cache` decides, and says why);
            ``"memory"`` or ``True``; ``"disk"`` (files under ``cache_dir``);
            ``"none"`` or ``False`` (decode every epoch).
        cache_dir: the folder for a disk cache (``train.run`` uses the run
            folder's ``cache/``).
        seed: the file order is shuffled once with it before caching, and
            again every epoch in a buffer (`shuffle_buffer`); crops and mirrors use
            seeded stateless random ops, so a seed gives the same batches.
        stats_images: how many training images the mean and the colour PCA
            are computed from.
    """
    image_size, resize = profile.image_size, profile.resize
    batch_size = batch_size or profile.batch_size
    if image_size > resize:
        raise AlexnetTutError(f"image_size {image_size} is larger than resize {resize}: crops must fit")
    root = Path(root).expanduser()
    report, train_files, val_files = _pick_files(root, profile, seed)
    where = plan_cache(len(train_files) + len(val_files), resize, cache, cache_dir)
    mean, color_pca = color_statistics(root, train_files[: max(1, stats_images)], resize)
    train_squares = _decoded(root, train_files, resize, where, "train")
    val_squares = _decoded(root, val_files, resize, where, "val")
    if getattr(profile, "rehearsal", False) and where:
        _fill(train_squares, val_squares)  # a rehearsal trains a few steps but caches everything
    train = _training_pipeline(train_squares, len(train_files), image_size, batch_size, mean,
                               color_pca if augment and pca else None, augment, seed)
    val, val_ten_crop = _validation_pipelines(val_squares, image_size, batch_size, mean)
    return Datasets(
        train=train, val=val, val_ten_crop=val_ten_crop, class_names=list(report["classes"]),
        num_train=len(train_files), num_val=len(val_files), mean=mean, pca=color_pca,
        report=report)


def _pick_files(root: Path, profile, seed: int):
    """The scan's report, and the training and validation files a run uses: capped, training shuffled."""
    report, files = _scan(root)
    rng = np.random.default_rng(seed)
    train_files = _cap_per_class(files["train"], profile.max_train_per_class, rng)
    val_files = _cap_per_class(files["val"], profile.max_val_per_class, rng)
    if not val_files:
        raise AlexnetTutError(f"{root / 'val'} holds no usable images for the training classes")
    train_files = [train_files[i] for i in rng.permutation(len(train_files))]
    return report, train_files, val_files


def _cap_per_class(files: list[tuple[str, int]], cap: int | None, rng: np.random.Generator):
    """At most ``cap`` files per class, chosen at random with ``rng``, in folder order."""
    if cap is None:
        return files
    by_class: dict[int, list[tuple[str, int]]] = {}
    for item in files:
        by_class.setdefault(item[1], []).append(item)
    out = []
    for label in sorted(by_class):
        items = by_class[label]
        keep = sorted(rng.choice(len(items), size=min(cap, len(items)), replace=False))
        out += [items[i] for i in keep]
    return out


def decode_and_resize(path, resize: int):
    """Read an image file, resize its shorter side to ``resize`` and keep the centre square.

    Returns uint8 ``[resize, resize, 3]``. `tf.io.decode_image` reads the
    real format, so PNGs named .JPEG, CMYK and grayscale JPEGs all come out RGB.
    """
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    # Keep the centre square first, then resize only that: the same result, fewer pixels.
    # Bilinear without antialiasing: shrinking by less than 2x (320 or ~400 px to 256)
    # barely aliases, and antialiasing halves the decoding speed.
    side = tf.reduce_min(tf.shape(image)[:2])
    image = tf.image.resize_with_crop_or_pad(image, side, side)
    image = tf.image.resize(image, [resize, resize])
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


#: The share of the memory available now that an in-memory cache may take.
MEMORY_SHARE = 0.5


def cache_bytes(num_images: int, resize: int) -> int:
    """Bytes of the decoded cache: one uint8 square of ``resize``² × 3 per image."""
    return num_images * resize * resize * 3


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux's MemAvailable), or ``None``."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB"


def plan_cache(num_images: int, resize: int, cache: bool | str,
               cache_dir: str | os.PathLike | None) -> bool | str:
    """Where to keep the decoded images: ``True`` (memory), a file prefix (disk) or ``False``.

    ``"auto"`` keeps them in memory when they need at most `MEMORY_SHARE` of
    the memory available now, else on disk under ``cache_dir`` when the disk
    has room; otherwise it stops with a one-line error that says how much is
    needed and which setting to use. Full ImageNet at 256×256 needs about
    250 GB; Imagenette about 2.6 GB.
    """
    choice = {True: "memory", False: "none"}.get(cache, cache)
    if choice not in CACHE_CHOICES:
        raise AlexnetTutError(f"unknown cache {cache!r}: choose one of {', '.join(CACHE_CHOICES)}")
    need = cache_bytes(num_images, resize)
    if choice == "auto":
        available = available_memory()
        if available is None or need <= MEMORY_SHARE * available:
            return True
        if cache_dir is None:
            raise AlexnetTutError(
                f"the decoded images need {_gb(need)} but only {_gb(available)} of memory is free: "
                "pass cache='disk' with a cache_dir, or cache='none' to decode every epoch")
        choice = "disk"
    if choice == "memory":
        return True
    if choice == "none":
        return False
    if cache_dir is None:
        raise AlexnetTutError("cache='disk' needs a cache_dir (train.run uses the run folder)")
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise AlexnetTutError(
            f"the decoded images need {_gb(need)}: more than the memory free and than the "
            f"{_gb(free)} free on the disk of {folder}; use --cache none to decode every epoch")
    return str(folder / "decoded")


def _fill(*datasets) -> None:
    """Iterate each dataset once, which fills its cache."""
    for dataset in datasets:
        for _ in dataset:
            pass


def _decoded(root: Path, items: list[tuple[str, int]], resize: int, cache: bool | str, name: str):
    """``(square uint8 image, label)`` for each file, decoded once and cached.

    ``cache`` is what `plan_cache` returned: ``True`` (memory), a file prefix
    (disk) or ``False``.
    """
    import tensorflow as tf

    paths = [str(root / rel) for rel, _ in items]
    labels = np.array([label for _, label in items], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(lambda p, y: (decode_and_resize(p, resize), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors(log_warning=True)  # last resort: the scan should have caught it
    if cache is True:
        ds = ds.cache()
    elif cache:
        ds = ds.cache(f"{cache}-{name}")
    return ds


def color_statistics(root: Path, items: list[tuple[str, int]], resize: int) -> tuple[np.ndarray, ColorPCA]:
    """Per-channel mean (0-255 units) and colour PCA ([0, 1] units) of the pixels of ``items``.

    The paper computes the PCA over the RGB pixels of the whole training set
    (§4.1); this uses the images given, after the same decode and resize as
    training. Sums of $x$ and $x x^T$ are accumulated in float64 batch by
    batch, so memory does not grow with the number of images.
    """
    import tensorflow as tf

    paths = [str(Path(root) / rel) for rel, _ in items]
    batches = (tf.data.Dataset.from_tensor_slices(paths)
               .map(lambda p: decode_and_resize(p, resize), num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors().batch(64))
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    for images in batches:
        x = images.numpy().reshape(-1, 3).astype(np.float64) / 255.0
        total += x.sum(axis=0)
        outer += x.T @ x
        count += len(x)
    if count < 2:
        raise AlexnetTutError(
            f"no training image in {root} could be decoded, so the colour statistics cannot be "
            "computed (run `alexnet-tut data scan` on the folder)")
    mean01 = total / count
    cov = (outer - count * np.outer(mean01, mean01)) / (count - 1)
    return (mean01 * 255.0).astype(np.float32), pca_from_covariance(cov)


def pca_from_covariance(cov: np.ndarray) -> ColorPCA:
    """Eigenvalues (decreasing) and eigenvectors (columns, signed to sum >= 0) of a 3×3 covariance."""
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors = vectors * np.where(vectors.sum(axis=0) < 0, -1.0, 1.0)
    return ColorPCA(values.astype(np.float32), vectors.astype(np.float32))


def _training_pipeline(squares, count: int, image_size: int, batch_size: int, mean: np.ndarray,
                       color_pca: ColorPCA | None, augment: bool, seed: int):
    """Shuffle, crop and mirror, batch, add the colour shift, subtract the mean, prefetch."""
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).batch(2)
    shuffled = squares.shuffle(shuffle_buffer(count, squares.element_spec[0].shape[0]), seed=seed,
                               reshuffle_each_iteration=True)
    crop = functools.partial(_random_crop_and_mirror if augment else _centre_crop_labelled,
                             image_size=image_size)
    batches = tf.data.Dataset.zip(shuffled, seeds).map(crop, num_parallel_calls=auto).batch(batch_size)
    if color_pca is not None:
        from alexnet_tut.layers import PCAColorAugmentation

        jitter = PCAColorAugmentation(color_pca.eigenvalues, color_pca.eigenvectors, seed=seed)
        # The layer's random state makes this map sequential, so it only draws one
        # shift per image (a [B, 1, 1, 3] tensor); adding it is the parallel map below.
        batches = batches.map(lambda x, y: (x, y, 255.0 * jitter(tf.zeros([tf.shape(x)[0], 1, 1, 3]),
                                                                  training=True)))
    else:
        batches = batches.map(lambda x, y: (x, y, tf.zeros([1, 1, 1, 3])))
    return batches.map(functools.partial(_shift_and_centre, mean=mean),
                       num_parallel_calls=auto).prefetch(auto)


#: The most memory the shuffle buffer of decoded squares may take.
SHUFFLE_BYTES = 256 * 2**20


def shuffle_buffer(count: int, resize: int | None) -> int:
    """Images in the training shuffle buffer: 4,096 at most, and at most `SHUFFLE_BYTES` of squares.

    At the ``cpu`` profile's 144 × 144 that is 4,096 images; at the paper's 256 × 256, 1,365
    (256 MB, where 4,096 would take 0.8 GB of a Colab runtime's 12 GB). The files were shuffled
    once before caching, so a window of a few thousand still mixes every batch.
    """
    side = resize or 256
    return max(1, min(count, 4096, SHUFFLE_BYTES // (side * side * 3)))


def _random_crop_and_mirror(item, seeds, image_size: int):
    import tensorflow as tf

    image, label = item
    image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1]), label


def _centre_crop_labelled(item, seeds, image_size: int):
    import tensorflow as tf

    image, label = item
    return tf.image.resize_with_crop_or_pad(image, image_size, image_size), label


def _shift_and_centre(images, labels, offset, mean):
    import tensorflow as tf

    return tf.cast(images, tf.float32) + (offset - mean), labels


def _validation_pipelines(squares, image_size: int, batch_size: int, mean: np.ndarray):
    """Centre crops, and the ten patches of §4.1, in folder order, minus the training mean."""
    import tensorflow as tf

    auto = tf.data.AUTOTUNE

    def centre(x, y):
        return tf.image.resize_with_crop_or_pad(x, image_size, image_size), y

    def normalise(x, y):
        return tf.cast(x, tf.float32) - mean, y

    def ten_patches(x, y):
        return normalise(ten_crops(x, image_size), y)

    val = squares.map(centre, num_parallel_calls=auto).batch(batch_size)
    # A tenth of the images per batch, so that a batch of patches is the size of a
    # validation batch: 128 images' patches would be 0.8 GB of float32 at 227 × 227.
    ten = squares.map(ten_patches, num_parallel_calls=auto).batch(ten_crop_batch(batch_size))
    return val.map(normalise, num_parallel_calls=auto).prefetch(auto), ten.prefetch(1)


def ten_crop_batch(batch_size: int) -> int:
    """Images per ten-patch batch: ``batch_size`` patches, at least one image."""
    return max(1, batch_size // 10)


def ten_crops(image, size: int):
    """The paper's ten test patches of a square image: 4 corners, centre, and their mirrors.

    ``image`` is ``[R, R, 3]``; returns ``[10, size, size, 3]`` in the order
    top-left, top-right, bottom-left, bottom-right, centre, then the mirrors.
    """
    import tensorflow as tf

    r = tf.shape(image)[0]
    far, mid = r - size, (r - size) // 2
    crops = [image[y:y + size, x:x + size] for y, x in
             ((0, 0), (0, far), (far, 0), (far, far), (mid, mid))]
    crops = tf.stack(crops)
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)
