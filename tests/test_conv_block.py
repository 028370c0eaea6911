"""The fused conv → relu → max pool block (cpu fast path) against the three layers it
replaces (reference backend), by central differences, and on random shapes."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.engine.layers.conv_block import ConvBlock
from nnrun.engine.network import Network

BLOCKS = {
    "first CNN": "input 10x10x1; conv 16 3x3 relu; pool max 2; flatten; dense 3 softmax",
    "second block, padded, dx needed": "input 11x9x2; conv 3 3x3 relu; conv 16 2x2 pad same relu; pool max 2; "
                                       "flatten; dense 3 softmax",
    "strided conv, odd rows dropped by the pool": "input 13x12x1; conv 16 3x3 stride 2 relu; pool max 2; flatten; "
                                                  "dense 3 softmax",
    "1-D": "input 17x2; conv 16 3 relu; pool max 3; flatten; dense 3 softmax",
    "LeNet-5's first, 6 filters, pad same": "input 12x12x1; conv 6 5x5 pad same relu; pool max 2; flatten; "
                                           "dense 3 softmax",
}


def networks(text, seed=3):
    model = dsl.resolve(dsl.parse(text))
    return Network(model, seed=seed), Network(model, seed=seed, backend="reference")


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_trains_like_the_three_layers(name):
    cpu, ref = networks(BLOCKS[name])
    assert any(isinstance(step, ConvBlock) for step in cpu.steps)
    assert not any(isinstance(step, ConvBlock) for step in ref.steps)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, *cpu.model.input_shape)).astype(np.float32)
    y = rng.integers(0, 3, 9)
    for _ in range(4):
        np.testing.assert_allclose(cpu.train_step(x, y), ref.train_step(x, y), rtol=1e-4, atol=1e-6)
    for key, value in cpu.weights().items():
        np.testing.assert_allclose(value, ref.weights()[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cpu.predict(x, batch=4), ref.predict(x, batch=4), rtol=1e-4, atol=1e-6)


def block_of(text):
    cpu, _ = networks(text)
    return next(step for step in cpu.steps if isinstance(step, ConvBlock))


@pytest.mark.parametrize("name", ["second block, padded, dx needed", "strided conv, odd rows dropped by the pool"])
def test_block_gradients_by_central_differences(name):
    block = block_of(BLOCKS[name])
    block.conv.input_grad = True
    conv = block.conv
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *conv.info.input_shape))
    conv.params = {k: v.astype(np.float64) for k, v in conv.params.items()}
    weights = rng.standard_normal(block.info.output_shape)

    def loss():
        return float((block.forward(x, True) * weights).sum())

    loss()
    dx = block.backward(np.broadcast_to(weights, (2, *weights.shape)).copy())
    analytic = {"x": dx, **conv.grads}
    eps = 1e-6
    for name_, array in (("x", x), *conv.params.items()):
        numeric = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            saved = array[i]
            array[i] = saved + eps
            plus = loss()
            array[i] = saved - eps
            minus = loss()
            array[i] = saved
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic[name_], numeric, rtol=1e-5, atol=1e-7, err_msg=name_)


@settings(max_examples=15, deadline=None)
@given(size=st.integers(5, 12), channels=st.integers(1, 3), filters=st.integers(16, 20), kernel=st.integers(1, 3),
       stride=st.integers(1, 2), pool=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]),
       batch=st.integers(1, 5))
def test_block_on_random_shapes(size, channels, filters, kernel, stride, pool, padding, batch):
    text = (f"input {size}x{size + 1}x{channels}; conv {filters} {kernel}x{kernel} stride {stride} pad {padding} relu; "
            f"pool max {pool}; flatten; dense 2 softmax")
    try:
        cpu, ref = networks(text)
    except dsl.SpecError:  # the pooling window does not fit the convolution's output
        assume(False)
    assert any(isinstance(step, ConvBlock) for step in cpu.steps)
    rng = np.random.default_rng(size)
    x = rng.standard_normal((batch, *cpu.model.input_shape)).astype(np.float32)
    y = rng.integers(0, 2, batch)
    np.testing.assert_allclose(cpu.train_step(x, y), ref.train_step(x, y), rtol=1e-4, atol=1e-6)
    for key, value in cpu.weights().items():
        np.testing.assert_allclose(value, ref.weights()[key], rtol=1e-4, atol=1e-5)


def test_only_the_canonical_block_is_fused():
    for text in ["input 8x8x1; conv 2 3x3 tanh; pool max 2; flatten; dense 2 softmax",
                 "input 8x8x1; conv 2 3x3 relu; pool avg 2; flatten; dense 2 softmax",
                 "input 9x9x1; conv 2 3x3 relu; pool max 3 stride 2; flatten; dense 2 softmax",
                 "input 8x8x8; conv 2 3x3 relu; pool max 2; flatten; dense 2 softmax"]:  # K·C = 72: three layers
        cpu, _ = networks(text)
        assert not any(isinstance(step, ConvBlock) for step in cpu.steps), text
