"""The CUDA backend against the CPU engine: every kernel, layer, loss and optimizer, and whole runs.

Without a GPU these run under Numba's CUDA simulator, switched on here before
anything imports ``numba.cuda`` (pytest imports every test module before it runs
any test, so the whole session then shares the simulator).  On a GPU machine,
``NUMBA_ENABLE_CUDASIM=0 pytest tests/test_cuda.py`` runs them on the device.
The simulator runs each GPU thread as a Python thread: shapes stay tiny.
"""
import os
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
import numba  # noqa: E402

if "numba.cuda" not in sys.modules:  # numba read its config at import; the simulator flag must be set before numba.cuda
    numba.config.ENABLE_CUDASIM = int(os.environ["NUMBA_ENABLE_CUDASIM"] not in ("", "0"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnrun import dsl  # noqa: E402
from nnrun.dsl.spec import OptimizerSpec  # noqa: E402
from nnrun.engine.backend import BackendUnavailable, get_backend  # noqa: E402
from nnrun.engine.network import Network  # noqa: E402

try:
    CUDA = get_backend("cuda")
except BackendUnavailable as error:  # numba.cuda was imported earlier without the simulator, and no GPU
    pytest.skip(f"no CUDA device and no simulator: {error}", allow_module_level=True)

from nnrun.engine.cuda.common import to_device, to_host  # noqa: E402

CPU = get_backend("cpu")
TOLERANCE = dict(rtol=2e-4, atol=2e-5)  # float32, summed in another order


def infos(text):
    return dsl.resolve(dsl.parse(text)).layers


def pair(info, seed=0):
    """The CPU and CUDA layers for ``info``, built from the same seed."""
    return (CPU.make_layer(info, np.random.default_rng(seed)), CUDA.make_layer(info, np.random.default_rng(seed)))


def assert_close(cuda_array, cpu_array, **tolerance):
    np.testing.assert_allclose(to_host(cuda_array), np.asarray(cpu_array), **(tolerance or TOLERANCE))


def check_layer(text, batch=2, training=True, index=0, seed=0):
    """Forward and backward of layer ``index`` of ``text`` on both devices: outputs, ∂x, gradients, state."""
    info = infos(text)[index]
    cpu, gpu = pair(info, seed)
    for name, value in cpu.params.items():
        np.testing.assert_array_equal(to_host(gpu.params[name]), value)  # same initialisation
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, *info.input_shape)).astype(np.float32)
    y_cpu = cpu.forward(x, training)
    y_gpu = gpu.forward(to_device(x), training)
    assert tuple(y_gpu.shape) == y_cpu.shape
    assert_close(y_gpu, y_cpu)
    for name, value in cpu.state.items():
        assert_close(gpu.state[name], value)
    if training:
        dy = rng.standard_normal(y_cpu.shape).astype(np.float32)
        assert_close(gpu.backward(to_device(dy)), cpu.backward(dy))
        assert gpu.grads.keys() == cpu.grads.keys()
        for name, value in cpu.grads.items():
            assert_close(gpu.grads[name], value)
    return cpu, gpu


# ------------------------------------------------------------------ matmul


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_tiled_matmul_with_transposes_bias_and_partial_tiles(trans_a, trans_b):
    from nnrun.engine.cuda.matmul import TILE, matmul

    rng = np.random.default_rng(0)
    rows, inner, columns = TILE + 1, 2 * TILE + 3, TILE - 1  # no size a multiple of the tile
    a = rng.standard_normal((inner, rows) if trans_a else (rows, inner)).astype(np.float32)
    b = rng.standard_normal((columns, inner) if trans_b else (inner, columns)).astype(np.float32)
    bias = rng.standard_normal(columns).astype(np.float32)
    out = matmul(to_device(a), to_device(b), trans_a=trans_a, trans_b=trans_b, bias=to_device(bias))
    assert_close(out, (a.T if trans_a else a) @ (b.T if trans_b else b) + bias)


# ------------------------------------------------------------------ layers


@pytest.mark.parametrize("text", ["input 5; dense 3", "input 5; dense 3 l1 0.01 l2 0.02"])
def test_dense(text):
    cpu, gpu = check_layer(text, batch=3)
    assert gpu.penalty() == pytest.approx(cpu.penalty(), rel=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        "input 7x2; conv 3 3 stride 2 pad same",  # 1-D
        "input 5x5x2; conv 2 3x3 stride 2 pad same l2 0.01",  # 2-D, padding after, penalty
        "input 5x4x1; conv 2 2x3",  # 2-D, valid, non-square
        "input 2x3x3x1; conv 2 2 pad same",  # 3-D, padding after
    ],
)
def test_conv(text):
    check_layer(text)


