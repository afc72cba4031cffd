"""Chapter 04's helpers: the configurable small AlexNet, its data, and the fair runner."""

from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from alexnet_tut import ablations, data
from alexnet_tut.architectures import PAPER_LRN
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.layers import LocalResponseNormalization, PCAColorAugmentation
from alexnet_tut.profiles import get_profile
from datafiles import SMALL, copy_of, write_bad_files

#: Tiny widths: the tests check wiring, not learning.
TINY = dict(filters=(4, 6, 8, 8, 6), dense=(16, 16))
#: ... and for the runner, without the LRN layers, whose gradient takes long to trace.
TINY_RUN = dict(TINY, lrn=False)


def activations(model) -> list[str]:
    """The activation function names of every Activation layer."""
    return [layer.activation.__name__ for layer in model.layers
            if isinstance(layer, keras.layers.Activation)]


def of_type(model, kind) -> list:
    return [layer for layer in model.layers if isinstance(layer, kind)]


# --------------------------------------------------------------------------- the network

def test_default_network_follows_figure_2_order_and_shapes():
    model = ablations.build_small_alexnet(num_classes=10)
    assert model.output.shape[1:] == (10,)
    names = [layer.name for layer in model.layers[1:]]
    assert names == [
        "conv1", "conv1_relu", "conv1_lrn", "conv1_pool",
        "conv2", "conv2_relu", "conv2_lrn", "conv2_pool",
        "conv3", "conv3_relu", "conv4", "conv4_relu",
        "conv5", "conv5_relu", "conv5_pool", "flatten",
        "fc6", "fc6_relu", "fc6_dropout", "fc7", "fc7_relu", "fc7_dropout", "fc8"]
    shapes = {name: shape for name, _, shape, _ in ablations.layer_table(model)}
    assert shapes["conv1_pool"] == (16, 16, 24)
    assert shapes["conv2_pool"] == (8, 8, 48)
    assert shapes["conv5_pool"] == (4, 4, 48)
    assert shapes["flatten"] == (4 * 4 * 48,)
    # conv1: 5*5*3*24 weights + 24 biases, by hand
    assert model.get_layer("conv1").count_params() == 5 * 5 * 3 * 24 + 24


def test_figure1_network_has_four_weight_layers_and_no_regularisation():
    model = ablations.build_small_alexnet(**ablations.FIGURE1_NETWORK)
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert weighted == ["conv1", "conv2", "conv3", "fc8"]
    assert not of_type(model, keras.layers.Dropout)
    assert not of_type(model, LocalResponseNormalization)


def test_relu_network_has_no_tanh_and_tanh_network_has_no_relu():
    relu = ablations.build_small_alexnet()
    tanh = ablations.build_small_alexnet(activation="tanh")
    assert set(activations(relu)) == {"relu"} and len(activations(relu)) == 7
    assert set(activations(tanh)) == {"tanh"} and len(activations(tanh)) == 7
    for model in (relu, tanh):  # no activation hides inside a Conv2D or Dense layer
        for layer in of_type(model, (keras.layers.Conv2D, keras.layers.Dense)):
            assert layer.activation.__name__ == "linear", layer.name
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    probe = keras.Model(tanh.input, tanh.get_layer("conv1_tanh").output)
    conv = keras.Model(tanh.input, tanh.get_layer("conv1").output)
    np.testing.assert_allclose(probe(x), np.tanh(conv(x)), rtol=1e-5, atol=1e-6)


def test_lrn_switch_adds_the_papers_lrn_after_conv1_and_conv2_activations_only():
    on = ablations.build_small_alexnet(lrn=True)
    off = ablations.build_small_alexnet(lrn=False)
    assert not of_type(off, LocalResponseNormalization)
    layers = of_type(on, LocalResponseNormalization)
    assert [layer.name for layer in layers] == ["conv1_lrn", "conv2_lrn"]
    for layer in layers:
        assert (layer.depth_radius, layer.bias, layer.alpha, layer.beta) == (
            PAPER_LRN.depth_radius, PAPER_LRN.k, PAPER_LRN.alpha, PAPER_LRN.beta)
        names = [m.name for m in on.layers]
        before = names[names.index(layer.name) - 1]
        after = names[names.index(layer.name) + 1]
        assert before.endswith("_relu") and after.endswith("_pool")  # §3.3: after ReLU, before pooling
    assert on.count_params() == off.count_params()  # LRN has no weights


