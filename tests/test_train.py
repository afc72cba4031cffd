"""Whole training runs: checkpoints that survive SIGKILL, resume, reports, several devices, one-line errors.

Every run here is the ``smoke`` profile on the offline stand-in (67 px crops,
a few dozen images), so each takes seconds on two CPU cores.
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import keras
import numpy as np
import pytest

from alexnet_tut import checkpoints, data, solver, train
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.evaluation import ten_crop_top1
from alexnet_tut.profiles import PROFILES
from alexnet_tut.recipe import get_recipe
from datafiles import SMALL, copy_of, python_sleeper, undecodable, write_lock

EPOCHS = 4  # enough for the loss to fall, and for a kill in the middle


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return data.write_standin(tmp_path_factory.mktemp("data") / "standin")


@pytest.fixture(scope="module")
def reference(standin, tmp_path_factory):
    """One uninterrupted smoke run: its folder and report."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    report = train.run(standin, out, profile="smoke", epochs=EPOCHS, verbose=0)
    return out, report


def steps_per_epoch(report):
    return math.ceil(report["num_train"] / report["batch_size"])


# --------------------------------------------------------------------------
# A whole run
# --------------------------------------------------------------------------

def test_smoke_run_writes_checkpoints_logs_and_report(reference):
    out, report = reference
    assert (out / "best.keras").is_file()
    assert (out / "history.csv").is_file()
    assert (out / "config.json").is_file()
    state = json.loads((out / "backup" / "state.json").read_text())
    assert state["epoch"] == EPOCHS
    assert (out / "backup" / state["weights"]).is_file()
    assert not list(out.rglob("partial-*")), "a temporary file was left behind"
    if checkpoints.tensorboard_callbacks(out / "unused"):
        assert list((out / "tensorboard").rglob("events.out.tfevents.*"))

    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk.keys() == report.keys()
    assert (on_disk["top1"], on_disk["ten_crop_top1"]) == (report["top1"], report["ten_crop_top1"])
    for key in ("top1", "top5", "ten_crop_top1"):
        assert 0.0 <= report[key] <= 1.0
    assert report["top5"] >= report["top1"]
    assert report["images_per_sec"] > 0 and report["wall_time_s"] > 0
    assert report["epochs"] == report["epochs_in_history"] == EPOCHS
    assert report["profile"] == "smoke" and report["data_kind"] == "standin"
    assert "stand-in" in report["data_source"]
    assert report["iterations"] == EPOCHS * steps_per_epoch(report)

    best = keras.saving.load_model(out / "best.keras")
    assert best.output_shape == (None, report["num_classes"])


def test_history_has_one_row_per_epoch_with_the_paper_metrics(reference):
    out, _ = reference
    history = checkpoints.read_history(out)
    assert [int(row["epoch"]) for row in history] == list(range(EPOCHS))
    for column in ("loss", "top1", "top5", "val_loss", "val_top1", "val_top5",
                   "learning_rate", "images_per_sec"):
        assert column in history[0]
    assert history[0]["learning_rate"] == pytest.approx(0.01 * 8 / 128)  # smoke: batch 8


def test_loss_decreases_on_the_standin(reference):
    out, _ = reference
    history = checkpoints.read_history(out)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_loss_decreases_in_the_cpu_profile(standin, tmp_path):
    # The cpu profile's sizes and recipe (127-pixel crops, batch 32, learning
    # rate 0.0025), on fewer images and epochs so that the test stays short.
    tiny_cpu = replace(PROFILES["cpu"], epochs=3, max_train_per_class=24, max_val_per_class=8,
                       standin_only=True)
    report = train.run(standin, tmp_path / "cpu", profile=tiny_cpu, verbose=0)
    losses = [row["loss"] for row in checkpoints.read_history(tmp_path / "cpu")]
    assert losses[0] > losses[1] > losses[2], losses
    assert report["top1"] > 2 / report["num_classes"]  # better than twice chance


# --------------------------------------------------------------------------
# SIGKILL in the middle of an epoch, then --resume
# --------------------------------------------------------------------------

CHILD = """
import sys, time, keras
from alexnet_tut import train

class StallInSecondEpoch(keras.callbacks.Callback):
    # Stand in for a long epoch: stop in the middle of epoch 2 and say so.
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 1:
            open(sys.argv[3], "w").close()
            time.sleep(600)

train.run(sys.argv[1], sys.argv[2], profile="smoke", epochs={epochs}, verbose=0,
          callbacks=[StallInSecondEpoch()])
"""


