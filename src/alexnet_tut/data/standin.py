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
STANDIN_VERSION = 1

#: class folder -> where its photograph comes from
STANDIN_PHOTOS: dict[str, str] = {
    "astronaut": "skimage:astronaut",
    "cat": "skimage:chelsea",
    "coffee": "skimage:coffee",
    "hopper": "matplotlib:grace_hopper.jpg",
    "rocket": "skimage:rocket",
    "tissue": "skimage:immunohistochemistry",
}
STANDIN_DESCRIPTION = (f"offline stand-in ({len(STANDIN_PHOTOS)} classes of real photos made "
                       "from scikit-image and matplotlib sample images)")


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


def write_standin(
    directory: Path,
    *,
    seed: int = 0,
    train_per_class: int = 40,
    val_per_class: int = 10,
    short_side: int = 192,
) -> Path:
    """Write the offline stand-in, an Imagenette-shaped folder of real photographs.

    One class per photograph (`STANDIN_PHOTOS`); every example is a random
    crop (30-100 % of the area, aspect 3:4 to 4:3), maybe mirrored, scaled to
    a shorter side of ``short_side`` pixels and saved as a JPEG, in
    ``train/<class>/`` and ``val/<class>/``. The same ``seed`` gives the same
    files. About 5 MB with the defaults.

    Idempotent: a folder holding a finished stand-in with the same settings
    is returned as it is. The files are written to a temporary sibling folder
    and moved into place at the end, so an interrupted run leaves nothing
    half-written behind. Returns ``directory``.
    """
    from PIL import Image

    directory = Path(directory).expanduser()
    settings = {"version": STANDIN_VERSION, "seed": seed, "train_per_class": train_per_class,
                "val_per_class": val_per_class, "short_side": short_side}
    marker = directory / STANDIN_MARKER
    if marker.exists():
        if json.loads(marker.read_text()).get("settings") == settings:
            return directory
        raise AlexnetTutError(
            f"{directory} holds a stand-in made with other settings: delete it or choose another folder")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlexnetTutError(f"{directory} exists and is not empty: choose a new or empty folder")
    directory.parent.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(seed)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        for name in STANDIN_PHOTOS:
            photo = Image.fromarray(standin_photo(name))
            width, height = photo.size
            for split, count in (("train", train_per_class), ("val", val_per_class)):
                (staging / split / name).mkdir(parents=True)
                for i in range(count):
                    area = rng.uniform(0.3, 1.0) * width * height
                    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
                    w = int(min(width, round(np.sqrt(area * aspect))))
                    h = int(min(height, round(np.sqrt(area / aspect))))
                    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
                    crop = photo.crop((x, y, x + w, y + h))
                    if rng.random() < 0.5:
                        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    scale = short_side / min(w, h)
                    crop = crop.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                       Image.Resampling.BICUBIC)
                    crop.save(staging / split / name / f"{name}_{i:04d}.JPEG", quality=90)
        (staging / STANDIN_MARKER).write_text(json.dumps(
            {"description": STANDIN_DESCRIPTION, "sources": STANDIN_PHOTOS, "settings": settings},
            indent=2))
        try:
            os.replace(staging, directory)  # replaces a missing or empty folder
        except OSError:
            if not marker.exists():  # another process did not just finish the same job
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
