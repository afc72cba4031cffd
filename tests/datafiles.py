"""Folders, archives and a local server that the data tests make: nothing leaves the machine."""

from __future__ import annotations

import http.server
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: A small stand-in: six classes, a few dozen 96-pixel JPEGs.
SMALL = dict(train_per_class=6, val_per_class=3, short_side=96)


def copy_of(standin: Path, tmp_path: Path) -> Path:
    """A copy of the stand-in without its marker: an ordinary ImageNet-layout folder."""
    root = tmp_path / "copy"
    shutil.copytree(standin, root)
    (root / "standin.json").unlink()
    return root


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


def make_tgz(members: dict[str, bytes], top: str = "imagenette2-160") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class Server:
    """A tiny HTTP server on 127.0.0.1, optionally cutting every answer off half-way.

    ``Server(payload)`` serves one payload at every path; ``Server({path:
    payload, ...})`` serves each payload at its path and answers 404 to
    others. ``requests`` counts the requests, ``paths`` lists them; ``base``
    is ``http://127.0.0.1:<port>`` (an ``ALEXNET_TUT_MIRROR``).
    """

    def __init__(self, payload: bytes | dict[str, bytes]):
        self.payloads = payload if isinstance(payload, dict) else None
        self.payload, self.cut, self.requests, self.paths = (
            payload if isinstance(payload, bytes) else b"", False, 0, [])
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                server.paths.append(self.path)
                body = server.payload if server.payloads is None else server.payloads.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.cut else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        self.url = f"{self.base}/imagenette2-160.tgz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def python_sleeper(seconds: int = 120) -> subprocess.Popen:
    """A live Python process whose id a test writes into a lock file, as if it held it."""
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def write_lock(path: Path, pid: int) -> None:
    """A lock file as `alexnet_tut.locks` writes it, owned by ``pid`` on this host."""
    path.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": time.time()}))


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (48, 64), **save) -> bytes:
    """A small random JPEG (Pillow), with ``save`` passed to ``Image.save``."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size + (3,), dtype=np.uint8)).save(
        buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


def cut_before_scan(jpeg: bytes) -> bytes:
    """A JPEG cut just before its start-of-scan marker, with an end-of-image marker appended.

    Its header is whole, so Pillow opens it; TensorFlow cannot decode it.
    """
    return jpeg[: jpeg.index(b"\xff\xda")] + b"\xff\xd9"


def undecodable(jpeg: bytes) -> bytes:
    """A JPEG whose structure is whole but whose frame names an undefined quantization table.

    It passes the folder scan's structural check; TensorFlow's decoder refuses it, so the
    pipeline must drop it (what a hostile or damaged file can still do).
    """
    frame = jpeg.index(b"\xff\xc0")
    broken = bytearray(jpeg)
    broken[frame + 12] = 3  # marker 2, length 2, precision 1, size 4, components 1, id 1, sampling 1
    return bytes(broken)
