"""Input pipeline speed: tf.data (first epoch, cached epochs) against a plain Pillow + NumPy loop.

Writes about 300 JPEGs with a 320-pixel shorter side (Imagenette 320 px's
size) from the offline stand-in's photographs into a temporary folder, then
measures decoded-and-augmented images per second at the paper's sizes
(shorter side 256, random 227 crops, mirrors, PCA colour shift, mean
subtraction) three ways, in one run:

- ``alexnet_tut.data.load_datasets`` with the in-memory cache: its first
  epoch (which decodes every JPEG) and the later, cached epochs;
- the same pipeline with ``cache=False`` (decodes every epoch);
- the same work in a plain Python loop with Pillow and NumPy, one image at a time.

Prints a table and writes ``benchmarks/results/data.json``.

    python benchmarks/bench_data.py [--images-per-class 50] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from alexnet_tut import data  # noqa: E402
from alexnet_tut.profiles import PROFILES  # noqa: E402


def tf_data_speed(root: Path, *, cache: bool, epochs: int, batch: int) -> list[float]:
    """Images per second of each epoch of the training pipeline."""
    ds = data.load_datasets(root, replace(PROFILES["gpu"], batch_size=batch, max_val_per_class=1),
                            cache=cache)
    speeds = []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for images, _ in ds.train:
            count += int(images.shape[0])
        speeds.append(count / (time.perf_counter() - start))
    return speeds


def pillow_numpy_speed(root: Path, mean: np.ndarray, pca: data.ColorPCA, batch: int) -> float:
    """The same decode, resize, crop, mirror, colour shift and mean subtraction, in a Python loop."""
    rng = np.random.default_rng(0)
    files = sorted(root.glob("train/*/*.JPEG"))
    start = time.perf_counter()
    out = []
    for path in files:
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            scale = 256 / min(w, h)
            image = image.resize((max(256, round(w * scale)), max(256, round(h * scale))),
                                 Image.Resampling.BILINEAR)
        x = np.asarray(image)
        top, left = (x.shape[0] - 256) // 2, (x.shape[1] - 256) // 2
        x = x[top:top + 256, left:left + 256]
        dy, dx = rng.integers(0, 256 - 227 + 1, size=2)
        x = x[dy:dy + 227, dx:dx + 227]
        if rng.random() < 0.5:
            x = x[:, ::-1]
        shift = pca.eigenvectors @ (rng.normal(0, 0.1, 3) * pca.eigenvalues)
        out.append((x.astype(np.float32) / 255 + shift) * 255 - mean)
        if len(out) == batch:
            np.stack(out)
            out = []
    return len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3, help="cached epochs measured after the first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "data.json")
    args = parser.parse_args()

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        root = data.write_standin(Path(tmp) / "jpegs", train_per_class=args.images_per_class,
                                  val_per_class=1, short_side=320)
        num = data.scan(root)["splits"]["train"]
        cached = tf_data_speed(root, cache=True, epochs=1 + args.epochs, batch=args.batch_size)
        uncached = tf_data_speed(root, cache=False, epochs=2, batch=args.batch_size)
        stats = data.load_datasets(root, replace(PROFILES["gpu"], batch_size=8), cache=False)
        loop = pillow_numpy_speed(root, stats.mean, stats.pca, args.batch_size)

    rows = {
        "tf.data, cache, first epoch (decodes)": cached[0],
        "tf.data, cache, later epochs (mean)": float(np.mean(cached[1:])),
        "tf.data, no cache (2nd epoch)": uncached[1],
        "Pillow + NumPy loop": loop,
    }
    print(f"{num} JPEGs, shorter side 320 -> 256, random 227 crops, batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'pipeline':40s} {'images/s':>10s}")
    for name, speed in rows.items():
        print(f"{name:40s} {speed:10,.0f}")
    record = {
        "images": num, "short_side": 320, "resize": 256, "crop": 227,
        "batch_size": args.batch_size, "cpus": os.cpu_count(), "platform": platform.platform(),
        "tensorflow": tf.__version__, "images_per_second": rows,
        "cached_epochs": cached[1:], "target_cached_images_per_second": 1000,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
