"""The solver: the paper's SGD update rule (§5) against NumPy and PyTorch, the learning-rate schedule, the loss."""

import keras
import numpy as np
import pytest

from alexnet_tut import solver, speedups
from alexnet_tut.recipe import get_recipe


def tiny_model(num_classes=3, recipe=None, batch_size=None):
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, name="fc8")])
    solver.compile_model(model, recipe or get_recipe("paper"), batch_size=batch_size)
    return model


def learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


# --------------------------------------------------------------------------
# The learning-rate schedule
# --------------------------------------------------------------------------

def test_the_run_starts_at_001_for_batch_128_and_scales_linearly_with_the_batch():
    recipe = get_recipe()
    assert solver.LearningRateSchedule.starting_rate(recipe, 128) == pytest.approx(0.01)
    assert solver.LearningRateSchedule.starting_rate(recipe, 32) == pytest.approx(0.0025)
    assert solver.LearningRateSchedule.starting_rate(recipe) == pytest.approx(0.01)
    assert learning_rate(tiny_model(batch_size=8)) == pytest.approx(0.01 * 8 / 128)
    assert solver.LearningRateSchedule(recipe, 32).floor == pytest.approx(0.0025e-3)


def test_learning_rate_is_divided_by_ten_at_most_three_times():
    model = tiny_model()
    schedule = solver.LearningRateSchedule(get_recipe("paper", plateau_patience=1))
    schedule.set_model(model)
    schedule.on_train_begin()
    rates = []
    for epoch in range(12):  # validation accuracy never improves after epoch 0
        schedule.on_epoch_begin(epoch)
        schedule.on_epoch_end(epoch, {"val_top1": 0.5})
        rates.append(learning_rate(model))
    assert sorted(set(rates), reverse=True) == pytest.approx([1e-2, 1e-3, 1e-4, 1e-5])
    assert rates[-1] == pytest.approx(1e-5)
    assert [schedule.reductions(rate) for rate in (1e-2, 1e-3, 1e-5)] == [0, 1, 3]


def test_the_schedule_restores_its_counters_when_training_restarts():
    model = tiny_model()
    schedule = solver.LearningRateSchedule(get_recipe("paper", plateau_patience=3))
    schedule.set_model(model)
    schedule.on_train_begin()
    for epoch, top1 in enumerate((0.4, 0.6, 0.5, 0.5)):
        schedule.on_epoch_end(epoch, {"val_top1": top1})
    state = schedule.get_state()
    assert state == {"best": 0.6, "wait": 2, "cooldown_counter": 0}

    again = solver.LearningRateSchedule(get_recipe("paper", plateau_patience=3))
    again.set_model(model)
    again.restore(state)
    again.on_train_begin()  # Keras resets the counters here; the restored ones win
    assert again.get_state() == state
    again.on_epoch_end(4, {"val_top1": 0.5})  # the third epoch without progress
    assert learning_rate(model) == pytest.approx(1e-3)


def test_modern_recipe_warms_up_then_hands_over_to_the_plateaus():
    recipe = get_recipe("modern")
    assert recipe.warmup_epochs == 2 and recipe.label_smoothing == 0.1
    model = tiny_model(recipe=recipe)
    schedule = solver.LearningRateSchedule(recipe)
    schedule.set_model(model)
    schedule.on_train_begin()
    rates = []
    for epoch in range(4):
        schedule.on_epoch_begin(epoch)
        rates.append(learning_rate(model))
        schedule.on_epoch_end(epoch, {"val_top1": 0.1 * epoch})  # improving: no division
    assert rates == pytest.approx([0.005, 0.01, 0.01, 0.01])


def test_only_the_schedule_names_reduce_lr_on_plateau():
    import pathlib

    import alexnet_tut

    package = pathlib.Path(alexnet_tut.__file__).parent
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if "ReduceLROnPlateau" in p.read_text())
    assert users == ["solver.py"]


# --------------------------------------------------------------------------
# Loss, metrics, model
# --------------------------------------------------------------------------

def test_the_decay_lives_in_the_optimizer_not_in_the_loss():
    recipe = get_recipe()
    model = solver.build_model("paper", 67, 3, recipe)
    assert model.get_layer("conv1").kernel_regularizer is None and not model.losses
    assert model.get_layer("drop6").rate == 0.5
    solver.compile_model(model, recipe, batch_size=128)
    assert isinstance(model.optimizer, solver.PaperSGD)
    assert float(model.optimizer.momentum) == pytest.approx(0.9)
    assert model.optimizer.paper_weight_decay == pytest.approx(0.0005)
    assert learning_rate(model) == pytest.approx(0.01)


def test_top5_of_three_classes_counts_the_top_three():
    probabilities = np.array([[0.5, 0.3, 0.2]], "float32")
    top5 = [m for m in solver.accuracy_metrics(3) if m.name == "top5"][0]
    top5.update_state(np.array([2]), probabilities)
    assert float(top5.result()) == 1.0


def test_label_smoothing_equals_keras_categorical_crossentropy():
    loss = solver.SmoothedSparseCrossentropy(3, 0.1)
    logits = np.array([[2.0, 0.0, -1.0]], "float32")
    expected = keras.losses.categorical_crossentropy(
        np.array([[0.0, 1.0, 0.0]], "float32"), logits, from_logits=True, label_smoothing=0.1)
    assert float(loss(np.array([1]), logits)) == pytest.approx(float(expected[0]), rel=1e-5)