@pytest.mark.parametrize("size", [2, 3])
def test_pooling_window_and_stride_are_the_arguments(size):
    model = ablations.build_small_alexnet(pool_size=size, pool_stride=2)
    pools = of_type(model, keras.layers.MaxPooling2D)
    assert [p.name for p in pools] == ["conv1_pool", "conv2_pool", "conv5_pool"]
    assert all(p.pool_size == (size, size) and p.strides == (2, 2) for p in pools)


def test_overlapping_and_non_overlapping_pooling_give_the_same_shapes():
    overlap = ablations.layer_table(ablations.build_small_alexnet(pool_size=3))
    plain = ablations.layer_table(ablations.build_small_alexnet(pool_size=2))
    assert [(n, s, p) for n, _, s, p in overlap] == [(n, s, p) for n, _, s, p in plain]


def test_3x3_stride_2_windows_overlap_and_2x2_ones_do_not():
    """A single bright pixel on a window border shows up in two outputs only when windows overlap."""
    image = np.zeros((1, 8, 8, 1), "float32")
    image[0, 2, 2, 0] = 1.0  # column 2 belongs to windows 0-2 and 2-4 at stride 2
    for size, hits in ((3, 4), (2, 1)):
        pool = ablations.build_small_alexnet(input_shape=(8, 8, 1), pool_size=size, lrn=False,
                                             filters=(1,), kernel_sizes=(1,), pool_after=("conv1",),
                                             dense=()).get_layer("conv1_pool")
        out = np.asarray(pool(image))
        assert int(np.sum(out > 0)) == hits
        reference = tf.nn.max_pool2d(image, size, 2, "SAME").numpy()
        np.testing.assert_array_equal(out, reference)


