"""Scaling out: tower traffic, all-reduce arithmetic, mirrored training, local workers.

The oracles come from outside the module: the layer shapes of the paper's
Figure 2 (PAPER-FACTS.md), the ring all-reduce formula worked by hand, and a
plain one-device training run, which the mirrored and multi-worker runs must
reproduce. Anything that needs logical devices runs in a fresh Python process,
because TensorFlow can split the CPU only before its runtime starts, and this
process has started it.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from alexnet_tut import distribute
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet

F32 = 4  # bytes

# What crosses between the paper's GPUs, from Figure 2's shapes (PAPER-FACTS):
# conv3 reads both towers' pooled conv2 maps (13×13, 128 per GPU), fc6 both
# towers' pooled conv5 maps (6×6, 128 per GPU), fc7 both halves of fc6 (2048
# each) and fc8, one layer on GPU 1, the other GPU's half of fc7.
FIGURE_2_CROSSINGS = {
    ("cross3", "pool2_gpu1", "gpu1", "gpu2", 13 * 13 * 128),
    ("cross3", "pool2_gpu2", "gpu2", "gpu1", 13 * 13 * 128),
    ("cross6", "pool5_gpu1", "gpu1", "gpu2", 6 * 6 * 128),
    ("cross6", "pool5_gpu2", "gpu2", "gpu1", 6 * 6 * 128),
    ("cross7", "fc6_gpu1", "gpu1", "gpu2", 2048),
    ("cross7", "fc6_gpu2", "gpu2", "gpu1", 2048),
    ("cross8", "fc7_gpu2", "gpu2", "gpu1", 2048),
}
# Per-layer parameters of the paper model (PAPER-FACTS) and of torchvision's
# alexnet (64-192-384-256-256: k·k·c_in·c_out + c_out).
PAPER_CONV_PARAMS = 34_944 + 307_456 + 885_120 + 663_936 + 442_624
PAPER_FC_PARAMS = 37_752_832 + 16_781_312 + 4_097_000
TORCHVISION_CONV_PARAMS = (11 * 11 * 3 * 64 + 64) + (5 * 5 * 64 * 192 + 192) + (
    3 * 3 * 192 * 384 + 384) + (3 * 3 * 384 * 256 + 256) + (3 * 3 * 256 * 256 + 256)
TORCHVISION_PARAMS = 61_100_840
FC_INPUTS = 6 * 6 * 256 + 4096 + 4096  # fc6, fc7 and fc8 read this many values per image


@pytest.fixture(scope="module")
def branches():
    return build_alexnet("paper", towers="branches")


@pytest.fixture(scope="module")
def torchvision_model():
    return build_alexnet("torchvision")


def run_python(script: str, timeout: float = 300) -> dict:
    """Run ``script`` in a fresh interpreter and return the JSON object it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# Model parallelism: the towers' traffic
# --------------------------------------------------------------------------

def test_tower_crossings_are_the_maps_figure_2_sends(branches):
    rows = distribute.tower_crossings(branches)
    found = {(r["crossing"], r["tensor"], r["from"], r["to"], r["values"]) for r in rows}
    assert found == FIGURE_2_CROSSINGS
    assert all(r["bytes"] == F32 * r["values"] for r in rows)


def test_towers_exchange_234_496_bytes_per_image_forward(branches):
    total = sum(r["bytes"] for r in distribute.tower_crossings(branches))
    assert total == F32 * (2 * 13 * 13 * 128 + 2 * 6 * 6 * 128 + 2 * 2048 + 2048) == 234_496


def test_fc8_on_the_other_tower_reverses_the_last_crossing(branches):
    rows = distribute.tower_crossings(branches, home_tower="gpu2")
    assert [(r["tensor"], r["to"]) for r in rows if r["crossing"] == "cross8"] == [
        ("fc7_gpu1", "gpu2")]


def test_tower_crossings_needs_the_branch_model():
    with pytest.raises(AlexnetTutError, match="towers='branches'"):
        distribute.tower_crossings(build_alexnet("paper", input_shape=(67, 67, 3)))


