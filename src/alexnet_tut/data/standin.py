"""The offline stand-in: an Imagenette-shaped folder of real photographs that installed packages ship.

Tests, nbval and an offline book build train on it with the very same code
path as on Imagenette. It is a small task that shows the machinery, not
ImageNet: each class is cut from one photograph.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from alexnet_tut.errors import AlexnetTutError

#: Written into a finished stand-in: what it is and how it was made.
STANDIN_MARKER = "standin.json"
STANDIN_VERSION = 2
#: Its folder under `alexnet_tut.data.data_home`: a new version goes to a new folder, so an older
#: stand-in is never overwritten.
STANDIN_DIRNAME = f"alexnet-tut-standin-v{STANDIN_VERSION}"

#: class folder -> where its photograph comes from
STANDIN_PHOTOS: dict[str, str] = {
    "astronaut": "skimage:astronaut",
    "cat": "skimage:chelsea",
    "coffee": "skimage:coffee",
    "hopper": "matplotlib:grace_hopper.jpg",
    "rocket": "skimage:rocket",
    "tissue": "skimage:immunohistochemistry",
}
STANDIN_DESCRIPTION = (f"offline stand-in ({len(STANDIN_PHOTOS)} classes, each cut from one real "
                       "photo that scikit-image or matplotlib ships; validation crops come from a "
                       "part of the photo no training crop touches)")


def standin_photo(name: str) -> np.ndarray:
    """The RGB photograph (uint8, H×W×3) behind stand-in class ``name``."""
    source, _, item = STANDIN_PHOTOS[name].partition(":")
    if source == "matplotlib":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data(item, asfileobj=False)) as image:
            return np.asarray(image.convert("RGB"))
    try:
        import skimage.data
    except ImportError as error:
        raise AlexnetTutError(
            "the offline stand-in needs scikit-image's sample photos: pip install scikit-image"
        ) from error
    return np.ascontiguousarray(getattr(skimage.data, item)()[..., :3])


#: Each photograph is cut into this many vertical stripes; the odd ones are for validation.
STRIPES = 5


def photo_regions(width: int, height: int, stripes: int = STRIPES) -> dict[str, list]:
    """The training and validation rectangles of a ``width``×``height`` photo, as (x0, y0, x1, y1).

    The photo is cut into ``stripes`` vertical stripes of equal width. The
    even ones (first, third, ...) are for training, the odd ones for
    validation, so each validation stripe lies between two training stripes.
    No two stripes share a pixel, so no validation image shows anything a
    training image showed.
    """
    edges = [round(i * width / stripes) for i in range(stripes + 1)]
    boxes = [(x0, 0, x1, height) for x0, x1 in zip(edges, edges[1:])]
    return {"train": boxes[0::2], "val": boxes[1::2]}


def _random_crop(rng: np.random.Generator, regions: list) -> tuple[int, int, int, int]:
    """A crop inside one of ``regions``: 60-100 % of its width, aspect 3:4 to 4:3."""
    x0, y0, x1, y1 = regions[int(rng.integers(len(regions)))]
    width, height = x1 - x0, y1 - y0
    w = max(1, round(rng.uniform(0.6, 1.0) * width))
    h = int(min(height, round(w * np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))))
    x, y = x0 + int(rng.integers(0, width - w + 1)), y0 + int(rng.integers(0, height - h + 1))
    return x, y, x + w, y + h


def write_standin(
    directory: Path,
    *,
    seed: int = 0,
    train_per_class: int = 120,
    val_per_class: int = 40,
    short_side: int = 192,
) -> Path:
    """Write the offline stand-in, an Imagenette-shaped folder of real photographs.

    One class per photograph (`STANDIN_PHOTOS`). Each photograph is cut into
    five vertical stripes (`photo_regions`): training images are random crops
    of the first, third and fifth, validation images random crops of the
    second and fourth, so a validation image never shares a pixel with a
    training image. A crop spans 60-100 % of its stripe's width, has an
    aspect of 3:4 to 4:3, is mirrored half the time, scaled to a shorter side of ``short_side`` pixels and saved
    as a JPEG in ``train/<class>/`` or ``val/<class>/``. ``standin.json``
    records every crop's rectangle in its photograph. The same ``seed`` gives
    the same files; about 14 MB with the defaults.

    Idempotent: a folder holding a finished stand-in with the same settings
    is returned as it is. The files are written to a temporary sibling folder
    and moved into place at the end, so an interrupted run leaves nothing
    half-written behind. Returns ``directory``.
    """
    from PIL import Image

    directory = Path(directory).expanduser()
    settings = {"version": STANDIN_VERSION, "seed": seed, "train_per_class": train_per_class,
                "val_per_class": val_per_class, "short_side": short_side, "stripes": STRIPES}
    marker = directory / STANDIN_MARKER
    if marker.exists():
        if json.loads(marker.read_text()).get("settings") == settings:
            return directory
        raise AlexnetTutError(
            f"{directory} holds a stand-in made with other settings: delete it or choose another folder")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlexnetTutError(f"{directory} exists and is not empty: choose a new or empty folder")
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=parent))
    except OSError as error:
        raise AlexnetTutError(
            f"cannot write the stand-in into {parent}: {error.strerror or error} "
            "(choose a folder you can write to)") from None

    rng = np.random.default_rng(seed)
    crops: dict[str, list] = {}
    try:
        for name in STANDIN_PHOTOS:
            photo = Image.fromarray(standin_photo(name))
            regions = photo_regions(*photo.size)
            for split, count in (("train", train_per_class), ("val", val_per_class)):
                (staging / split / name).mkdir(parents=True)
                for i in range(count):
                    box = _random_crop(rng, regions[split])
                    crop = photo.crop(box)
                    mirrored = bool(rng.random() < 0.5)
                    if mirrored:
                        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    w, h = crop.size
                    scale = short_side / min(w, h)
                    crop = crop.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                       Image.Resampling.BICUBIC)
                    rel = f"{split}/{name}/{name}_{i:04d}.JPEG"
                    crop.save(staging / rel, quality=90)
                    crops[rel] = [*box, mirrored]
        (staging / STANDIN_MARKER).write_text(json.dumps(
            {"description": STANDIN_DESCRIPTION, "sources": STANDIN_PHOTOS, "settings": settings,
             "crops": crops}, indent=1))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the stand-in is not
        try:
            os.replace(staging, directory)  # replaces a missing or empty folder
        except OSError:
            if not marker.exists():  # another process did not just finish the same job
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _umask() -> int:
    """The process's file-creation mask (reading it means setting it, so it is set back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