@pytest.mark.parametrize(
    "text",
    [
        "input 5x5x2; pool max 3 stride 1",  # overlapping windows
        "input 5x5x2; pool max 2 stride 2 pad same",
        "input 5x5x1; pool avg 2 pad same",  # padding cells take no part in the mean
        "input 4x3x2; pool avg global",
        "input 6x2; pool max 2",  # 1-D
        "input 2x4x4x1; pool max 2",  # 3-D
    ],
)
def test_pool(text):
    check_layer(text)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    info = infos("input 4x4x1; pool max 2")[0]
    cpu, gpu = pair(info)
    x = np.ones((1, 4, 4, 1), np.float32)
    cpu.forward(x, True), gpu.forward(to_device(x), True)
    dy = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)
    assert_close(gpu.backward(to_device(dy)), cpu.backward(dy))


@pytest.mark.parametrize("function", ["relu", "leakyrelu 0.2", "sigmoid", "tanh", "softmax", "linear"])
def test_activations(function):
    check_layer(f"input 4x5; {function}", batch=2)


def test_batchnorm_training_then_inference():
    text = "input 3x2x3; batchnorm"
    cpu, gpu = check_layer(text, batch=4)  # training: batch statistics, moving statistics updated
    x = np.random.default_rng(5).standard_normal((2, 3, 2, 3)).astype(np.float32)
    assert_close(gpu.forward(to_device(x), False), cpu.forward(x, False))  # inference: moving statistics


def test_flatten_and_dropout_at_inference_are_the_identity():
    check_layer("input 2x3x2; flatten")
    check_layer("input 6; dropout 0.5", training=False)


def test_dropout_kernels_with_a_fixed_mask():
    from nnrun.engine.cuda.dropout import dropout_backward_kernel, dropout_forward_kernel
    from nnrun.engine.layers.dropout import dropout_backward, dropout_forward

    rng = np.random.default_rng(0)
    x, uniform, dy = (rng.random(40, dtype=np.float32) for _ in range(3))
    y, mask, dx = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    dropout_forward(x, uniform, 0.3, y, mask)
    dropout_backward(dy, mask, dx)
    y_gpu, mask_gpu, dx_gpu = (to_device(np.zeros_like(x)) for _ in range(3))
    dropout_forward_kernel[1, 8](to_device(x), to_device(uniform), 0.3, y_gpu, mask_gpu)
    dropout_backward_kernel[1, 8](to_device(dy), mask_gpu, dx_gpu)
    for gpu_array, cpu_array in ((y_gpu, y), (mask_gpu, mask), (dx_gpu, dx)):
        assert_close(gpu_array, cpu_array)


def test_dropout_and_dropconnect_layers_draw_fresh_masks_on_the_device():
    info = infos("input 200; dropout 0.25")[0]
    layer = CUDA.make_layer(info, np.random.default_rng(0))
    x = np.ones((2, 200), np.float32)
    first = to_host(layer.forward(to_device(x), True))
    dx = to_host(layer.backward(to_device(x)))
    np.testing.assert_array_equal(dx, first)  # backward uses the same mask
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)}
    assert 0.1 < (first == 0).mean() < 0.4
    assert not np.array_equal(first, to_host(layer.forward(to_device(x), True)))

    from nnrun.engine.cuda.common import dropconnect_mask_kernel
    from nnrun.engine.layers.dense import dropconnect_mask_ref

    uniform = np.random.default_rng(1).random(30, dtype=np.float32)
    mask = to_device(np.zeros(30, np.float32))
    dropconnect_mask_kernel[1, 8](to_device(uniform), 0.4, mask)
    assert_close(mask, dropconnect_mask_ref(uniform, 0.4))


@pytest.mark.parametrize("text", ["input 3x2; rnn 3 sequences", "input 3x2; lstm 2", "input 3x2; gru 2 sequences",
                                  "input 3x2; rnn 2 relu"])
def test_recurrent_forward_and_bptt(text):
    cpu, gpu = check_layer(text)
    np.testing.assert_allclose(gpu.state_gradient_norms, cpu.state_gradient_norms, **TOLERANCE)


# ------------------------------------------------------------------ losses and optimizers


@pytest.mark.parametrize("name, fused", [("cce", "softmax"), ("bce", "sigmoid"), ("cce", None), ("bce", None),
                                         ("mse", None), ("mae", None)])
def test_losses(name, fused):
    rng = np.random.default_rng(0)
    output = rng.random((4, 3), dtype=np.float32) * (4 if fused else 1) - (2 if fused else 0)
    if name == "cce":
        if not fused:
            output /= output.sum(axis=1, keepdims=True)
        y = rng.integers(0, 3, 4)
    elif name == "bce":
        y = rng.integers(0, 2, (4, 3)).astype(np.float32)
    else:
        y = rng.standard_normal((4, 3)).astype(np.float32)
    loss_cpu, grad_cpu, pred_cpu = CPU.make_loss(name, fused=fused)(output, y)
    loss_gpu, grad_gpu, pred_gpu = CUDA.make_loss(name, fused=fused)(to_device(output), y)
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-5)
    assert_close(grad_gpu, grad_cpu)
    assert_close(pred_gpu, pred_cpu)


