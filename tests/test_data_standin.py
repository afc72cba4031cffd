"""The offline stand-in: validation images that share no pixel with training ones, layout,
determinism, and folders that are not its own left alone."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tut import data
from alexnet_tut.errors import AlexnetTutError
from datafiles import SMALL

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return data.write_standin(tmp_path_factory.mktemp("s") / "standin", seed=0, **SMALL)


def test_standin_layout_and_size(standin):
    report = data.scan(standin)
    assert report["classes"] == sorted(data.STANDIN_PHOTOS)
    assert report["splits"] == {"train": 6 * 6, "val": 6 * 3}
    assert report["skipped"] == [] and report["converted"] == {}
    sizes = [Image.open(p).size for p in standin.rglob("*.JPEG")]
    assert all(min(s) == 96 for s in sizes)


def test_standin_is_deterministic_and_idempotent(standin, tmp_path):
    again = data.write_standin(tmp_path / "again", seed=0, **SMALL)
    other = data.write_standin(tmp_path / "other", seed=1, **SMALL)
    name = "train/cat/cat_0000.JPEG"
    assert (again / name).read_bytes() == (standin / name).read_bytes()
    assert (other / name).read_bytes() != (standin / name).read_bytes()
    mtime = (again / name).stat().st_mtime_ns
    assert data.write_standin(again, seed=0, **SMALL) == again  # second call: nothing written
    assert (again / name).stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_standin_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(AlexnetTutError, match="not empty"):
        data.write_standin(tmp_path / "busy", **SMALL)


def overlap(a, b) -> bool:
    """Whether two (x0, y0, x1, y1) rectangles share a pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_no_validation_image_shares_a_pixel_with_a_training_image(standin):
    crops = json.loads((standin / "standin.json").read_text())["crops"]
    assert len(crops) == 6 * (6 + 3)
    for name in data.STANDIN_PHOTOS:
        train = [box[:4] for rel, box in crops.items() if rel.startswith(f"train/{name}/")]
        val = [box[:4] for rel, box in crops.items() if rel.startswith(f"val/{name}/")]
        assert len(train) == 6 and len(val) == 3
        assert not any(overlap(t, v) for t in train for v in val), name


def test_each_file_is_the_crop_its_record_names(standin):
    """The JPEG on disk is the recorded rectangle of the photo (an outside check of the record)."""
    crops = json.loads((standin / "standin.json").read_text())["crops"]
    for rel in ("train/coffee/coffee_0000.JPEG", "val/rocket/rocket_0002.JPEG"):
        x0, y0, x1, y1, mirrored = crops[rel]
        name = rel.split("/")[1]
        expected = Image.fromarray(data.standin_photo(name)).crop((x0, y0, x1, y1))
        if mirrored:
            expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        saved = Image.open(standin / rel).convert("RGB")
        expected = np.asarray(expected.resize(saved.size, Image.Resampling.BICUBIC), dtype=float)
        assert np.abs(np.asarray(saved, dtype=float) - expected).mean() < 6  # JPEG's error only


def test_validation_stripes_lie_between_training_stripes():
    regions = data.standin.photo_regions(500, 300)
    assert [box[0] for box in regions["train"]] == [0, 200, 400]
    assert [box[0] for box in regions["val"]] == [100, 300]
    assert all(box[1] == 0 and box[3] == 300 for boxes in regions.values() for box in boxes)


def test_a_new_stand_in_folder_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        root = data.write_standin(tmp_path / "shared", **SMALL)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # not mkdtemp's private 0700


def test_a_parent_it_cannot_write_to_is_a_one_line_error(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    targets = [tmp_path / "a_file" / "standin"]  # fails for every user, root too
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if not os.access(locked, os.W_OK):  # a read-only folder stops every user but root
        targets.append(locked / "standin")
    try:
        for target in targets:
            with pytest.raises(AlexnetTutError, match="cannot write the stand-in into") as error:
                data.write_standin(target, **SMALL)
            assert "\n" not in str(error.value)
    finally:
        locked.chmod(0o755)
    assert (tmp_path / "a_file").read_text() == "not a folder"