def test_dropout_switch_adds_dropout_after_fc6_and_fc7_and_changes_training_only():
    on = ablations.build_small_alexnet(dropout=0.5)
    off = ablations.build_small_alexnet(dropout=0.0)
    assert [(d.name, d.rate) for d in of_type(on, keras.layers.Dropout)] == [
        ("fc6_dropout", 0.5), ("fc7_dropout", 0.5)]
    assert not of_type(off, keras.layers.Dropout)
    off.set_weights(on.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(on(x, training=False), off(x, training=False), rtol=1e-5, atol=1e-6)
    assert not np.allclose(on(x, training=True), off(x, training=True))


def test_removing_conv3_leaves_conv4_reading_conv2():
    full = ablations.build_small_alexnet()
    short = ablations.build_small_alexnet(remove=("conv3",))
    names = [layer.name for layer in short.layers]
    assert "conv3" not in names and "conv3_relu" not in names
    assert short.get_layer("conv4").kernel.shape == (3, 3, 48, 64)  # conv2's 48 maps in
    conv3 = 3 * 3 * 48 * 64 + 64
    conv4_change = 3 * 3 * (64 - 48) * 64
    assert full.count_params() - short.count_params() == conv3 + conv4_change


def test_removing_conv5_keeps_the_pooling_after_it():
    short = ablations.build_small_alexnet(remove=("conv5",))
    assert "conv5" not in [layer.name for layer in short.layers]
    assert short.get_layer("conv5_pool").output.shape[1:] == (4, 4, 64)  # conv4's 64 maps, pooled


def test_color_pca_is_the_first_layer_and_only_acts_in_training():
    pca = data.ColorPCA(np.array([0.2, 0.05, 0.01], "float32"), np.eye(3, dtype="float32"))
    model = ablations.build_small_alexnet(color_pca=pca, **TINY)
    first = model.layers[1]
    assert isinstance(first, PCAColorAugmentation) and first.eigenvalues == pytest.approx([0.2, 0.05, 0.01])
    assert not any(isinstance(layer, PCAColorAugmentation)
                   for layer in ablations.build_small_alexnet(**TINY).layers)
    x = np.zeros((2, 32, 32, 3), "float32")
    np.testing.assert_array_equal(first(x, training=False), x)
    assert not np.allclose(first(x, training=True), x)


@pytest.mark.parametrize("arguments, message", [
    ({"activation": "sigmoid"}, "unknown activation"),
    ({"remove": ("conv9",)}, "cannot remove conv9"),
    ({"dropout": 1.0}, "dropout is a rate"),
    ({"filters": (8, 8), "kernel_sizes": (3,)}, "one entry per layer"),
])
def test_bad_arguments_raise_one_line_errors(arguments, message):
    with pytest.raises(AlexnetTutError, match=message):
        ablations.build_small_alexnet(**arguments)


# --------------------------------------------------------------------------- data

def test_race_threshold_is_the_papers_25_percent_on_ten_classes():
    assert ablations.race_threshold(10) == pytest.approx(0.25)
    # six classes: as far below chance (5/6) as 25 % is below 90 %
    assert ablations.race_threshold(6) == pytest.approx(0.25 * (5 / 6) / 0.9)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return data.write_standin(tmp_path_factory.mktemp("s") / "standin", seed=0, **SMALL)


def test_standin_files_are_the_ones_scan_keeps(standin, tmp_path):
    root = copy_of(standin, tmp_path)
    write_bad_files(root)
    report = data.scan(root)
    for split in ("train", "val"):
        pairs = ablations.standin_files(root, report, split)
        assert len(pairs) == report["splits"][split]
        skipped = {item["path"] for item in report["skipped"]}
        assert not any(path.relative_to(root).as_posix() in skipped for path, _ in pairs)
        for path, label in pairs:
            assert path.parent.name == report["class_ids"][label]


def test_small_image_is_the_centre_square_shrunk(standin):
    path = next((standin / "train" / "cat").glob("*.JPEG"))
    small = ablations.small_image(path, 32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8
    from PIL import Image

    with Image.open(path) as image:  # an independent route: crop by hand, then resize
        rgb = image.convert("RGB")
        w, h = rgb.size
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        expected = np.asarray(rgb.crop(box).resize((32, 32), Image.Resampling.LANCZOS))
    assert np.abs(small.astype(int) - expected.astype(int)).mean() < 3


@pytest.fixture
def offline_standin(standin, monkeypatch):
    """resolve_source gives the small stand-in; any download attempt fails the test."""
    source = data.DataSource(standin, "standin", "offline stand-in (test copy)")
    monkeypatch.setattr(data, "resolve_source", lambda profile, data_dir=None: source)

    def no_download():
        raise AssertionError("tried to download CIFAR-10")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", no_download)
    monkeypatch.setattr(ablations.data, "_cifar10_cached", lambda: False)
    return standin


def test_smoke_profile_uses_the_standin_without_trying_the_network(offline_standin, monkeypatch):
    from alexnet_tut import downloads

    monkeypatch.setattr(downloads, "reachable", lambda *a, **k: pytest.fail("checked the network"))
    images = ablations.load_small_images(get_profile("smoke"))
    report = data.scan(offline_standin)
    budget = ablations.budget_for("smoke")
    assert images.kind == "standin" and images.suffix == " (offline stand-in)"
    assert images.class_names == report["classes"]
    assert images.x_train.shape[1:] == (32, 32, 3) and images.x_train.dtype == np.float32
    assert len(images.x_train) == min(budget.train_images // 6 * 6, report["splits"]["train"])
    counts = np.bincount(images.y_train, minlength=6)
    assert counts.max() - counts.min() <= 1  # balanced
    assert len(set(images.y_train[:6])) > 1  # shuffled: the first images mix the classes
    np.testing.assert_allclose(images.x_train.reshape(-1, 3).mean(axis=0), 0, atol=1e-4)
    assert "smoke profile always uses the stand-in" in images.description


def test_offline_variable_means_no_download_under_cpu(offline_standin, monkeypatch):
    monkeypatch.setenv("ALEXNET_TUT_OFFLINE", "1")
    images = ablations.load_small_images(get_profile("cpu"))
    assert images.kind == "standin" and "ALEXNET_TUT_OFFLINE is set" in images.description


def test_a_failed_download_falls_back_to_the_standin(offline_standin, monkeypatch):
    from alexnet_tut import downloads

    monkeypatch.delenv("ALEXNET_TUT_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "reachable", lambda *a, **k: True)

    def broken():
        raise OSError("connection reset")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", broken)
    images = ablations.load_small_images(get_profile("cpu"))
    assert images.kind == "standin" and "download failed: connection reset" in images.description


def test_cifar10_when_keras_gives_it(monkeypatch):
    rng = np.random.default_rng(0)
    fake = ((rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8), np.repeat(np.arange(10), 20)[:, None]),
            (rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8), np.repeat(np.arange(10), 10)[:, None]))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: fake)
    monkeypatch.setattr(ablations.data, "_cifar10_cached", lambda: True)
    images = ablations.load_small_images(get_profile("cpu"))
    assert images.kind == "cifar10" and images.suffix == ""
    assert images.class_names[0] == "airplane" and images.num_classes == 10
    assert len(images.x_train) == 200 and len(images.x_val) == 100


# --------------------------------------------------------------------------- the runner

@pytest.fixture(scope="module")
def tiny_images():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 16, 16, 3)).astype("float32")
    y = (np.arange(40) % 3).astype("int32")
    pca = data.ColorPCA(np.array([0.1, 0.01, 0.001], "float32"), np.eye(3, dtype="float32"))
    return ablations.SmallImages(x[:30], y[:30], x[30:], y[30:], ["a", "b", "c"], "standin",
                                 "random test images", np.zeros(3, "float32"), pca)


