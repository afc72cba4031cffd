"""The folder scan: classes, counts, conversions, and every kind of bad file counted and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tut import cli, data
from alexnet_tut.errors import AlexnetTutError
from datafiles import SMALL, copy_of, write_bad_files

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return data.write_standin(tmp_path_factory.mktemp("s") / "standin", seed=0, **SMALL)


def test_scan_counts_converts_and_skips_bad_files(standin, tmp_path):
    root = copy_of(standin, tmp_path)
    write_bad_files(root)
    report = data.scan(root)
    assert report["converted"] == {"cmyk": 1, "grayscale": 1, "png_named_jpeg": 1}
    reasons = {item["path"]: item["reason"] for item in report["skipped"]}
    assert reasons == {
        "train/cat/truncated.JPEG": "truncated JPEG (no end-of-image marker)",
        "train/cat/empty.JPEG": "empty file",
        "train/cat/garbage.JPEG": "not a JPEG or PNG image (unknown format)",
        "train/cat/notes.txt": "not an image file name (.txt)",
        "train/empty_class": "class folder has no usable images",
    }
    assert "empty_class" not in report["classes"]
    assert report["splits"] == {"train": 36 + 3, "val": 18}
    assert report["per_class"]["train"]["cat"] == 9
    text = data.format_scan(report)
    assert "1 cmyk" in text and "train/cat/truncated.JPEG: truncated JPEG" in text


def test_conversions_match_pillow(standin, tmp_path):
    """TensorFlow's decode of CMYK, grayscale and PNG-named-JPEG files against Pillow's."""
    root = copy_of(standin, tmp_path)
    write_bad_files(root)
    for name in ("cmyk", "gray", "png"):
        path = root / "train" / "cat" / f"{name}.JPEG"
        ours = tf.io.decode_image(tf.io.read_file(str(path)), channels=3).numpy().astype(int)
        pillow = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert ours.shape == pillow.shape
        assert np.abs(ours - pillow).mean() < 2.0, name


def test_scan_json_from_the_command_line(standin, capsys):
    assert cli.main(["data", "scan", str(standin), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"] == {"train": 36, "val": 18}
    assert set(report) >= {"classes", "splits", "skipped"}


def test_imagenette_wnids_get_readable_names(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "n01440764").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "n01440764" / "a.JPEG")
    report = data.scan(tmp_path)
    assert report["classes"] == ["tench"] and report["class_ids"] == ["n01440764"]


def test_missing_folder_and_missing_split(tmp_path):
    with pytest.raises(AlexnetTutError) as error:
        data.scan(tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and "train/<class>" in message
    assert "\n" not in message
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(AlexnetTutError, match=r"has no val/ folder"):
        data.scan(tmp_path)
    (tmp_path / "val").mkdir()
    with pytest.raises(AlexnetTutError, match="no class folders"):
        data.scan(tmp_path)