def test_paper_init_sets_the_papers_biases():
    recipe = get_recipe(paper_init=True, paper_bias=0.1)  # Caffe's fallback
    model = solver.build_model("paper", 67, 3, recipe)
    assert np.allclose(keras.ops.convert_to_numpy(model.get_layer("fc6").bias), 0.1)
    assert np.allclose(keras.ops.convert_to_numpy(model.get_layer("conv3").bias), 0.0)
    assert np.std(keras.ops.convert_to_numpy(model.get_layer("fc7").kernel)) == pytest.approx(
        0.01, rel=0.05)


# --------------------------------------------------------------------------
# PaperSGD against the paper's rule written out, and against PyTorch
# --------------------------------------------------------------------------

def kernel_only(w0: np.ndarray) -> keras.layers.Dense:
    """A bias-free Dense layer whose kernel starts at ``w0``: one weight tensor to update."""
    layer = keras.layers.Dense(w0.shape[1], use_bias=False)
    layer.build((None, w0.shape[0]))
    layer.set_weights([w0])
    return layer


def _sgd_steps_in_numpy(w, grads, lr, momentum, decay, decayed):
    """The paper's §5 update, written out: v <- 0.9 v - decay·lr·w - lr·grad; w <- w + v."""
    w, v = w.copy(), np.zeros_like(w)
    for g in grads:
        v = momentum * v - (decay * lr * w if decayed else 0.0) - lr * g
        w = w + v
    return w


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_paper_sgd_is_the_papers_update_rule_on_kernels_and_spares_biases(compiled):
    rng = np.random.default_rng(0)
    layer = keras.layers.Dense(3, name="fc")
    layer.build((None, 4))
    kernel0 = rng.normal(size=(4, 3)).astype("float32")
    bias0 = rng.normal(size=3).astype("float32")
    layer.set_weights([kernel0, bias0])
    optimizer = solver.PaperSGD(learning_rate=0.1, momentum=0.9, paper_weight_decay=0.05)
    optimizer.build([layer.kernel, layer.bias])
    kernel_grads = [rng.normal(size=(4, 3)).astype("float32") for _ in range(3)]
    bias_grads = [rng.normal(size=3).astype("float32") for _ in range(3)]

    def apply(gk, gb):
        optimizer.apply_gradients([(gk, layer.kernel), (gb, layer.bias)])

    if compiled:  # as inside Model.fit; on TensorFlow PaperSGD's update is an XLA function
        if keras.backend.backend() != "tensorflow":
            pytest.skip("tf.function needs the TensorFlow backend")
        import tensorflow as tf

        apply = tf.function(apply)
    for gk, gb in zip(kernel_grads, bias_grads):
        apply(gk, gb)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(
        kernel, _sgd_steps_in_numpy(kernel0, kernel_grads, 0.1, 0.9, 0.05, True), rtol=1e-5)
    np.testing.assert_allclose(
        bias, _sgd_steps_in_numpy(bias0, bias_grads, 0.1, 0.9, 0.05, False), rtol=1e-5)


def test_paper_sgd_without_momentum_still_decays_kernels():
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(3, 2)).astype("float32")
    layer = kernel_only(w0)
    optimizer = solver.PaperSGD(learning_rate=0.1, momentum=0.0, paper_weight_decay=0.05)
    grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
    for g in grads:
        optimizer.apply_gradients([(g, layer.kernel)])
    np.testing.assert_allclose(
        layer.get_weights()[0], _sgd_steps_in_numpy(w0, grads, 0.1, 0.0, 0.05, True), rtol=1e-5)


def test_paper_sgd_runs_one_compiled_update_per_variable_on_tensorflow(record_calls):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused update is TensorFlow's path")
    calls = record_calls(speedups, "fused_momentum_update")
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    optimizer = solver.PaperSGD()
    optimizer.apply_gradients([(np.ones((3, 2), "float32"), layer.kernel),
                               (np.ones(2, "float32"), layer.bias)])
    assert calls == [(3, 2), (2,)]


def test_paper_sgd_matches_pytorch_sgd_with_weight_decay():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(5, 2)).astype("float32")
    grads = [rng.normal(size=(5, 2)).astype("float32") for _ in range(4)]
    layer = kernel_only(w0)
    optimizer = solver.PaperSGD(learning_rate=0.01, momentum=0.9, paper_weight_decay=5e-4)
    param = torch.nn.Parameter(torch.tensor(w0))
    reference = torch.optim.SGD([param], lr=0.01, momentum=0.9, weight_decay=5e-4)
    for g in grads:
        optimizer.apply_gradients([(g, layer.kernel)])
        param.grad = torch.tensor(g)
        reference.step()
    np.testing.assert_allclose(layer.get_weights()[0], param.detach().numpy(), rtol=1e-5)


def test_paper_sgd_round_trips_through_a_saved_model(tmp_path):
    model = tiny_model()
    model.fit(np.zeros((3, 4, 4, 3), "float32"), np.arange(3), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, solver.PaperSGD)
    assert loaded.optimizer.paper_weight_decay == pytest.approx(0.0005)




@pytest.mark.parametrize("fast", [True, False], ids=["fused", "keras-sgd"])
def test_paper_sgd_gives_the_same_weights_with_and_without_the_fused_update(fast):
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(6, 4)).astype("float32")
    grads = [rng.normal(size=(6, 4)).astype("float32") for _ in range(3)]
    layer = kernel_only(w0)
    optimizer = solver.PaperSGD(learning_rate=0.05, momentum=0.9, paper_weight_decay=0.01)
    before = speedups.enabled()
    speedups.set_enabled(fast)
    try:
        for g in grads:
            optimizer.apply_gradients([(g, layer.kernel)])
    finally:
        speedups.set_enabled(before)
    np.testing.assert_allclose(layer.get_weights()[0],
                               _sgd_steps_in_numpy(w0, grads, 0.05, 0.9, 0.01, True), rtol=1e-5)
