"""Training: the paper's recipe, checkpoints that survive SIGKILL, reports, one-line errors.

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
from pathlib import Path

import keras
import numpy as np
import pytest

from alexnet_tut import data, train
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.profiles import PROFILES

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
    if train.tensorboard_callbacks(out / "unused"):
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
    history = train.read_history(out)
    assert [int(row["epoch"]) for row in history] == list(range(EPOCHS))
    for column in ("loss", "top1", "top5", "val_loss", "val_top1", "val_top5",
                   "learning_rate", "images_per_sec"):
        assert column in history[0]
    assert history[0]["learning_rate"] == pytest.approx(0.01 * 8 / 128)  # smoke: batch 8


def test_loss_decreases_on_the_standin(reference):
    out, _ = reference
    history = train.read_history(out)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_loss_decreases_in_the_cpu_profile(standin, tmp_path):
    # The cpu profile's sizes and recipe (127-pixel crops, batch 32, learning
    # rate 0.0025), on fewer images and epochs so that the test stays short.
    tiny_cpu = replace(PROFILES["cpu"], epochs=3, max_train_per_class=24, max_val_per_class=8,
                       standin_only=True)
    report = train.run(standin, tmp_path / "cpu", profile=tiny_cpu, verbose=0)
    losses = [row["loss"] for row in train.read_history(tmp_path / "cpu")]
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
    assert train.ResumableBackup.read_state(out / "backup")["epoch"] == 1
    assert not (out / "report.json").exists()

    report = train.run(standin, out, profile="smoke", epochs=EPOCHS, resume=True, verbose=0)

    _, uninterrupted = reference
    history = train.read_history(out)
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
    assert len(train.read_history(out)) == EPOCHS


# --------------------------------------------------------------------------
# The pieces of the recipe
# --------------------------------------------------------------------------

def tiny_model(num_classes=3):
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, name="fc8")])
    train.compile_model(model, train.get_recipe("paper"))
    return model


def test_learning_rate_is_divided_by_ten_at_most_three_times():
    model = tiny_model()
    plateau = train.plateau_callback(train.get_recipe("paper", plateau_patience=1))
    plateau.set_model(model)
    plateau.on_train_begin()
    rates = []
    for epoch in range(12):  # validation accuracy never improves after epoch 0
        plateau.on_epoch_end(epoch, {"val_top1": 0.5})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    assert sorted(set(rates), reverse=True) == pytest.approx([1e-2, 1e-3, 1e-4, 1e-5])
    assert rates[-1] == pytest.approx(1e-5)


def test_recipe_is_the_papers():
    recipe = train.get_recipe()
    assert (recipe.learning_rate, recipe.momentum, recipe.weight_decay, recipe.dropout) == (
        0.01, 0.9, 0.0005, 0.5)
    model = train.build_model("paper", 67, 3, recipe)
    # The decay lives in the optimizer, so the logged loss is the cross-entropy alone.
    assert model.get_layer("conv1").kernel_regularizer is None and not model.losses
    assert model.get_layer("drop6").rate == 0.5
    train.compile_model(model, recipe, batch_size=128)
    assert isinstance(model.optimizer, train.PaperSGD)
    assert float(model.optimizer.momentum) == pytest.approx(0.9)
    assert model.optimizer.paper_weight_decay == pytest.approx(0.0005)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)
    top5 = [m for m in train.accuracy_metrics(3) if m.name == "top5"][0]
    assert top5._fn_kwargs["k"] == 3  # three classes: top-5 means top-3


def test_learning_rate_scales_with_the_batch_from_the_papers_128():
    recipe = train.get_recipe()
    assert recipe.learning_rate_for(128) == pytest.approx(0.01)
    assert recipe.learning_rate_for(32) == pytest.approx(0.0025)
    assert recipe.min_learning_rate(32) == pytest.approx(0.0025e-3)
    model = tiny_model()
    train.compile_model(model, recipe, batch_size=8)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        0.01 * 8 / 128)


def _sgd_steps_in_numpy(w, grads, lr, momentum, decay, decayed):
    """The paper's §5 update, written out: v <- 0.9 v - decay·lr·w - lr·grad; w <- w + v."""
    w, v = w.copy(), np.zeros_like(w)
    for g in grads:
        v = momentum * v - (decay * lr * w if decayed else 0.0) - lr * g
        w = w + v
    return w


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_paper_sgd_is_the_papers_update_rule_on_kernels_and_spares_biases(compiled):
    rng = np.random.default_rng(0)
    layer = keras.layers.Dense(3, name="fc")
    layer.build((None, 4))
    kernel0 = rng.normal(size=(4, 3)).astype("float32")
    bias0 = rng.normal(size=3).astype("float32")
    layer.set_weights([kernel0, bias0])
    optimizer = train.PaperSGD(learning_rate=0.1, momentum=0.9, paper_weight_decay=0.05)
    optimizer.build([layer.kernel, layer.bias])
    kernel_grads = [rng.normal(size=(4, 3)).astype("float32") for _ in range(3)]
    bias_grads = [rng.normal(size=3).astype("float32") for _ in range(3)]

    def apply(gk, gb):
        optimizer.apply_gradients([(gk, layer.kernel), (gb, layer.bias)])

    if compiled:  # as inside Model.fit; on TensorFlow PaperSGD's update is an XLA function
        if keras.backend.backend() != "tensorflow":
            pytest.skip("tf.function needs the TensorFlow backend")
        import tensorflow as tf

        apply = tf.function(apply)
    for gk, gb in zip(kernel_grads, bias_grads):
        apply(gk, gb)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(
        kernel, _sgd_steps_in_numpy(kernel0, kernel_grads, 0.1, 0.9, 0.05, True), rtol=1e-5)
    np.testing.assert_allclose(
        bias, _sgd_steps_in_numpy(bias0, bias_grads, 0.1, 0.9, 0.05, False), rtol=1e-5)


