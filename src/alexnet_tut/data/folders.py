"""What is in an ImageNet-layout folder: classes, images per split, and the files a run must skip.

`scan` reads ``train/<class>/*`` and ``val/<class>/*`` the way a training
run does: every file is checked before any dataset is built, so that a run
never stops on a bad file, and the report says what was left out and why.

The rules, the same for every file and folder:

* names that start with ``.`` are hidden and ignored, files and folders alike
  (as ``ls`` does: ``.DS_Store``, ``.ipynb_checkpoints/``, a hidden copy);
* a symbolic link whose target lies inside the data folder is skipped, since
  its images would be used twice, maybe under another label (``train/dup ->
  cat``, ``val/cat -> ../train/cat``); links to files or class folders
  elsewhere are followed, links to subfolders are not;
* an image is used when its structure is complete (`check_image`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from alexnet_tut.data.imagenette import IMAGENETTE_CLASSES
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.files import display_path

SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")

_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}

#: Larger images are skipped: Pillow refuses them as decompression bombs, and
#: decoding one takes gigabytes.
MAX_PIXELS = 178_956_970

#: JPEG frame types libjpeg decodes at 8 bits: baseline, extended, progressive,
#: and their arithmetic-coded forms. Lossless and hierarchical ones it does not.
_JPEG_FRAMES = (0xC0, 0xC1, 0xC2, 0xC9, 0xCA)
_JPEG_SOF = tuple(m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC))
_TAIL = 2048
_TRUNCATED_JPEG = "truncated JPEG (no end-of-image marker)"
_TRUNCATED_PNG = "truncated PNG (no IEND chunk)"


def _plural(count: int, noun: str) -> str:
    """``"1 class"``, ``"6 classes"``, ``"1,000 train images"``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count:,} {noun}" + ("es" if noun.endswith(("s", "x")) else "s")


