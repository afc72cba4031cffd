"""The offline stand-in: layout, determinism, and a folder in use left alone."""

from __future__ import annotations

from pathlib import Path

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
