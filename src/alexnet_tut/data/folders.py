"""What is in an ImageNet-layout folder: classes, images per split, and the files a run must skip.

`scan` reads ``train/<class>/*`` and ``val/<class>/*`` the way a training
run does: every file is checked before any dataset is built, so that a run
never stops on a bad file, and the report says what was left out and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alexnet_tut.data.imagenette import IMAGENETTE_CLASSES
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.files import display_path

SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")

_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def check_image(path: Path) -> tuple[str | None, str | None]:
    """Whether TensorFlow can decode ``path``: ``(None, note)`` if so, ``(reason, None)`` if not.

    Reads the first bytes (the real format, whatever the extension says),
    the last 2 KB (a JPEG must end with its end-of-image marker, a PNG with
    its ``IEND`` chunk: truncated files do not) and the header through Pillow
    (the colour mode). ``note`` names what is decoded with a conversion:
    ``"cmyk"``, ``"grayscale"`` or ``"png_named_jpeg"``.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file", None
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - 2048))
            tail = f.read()
    except OSError as error:
        return f"cannot read: {error.strerror or error}", None
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None:
        return "not a JPEG or PNG image (unknown format)", None
    if kind == "JPEG" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)", None
    if kind == "PNG" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)", None
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
    except Exception as error:  # Pillow raises many types for broken headers
        return f"unreadable image header: {error}", None
    if width < 1 or height < 1:
        return "image has no pixels", None
    note = None
    if kind == "PNG" and path.suffix.lower() in (".jpeg", ".jpg"):
        note = "png_named_jpeg"
    elif mode == "CMYK":
        note = "cmyk"
    elif mode in ("L", "LA", "I", "I;16", "1"):
        note = "grayscale"
    return None, note


def _class_dirs(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan(directory: Path) -> tuple[dict[str, Any], dict[str, list[tuple[str, int]]]]:
    """The report `scan` returns, and per split the usable ``(relative path, label)`` pairs."""
    root = Path(directory).expanduser()
    expected = "expected an ImageNet-layout folder: train/<class>/*.JPEG and val/<class>/*.JPEG"
    if not root.exists():
        raise AlexnetTutError(f"{root} does not exist ({expected})")
    if not root.is_dir():
        raise AlexnetTutError(f"{root} is not a folder ({expected})")
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise AlexnetTutError(f"{root} has no {' or '.join(m + '/' for m in missing)} folder ({expected})")
    for split in SPLITS:
        if not _class_dirs(root / split):
            raise AlexnetTutError(
                f"{root / split} has no class folders ({expected}; ImageNet's flat val/ folder "
                "must first be sorted into one folder per class)")

    skipped: list[dict[str, str]] = []
    notes: dict[str, int] = {}
    found: dict[str, dict[str, list[str]]] = {}
    for split in SPLITS:
        found[split] = {}
        for class_dir in _class_dirs(root / split):
            good = []
            for path in sorted(class_dir.rglob("*")):
                if path.is_dir() or path.name.startswith("."):
                    continue
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
        raise AlexnetTutError(f"{root / 'train'} holds no usable images ({expected})")
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
    folder left out: truncated, empty, not an image, empty class).

    Raises `AlexnetTutError` when the folder is missing or is not laid out as
    ``train/<class>/`` and ``val/<class>/``.
    """
    return _scan(directory)[0]


def format_scan(report: dict[str, Any]) -> str:
    """`scan`'s report as a few lines for people."""
    splits = report["splits"]
    lines = [f"{display_path(report['root'])}: {len(report['classes'])} classes, "
             + ", ".join(f"{n:,} {s} images" for s, n in splits.items())]
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
