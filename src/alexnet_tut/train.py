"""One training run: data, model, the paper's recipe, checkpoints, report.

`run` is what ``alexnet-tut train`` and the chapters call. It reads as the
steps it takes: choose the devices, check the run folder, find and load the
data, build and compile the model, restore a checkpoint if there is one,
train with ``Model.fit``, and report top-1, top-5 and the ten-patch test.
The pieces live in their own modules: `alexnet_tut.runfolder` (the run
folder, checked and locked before TensorFlow loads), `alexnet_tut.recipe`
(the choices), `alexnet_tut.solver` (optimizer, loss, learning-rate
schedule), `alexnet_tut.data` (the pipeline), `alexnet_tut.batches` (epochs
of a known length, what the pipeline dropped), `alexnet_tut.checkpoints`
(backup and resume), `alexnet_tut.devices` (precision and distribution),
`alexnet_tut.evaluation` and `alexnet_tut.report`.

On a GPU the run uses mixed precision, XLA (Keras's ``jit_compile="auto"``)
and several steps per compiled call; with several GPUs it trains
data-parallel with ``MirroredStrategy``, and on several machines
(``TF_CONFIG`` set) with ``MultiWorkerMirroredStrategy``: the chief writes
the run folder, worker *i* writes ``<run folder>/worker<i>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable


from alexnet_tut import batches, runfolder
from alexnet_tut.architectures import VARIANTS
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.files import atomic_write_text
from alexnet_tut.profiles import REHEARSAL_EPOCHS, REHEARSAL_STEPS, Profile, get_profile
from alexnet_tut.recipe import Recipe, get_recipe
from alexnet_tut.report import format_report, make_report

if TYPE_CHECKING:  # Keras (and TensorFlow) load only once the run folder and the data are checked
    import keras

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
        epochs, batch_size: default to the profile's. A ``batch_size`` larger
            than the training set is refused; the profile's is lowered to the
            training set's size, with a note. The learning rate is scaled by
            the batch actually used.
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"``, ``"auto"`` or a :class:`Profile`;
            default ``$ALEXNET_TUT_PROFILE``, else ``auto``.
        resume: continue the run in ``out_dir`` from its last saved epoch.
            Without it, ``out_dir`` must not already hold a started run; with
            it, the settings, the data folder and its classes must be the
            run's own.
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

    The run folder is checked first, before TensorFlow loads: it must be
    writable, and it is locked for the run, so that a second run on it
    refuses in one line (`alexnet_tut.runfolder`). Every mistake a user can
    make ends in a one-line `AlexnetTutError`.

    Returns:
        The report (also written to ``out_dir/report.json``): ``top1``,
        ``top5`` and ``ten_crop_top1`` on the validation set, ``images_per_sec``,
        ``wall_time_s``, the data source, the profile and the epochs.
    """
    started = time.perf_counter()
    recipe = get_recipe(recipe)
    _check_arguments(variant, epochs, batch_size, checkpoint_every_steps)
    say = print if verbose not in (0, False) else (lambda *a, **k: None)

    from alexnet_tut import data

    multi_worker = bool(os.environ.get("TF_CONFIG"))
    out = _worker_folder(Path(out_dir))
    with runfolder.open_run_folder(out, remove_if_failed=not multi_worker):
        runfolder.check_run_dir(out, {}, resume)  # the folder itself, before anything loads
        # The "auto" profile asks TensorFlow for a GPU: only now that the folder is fine.
        prof = profile if isinstance(profile, Profile) else get_profile(profile)
        epochs = prof.epochs if epochs is None else epochs
        batch_given = batch_size is not None
        settings = {"variant": variant, "profile": prof.name, "rehearsal": prof.rehearsal,
                    "image_size": prof.image_size, "resize": prof.resize,
                    "batch_size": prof.batch_size if batch_size is None else batch_size,
                    "recipe": asdict(recipe), "seed": seed}
        _check_arguments(variant, epochs, settings["batch_size"], checkpoint_every_steps)
        before = runfolder.read_config(out) if runfolder.run_started(out) else None
        if before is not None:
            # A profile's batch may still be lowered to the training set's size: it is
            # compared once the data is loaded.
            runfolder.check_settings(out, before, settings if batch_given else {
                k: v for k, v in settings.items() if k != "batch_size"})
        source = data.resolve_source(prof, Path(data_dir) if data_dir is not None else None)
        settings["data"] = str(source.root.resolve())
        if before is not None:
            runfolder.check_settings(out, before, {"data": settings["data"]})
        return _train(source, out, settings, before, batch_given=batch_given, prof=prof,
                      recipe=recipe, variant=variant, epochs=epochs, precision=precision,
                      jit_compile=jit_compile, steps_per_execution=steps_per_execution,
                      checkpoint_every_steps=checkpoint_every_steps, callbacks=callbacks,
                      cache=cache, seed=seed, verbose=verbose, say=say, started=started,
                      resume=resume)


