"""One training run: data, model, the paper's recipe, checkpoints, report.

`run` is what ``alexnet-tut train`` and the chapters call. It reads as the
steps it takes: choose the devices, check the run folder, find and load the
data, build and compile the model, restore a checkpoint if there is one,
train with ``Model.fit``, and report top-1, top-5 and the ten-patch test.
The pieces live in their own modules: `alexnet_tut.recipe` (the choices),
`alexnet_tut.solver` (optimizer, loss, learning-rate schedule),
`alexnet_tut.checkpoints` (the run folder and resume), `alexnet_tut.data`
(the pipeline), `alexnet_tut.devices` (precision and distribution) and
`alexnet_tut.evaluation`.

On a GPU the run uses mixed precision, XLA (Keras's ``jit_compile="auto"``)
and several steps per compiled call; with several GPUs it trains
data-parallel with ``MirroredStrategy``, and on several machines
(``TF_CONFIG`` set) with ``MultiWorkerMirroredStrategy``: the chief writes
the run folder, worker *i* writes ``<run folder>/worker<i>``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from alexnet_tut import checkpoints, devices
from alexnet_tut.architectures import VARIANTS
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.evaluation import Throughput, ten_crop_top1
from alexnet_tut.files import atomic_write_text
from alexnet_tut.profiles import REHEARSAL_EPOCHS, REHEARSAL_STEPS, Profile, get_profile
from alexnet_tut.recipe import Recipe, get_recipe
from alexnet_tut.solver import LearningRateSchedule, build_model, compile_model

TRAIN_VARIANTS: tuple[str, ...] = VARIANTS


def run(
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    variant: str = "paper",
    epochs: int | None = None,
    batch_size: int | None = None,
    profile: str | Profile | None = None,
    resume: bool = False,
    recipe: str | Recipe = "paper",
    precision: str | None = None,
    jit_compile: bool | str = "auto",
    steps_per_execution: int | None = None,
    checkpoint_every_steps: int | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    cache: str = "auto",
    seed: int = 0,
    verbose: int | str = "auto",
) -> dict:
    """Train one AlexNet with the paper's recipe, and return (and save) its report.

    Args:
        data_dir: an ImageNet-layout folder (``train/<class>/``, ``val/<class>/``);
            ``None`` picks the data as ``alexnet_tut.data.resolve_source`` does.
        out_dir: the run folder (see `alexnet_tut.checkpoints`).
        variant: ``"paper"`` (two towers), ``"one_tower"`` or ``"torchvision"``.
        epochs, batch_size: default to the profile's.
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"``, ``"auto"`` or a :class:`Profile`;
            default ``$ALEXNET_TUT_PROFILE``, else ``auto``.
        resume: continue the run in ``out_dir`` from its last saved epoch.
            Without it, ``out_dir`` must not already hold a run.
        recipe: ``"paper"`` (default), ``"modern"``, or a :class:`Recipe`.
        precision: a Keras dtype policy; default `devices.training_precision`.
        jit_compile: passed to ``Model.compile`` (``"auto"``: XLA on GPUs).
        steps_per_execution: batches per compiled call; default 16 on a GPU
            (a step takes milliseconds there), 1 on a CPU.
        checkpoint_every_steps: also save the state every this many batches.
        callbacks: extra Keras callbacks (run before the checkpointing ones).
        cache: where the decoded images are kept: ``"auto"`` (memory when
            they fit, else the run folder's ``cache/``), ``"memory"``,
            ``"disk"`` or ``"none"`` (see `alexnet_tut.data.pipeline.plan_cache`).
        seed: seeds Python, NumPy and the backend, and the data order.
        verbose: ``fit``'s verbosity; 0 also silences the start-up summary.

    Returns:
        The report (also written to ``out_dir/report.json``): ``top1``,
        ``top5`` and ``ten_crop_top1`` on the validation set, ``images_per_sec``,
        ``wall_time_s``, the data source, the profile and the epochs.
    """
    started = time.perf_counter()
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    recipe = get_recipe(recipe)
    epochs = prof.epochs if epochs is None else epochs
    batch_size = prof.batch_size if batch_size is None else batch_size
    _check_arguments(variant, epochs, batch_size, checkpoint_every_steps)
    say = print if verbose not in (0, False) else (lambda *a, **k: None)

    from alexnet_tut import data

    strategy = devices.choose_strategy()  # first: a multi-worker strategy starts this worker's server
    out = _worker_folder(Path(out_dir))
    config = {"variant": variant, "profile": prof.name, "rehearsal": prof.rehearsal,
              "image_size": prof.image_size, "resize": prof.resize, "batch_size": batch_size,
              "recipe": asdict(recipe), "seed": seed}
    checkpoints.check_run_dir(out, config, resume)

    source = data.resolve_source(prof, Path(data_dir) if data_dir is not None else None)
    keras.utils.set_random_seed(seed)
    datasets = data.load_datasets(source.root, prof, batch_size=batch_size, seed=seed,
                                  cache=cache, cache_dir=_fresh_cache_dir(out))
    train_data, val_data = _known_lengths(datasets, batch_size)
    if prof.rehearsal:
        epochs = min(epochs, REHEARSAL_EPOCHS)
    checkpoints.write_config(out, config)

    precision = precision or devices.training_precision()
    if steps_per_execution is None:
        steps_per_execution = 16 if devices.gpu_available() else 1
    model = _build_and_compile(strategy, variant, prof, len(datasets.class_names), recipe,
                               batch_size, precision, jit_compile, steps_per_execution)
    backup = out / checkpoints.BACKUP_DIR
    state = checkpoints.ResumableBackup.read_state(backup)
    done = state["epoch"] if state else 0
    _check_workers_agree(strategy, done)  # before any worker restores: that runs collectives
    with strategy.scope():
        checkpoints.ResumableBackup.restore(model, backup)

    if resume and state is None:
        say(f"nothing to resume in {out}: starting a new run")
    say(f"data: {source.description}")
    say(f"{replace(prof, batch_size=batch_size, epochs=epochs).describe()}; "
        f"{datasets.num_train} training and {datasets.num_val} validation images, "
        f"{len(datasets.class_names)} classes")
    say(f"model: {variant}; recipe: {recipe.name} (learning rate "
        f"{LearningRateSchedule.starting_rate(recipe, batch_size):g} at batch {batch_size}); "
        f"precision: {precision}; replicas: {strategy.num_replicas_in_sync}"
        + (f"; resuming after epoch {done}" if done else ""))

    if 0 < done < epochs and not prof.rehearsal:  # a finished run needs no replay
        say(f"replaying the data order of the {done} finished epoch(s)")
        _fast_forward(train_data, done)

    schedule = LearningRateSchedule(recipe, batch_size, verbose=1 if say is print else 0)
    schedule.restore((state or {}).get("callbacks", {}).get("schedule"))
    history_path = out / checkpoints.HISTORY_CSV
    checkpoints.trim_history(history_path, done)
    best_so_far = max((row.get("val_top1", -1.0) for row in checkpoints.read_history(out)),
                      default=None)
    few = REHEARSAL_STEPS if prof.rehearsal else None
    model.fit(train_data, validation_data=val_data, epochs=epochs, initial_epoch=done,
              steps_per_epoch=few, validation_steps=few, shuffle=False, verbose=verbose,
              callbacks=[
                  *callbacks,
                  schedule,
                  Throughput(datasets.num_train),
                  keras.callbacks.CSVLogger(str(history_path), append=True),
                  *checkpoints.tensorboard_callbacks(out / checkpoints.TENSORBOARD_DIR),
                  checkpoints.BestModelCheckpoint(out / checkpoints.BEST_MODEL,
                                                  initial_best=best_so_far),
                  checkpoints.ResumableBackup(backup,
                                              save_freq=checkpoint_every_steps or "epoch",
                                              extra_state={"schedule": schedule.get_state}),
              ])

    report = _report(model, datasets, val_data, out, source, prof, variant, recipe, schedule,
                     epochs, batch_size, precision, strategy.num_replicas_in_sync, done, started)
    atomic_write_text(out / checkpoints.REPORT_JSON, json.dumps(report, indent=2))
    say(format_report(report))
    return report


def _check_arguments(variant: str, epochs: int, batch_size: int,
                     checkpoint_every_steps: int | None) -> None:
    if variant not in TRAIN_VARIANTS:
        raise AlexnetTutError(
            f"unknown variant {variant!r}: choose one of {', '.join(TRAIN_VARIANTS)}")
    if not isinstance(epochs, int) or epochs < 1:
        raise AlexnetTutError(f"--epochs must be a whole number of at least 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise AlexnetTutError(
            f"--batch-size must be a whole number of at least 1, got {batch_size!r}")
    if checkpoint_every_steps is not None and checkpoint_every_steps < 1:
        raise AlexnetTutError("checkpoint_every_steps must be at least 1")


def _worker_folder(out: Path) -> Path:
    """The chief writes ``out``; worker *i* of a multi-worker run writes ``out/worker<i>``."""
    if not os.environ.get("TF_CONFIG"):
        return out
    from alexnet_tut.distribute import worker_suffix

    return out / worker_suffix()


def _fresh_cache_dir(out: Path) -> Path:
    """The run folder's ``cache/``, without the half-written files of a killed run.

    TensorFlow writes a disk cache during the first epoch and leaves a lock
    file behind if the process dies; such a cache can never be read. The
    folder is the package's own, so it is emptied and filled again.
    """
    folder = out / "cache"
    if folder.is_dir() and any(folder.glob("*.lockfile")):
        shutil.rmtree(folder)
    return folder


def _known_lengths(datasets, batch_size: int):
    """The training and validation pipelines, told how many batches an epoch has.

    With a known length the first epoch has a progress bar. The data module's
    scan has already left out unreadable files, so the count is exact.
    """
    import tensorflow as tf

    def known(dataset, images):
        if int(dataset.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY):
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(
                math.ceil(images / batch_size)))
        return dataset

    if datasets.num_train == 0 or datasets.num_val == 0:
        raise AlexnetTutError(f"no training or validation images in {datasets.report.get('root')}")
    return known(datasets.train, datasets.num_train), known(datasets.val, datasets.num_val)


def _build_and_compile(strategy, variant, prof, num_classes, recipe, batch_size, precision,
                       jit_compile, steps_per_execution) -> keras.Model:
    """The model under the strategy and the dtype policy, compiled with the recipe."""
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        with strategy.scope():
            model = build_model(variant, prof.image_size, num_classes, recipe)
            compile_model(model, recipe, batch_size=batch_size, jit_compile=jit_compile,
                          steps_per_execution=steps_per_execution)
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    return model


def _check_workers_agree(strategy, done: int) -> None:
    """Refuse to resume a multi-worker run whose workers saved different epochs.

    Every worker restores its own backup. The workers save at the end of the
    same epoch, but a crash can fall between two of them saving; resuming from
    different epochs would train different models in lockstep, or hang.
    """
    if not devices.is_multi_worker(strategy):
        return
    import tensorflow as tf

    mine = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant([done], dtype=tf.int32))
    epochs = [int(e) for e in strategy.gather(mine, axis=0).numpy()]
    if min(epochs) != max(epochs):
        raise AlexnetTutError(
            f"cannot resume: the workers' backups end at different epochs {sorted(set(epochs))}; "
            f"copy the backup/ folder of a worker at epoch {max(epochs)} over the others' "
            "(all workers hold the same weights after the same epoch), then --resume again")


def _fast_forward(dataset, epochs: int) -> None:
    """Draw ``epochs`` passes from ``dataset`` without training, so the next pass is a new one.

    The pipeline reshuffles and redraws its crops, mirrors and colour shifts on
    every pass. A resumed run that started its data from the first pass again
    would train on exactly the batches it has already seen. Replaying the
    passes costs input-pipeline time only, and gives the batches an
    uninterrupted run would have seen.
    """
    for _ in range(epochs):
        for _ in dataset:
            pass


def _report(model, datasets, val_data, out, source, prof, variant, recipe, schedule, epochs,
            batch_size, precision, replicas, resumed_from, started) -> dict:
    ten_crop = datasets.val_ten_crop
    if prof.rehearsal:
        val_data, ten_crop = val_data.take(REHEARSAL_STEPS), ten_crop.take(REHEARSAL_STEPS)
    results = model.evaluate(val_data, verbose=0, return_dict=True)
    history = checkpoints.read_history(out)
    speeds = [row["images_per_sec"] for row in history if "images_per_sec" in row]
    steady = speeds[1:] or speeds  # the first epoch includes compilation
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return {
        "top1": float(results["top1"]),
        "top5": float(results["top5"]),
        "ten_crop_top1": ten_crop_top1(model, ten_crop),
        "val_loss": float(results["loss"]),
        "best_val_top1": max((row["val_top1"] for row in history), default=math.nan),
        "images_per_sec": float(np.median(steady)) if steady else math.nan,
        "wall_time_s": time.perf_counter() - started,
        "train_time_s": float(sum(row.get("epoch_time_s", 0.0) for row in history)),
        "epochs": epochs,
        "epochs_in_history": len(history),
        "resumed_from_epoch": resumed_from,
        "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "learning_rate": learning_rate,
        "lr_reductions": schedule.reductions(learning_rate),
        "data_source": source.description,
        "data_kind": source.kind,
        "profile": prof.name,
        "rehearsal": prof.rehearsal,
        "variant": variant,
        "recipe": recipe.name,
        "image_size": prof.image_size,
        "batch_size": batch_size,
        "num_train": datasets.num_train,
        "num_val": datasets.num_val,
        "num_classes": len(datasets.class_names),
        "params": int(model.count_params()),
        "precision": precision,
        "replicas": replicas,
        "keras_backend": keras.backend.backend(),
        "run_dir": str(out),
    }


def format_report(report: dict) -> str:
    """The report as a few human lines."""
    return (
        f"validation top-1 {report['top1']:.1%}, top-5 {report['top5']:.1%}, "
        f"10-crop top-1 {report['ten_crop_top1']:.1%} "
        f"({report['num_val']} images, {report['num_classes']} classes)\n"
        f"{report['epochs_in_history']} epochs, {report['images_per_sec']:.1f} training images/s, "
        f"wall time {report['wall_time_s']:.1f} s; report: "
        f"{Path(report['run_dir']) / checkpoints.REPORT_JSON}"
    )
