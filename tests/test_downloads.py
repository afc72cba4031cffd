"""ALEXNET_TUT_MIRROR: every download through one mirror, checked as without it.

The mirror is a small HTTP server on 127.0.0.1 that the tests start; nothing
leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alexnet_tut import data, downloads, pretrained
from alexnet_tut.data import sources
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.profiles import PROFILES
from datafiles import Server, make_tgz

ARCHIVE_PATH = "/fast-ai-imageclas/imagenette2-160.tgz"


@pytest.fixture
def archive():
    payload = make_tgz({"train/a/x.JPEG": np.random.default_rng(0).bytes(2_000), "val/a/y.JPEG": b"y"})
    return payload, hashlib.md5(payload).hexdigest()


@pytest.fixture
def mirror(archive, monkeypatch):
    """A server holding the files at the paths of their original addresses, as ALEXNET_TUT_MIRROR."""
    index = json.dumps({str(i): [f"n{i:08d}", f"class {i}"] for i in range(1000)}).encode()
    server = Server({ARCHIVE_PATH: archive[0],
                     "/download.tensorflow.org/data/imagenet_class_index.json": index})
    server.index_md5 = hashlib.md5(index).hexdigest()
    monkeypatch.setenv("ALEXNET_TUT_MIRROR", server.base)
    yield server
    server.close()


def test_the_mirror_replaces_scheme_and_host_and_keeps_the_path(monkeypatch):
    url = "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz"
    monkeypatch.delenv("ALEXNET_TUT_MIRROR", raising=False)
    assert downloads.mirrored(url) == url
    for mirror, expected in [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/fast-ai-imageclas/imagenette2-160.tgz"),
        ("https://mirror.example/alexnet-tut/",
         "https://mirror.example/alexnet-tut/fast-ai-imageclas/imagenette2-160.tgz"),
        ("file:///srv/mirror", "file:///srv/mirror/fast-ai-imageclas/imagenette2-160.tgz"),
    ]:
        monkeypatch.setenv("ALEXNET_TUT_MIRROR", mirror)
        assert downloads.mirrored(url) == expected
    assert downloads.mirrored(pretrained.TORCHVISION_URL) == (
        "file:///srv/mirror/models/alexnet-owt-7be5be79.pth")


@pytest.mark.parametrize("value", ["127.0.0.1:8000", "mirror.example", "ftp://mirror.example"])
def test_a_mirror_that_is_not_a_url_is_a_one_line_error(monkeypatch, value):
    monkeypatch.setenv("ALEXNET_TUT_MIRROR", value)
    with pytest.raises(AlexnetTutError, match="ALEXNET_TUT_MIRROR=.* is not a URL") as error:
        downloads.mirrored("https://s3.amazonaws.com/x.tgz")
    assert "\n" not in str(error.value)


def test_the_online_check_asks_the_mirror(mirror, monkeypatch):
    assert sources._online()
    monkeypatch.setenv("ALEXNET_TUT_MIRROR", "http://127.0.0.1:9")  # nothing listens on port 9
    assert not sources._online(timeout=1.0)


def test_resolve_source_downloads_through_the_mirror(mirror, archive, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_TUT_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("ALEXNET_TUT_OFFLINE", raising=False)
    monkeypatch.delenv("ALEXNET_TUT_DATA", raising=False)
    monkeypatch.setitem(data.IMAGENETTE_ARCHIVES, "160px", ("imagenette2-160", archive[1], None, None))
    source = data.resolve_source(PROFILES["cpu"])  # resizes to 144: the 160 px archive
    assert (source.kind, source.root) == ("imagenette", tmp_path / "imagenette2-160")
    assert mirror.paths == [ARCHIVE_PATH]
    monkeypatch.setenv("ALEXNET_TUT_MIRROR", "http://127.0.0.1:9")
    (tmp_path / "imagenette2-160" / ".alexnet-tut-complete").unlink()
    (tmp_path / "imagenette2-160").rename(tmp_path / "aside")
    assert "ALEXNET_TUT_MIRROR does not answer" in data.resolve_source(PROFILES["cpu"]).description


def run_cli(*args, env):
    return subprocess.run([sys.executable, "-m", "alexnet_tut", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_data_imagenette_through_the_mirror_refuses_a_wrong_checksum_then_trusts_it(mirror, tmp_path):
    """Issue 12's "done means": the real pinned checksum, a local archive that differs from it."""
    env = {"ALEXNET_TUT_MIRROR": mirror.base}
    refused = run_cli("data", "imagenette", "--size", "160px", "--dir", str(tmp_path), env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: checksum mismatch for {mirror.base}{ARCHIVE_PATH}: expected md5 "
        f"{data.IMAGENETTE_ARCHIVES['160px'][1]}")
    assert list(tmp_path.iterdir()) == []
    trusted = run_cli("data", "imagenette", "--size", "160px", "--dir", str(tmp_path),
                      "--trust-new-checksum", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip().splitlines()[-1] == str(tmp_path / "imagenette2-160")
    assert (tmp_path / "imagenette2-160" / "val" / "a" / "y.JPEG").read_bytes() == b"y"
    assert mirror.paths == [ARCHIVE_PATH, ARCHIVE_PATH]


def test_a_mirror_without_the_file_says_so_in_one_line(mirror, tmp_path, monkeypatch):
    with pytest.raises(AlexnetTutError, match=f"download of {mirror.base}/fast-ai-imageclas/"
                                              "imagenette2-320.tgz failed.*serves") as error:
        data.download_imagenette("320px", tmp_path)
    assert "\n" not in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_the_pretrained_loader_downloads_through_the_mirror(mirror, tmp_path):
    weights = b"pretend weights"
    name = f"alexnet-owt-{hashlib.sha256(weights).hexdigest()[:8]}.pth"
    mirror.payloads[f"/models/{name}"] = weights
    path = pretrained.fetch_torchvision_weights(
        str(tmp_path), url=f"https://download.pytorch.org/models/{name}")
    assert Path(path).read_bytes() == weights
    names = pretrained.imagenet_class_names(str(tmp_path), file_hash=mirror.index_md5)
    assert names[0] == "class 0" and len(names) == 1000
    assert mirror.paths == [f"/models/{name}",
                            "/download.tensorflow.org/data/imagenet_class_index.json"]
    with pytest.raises(AlexnetTutError, match="checksum differs") as error:  # the pinned md5
        pretrained.imagenet_class_names(str(tmp_path / "other"))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "other" / "models" / "imagenet_class_index.json").exists()


def test_trusting_new_checksums_accepts_the_mirrors_own_files_with_a_note(mirror, tmp_path,
                                                                       monkeypatch, capsys):
    # What `make rehearse` does: its mirror serves random weights under the published name.
    mirror.payloads["/models/alexnet-owt-7be5be79.pth"] = b"random weights, not torchvision's"
    with pytest.raises(AlexnetTutError, match="SHA-256 starts"):
        pretrained.fetch_torchvision_weights(str(tmp_path / "strict"))
    monkeypatch.setenv(downloads.TRUST_ENV, "1")
    path = pretrained.fetch_torchvision_weights(str(tmp_path / "trusting"))
    names = pretrained.imagenet_class_names(str(tmp_path / "trusting"))  # not the pinned md5 either
    assert Path(path).read_bytes() == b"random weights, not torchvision's" and len(names) == 1000
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and all(downloads.TRUST_ENV in note for note in notes)


def test_a_download_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(AlexnetTutError, match="is a file, not a folder"):
        downloads.fetch("http://127.0.0.1:9/x", tmp_path / "file", "x")
    with pytest.raises(AlexnetTutError, match="cannot create"):
        downloads.fetch("http://127.0.0.1:9/x", tmp_path / "file" / "sub", "x")
