"""The batches a training run feeds ``Model.fit``: a batch size that fits, epochs of a known length
whatever the pipeline drops, a count of what it dropped, and the replay of finished epochs."""

from __future__ import annotations

import math

import numpy as np

from alexnet_tut.errors import AlexnetTutError


def batch_for(batch_size: int, num_train: int, batch_given: bool, say) -> int:
    """The batch the run uses: a batch larger than the training set is refused, or lowered.

    A batch the user asked for is refused in one line; the profile's own is
    lowered to the training set's size, with a note. (A batch larger than the
    data would hold one partial batch per epoch, at a learning rate scaled
    for the batch asked for.)
    """
    if batch_size <= num_train:
        return batch_size
    if batch_given:
        raise AlexnetTutError(
            f"--batch-size {batch_size:,} is larger than the training set ({num_train:,} images): "
            f"choose at most {num_train:,}")
    say(f"note: the profile's batch of {batch_size} is larger than the training set "
        f"({num_train} images); training with batches of {num_train}")
    return num_train


class DecodedImages:
    """Counts the training images one pass of the pipeline yields, and says once how many were dropped.

    The folder scan checks every file's structure; a file that passes and
    still cannot be decoded is dropped by the pipeline (``ignore_errors``).
    The count is a running total per pass (``Dataset.scan``) whose largest
    value a CPU variable keeps; it is read after the first epoch. Off in a
    rehearsal (a pass is not finished) and on several workers (each sees
    its shard).
    """

    def __init__(self, expected: int, say, measure: bool = True):
        self.expected, self.say, self.measure = expected, say, measure
        self.missing: int | None = None
        self._seen, self._said = None, False

    def wrap(self, dataset):
        if not self.measure:
            return dataset
        import tensorflow as tf

        with tf.device("/cpu:0"):
            self._seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        seen = self._seen

        def running(total, batch):
            total = total + tf.cast(tf.shape(batch[1])[0], tf.int64)
            return total, (batch, total)

        def record(batch, total):
            with tf.control_dependencies([seen.assign(tf.maximum(seen, total))]):
                return tf.nest.map_structure(tf.identity, batch)

        return dataset.scan(tf.constant(0, tf.int64), running).map(record)

    def callback(self):
        """Counts after the first epoch; says so at the next epoch's start or the end, below Keras's progress bar."""
        import keras

        return keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs=None: self._count(),
            on_epoch_begin=lambda epoch, logs=None: self._say(),
            on_train_end=lambda logs=None: self._say())

    def _count(self) -> None:
        if self._seen is not None and self.missing is None:
            self.missing = self.expected - int(self._seen.numpy())

    def _say(self) -> None:
        if self.missing and not self._said:
            self._said = True
            self.say(f"note: {self.missing} of {self.expected} training images passed the folder "
                     "scan but TensorFlow could not decode them; they were left out, and each "
                     "epoch is filled up from the next pass")


def known_lengths(datasets, batch_size: int, counter: DecodedImages, say):
    """The training and validation pipelines with a known number of batches, and the validation images.

    With a known length every epoch has a progress bar. The training pipeline
    repeats and is cut at the epoch's batches, so that an image the pipeline
    drops (it passed the scan but does not decode) cannot end an epoch early:
    its place is filled from the next pass, and `DecodedImages` counts it.
    The validation images are counted in one pass before training (which
    fills their cache), so that the length given to Keras, and the report's
    number, are exact.
    """
    import tensorflow as tf

    root = datasets.report.get("root")
    if datasets.num_train == 0 or datasets.num_val == 0:
        raise AlexnetTutError(f"no training or validation images in {root}")
    steps = math.ceil(datasets.num_train / batch_size)
    train = counter.wrap(datasets.train).repeat().take(steps)
    num_val = int(datasets.val.reduce(np.int64(0), lambda n, batch: n + tf.cast(
        tf.shape(batch[1])[0], tf.int64)))
    if num_val == 0:
        raise AlexnetTutError(
            f"none of the {datasets.num_val} validation images in {root} could be decoded by "
            "TensorFlow, though they passed the folder scan: replace them (see "
            "`alexnet-tut data scan`)")
    if num_val < datasets.num_val:
        say(f"note: {datasets.num_val - num_val} of {datasets.num_val} validation images passed "
            "the folder scan but TensorFlow could not decode them; they were left out")
    val = datasets.val.apply(tf.data.experimental.assert_cardinality(math.ceil(num_val / batch_size)))
    return train, val, num_val


def fast_forward(dataset, epochs: int) -> None:
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
