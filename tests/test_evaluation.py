"""The ten-patch test (§4.1) against the softmax averaged by hand, and the throughput columns."""

import keras
import numpy as np

from alexnet_tut import evaluation


def tiny_model():
    return keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(3, name="fc8")])


def test_ten_crop_averages_the_softmax_of_each_images_ten_patches():
    model = tiny_model()
    patches = np.random.default_rng(0).normal(size=(2, 10, 4, 4, 3)).astype("float32")
    got = evaluation.ten_crop_probabilities(model, patches)
    for i in range(2):
        logits = keras.ops.convert_to_numpy(model(patches[i]))
        softmax = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(got[i], softmax.mean(axis=0), rtol=1e-5)
    labels = np.argmax(got, axis=-1)
    assert evaluation.ten_crop_top1(model, [(patches, labels)]) == 1.0
    assert evaluation.ten_crop_top1(model, [(patches, (labels + 1) % 3)]) == 0.0


def test_throughput_counts_training_images_per_second_of_the_epoch():
    meter = evaluation.Throughput(images_per_epoch=100)
    logs = {}
    meter.on_epoch_begin(0)
    meter.on_test_begin()
    meter.on_epoch_end(0, logs)
    assert logs["epoch_time_s"] > 0
    assert logs["images_per_sec"] == 100 / logs["epoch_time_s"]
