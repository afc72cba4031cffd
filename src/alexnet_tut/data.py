"""Data for the book: Imagenette, any ImageNet-layout folder, and an offline stand-in.

Three sources, one pipeline:

- `download_imagenette` fetches the ten-class ImageNet subset (Imagenette v2)
  with `keras.utils.get_file`, checks a pinned checksum and extracts it safely.
- `scan` reads any folder laid out like ImageNet (``train/<class>/*.JPEG``,
  ``val/<class>/*.JPEG``) and lists what a run would use and what it skips.
- `write_standin` builds an Imagenette-shaped folder from real photographs
  that installed packages ship, so tests and offline builds run the very same
  code path.

`load_datasets` turns such a folder into the paper's `tf.data` pipelines
(§4.1): short side resized to 256, centre 256×256 decoded once and cached,
random 227 crops and mirrors, PCA colour augmentation, mean subtraction, and
the 10-crop evaluation. `resolve_source` picks the folder following the
book's data policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_tut.errors import AlexnetTutError

# --------------------------------------------------------------------------
# Where data lives
# --------------------------------------------------------------------------

IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/{name}.tgz"

#: size -> (archive/folder name, md5 (as torchvision pins it), sha256 (TFDS), bytes)
IMAGENETTE_ARCHIVES: dict[str, tuple[str, str, str | None, int | None]] = {
    "320px": ("imagenette2-320", "3df6f0d01a2c9592104656642f5e78a3",
              "5020a9130cea0348272823cb12d2db7e981c6f2afa3dce71ccd5b8013005c55e", 341_553_947),
    "160px": ("imagenette2-160", "e793b78cc4c9e9a4ccc0c1155377a412",
              "88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863", 98_948_031),
    "full": ("imagenette2", "fe2fc210e6bb7c5664d602c3cd71e612", None, None),
}

#: Imagenette's WordNet ids and their readable names (PAPER-FACTS.md).
IMAGENETTE_CLASSES: dict[str, str] = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}

SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_DONE = ".alexnet-tut-complete"  # written last: a folder without it is unfinished
_STANDIN_MARKER = "standin.json"
STANDIN_VERSION = 1


def data_home() -> Path:
    """Where downloads and the stand-in are kept.

    ``$ALEXNET_TUT_DATA_HOME`` if set, else ``$KERAS_HOME/datasets``, else
    ``~/.keras/datasets`` (where `keras.utils.get_file` keeps its files).
    """
    if os.environ.get("ALEXNET_TUT_DATA_HOME"):
        return Path(os.environ["ALEXNET_TUT_DATA_HOME"]).expanduser()
    keras_home = os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(keras_home).expanduser() / "datasets"


def _pretty(path: Path) -> str:
    """``path`` with the home folder written as ``~``, so printed lines do not depend on the user."""
    path = Path(path).resolve()
    home = Path.home().resolve()
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# Imagenette: download, verify, extract
# --------------------------------------------------------------------------


def _hashes(path: Path) -> tuple[str, str]:
    """md5 and sha256 of a file, in one read."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


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
    if (root / _DONE).exists():
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
        got_md5, got_sha = _hashes(part)
        if got_md5 != md5 or (sha256 and got_sha != sha256):
            got_size = part.stat().st_size
            if not trust_new_checksum:
                part.unlink()
                expected = f"md5 {md5}" + (f" ({nbytes:,} bytes)" if nbytes else "")
                raise AlexnetTutError(
                    f"checksum mismatch for {origin}: expected {expected}, got md5 {got_md5} "
                    f"({got_size:,} bytes); the file was removed. If the archive was re-uploaded "
                    "and you trust it, run again with --trust-new-checksum "
                    "(trust_new_checksum=True)")
            print(f"note: accepting {name}.tgz with md5 {got_md5} (pinned: {md5}) "
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
        (extracted / _DONE).write_text(json.dumps({"archive": archive.name, "md5": md5}))
        if root.exists():
            shutil.rmtree(root)  # an earlier, unfinished extraction
        os.replace(extracted, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def find_imagenette(directory: Path | None = None, prefer: str = "320px") -> Path | None:
    """An Imagenette copy already extracted completely in ``directory``, or ``None``."""
    directory = Path(directory) if directory else data_home()
    order = [prefer] + [s for s in ("320px", "160px", "full") if s != prefer]
    for size in order:
        root = directory / IMAGENETTE_ARCHIVES[size][0]
        if (root / _DONE).exists():
            return root
    return None


# --------------------------------------------------------------------------
# Scanning an ImageNet-layout folder
# --------------------------------------------------------------------------

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
    names = [IMAGENETTE_CLASSES.get(w, w) for w in class_ids]
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
    lines = [f"{_pretty(report['root'])}: {len(report['classes'])} classes, "
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


# --------------------------------------------------------------------------
# The offline stand-in
# --------------------------------------------------------------------------

#: class folder -> where its photograph comes from
STANDIN_PHOTOS: dict[str, str] = {
    "astronaut": "skimage:astronaut",
    "cat": "skimage:chelsea",
    "coffee": "skimage:coffee",
    "hopper": "matplotlib:grace_hopper.jpg",
    "rocket": "skimage:rocket",
    "tissue": "skimage:immunohistochemistry",
}
STANDIN_DESCRIPTION = (f"offline stand-in ({len(STANDIN_PHOTOS)} classes of real photos made "
                       "from scikit-image and matplotlib sample images)")


def standin_photo(name: str) -> np.ndarray:
    """The RGB photograph (uint8, H×W×3) behind stand-in class ``name``."""
    source, _, item = STANDIN_PHOTOS[name].partition(":")
    if source == "matplotlib":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data(item, asfileobj=False)) as image:
            return np.asarray(image.convert("RGB"))
    try:
        import skimage.data
    except ImportError as error:
        raise AlexnetTutError(
            "the offline stand-in needs scikit-image's sample photos: pip install scikit-image"
        ) from error
    return np.ascontiguousarray(getattr(skimage.data, item)()[..., :3])


def write_standin(
    directory: Path,
    *,
    seed: int = 0,
    train_per_class: int = 40,
    val_per_class: int = 10,
    short_side: int = 192,
) -> Path:
    """Write the offline stand-in, an Imagenette-shaped folder of real photographs.

    One class per photograph (`STANDIN_PHOTOS`); every example is a random
    crop (30-100 % of the area, aspect 3:4 to 4:3), maybe mirrored, scaled to
    a shorter side of ``short_side`` pixels and saved as a JPEG, in
    ``train/<class>/`` and ``val/<class>/``. The same ``seed`` gives the same
    files. About 5 MB with the defaults.

    Idempotent: a folder holding a finished stand-in with the same settings
    is returned as it is. The files are written to a temporary sibling folder
    and moved into place at the end, so an interrupted run leaves nothing
    half-written behind. Returns ``directory``.
    """
    from PIL import Image

    directory = Path(directory).expanduser()
    settings = {"version": STANDIN_VERSION, "seed": seed, "train_per_class": train_per_class,
                "val_per_class": val_per_class, "short_side": short_side}
    marker = directory / _STANDIN_MARKER
    if marker.exists():
        if json.loads(marker.read_text()).get("settings") == settings:
            return directory
        raise AlexnetTutError(
            f"{directory} holds a stand-in made with other settings: delete it or choose another folder")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlexnetTutError(f"{directory} exists and is not empty: choose a new or empty folder")
    directory.parent.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(seed)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        for name in STANDIN_PHOTOS:
            photo = Image.fromarray(standin_photo(name))
            width, height = photo.size
            for split, count in (("train", train_per_class), ("val", val_per_class)):
                (staging / split / name).mkdir(parents=True)
                for i in range(count):
                    area = rng.uniform(0.3, 1.0) * width * height
                    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
                    w = int(min(width, round(np.sqrt(area * aspect))))
                    h = int(min(height, round(np.sqrt(area / aspect))))
                    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
                    crop = photo.crop((x, y, x + w, y + h))
                    if rng.random() < 0.5:
                        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    scale = short_side / min(w, h)
                    crop = crop.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                       Image.Resampling.BICUBIC)
                    crop.save(staging / split / name / f"{name}_{i:04d}.JPEG", quality=90)
        (staging / _STANDIN_MARKER).write_text(json.dumps(
            {"description": STANDIN_DESCRIPTION, "sources": STANDIN_PHOTOS, "settings": settings},
            indent=2))
        try:
            os.replace(staging, directory)  # replaces a missing or empty folder
        except OSError:
            if not marker.exists():  # another process did not just finish the same job
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


# --------------------------------------------------------------------------
# Choosing the source
# --------------------------------------------------------------------------


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
    if (root / _STANDIN_MARKER).exists():
        kind, what = "standin", STANDIN_DESCRIPTION
    elif root.name.startswith("imagenette2"):
        kind, what = "imagenette", f"Imagenette v2 ({root.name})"
    else:
        kind, what = "ALEXNET_TUT_DATA", "ImageNet-layout folder"
    return DataSource(root, kind, f"{what} at {_pretty(root)}{note}")


def _online(host: str = "s3.amazonaws.com", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _existing_folder(path: str | os.PathLike, label: str, hint: str) -> Path:
    """``path`` as a Path, or a one-line error naming it and what was expected."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise AlexnetTutError(f"{label} does not exist (expected an ImageNet-layout folder: {hint})")
    return folder


def resolve_source(profile, data_dir: Path | None = None) -> DataSource:
    """Pick the data folder following the book's data policy; print nothing.

    In order: ``data_dir`` when given; else ``$ALEXNET_TUT_DATA``; else an
    Imagenette copy already extracted in `data_home`; else a download of
    Imagenette (160 px when the profile resizes to 160 or less, else 320 px)
    unless ``$ALEXNET_TUT_OFFLINE`` is set or the network is unreachable;
    else the offline stand-in, written once to ``<data_home>/alexnet-tut-standin``.
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
            note = " (offline: Imagenette could not be downloaded)"
        else:
            try:
                return _source_for(download_imagenette(size))
            except Exception as error:  # any failure falls back to the stand-in
                note = f" (Imagenette download failed: {error})"
    root = write_standin(data_home() / "alexnet-tut-standin")
    return _source_for(root, note)


# --------------------------------------------------------------------------
# Statistics and the tf.data pipelines
# --------------------------------------------------------------------------


@dataclass
class ColorPCA:
    """Principal components of RGB pixel values, pixels scaled to [0, 1].

    ``eigenvalues`` (3,) in decreasing order; ``eigenvectors`` (3, 3) with
    the components as *columns*, each signed so that its entries sum to >= 0.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def rgb_statistics(pixels: np.ndarray) -> tuple[np.ndarray, ColorPCA]:
    """Per-channel mean (0-255 units) and colour PCA ([0, 1] units) of uint8 RGB pixels.

    ``pixels`` is any array whose last axis is RGB. The PCA is the
    eigendecomposition of the 3×3 covariance of the pixels (``numpy.linalg.eigh``).
    """
    x = np.asarray(pixels, dtype=np.float64).reshape(-1, 3) / 255.0
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    return mean * 255.0, _pca_from_cov(cov)


def _pca_from_cov(cov: np.ndarray) -> ColorPCA:
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors = vectors * np.where(vectors.sum(axis=0) < 0, -1.0, 1.0)
    return ColorPCA(values.astype(np.float32), vectors.astype(np.float32))


@dataclass
class Datasets:
    """The training and evaluation pipelines, and what they were built from.

    Attributes:
        train: ``(images, labels)`` batches: float32 ``[B, S, S, 3]`` and int32
            ``[B]``; shuffled, random crop, mirror, PCA colour shift, minus ``mean``.
            Pixel units are 0-255 minus the mean (as in the paper and Caffe).
        val: the same for the validation images, centre crop, in order.
        val_ten_crop: ``(images, labels)`` batches with images
            ``[B, 10, S, S, 3]``: the four corner crops, the centre crop and
            the mirrors of those five (paper §4.1). A `tf.data.Dataset`; it
            shares ``val``'s decoded cache.
        class_names: readable class names; label ``i`` is ``class_names[i]``.
        num_train, num_val: images per split after caps and skips.
        mean: per-channel training mean, (3,) float32 in 0-255 units.
        pca: colour PCA of the training pixels (``[0, 1]`` units).
        report: `scan`'s report of the folder.
    """

    train: Any
    val: Any
    val_ten_crop: Any
    class_names: list[str]
    num_train: int
    num_val: int
    mean: np.ndarray
    pca: ColorPCA
    report: dict[str, Any] = field(repr=False, default_factory=dict)


def _pick(files: list[tuple[str, int]], cap: int | None, rng: np.random.Generator):
    """At most ``cap`` files per class, chosen at random with ``rng``, in folder order."""
    if cap is None:
        return files
    by_class: dict[int, list[tuple[str, int]]] = {}
    for item in files:
        by_class.setdefault(item[1], []).append(item)
    out = []
    for label in sorted(by_class):
        items = by_class[label]
        keep = sorted(rng.choice(len(items), size=min(cap, len(items)), replace=False))
        out += [items[i] for i in keep]
    return out


def decode_and_resize(path, resize: int):
    """Read an image file, resize its shorter side to ``resize`` and keep the centre square.

    Returns uint8 ``[resize, resize, 3]``. `tf.io.decode_image` reads the
    real format, so PNGs named .JPEG, CMYK and grayscale JPEGs all come out RGB.
    """
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    # Keep the centre square first, then resize only that: the same result, fewer pixels.
    # Bilinear without antialiasing: shrinking by less than 2x (320 or ~400 px to 256)
    # barely aliases, and antialiasing halves the decoding speed.
    side = tf.reduce_min(tf.shape(image)[:2])
    image = tf.image.resize_with_crop_or_pad(image, side, side)
    image = tf.image.resize(image, [resize, resize])
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def ten_crops(image, size: int):
    """The paper's ten test patches of a square image: 4 corners, centre, and their mirrors.

    ``image`` is ``[R, R, 3]``; returns ``[10, size, size, 3]`` in the order
    top-left, top-right, bottom-left, bottom-right, centre, then the mirrors.
    """
    import tensorflow as tf

    r = tf.shape(image)[0]
    far, mid = r - size, (r - size) // 2
    crops = [image[y:y + size, x:x + size] for y, x in
             ((0, 0), (0, far), (far, 0), (far, far), (mid, mid))]
    crops = tf.stack(crops)
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)


def load_datasets(
    root: Path,
    *,
    image_size: int,
    resize: int,
    batch_size: int,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    augment: bool = True,
    pca: bool = True,
    cache: bool | str = True,
    seed: int = 0,
    stats_images: int = 500,
) -> Datasets:
    """Build the paper's input pipelines (§4.1) from an ImageNet-layout folder.

    The folder is scanned first (`scan`): files TensorFlow cannot decode are
    left out and counted before any dataset is built, so an epoch never stops
    on a bad file. Each image is decoded, its shorter side resized to
    ``resize`` and its centre ``resize``×``resize`` square kept, once:
    ``cache=True`` keeps those uint8 squares in memory, a string caches them in
    files with that prefix (for data larger than memory), ``False`` decodes
    every epoch. Training then takes random ``image_size`` crops and mirrors
    (``augment``), adds the PCA colour shift (``pca``, `PCAColorAugmentation`
    with components computed here from up to ``stats_images`` training
    images), subtracts the per-channel training mean, batches and prefetches.

    The order of files is shuffled once with ``seed`` before caching, and
    again every epoch in a 4,096-image buffer; crops and mirrors use seeded
    stateless random ops, so a seed gives the same batches.
    """
    import tensorflow as tf

    from alexnet_tut.layers import PCAColorAugmentation

    if image_size > resize:
        raise AlexnetTutError(f"image_size {image_size} is larger than resize {resize}: crops must fit")
    root = Path(root).expanduser()
    report, files = _scan(root)
    rng = np.random.default_rng(seed)
    train_files = _pick(files["train"], max_train_per_class, rng)
    val_files = _pick(files["val"], max_val_per_class, rng)
    if not val_files:
        raise AlexnetTutError(f"{root / 'val'} holds no usable images for the training classes")
    train_files = [train_files[i] for i in rng.permutation(len(train_files))]
    auto = tf.data.AUTOTUNE

    def decoded(items, cache_name):
        paths = [str(root / rel) for rel, _ in items]
        labels = np.array([label for _, label in items], dtype=np.int32)
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        ds = ds.map(lambda p, y: (decode_and_resize(p, resize), y), num_parallel_calls=auto)
        ds = ds.ignore_errors(log_warning=True)  # last resort: the scan should have caught it
        if cache is True:
            ds = ds.cache()
        elif cache:
            ds = ds.cache(f"{cache}-{cache_name}")
        return ds

    # Mean and colour PCA from a sample of the training images.
    sample = train_files[: max(1, stats_images)]
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    sample_paths = [str(root / rel) for rel, _ in sample]
    sample_ds = (tf.data.Dataset.from_tensor_slices(sample_paths)
                 .map(lambda p: decode_and_resize(p, resize), num_parallel_calls=auto)
                 .ignore_errors().batch(64))
    for images in sample_ds:
        x = images.numpy().reshape(-1, 3).astype(np.float64) / 255.0
        total += x.sum(axis=0)
        outer += x.T @ x
        count += len(x)
    mean01 = total / count
    cov = (outer - count * np.outer(mean01, mean01)) / (count - 1)
    color_pca = _pca_from_cov(cov)
    mean = (mean01 * 255.0).astype(np.float32)

    jitter = PCAColorAugmentation(color_pca.eigenvalues, color_pca.eigenvectors, seed=seed)

    def normalise(images, labels):
        return tf.cast(images, tf.float32) - mean, labels

    def crop_flip(item, seeds):
        image, label = item
        if augment:
            image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed=seeds[0])
            image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
        else:
            image = tf.image.resize_with_crop_or_pad(image, image_size, image_size)
        return image, label

    def colour_shift(images, labels):
        # The shift is the same on every pixel, so draw it once per image by applying
        # the layer to a 1x1 black image. Sequential (the layer's random state), but tiny.
        offset = tf.zeros([tf.shape(images)[0], 1, 1, 3])
        if augment and pca:
            offset = 255.0 * jitter(offset, training=True)
        return images, labels, offset

    def apply_shift(images, labels, offset):  # the heavy pass, run in parallel
        return tf.cast(images, tf.float32) + (offset - mean), labels

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).batch(2)
    train = (decoded(train_files, "train")
             .shuffle(min(len(train_files), 4096), seed=seed, reshuffle_each_iteration=True))
    train = (tf.data.Dataset.zip(train, seeds)
             .map(crop_flip, num_parallel_calls=auto)
             .batch(batch_size)
             .map(colour_shift)
             .map(apply_shift, num_parallel_calls=auto)
             .prefetch(auto))

    val_base = decoded(val_files, "val")
    val = (val_base.map(lambda x, y: (tf.image.resize_with_crop_or_pad(x, image_size, image_size), y),
                        num_parallel_calls=auto)
           .batch(batch_size).map(normalise, num_parallel_calls=auto).prefetch(auto))
    val_ten_crop = (val_base.map(lambda x, y: (ten_crops(x, image_size), y), num_parallel_calls=auto)
                    .batch(batch_size).map(normalise, num_parallel_calls=auto).prefetch(auto))

    return Datasets(
        train=train, val=val, val_ten_crop=val_ten_crop, class_names=list(report["classes"]),
        num_train=len(train_files), num_val=len(val_files), mean=mean, pca=color_pca,
        report=report)


def load_profile_datasets(root: Path, profile, *, batch_size: int | None = None,
                          seed: int = 0, **kwargs: Any) -> Datasets:
    """:func:`load_datasets` at a profile's sizes: what ``train.run`` trains and validates on.

    ``profile`` is a :class:`alexnet_tut.profiles.Profile`; ``batch_size``
    defaults to its batch. Chapters call this to see the very images a run used.
    """
    return load_datasets(
        root, image_size=profile.image_size, resize=profile.resize,
        batch_size=batch_size or profile.batch_size,
        max_train_per_class=profile.max_train_per_class,
        max_val_per_class=profile.max_val_per_class, seed=seed, **kwargs)