# --------------------------------------------------------------------------
# Data parallelism and the one weird trick
# --------------------------------------------------------------------------

@pytest.mark.parametrize("workers, factor", [(1, 0.0), (2, 1.0), (4, 1.5), (8, 1.75)])
def test_ring_allreduce_sends_2_k_minus_1_over_k_of_the_vector(workers, factor):
    assert distribute.allreduce_values(1000, workers) == pytest.approx(1000 * factor)


def test_allreduce_rejects_zero_workers():
    with pytest.raises(AlexnetTutError):
        distribute.allreduce_values(1000, 0)


def test_conv_fc_split_of_the_paper_model_matches_paper_facts(branches):
    grouped = build_alexnet("paper")
    for model in (grouped, branches):
        split = distribute.conv_fc_split(model)
        assert split["conv"]["params"] == PAPER_CONV_PARAMS
        assert split["fc"]["params"] == PAPER_FC_PARAMS
        # fc MACs: one per weight; conv MACs: the rest of the published ≈ 724 M.
        assert split["fc"]["macs"] == 9216 * 4096 + 4096 * 4096 + 4096 * 1000
        assert round((split["conv"]["macs"] + split["fc"]["macs"]) / 1e6) == 724
    assert round(PAPER_FC_PARAMS / (PAPER_FC_PARAMS + PAPER_CONV_PARAMS), 2) == 0.96  # "96 %"


def test_weird_trick_traffic_by_hand(torchvision_model):
    for workers in (2, 4, 8):
        got = distribute.weird_trick_traffic(torchvision_model, workers, 128)
        ring = 2 * (workers - 1) / workers
        assert got["params"] == TORCHVISION_PARAMS
        assert got["conv_params"] == TORCHVISION_CONV_PARAMS
        assert got["data_parallel"] == pytest.approx(ring * TORCHVISION_PARAMS)
        assert got["trick_gradients"] == pytest.approx(ring * TORCHVISION_CONV_PARAMS)
        # forward activations and backward gradients, to each of the K-1 others
        assert got["trick_activations"] == 2 * (workers - 1) * 128 * FC_INPUTS
        assert got["trick"] < got["data_parallel"]


def test_weird_trick_traffic_grows_with_the_batch_but_data_parallelism_does_not(
        torchvision_model):
    small = distribute.weird_trick_traffic(torchvision_model, 4, 32)
    large = distribute.weird_trick_traffic(torchvision_model, 4, 128)
    assert large["data_parallel"] == small["data_parallel"]
    assert large["trick_activations"] == 4 * small["trick_activations"]


# --------------------------------------------------------------------------
# TF_CONFIG and the workers' folders
# --------------------------------------------------------------------------

def test_tf_config_gives_each_worker_its_own_folder():
    hosts = ["a:1", "b:2", "c:3"]
    suffixes = []
    before = os.environ.get("TF_CONFIG")
    for index in range(3):
        config = distribute.tf_config(hosts, index)
        assert config["cluster"] == {"worker": hosts}
        with distribute.tf_config_env(config):
            assert json.loads(os.environ["TF_CONFIG"])["task"]["index"] == index
            suffixes.append(distribute.worker_suffix())
    assert suffixes == ["", "worker1", "worker2"]
    assert os.environ.get("TF_CONFIG") == before
    with pytest.raises(AlexnetTutError):
        distribute.tf_config(hosts, 3)


def test_free_ports_are_distinct_and_free():
    import socket

    ports = distribute.free_ports(3)
    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket() as s:
            s.bind(("localhost", port))


def test_demo_dataset_is_the_same_every_time_and_learnable():
    first = list(distribute.demo_dataset(2, 8, image_size=11, seed=3).as_numpy_iterator())
    again = list(distribute.demo_dataset(2, 8, image_size=11, seed=3).as_numpy_iterator())
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


# --------------------------------------------------------------------------
# Devices and strategies (fresh processes)
# --------------------------------------------------------------------------

