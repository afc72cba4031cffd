"""How a run is measured: the ten-patch test (§4.1) and training images per second."""

from __future__ import annotations

import math
import time
from typing import Iterable

import keras
import numpy as np

from alexnet_tut.devices import is_multi_worker


def ten_crop_top1(model: keras.Model, ten_crop_dataset: Iterable) -> float:
    """Top-1 accuracy of the 10-patch test (§4.1): softmax averaged over 10 crops per image.

    ``ten_crop_dataset`` yields ``(patches [B, 10, S, S, 3], labels [B])``.
    """
    correct = total = 0
    for patches, labels in _as_numpy(ten_crop_dataset):
        probabilities = ten_crop_probabilities(model, patches)
        correct += int(np.sum(np.argmax(probabilities, axis=-1) == np.asarray(labels)))
        total += len(labels)
    return correct / total if total else math.nan


def ten_crop_probabilities(model: keras.Model, patches: np.ndarray) -> np.ndarray:
    """Class probabilities ``[B, classes]``: the mean softmax over each image's 10 patches."""
    patches = np.asarray(patches)
    batch, crops = patches.shape[:2]
    flat = patches.reshape((-1,) + patches.shape[2:])
    if is_multi_worker(getattr(model, "distribute_strategy", None)):
        # predict_on_batch would split the patches across the workers, and
        # its answer there is wrong; each worker scores all patches instead.
        logits = np.asarray(keras.ops.convert_to_numpy(model(flat, training=False)),
                            dtype="float64")
    else:
        logits = np.asarray(model.predict_on_batch(flat), dtype="float64")
    logits -= logits.max(axis=-1, keepdims=True)
    softmax = np.exp(logits)
    softmax /= softmax.sum(axis=-1, keepdims=True)
    return softmax.reshape(batch, crops, -1).mean(axis=1)


def _as_numpy(dataset: Iterable) -> Iterable:
    return dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else dataset


class Throughput(keras.callbacks.Callback):
    """Add ``epoch_time_s`` and ``images_per_sec`` (training only) to each epoch's logs.

    The clock runs from the start of the epoch to the start of validation, so
    it counts the training steps and the input pipeline but not evaluation.
    Put it before ``CSVLogger`` so that the columns reach the history.
    """

    def __init__(self, images_per_epoch: int):
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self._start = self._train_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._train_end = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self._start is None:
            return
        seconds = (self._train_end or time.perf_counter()) - self._start
        logs["epoch_time_s"] = seconds
        logs["images_per_sec"] = self.images_per_epoch / seconds if seconds > 0 else 0.0
