"""Folders, archives and a local server that the data tests make: nothing leaves the machine."""

from __future__ import annotations

import http.server
import io
import shutil
import tarfile
import threading
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