def test_split_cpu_gives_two_devices_and_says_when_it_is_too_late():
    result = run_python("""
        import json
        import tensorflow as tf
        from alexnet_tut import distribute
        devices = distribute.split_cpu(2)
        tf.constant(1.0)  # the runtime starts
        again = distribute.split_cpu(2)  # same split: harmless
        try:
            distribute.split_cpu(3)
            error = None
        except distribute.TooLateToSplitError as e:
            error = str(e)
        print(json.dumps({"devices": devices, "again": again, "error": error}))
    """)
    assert result["devices"] == ["/device:CPU:0", "/device:CPU:1"] == result["again"]
    assert result["error"] and "restart the kernel" in result["error"]
    assert "\n" not in result["error"]


def test_mirrored_fit_on_two_logical_cpus_matches_one_device():
    result = run_python("""
        import json
        import tensorflow as tf
        from alexnet_tut import distribute
        devices = distribute.data_parallel_devices(2)
        strategy = tf.distribute.MirroredStrategy(devices)
        images, _ = next(iter(strategy.experimental_distribute_dataset(
            distribute.demo_dataset(1, 8, image_size=67))))
        halves = [int(x.shape[0]) for x in strategy.experimental_local_results(images)]
        with tf.distribute.OneDeviceStrategy(devices[0]).scope():
            single = distribute.demo_model()
        with strategy.scope():
            double = distribute.demo_model()
        one = distribute.fit_losses(single, distribute.demo_dataset(3, 8), 3)
        two = distribute.fit_losses(double, distribute.demo_dataset(3, 8), 3)
        print(json.dumps({"halves": halves, "one": one, "two": two,
                          "replicas": strategy.num_replicas_in_sync}))
    """)
    assert result["replicas"] == 2 and result["halves"] == [4, 4]
    one, two = np.array(result["one"]), np.array(result["two"])
    assert np.ptp(one) > 1e-3, "the loss should move, or agreement proves little"
    np.testing.assert_allclose(two, one, atol=1e-5)


def test_two_local_workers_match_one_device_by_hand_and_with_fit():
    reports = distribute.run_local_workers(2, steps=3, global_batch=8, timeout=300)
    expected = distribute.fit_losses(distribute.demo_model(), distribute.demo_dataset(3, 8), 3)
    assert np.ptp(expected) > 1e-3, "the loss should move, or agreement proves little"
    assert [r["task"] for r in reports] == [0, 1]
    assert [r["replicas"] for r in reports] == [2, 2]
    assert [r["local_batch"] for r in reports] == [4, 4]
    assert [r["run_dir"] for r in reports] == ["RUN_DIR", os.path.join("RUN_DIR", "worker1")]
    for report in reports:
        np.testing.assert_allclose(report["losses"], expected, atol=1e-5)
        assert report["fit"] == "works"
        np.testing.assert_allclose(report["fit_losses"], expected, atol=1e-5)


def test_keras_fit_still_fails_under_tensorflows_own_multi_worker_strategy():
    # keras-team/keras#20585. When this fails, Keras has fixed it:
    # multi_worker_strategy() and its notes in chapter 07 can go.
    reports = distribute.run_local_workers(2, steps=1, global_batch=8, strategy="tensorflow",
                                           timeout=300)
    assert [r["fit"] for r in reports] == ["ValueError", "ValueError"]
    assert [r["fit_losses"] for r in reports] == [None, None]


def test_local_workers_refuse_an_unknown_strategy():
    with pytest.raises(AlexnetTutError, match="unknown strategy 'horovod'"):
        distribute.run_local_workers(2, strategy="horovod")


def test_local_workers_report_a_failure_in_one_line():
    # 20 pixels is too small for the paper model: both workers die building it.
    with pytest.raises(AlexnetTutError, match=r"worker \d failed .*Error") as caught:
        distribute.run_local_workers(2, image_size=20, timeout=300)
    assert "\n" not in str(caught.value)


def test_local_workers_time_out_with_a_clear_error():
    with pytest.raises(AlexnetTutError, match="did not finish within 0.5 s"):
        distribute.run_local_workers(2, timeout=0.5)
