"""Every download the package makes goes through here: the mirror, the target folder, one-line errors.

``ALEXNET_TUT_MIRROR=URL`` replaces the scheme and host of every download
(Imagenette's archives, torchvision's weights, the ImageNet class index) and
keeps the path, so that readers behind a proxy or a company mirror, and the
tests (a server on 127.0.0.1), fetch the same files from elsewhere::

    https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz
    -> $ALEXNET_TUT_MIRROR/fast-ai-imageclas/imagenette2-160.tgz

A mirror may have a path of its own (``http://mirror.example/alexnet-tut``)
and may be a folder (``file:///srv/mirror``). The checksums the callers pin
are checked as they would be without a mirror.

`fetch` does what ``keras.utils.get_file`` does (a cached file is used as it
is, a download is checked against its hash and the size the server
announced) with the standard library only, so that ``alexnet-tut data
imagenette`` starts in a fraction of a second and never loads TensorFlow;
the files land where ``get_file`` would put them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from alexnet_tut.errors import AlexnetTutError, one_line

MIRROR_ENV = "ALEXNET_TUT_MIRROR"
TRUST_ENV = "ALEXNET_TUT_TRUST_NEW_CHECKSUMS"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def trust_new_checksums() -> bool:
    """Whether ``$ALEXNET_TUT_TRUST_NEW_CHECKSUMS`` accepts files whose checksum differs from the pinned one.

    What ``--trust-new-checksum`` does for Imagenette, for every download:
    for a file re-published upstream, or a mirror that serves files of its
    own (``make rehearse`` serves random weights). Each such file is
    accepted with a printed note naming it.
    """
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def mirror() -> str | None:
    """``$ALEXNET_TUT_MIRROR`` without a trailing slash, or ``None`` when unset.

    Raises `AlexnetTutError` when it is not an ``http://``, ``https://`` or
    ``file://`` URL.
    """
    value = os.environ.get(MIRROR_ENV, "").strip()
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise AlexnetTutError(
            f"{MIRROR_ENV}={value!r} is not a URL: write it as http://host[:port][/path], "
            "https://... or file:///folder, or unset it to download from the original sites")
    return value.rstrip("/")


def mirrored(url: str) -> str:
    """``url`` with its scheme and host replaced by the mirror's, when one is set; else ``url``."""
    base = mirror()
    if base is None:
        return url
    parts = urllib.parse.urlsplit(url)
    return base + parts.path + (f"?{parts.query}" if parts.query else "")


def reachable(url: str, timeout: float = 3.0, *, through_mirror: bool = True) -> bool:
    """Whether the server that `fetch` would download ``url`` from answers (the mirror when set).

    Opens a TCP connection only, so it takes at most ``timeout`` seconds; a
    ``file://`` mirror is reachable when its folder exists. With
    ``through_mirror=False`` it asks ``url``'s own server, for a download
    another library makes (``keras.datasets``).
    """
    parts = urllib.parse.urlsplit(mirrored(url) if through_mirror else url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path)).parent.is_dir()
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
        return True
    except (OSError, ValueError):
        return False


def writable_folder(folder: Path, hint: str) -> Path:
    """Create ``folder`` if needed and check that files can be written in it, in one-line errors.

    ``keras.utils.get_file`` would otherwise fall back silently to
    ``/tmp/.keras`` when the folder is not writable.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise AlexnetTutError(f"{folder} is a file, not a folder: {hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AlexnetTutError(f"cannot create {folder}: {error.strerror or error}; {hint}") from error
    if not os.access(folder, os.W_OK):
        raise AlexnetTutError(f"cannot write to {folder}: {hint}")
    return folder


def _hash_matches(path: Path, file_hash: str) -> bool:
    """Whether the file's md5 (32 hex digits) or sha256 (64) is ``file_hash``, as get_file decides."""
    digest = hashlib.sha256() if len(file_hash) == 64 else hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == file_hash.lower()


class _Progress:
    """One line of progress on standard output, redrawn at most twice a second on a terminal."""

    def __init__(self, total: int | None):
        self.total, self.done, self.shown = total, 0, 0.0
        self.live = sys.stdout.isatty()

    def add(self, nbytes: int) -> None:
        self.done += nbytes
        if self.live and time.monotonic() - self.shown > 0.5:
            self.shown = time.monotonic()
            of = f" of {self.total / 1e6:,.1f} MB" if self.total else " MB"
            print(f"\r{self.done / 1e6:,.1f}{of}", end="", flush=True)

    def close(self) -> None:
        if self.live:
            print()


def _download(origin: str, target: Path, timeout: float = 60.0) -> None:
    """Stream ``origin`` to ``target``; fewer bytes than the server announced is an error."""
    with urllib.request.urlopen(origin, timeout=timeout) as answer, open(target, "wb") as f:
        announced = answer.headers.get("Content-Length")
        total = int(announced) if announced and announced.isdigit() else None
        progress = _Progress(total)
        for block in iter(lambda: answer.read(1 << 20), b""):
            f.write(block)
            progress.add(len(block))
        progress.close()
    if total is not None and progress.done < total:
        raise OSError(f"the connection closed after {progress.done:,} of {total:,} bytes")


def fetch(url: str, folder: Path, fname: str, *, file_hash: str | None = None,
          force: bool = False, hint: str = "check the connection") -> Path:
    """Download ``url`` (through the mirror when set) to ``folder/fname`` and return the path.

    Without ``force`` a file already there is used as it is when it matches
    ``file_hash`` (md5 or sha256; any file when ``None``), and downloaded
    again when it does not. A download that fails or is cut short, or whose
    ``file_hash`` differs, leaves no file behind and raises `AlexnetTutError`
    with the address that was tried and ``hint``.
    """
    folder = writable_folder(folder, "choose another folder")
    origin = mirrored(url)
    target = folder / fname
    if target.is_file() and not force and (file_hash is None or _hash_matches(target, file_hash)):
        return target
    via = f" (through {MIRROR_ENV})" if mirror() else ""
    print(f"Downloading data from {origin}")
    partial = target.with_name(f"{target.name}.download")
    try:
        _download(origin, partial)
    except (OSError, ValueError, urllib.error.URLError) as error:  # HTTPError, timeouts, cut off
        partial.unlink(missing_ok=True)
        if mirror():
            hint = f"check that {MIRROR_ENV}={mirror()} serves {urllib.parse.urlsplit(url).path}"
        reason = error if isinstance(error, urllib.error.HTTPError) else (
            getattr(error, "reason", None) or error)
        raise AlexnetTutError(f"download of {origin} failed: {one_line(reason)} ({hint})") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if file_hash is not None and not _hash_matches(partial, file_hash) and trust_new_checksums():
        print(f"note: accepting {fname}, whose checksum differs from the pinned {file_hash}, "
              f"because {TRUST_ENV} is set")
    elif file_hash is not None and not _hash_matches(partial, file_hash):
        partial.unlink()
        raise AlexnetTutError(
            f"{origin}{via} is not the published file: its checksum differs from {file_hash}; "
            "it was not kept (a damaged download, or the file changed upstream)")
    shutil.move(partial, target)
    return target
