"""The folder scan: classes, counts, conversions, and every kind of bad file counted and skipped."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tut import cli, data
from alexnet_tut.errors import AlexnetTutError
from datafiles import SMALL, copy_of, cut_before_scan, jpeg_bytes, write_bad_files

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


# --------------------------------------------------------------------------
# Issue 18: files that pass a shallow check but do not decode, links, hidden files
# --------------------------------------------------------------------------

def _png(seed=0):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
        buffer, "PNG")
    return buffer.getvalue()


def _structure_cases():
    jpeg, png = jpeg_bytes(), _png()
    scan_at = jpeg.index(b"\xff\xda")
    middle = scan_at + (len(jpeg) - scan_at) // 2
    idat = png.index(b"IDAT")
    return {
        "good.JPEG": jpeg,
        "progressive.JPEG": jpeg_bytes(1, progressive=True),
        "trailing_bytes.JPEG": jpeg + np.random.default_rng(0).bytes(5000),
        "cut_before_scan.JPEG": cut_before_scan(jpeg),
        "cut_in_scan.JPEG": jpeg[:middle],
        "cut_in_scan_with_end.JPEG": jpeg[:middle] + b"\xff\xd9",  # libjpeg fills it in grey
        "header_only.JPEG": jpeg[:scan_at],
        "good.png": png,
        "trailing_bytes.png": png + b"\0" * 3000,
        "cut_in_data_with_end.png": png[:idat + 200] + png[-12:],
        "no_image_data.png": png[:idat - 4] + png[-12:],
        "cut.png": png[: len(png) // 2],
    }


def test_check_image_agrees_with_tensorflow_on_whole_and_broken_files(tmp_path):
    """The structural check's verdict against TensorFlow's decoder (the pipeline's), file by file."""
    for name, payload in _structure_cases().items():
        path = tmp_path / name
        path.write_bytes(payload)
        reason, _ = data.check_image(path)
        try:
            tf.io.decode_image(payload, channels=3, expand_animations=False)
            decodes = True
        except tf.errors.InvalidArgumentError:
            decodes = False
        assert (reason is None) == decodes, (name, reason)


def test_a_jpeg_cut_before_its_scan_is_skipped_and_all_bad_is_one_line(standin, tmp_path):
    """Issue 18, item 1: such a file passed the scan, then stopped training in epoch 1."""
    root = copy_of(standin, tmp_path)
    victim = next((root / "train" / "cat").glob("*.JPEG"))
    victim.write_bytes(cut_before_scan(victim.read_bytes()))
    reasons = {item["path"]: item["reason"] for item in data.scan(root)["skipped"]}
    assert "before any start-of-scan marker" in reasons[victim.relative_to(root).as_posix()]
    for path in (root / "train").rglob("*.JPEG"):
        if path != victim:
            path.write_bytes(cut_before_scan(path.read_bytes()))
    with pytest.raises(AlexnetTutError, match="holds no usable images: 36 files") as error:
        data.scan(root)
    assert "\n" not in str(error.value) and "alexnet-tut data scan" in str(error.value)


def test_a_valid_jpeg_with_bytes_after_it_is_used(standin, tmp_path):
    """Issue 18, item 8: the scan looked for the end marker in the last 2 KB only."""
    root = copy_of(standin, tmp_path)
    path = next((root / "train" / "cat").glob("*.JPEG"))
    path.write_bytes(path.read_bytes() + b"\0" * 10_000)
    report = data.scan(root)
    assert report["skipped"] == [] and report["splits"]["train"] == 36


def test_links_into_the_data_folder_are_skipped_and_links_elsewhere_followed(standin, tmp_path):
    """Issue 18, item 8: train/dup -> cat became a seventh class of mislabelled duplicates."""
    root = copy_of(standin, tmp_path)
    (root / "train" / "dup").symlink_to("cat")
    (root / "train" / "all").symlink_to(root / "train")
    (root / "val" / "leak").symlink_to(root / "train" / "cat")
    (root / "train" / "cat" / "twice.JPEG").symlink_to(next((root / "train" / "rocket").glob("*")))
    outside = tmp_path / "elsewhere" / "extra"
    shutil.copytree(root / "train" / "hopper", outside)
    (root / "train" / "extra").symlink_to(outside)
    (root / "val" / "extra").symlink_to(root / "val" / "hopper", target_is_directory=True)
    report = data.scan(root)
    reasons = {item["path"]: item["reason"] for item in report["skipped"]}
    for link in ("train/dup", "train/all", "val/leak", "train/cat/twice.JPEG", "val/extra"):
        assert "inside the data folder" in reasons[link], link
    assert report["classes"] == sorted([*data.STANDIN_PHOTOS, "extra"])  # no dup, no all
    assert report["per_class"]["train"]["extra"] == 6 and report["per_class"]["train"]["cat"] == 6
    assert report["per_class"]["val"]["extra"] == 0


def test_hidden_files_and_hidden_folders_follow_one_rule(standin, tmp_path):
    """Issue 18, item 8: images in hidden subfolders were used, hidden files were not."""
    root = copy_of(standin, tmp_path)
    cat = root / "train" / "cat"
    image = next(cat.glob("*.JPEG"))
    (cat / ".ipynb_checkpoints").mkdir()
    shutil.copy(image, cat / ".ipynb_checkpoints" / "copy.JPEG")
    shutil.copy(image, cat / ".hidden.JPEG")
    (cat / "sub").mkdir()
    shutil.copy(image, cat / "sub" / "visible.JPEG")
    report = data.scan(root)
    assert report["per_class"]["train"]["cat"] == 7 and report["skipped"] == []


def test_train_and_val_the_same_folder_is_refused(standin, tmp_path):
    root = copy_of(standin, tmp_path)
    shutil.rmtree(root / "val")
    (root / "val").symlink_to("train")
    with pytest.raises(AlexnetTutError, match="train/ and val/ are the same folder") as error:
        data.scan(root)
    assert "\n" not in str(error.value)


def test_one_class_is_said_in_the_singular(tmp_path):
    """Issue 18, item 8: "1 classes"."""
    for split in ("train", "val"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "cat" / "a.JPEG")
    text = data.format_scan(data.scan(tmp_path))
    assert ": 1 class, 1 train image, 1 val image" in text