@pytest.mark.parametrize(
    "spec",
    [
        OptimizerSpec("sgd", lr=0.1),
        OptimizerSpec("sgd", lr=0.1, momentum=0.9),
        OptimizerSpec("sgd", lr=0.1, momentum=0.9, nesterov=True, clip=0.5),
        OptimizerSpec("adam", lr=0.01),
        OptimizerSpec("adam", lr=0.01, clip=0.5),
    ],
    ids=["sgd", "momentum", "nesterov-clip", "adam", "adam-clip"],
)
def test_optimizer_steps(spec):
    rng = np.random.default_rng(0)
    params = {"a/kernel": rng.standard_normal((3, 2)).astype(np.float32), "a/bias": np.zeros(2, np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(2)]
    cpu_params = {k: v.copy() for k, v in params.items()}
    gpu_params = {k: to_device(v) for k, v in params.items()}
    cpu, gpu = CPU.make_optimizer(spec, cpu_params), CUDA.make_optimizer(spec, gpu_params)
    for g in grads:
        cpu.step(g)
        gpu.step({k: to_device(v) for k, v in g.items()})
    for key, value in cpu_params.items():
        assert_close(gpu_params[key], value)
    state = gpu.state()
    assert state.keys() == cpu.state().keys()
    for key, value in cpu.state().items():
        np.testing.assert_allclose(state[key], value, **TOLERANCE)


# ------------------------------------------------------------------ whole networks

CNN = "input 6x6x1; conv 2 3x3 relu; pool max 2; flatten; dense 3 softmax; optimizer adam lr 0.05"
LSTM = "input 4x2; lstm 3; dense 2 softmax; optimizer sgd lr 0.5 momentum 0.9"


def batch(model, size=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, *model.input_shape)).astype(np.float32)
    return x, rng.integers(0, model.output_shape[-1], size)


@pytest.mark.parametrize("text", [CNN, LSTM], ids=["cnn", "lstm"])
def test_training_steps_give_the_cpu_losses(text):
    model = dsl.resolve(dsl.parse(text))
    cpu, gpu = Network(model, seed=4), Network(model, seed=4, backend="cuda")
    assert gpu.device == "cuda"
    x, y = batch(model)
    for _ in range(3):
        (loss_cpu, metric_cpu), (loss_gpu, metric_gpu) = cpu.train_step(x, y), gpu.train_step(x, y)
        assert loss_gpu == pytest.approx(loss_cpu, rel=1e-4)
        assert metric_gpu == metric_cpu
    for key, value in cpu.weights().items():
        np.testing.assert_allclose(gpu.weights()[key], value, rtol=1e-3, atol=1e-5)


def test_a_model_trained_on_one_device_runs_on_the_other():
    text = "input 5; dense 4 tanh; batchnorm; dense 3 softmax; optimizer adam lr 0.05"
    model = dsl.resolve(dsl.parse(text))
    x, y = batch(model, size=4)
    for trained_on, run_on in (("cpu", "cuda"), ("cuda", "cpu")):
        trained = Network(model, seed=1, backend=trained_on)
        trained.train_step(x, y)
        weights = trained.weights()
        assert all(type(value) is np.ndarray for value in weights.values())
        other = Network(model, seed=2, backend=run_on)
        other.load_weights(weights)
        other.load_optimizer_state(trained.optimizer_state())
        np.testing.assert_allclose(other.predict(x), trained.predict(x), **TOLERANCE)
        assert other.evaluate(x, y)["loss"] == pytest.approx(trained.evaluate(x, y)["loss"], rel=1e-4)
        # …and training continues from the same optimizer state on both
        assert other.train_step(x, y)[0] == pytest.approx(trained.train_step(x, y)[0], rel=1e-4)


def test_cli_trains_on_cuda_saves_and_evaluates_on_either_device(tmp_path):
    from conftest import run_cli

    model = tmp_path / "xor.npz"
    spec = "input 2; dense 4 tanh; dense 1 sigmoid; optimizer adam lr 0.1"
    status, out, err = run_cli(spec, "--data", "xor", "--device", "cuda", "--epochs", "1", "--batch", "256",
                               "--seed", "3", "--save", model)
    assert status == 0, err
    assert "cuda" in out
    results = {}
    for device in ("cpu", "cuda"):
        status, out, err = run_cli("eval", model, "--data", "xor", "--device", device)
        assert status == 0, err
        results[device] = [line for line in out.splitlines() if "loss" in line]
    assert results["cpu"] and results["cpu"] == results["cuda"]