def test_paper_sgd_without_momentum_still_decays_kernels():
    rng = np.random.default_rng(2)
    layer = keras.layers.Dense(2, use_bias=False)
    layer.build((None, 3))
    w0 = rng.normal(size=(3, 2)).astype("float32")
    layer.set_weights([w0])
    optimizer = train.PaperSGD(learning_rate=0.1, momentum=0.0, paper_weight_decay=0.05)
    grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
    for g in grads:
        optimizer.apply_gradients([(g, layer.kernel)])
    np.testing.assert_allclose(
        layer.get_weights()[0], _sgd_steps_in_numpy(w0, grads, 0.1, 0.0, 0.05, True), rtol=1e-5)


def test_paper_sgd_runs_one_compiled_update_per_variable_on_tensorflow(record_calls):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused update is TensorFlow's path")
    calls = record_calls(train, "_fused_momentum_step")
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    optimizer = train.PaperSGD()
    optimizer.apply_gradients([(np.ones((3, 2), "float32"), layer.kernel),
                               (np.ones(2, "float32"), layer.bias)])
    assert calls == [(3, 2), (2,)]


def test_paper_sgd_matches_pytorch_sgd_with_weight_decay():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(5, 2)).astype("float32")
    grads = [rng.normal(size=(5, 2)).astype("float32") for _ in range(4)]
    layer = keras.layers.Dense(2, use_bias=False)
    layer.build((None, 5))
    layer.set_weights([w0])
    optimizer = train.PaperSGD(learning_rate=0.01, momentum=0.9, paper_weight_decay=5e-4)
    param = torch.nn.Parameter(torch.tensor(w0))
    reference = torch.optim.SGD([param], lr=0.01, momentum=0.9, weight_decay=5e-4)
    for g in grads:
        optimizer.apply_gradients([(g, layer.kernel)])
        param.grad = torch.tensor(g)
        reference.step()
    np.testing.assert_allclose(layer.get_weights()[0], param.detach().numpy(), rtol=1e-5)


def test_paper_sgd_round_trips_through_a_saved_model(tmp_path):
    model = tiny_model()
    model.fit(np.zeros((3, 4, 4, 3), "float32"), np.arange(3), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, train.PaperSGD)
    assert loaded.optimizer.paper_weight_decay == pytest.approx(0.0005)


def test_paper_init_sets_the_papers_biases():
    recipe = train.get_recipe(paper_init=True, paper_bias=0.1)  # Caffe's fallback
    model = train.build_model("paper", 67, 3, recipe)
    assert np.allclose(keras.ops.convert_to_numpy(model.get_layer("fc6").bias), 0.1)
    assert np.allclose(keras.ops.convert_to_numpy(model.get_layer("conv3").bias), 0.0)
    assert np.std(keras.ops.convert_to_numpy(model.get_layer("fc7").kernel)) == pytest.approx(
        0.01, rel=0.05)


