"""Imagenette v2, the ten-class ImageNet subset: its classes, its archives, a safe download.

`download_imagenette` fetches an archive (through `alexnet_tut.downloads`,
so ``ALEXNET_TUT_MIRROR`` applies), checks it against a pinned checksum and
extracts it in a way that cannot write outside the target folder, and never
touches a file or folder it did not create. `find_imagenette` finds a copy
that was extracted completely before.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from alexnet_tut import downloads, locks
from alexnet_tut.data.home import data_home
from alexnet_tut.errors import AlexnetTutError, one_line
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
    Every failure is a one-line `AlexnetTutError`.
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
    except tarfile.ReadError as error:
        raise AlexnetTutError(
            f"cannot extract {archive}: it is not a readable tar archive "
            f"({one_line(error).split(':')[0]}): it is damaged or not an Imagenette archive") from error
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        if isinstance(error, tarfile.FilterError):
            raise AlexnetTutError(f"unsafe archive {archive}: {one_line(error)}") from error
        raise AlexnetTutError(
            f"cannot extract {archive}: {one_line(error)} (the archive is damaged or incomplete, "
            "or the disk is full)") from error


def _refuse_foreign(root: Path) -> None:
    """Refuse, in one line, a ``root`` that exists but is not a copy this package finished.

    The package writes ``root`` in one rename, after the completion marker is
    inside it; anything else at that name (a user's own copy, a file, a link)
    is someone else's and is left alone.
    """
    if not (root.exists() or root.is_symlink()):
        return
    use = "to train on a copy of your own, pass it to `alexnet-tut train --data` or ALEXNET_TUT_DATA"
    if root.is_symlink():
        what = f"is a symbolic link to {os.readlink(root)}, which holds no finished Imagenette copy"
    elif not root.is_dir():
        what = "is a file, not a folder"
    else:
        what = f"exists but was not made by alexnet-tut (it has no {DONE_MARKER} marker)"
    raise AlexnetTutError(
        f"{root} {what}; nothing was changed: move it away or choose another --dir ({use})")


def _remove_stale_staging(directory: Path, name: str) -> None:
    """Remove the hidden folders of extractions that were killed (only the lock holder extracts)."""
    for stale in directory.glob(f".{name}-extracting-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _accepted_md5(path: Path, origin: str, md5: str, sha256: str | None, nbytes: int | None,
                  trust_new_checksum: bool, downloaded: bool) -> str:
    """The archive's md5 when it is the pinned one, or is trusted; else a one-line refusal.

    A mismatched file that was downloaded now is removed; one that was
    already there (maybe the user's) is left as it is.
    """
    got = file_digests(path)
    if got["md5"] == md5 and (not sha256 or got["sha256"] == sha256):
        return md5
    got_size = path.stat().st_size
    if trust_new_checksum or downloads.trust_new_checksums():
        print(f"note: accepting {path.name} with md5 {got['md5']} (pinned: {md5}) "
              f"because {'trust_new_checksum' if trust_new_checksum else downloads.TRUST_ENV} is set")
        return got["md5"]
    expected = f"md5 {md5}" + (f" ({nbytes:,} bytes)" if nbytes else "")
    trust = ("If the archive was re-uploaded and you trust it, run again with "
             "--trust-new-checksum (trust_new_checksum=True)")
    if downloaded:
        path.unlink()
        raise AlexnetTutError(
            f"checksum mismatch for {origin}: expected {expected}, got md5 {got['md5']} "
            f"({got_size:,} bytes); the file was removed. {trust}")
    raise AlexnetTutError(
        f"{path} is not the published archive: expected {expected}, got md5 {got['md5']} "
        f"({got_size:,} bytes); it was left as it is: delete it to download it again. {trust}")


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
    re-uploaded archive, and the marker records the md5 that was accepted.
    A ``<name>.tgz`` already in the folder is checked the same way before it
    is extracted, and is never deleted. The archive is extracted into a hidden
    folder and renamed into place, under a lock file that keeps a second
    process out; the hidden folders of killed extractions are removed on the
    next call. Anything already at ``<directory>/<name>`` that this function
    did not finish (a copy of your own, a file, a link) is refused in one
    line and left as it is. ``url`` overrides the download address (tests);
    ``ALEXNET_TUT_MIRROR`` applies to it as to the default.
    """
    if size not in IMAGENETTE_ARCHIVES:
        raise AlexnetTutError(
            f"unknown Imagenette size {size!r}: choose one of {', '.join(IMAGENETTE_ARCHIVES)}")
    name, md5, sha256, nbytes = IMAGENETTE_ARCHIVES[size]
    directory = Path(directory).expanduser() if directory else data_home()
    root = directory / name
    if (root / DONE_MARKER).is_file():
        return root
    _refuse_foreign(root)
    url = url or IMAGENETTE_URL.format(name=name)
    origin = downloads.mirrored(url)  # a mistyped ALEXNET_TUT_MIRROR is refused before anything
    created = not directory.exists()
    downloads.writable_folder(directory, "choose another --dir")
    lock = directory / f".{name}.alexnet-tut-lock"
    try:
        with locks.hold(lock, f"the Imagenette folder {directory}", "choose another --dir"):
            if (root / DONE_MARKER).is_file():  # another process finished it meanwhile
                return root
            _refuse_foreign(root)
            _remove_stale_staging(directory, name)
            archive = directory / f"{name}.tgz"
            downloaded = not archive.exists()
            if downloaded:
                part = downloads.fetch(
                    url, directory, f"{name}.tgz.part", force=True,
                    hint="check the connection, or set ALEXNET_TUT_DATA to a folder you already have")
                accepted = _accepted_md5(part, origin, md5, sha256, nbytes, trust_new_checksum, True)
                os.replace(part, archive)
            else:
                accepted = _accepted_md5(archive, origin, md5, sha256, nbytes, trust_new_checksum,
                                         False)
            _extract_into_place(archive, root, name, accepted, md5, downloaded)
    except BaseException:
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()  # the folder this call made, left empty by the failure
        raise
    return root


def _extract_into_place(archive: Path, root: Path, name: str, accepted: str, pinned: str,
                        downloaded: bool) -> None:
    """Extract ``archive`` into a hidden folder beside ``root``, mark it complete, rename it to ``root``.

    An archive that cannot be extracted is removed when it was downloaded
    now, and left in place (with a message saying so) when it was there before.
    """
    directory = root.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-extracting-", dir=directory))
    try:
        try:
            safe_extract(archive, staging)
            if not (staging / name / "train").is_dir():
                raise AlexnetTutError(f"{archive.name} does not hold {name}/train/")
        except AlexnetTutError as error:
            if downloaded:
                archive.unlink(missing_ok=True)  # a damaged or unsafe download is not kept
                raise AlexnetTutError(f"{error}; the download was removed (run again to "
                                      "download it afresh)") from error
            raise AlexnetTutError(f"{error}; {archive} was there before and was left as it is: "
                                  "delete it to download it again") from error
        marker = {"archive": archive.name, "md5": accepted, "pinned_md5": pinned,
                  "trusted_new_checksum": accepted != pinned}
        (staging / name / DONE_MARKER).write_text(json.dumps(marker))
        os.replace(staging / name, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def find_imagenette(directory: Path | None = None, prefer: str = "320px") -> Path | None:
    """An Imagenette copy already extracted completely in ``directory``, or ``None``."""
    directory = Path(directory).expanduser() if directory else data_home()
    order = [prefer] + [s for s in IMAGENETTE_SIZES if s != prefer]
    for size in order:
        root = directory / IMAGENETTE_ARCHIVES[size][0]
        if (root / DONE_MARKER).is_file():
            return root
    return None
