"""Imagenette-shaped data and a mirror server on 127.0.0.1, so that the reader's online run can be
rehearsed offline.

* `write_imagenette_like`: ten classes named by Imagenette's WordNet ids, Imagenette v2's
  9,469 / 3,925 split, JPEGs with a shorter side of 160 pixels and a varied aspect, like
  ``imagenette2-160``. The images are smooth random colour fields: they cost what real ones cost
  to decode, cache and train on, and teach nothing.
* `fake_torchvision_weights`: a ``.pth`` file with torchvision's AlexNet names and shapes and
  random values; `fake_class_index`: ``keras.applications``' ImageNet class index, with
  Imagenette's ten classes at their real indices.
* `Mirror`: an HTTP server on 127.0.0.1 that serves a folder, for ``ALEXNET_TUT_MIRROR``.
"""

from __future__ import annotations

import functools
import http.server
import json
import tarfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_tut.data import IMAGENETTE_CLASSES

#: Imagenette v2's split (its README): 9,469 training and 3,925 validation images.
TRAIN_IMAGES, VAL_IMAGES = 9_469, 3_925


def _counts(total: int, classes: int) -> list[int]:
    """``total`` images over ``classes`` classes, as evenly as whole numbers allow."""
    base, extra = divmod(total, classes)
    return [base + (i < extra) for i in range(classes)]


def _image(rng: np.random.Generator, short: int = 160) -> Image.Image:
    long = int(rng.integers(short, short * 7 // 4))
    width, height = (long, short) if rng.random() < 0.7 else (short, long)
    field = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 13, size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=int) + noise, 0, 255).astype(np.uint8))


def write_imagenette_like(root: Path, seed: int = 0) -> Path:
    """``root/imagenette2-160/{train,val}/<wnid>/*.JPEG``, made once (a marker says it is complete)."""
    folder = root / "imagenette2-160"
    marker = root / "imagenette2-160.complete"
    if marker.exists():
        return folder
    rng = np.random.default_rng(seed)
    wnids = sorted(IMAGENETTE_CLASSES)
    for split, total in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES)):
        for wnid, count in zip(wnids, _counts(total, len(wnids))):
            (folder / split / wnid).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                _image(rng).save(folder / split / wnid / f"{wnid}_{i:05d}.JPEG", quality=85)
    marker.write_text("done")
    return folder


def pack(folder: Path, archive: Path) -> Path:
    """``folder`` as a gzipped tar archive whose top folder is ``folder.name``, as Imagenette's are."""
    if not archive.exists():
        partial = archive.with_name(archive.name + ".partial")
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            tar.add(folder, arcname=folder.name)
        partial.replace(archive)
    return archive


def fake_torchvision_weights(path: Path, seed: int = 0) -> Path:
    """Random weights under torchvision's AlexNet names and shapes, saved with ``torch.save``."""
    import torch

    shapes = {
        "features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5),
        "features.6": (384, 192, 3, 3), "features.8": (256, 384, 3, 3),
        "features.10": (256, 256, 3, 3), "classifier.1": (4096, 256 * 6 * 6),
        "classifier.4": (4096, 4096), "classifier.6": (1000, 4096),
    }
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for prefix, shape in shapes.items():
        state[f"{prefix}.weight"] = 0.01 * torch.randn(shape, generator=generator)
        state[f"{prefix}.bias"] = torch.zeros(shape[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def fake_class_index(path: Path) -> Path:
    """``{"0": [wnid, name], ...}`` for 1,000 classes, Imagenette's at their real indices."""
    index = {str(i): [f"n{90000000 + i:08d}", f"class {i}"] for i in range(1000)}
    for wnid, (name, i) in IMAGENETTE_CLASSES.items():
        index[str(i)] = [wnid, name.replace(" ", "_")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(index))
    return path


class Mirror:
    """Serve ``root`` over HTTP on 127.0.0.1 until `close`; ``url`` is what ALEXNET_TUT_MIRROR takes."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
