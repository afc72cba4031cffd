"""Small, careful file operations: hashes in one read, writes that a crash cannot tear."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_digests(path: str | os.PathLike, algorithms: tuple[str, ...] = ("md5", "sha256")) -> dict[str, str]:
    """Hex digests of a file, one per ``hashlib`` algorithm, computed in a single read."""
    digests = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            for digest in digests.values():
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def fsync_file(path: str | os.PathLike) -> None:
    """Ask the operating system to put the file's bytes on disk before going on."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``path`` so that a reader sees the old contents or the new, never half of them.

    The text goes to ``partial-<name>`` beside it, is flushed to disk, and
    replaces ``path`` with one ``os.replace`` (atomic on POSIX and Windows).
    """
    path = Path(path)
    partial = path.with_name(f"partial-{path.name}")
    with open(partial, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def display_path(path: str | os.PathLike) -> str:
    """``path`` with the home folder written as ``~``, so printed lines do not depend on the user."""
    path = Path(path).resolve()
    home = Path.home().resolve()
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)
