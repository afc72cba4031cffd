"""Imagenette's download: checksums, interruptions, hostile archives, offline.

Downloads come from a small HTTP server on 127.0.0.1 that the tests start.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from alexnet_tut import data
from alexnet_tut.errors import AlexnetTutError
from datafiles import Server, make_tgz


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


def test_interrupted_extraction_is_redone(archive_payload, tmp_path):
    server, _ = archive_payload
    root = data.download_imagenette("160px", tmp_path, url=server.url)
    (root / ".alexnet-tut-complete").unlink()  # as if the extraction had been killed
    (root / "train" / "a" / "x.JPEG").unlink()
    assert data.download_imagenette("160px", tmp_path, url=server.url) == root
    assert (root / "train" / "a" / "x.JPEG").exists() and server.requests == 1


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
    assert list((tmp_path / "d").iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_download_failure_is_one_line(tmp_path):
    with pytest.raises(AlexnetTutError, match="download of .* failed") as error:
        data.download_imagenette("160px", tmp_path, url=(tmp_path / "nothing.tgz").as_uri())
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