def test_sigkill_mid_epoch_then_resume_loses_nothing(standin, reference, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "in-second-epoch"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(epochs=EPOCHS)))
    child = subprocess.Popen([sys.executable, str(script), str(standin), str(out), str(marker)],
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached its second epoch"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert checkpoints.ResumableBackup.read_state(out / "backup")["epoch"] == 1
    assert not (out / "report.json").exists()

    report = train.run(standin, out, profile="smoke", epochs=EPOCHS, resume=True, verbose=0)

    _, uninterrupted = reference
    history = checkpoints.read_history(out)
    assert [int(row["epoch"]) for row in history] == list(range(EPOCHS))  # once each
    assert report["resumed_from_epoch"] == 1
    assert report["epochs_in_history"] == EPOCHS
    # The optimizer's step counter came back from the checkpoint: no step was
    # lost or repeated, and the partial second epoch was run again from its start.
    assert report["iterations"] == uninterrupted["iterations"] == EPOCHS * steps_per_epoch(report)
    # Same recipe, same data, same seed: the same result up to run-to-run noise
    # (24 validation images: one image is 4 %).
    assert abs(report["top1"] - uninterrupted["top1"]) <= 0.25
    assert report["val_loss"] == pytest.approx(uninterrupted["val_loss"], rel=0.25)
    assert history[-1]["loss"] < history[0]["loss"]


def test_a_finished_run_resumes_to_the_same_report(standin, reference):
    out, report = reference
    again = train.run(standin, out, profile="smoke", epochs=EPOCHS, resume=True, verbose=0)
    assert again["resumed_from_epoch"] == EPOCHS
    assert again["iterations"] == report["iterations"]
    assert again["top1"] == pytest.approx(report["top1"])
    assert len(checkpoints.read_history(out)) == EPOCHS


# --------------------------------------------------------------------------
# Mistakes a user can make: one-line errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "--epochs must be"),
    ({"batch_size": -1}, "--batch-size must be"),
    ({"variant": "vgg"}, "unknown variant 'vgg'"),
    ({"profile": "huge"}, "unknown profile 'huge'"),
    ({"recipe": "adam"}, "unknown recipe 'adam'"),
])
def test_bad_arguments_are_one_line_errors(standin, tmp_path, kwargs, message):
    with pytest.raises(AlexnetTutError, match=message) as error:
        train.run(standin, tmp_path / "run", verbose=0, **kwargs)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_bad_data_folders_are_one_line_errors(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(AlexnetTutError) as error:
            train.run(folder, tmp_path / "run", profile="smoke", verbose=0)
        assert "\n" not in str(error.value)
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_run_folder_is_never_overwritten_or_resumed_with_other_settings(standin, reference):
    out, _ = reference
    with pytest.raises(AlexnetTutError, match="already holds a training run"):
        train.run(standin, out, profile="smoke", verbose=0)
    with pytest.raises(AlexnetTutError, match="started with variant='paper'"):
        train.run(standin, out, profile="smoke", variant="one_tower", resume=True, verbose=0)


# --------------------------------------------------------------------------
# Issue 18: careless and hostile input
# --------------------------------------------------------------------------

def test_images_that_pass_the_scan_but_do_not_decode_are_dropped_and_counted(standin, tmp_path,
                                                                             capsys):
    """Issue 18, item 1: such a file stopped training in epoch 1 (FailedPreconditionError)."""
    root = data.write_standin(tmp_path / "small", **SMALL)  # below the smoke caps: all are used
    bad = [next((root / "train" / "cat").glob("*.JPEG")), next((root / "train" / "coffee").glob("*.JPEG")),
           next((root / "val" / "rocket").glob("*.JPEG"))]
    for path in bad:
        path.write_bytes(undecodable(path.read_bytes()))
    assert data.scan(root)["skipped"] == []  # their structure is whole
    report = train.run(root, tmp_path / "run", profile="smoke", epochs=2, verbose=1)
    assert (report["undecodable_train"], report["undecodable_val"]) == (2, 1)
    assert (report["num_train"], report["num_val"]) == (36, 17)
    assert report["iterations"] == 2 * steps_per_epoch(report)  # the epochs kept their length
    out = capsys.readouterr().out
    assert "note: 2 of 36 training images passed the folder scan but TensorFlow could not decode" in out
    assert "note: 1 of 18 validation images" in out


def test_no_decodable_training_image_is_one_line_and_leaves_nothing(standin, tmp_path):
    root = copy_of(standin, tmp_path)
    for path in (root / "train").rglob("*.JPEG"):
        path.write_bytes(undecodable(path.read_bytes()))
    with pytest.raises(AlexnetTutError, match="no training image .* could be decoded") as error:
        train.run(root, tmp_path / "run", profile="smoke", verbose=0)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_training_set_is_refused_or_lowered(standin, tmp_path, capsys):
    """Issue 18, item 6: batch 4096 on 48 images scaled the learning rate to 0.32."""
    with pytest.raises(AlexnetTutError, match="--batch-size 4,096 is larger than the training set "
                                              r"\(48 images\): choose at most 48") as error:
        train.run(standin, tmp_path / "run", profile="smoke", batch_size=4096, verbose=0)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
    big_batch = replace(PROFILES["smoke"], batch_size=64, epochs=1)
    report = train.run(standin, tmp_path / "run", profile=big_batch, verbose=1)
    assert report["batch_size"] == 48 and report["iterations"] == 1
    assert "training with batches of 48" in capsys.readouterr().out
    history = checkpoints.read_history(tmp_path / "run")
    assert history[0]["learning_rate"] == pytest.approx(0.01 * 48 / 128)  # the batch used
    again = train.run(standin, tmp_path / "run", profile=big_batch, resume=True, verbose=0)
    assert again["resumed_from_epoch"] == 1  # the lowered batch is the run's own


def test_resuming_on_other_data_is_refused_in_one_line(standin, reference, tmp_path):
    """Issue 18, item 7: other class count: a ValueError traceback; same count: silently on."""
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    fewer = copy_of(standin, tmp_path)
    shutil.rmtree(fewer / "train" / "tissue")
    shutil.rmtree(fewer / "val" / "tissue")
    same_classes = tmp_path / "same"
    shutil.copytree(standin, same_classes)
    for folder, message in ((fewer, "it was trained on the data in"),
                            (same_classes, f"pass --data {standin.resolve()}")):
        with pytest.raises(AlexnetTutError, match=message) as error:
            train.run(folder, out, profile="smoke", epochs=EPOCHS, resume=True, verbose=0)
        assert "\n" not in str(error.value)
    assert checkpoints.read_history(out) == checkpoints.read_history(reference[0])


def test_a_damaged_checkpoint_on_resume_is_named_in_one_line(standin, reference, tmp_path):
    """Issue 18, item 4: h5py, JSON and FileNotFoundError tracebacks on --resume."""
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    weights = next((out / "backup").glob("*.weights.h5"))
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(AlexnetTutError, match=f"{weights.name}: the file is damaged.*new --out") as error:
        train.run(standin, out, profile="smoke", epochs=EPOCHS, resume=True, verbose=0)
    assert "\n" not in str(error.value) and not (out / checkpoints.LOCK_FILE).exists()


def test_the_run_folder_is_checked_and_locked_before_the_data_is_touched(standin, tmp_path,
                                                                         monkeypatch):
    """Issue 18, items 3 and 5: a second run at once, and an unwritable --out, failed late."""
    def no_data(*args, **kwargs):
        raise AssertionError("the data was touched before the run folder was checked")

    monkeypatch.setattr(data, "resolve_source", no_data)
    (tmp_path / "file").write_text("")
    with pytest.raises(AlexnetTutError, match="cannot create the run folder"):
        train.run(standin, tmp_path / "file" / "run", profile="smoke", verbose=0)
    busy = tmp_path / "busy"
    busy.mkdir()
    owner = python_sleeper()
    try:
        write_lock(busy / checkpoints.LOCK_FILE, owner.pid)
        with pytest.raises(AlexnetTutError, match=f"in use by process {owner.pid}"):
            train.run(standin, busy, profile="smoke", verbose=0)
    finally:
        owner.kill()
        owner.wait()


def test_a_run_that_failed_before_its_first_epoch_can_be_run_again(standin, tmp_path):
    """Issue 18, item 8: a failed run left config.json, and a plain rerun was refused."""
    out = tmp_path / "run"
    out.mkdir()  # a folder the user made: kept, with the failed run's config.json

    class Fail(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("power cut in epoch 1")

    with pytest.raises(RuntimeError):
        train.run(standin, out, profile="smoke", epochs=1, verbose=0, callbacks=[Fail()])
    assert (out / "config.json").exists() and not checkpoints.run_started(out)
    report = train.run(standin, out, profile="smoke", epochs=1, verbose=0)
    assert report["epochs_in_history"] == 1


# --------------------------------------------------------------------------
# Several devices
# --------------------------------------------------------------------------

MIRRORED_CHILD = """
import json, sys
import tensorflow as tf
from alexnet_tut import devices, distribute, train

cpus = distribute.split_cpu(2)
devices.choose_strategy = lambda: tf.distribute.MirroredStrategy(cpus)
report = train.run(sys.argv[1], sys.argv[2], profile="smoke", epochs=2, verbose=0)
print(json.dumps(report))
"""


def test_a_run_trains_data_parallel_on_two_devices_with_mirrored_strategy(standin, tmp_path):
    # What a machine with two GPUs does, on two logical CPU devices: the
    # recipe, checkpoints and report under MirroredStrategy, in a fresh process.
    out = tmp_path / "mirrored"
    child = subprocess.run([sys.executable, "-c", MIRRORED_CHILD, str(standin), str(out)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["iterations"] == 2 * steps_per_epoch(report)
    assert len(checkpoints.read_history(out)) == 2 and (out / "best.keras").is_file()
    assert checkpoints.ResumableBackup.read_state(out / "backup")["epoch"] == 2


def _train_on_local_workers(standin, out, *args, workers=2):
    """``alexnet-tut train`` on ``workers`` processes of this machine, each with its own TF_CONFIG."""
    from alexnet_tut import distribute

    cluster = [f"localhost:{port}" for port in distribute.free_ports(workers)]
    procs = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": json.dumps(distribute.tf_config(cluster, index)),
               "CUDA_VISIBLE_DEVICES": "-1", "ALEXNET_TUT_PROFILE": "smoke"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "alexnet_tut", "train", "--data", str(standin),
             "--out", str(out), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        results.append((proc.returncode, stdout, stderr))
    return results


def _weights(path):
    import h5py

    arrays = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_two_workers_train_resume_and_report_like_one_device(standin, tmp_path):
    # Several machines, as two processes of this one: TF_CONFIG, the
    # multi-worker strategy, Model.fit and every callback, then --resume.
    out = tmp_path / "workers"
    for returncode, _, stderr in _train_on_local_workers(standin, out, "--epochs", "1"):
        assert returncode == 0, stderr[-3000:]
    for returncode, stdout, stderr in _train_on_local_workers(standin, out, "--epochs", "2",
                                                              "--resume"):
        assert returncode == 0, stderr[-3000:]
        assert "resuming after epoch 1" in stdout
    chief, worker = out, out / "worker1"
    reports = [json.loads((folder / "report.json").read_text()) for folder in (chief, worker)]
    for report, folder in zip(reports, (chief, worker)):
        assert report["replicas"] == 2 and report["run_dir"] == str(folder)
        assert report["iterations"] == 2 * steps_per_epoch(report)  # the batch is global
        assert len(checkpoints.read_history(folder)) == 2 and (folder / "best.keras").is_file()
    # Mirrored: both workers end with the same weights, bit for bit.
    states = [checkpoints.ResumableBackup.read_state(folder / "backup") for folder in (chief, worker)]
    assert [state["epoch"] for state in states] == [2, 2]
    mine, theirs = (_weights(folder / "backup" / state["weights"])
                    for folder, state in zip((chief, worker), states))
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    # The report's numbers are the model's: one process scores the saved weights the same.
    prof = PROFILES["smoke"]
    datasets = data.load_datasets(standin, prof, batch_size=reports[0]["batch_size"])
    recipe = get_recipe("paper")
    model = solver.build_model("paper", prof.image_size, reports[0]["num_classes"], recipe)
    solver.compile_model(model, recipe, batch_size=reports[0]["batch_size"])
    model.optimizer.build(model.trainable_variables)  # so the saved slots load too
    model.load_weights(chief / "backup" / states[0]["weights"])
    single = model.evaluate(datasets.val, verbose=0, return_dict=True)
    assert reports[0]["top1"] == pytest.approx(single["top1"])
    assert reports[0]["val_loss"] == pytest.approx(single["loss"], rel=1e-4)
    assert reports[0]["ten_crop_top1"] == pytest.approx(
        ten_crop_top1(model, datasets.val_ten_crop))


def test_workers_that_saved_different_epochs_refuse_to_resume(standin, tmp_path):
    out = tmp_path / "workers"
    for returncode, _, stderr in _train_on_local_workers(standin, out, "--epochs", "1"):
        assert returncode == 0, stderr[-3000:]
    shutil.rmtree(out / "worker1" / "backup")  # as if it died before its first save
    for returncode, _, stderr in _train_on_local_workers(standin, out, "--epochs", "2",
                                                         "--resume"):
        assert returncode == 2
        assert stderr.strip().splitlines()[-1] == (
            "error: cannot resume: the workers' backups end at different epochs [0, 1]; copy "
            "the backup/ folder of a worker at epoch 1 over the others' (all workers hold "
            "the same weights after the same epoch), then --resume again")
