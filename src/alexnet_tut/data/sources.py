"""Where a run's images come from: the book's data policy, in `resolve_source`.

In order: a folder the caller names, ``$ALEXNET_TUT_DATA``, an Imagenette copy
already downloaded, a download when online, else the offline stand-in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alexnet_tut import downloads
from alexnet_tut.data.home import data_home
from alexnet_tut.data.imagenette import IMAGENETTE_URL, download_imagenette, find_imagenette
from alexnet_tut.data.standin import STANDIN_DESCRIPTION, STANDIN_DIRNAME, STANDIN_MARKER, write_standin
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.files import display_path


@dataclass
class DataSource:
    """Where a run's images come from.

    Attributes:
        root: the ImageNet-layout folder.
        kind: ``"ALEXNET_TUT_DATA"`` (a folder the user named), ``"imagenette"``
            or ``"standin"``.
        description: one line for people, e.g. ``"offline stand-in (...) at ~/..."``.
    """

    root: Path
    kind: str
    description: str


def _source_for(root: Path, note: str = "") -> DataSource:
    root = Path(root).expanduser()
    if (root / STANDIN_MARKER).exists():
        kind, what = "standin", STANDIN_DESCRIPTION
    elif root.name.startswith("imagenette2"):
        kind, what = "imagenette", f"Imagenette v2 ({root.name})"
    else:
        kind, what = "ALEXNET_TUT_DATA", "ImageNet-layout folder"
    return DataSource(root, kind, f"{what} at {display_path(root)}{note}")


def _online(timeout: float = 3.0) -> bool:
    """Whether Imagenette's server answers: ``$ALEXNET_TUT_MIRROR`` when it is set."""
    return downloads.reachable(IMAGENETTE_URL.format(name="imagenette2-160"), timeout=timeout)


def _existing_folder(path: str | os.PathLike, label: str, hint: str) -> Path:
    """``path`` as a Path, or a one-line error naming it and what was expected."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise AlexnetTutError(f"{label} {what} (expected an ImageNet-layout folder: {hint})")
    return folder


def resolve_source(profile, data_dir: Path | None = None) -> DataSource:
    """Pick the data folder following the book's data policy; print nothing.

    In order: ``data_dir`` when given; else ``$ALEXNET_TUT_DATA``; else an
    Imagenette copy already extracted in `data_home`; else a download of
    Imagenette (160 px when the profile resizes to 160 or less, else 320 px)
    unless ``$ALEXNET_TUT_OFFLINE`` is set or the server (the mirror when
    ``$ALEXNET_TUT_MIRROR`` is set) is unreachable;
    else the offline stand-in, written once to ``<data_home>/alexnet-tut-standin-v<version>``.
    A profile with ``standin_only`` (``smoke``) skips the environment variable,
    Imagenette and the download, so its results do not depend on the machine;
    an explicit ``data_dir`` still wins. When a download fails the
    description of the stand-in says why.
    """
    if data_dir is not None:
        return _source_for(_existing_folder(data_dir, str(Path(data_dir).expanduser()),
                                            "train/<class>/*.JPEG and val/<class>/*.JPEG"))
    note = ""
    if not getattr(profile, "standin_only", False):
        env = os.environ.get("ALEXNET_TUT_DATA", "").strip()
        if env:
            return _source_for(_existing_folder(
                env, f"ALEXNET_TUT_DATA={env}",
                "unset the variable to use Imagenette or the stand-in"))
        size = "160px" if getattr(profile, "resize", 256) <= 160 else "320px"
        found = find_imagenette(prefer=size)
        if found:
            return _source_for(found)
        if os.environ.get("ALEXNET_TUT_OFFLINE"):
            note = " (ALEXNET_TUT_OFFLINE is set, so no download was tried)"
        elif not _online():
            where = f"{downloads.MIRROR_ENV} does not answer" if downloads.mirror() else "offline"
            note = f" ({where}: Imagenette could not be downloaded)"
        else:
            try:
                return _source_for(download_imagenette(size))
            except Exception as error:  # any failure falls back to the stand-in
                note = f" (Imagenette download failed: {error})"
    root = write_standin(data_home() / STANDIN_DIRNAME)
    return _source_for(root, note)
