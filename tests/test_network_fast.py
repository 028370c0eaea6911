"""The network's cpu shortcuts (fused dense+activation steps, no ∂L/∂x for the first layer)
give the reference backend's numbers, and what a user sees does not change."""
import numpy as np
import pytest

from nnrun import dsl
from nnrun.engine.layers.activations import Activation
from nnrun.engine.network import Network

NETS = {
    "relu mlp, softmax head": ("input 6; dense 8 relu; dense 7 tanh; dense 3 softmax", "cce"),
    "sigmoid head with bce": ("input 6; dense 5 sigmoid; dense 1 sigmoid; loss bce", "bce"),
    "dropout between": ("input 6; dense 8 relu; dropout 0.3; dense 4 linear; dense 3 softmax", "cce"),
    "image, implicit flatten": ("input 4x4x1; dense 6 tanh; dense 3 softmax", "cce"),
    "conv first": ("input 6x6x1; conv 2 3x3 relu; flatten; dense 3 softmax", "cce"),
    "regression": ("input 6; dense 8 relu; dense 2; loss mse", "mse"),
}


def build(text, backend):
    return Network(dsl.resolve(dsl.parse(text)), seed=5, backend=backend)


def data(net, loss, size=12):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((size, *net.model.input_shape)).astype(np.float32)
    if loss == "cce":
        return x, rng.integers(0, net.model.output_shape[-1], size)
    if loss == "bce":
        return x, rng.integers(0, 2, (size, 1)).astype(np.float32)
    return x, rng.standard_normal((size, *net.model.output_shape)).astype(np.float32)


@pytest.mark.parametrize("name", list(NETS))
def test_cpu_shortcuts_train_like_the_reference(name):
    text, loss = NETS[name]
    cpu, ref = build(text, "cpu"), build(text, "reference")
    x, y = data(cpu, loss)
    for _ in range(5):
        np.testing.assert_allclose(cpu.train_step(x, y), ref.train_step(x, y), rtol=1e-4, atol=1e-6)
    for key, value in cpu.weights().items():
        np.testing.assert_allclose(value, ref.weights()[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cpu.predict(x, batch=5), ref.predict(x, batch=5), rtol=1e-4, atol=1e-6)
    cpu_eval, ref_eval = cpu.evaluate(x, y, batch=5), ref.evaluate(x, y, batch=5)
    for key in ref_eval:
        assert cpu_eval[key] == pytest.approx(ref_eval[key], rel=1e-4, abs=1e-6)


def test_activation_steps_after_dense_are_fused_on_the_cpu_only():
    text = NETS["relu mlp, softmax head"][0]
    cpu, ref = build(text, "cpu"), build(text, "reference")
    assert [type(layer).__name__ for layer in cpu.layers] == [type(layer).__name__ for layer in ref.layers]
    assert len(cpu.layers) == 6 and len(ref.steps) == 5  # the softmax goes to the loss
    assert [type(step).__name__ for step in cpu.steps] == ["Dense", "Dense", "Dense"]
    assert [step.activation for step in cpu.steps] == ["relu", "tanh", None]
    assert not any(isinstance(step, Activation) for step in cpu.steps)
    assert isinstance(cpu.predict_steps[-1], Activation) and cpu.predict_steps[-1].function == "softmax"
    assert np.allclose(cpu.predict(np.ones((2, 6), np.float32)).sum(axis=1), 1.0)


@pytest.mark.parametrize("name,first", [("relu mlp, softmax head", 0), ("image, implicit flatten", 1),
                                        ("conv first", 0), ("dropout between", 0)])
def test_only_the_first_layer_with_parameters_skips_the_input_gradient(name, first):
    for backend in ("cpu", "reference"):
        net = build(NETS[name][0], backend)
        with_grad = [layer.input_grad for layer in net.layers if hasattr(layer, "input_grad")]
        assert with_grad[0] is False and all(with_grad[1:])
        assert net.layers[first].params and not any(layer.params for layer in net.layers[:first])


def test_a_first_batchnorm_still_gets_its_gradient():
    text = "input 6; batchnorm; dense 4 relu; dense 3 softmax"
    cpu, ref = build(text, "cpu"), build(text, "reference")
    x, y = data(cpu, "cce")
    for _ in range(3):
        cpu.train_step(x, y), ref.train_step(x, y)
    for key in ("batchnorm_1/gamma", "batchnorm_1/beta", "dense_1/kernel"):
        np.testing.assert_allclose(cpu.weights()[key], ref.weights()[key], rtol=1e-4, atol=1e-5)
    assert cpu.weights()["batchnorm_1/gamma"].std() > 0  # it learned: the dense layer passed ∂L/∂x back


def test_predict_of_many_batches_keeps_every_batch():
    net = build(NETS["relu mlp, softmax head"][0], "cpu")
    x = np.random.default_rng(1).standard_normal((23, 6)).astype(np.float32)
    whole = net.predict(x, batch=23)
    np.testing.assert_allclose(net.predict(x, batch=4), whole, rtol=1e-5, atol=1e-7)
