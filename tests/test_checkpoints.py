"""The run folder: a backup that survives a torn write, the history, the best model, the settings."""

import json
import os

import keras
import numpy as np
import pytest

from alexnet_tut import checkpoints, solver
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.recipe import get_recipe
from datafiles import python_sleeper, write_lock


def tiny_model(dropout=0.0):
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dropout(dropout), keras.layers.Dense(3, name="fc8")])
    solver.compile_model(model, get_recipe("paper"))
    return model


DATA = (np.random.default_rng(0).normal(size=(6, 4, 4, 3)).astype("float32"), np.arange(6) % 3)


def test_backup_survives_a_torn_write_and_restores_weights_counters_and_dropout_state(tmp_path):
    model = tiny_model(dropout=0.5)
    schedule = solver.LearningRateSchedule(get_recipe())
    backup = checkpoints.ResumableBackup(tmp_path, extra_state={"schedule": schedule.get_state})
    x, y = DATA
    model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[schedule, backup])
    weights = model.get_layer("fc8").get_weights()
    seed_states = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    # A process killed while writing the next state leaves a partial file behind.
    (tmp_path / "partial-epoch00003-batch0000000.weights.h5").write_bytes(b"torn")

    fresh = tiny_model(dropout=0.5)
    state = checkpoints.ResumableBackup.restore(fresh, tmp_path)
    assert state["epoch"] == 2 and state["callbacks"]["schedule"] == schedule.get_state()
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) == 2
    np.testing.assert_array_equal(fresh.get_layer("fc8").get_weights()[0], weights[0])
    for restored, saved in zip(fresh.non_trainable_variables, seed_states):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), saved)
    assert state["weights"] == "epoch00002-batch0000000.weights.h5"  # not the torn file


def test_an_empty_backup_folder_restores_nothing(tmp_path):
    assert checkpoints.ResumableBackup.restore(tiny_model(), tmp_path) is None


def test_backup_every_few_batches_restarts_the_interrupted_epoch(tmp_path):
    model = tiny_model()
    backup = checkpoints.ResumableBackup(tmp_path, save_freq=2)
    x, y = DATA
    backup.set_model(model)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[backup])
    state = checkpoints.ResumableBackup.read_state(tmp_path)
    assert (state["epoch"], state["batch"]) == (1, 0)  # the epoch's end came last
    backup.on_epoch_begin(1)
    backup.on_train_batch_end(1)
    state = checkpoints.ResumableBackup.read_state(tmp_path)
    assert (state["epoch"], state["batch"]) == (1, 2)  # epoch 2 is restarted on resume


def test_best_model_checkpoint_keeps_the_best_epoch_only(tmp_path):
    model = tiny_model()
    model.fit(*DATA, epochs=1, verbose=0)
    best = checkpoints.BestModelCheckpoint(tmp_path / "best.keras", initial_best=0.5)
    best.set_model(model)
    best.on_epoch_end(0, {"val_top1": 0.4})
    assert not (tmp_path / "best.keras").exists()  # worse than the resumed run's best
    best.on_epoch_end(1, {"val_top1": 0.7})
    saved = (tmp_path / "best.keras").stat().st_mtime_ns
    best.on_epoch_end(2, {"val_top1": 0.6})
    assert (tmp_path / "best.keras").stat().st_mtime_ns == saved
    assert not list(tmp_path.glob("partial-*"))
    assert isinstance(keras.saving.load_model(tmp_path / "best.keras").optimizer, solver.PaperSGD)