@pytest.fixture(scope="module")
def tiny_budget():
    return replace(ablations.budget_for("smoke"), batch_size=8, epochs=1, seeds=(0, 1),
                   max_steps_per_epoch=2, evaluations=2)


@pytest.fixture(scope="module")
def runs(tiny_images, tiny_budget):
    configs = {"paper": {}, "fast": {"learning_rate": 0.05}, "no conv3": {"remove": ("conv3",)}}
    return ablations.run_configs(configs, tiny_images, tiny_budget, base=TINY_RUN, verbose=False,
                                 train_eval_images=16)


def test_runner_starts_every_configuration_from_the_same_weights(runs):
    paper = runs.initial_weights[("paper", 0)]
    assert runs.initial_weights[("fast", 0)] == paper
    short = runs.initial_weights[("no conv3", 0)]
    assert "conv3" not in short
    assert short["conv4"] != paper["conv4"]  # conv4's kernel has another shape: cannot be shared
    assert {k: v for k, v in short.items() if k != "conv4"} == {
        k: v for k, v in paper.items() if k not in ("conv3", "conv4")}
    assert "conv4" not in runs.shared_layers[("no conv3", 0)]


def test_runner_gives_other_seeds_other_weights_and_batches(runs):
    first, second = runs.initial_weights[("paper", 0)], runs.initial_weights[("paper", 1)]
    assert all(first[layer] != second[layer] for layer in ("conv1", "conv2", "fc6", "fc8"))
    orders = {config: runs.batch_order[(config, 0)] for config in ("paper", "no conv3", "fast")}
    assert len(set(orders.values())) == 1
    assert runs.batch_order[("paper", 0)] != runs.batch_order[("paper", 1)]


def test_batch_order_is_a_permutation_fixed_by_seed_and_epoch():
    order = ablations.batch_order(3, 1, 50)
    assert sorted(order) == list(range(50))
    np.testing.assert_array_equal(order, ablations.batch_order(3, 1, 50))
    assert not np.array_equal(order, ablations.batch_order(3, 2, 50))
    assert not np.array_equal(order, ablations.batch_order(4, 1, 50))


def test_runner_history_has_one_row_per_evaluation(runs, tiny_budget):
    history = runs.history
    per_run = 1 + tiny_budget.evaluations
    assert len(history) == 3 * 2 * per_run
    run = history[(history["config"] == "paper") & (history["seed"] == 0)]
    assert run["epoch"].tolist() == [0.0, 0.5, 1.0]
    assert run["step"].tolist() == [0, 1, 2]
    assert np.isnan(run["running_error"].iloc[0]) and run["running_error"].iloc[1:].between(0, 1).all()
    assert run[["train_error", "val_error"]].stack().between(0, 1).all()
    # two configurations trained the same way from the same start differ only by the change
    fast = history[(history["config"] == "fast") & (history["seed"] == 0)]
    assert fast["train_loss"].iloc[0] == run["train_loss"].iloc[0]
    assert fast["train_loss"].iloc[-1] != run["train_loss"].iloc[-1]
    rate = runs.models[("fast", 0)].optimizer.learning_rate
    assert float(np.asarray(rate)) == pytest.approx(0.05)


