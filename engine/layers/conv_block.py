"""The canonical CNN block, conv → relu → max pool, as one step (the cpu fast path).

Done as three layers, the block writes the whole convolution output (B·O·F numbers,
11 MB for the first CNN at batch 128), reads it back for relu, writes it again, and
reads it once more for the pooling — and the backward pass does the same in reverse.
The block never stores the convolution: for every pooling window it computes the
convolution at the window's positions p, applies relu, and keeps only the maximum,

    y[b, q, f]   = max over p in window(q) of relu(z[b, p, f])
                 = relu(max_p z[b, p, f])
    z[b, p, f]   = bias[f] + Σm Σc x[b, p·S − P + m, c] · kernel[m, c, f]

with, per output and filter, the position of the winner (``argmax``, the first of
equal maxima as in `engine.layers.pool`; −1 when relu cut it: max z ≤ 0).  Backward,
each ∂L/∂y goes to its winning position only, and from there into the two sums of
`engine.layers.conv`:

    ∂L/∂kernel[m, c, f] = Σb Σq x[b, p*·S − P + m, c] · ∂L/∂y[b, q, f]    p* = argmax[b, q, f]
    ∂L/∂bias[f]         = Σb Σq ∂L/∂y[b, q, f]                           (winners only)
    ∂L/∂x[b, p*·S − P + m, c] += Σf ∂L/∂y[b, q, f] · kernel[m, c, f]

The pool must tile the convolution's output (stride = kernel, no padding), and the
convolution be 1-D or 2-D; the network fuses only such blocks, and only where the convolution's window is small
(K·C ≤ `MAX_WINDOW`): there the sums of the direct kernels of `engine.layers.conv`,
vectorised over the positions, beat an im2col copy and a matrix product that BLAS
runs poorly with so short an inner dimension (first CNN, batch 128: forward 2.9 →
2.3 ms against the earlier loops vectorised over the filters, backward 5.2 → 2.7 ms),
∂L/∂x included when the block is not the first.  The three layers stay the readable path and the reference backend
never fuses; the tests compare the block with them.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnrun.engine.layers.base import Layer
from nnrun.engine.layers.conv import (Conv, _from_phase_planes, _phase_planes, add_cell_gradients, add_cell_products,
                                add_cell_transposed, cell_runs, plane_sizes)
from nnrun.engine.layers.padding import as_volume
from nnrun.engine.layers.pool import Pool
from nnrun.engine.threads import parts

#: The largest K·C (kernel cells × input channels) the block fuses; above, the three
#: layers.  Measured, median training step: LeNet-5 (first block, 6 filters, batch 64)
#: 9.5 ms as three layers, 7.3 ms fused; its second block (K·C = 150) fused: forward
#: 1.4 ms against 0.9 + 0.3 ms for the convolution and the pooling apart.
MAX_WINDOW = 32

# re-association lets LLVM keep the sums in vector lanes; no NaN/inf assumption.
FASTMATH = {"reassoc", "contract"}


@njit(inline="always", fastmath=FASTMATH)  # compiled only as part of its parallel wrapper
def block_forward(start, stop, part, x, kernel, bias, stride_h, stride_w, pad_h, pad_w, pool_h, pool_w, y, argmax):
    """Samples ``start:stop``: ``x (B, 1, H, W, C)``, ``kernel (1, KH, KW, C, F)`` → ``y (B, QH, QW, F)``
    = max-pooled relu(conv), and ``argmax`` (same shape, int32): the winning position's number
    p = a·PW + c inside the pooling window (row a, column c), −1 when relu cut it.

    The convolution is computed one pooling position (a, c) at a time for all windows:
    z_p[f, q] = z[f, (qh·PH + a, qw·PW + c)].  That is a convolution with stride PH·SH ×
    PW·SW whose kernel cell m reads input cell q·S·P + (a·SH + m_h, c·SW + m_w) − P, so the
    direct kernels' planes (`engine.layers.conv`, here split by the larger stride) give
    each kernel cell's values for all windows as one contiguous run, and the sums run
    vectorised over the windows, four kernel cells a pass.  The pooling is then an
    element-wise maximum of the PH·PW planes z_p, also over contiguous runs."""
    channels = x.shape[4]
    _, kernel_h, kernel_w, _, filters = kernel.shape
    _, q_h, q_w, _ = y.shape
    step_h, step_w = pool_h * stride_h, pool_w * stride_w  # the stride from one window to the next
    reach_h, reach_w = (pool_h - 1) * stride_h + kernel_h, (pool_w - 1) * stride_w + kernel_w  # one window's input
    plane_d, plane_h, plane_w, size = plane_sizes(1, q_h, q_w, 1, reach_h, reach_w, 1, step_h, step_w)
    xq = np.empty((channels * step_h * step_w, plane_d, plane_h, plane_w), dtype=x.dtype)
    flat = xq.reshape((xq.shape[0], plane_d * plane_h * plane_w))
    positions = pool_h * pool_w
    cells = kernel_h * kernel_w * channels
    plane_of = np.empty((positions, cells), dtype=np.int64)  # per pooling position p and kernel cell k
    offset_of = np.empty((positions, cells), dtype=np.int64)
    for p in range(positions):
        k = 0
        for m_h in range(kernel_h):
            e_h = (p // pool_w) * stride_h + m_h  # the input row, counted from the window's first
            for m_w in range(kernel_w):
                e_w = (p % pool_w) * stride_w + m_w
                for c in range(channels):
                    plane_of[p, k] = (c * step_h + e_h % step_h) * step_w + e_w % step_w
                    offset_of[p, k] = (e_h // step_h) * plane_w + e_w // step_w
                    k += 1
    weights = kernel.reshape((cells, filters))
    z = np.empty((filters, size), dtype=y.dtype)
    top = np.empty((filters, size), dtype=y.dtype)  # the running maximum, relu's 0 to start
    best = np.empty((filters, size), dtype=np.int32)
    for b in range(start, stop):
        _phase_planes(x[b], 1, step_h, step_w, 0, pad_h, pad_w, xq)
        top[...] = 0.0  # relu's floor: a z must beat 0 to win
        best[...] = -1
        for p in range(positions):
            for f in range(filters):
                z_f = z[f]
                for i in range(size):
                    z_f[i] = bias[f]
            add_cell_products(flat, plane_of[p], offset_of[p], weights, z)
            for f in range(filters):  # strict >: of equal maxima the first stays
                z_f, top_f, best_f = z[f], top[f], best[f]
                for i in range(size):
                    better = z_f[i] > top_f[i]
                    top_f[i] = z_f[i] if better else top_f[i]
                    best_f[i] = p if better else best_f[i]
        for qh in range(q_h):
            for qw in range(q_w):
                i = qh * plane_w + qw
                out, winner = y[b, qh, qw], argmax[b, qh, qw]  # (F,)
                for f in range(filters):
                    out[f] = top[f, i]
                    winner[f] = best[f, i]


@njit(inline="always", fastmath=FASTMATH)  # compiled only as part of its parallel wrapper
def block_backward(start, stop, part, x, kernel, dy, argmax, out_h, out_w, stride_h, stride_w, pad_h, pad_w,
                   pool_h, pool_w, dx, partial_kernel, partial_bias):
    """Samples ``start:stop`` of ``x (B, 1, H, W, C)``: *add* their ∂L/∂kernel to
    ``partial_kernel[part]`` and ∂L/∂bias to ``partial_bias[part]``; unless ``dx`` is None
    (a first layer), also write their ``dx (B, 1, H, W, C)`` — numba then compiles the
    kernel without that part, a third less to compile.

    ∂L/∂z is ∂L/∂y at each filter's winning position and 0 elsewhere (relu cut or lost
    the pooling); laid out as the direct kernels' planes g[f, i] (`engine.layers.conv`),
    the gradients are the same sums as there."""
    channels = x.shape[4]
    _, kernel_h, kernel_w, _, filters = kernel.shape
    _, q_h, q_w, _ = dy.shape
    cells = kernel_h * kernel_w * channels
    plane_d, plane_h, plane_w, size = plane_sizes(1, out_h, out_w, 1, kernel_h, kernel_w, 1, stride_h, stride_w)
    xq = np.empty((channels * stride_h * stride_w, plane_d, plane_h, plane_w), dtype=x.dtype)
    flat = xq.reshape((xq.shape[0], plane_d * plane_h * plane_w))
    g = np.empty((filters, size), dtype=dy.dtype)
    plane_of, offset_of = cell_runs(1, kernel_h, kernel_w, channels, 1, stride_h, stride_w, plane_h, plane_w)
    grads = partial_kernel[part].reshape((cells, filters))
    dbias = partial_bias[part]
    for b in range(start, stop):
        _phase_planes(x[b], 1, stride_h, stride_w, 0, pad_h, pad_w, xq)
        g[...] = 0.0
        for qh in range(q_h):
            for qw in range(q_w):
                grad_out, best = dy[b, qh, qw], argmax[b, qh, qw]  # (F,)
                for f in range(filters):
                    if best[f] >= 0:
                        oh, ow = qh * pool_h + best[f] // pool_w, qw * pool_w + best[f] % pool_w
                        g[f, oh * plane_w + ow] = grad_out[f]
                        dbias[f] += grad_out[f]
        add_cell_gradients(flat, plane_of, offset_of, g, grads)
        if dx is not None:
            flat[...] = 0.0  # the planes now collect ∂L/∂x
            add_cell_transposed(flat, plane_of, offset_of, kernel.reshape((cells, filters)), g)
            _from_phase_planes(xq, 1, stride_h, stride_w, 0, pad_h, pad_w, dx[b])


@njit(parallel=True, cache=True)
def block_forward_batch(parts, x, kernel, bias, stride_h, stride_w, pad_h, pad_w, pool_h, pool_w, y, argmax):
    """`block_forward` over the whole batch, in ``parts`` ranges run in parallel (`engine.threads`)."""
    batch = x.shape[0]
    for index in prange(parts):
        part = np.int64(index)  # one type for the kernel's argument (prange counts in uint64)
        block_forward(batch * part // parts, batch * (part + 1) // parts, part, x, kernel, bias, stride_h, stride_w,
                      pad_h, pad_w, pool_h, pool_w, y, argmax)


@njit(parallel=True, cache=True)
def block_backward_batch(parts, x, kernel, dy, argmax, out_h, out_w, stride_h, stride_w, pad_h, pad_w, pool_h,
                         pool_w, dx, partial_kernel, partial_bias):
    """`block_backward` over the whole batch, in ``parts`` ranges run in parallel."""
    batch = x.shape[0]
    for index in prange(parts):
        part = np.int64(index)  # one type for the kernel's argument (prange counts in uint64)
        block_backward(batch * part // parts, batch * (part + 1) // parts, part, x, kernel, dy, argmax, out_h, out_w,
                       stride_h, stride_w, pad_h, pad_w, pool_h, pool_w, dx, partial_kernel, partial_bias)


# ------------------------------------------------------------------------- the step


def fusable(conv, activation, pool) -> bool:
    """Whether ``conv → activation → pool`` is a block this module computes."""
    if not (isinstance(conv, Conv) and isinstance(pool, Pool) and getattr(activation, "function", None) == "relu"):
        return False
    window = pool.window
    return (pool.mode == "max" and not pool.is_global and window.stride_3d == window.kernel_3d
            and window.pad_before_3d == (0, 0, 0) and window.pad_after_3d == (0, 0, 0)
            and conv.fast and not conv.reference and conv.regularization.dropconnect == 0.0
            and conv.params["kernel"].size // conv.filters <= MAX_WINDOW and len(window.output) <= 2
            and conv.info.output_shape == activation.info.input_shape == pool.info.input_shape)


class ConvBlock(Layer):
    """conv → relu → max pool as one step of the network; the conv layer keeps the
    parameters and receives the gradients (the optimizer and the saved weights see only it)."""

    def __init__(self, conv, activation, pool) -> None:
        super().__init__(pool.info, conv.rng)
        self.name = f"{conv.name}+{activation.name}+{pool.name}"
        self.conv, self.activation, self.pool = conv, activation, pool
        self._argmax = None  # (B, QH, QW, F), int32: a 1-D or 2-D conv (see `fusable`), D = 1

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        conv = self.conv
        x5 = conv._x = as_volume(np.ascontiguousarray(x))
        conv._kernel = np.ascontiguousarray(conv._volume_kernel(conv.params["kernel"]))
        bias = conv.params["bias"].astype(x5.dtype, copy=False)
        shape = (x5.shape[0], *self.pool.window.output_3d[1:], conv.filters)
        y = np.empty(shape, dtype=x5.dtype)
        self._argmax = np.empty(shape, dtype=np.int32)
        w = conv.window
        block_forward_batch(parts(x5.shape[0]), x5, conv._kernel, bias, *w.stride_3d[1:], *w.pad_before_3d[1:],
                            *self.pool.window.kernel_3d[1:], y, self._argmax)
        return y.reshape((x.shape[0], *self.info.output_shape))

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        conv, x5 = self.conv, self.conv._x
        dy4 = np.ascontiguousarray(dy).reshape(self._argmax.shape)
        kernel = conv._kernel.astype(dy4.dtype, copy=False)
        ranges = parts(x5.shape[0])
        partial_kernel = np.zeros((ranges, *kernel.shape), dtype=dy4.dtype)
        partial_bias = np.zeros((ranges, conv.filters), dtype=dy4.dtype)
        out = conv.window.output_3d  # the convolution's output (1, OH, OW)
        dx = np.empty(x5.shape, dtype=dy4.dtype) if conv.input_grad else None
        w = conv.window
        block_backward_batch(ranges, x5, kernel, dy4, self._argmax, *out[1:], *w.stride_3d[1:], *w.pad_before_3d[1:],
                             *self.pool.window.kernel_3d[1:], dx, partial_kernel, partial_bias)
        params = conv.params
        dkernel = partial_kernel.sum(axis=0).reshape(params["kernel"].shape)
        dkernel += conv._penalty_gradient(params["kernel"])
        conv.grads["kernel"] = dkernel.astype(params["kernel"].dtype, copy=False)
        conv.grads["bias"] = partial_bias.sum(axis=0).astype(params["bias"].dtype, copy=False)
        if not conv.input_grad:
            return None
        return dx.reshape((dx.shape[0], *conv.info.input_shape))

    def penalty(self) -> float:
        return 0.0  # the conv layer, in the network's list of layers, counts its own
