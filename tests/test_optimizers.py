"""Optimizers against steps computed by hand from Keras's formulas."""
import math

import numpy as np
import pytest

from nnrun.dsl.spec import OptimizerSpec
from nnrun.engine.optimizers import make_optimizer

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.25, 0.5, 1.0]), np.array([1.0, 1.0, -3.0])]
START = np.array([1.0, -2.0, 0.5])


def run(spec, reference, steps=3):
    params = {"dense_1/kernel": START.astype(np.float32)}
    optimizer = make_optimizer(spec, params, reference=reference)
    for grad in GRADS[:steps]:
        optimizer.step({"dense_1/kernel": grad.astype(np.float32)})
    return params["dense_1/kernel"], optimizer


@pytest.mark.parametrize("reference", [False, True])
def test_plain_sgd(reference):
    got, _ = run(OptimizerSpec("sgd", lr=0.1), reference, steps=2)
    np.testing.assert_allclose(got, START - 0.1 * GRADS[0] - 0.1 * GRADS[1], rtol=1e-6)


@pytest.mark.parametrize("reference", [False, True])
def test_sgd_momentum(reference):
    lr, mu = 0.1, 0.9
    v1 = -lr * GRADS[0]
    v2 = mu * v1 - lr * GRADS[1]
    got, optimizer = run(OptimizerSpec("sgd", lr=lr, momentum=mu), reference, steps=2)
    np.testing.assert_allclose(got, START + v1 + v2, rtol=1e-6)
    np.testing.assert_allclose(optimizer.state()["velocity/dense_1/kernel"], v2, rtol=1e-6)


@pytest.mark.parametrize("reference", [False, True])
def test_sgd_nesterov(reference):
    lr, mu = 0.1, 0.9
    v1 = -lr * GRADS[0]
    v2 = mu * v1 - lr * GRADS[1]
    expected = START + (mu * v1 - lr * GRADS[0]) + (mu * v2 - lr * GRADS[1])
    got, _ = run(OptimizerSpec("sgd", lr=lr, momentum=mu, nesterov=True), reference, steps=2)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("reference", [False, True])
def test_adam_matches_the_textbook_form(reference):
    # Kingma & Ba with bias-corrected m̂, v̂; Keras's ε sits outside the correction,
    # which is the textbook update with ε̂ = ε·√(1 − β2^t).
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    theta, m, v = START.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps / math.sqrt(1 - b2**t))
    got, optimizer = run(OptimizerSpec("adam", lr=lr), reference)
    np.testing.assert_allclose(got, theta, rtol=1e-6)
    assert int(optimizer.state()["iterations"]) == 3
    np.testing.assert_allclose(optimizer.state()["m/dense_1/kernel"], m, rtol=1e-5)


def test_adam_first_step_is_lr_times_sign():
    got, _ = run(OptimizerSpec("adam", lr=0.01), reference=False, steps=1)
    np.testing.assert_allclose(got, START - 0.01 * np.sign(GRADS[0]), rtol=1e-5)


@pytest.mark.parametrize("reference", [False, True])
def test_clipnorm_scales_each_tensor_to_the_limit(reference):
    grad = GRADS[0]  # ‖g‖ = √5.25 ≈ 2.29
    got, _ = run(OptimizerSpec("sgd", lr=1.0, clip=1.0), reference, steps=1)
    np.testing.assert_allclose(got, START - grad / np.linalg.norm(grad), rtol=1e-6)
    got, _ = run(OptimizerSpec("sgd", lr=1.0, clip=10.0), reference, steps=1)  # under the limit: unchanged
    np.testing.assert_allclose(got, START - grad, rtol=1e-6)


def test_state_round_trip_resumes_exactly():
    spec = OptimizerSpec("adam", lr=0.01, clip=1.0)
    uninterrupted, _ = run(spec, reference=False, steps=3)
    params, first = run(spec, reference=False, steps=2)
    params = {"dense_1/kernel": params.copy()}
    resumed = make_optimizer(spec, params)
    resumed.load_state(first.state())
    resumed.step({"dense_1/kernel": GRADS[2].astype(np.float32)})
    np.testing.assert_array_equal(params["dense_1/kernel"], uninterrupted)


def test_load_state_names_the_mismatch():
    _, optimizer = run(OptimizerSpec("adam"), reference=False, steps=1)
    state = optimizer.state()
    with pytest.raises(ValueError, match="m/dense_1/kernel"):
        optimizer.load_state({**state, "m/dense_1/kernel": np.zeros(4, np.float32)})
    del state["v/dense_1/kernel"]
    with pytest.raises(ValueError, match="missing.*v/dense_1/kernel"):
        optimizer.load_state(state)


def test_unknown_optimizer_is_an_error():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(OptimizerSpec("rmsprop"), {})