def test_runner_errors_match_keras_evaluate(runs, tiny_images):
    model = runs.models[("paper", 1)]
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    loss, accuracy = model.evaluate(tiny_images.x_val, tiny_images.y_val, verbose=0)
    ours_loss, ours_error = ablations.evaluate(model, tiny_images.x_val, tiny_images.y_val)
    assert ours_loss == pytest.approx(loss, rel=1e-4)
    assert ours_error == pytest.approx(1 - accuracy)


def test_cache_trains_a_finished_run_once(tiny_images, tiny_budget, monkeypatch):
    budget = replace(tiny_budget, seeds=(0,), max_steps_per_epoch=1)
    cache = {}
    configs = {"paper": {}, "no dropout": {"dropout": 0.0}}
    first = ablations.run_configs(configs, tiny_images, budget, base=TINY_RUN, cache=cache,
                                  verbose=False)
    monkeypatch.setattr(ablations.runner, "_train_one", lambda *a, **k: pytest.fail("trained again"))
    again = ablations.run_configs(configs, tiny_images, budget, base=TINY_RUN, cache=cache,
                                  verbose=False)
    pd.testing.assert_frame_equal(first.history, again.history)


# --------------------------------------------------------------------------- reading the table

def history_of(points):
    rows = [dict(config=c, seed=s, epoch=e, step=i, train_error=v)
            for (c, s), values in points.items() for i, (e, v) in enumerate(values)]
    return pd.DataFrame(rows)


def test_crossing_epochs_interpolates_and_says_never():
    history = history_of({("a", 0): [(0, 0.9), (1, 0.5), (2, 0.1)],
                          ("a", 1): [(0, 0.9), (1, 0.8), (2, 0.7)],
                          ("b", 0): [(0, 0.2), (1, 0.1), (2, 0.0)],
                          ("b", 1): [(0, 0.9), (1, 0.3), (2, 0.1)]})
    table = ablations.crossing_epochs(history, 0.3)
    assert table.loc["a", 0] == pytest.approx(1.5)  # 0.5 -> 0.1 passes 0.3 half-way
    assert np.isnan(table.loc["a", 1])
    assert table.loc["b", 0] == 0.0
    assert table.loc["b", 1] == pytest.approx(1.0)
    assert list(table.index) == ["a", "b"]


def test_final_values_and_paired_differences():
    history = history_of({("a", 0): [(0, 0.9), (1, 0.4)], ("b", 0): [(0, 0.9), (1, 0.3)],
                          ("a", 1): [(0, 0.9), (1, 0.5)], ("b", 1): [(0, 0.9), (1, 0.6)]})
    last = ablations.final_values(history, "train_error")
    np.testing.assert_allclose(ablations.paired_differences(last, "a", "b"), [-0.1, 0.1])


def test_effect_sentence_says_when_the_seeds_disagree():
    agree = ablations.effect_sentence([-2.0, -3.0, -2.5], what="LRN", paper="-1.4")
    assert "Every seed agrees" in agree and "lowered" in agree
    disagree = ablations.effect_sentence([-2.0, 1.0, -0.5], what="LRN", paper="-1.4")
    assert "does not show" in disagree
    opposite = ablations.effect_sentence([2.0, 3.0, 2.5], what="LRN", paper="-1.4")
    assert "opposite of the paper" in opposite
    small = ablations.effect_sentence([-0.4, -0.5], what="LRN", paper="-1.4", resolution=0.4)
    assert "within three images" in small
    gap = ablations.effect_sentence([-2.0, -3.0], what="dropout", paper="less", quantity="the gap")
    assert "lowered the gap" in gap


def test_verdict_needs_every_seed_and_a_mean_beyond_the_spread():
    assert ablations.verdict([-1.0, -1.2, -0.9]) == "lower"
    assert ablations.verdict([1.0, 1.2, 0.9]) == "higher"
    assert ablations.verdict([-1.0, 0.2, -0.9]) == "unresolved"  # one seed disagrees
    assert ablations.verdict([-0.1, -5.0, -0.1]) == "unresolved"  # mean within the spread
    assert ablations.verdict([-1.0]) == "unresolved"  # one seed
    assert ablations.verdict([-1.0, np.nan]) == "unresolved"


