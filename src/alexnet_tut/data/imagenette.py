"""Imagenette v2, the ten-class ImageNet subset: its classes, its archives, a safe download.

`download_imagenette` fetches an archive with ``keras.utils.get_file``,
checks it against a pinned checksum and extracts it in a way that cannot
write outside the target folder. `find_imagenette` finds a copy that was
extracted completely before.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from alexnet_tut.data.home import data_home
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.files import file_digests

IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/{name}.tgz"

#: size -> (archive/folder name, md5 (as torchvision pins it), sha256 (TFDS), bytes)
IMAGENETTE_ARCHIVES: dict[str, tuple[str, str, str | None, int | None]] = {
    "320px": ("imagenette2-320", "3df6f0d01a2c9592104656642f5e78a3",
              "5020a9130cea0348272823cb12d2db7e981c6f2afa3dce71ccd5b8013005c55e", 341_553_947),
    "160px": ("imagenette2-160", "e793b78cc4c9e9a4ccc0c1155377a412",
              "88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863", 98_948_031),
    "full": ("imagenette2", "fe2fc210e6bb7c5664d602c3cd71e612", None, None),
}
IMAGENETTE_SIZES: tuple[str, ...] = tuple(IMAGENETTE_ARCHIVES)

#: Imagenette's classes (its README): WordNet id -> (readable name, index among
#: ImageNet's 1,000 classes, which are sorted by WordNet id).
IMAGENETTE_CLASSES: dict[str, tuple[str, int]] = {
    "n01440764": ("tench", 0),
    "n02102040": ("English springer", 217),
    "n02979186": ("cassette player", 482),
    "n03000684": ("chain saw", 491),
    "n03028079": ("church", 497),
    "n03394916": ("French horn", 566),
    "n03417042": ("garbage truck", 569),
    "n03425413": ("gas pump", 571),
    "n03445777": ("golf ball", 574),
    "n03888257": ("parachute", 701),
}

#: Written last into an extracted folder: a folder without it is unfinished.
DONE_MARKER = ".alexnet-tut-complete"


def _check_members(tar: tarfile.TarFile, dest: Path) -> None:
    """Refuse the whole archive if any member could write outside ``dest``.

    Checked before anything is extracted: absolute names, ``..`` components,
    symbolic or hard links that point outside, and devices or FIFOs.
    """
    dest = dest.resolve()

    def inside(target: Path) -> bool:
        return target == dest or dest in target.parents

    for member in tar.getmembers():
        name = member.name
        problem = None
        if name.startswith(("/", "\\")) or Path(name).is_absolute() or ":" in Path(name).parts[0]:
            problem = "has an absolute path"
        elif ".." in Path(name.replace("\\", "/")).parts:
            problem = "contains '..'"
        elif not inside((dest / name).resolve()):
            problem = "would be written outside the target folder"
        elif member.issym() or member.islnk():
            base = dest if member.islnk() else (dest / name).parent
            link = member.linkname
            if Path(link).is_absolute() or not inside((base / link).resolve()):
                problem = f"is a link pointing outside the target folder ({link})"
        elif member.isdev() or member.isfifo():
            problem = "is a device or FIFO"
        if problem:
            raise AlexnetTutError(
                f"unsafe archive {tar.name}: member {name!r} {problem}; nothing was extracted "
                "(delete the archive and download it again)")


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar archive into ``dest``, refusing anything that could escape it.

    Uses `tarfile`'s ``filter="data"`` where Python has it (3.11.4+, 3.12),
    after checking every member ourselves so that a bad archive writes nothing.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            _check_members(tar, dest)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # pragma: no cover - Python < 3.11.4; members were checked above
                tar.extractall(dest)
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, tarfile.FilterError):
            raise AlexnetTutError(f"unsafe archive {archive}: {error}") from error
        raise AlexnetTutError(
            f"cannot extract {archive}: {error} (the archive is damaged or incomplete; "
            "delete it and download again)") from error


def download_imagenette(
    size: str = "320px",
    directory: Path | None = None,
    *,
    trust_new_checksum: bool = False,
    url: str | None = None,
) -> Path:
    """Download, verify and extract Imagenette v2; return the extracted folder.

    ``size`` is ``"160px"``, ``"320px"`` (shorter side) or ``"full"``. The
    archive goes to ``directory`` (default: `data_home`) and is extracted to
    ``<directory>/imagenette2-320`` (or ``-160``, or ``imagenette2``).

    Idempotent: a folder that was extracted completely (it holds a marker file
    written last) is returned at once. The download is written to
    ``<name>.tgz.part`` and renamed to ``<name>.tgz`` only after its md5 (and
    sha256 where TFDS lists one) match the pinned values, so an interrupted
    download is never mistaken for a good archive. On a mismatch the file is
    removed and the error says what was expected and what arrived;
    ``trust_new_checksum=True`` (``--trust-new-checksum``) accepts a
    re-uploaded archive. ``url`` overrides the download address (tests).
    """
    import keras

    if size not in IMAGENETTE_ARCHIVES:
        raise AlexnetTutError(
            f"unknown Imagenette size {size!r}: choose one of {', '.join(IMAGENETTE_ARCHIVES)}")
    name, md5, sha256, nbytes = IMAGENETTE_ARCHIVES[size]
    directory = Path(directory).expanduser() if directory else data_home()
    root = directory / name
    if (root / DONE_MARKER).exists():
        return root
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AlexnetTutError(f"cannot create {directory}: {error} (choose another --dir)") from error
    if not os.access(directory, os.W_OK):
        raise AlexnetTutError(f"cannot write to {directory} (choose another --dir)")

    archive = directory / f"{name}.tgz"
    origin = url or IMAGENETTE_URL.format(name=name)
    if not archive.exists():
        try:
            part = Path(keras.utils.get_file(
                fname=f"{name}.tgz.part", origin=origin, cache_dir=str(directory),
                cache_subdir="", force_download=True))
        except Exception as error:
            (directory / f"{name}.tgz.part").unlink(missing_ok=True)
            raise AlexnetTutError(
                f"download of {origin} failed: {error} (check the connection, or set "
                "ALEXNET_TUT_DATA to a folder you already have)") from error
        got = file_digests(part)
        if got["md5"] != md5 or (sha256 and got["sha256"] != sha256):
            got_size = part.stat().st_size
            if not trust_new_checksum:
                part.unlink()
                expected = f"md5 {md5}" + (f" ({nbytes:,} bytes)" if nbytes else "")
                raise AlexnetTutError(
                    f"checksum mismatch for {origin}: expected {expected}, got md5 {got['md5']} "
                    f"({got_size:,} bytes); the file was removed. If the archive was re-uploaded "
                    "and you trust it, run again with --trust-new-checksum "
                    "(trust_new_checksum=True)")
            print(f"note: accepting {name}.tgz with md5 {got['md5']} (pinned: {md5}) "
                  "because trust_new_checksum is set")
        os.replace(part, archive)

    staging = Path(tempfile.mkdtemp(prefix=f".{name}-extracting-", dir=directory))
    try:
        try:
            safe_extract(archive, staging)
        except AlexnetTutError:
            archive.unlink(missing_ok=True)  # a damaged or unsafe archive is not kept
            raise
        extracted = staging / name
        if not (extracted / "train").is_dir():
            archive.unlink(missing_ok=True)
            raise AlexnetTutError(
                f"{archive.name} does not hold {name}/train/; it was removed "
                "(download it again)")
        (extracted / DONE_MARKER).write_text(json.dumps({"archive": archive.name, "md5": md5}))
        if root.exists():
            shutil.rmtree(root)  # an earlier, unfinished extraction
        os.replace(extracted, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def find_imagenette(directory: Path | None = None, prefer: str = "320px") -> Path | None:
    """An Imagenette copy already extracted completely in ``directory``, or ``None``."""
    directory = Path(directory) if directory else data_home()
    order = [prefer] + [s for s in IMAGENETTE_SIZES if s != prefer]
    for size in order:
        root = directory / IMAGENETTE_ARCHIVES[size][0]
        if (root / DONE_MARKER).exists():
            return root
    return None
