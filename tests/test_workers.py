"""A real multi-worker cluster of local processes, against one device; and its failures in one line."""

import os

import numpy as np
import pytest

from alexnet_tut import workers
from alexnet_tut.errors import AlexnetTutError


def test_demo_dataset_is_the_same_every_time_and_learnable():
    first = list(workers.demo_dataset(2, 8, image_size=11, seed=3).as_numpy_iterator())
    again = list(workers.demo_dataset(2, 8, image_size=11, seed=3).as_numpy_iterator())
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    images = np.concatenate([x for x, _ in first])
    labels = np.concatenate([y for _, y in first])
    assert images.shape == (16, 11, 11, 3) and np.abs(images).max() <= 32
    # The class shows in the mean colour: images of one class share it.
    means = images.mean(axis=(1, 2))
    for label in np.unique(labels):
        assert np.ptp(means[labels == label], axis=0).max() < 4


@pytest.mark.slow
def test_two_local_workers_match_one_device_by_hand_and_with_fit():
    reports = workers.run_local_workers(2, steps=3, global_batch=8, timeout=300)
    expected = workers.fit_losses(workers.demo_model(), workers.demo_dataset(3, 8), 3)
    assert np.ptp(expected) > 1e-3, "the loss should move, or agreement proves little"
    assert [r["task"] for r in reports] == [0, 1]
    assert [r["replicas"] for r in reports] == [2, 2]
    assert [r["local_batch"] for r in reports] == [4, 4]
    assert [r["run_dir"] for r in reports] == ["RUN_DIR", os.path.join("RUN_DIR", "worker1")]
    for report in reports:
        np.testing.assert_allclose(report["losses"], expected, atol=1e-5)
        assert report["fit"] == "works"
        np.testing.assert_allclose(report["fit_losses"], expected, atol=1e-5)


@pytest.mark.slow
def test_keras_fit_still_fails_under_tensorflows_own_multi_worker_strategy():
    # keras-team/keras#20585. When this fails, Keras has fixed it:
    # multi_worker_strategy() and its notes in chapter 07 can go.
    reports = workers.run_local_workers(2, steps=1, global_batch=8, strategy="tensorflow",
                                           timeout=300)
    assert [r["fit"] for r in reports] == ["ValueError", "ValueError"]
    assert [r["fit_losses"] for r in reports] == [None, None]


def test_local_workers_refuse_an_unknown_strategy():
    with pytest.raises(AlexnetTutError, match="unknown strategy 'horovod'"):
        workers.run_local_workers(2, strategy="horovod")


@pytest.mark.slow
def test_local_workers_report_a_failure_in_one_line():
    # 20 pixels is too small for the paper model: both workers die building it.
    with pytest.raises(AlexnetTutError, match=r"worker \d failed .*Error") as caught:
        workers.run_local_workers(2, image_size=20, timeout=300)
    assert "\n" not in str(caught.value)


def test_local_workers_time_out_with_a_clear_error():
    with pytest.raises(AlexnetTutError, match="did not finish within 0.5 s"):
        workers.run_local_workers(2, timeout=0.5)