def test_fastest_counts_a_row_that_never_crossed_as_never():
    crossings = pd.DataFrame({0: [2.0, 1.0, np.nan, np.nan], 1: [2.0, np.nan, 3.0, np.nan]},
                             index=["a, 1", "a, 2", "b, 1", "b, 2"])
    assert ablations.fastest(crossings, "a") == "a, 1"  # "a, 2" is faster once but never crossed once
    assert ablations.fastest(crossings, "b") is None


def test_race_sentence_names_the_winner_or_a_tie():
    assert "ReLU got there first in every seed" in ablations.race_sentence([3.0, 5.0])
    assert "opposite of Figure 1" in ablations.race_sentence([0.5, 0.8])
    assert "tie" in ablations.race_sentence([0.5, 2.0])
    assert "never reached" in ablations.race_sentence([2.0, np.nan])


def test_lrn_activity_is_alpha_times_tensorflows_window_sum_over_k():
    model = ablations.build_small_alexnet(**TINY)
    x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype("float32") * 50
    activity = {name: (median, p99) for name, median, p99 in ablations.lrn_activity(model, x)}
    assert list(activity) == ["conv1_lrn", "conv2_lrn"]
    a = keras.Model(model.input, model.get_layer("conv1_relu").output)(x).numpy().astype("float64")
    r, channels = PAPER_LRN.depth_radius, a.shape[-1]
    window = np.stack([np.sum(a[..., max(0, c - r):c + r + 1] ** 2, axis=-1)
                       for c in range(channels)], axis=-1)  # the sum, one channel at a time
    # TensorFlow's LRN divides by (k + alpha * window) ** beta: recover the window where a > 0
    b = tf.nn.local_response_normalization(a, depth_radius=r, bias=PAPER_LRN.k,
                                           alpha=PAPER_LRN.alpha, beta=PAPER_LRN.beta).numpy()
    positive = a > 1e-2
    from_tf = ((a[positive] / b[positive]) ** (1 / PAPER_LRN.beta) - PAPER_LRN.k) / PAPER_LRN.alpha
    np.testing.assert_allclose(from_tf, window[positive], rtol=1e-3, atol=1e-2)  # float32 LRN
    ratio = PAPER_LRN.alpha * window / PAPER_LRN.k
    assert activity["conv1_lrn"][0] == pytest.approx(np.median(ratio), rel=1e-6)
    assert activity["conv1_lrn"][1] == pytest.approx(np.percentile(ratio, 99), rel=1e-6)
    assert ablations.lrn_activity(ablations.build_small_alexnet(lrn=False, **TINY), x) == []


def test_budgets_and_rehearsal():
    assert ablations.budget_for("smoke").max_steps_per_epoch
    assert ablations.budget_for(get_profile("cpu")).seeds == (0, 1, 2)
    rehearsal = ablations.budget_for(replace(get_profile("gpu"), rehearsal=True))
    assert rehearsal.max_steps_per_epoch and rehearsal.epochs <= 2 and rehearsal.race_epochs <= 2
    with pytest.raises(AlexnetTutError, match="no chapter 04 budget"):
        ablations.budget_for("huge")


def test_plot_histories_draws_one_line_per_configuration_and_metric():
    import matplotlib

    matplotlib.use("Agg")
    history = history_of({("a", 0): [(0, 0.9), (1, 0.5)], ("a", 1): [(0, 0.8), (1, 0.3)],
                          ("b", 0): [(0, 0.9), (1, 0.6)], ("b", 1): [(0, 0.7), (1, 0.4)]})
    history["val_error"] = history["train_error"] + 0.1
    ax = ablations.plot_histories(history, ["train_error", "val_error"], title="t (offline stand-in)",
                                  threshold=0.25)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a, training", "a, validation", "b, training", "b, validation", "threshold 25.0 %"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [85.0, 40.0])  # mean over seeds, in %
    assert ax.get_title() == "t (offline stand-in)" and ax.get_ylabel() == "error (%)"
