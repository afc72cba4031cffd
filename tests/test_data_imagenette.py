"""Imagenette's download: checksums, interruptions, hostile archives, offline.

Downloads come from a small HTTP server on 127.0.0.1 that the tests start.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from alexnet_tut import data
from alexnet_tut.errors import AlexnetTutError
from datafiles import Server, make_tgz, python_sleeper, write_lock


@pytest.fixture
def archive_payload(monkeypatch):
    rng = np.random.default_rng(0)
    payload = make_tgz({"train/a/x.JPEG": rng.bytes(50_000), "val/a/y.JPEG": b"y"})
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setitem(data.IMAGENETTE_ARCHIVES, "160px", ("imagenette2-160", md5, None, None))
    server = Server(payload)
    yield server, md5
    server.close()


def test_download_verifies_extracts_and_is_idempotent(archive_payload, tmp_path, capsys):
    server, _ = archive_payload
    root = data.download_imagenette("160px", tmp_path, url=server.url)
    assert root == tmp_path / "imagenette2-160"
    assert (root / "train" / "a" / "x.JPEG").stat().st_size == 50_000
    assert data.download_imagenette("160px", tmp_path, url=server.url) == root
    assert server.requests == 1  # the second call did nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenette2-160", "imagenette2-160.tgz"]


def test_checksum_mismatch_removes_the_file(archive_payload, tmp_path, monkeypatch):
    server, md5 = archive_payload
    monkeypatch.setitem(data.IMAGENETTE_ARCHIVES, "160px", ("imagenette2-160", "0" * 32, None, None))
    with pytest.raises(AlexnetTutError) as error:
        data.download_imagenette("160px", tmp_path, url=server.url)
    message = str(error.value)
    assert f"expected md5 {'0' * 32}" in message and f"got md5 {md5}" in message
    assert "--trust-new-checksum" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # removed
    root = data.download_imagenette("160px", tmp_path, url=server.url, trust_new_checksum=True)
    assert (root / "val" / "a" / "y.JPEG").read_bytes() == b"y"


def test_download_cut_off_half_way_is_never_mistaken_for_good(archive_payload, tmp_path):
    server, _ = archive_payload
    server.cut = True
    with pytest.raises(AlexnetTutError):
        data.download_imagenette("160px", tmp_path, url=server.url)
    assert list(tmp_path.iterdir()) == []
    # A killed process leaves a partial .part file behind: the next call must not use it.
    (tmp_path / "imagenette2-160.tgz.part").write_bytes(server.payload[:1000])
    server.cut = False
    root = data.download_imagenette("160px", tmp_path, url=server.url)
    assert (root / "train" / "a" / "x.JPEG").stat().st_size == 50_000
    assert server.requests == 2


def test_a_killed_extraction_leaves_nothing_that_blocks_the_next_call(archive_payload, tmp_path):
    server, _ = archive_payload
    data.download_imagenette("160px", tmp_path, url=server.url)
    shutil.rmtree(tmp_path / "imagenette2-160")  # as if killed before the final rename:
    stale = tmp_path / ".imagenette2-160-extracting-k1ll3d"  # the hidden folder SIGKILL leaves
    (stale / "imagenette2-160" / "train").mkdir(parents=True)
    root = data.download_imagenette("160px", tmp_path, url=server.url)
    assert (root / "train" / "a" / "x.JPEG").exists() and server.requests == 1  # no new download
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenette2-160", "imagenette2-160.tgz"]


def test_a_folder_the_package_did_not_make_is_never_deleted(archive_payload, tmp_path):
    """Issue 18, item 2: a user's own imagenette2-160/ (no completion marker) was extracted over
    and removed. Now it is refused before anything is downloaded, and left as it is."""
    server, _ = archive_payload
    mine = tmp_path / "imagenette2-160"
    (mine / "train").mkdir(parents=True)
    (mine / "my_labels.csv").write_text("x.JPEG,tench\n")
    with pytest.raises(AlexnetTutError, match="was not made by alexnet-tut.*nothing was changed") as error:
        data.download_imagenette("160px", tmp_path, url=server.url)
    assert "\n" not in str(error.value)
    assert (mine / "my_labels.csv").read_text() == "x.JPEG,tench\n"
    assert server.requests == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["imagenette2-160"]


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink"])
def test_a_file_or_link_in_the_way_is_a_one_line_error(archive_payload, tmp_path, kind):
    server, _ = archive_payload
    target = tmp_path / "imagenette2-160"
    elsewhere = tmp_path / "elsewhere"
    if kind == "file":
        target.write_text("mine")
    else:
        if kind == "symlink":
            elsewhere.mkdir()
        target.symlink_to(elsewhere)
    with pytest.raises(AlexnetTutError, match="nothing was changed") as error:
        data.download_imagenette("160px", tmp_path, url=server.url)
    assert "\n" not in str(error.value) and server.requests == 0
    assert target.is_symlink() or target.read_text() == "mine"
    (tmp_path / "dir-is-a-file").write_text("")
    with pytest.raises(AlexnetTutError, match="is a file, not a folder"):
        data.download_imagenette("160px", tmp_path / "dir-is-a-file", url=server.url)


def test_an_archive_already_there_is_verified_first_and_never_deleted(archive_payload, tmp_path):
    """Issue 18, item 8: an unverified .tgz in the folder was extracted without a check."""
    server, md5 = archive_payload
    other = make_tgz({"train/b/z.JPEG": b"not the published archive"})
    (tmp_path / "imagenette2-160.tgz").write_bytes(other)
    with pytest.raises(AlexnetTutError, match="is not the published archive.*left as it is") as error:
        data.download_imagenette("160px", tmp_path, url=server.url)
    assert "\n" not in str(error.value)
    assert (tmp_path / "imagenette2-160.tgz").read_bytes() == other and server.requests == 0
    root = data.download_imagenette("160px", tmp_path, url=server.url, trust_new_checksum=True)
    assert (root / "train" / "b" / "z.JPEG").exists()
    marker = json.loads((root / ".alexnet-tut-complete").read_text())
    assert marker["md5"] == hashlib.md5(other).hexdigest() != md5  # what was accepted, not the pin
    assert marker["pinned_md5"] == md5 and marker["trusted_new_checksum"] is True


def test_the_marker_records_the_checksum_that_was_accepted(archive_payload, tmp_path, monkeypatch):
    server, md5 = archive_payload
    monkeypatch.setitem(data.IMAGENETTE_ARCHIVES, "160px", ("imagenette2-160", "0" * 32, None, None))
    root = data.download_imagenette("160px", tmp_path, url=server.url, trust_new_checksum=True)
    marker = json.loads((root / ".alexnet-tut-complete").read_text())
    assert (marker["md5"], marker["pinned_md5"], marker["trusted_new_checksum"]) == (md5, "0" * 32, True)


def test_a_second_download_into_the_same_folder_is_refused_and_a_stale_lock_is_not(
        archive_payload, tmp_path):
    server, _ = archive_payload
    lock = tmp_path / ".imagenette2-160.alexnet-tut-lock"
    owner = python_sleeper()
    try:
        write_lock(lock, owner.pid)
        with pytest.raises(AlexnetTutError, match=f"in use by process {owner.pid}") as error:
            data.download_imagenette("160px", tmp_path, url=server.url)
        assert "\n" not in str(error.value) and server.requests == 0
    finally:
        owner.kill()
        owner.wait()
    root = data.download_imagenette("160px", tmp_path, url=server.url)  # its owner is gone
    assert (root / "train").is_dir() and not lock.exists()


def test_a_random_bytes_archive_is_a_one_line_error(tmp_path):
    """Issue 18, item 8: tarfile's five-line message for a file that is not an archive."""
    archive = tmp_path / "random.tgz"
    archive.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AlexnetTutError, match="not a readable tar archive") as error:
        data.safe_extract(archive, tmp_path / "out")
    assert "\n" not in str(error.value)
    (tmp_path / "imagenette2-160.tgz").write_bytes(archive.read_bytes())
    with pytest.raises(AlexnetTutError, match="not a readable tar archive.*left as it is") as error:
        data.download_imagenette("160px", tmp_path, trust_new_checksum=True,
                                 url="http://127.0.0.1:9/unused.tgz")
    assert "\n" not in str(error.value) and (tmp_path / "imagenette2-160.tgz").exists()


