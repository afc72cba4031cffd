"""A run folder's files, and the rules that keep them safe: one run at a time, nobody else's files touched.

`alexnet_tut.checkpoints` describes what a run folder holds and writes the
training state; this module reads the folder and guards it, without
importing Keras, so that ``alexnet-tut train`` refuses a bad ``--out`` in a
second instead of after TensorFlow has loaded:

* `open_run_folder` creates the folder, checks that it can be written, and
  holds a lock file (`LOCK_FILE`, with the owner's process id) for the whole
  run, so that a second run on the same folder refuses in one line; the lock
  of a killed run is recognised as stale. A folder this call created is
  removed again when the run fails before its first saved epoch.
* `check_run_dir` refuses a folder that holds files of someone else, a run
  that is already started (without ``--resume``), a resume with other
  settings or other data, and damaged files, each in one line.
* `read_state`, `read_config`, `read_history` read the folder's files and
  say in one line which one is damaged.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from alexnet_tut import locks
from alexnet_tut.errors import AlexnetTutError, one_line
from alexnet_tut.files import atomic_write_text

BACKUP_DIR = "backup"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
TENSORBOARD_DIR = "tensorboard"
CONFIG_JSON = "config.json"
REPORT_JSON = "report.json"
STATE_FILE = "state.json"
CACHE_DIR = "cache"
LOCK_FILE = ".alexnet-tut-lock"

#: What a run writes before its config.json (the lock, a disk cache, other workers' folders):
#: a folder without config.json that holds anything else is not a run's.
_BEFORE_CONFIG = re.compile(r"(\.alexnet-tut-lock.*|cache|worker\d+|partial-config\.json)")

#: The keys every config.json this package writes has.
_CONFIG_KEYS = ("variant", "batch_size", "recipe")

_START_OVER = "start over with a new --out"


def _damaged(path: Path, why: str, what_to_do: str = _START_OVER) -> AlexnetTutError:
    return AlexnetTutError(f"{path} is damaged ({why}): {what_to_do}")


# --------------------------------------------------------------------------
# Reading the folder's files
# --------------------------------------------------------------------------

def _read_json(path: Path):
    """The JSON in ``path``; a file that is not readable JSON is a one-line error naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise _damaged(path, f"not readable JSON: {one_line(error)}") from error


def read_config(out: Path) -> dict | None:
    """The run's ``config.json``, or ``None``; a damaged or foreign file is a one-line error."""
    path = Path(out) / CONFIG_JSON
    if not path.exists():
        return None
    config = _read_json(path)
    if not isinstance(config, dict) or not all(key in config for key in _CONFIG_KEYS):
        raise AlexnetTutError(
            f"{path} was not written by alexnet-tut (it lacks {', '.join(_CONFIG_KEYS)}): "
            "choose another --out; nothing was changed")
    return config


def read_state(backup_dir: Path) -> dict | None:
    """The saved training state's metadata (``backup/state.json``), or ``None`` when there is none.

    The state names its weights file; a state that cannot be read, lacks its
    fields, or names a weights file that is missing is a one-line error that
    says which file is damaged.
    """
    path = Path(backup_dir) / STATE_FILE
    if not path.exists():
        return None
    state = _read_json(path)
    if (not isinstance(state, dict) or not isinstance(state.get("epoch"), int)
            or state["epoch"] < 0 or not isinstance(state.get("weights"), str)
            or Path(state["weights"]).name != state["weights"]):
        raise _damaged(path, "it lacks the epoch or the weights file it belongs to")
    weights = Path(backup_dir) / state["weights"]
    if not weights.is_file():
        raise AlexnetTutError(
            f"cannot resume from {backup_dir}: its weights file {state['weights']} is missing: "
            f"{_START_OVER}")
    return state


def run_started(out: Path) -> bool:
    """Whether a run in ``out`` has saved at least one epoch (or finished): then it can be resumed."""
    out = Path(out)
    return (out / BACKUP_DIR / STATE_FILE).exists() or (out / REPORT_JSON).exists()


