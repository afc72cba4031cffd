"""Data parallelism: all-reduce and "one weird trick" arithmetic worked by hand, TF_CONFIG,
and MirroredStrategy on two logical CPUs against one device.

Anything that needs logical devices runs in a fresh Python process, because
TensorFlow can split the CPU only before its runtime starts, and this process
has started it.
"""

import json
import os

import numpy as np
import pytest

from alexnet_tut import distribute
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.models import build_alexnet
from processes import run_python

# Per-layer parameters of the paper model (Caffe's bvlc_alexnet) and of torchvision's
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


@pytest.mark.parametrize("workers, factor", [(1, 0.0), (2, 1.0), (4, 1.5), (8, 1.75)])
def test_ring_allreduce_sends_2_k_minus_1_over_k_of_the_vector(workers, factor):
    assert distribute.allreduce_values(1000, workers) == pytest.approx(1000 * factor)


def test_allreduce_rejects_zero_workers():
    with pytest.raises(AlexnetTutError):
        distribute.allreduce_values(1000, 0)


def test_conv_fc_split_of_the_paper_model_matches_its_layers(branches):
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


@pytest.mark.slow
def test_mirrored_fit_on_two_logical_cpus_matches_one_device():
    result = run_python("""
        import json
        import tensorflow as tf
        from alexnet_tut import distribute, workers
        devices = distribute.data_parallel_devices(2)
        strategy = tf.distribute.MirroredStrategy(devices)
        images, _ = next(iter(strategy.experimental_distribute_dataset(
            workers.demo_dataset(1, 8, image_size=67))))
        halves = [int(x.shape[0]) for x in strategy.experimental_local_results(images)]
        with tf.distribute.OneDeviceStrategy(devices[0]).scope():
            single = workers.demo_model()
        with strategy.scope():
            double = workers.demo_model()
        one = workers.fit_losses(single, workers.demo_dataset(3, 8), 3)
        two = workers.fit_losses(double, workers.demo_dataset(3, 8), 3)
        print(json.dumps({"halves": halves, "one": one, "two": two,
                          "replicas": strategy.num_replicas_in_sync}))
    """)
    assert result["replicas"] == 2 and result["halves"] == [4, 4]
    one, two = np.array(result["one"]), np.array(result["two"])
    assert np.ptp(one) > 1e-3, "the loss should move, or agreement proves little"
    np.testing.assert_allclose(two, one, atol=1e-5)
