"""The §4.1 pipelines against NumPy: shapes, crops, the ten patches, the colour statistics, bad files."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tut import data
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.profiles import PROFILES
from datafiles import SMALL, copy_of, write_bad_files


def sizes(**fields):
    """A profile with these sizes: the pipeline reads image_size, resize, batch and caps."""
    return replace(PROFILES["smoke"], **{"max_train_per_class": None, "max_val_per_class": None, **fields})

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return data.write_standin(tmp_path_factory.mktemp("s") / "standin", seed=0, **SMALL)


@pytest.fixture(scope="module")
def datasets(standin):
    return data.load_datasets(standin, sizes(image_size=32, resize=40, batch_size=8,
                                             max_train_per_class=4, max_val_per_class=2), seed=0)


def test_pipeline_shapes_and_dtypes(datasets):
    assert (datasets.num_train, datasets.num_val) == (24, 12)
    assert datasets.class_names == sorted(data.STANDIN_PHOTOS)
    batches = list(datasets.train)
    assert [int(x.shape[0]) for x, _ in batches] == [8, 8, 8]
    x, y = batches[0]
    assert x.shape == (8, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert sorted(np.concatenate([y.numpy() for _, y in batches])) == sorted(list(range(6)) * 4)
    x, y = next(iter(datasets.val))
    assert x.shape == (8, 32, 32, 3) and list(y.numpy()) == [0, 0, 1, 1, 2, 2, 3, 3]
    ten = list(datasets.val_ten_crop)
    # A tenth of the images per batch: no more patches in a batch than images in a val batch.
    assert [int(x.shape[0]) for x, _ in ten] == [1] * 12
    x, y = ten[0]
    assert x.shape == (1, 10, 32, 32, 3) and x.dtype == tf.float32
    assert [data.ten_crop_batch(b) for b in (1, 8, 32, 128)] == [1, 1, 3, 12]


def test_eval_crops_against_numpy(datasets, standin):
    """Centre and ten crops, checked by slicing the decoded squares with NumPy."""
    squares = [data.decode_and_resize(str(p), 40).numpy().astype(np.float32) - datasets.mean
               for p in sorted(standin.glob("val/*/*.JPEG"))]
    centre = next(iter(datasets.val))[0].numpy()
    ten = np.concatenate([x.numpy() for x, _ in datasets.val_ten_crop])
    for i in range(len(centre)):
        square = next(s for s in squares if np.allclose(centre[i], s[4:36, 4:36], atol=1e-3))
        expected = [square[:32, :32], square[:32, 8:], square[8:, :32], square[8:, 8:],
                    square[4:36, 4:36]]
        expected += [e[:, ::-1] for e in expected]
        np.testing.assert_allclose(ten[i], np.stack(expected), atol=1e-3)


def test_training_crops_come_from_the_image(standin):
    """Without PCA every training crop is a window of the cached square, maybe mirrored."""
    ds = data.load_datasets(standin, sizes(image_size=32, resize=40, batch_size=4,
                                           max_train_per_class=1, max_val_per_class=1), pca=False)
    squares = [data.decode_and_resize(str(p), 40).numpy().astype(np.float32) - ds.mean
               for p in sorted(standin.glob("train/*/*.JPEG"))]
    for x, _ in ds.train:
        for crop in x.numpy():
            assert any(np.allclose(crop, c, atol=1e-3)
                       for s in squares for dy in range(9) for dx in range(9)
                       for c in (s[dy:dy + 32, dx:dx + 32], s[dy:dy + 32, dx:dx + 32][:, ::-1]))


def test_pipeline_statistics_are_a_pca(datasets):
    assert datasets.mean.shape == (3,) and np.all((datasets.mean > 0) & (datasets.mean < 255))
    values = datasets.pca.eigenvalues
    assert np.all(np.diff(values) <= 0) and values[-1] > 0
    np.testing.assert_allclose(datasets.pca.eigenvectors.T @ datasets.pca.eigenvectors,
                               np.eye(3), atol=1e-5)


def test_bad_files_never_stop_an_epoch(standin, tmp_path):
    root = copy_of(standin, tmp_path)
    write_bad_files(root)
    ds = data.load_datasets(root, sizes(image_size=32, resize=40, batch_size=16), cache=False)
    assert ds.num_train == 39
    seen = sum(int(y.shape[0]) for _, y in ds.train)  # every decodable image, no crash
    assert seen == 39


def test_color_statistics_against_numpy(tmp_path):
    """Mean and PCA of pixels drawn from a known covariance, written as PNGs (lossless)."""
    rng = np.random.default_rng(0)
    cov = np.array([[400.0, 300.0, 100.0], [300.0, 400.0, 150.0], [100.0, 150.0, 300.0]])
    pixels = np.clip(rng.multivariate_normal([120, 110, 100], cov, size=(4, 64, 64)), 0, 255)
    pixels = pixels.astype(np.uint8)
    items = []
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        items.append((f"{i}.png", 0))
    mean, pca = data.color_statistics(tmp_path, items, resize=64)
    x = pixels.reshape(-1, 3).astype(np.float64) / 255.0
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    np.testing.assert_allclose(mean, x.mean(0) * 255, rtol=1e-5)
    np.testing.assert_allclose(pca.eigenvalues, values[::-1], rtol=1e-4)
    np.testing.assert_allclose(np.abs(pca.eigenvectors), np.abs(vectors[:, ::-1]), atol=1e-4)
    # and against the covariance the pixels were drawn from (a second oracle)
    np.testing.assert_allclose(pca.eigenvalues, np.linalg.eigvalsh(cov / 255**2)[::-1], rtol=0.05)




# ---------------------------------------------------------------- where the decoded images go

from alexnet_tut.data import pipeline  # noqa: E402

FreeDisk = namedtuple("FreeDisk", "free")


def test_the_cache_goes_to_memory_when_it_fits_and_to_disk_when_it_does_not(tmp_path, monkeypatch):
    need = pipeline.cache_bytes(1000, 256)  # 196.6 MB
    monkeypatch.setattr(pipeline, "available_memory", lambda: 10 * need)
    assert pipeline.plan_cache(1000, 256, "auto", tmp_path) is True
    monkeypatch.setattr(pipeline, "available_memory", lambda: need)  # more than half of it
    assert pipeline.plan_cache(1000, 256, "auto", tmp_path / "c") == str(tmp_path / "c" / "decoded")
    with pytest.raises(AlexnetTutError, match=r"need 0.2 GB but only 0.2 GB of memory is free"):
        pipeline.plan_cache(1000, 256, "auto", None)
    assert pipeline.plan_cache(1000, 256, "none", None) is False
    assert pipeline.plan_cache(1000, 256, True, None) is True
    with pytest.raises(AlexnetTutError, match="unknown cache 'ram'"):
        pipeline.plan_cache(1000, 256, "ram", None)


def test_a_disk_cache_larger_than_the_free_disk_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "available_memory", lambda: 1)
    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda path: FreeDisk(100e9))
    with pytest.raises(AlexnetTutError, match=r"--cache none") as error:
        pipeline.plan_cache(1_281_167, 256, "auto", tmp_path)  # all of ImageNet at 256²
    assert "need 251.9 GB" in str(error.value) and "100.0 GB free" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_run_whose_cache_exceeds_memory_caches_to_its_run_folder(standin, tmp_path, monkeypatch):
    from alexnet_tut import train

    monkeypatch.setattr(pipeline, "available_memory", lambda: 1_000_000)  # a 1 MB budget
    report = train.run(standin, tmp_path / "run", profile="smoke", epochs=1, verbose=0)
    assert report["top1"] >= 0
    cached = sorted(p.name for p in (tmp_path / "run" / "cache").iterdir())
    assert any(name.startswith("decoded-train") for name in cached), cached
    assert any(name.startswith("decoded-val") for name in cached), cached


def test_a_rehearsal_fills_the_whole_cache_but_trains_a_few_steps(standin, tmp_path):
    from alexnet_tut import checkpoints, train
    from alexnet_tut.profiles import REHEARSAL_STEPS
    from alexnet_tut.report import format_report

    prof = replace(PROFILES["smoke"], rehearsal=True, epochs=5, batch_size=4, max_train_per_class=None)
    report = train.run(standin, tmp_path / "run", profile=prof, cache="disk", verbose=0)
    assert report["epochs_in_history"] == 2 and report["rehearsal"]
    assert report["iterations"] == 2 * REHEARSAL_STEPS
    # Speed and scores count the images the rehearsal used, not the whole dataset.
    used = REHEARSAL_STEPS * prof.batch_size
    assert report["num_evaluated"] == min(used, report["num_val"]) < report["num_val"]
    for row in checkpoints.read_history(tmp_path / "run"):
        assert row["images_per_sec"] * row["epoch_time_s"] == pytest.approx(used)
    assert f"{report['num_evaluated']} of {report['num_val']} (REHEARSAL)" in format_report(report)
    index = (tmp_path / "run" / "cache").glob("decoded-train*.index")
    assert list(index), "the training cache was written in full before the few steps"


def test_shuffle_buffer_keeps_the_cpu_profiles_4096_and_bounds_the_gpu_profiles_memory():
    assert data.pipeline.shuffle_buffer(9_469, 144) == 4_096
    assert data.pipeline.shuffle_buffer(9_469, 256) * 256 * 256 * 3 <= data.pipeline.SHUFFLE_BYTES
    assert data.pipeline.shuffle_buffer(720, 256) == 720
