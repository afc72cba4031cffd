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
* ``.alexnet-tut-lock``: while a run is writing the folder, its process id.

Every file is written to a temporary name and renamed into place, so a crash
in the middle of a write leaves the previous version intact. Reading the
folder and its rules (the lock, what may be resumed, damaged files) live in
`alexnet_tut.runfolder`, which does not import Keras; its names are
available here too.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from alexnet_tut.errors import AlexnetTutError, one_line
from alexnet_tut.files import atomic_write_text, fsync_file
from alexnet_tut.runfolder import (  # noqa: F401 - part of this module's interface
    BACKUP_DIR, BEST_MODEL, CONFIG_JSON, HISTORY_CSV, LOCK_FILE, REPORT_JSON, TENSORBOARD_DIR,
    check_run_dir, check_settings, open_run_folder, read_config, read_history, run_started,
    trim_history, write_config)
from alexnet_tut import runfolder

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

    STATE_FILE = runfolder.STATE_FILE

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
        """The saved state's metadata (``epoch``, ``weights``, ``callbacks``, ``seeds``), or ``None``.

        A damaged ``state.json``, or one whose weights file is missing, is a
        one-line `AlexnetTutError` (`alexnet_tut.runfolder.read_state`).
        """
        return runfolder.read_state(Path(backup_dir))

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
        weights = Path(backup_dir) / state["weights"]
        try:
            model.load_weights(str(weights))
            for variable, value in zip(_seed_states(model), state.get("seeds", [])):
                variable.assign(np.asarray(value, dtype=variable.dtype))
        except Exception as error:  # h5py and Keras raise OSError, ValueError, KeyError...
            raise AlexnetTutError(
                f"cannot resume from {weights}: the file is damaged or belongs to another model "
                f"({one_line(error)[:200]}): start over with a new --out") from error
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