def test_modern_recipe_warms_up_and_smooths_labels():
    recipe = train.get_recipe("modern")
    assert recipe.warmup_epochs and recipe.label_smoothing
    warmup = train.warmup_callback(recipe)
    lrs = [warmup.schedule(e, 0.5) for e in range(recipe.warmup_epochs + 1)]
    assert lrs[-2] == pytest.approx(0.01) and lrs[0] < 0.01 and lrs[-1] == 0.5
    assert train.warmup_callback(train.get_recipe("paper")) is None
    loss = train._SmoothedSparseCrossentropy(3, 0.1)
    logits = np.array([[2.0, 0.0, -1.0]], "float32")
    expected = keras.losses.categorical_crossentropy(
        np.array([[0.0, 1.0, 0.0]], "float32"), logits, from_logits=True, label_smoothing=0.1)
    assert float(loss(np.array([1]), logits)) == pytest.approx(float(expected[0]), rel=1e-5)


def test_ten_crop_averages_the_softmax_of_each_images_ten_patches():
    model = tiny_model()
    patches = np.random.default_rng(0).normal(size=(2, 10, 4, 4, 3)).astype("float32")
    got = train.ten_crop_probabilities(model, patches)
    for i in range(2):
        logits = keras.ops.convert_to_numpy(model(patches[i]))
        softmax = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(got[i], softmax.mean(axis=0), rtol=1e-5)
    labels = np.argmax(got, axis=-1)
    assert train.ten_crop_top1(model, [(patches, labels)]) == 1.0


def test_backup_survives_a_torn_write_and_restores_callback_counters(tmp_path):
    model = tiny_model()
    plateau = train.plateau_callback(train.get_recipe())
    backup = train.ResumableBackup(tmp_path, stateful={"plateau": (plateau, ("best", "wait"))})
    x, y = np.zeros((6, 4, 4, 3), "float32"), np.arange(6) % 3
    model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[plateau, backup])
    weights = model.get_layer("fc8").get_weights()
    # A process killed while writing the next state leaves a partial file behind.
    (tmp_path / "partial-epoch00003-batch0000000.weights.h5").write_bytes(b"torn")

    fresh, fresh_plateau = tiny_model(), train.plateau_callback(train.get_recipe())
    fresh_plateau.set_model(fresh)
    restore = train.ResumableBackup(
        tmp_path, stateful={"plateau": (fresh_plateau, ("best", "wait"))})
    restore.set_model(fresh)
    fresh_plateau.on_train_begin()
    restore.on_train_begin()
    assert fresh._initial_epoch == 2
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) == 2
    np.testing.assert_array_equal(fresh.get_layer("fc8").get_weights()[0], weights[0])
    assert (fresh_plateau.best, fresh_plateau.wait) == (plateau.best, plateau.wait)


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
# Several devices
# --------------------------------------------------------------------------

MIRRORED_CHILD = """
import json, sys
import tensorflow as tf
from alexnet_tut import distribute, train

devices = distribute.split_cpu(2)
train.choose_strategy = lambda: tf.distribute.MirroredStrategy(devices)
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
    assert len(train.read_history(out)) == 2 and (out / "best.keras").is_file()
    assert train.ResumableBackup.read_state(out / "backup")["epoch"] == 2


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
        assert len(train.read_history(folder)) == 2 and (folder / "best.keras").is_file()
    # Mirrored: both workers end with the same weights, bit for bit.
    states = [train.ResumableBackup.read_state(folder / "backup") for folder in (chief, worker)]
    assert [state["epoch"] for state in states] == [2, 2]
    mine, theirs = (_weights(folder / "backup" / state["weights"])
                    for folder, state in zip((chief, worker), states))
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    # The report's numbers are the model's: one process scores the saved weights the same.
    prof = PROFILES["smoke"]
    datasets = data.load_profile_datasets(standin, prof, batch_size=reports[0]["batch_size"])
    recipe = train.get_recipe("paper")
    model = train.build_model("paper", prof.image_size, reports[0]["num_classes"], recipe)
    train.compile_model(model, recipe, batch_size=reports[0]["batch_size"])
    model.optimizer.build(model.trainable_variables)  # so the saved slots load too
    model.load_weights(chief / "backup" / states[0]["weights"])
    single = model.evaluate(datasets.val, verbose=0, return_dict=True)
    assert reports[0]["top1"] == pytest.approx(single["top1"])
    assert reports[0]["val_loss"] == pytest.approx(single["loss"], rel=1e-4)
    assert reports[0]["ten_crop_top1"] == pytest.approx(
        train.ten_crop_top1(model, datasets.val_ten_crop))


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