def _jpeg_header(f: BinaryIO, size: int) -> tuple[str | None, int, tuple[int, int, int, int]]:
    """Walk a JPEG's marker segments to its first scan: ``(reason, scan start, frame)``.

    ``frame`` is ``(precision, height, width, components)`` from the
    start-of-frame segment. Each segment says its length, so the walk reads
    a few bytes per segment and seeks over the rest (EXIF, ICC profiles).
    """
    pos, frame = 2, None
    while True:
        f.seek(pos)
        head = f.read(4)
        if len(head) < 2:
            return "truncated JPEG (it ends before its image data)", 0, (0, 0, 0, 0)
        if head[0] != 0xFF:
            return "corrupt JPEG (its header segments are damaged)", 0, (0, 0, 0, 0)
        if head[1] == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        marker = head[1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            return ("JPEG without image data (its end-of-image marker comes before any "
                    "start-of-scan marker)"), 0, (0, 0, 0, 0)
        if len(head) < 4 or pos + 2 + int.from_bytes(head[2:4], "big") > size:
            return "truncated JPEG (it ends before its image data)", 0, (0, 0, 0, 0)
        length = int.from_bytes(head[2:4], "big")
        if length < 2 or marker == 0xD8:
            return "corrupt JPEG (its header segments are damaged)", 0, (0, 0, 0, 0)
        if marker in _JPEG_SOF:
            body = f.read(6)
            if len(body) < 6:
                return "truncated JPEG (it ends before its image data)", 0, (0, 0, 0, 0)
            if marker not in _JPEG_FRAMES:
                return (f"lossless or hierarchical JPEG (frame type 0x{marker:02X}), which "
                        "TensorFlow cannot decode"), 0, (0, 0, 0, 0)
            frame = (body[0], int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"),
                     body[5])
        if marker == 0xDA:
            if frame is None:
                return "corrupt JPEG (no frame header before its image data)", 0, (0, 0, 0, 0)
            return None, pos + 2 + length, frame
        pos += 2 + length


def _jpeg_structure(f: BinaryIO, size: int) -> tuple[str | None, str | None]:
    """Whether a JPEG is whole: frame header, a start-of-scan marker, an end-of-image marker after it."""
    reason, scan_start, (precision, height, width, components) = _jpeg_header(f, size)
    if reason:
        return reason, None
    if precision != 8:
        return f"{precision}-bit JPEG (TensorFlow decodes 8-bit JPEGs only)", None
    if height < 1 or width < 1:
        return "image has no pixels", None
    if width * height > MAX_PIXELS:
        return f"image too large to decode ({width}×{height} pixels)", None
    if components not in (1, 3, 4):
        return f"JPEG with {components} colour components (TensorFlow decodes 1, 3 or 4)", None
    # The end-of-image marker is normally in the last bytes. A valid JPEG may be
    # followed by other bytes; only then is the rest of the file searched.
    f.seek(max(scan_start, size - _TAIL))
    tail = f.read()
    if b"\xff\xd9" not in tail:
        f.seek(scan_start)
        if b"\xff\xd9" not in f.read():
            return _TRUNCATED_JPEG, None
    return None, {1: "grayscale", 4: "cmyk"}.get(components)


def _png_structure(f: BinaryIO, size: int) -> tuple[str | None, str | None]:
    """Whether a PNG is whole: IHDR first, then chunks whose lengths fit the file, IDAT, IEND."""
    pos, seen_data, colour = 8, False, None
    while True:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return _TRUNCATED_PNG, None
        length, kind = int.from_bytes(head[:4], "big"), head[4:]
        if not kind.isalpha():
            return "corrupt PNG (a chunk is damaged)", None
        if pos + 12 + length > size:
            return _TRUNCATED_PNG, None
        if pos == 8:
            if kind != b"IHDR" or length != 13:
                return "corrupt PNG (it does not start with its IHDR header)", None
            header = f.read(13)
            width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
            if width < 1 or height < 1:
                return "image has no pixels", None
            if width * height > MAX_PIXELS:
                return f"image too large to decode ({width}×{height} pixels)", None
            colour = header[9]
        elif kind == b"IDAT":
            seen_data = True
        elif kind == b"IEND":
            break
        pos += 12 + length
    if not seen_data:
        return "PNG without image data (no IDAT chunk)", None
    return None, "grayscale" if colour in (0, 4) else None


def check_image(path: Path) -> tuple[str | None, str | None]:
    """Whether TensorFlow can decode ``path``: ``(None, note)`` if so, ``(reason, None)`` if not.

    A structural check, fast enough for ImageNet's 1.28 million files: the
    first bytes give the real format, whatever the extension says. A JPEG
    needs its frame header (8-bit, with pixels), a start-of-scan marker
    (``FF DA``) before its data, and an end-of-image marker (``FF D9``) after
    it; a PNG its ``IHDR`` header, chunks whose lengths fit the file, image
    data (``IDAT``) and its ``IEND`` chunk. The walk reads each header
    segment's few bytes and the last 2 KB, and reads the whole file only when
    the end marker is not among those (bytes after a valid image). A file
    that passes and still cannot be decoded is dropped, and counted, by the
    training run. ``note`` names what is decoded with a conversion:
    ``"cmyk"``, ``"grayscale"`` or ``"png_named_jpeg"``.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file", None
        with open(path, "rb") as f:
            head = f.read(16)
            kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
            if kind is None:
                return "not a JPEG or PNG image (unknown format)", None
            reason, note = (_jpeg_structure if kind == "JPEG" else _png_structure)(f, size)
    except OSError as error:
        return f"cannot read: {error.strerror or error}", None
    if reason:
        return reason, None
    if kind == "PNG" and path.suffix.lower() in (".jpeg", ".jpg"):
        note = "png_named_jpeg"
    return None, note


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _class_dirs(split_dir: Path, root_real: Path, skipped: list[dict[str, str]]) -> list[Path]:
    """The class folders of a split; links into the data folder go to ``skipped``."""
    rel = split_dir.name
    dirs, loose = [], 0
    for path in sorted(split_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink() and _inside(path.resolve(), root_real):
            skipped.append({"path": f"{rel}/{path.name}", "reason": _link_reason(path, root_real)})
        elif path.is_dir():
            dirs.append(path)
        else:
            loose += 1
    if loose:
        skipped.append({"path": f"{rel}/", "reason": f"{_plural(loose, 'file')} outside any class "
                        "folder (each image belongs in <split>/<class>/)"})
    return dirs


def _link_reason(path: Path, root_real: Path) -> str:
    target = path.resolve().relative_to(root_real).as_posix() or "."
    return (f"a link to {target}, inside the data folder: its images would be used twice "
            "(skipped)")


def _image_files(class_dir: Path, root: Path, root_real: Path,
                 skipped: list[dict[str, str]]) -> list[Path]:
    """Every file under a class folder, by the module's rules, in path order."""
    files, folders = [], [class_dir]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            skipped.append({"path": folder.relative_to(root).as_posix(),
                            "reason": f"cannot read folder: {error.strerror or error}"})
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                if _inside(path.resolve(), root_real):
                    skipped.append({"path": path.relative_to(root).as_posix(),
                                    "reason": _link_reason(path, root_real)})
                elif path.is_dir():
                    skipped.append({"path": path.relative_to(root).as_posix(),
                                    "reason": "a link to a folder, not followed (link the class "
                                    "folder itself, or each file)"})
                else:
                    files.append(path)
            elif entry.is_dir(follow_symlinks=False):
                folders.append(path)
            else:
                files.append(path)
    return sorted(files)


def _check_layout(root: Path, expected: str) -> Path:
    """The folder's real path, after one-line errors for a missing or mislaid folder."""
    if not root.exists():
        raise AlexnetTutError(f"{root} does not exist ({expected})")
    if not root.is_dir():
        raise AlexnetTutError(f"{root} is not a folder ({expected})")
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise AlexnetTutError(f"{root} has no {' or '.join(m + '/' for m in missing)} folder ({expected})")
    train, val = ((root / s).resolve() for s in SPLITS)
    if _inside(train, val) or _inside(val, train):
        raise AlexnetTutError(
            f"{root}: train/ and val/ are the same folder, or one holds the other ({train}, {val}); "
            "validation images must not be training images")
    return root.resolve()


def _scan(directory: Path) -> tuple[dict[str, Any], dict[str, list[tuple[str, int]]]]:
    """The report `scan` returns, and per split the usable ``(relative path, label)`` pairs."""
    root = Path(directory).expanduser()
    expected = "expected an ImageNet-layout folder: train/<class>/*.JPEG and val/<class>/*.JPEG"
    try:
        root_real = _check_layout(root, expected)
        skipped: list[dict[str, str]] = []
        class_dirs = {split: _class_dirs(root / split, root_real, skipped) for split in SPLITS}
    except PermissionError as error:
        raise AlexnetTutError(f"cannot read {error.filename or root}: {error.strerror} "
                              "(check its permissions)") from error
    for split in SPLITS:
        if not class_dirs[split]:
            raise AlexnetTutError(
                f"{root / split} has no class folders ({expected}; ImageNet's flat val/ folder "
                "must first be sorted into one folder per class)")

    notes: dict[str, int] = {}
    found: dict[str, dict[str, list[str]]] = {}
    for split in SPLITS:
        found[split] = {}
        for class_dir in class_dirs[split]:
            good = []
            for path in _image_files(class_dir, root, root_real, skipped):
                rel = path.relative_to(root).as_posix()
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append({"path": rel, "reason": f"not an image file name ({path.suffix or 'no extension'})"})
                    continue
                reason, note = check_image(path)
                if reason:
                    skipped.append({"path": rel, "reason": reason})
                    continue
                if note:
                    notes[note] = notes.get(note, 0) + 1
                good.append(rel)
            found[split][class_dir.name] = good

    class_ids = []
    for wnid, files in found["train"].items():
        if files:
            class_ids.append(wnid)
        else:
            skipped.append({"path": f"train/{wnid}", "reason": "class folder has no usable images"})
    if not class_ids:
        bad = sum(1 for item in skipped if item["path"].startswith("train/")
                  and item["reason"] != "class folder has no usable images")
        raise AlexnetTutError(
            f"{root / 'train'} holds no usable images: {_plural(bad, 'file')} skipped "
            f"(run `alexnet-tut data scan {root}` to see why; {expected})")
    extra = sorted(set(found["val"]) - set(class_ids))
    for wnid in extra:
        skipped.append({"path": f"val/{wnid}", "reason": "class not among the training classes"})
    label = {wnid: i for i, wnid in enumerate(class_ids)}
    files = {split: [(rel, label[w]) for w in class_ids for rel in found[split].get(w, [])]
             for split in SPLITS}
    names = [IMAGENETTE_CLASSES.get(w, (w,))[0] for w in class_ids]
    report = {
        "root": str(root),
        "classes": names,
        "class_ids": class_ids,
        "splits": {split: len(files[split]) for split in SPLITS},
        "per_class": {split: {n: len(found[split].get(w, [])) for n, w in zip(names, class_ids)}
                      for split in SPLITS},
        "converted": notes,
        "skipped": skipped,
    }
    return report, files


def scan(directory: Path) -> dict[str, Any]:
    """What a training run would use from an ImageNet-layout folder.

    Returns a JSON-ready dict: ``classes`` (readable names; Imagenette's
    WordNet ids are translated), ``class_ids`` (folder names; label ``i`` is
    ``class_ids[i]``), ``splits`` (split -> usable images), ``per_class``,
    ``converted`` (images decoded with a conversion: CMYK, grayscale, PNG
    named .JPEG) and ``skipped`` (``{path, reason}`` for every file or class
    folder left out: truncated, empty, not an image, empty class, a link
    into the data folder).

    Raises `AlexnetTutError` when the folder is missing or is not laid out as
    ``train/<class>/`` and ``val/<class>/``.
    """
    return _scan(directory)[0]


def format_scan(report: dict[str, Any]) -> str:
    """`scan`'s report as a few lines for people."""
    splits = report["splits"]
    lines = [f"{display_path(report['root'])}: {_plural(len(report['classes']), 'class')}, "
             + ", ".join(f"{_plural(n, s + ' image')}" for s, n in splits.items())]
    shown = report["classes"][:20]
    per = report["per_class"]
    lines.append("classes (train/val): " + ", ".join(
        f"{c} ({per['train'][c]}/{per['val'][c]})" for c in shown)
        + (f", ... and {len(report['classes']) - 20} more" if len(report["classes"]) > 20 else ""))
    if report["converted"]:
        lines.append("decoded with a conversion: " + ", ".join(
            f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(report["converted"].items())))
    skipped = report["skipped"]
    lines.append(f"skipped: {len(skipped)}" + (":" if skipped else ""))
    lines += [f"  {item['path']}: {item['reason']}" for item in skipped]
    return "\n".join(lines)
