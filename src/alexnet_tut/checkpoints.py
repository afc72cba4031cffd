"""A run folder: what a training run writes, and what it reads back to resume after a crash.

A run folder holds:

* ``config.json``: the settings the run started with; ``--resume`` refuses others.
* ``backup/``: the full training state after every epoch (`ResumableBackup`):
  weights with the optimizer's momentum, learning rate and step counter, the
  number of finished epochs, the learning-rate schedule's counters and the
  dropout layers' random state.
* ``history.csv``: one row per finished epoch (Keras's ``CSVLogger``).
* ``best.keras``: the model of the epoch with the best validation top-1
  (`BestModelCheckpoint`).
* ``tensorboard/``: Keras's TensorBoard logs, when ``tensorboard`` is installed.
* ``report.json``: the final report.

Every file is written to a temporary name and renamed into place, so a crash
in the middle of a write leaves the previous version intact.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.files import atomic_write_text, fsync_file

BACKUP_DIR = "backup"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
TENSORBOARD_DIR = "tensorboard"
CONFIG_JSON = "config.json"
REPORT_JSON = "report.json"

_SEED_STATE = "seed_generator_state"


class ResumableBackup(keras.callbacks.Callback):
    """Save the whole training state after every epoch, so that a killed run can continue.

    Keras's own ``BackupAndRestore`` does the same with an ordinary write; this
    callback, written with Keras's public API only, adds:

    * Atomic writes: each state goes to a new weights file, then a small JSON
      pointer (``state.json``) is replaced with one ``os.replace``. A crash
      mid-write leaves the previous state in charge.
    * The state Keras does not save with the weights: the learning-rate
      schedule's counters (any ``extra_state`` providers) and the random state
      of the dropout layers, so that a resumed run continues as the
      uninterrupted one would have.

    Restoring is `restore`, called before ``fit``; ``fit(initial_epoch=...)``
    then continues from the saved epoch. With an integer ``save_freq`` the
    state is also saved every that many batches; as with Keras's callback, a
    resumed run then restarts the interrupted epoch from those weights.
    """

    STATE_FILE = "state.json"

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 extra_state: dict[str, Callable[[], dict]] | None = None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.extra_state = extra_state or {}
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if isinstance(self.save_freq, int) and (batch + 1) % self.save_freq == 0:
            self.save(epochs_done=self._epoch, batch=batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self.save(epochs_done=epoch + 1, batch=0)

    def save(self, epochs_done: int, batch: int) -> None:
        """Write the state after ``epochs_done`` finished epochs (and ``batch`` batches of the next)."""
        backup = self.backup_dir
        backup.mkdir(parents=True, exist_ok=True)
        name = f"epoch{epochs_done:05d}-batch{batch:07d}.weights.h5"
        partial = backup / f"partial-{name}"
        self.model.save_weights(str(partial), overwrite=True)
        fsync_file(partial)
        os.replace(partial, backup / name)
        state = {
            "epoch": epochs_done,
            "batch": batch,
            "weights": name,
            "callbacks": {key: provide() for key, provide in self.extra_state.items()},
            "seeds": [keras.ops.convert_to_numpy(v).tolist() for v in _seed_states(self.model)],
        }
        atomic_write_text(backup / self.STATE_FILE, json.dumps(state, indent=1))
        for old in backup.glob("*.weights.h5"):  # only now is the old state unneeded
            if old.name != name:
                old.unlink(missing_ok=True)

    @classmethod
    def read_state(cls, backup_dir: str | os.PathLike) -> dict | None:
        """The saved state's metadata (``epoch``, ``weights``, ``callbacks``, ``seeds``), or ``None``."""
        path = Path(backup_dir) / cls.STATE_FILE
        if not path.exists():
            return None
        return json.loads(path.read_text())

    @classmethod
    def restore(cls, model: keras.Model, backup_dir: str | os.PathLike) -> dict | None:
        """Load the saved state into a compiled ``model``; return its metadata, or ``None``.

        Call it inside the distribution strategy's scope, where the model was
        built: the optimizer's variables are created here before the weights
        are read.
        """
        state = cls.read_state(backup_dir)
        if state is None:
            return None
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(Path(backup_dir) / state["weights"]))
        for variable, value in zip(_seed_states(model), state.get("seeds", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        return state


def _seed_states(model: keras.Model) -> list:
    """The random-number states of the model's layers (dropout), in a fixed order.

    Keras keeps them among the model's non-trainable variables but does not
    write them to a weights file.
    """
    return [v for v in model.non_trainable_variables if v.path.endswith(_SEED_STATE)]


class BestModelCheckpoint(keras.callbacks.Callback):
    """Keep the model of the epoch with the best ``monitor`` value, written atomically.

    ``best`` starts at ``initial_best`` (the best of the epochs already in a
    resumed run's history), so that a resumed run does not replace a better
    model with a worse one.
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val_top1",
                 initial_best: float | None = None):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = -math.inf if initial_best is None else float(initial_best)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not float(value) > self.best:
            return
        self.best = float(value)
        partial = self.path.with_name(f"partial-{self.path.name}")
        self.model.save(partial, overwrite=True)
        fsync_file(partial)
        os.replace(partial, self.path)


def tensorboard_callbacks(log_dir: Path) -> list[keras.callbacks.Callback]:
    """Keras's ``TensorBoard`` callback (per-epoch scalars), if the ``tensorboard`` package is installed.

    TensorFlow 2.21 no longer installs TensorBoard itself; without it the run
    still has the CSV history.
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return []
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)]


# --------------------------------------------------------------------------
# The history
# --------------------------------------------------------------------------

def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The per-epoch history of a run (``history.csv``), one dict per epoch, numbers as floats."""
    path = Path(run_dir) / HISTORY_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            for row in rows]


def trim_history(path: Path, epochs_done: int) -> None:
    """Keep the rows of the first ``epochs_done`` epochs: later ones were not checkpointed."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if not lines:
        return
    header, body = lines[0], lines[1:]
    kept = [line for line in body if line.strip() and int(line.split(",", 1)[0]) < epochs_done]
    if len(kept) != len(body):
        atomic_write_text(path, header + "".join(kept))


# --------------------------------------------------------------------------
# The run's settings
# --------------------------------------------------------------------------

def check_run_dir(out: Path, config: dict, resume: bool) -> None:
    """Refuse to overwrite a run, or to resume one with different settings."""
    if out.exists() and not out.is_dir():
        raise AlexnetTutError(f"--out {out} is a file, not a folder")
    config_path = out / CONFIG_JSON
    if not config_path.exists():
        return
    if not resume:
        raise AlexnetTutError(
            f"{out} already holds a training run: pass --resume to continue it, "
            "or choose another --out")
    before = json.loads(config_path.read_text())
    for key, value in config.items():
        if before.get(key) != value:
            raise AlexnetTutError(
                f"cannot resume {out}: it was started with {key}={before.get(key)!r}, "
                f"not {value!r}")


def write_config(out: Path, config: dict) -> None:
    """Record the run's settings once, when it starts."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_JSON).exists():
        atomic_write_text(out / CONFIG_JSON, json.dumps(config, indent=2))
