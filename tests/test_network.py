"""The network end to end: learning, repeatability, backends, weights, the API the CLI uses."""
import numpy as np
import pytest

from nnrun import dsl
from nnrun.dsl.spec import OptimizerSpec
from nnrun.engine.backend import get_backend
from nnrun.engine.layers.activations import Activation
from nnrun.engine.layers.dense import Dense
from nnrun.engine.network import Network

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0, 1, 1, 0])

REGULARIZED = "input 6; dense 8 relu dropconnect 0.2 l2 0.01; batchnorm; dropout 0.3; dense 3 softmax"


def network(text, **kwargs):
    return Network(dsl.resolve(dsl.parse(text)), **kwargs)


def batch(seed=0, shape=(6,), classes=3, size=16):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((size, *shape)).astype(np.float32), rng.integers(0, classes, size)


@pytest.mark.parametrize("head", ["dense 1 sigmoid", "dense 2 softmax"])
def test_tiny_mlp_learns_xor(head):
    net = network(f"input 2; dense 8 tanh; {head}; optimizer adam lr 0.05", seed=0)
    for _ in range(300):
        loss, correct = net.train_step(XOR_X, XOR_Y)
    assert correct == 4 and loss < 0.05
    assert net.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0
    assert net.task == ("binary" if "sigmoid" in head else "classification")


def test_seeded_runs_are_bit_identical():
    x, y = batch()

    def run(seed):
        net = network(REGULARIZED, seed=seed)
        losses = [net.train_step(x, y)[0] for _ in range(5)]
        return losses, net.weights()

    (losses_a, weights_a), (losses_b, weights_b) = run(7), run(7)
    assert losses_a == losses_b
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        np.testing.assert_array_equal(weights_a[key], weights_b[key])
    assert run(8)[0] != losses_a


