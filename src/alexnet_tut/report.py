"""A training run's report: what the final model scores, how fast it trained, and on what."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from alexnet_tut import runfolder


def make_report(model, datasets, val_data, ten_crop, out, source, prof, variant, recipe, schedule, epochs,
            batch_size, precision, replicas, resumed_from, started) -> dict:
    import keras

    from alexnet_tut import checkpoints
    from alexnet_tut.evaluation import ten_crop_top1

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
        f"({_evaluated(report)} images, {report['num_classes']} "
        f"class{'' if report['num_classes'] == 1 else 'es'})\n"
        f"{report['epochs_in_history']} epochs, {report['images_per_sec']:.1f} training images/s, "
        f"wall time {report['wall_time_s']:.1f} s; report: "
        f"{Path(report['run_dir']) / runfolder.REPORT_JSON}"
    )


def _evaluated(report: dict) -> str:
    """How many validation images the figures cover: all of them, except in a rehearsal."""
    evaluated = report.get("num_evaluated", report["num_val"])
    if evaluated == report["num_val"]:
        return f"{evaluated}"
    return f"{evaluated} of {report['num_val']} (REHEARSAL)"