def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The per-epoch history of a run (``history.csv``), one dict per epoch, numbers as floats.

    Rows that are not numbers (a second header, a line torn by a crash) are left out.
    """
    path = Path(run_dir) / HISTORY_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    history = []
    for row in rows:
        try:
            history.append({k: float(v) if v not in ("", None) else math.nan
                            for k, v in row.items() if k is not None})
        except (TypeError, ValueError):
            continue
    return history


def _epoch_of(line: str, columns: int) -> int | None:
    fields = line.rstrip("\r\n").split(",")
    if len(fields) != columns:
        return None
    try:
        return int(fields[0])
    except ValueError:
        return None


def trim_history(path: Path, epochs_done: int) -> None:
    """Keep the rows of the first ``epochs_done`` epochs: later ones were not checkpointed.

    Also drops what is not a row of this history (a repeated header, a line a
    crash cut short), so that the file stays one header and one row per epoch.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if not lines:
        return
    header, body = lines[0], lines[1:]
    columns = len(header.rstrip("\r\n").split(","))
    kept, seen = [], set()
    for line in body:
        epoch = _epoch_of(line, columns)
        if epoch is not None and epoch < epochs_done and epoch not in seen:
            kept.append(line if line.endswith("\n") else line + "\n")
            seen.add(epoch)
    if kept != body:
        atomic_write_text(path, header + "".join(kept))


# --------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------

def _describe(key: str, value) -> str:
    if key == "class_ids" and isinstance(value, list):
        shown = ", ".join(map(str, value[:4])) + (", ..." if len(value) > 4 else "")
        return f"{len(value)} classes ({shown})"
    return f"{key}={value!r}"


def check_settings(out: Path, before: dict, config: dict) -> None:
    """Refuse to resume ``out`` with settings or data other than those it was started with.

    Keys the run's ``config.json`` does not record (a run folder from an
    earlier version) are not compared.
    """
    for key, value in config.items():
        if key not in before or before[key] == value:
            continue
        if key == "data":
            raise AlexnetTutError(
                f"cannot resume {out}: it was trained on the data in {before[key]}, not {value}; "
                f"pass --data {before[key]} or choose another --out")
        raise AlexnetTutError(
            f"cannot resume {out}: it was started with {_describe(key, before[key])}, "
            f"not {_describe(key, value)}; resume with the same settings or choose another --out")


def check_run_dir(out: Path, config: dict, resume: bool) -> None:
    """Refuse, in one line, a run folder this run must not write into.

    A new or empty folder is fine, and so is the folder of a run that never
    saved an epoch (its files are this package's; they are replaced). Refused:
    a path that is a file; a folder with files of someone else and no run in
    it; a damaged ``config.json`` or backup; a started run without
    ``resume``; and with ``resume``, other settings (`check_settings`).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AlexnetTutError(f"--out {out} is a file, not a folder")
    if not out.exists():
        return
    before = read_config(out)
    if before is None:
        foreign = sorted(p.name for p in out.iterdir() if not _BEFORE_CONFIG.fullmatch(p.name))
        if foreign:
            raise AlexnetTutError(
                f"{out} is not empty and holds no alexnet-tut run ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}): choose a new or empty folder for --out; "
                "nothing was changed")
        return
    if not run_started(out):
        return  # a run that failed before its first checkpoint: start it afresh
    read_state(out / BACKUP_DIR)  # a damaged backup is refused now, not after loading the data
    if not resume:
        raise AlexnetTutError(
            f"{out} already holds a training run: pass --resume to continue it, "
            "or choose another --out")
    check_settings(out, before, config)


def write_config(out: Path, config: dict) -> None:
    """Record the run's settings when it starts (a run that never saved an epoch is started afresh)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_JSON).exists() or not run_started(out):
        atomic_write_text(out / CONFIG_JSON, json.dumps(config, indent=2))


@contextlib.contextmanager
def open_run_folder(out: Path, *, remove_if_failed: bool = True) -> Iterator[Path]:
    """Create ``out`` if needed and hold its lock for the block; one-line errors when it cannot be written.

    The lock file doubles as the check that the folder is writable, before
    any data is loaded. When the block fails and this call created the
    folder, and no epoch was saved, the folder is removed again (every file
    in it is this run's), so that a failed start leaves nothing behind.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AlexnetTutError(f"--out {out} is a file, not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AlexnetTutError(
            f"cannot create the run folder {out}: {error.strerror or error}; "
            "choose another --out") from error
    try:
        with locks.hold(out / LOCK_FILE, f"the run folder {out}", "choose another --out"):
            yield out
    except BaseException:
        if created and remove_if_failed and not run_started(out):
            shutil.rmtree(out, ignore_errors=True)
        raise


def fresh_cache_dir(out: Path) -> Path:
    """The run folder's ``cache/``, without the half-written files of a killed run.

    TensorFlow writes a disk cache during the first epoch and leaves a lock
    file behind if the process dies; such a cache can never be read. The
    folder is the package's own, so it is emptied and filled again.
    """
    folder = out / CACHE_DIR
    if folder.is_dir() and any(folder.glob("*.lockfile")):
        shutil.rmtree(folder)
    return folder