def test_history_is_trimmed_to_the_checkpointed_epochs(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    checkpoints.trim_history(tmp_path / "history.csv", 2)
    assert [row["epoch"] for row in checkpoints.read_history(tmp_path)] == [0.0, 1.0]
    assert checkpoints.read_history(tmp_path / "nowhere") == []


CONFIG = {"variant": "paper", "batch_size": 8, "recipe": {"name": "paper"}}


def started_run(out, config=CONFIG, epochs=1):
    """A run folder as a run leaves it after ``epochs`` saved epochs (with a small real backup)."""
    checkpoints.write_config(out, config)
    model = tiny_model()
    model.fit(*DATA, epochs=epochs, verbose=0,
              callbacks=[checkpoints.ResumableBackup(out / "backup")])
    return out


def test_a_run_folder_refuses_a_rerun_and_other_settings(tmp_path):
    out = tmp_path / "run"
    checkpoints.check_run_dir(out, CONFIG, resume=False)  # a new folder is fine
    checkpoints.write_config(out, CONFIG)
    assert json.loads((out / "config.json").read_text()) == CONFIG
    # Issue 18, item 8: a run that failed before its first checkpoint was "already a run".
    checkpoints.check_run_dir(out, {**CONFIG, "batch_size": 16}, resume=False)
    started_run(out)
    with pytest.raises(AlexnetTutError, match="already holds a training run"):
        checkpoints.check_run_dir(out, CONFIG, resume=False)
    checkpoints.check_run_dir(out, CONFIG, resume=True)
    with pytest.raises(AlexnetTutError, match="started with batch_size=8, not batch_size=16"):
        checkpoints.check_run_dir(out, {**CONFIG, "batch_size": 16}, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(AlexnetTutError, match="is a file, not a folder"):
        checkpoints.check_run_dir(tmp_path / "file", CONFIG, resume=False)


def test_resuming_on_other_data_is_refused(tmp_path):
    """Issue 18, item 7: another --data with the same class count continued silently."""
    out = started_run(tmp_path / "run", {**CONFIG, "data": "/data/a", "class_ids": ["cat", "dog"]})
    before = checkpoints.read_config(out)
    with pytest.raises(AlexnetTutError, match="trained on the data in /data/a, not /data/b; pass "
                                              "--data /data/a") as error:
        checkpoints.check_settings(out, before, {"data": "/data/b"})
    assert "\n" not in str(error.value)
    with pytest.raises(AlexnetTutError, match=r"started with 2 classes \(cat, dog\), not 3 classes"):
        checkpoints.check_settings(out, before, {"class_ids": ["cat", "dog", "eel"]})
    checkpoints.check_settings(out, {k: v for k, v in before.items() if k != "data"},
                               {"data": "/data/b"})  # a folder from before data was recorded


def test_a_folder_of_someone_else_is_never_written(tmp_path):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "report.json").write_text("my report")
    with pytest.raises(AlexnetTutError, match="holds no alexnet-tut run .*report.json.*nothing was "
                                              "changed"):
        checkpoints.check_run_dir(mine, CONFIG, resume=False)
    (mine / "config.json").write_text('{"my": "settings"}')
    with pytest.raises(AlexnetTutError, match="config.json was not written by alexnet-tut"):
        checkpoints.check_run_dir(mine, CONFIG, resume=True)
    assert (mine / "report.json").read_text() == "my report"


@pytest.mark.parametrize("damage, message", [
    ("config", r"config.json is damaged \(not readable JSON"),
    ("state", r"state.json is damaged \(not readable JSON"),
    ("state fields", r"state.json is damaged \(it lacks the epoch"),
    ("missing weights", r"its weights file epoch00001-batch0000000.weights.h5 is missing"),
])
def test_damaged_run_files_are_named_in_one_line(tmp_path, damage, message):
    """Issue 18, item 4: JSON and FileNotFoundError tracebacks on --resume."""
    out = started_run(tmp_path / "run")
    if damage == "config":
        (out / "config.json").write_text('{"variant": "pap')
    elif damage == "state":
        state = out / "backup" / "state.json"
        state.write_text(state.read_text()[:20])
    elif damage == "state fields":
        (out / "backup" / "state.json").write_text("[1, 2]")
    else:
        next((out / "backup").glob("*.weights.h5")).unlink()
    with pytest.raises(AlexnetTutError, match=message) as error:
        checkpoints.check_run_dir(out, CONFIG, resume=True)
    assert "\n" not in str(error.value) and "new --out" in str(error.value)


def test_a_truncated_weights_file_is_named_in_one_line(tmp_path):
    out = started_run(tmp_path / "run")
    weights = next((out / "backup").glob("*.weights.h5"))
    weights.write_bytes(weights.read_bytes()[:3000])
    with pytest.raises(AlexnetTutError, match=f"cannot resume from .*{weights.name}: the file is "
                                              "damaged") as error:
        checkpoints.ResumableBackup.restore(tiny_model(), out / "backup")
    assert "\n" not in str(error.value) and "new --out" in str(error.value)


def test_history_stays_readable_with_a_second_header_or_a_torn_line(tmp_path):
    """Issue 18, item 3: two runs wrote two headers, and --resume died on int('epoch')."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,2.0\nepoch,loss\n1,1.5\n2,1.")
    assert [row["epoch"] for row in checkpoints.read_history(tmp_path)] == [0.0, 1.0, 2.0]
    checkpoints.trim_history(path, 2)
    assert path.read_text() == "epoch,loss\n0,2.0\n1,1.5\n"


def test_a_second_run_on_a_folder_in_use_is_refused_and_a_stale_lock_taken_over(tmp_path):
    """Issue 18, item 3: two runs on one folder at once."""
    out = tmp_path / "run"
    out.mkdir()
    owner = python_sleeper()
    try:
        write_lock(out / checkpoints.LOCK_FILE, owner.pid)
        with pytest.raises(AlexnetTutError, match=f"the run folder {out} is in use by process "
                                                  f"{owner.pid}") as error:
            with checkpoints.open_run_folder(out):
                pass
        assert "\n" not in str(error.value) and "choose another --out" in str(error.value)
    finally:
        owner.kill()
        owner.wait()
    with checkpoints.open_run_folder(out):  # the owner was killed: its lock is stale
        assert json.loads((out / checkpoints.LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(AlexnetTutError, match="in use by process"):  # not twice in one process
            with checkpoints.open_run_folder(out):
                pass
    assert not (out / checkpoints.LOCK_FILE).exists()


def test_an_unwritable_run_folder_is_refused_before_anything_else(tmp_path):
    """Issue 18, item 5: under a file (and, unless root, in a read-only folder)."""
    (tmp_path / "file").write_text("")
    with pytest.raises(AlexnetTutError, match="cannot create the run folder .*choose another --out"):
        with checkpoints.open_run_folder(tmp_path / "file" / "run"):
            pass
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o555)
        with pytest.raises(AlexnetTutError, match="choose another --out"):
            with checkpoints.open_run_folder(locked / "run"):
                pass


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with checkpoints.open_run_folder(tmp_path / "new"):
            checkpoints.write_config(tmp_path / "new", CONFIG)
            raise RuntimeError("the data did not load")
    assert not (tmp_path / "new").exists()
    out = tmp_path / "kept"
    with pytest.raises(RuntimeError):
        with checkpoints.open_run_folder(out):
            started_run(out)
            raise RuntimeError("killed in epoch 2")
    assert checkpoints.run_started(out) and not (out / checkpoints.LOCK_FILE).exists()
