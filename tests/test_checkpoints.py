"""The run folder: a backup that survives a torn write, the history, the best model, the settings."""

import json

import keras
import numpy as np
import pytest

from alexnet_tut import checkpoints, solver
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.recipe import get_recipe


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


def test_a_run_folder_refuses_a_rerun_and_other_settings(tmp_path):
    config = {"variant": "paper", "batch_size": 8}
    checkpoints.check_run_dir(tmp_path / "run", config, resume=False)  # a new folder is fine
    checkpoints.write_config(tmp_path / "run", config)
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == config
    with pytest.raises(AlexnetTutError, match="already holds a training run"):
        checkpoints.check_run_dir(tmp_path / "run", config, resume=False)
    checkpoints.check_run_dir(tmp_path / "run", config, resume=True)
    with pytest.raises(AlexnetTutError, match="started with batch_size=8, not 16"):
        checkpoints.check_run_dir(tmp_path / "run", {**config, "batch_size": 16}, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(AlexnetTutError, match="is a file, not a folder"):
        checkpoints.check_run_dir(tmp_path / "file", config, resume=False)