def test_cpu_and_reference_backends_agree_on_an_mlp():
    x, y = batch(1)
    cpu, ref = network(REGULARIZED, seed=3), network(REGULARIZED, seed=3, backend="reference")
    for _ in range(4):
        np.testing.assert_allclose(cpu.train_step(x, y), ref.train_step(x, y), rtol=1e-5)
    for key, value in cpu.weights().items():
        np.testing.assert_allclose(value, ref.weights()[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cpu.predict(x), ref.predict(x), rtol=1e-4, atol=1e-6)


def test_cpu_and_reference_backends_agree_on_a_cnn():
    pytest.importorskip("nnrun.engine.layers.conv")
    pytest.importorskip("nnrun.engine.layers.pool")
    text = "input 8x8x2; conv 4 3x3 relu; pool max 2; batchnorm; conv 3 2x2 pad same tanh; dense 3 softmax"
    x, y = batch(2, shape=(8, 8, 2), size=6)
    cpu, ref = network(text, seed=4), network(text, seed=4, backend="reference")
    for _ in range(3):
        np.testing.assert_allclose(cpu.train_step(x, y), ref.train_step(x, y), rtol=1e-4)
    np.testing.assert_allclose(cpu.predict(x), ref.predict(x), rtol=1e-4, atol=1e-6)


def test_activation_on_a_statement_is_its_own_step():
    net = network("input 4; dense 3 relu; dense 2 softmax", seed=0)
    assert [type(layer) for layer in net.layers] == [Dense, Activation, Dense, Activation]
    assert net.loss.fused == "softmax" and net.body == net.layers[:-1]
    written_apart = network("input 4; dense 3; relu; dense 2; softmax", seed=0)
    x, _ = batch(shape=(4,))
    np.testing.assert_array_equal(net.predict(x), written_apart.predict(x))
    np.testing.assert_allclose(net.predict(x).sum(axis=1), 1.0, rtol=1e-6)


def test_a_recurrent_layer_applies_its_own_activation():
    recurrent = pytest.importorskip("nnrun.engine.layers.recurrent")
    net = network("input 5x3; rnn 4 relu; dense 2 softmax", seed=0)
    assert [type(layer) for layer in net.layers] == [recurrent.Recurrent, Dense, Activation]
    x, y = batch(shape=(5, 3), classes=2, size=4)
    assert np.isfinite(net.train_step(x, y)[0])


def test_loss_after_a_non_softmax_layer_is_not_fused():
    net = network("input 4; dense 3 relu; loss cce", seed=0)
    assert net.loss.fused is None and net.body == net.layers
    x, y = batch(shape=(4,), size=8)
    loss, _ = net.train_step(x, y)
    assert np.isfinite(loss)


def test_regression_learns_a_line_and_reports_mbe():
    net = network("input 1; dense 1; loss mse; optimizer sgd lr 0.1", seed=0)
    assert net.task == "regression"
    x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    y = 2 * x + 1
    for _ in range(200):
        net.train_step(x, y)
    result = net.evaluate(x, y)
    assert result["loss"] < 1e-4 and abs(result["mbe"]) < 1e-2
    np.testing.assert_allclose(net.predict(np.array([[0.5]], np.float32)), [[2.0]], atol=1e-2)


def test_evaluate_does_not_depend_on_the_batch_size():
    net = network(REGULARIZED, seed=1)
    x, y = batch(size=10)
    net.train_step(x, y)
    small, large = net.evaluate(x, y, batch=3), net.evaluate(x, y, batch=1000)
    assert small["loss"] == pytest.approx(large["loss"], rel=1e-6)
    assert small["accuracy"] == large["accuracy"]
    np.testing.assert_array_equal(net.predict(x, batch=3), net.predict(x, batch=1000))


def test_reported_loss_includes_the_penalty():
    plain = network("input 6; dense 3 softmax", seed=5)
    penalised = network("input 6; dense 3 softmax l2 0.5", seed=5)
    x, y = batch(size=8)
    kernel = penalised.weights()["dense_1/kernel"]
    difference = penalised.evaluate(x, y)["loss"] - plain.evaluate(x, y)["loss"]
    assert difference == pytest.approx(0.5 * float((kernel.astype(np.float64) ** 2).sum()), rel=1e-5)


def test_weights_round_trip_and_mismatches_are_named():
    x, y = batch()
    trained = network(REGULARIZED, seed=1)
    for _ in range(3):
        trained.train_step(x, y)
    weights = trained.weights()
    assert {"dense_1/kernel", "dense_1/bias", "batchnorm_1/gamma", "batchnorm_1/moving_mean",
            "batchnorm_1/moving_variance", "dense_2/kernel"} <= set(weights)
    fresh = network(REGULARIZED, seed=2)
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))

    with pytest.raises(ValueError, match="dense_2/kernel has shape \\(8, 4\\)"):
        fresh.load_weights({**weights, "dense_2/kernel": np.zeros((8, 4), np.float32)})
    with pytest.raises(ValueError, match="missing batchnorm_1/moving_mean"):
        fresh.load_weights({k: v for k, v in weights.items() if k != "batchnorm_1/moving_mean"})
    with pytest.raises(ValueError, match="unexpected conv_1/kernel"):
        fresh.load_weights({**weights, "conv_1/kernel": np.zeros(3, np.float32)})


def test_resuming_from_weights_and_optimizer_state_continues_exactly():
    text = "input 6; dense 8 relu; dense 3 softmax; optimizer sgd lr 0.05 momentum 0.9 nesterov"
    x, y = batch()
    straight = network(text, seed=1)
    for _ in range(3):
        straight.train_step(x, y)
    checkpoint = (straight.weights(), straight.optimizer_state())
    expected = straight.train_step(x, y)
    resumed = network(text, seed=99)
    resumed.load_weights(checkpoint[0])
    resumed.load_optimizer_state(checkpoint[1])
    assert resumed.train_step(x, y) == expected


def test_optimizer_from_the_constructor_overrides_the_spec():
    net = network("input 6; dense 3 softmax; optimizer adam lr 0.1", seed=0, optimizer=OptimizerSpec("sgd", lr=0.0))
    before = net.weights()
    net.train_step(*batch())
    for key, value in net.weights().items():
        np.testing.assert_array_equal(value, before[key])


def test_wrong_input_shape_is_a_clear_error():
    net = network("input 6; dense 3 softmax", seed=0)
    with pytest.raises(ValueError, match="this network takes \\(6,\\)"):
        net.train_step(*batch(shape=(5,)))


def test_backend_choice():
    assert get_backend().name == "cpu" and not get_backend("cpu").reference
    assert get_backend("reference").reference
    # "cuda" without a GPU: tests/test_cuda_unavailable.py (in a subprocess; this session may run the simulator)
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        get_backend("tpu")