def evil_archive(path: Path, kind: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("top/good.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo({"dotdot": "top/../../evil.txt", "absolute": "/tmp/evil-abs.txt",
                                "symlink": "top/link", "hardlink": "top/hard",
                                "device": "top/dev"}.get(kind, kind))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "../../outside"
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "device":
            info.type = tarfile.CHRTYPE
        else:
            info.size = 4
        tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_unsafe_archives_are_rejected(tmp_path, kind):
    archive = tmp_path / "evil.tgz"
    evil_archive(archive, kind)
    target = tmp_path / "a" / "b"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(AlexnetTutError, match="unsafe archive"):
        data.safe_extract(archive, target)
    assert set(tmp_path.rglob("*")) - before <= {tmp_path / "a", target}
    assert list(target.iterdir()) == []  # not even the good member
    assert not Path("/tmp/evil-abs.txt").exists()


def test_unsafe_download_is_removed(tmp_path, monkeypatch):
    evil = tmp_path / "src.tgz"
    evil_archive(evil, "dotdot")
    payload = evil.read_bytes()
    evil.unlink()
    monkeypatch.setitem(data.IMAGENETTE_ARCHIVES, "160px",
                        ("imagenette2-160", hashlib.md5(payload).hexdigest(), None, None))
    server = Server(payload)
    try:
        with pytest.raises(AlexnetTutError, match="unsafe archive"):
            data.download_imagenette("160px", tmp_path / "d", url=server.url)
    finally:
        server.close()
    assert not (tmp_path / "d").exists() and not (tmp_path / "evil.txt").exists()  # made, then removed


def test_download_failure_is_one_line(tmp_path):
    with pytest.raises(AlexnetTutError, match="download of .* failed") as error:
        data.download_imagenette("160px", tmp_path, url=(tmp_path / "nothing.tgz").as_uri())
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
