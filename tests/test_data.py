"""alexnet_tut.data: the stand-in, the scan, bad files, safe downloads, the pipelines.

Everything runs on folders and archives the tests make, and downloads come from
a small HTTP server on 127.0.0.1 that the tests start: nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tut import cli, data
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.profiles import PROFILES

tf = pytest.importorskip("tensorflow")

SMALL = dict(train_per_class=6, val_per_class=3, short_side=96)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return data.write_standin(tmp_path_factory.mktemp("s") / "standin", seed=0, **SMALL)


def copy_of(standin: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(standin, root)
    (root / "standin.json").unlink()
    return root


# ---------------------------------------------------------------- the stand-in

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


# ---------------------------------------------------------------- the scan

def write_bad_files(root: Path) -> None:
    """One file of every kind real ImageNet folders hold, in train/cat."""
    rgb = np.asarray(Image.open(next((root / "train" / "cat").glob("*.JPEG"))).convert("RGB"))
    cat = root / "train" / "cat"
    Image.fromarray(rgb).convert("CMYK").save(cat / "cmyk.JPEG")
    Image.fromarray(rgb).convert("L").save(cat / "gray.JPEG")
    Image.fromarray(rgb).save(cat / "png.JPEG", format="PNG")
    good = (cat / "cat_0000.JPEG").read_bytes()
    (cat / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    (cat / "empty.JPEG").write_bytes(b"")
    (cat / "garbage.JPEG").write_bytes(b"this is not an image" * 10)
    (cat / "notes.txt").write_text("not an image")
    (root / "train" / "empty_class").mkdir()


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


def test_bad_files_never_stop_an_epoch(standin, tmp_path):
    root = copy_of(standin, tmp_path)
    write_bad_files(root)
    ds = data.load_datasets(root, image_size=32, resize=40, batch_size=16, cache=False)
    assert ds.num_train == 39
    seen = sum(int(y.shape[0]) for _, y in ds.train)  # every decodable image, no crash
    assert seen == 39


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


# ---------------------------------------------------------------- the pipelines

@pytest.fixture(scope="module")
def datasets(standin):
    return data.load_datasets(standin, image_size=32, resize=40, batch_size=8,
                              max_train_per_class=4, max_val_per_class=2, seed=0)


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
    x, y = next(iter(datasets.val_ten_crop))
    assert x.shape == (8, 10, 32, 32, 3) and x.dtype == tf.float32


def test_eval_crops_against_numpy(datasets, standin):
    """Centre and ten crops, checked by slicing the decoded squares with NumPy."""
    squares = [data.decode_and_resize(str(p), 40).numpy().astype(np.float32) - datasets.mean
               for p in sorted(standin.glob("val/*/*.JPEG"))]
    centre = next(iter(datasets.val))[0].numpy()
    ten = next(iter(datasets.val_ten_crop))[0].numpy()
    for i in range(len(centre)):
        square = next(s for s in squares if np.allclose(centre[i], s[4:36, 4:36], atol=1e-3))
        expected = [square[:32, :32], square[:32, 8:], square[8:, :32], square[8:, 8:],
                    square[4:36, 4:36]]
        expected += [e[:, ::-1] for e in expected]
        np.testing.assert_allclose(ten[i], np.stack(expected), atol=1e-3)


def test_training_crops_come_from_the_image(standin):
    """Without PCA every training crop is a window of the cached square, maybe mirrored."""
    ds = data.load_datasets(standin, image_size=32, resize=40, batch_size=4,
                            max_train_per_class=1, max_val_per_class=1, pca=False)
    squares = [data.decode_and_resize(str(p), 40).numpy().astype(np.float32) - ds.mean
               for p in sorted(standin.glob("train/*/*.JPEG"))]
    for x, _ in ds.train:
        for crop in x.numpy():
            assert any(np.allclose(crop, c, atol=1e-3)
                       for s in squares for dy in range(9) for dx in range(9)
                       for c in (s[dy:dy + 32, dx:dx + 32], s[dy:dy + 32, dx:dx + 32][:, ::-1]))


def test_rgb_statistics_against_numpy():
    rng = np.random.default_rng(0)
    cov = np.array([[400.0, 300.0, 100.0], [300.0, 400.0, 150.0], [100.0, 150.0, 300.0]])
    pixels = np.clip(rng.multivariate_normal([120, 110, 100], cov, size=20000), 0, 255)
    mean, pca = data.rgb_statistics(pixels.astype(np.uint8))
    x = pixels.astype(np.uint8).astype(np.float64) / 255.0
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    np.testing.assert_allclose(mean, x.mean(0) * 255, rtol=1e-6)
    np.testing.assert_allclose(pca.eigenvalues, values[::-1], rtol=1e-5)
    np.testing.assert_allclose(np.abs(pca.eigenvectors), np.abs(vectors[:, ::-1]), atol=1e-5)
    # and against the covariance the pixels were drawn from (a second oracle)
    np.testing.assert_allclose(pca.eigenvalues, np.linalg.eigvalsh(cov / 255**2)[::-1], rtol=0.05)


def test_pipeline_statistics_are_a_pca(datasets):
    assert datasets.mean.shape == (3,) and np.all((datasets.mean > 0) & (datasets.mean < 255))
    values = datasets.pca.eigenvalues
    assert np.all(np.diff(values) <= 0) and values[-1] > 0
    np.testing.assert_allclose(datasets.pca.eigenvectors.T @ datasets.pca.eigenvectors,
                               np.eye(3), atol=1e-5)


# ---------------------------------------------------------------- choosing the source

def test_resolve_source_order(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_TUT_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALEXNET_TUT_OFFLINE", "1")
    monkeypatch.delenv("ALEXNET_TUT_DATA", raising=False)
    smoke, cpu = PROFILES["smoke"], PROFILES["cpu"]

    source = data.resolve_source(smoke)
    assert source.kind == "standin" and source.root == tmp_path / "home" / "alexnet-tut-standin"
    assert source.description.startswith(data.STANDIN_DESCRIPTION)
    assert data.resolve_source(smoke).root == source.root  # reused, not rewritten

    monkeypatch.setenv("ALEXNET_TUT_DATA", str(standin))
    assert data.resolve_source(smoke).kind == "standin"  # smoke ignores the variable
    assert data.resolve_source(cpu).root == standin
    assert data.resolve_source(cpu, data_dir=tmp_path).kind == "ALEXNET_TUT_DATA"
    monkeypatch.setenv("ALEXNET_TUT_DATA", str(tmp_path / "missing"))
    with pytest.raises(AlexnetTutError, match="ALEXNET_TUT_DATA"):
        data.resolve_source(cpu)

    monkeypatch.delenv("ALEXNET_TUT_DATA")
    assert "ALEXNET_TUT_OFFLINE is set" in data.resolve_source(cpu).description
    nette = tmp_path / "home" / "imagenette2-160"
    nette.mkdir()
    (nette / ".alexnet-tut-complete").write_text("{}")
    source = data.resolve_source(cpu)
    assert (source.kind, source.root) == ("imagenette", nette)


# ---------------------------------------------------------------- downloads and archives

def make_tgz(members: dict[str, bytes], top: str = "imagenette2-160") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class Server:
    """A tiny HTTP server on 127.0.0.1 serving one payload, optionally cut off half-way."""

    def __init__(self, payload: bytes):
        self.payload, self.cut, self.requests = payload, False, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.payload)))
                self.end_headers()
                body = server.payload[: len(server.payload) // 2] if server.cut else server.payload
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/imagenette2-160.tgz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
