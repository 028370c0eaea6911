"""Losses (values, gradients, stability, reference) and metrics."""
import math

import numpy as np
import pytest

from nnrun.engine import metrics
from nnrun.engine.gradcheck import numeric_grad
from nnrun.engine.losses import EPSILON, Loss

# (name, fused, output shape): every form the network can use
FORMS = [("cce", "softmax", (4, 3)), ("bce", "sigmoid", (4, 1)), ("cce", None, (4, 3)),
         ("bce", None, (4, 1)), ("mse", None, (4, 2)), ("mae", None, (4, 2))]


def inputs_and_targets(name, fused, shape, rng):
    if fused or name in ("mse", "mae"):
        output = rng.standard_normal(shape)
    else:  # the generic cross-entropies take probabilities, inside the clip
        output = rng.uniform(0.05, 0.95, shape)
        if name == "cce":
            output /= output.sum(axis=1, keepdims=True)
    if name == "cce":
        targets = rng.integers(0, shape[1], shape[0])
    elif name == "bce":
        targets = rng.integers(0, 2, shape[0]).astype(np.float64)
    else:
        targets = rng.standard_normal(shape)
    return output, targets


@pytest.mark.parametrize("name, fused, shape", FORMS)
def test_kernel_matches_reference(name, fused, shape):
    output, targets = inputs_and_targets(name, fused, shape, np.random.default_rng(1))
    output = output.astype(np.float32)
    cpu = Loss(name, fused=fused)(output, targets)
    ref = Loss(name, fused=fused, reference=True)(output, targets)
    assert cpu[0] == pytest.approx(ref[0], rel=1e-5)
    for got, expected in zip(cpu[1:], ref[1:]):
        assert got.shape == output.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("name, fused, shape", FORMS)
def test_gradient_by_central_differences(name, fused, shape, reference):
    output, targets = inputs_and_targets(name, fused, shape, np.random.default_rng(2))
    loss = Loss(name, fused=fused, reference=reference)
    _, grad, _ = loss(output, targets)
    expected = numeric_grad(lambda z: loss(z, targets)[0], output.copy(), 1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("reference", [False, True])
def test_known_values(reference):
    def loss(name, fused, output, targets):
        return Loss(name, fused=fused, reference=reference)(np.asarray(output, np.float32), targets)[0]

    assert loss("cce", "softmax", np.zeros((2, 5)), np.array([0, 3])) == pytest.approx(math.log(5), rel=1e-6)
    assert loss("cce", None, [[0.2, 0.8], [0.5, 0.5]], np.array([1, 0])) == pytest.approx(
        -(math.log(0.8) + math.log(0.5)) / 2, rel=1e-6)
    assert loss("bce", "sigmoid", [[0.0], [0.0]], np.array([0.0, 1.0])) == pytest.approx(math.log(2), rel=1e-6)
    assert loss("bce", None, [[0.9], [0.2]], np.array([1.0, 0.0])) == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2, rel=1e-6)
    assert loss("mse", None, [[1.0, 2.0], [3.0, 4.0]], np.array([[0.0, 2.0], [1.0, 4.0]])) == pytest.approx(5 / 4)
    assert loss("mae", None, [[1.0, 2.0], [3.0, 4.0]], np.array([[0.0, 2.0], [1.0, 4.0]])) == pytest.approx(3 / 4)


@pytest.mark.parametrize("reference", [False, True])
def test_fused_forms_are_stable_for_huge_logits(reference):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad, probs = Loss("cce", fused="softmax", reference=reference)(
            np.array([[1000.0, 0.0, -1000.0]], np.float32), np.array([1]))
        assert loss == pytest.approx(1000.0) and np.isfinite(grad).all()
        np.testing.assert_allclose(probs, [[1.0, 0.0, 0.0]])
        loss, grad, probs = Loss("bce", fused="sigmoid", reference=reference)(
            np.array([[100.0], [-100.0]], np.float32), np.array([0.0, 0.0]))
        assert loss == pytest.approx(50.0) and np.isfinite(grad).all()
        np.testing.assert_allclose(grad.ravel(), [0.5, 0.0], atol=1e-7)


@pytest.mark.parametrize("reference", [False, True])
def test_generic_cross_entropies_clip(reference):
    with np.errstate(divide="raise", invalid="raise"):
        loss, grad, _ = Loss("cce", reference=reference)(np.array([[0.0, 1.0]], np.float32), np.array([0]))
    assert loss == pytest.approx(-math.log(EPSILON), rel=1e-4)
    assert not grad.any()  # the clip is active: no gradient
    loss, _, _ = Loss("bce", reference=reference)(np.array([[1.0]], np.float32), np.array([0.0]))
    assert math.isfinite(loss) and loss == pytest.approx(-math.log(EPSILON), rel=0.1)


def test_fused_equals_generic_on_the_activation():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert Loss("cce", fused="softmax")(logits, labels)[0] == pytest.approx(Loss("cce")(probs, labels)[0])
    z = rng.standard_normal((5, 1))
    targets = rng.integers(0, 2, 5).astype(float)
    assert Loss("bce", fused="sigmoid")(z, targets)[0] == pytest.approx(Loss("bce")(1 / (1 + np.exp(-z)), targets)[0])


def test_bad_labels_are_clear_errors():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        Loss("cce", fused="softmax")(np.zeros((2, 3), np.float32), np.array([0, 3]))
    with pytest.raises(ValueError, match="integer class indices"):
        Loss("cce", fused="softmax")(np.zeros((2, 3), np.float32), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="targets have 3 values"):
        Loss("mse")(np.zeros((2, 1), np.float32), np.zeros(3))
    assert Loss.fuses("cce", "softmax") == "softmax" and Loss.fuses("cce", "relu") is None
    assert Loss.fuses("mse", "sigmoid") is None


# ------------------------------------------------------------------------- metrics


def test_accuracy_counts_argmax_hits():
    pred = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]], np.float32)
    assert metrics.correct(pred, np.array([1, 2, 2])) == 2.0


def test_binary_accuracy_thresholds_at_one_half():
    pred = np.array([[0.9], [0.4], [0.6], [0.5]], np.float32)
    assert metrics.binary_correct(pred, np.array([1, 0, 0, 1])) == 2.0
    assert metrics.binary_correct(pred, np.array([[1.0], [0.0], [1.0], [0.0]])) == 4.0


def test_mean_bias_error_sum():
    pred = np.array([[1.0, 3.0], [0.0, 0.0]], np.float32)
    targets = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert metrics.bias_sum(pred, targets) == pytest.approx((2.0) + (-1.0))  # per-sample means, summed