def _train(source, out: Path, settings: dict, before: dict | None, *, batch_given: bool, prof,
           recipe, variant, epochs, precision, jit_compile, steps_per_execution,
           checkpoint_every_steps, callbacks, cache, seed, verbose, say, started, resume) -> dict:
    """The run itself, in a checked and locked run folder: TensorFlow loads from here on."""
    import keras
    import tensorflow as tf

    from alexnet_tut import checkpoints, data, devices
    from alexnet_tut.evaluation import Throughput
    from alexnet_tut.solver import LearningRateSchedule

    strategy = devices.choose_strategy()  # before any TensorFlow op: a multi-worker strategy starts this worker's server
    keras.utils.set_random_seed(seed)
    batch_size = settings["batch_size"]
    datasets = data.load_datasets(source.root, prof, batch_size=batch_size, seed=seed,
                                  cache=cache, cache_dir=runfolder.fresh_cache_dir(out))
    fitted = batches.batch_for(batch_size, datasets.num_train, batch_given, say)
    if fitted != batch_size:  # only for a training set smaller than the profile's batch: cheap
        batch_size = settings["batch_size"] = fitted
        keras.utils.set_random_seed(seed)
        datasets = data.load_datasets(source.root, prof, batch_size=batch_size, seed=seed,
                                      cache=cache, cache_dir=runfolder.fresh_cache_dir(out))
    config = {**settings, "class_ids": list(datasets.report["class_ids"])}
    if before is not None:
        runfolder.check_settings(out, before, config)
    counter = batches.DecodedImages(datasets.num_train, say, measure=not devices.is_multi_worker(strategy)
                             and not prof.rehearsal)
    train_data, val_data, num_val = batches.known_lengths(datasets, batch_size, counter, say)
    ten_crop, trained_per_epoch, num_evaluated = datasets.val_ten_crop, datasets.num_train, num_val
    if prof.rehearsal:  # a few batches, but each epoch a new pass, as in a real run
        epochs, images = min(epochs, REHEARSAL_EPOCHS), REHEARSAL_STEPS * batch_size
        train_data, val_data = train_data.take(REHEARSAL_STEPS), val_data.take(REHEARSAL_STEPS)
        ten_crop = ten_crop.take(-(-images // data.ten_crop_batch(batch_size)))  # the same images
        trained_per_epoch, num_evaluated = min(trained_per_epoch, images), min(num_val, images)
    checkpoints.write_config(out, config)

    precision = precision or devices.training_precision()
    if steps_per_execution is None:
        steps_per_execution = 16 if devices.gpu_available() else 1
    num_classes = len(datasets.class_names)
    backup = out / checkpoints.BACKUP_DIR
    state = checkpoints.ResumableBackup.read_state(backup)
    done = state["epoch"] if state else 0
    with _out_of_memory_is_a_usage_error(batch_size, tf):
        model = _build_and_compile(strategy, variant, prof, num_classes, recipe, batch_size,
                                   precision, jit_compile, steps_per_execution)
        _check_workers_agree(strategy, done)  # before any worker restores: that runs collectives
        with strategy.scope():
            checkpoints.ResumableBackup.restore(model, backup)

    if resume and state is None:
        say(f"nothing to resume in {out}: starting a new run")
    say(f"data: {source.description}")
    say(f"{replace(prof, batch_size=batch_size, epochs=epochs).describe()}; "
        f"{datasets.num_train} training and {num_val} validation images, "
        f"{num_classes} class{'' if num_classes == 1 else 'es'}")
    say(f"model: {variant}; recipe: {recipe.name} (learning rate "
        f"{LearningRateSchedule.starting_rate(recipe, batch_size):g} at batch {batch_size}); "
        f"precision: {precision}; replicas: {strategy.num_replicas_in_sync}"
        + (f"; resuming after epoch {done}" if done else ""))

    if 0 < done < epochs and not prof.rehearsal:  # a finished run needs no replay
        say(f"replaying the data order of the {done} finished epoch(s)")
        batches.fast_forward(train_data, done)

    schedule = LearningRateSchedule(recipe, batch_size, verbose=1 if say is print else 0)
    schedule.restore((state or {}).get("callbacks", {}).get("schedule"))
    history_path = out / checkpoints.HISTORY_CSV
    checkpoints.trim_history(history_path, done)
    best_so_far = max((row.get("val_top1", -1.0) for row in checkpoints.read_history(out)),
                      default=None)
    with _out_of_memory_is_a_usage_error(batch_size, tf):
        model.fit(train_data, validation_data=val_data, epochs=epochs, initial_epoch=done,
                  shuffle=False, verbose=verbose,
                  callbacks=[
                      *callbacks,
                      schedule,
                      counter.callback(),
                      Throughput(trained_per_epoch),
                      keras.callbacks.CSVLogger(str(history_path), append=True),
                      *checkpoints.tensorboard_callbacks(out / checkpoints.TENSORBOARD_DIR),
                      checkpoints.BestModelCheckpoint(out / checkpoints.BEST_MODEL,
                                                      initial_best=best_so_far),
                      checkpoints.ResumableBackup(backup,
                                                  save_freq=checkpoint_every_steps or "epoch",
                                                  extra_state={"schedule": schedule.get_state}),
                  ])
        report = make_report(model, datasets, val_data, ten_crop, out, source, prof, variant, recipe,
                             schedule, epochs, batch_size, precision,
                             strategy.num_replicas_in_sync, done, started)
    report["num_val"], report["num_evaluated"] = num_val, num_evaluated
    report["undecodable_val"] = datasets.num_val - num_val
    report["undecodable_train"] = counter.missing
    atomic_write_text(out / checkpoints.REPORT_JSON, json.dumps(report, indent=2))
    say(format_report(report))
    return report


def _check_arguments(variant: str, epochs: int | None, batch_size: int | None,
                     checkpoint_every_steps: int | None) -> None:
    """One-line errors for arguments out of range; ``None`` (the profile's) is checked later."""
    if variant not in TRAIN_VARIANTS:
        raise AlexnetTutError(
            f"unknown variant {variant!r}: choose one of {', '.join(TRAIN_VARIANTS)}")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise AlexnetTutError(f"--epochs must be a whole number of at least 1, got {epochs!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
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


@contextlib.contextmanager
def _out_of_memory_is_a_usage_error(batch_size: int, tf):
    """Turn TensorFlow's out-of-memory error into a one-line error that names the batch to lower."""
    try:
        yield
    except (tf.errors.ResourceExhaustedError, MemoryError) as error:
        raise AlexnetTutError(
            f"out of memory with batches of {batch_size}: pass a smaller --batch-size "
            "(the learning rate follows it)") from error


def _build_and_compile(strategy, variant, prof, num_classes, recipe, batch_size, precision,
                       jit_compile, steps_per_execution) -> keras.Model:
    """The model under the strategy and the dtype policy, compiled with the recipe."""
    import keras

    from alexnet_tut.solver import build_model, compile_model

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
    from alexnet_tut import devices

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


