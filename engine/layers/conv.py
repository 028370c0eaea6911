"""Convolution, 1-D, 2-D and 3-D: ``conv F K [stride S] [pad valid|same|P]``.

The course's formula, for one filter on a one-channel image,

    S(i, j) = Σm Σn I(i + m, j + n) · K(m, n)

becomes, with a stride S, padding P (zeros before the first row/column), C input
channels and F filters, for every output position o and filter f:

    y[b, o, f] = bias[f] + Σm Σc x[b, o·S − P + m, c] · kernel[m, c, f]

where m runs over the kernel's cells (m_d, m_h, m_w).  That is the loop of
`conv_forward_sample`.  Its backward pass follows from the chain rule on the same sum —
each product x·kernel sends ∂L/∂y back to both of its factors:

    ∂L/∂x[b, o·S − P + m, c]  += Σf ∂L/∂y[b, o, f] · kernel[m, c, f]          (`conv_backward_input_sample`)
    ∂L/∂kernel[m, c, f]       += Σb Σo x[b, o·S − P + m, c] · ∂L/∂y[b, o, f]   (`conv_backward_params_sample`)
    ∂L/∂bias[f]               =  Σb Σo ∂L/∂y[b, o, f]

All ranks use the same kernels: a sequence ``(B, T, F)`` is the volume
``(B, 1, 1, T, F)``, an image ``(B, H, W, C)`` the volume ``(B, 1, H, W, C)``
(see `engine.layers.padding`).  Cells in the padding are zeros, so the loops
simply skip them instead of building a padded copy.  Kernels are generic over
the float type: float32 in training, float64 in the gradient checks.

Two ways to compute it, chosen per layer (``Conv(…, fast=…)``, default `FAST`):
the loops above (``fast=False``, the readable path), and the same sums as three
matrix products around an im2col copy (`engine.layers.im2col`, ``fast=True``):
BLAS runs them many times faster than any loop a student could read.  On the fast
path a layer of at most `DIRECT_MAX_CHANNELS` input channels and filters (all the
convolutions of the course's networks) runs `direct_forward`/`direct_backward` instead, vectorised
over the output positions: there im2col's copy and a product only F columns wide cost
more than the sums.  All are tested against the plain-NumPy reference below.

The kernel layout is Keras's: ``(*K, C_in, F)``, e.g. ``(KH, KW, C_in, F)``.
The statement's activation (``conv 32 3x3 relu``) is not applied here: the
network appends an activation step after any layer whose statement has one.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from nnrun.dsl.spec import LayerInfo
from nnrun.engine.initializers import glorot_uniform, zeros
from nnrun.engine.layers.activations import FUNCTIONS, FUSED_CODES, activation_backward, activation_inplace
from nnrun.engine.layers.base import Layer
from nnrun.engine.layers.im2col import col2im_batch, im2col_batch
from nnrun.engine.layers.padding import Window, as_volume, output_sizes, padded, unpadded, window_index
from nnrun.engine.threads import parts

# ----------------------------------------------------------------- Numba kernels
#
# Each pass is written for one sample (a serial loop a student can follow), and a
# small wrapper runs it over the batch with `prange`.  Keeping the parallel
# wrappers tiny also keeps compilation short: Numba's parallel compiler is slow
# on big loop nests.

# Let LLVM reorder the sums (Σf, Σc …) into vector lanes and fuse multiply-adds;
# no flag that assumes the absence of NaN or infinity, so a diverging run still shows NaN.
FASTMATH = {"reassoc", "contract"}


@njit(cache=True, fastmath=FASTMATH)
def conv_forward_sample(x, kernel, bias, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y):
    """One sample: write ``y (OD, OH, OW, F)`` = ``x (D, H, W, C)`` convolved with
    ``kernel (KD, KH, KW, C, F)``, plus ``bias (F,)``."""
    depth, height, width, channels = x.shape
    kernel_d, kernel_h, kernel_w, _, filters = kernel.shape
    out_d, out_h, out_w, _ = y.shape
    for od in range(out_d):
        d0 = od * stride_d - pad_d  # where the window starts in x; < 0 inside the padding
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                out = y[od, oh, ow]  # (F,)
                for f in range(filters):
                    out[f] = bias[f]
                # kernel cells m with 0 <= start + m < size; the others fall on padding zeros
                for m_d in range(max(0, -d0), min(kernel_d, depth - d0)):
                    for m_h in range(max(0, -h0), min(kernel_h, height - h0)):
                        for m_w in range(max(0, -w0), min(kernel_w, width - w0)):
                            for c in range(channels):
                                pixel = x[d0 + m_d, h0 + m_h, w0 + m_w, c]
                                for f in range(filters):
                                    out[f] += pixel * kernel[m_d, m_h, m_w, c, f]


@njit(cache=True, fastmath=FASTMATH)
def conv_backward_input_sample(dy, kernel, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx):
    """One sample: write ``dx (D, H, W, C)`` = ∂L/∂x from ``dy (OD, OH, OW, F)`` = ∂L/∂y."""
    depth, height, width, channels = dx.shape
    kernel_d, kernel_h, kernel_w, _, filters = kernel.shape
    out_d, out_h, out_w, _ = dy.shape
    dx[...] = 0.0
    for od in range(out_d):
        d0 = od * stride_d - pad_d
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                grad_out = dy[od, oh, ow]  # (F,)
                for m_d in range(max(0, -d0), min(kernel_d, depth - d0)):
                    for m_h in range(max(0, -h0), min(kernel_h, height - h0)):
                        for m_w in range(max(0, -w0), min(kernel_w, width - w0)):
                            for c in range(channels):
                                total = np.float32(0.0)  # becomes float64 when the arrays are
                                for f in range(filters):
                                    total += grad_out[f] * kernel[m_d, m_h, m_w, c, f]
                                dx[d0 + m_d, h0 + m_h, w0 + m_w, c] += total


@njit(cache=True, fastmath=FASTMATH)
def conv_backward_params_sample(x, dy, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dkernel, dbias):
    """One sample: *add* its ∂L/∂kernel to ``dkernel (KD, KH, KW, C, F)`` and its ∂L/∂bias to ``dbias (F,)``."""
    depth, height, width, channels = x.shape
    kernel_d, kernel_h, kernel_w, _, filters = dkernel.shape
    out_d, out_h, out_w, _ = dy.shape
    for od in range(out_d):
        d0 = od * stride_d - pad_d
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                grad_out = dy[od, oh, ow]  # (F,)
                for f in range(filters):
                    dbias[f] += grad_out[f]
                for m_d in range(max(0, -d0), min(kernel_d, depth - d0)):
                    for m_h in range(max(0, -h0), min(kernel_h, height - h0)):
                        for m_w in range(max(0, -w0), min(kernel_w, width - w0)):
                            for c in range(channels):
                                pixel = x[d0 + m_d, h0 + m_h, w0 + m_w, c]
                                for f in range(filters):
                                    dkernel[m_d, m_h, m_w, c, f] += pixel * grad_out[f]


@njit(parallel=True, cache=True)
def conv_forward(x, kernel, bias, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y):
    """Write ``y (B, OD, OH, OW, F)`` for ``x (B, D, H, W, C)``; samples in parallel (each writes its own ``y[b]``)."""
    for b in prange(x.shape[0]):
        conv_forward_sample(x[b], kernel, bias, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y[b])


@njit(parallel=True, cache=True)
def conv_backward(x, dy, kernel, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, n_parts, input_grad, dx, dkernel,
                  dbias):
    """Write ``dx (B, D, H, W, C)``, ``dkernel (KD, KH, KW, C, F)`` and ``dbias (F,)`` from ``dy (B, OD, OH, OW, F)``.

    ``input_grad=False`` skips ∂L/∂x (``dx`` is left alone): a first layer does not need it.

    ∂L/∂x is per sample, but every sample adds to every weight's gradient, so a
    parallel loop over the batch would race on ``dkernel``.  Instead the batch is
    dealt into ``n_parts`` parts (sample b goes to part b mod n_parts), each part
    sums into its own partial gradient, and the partials are added at the end in
    a fixed order: the result depends on ``n_parts`` only through rounding, and
    not on the thread count at all.
    """
    batch = x.shape[0]
    # one flat partial gradient per part (explicit loops, not np.zeros: in a parallel
    # function every array expression becomes a parallel loop of its own to compile)
    partial_kernel = np.empty((n_parts, dkernel.size), dtype=dkernel.dtype)
    partial_bias = np.empty((n_parts, dbias.size), dtype=dbias.dtype)
    for part in prange(n_parts):
        for i in range(dkernel.size):
            partial_kernel[part, i] = 0.0
        for f in range(dbias.size):
            partial_bias[part, f] = 0.0
        part_kernel = partial_kernel[part].reshape(dkernel.shape)  # a view, (KD, KH, KW, C, F)
        for b in range(part, batch, n_parts):
            if input_grad:
                conv_backward_input_sample(dy[b], kernel, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx[b])
            conv_backward_params_sample(x[b], dy[b], stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                                        part_kernel, partial_bias[part])
    sum_kernel = dkernel.reshape(-1)  # a view: writing it writes dkernel
    for i in range(sum_kernel.size):
        total = partial_kernel[0, i]
        for part in range(1, n_parts):
            total += partial_kernel[part, i]
        sum_kernel[i] = total
    for f in range(dbias.size):
        total = partial_bias[0, f]
        for part in range(1, n_parts):
            total += partial_bias[part, f]
        dbias[f] = total


# ---------------------------------- the direct path: up to 32 input channels and filters
#
# With a few input channels and a handful of filters (the course's networks: 1 → 6,
# 6 → 16, 4 → 8, 8 → 12, 32 → 32), im2col copies K·C numbers per position for a product
# only F columns wide, which BLAS runs poorly.  The direct kernels compute the same sums
# one sample at a time, vectorised over the output positions instead of over the
# filters.  Each sample is first copied, zero-padded, into planes split by stride
# phase: with S = (SD, SH, SW),
#
#     xq[c, pd, ph, pw][dq, hq, wq] = x[dq·SD + pd − PD, hq·SH + ph − PH, wq·SW + pw − PW, c]   (0 outside x)
#
# so that the input cell o·S − P + m of output position o, for a kernel cell m, is
# xq[c, m mod S][o + m // S].  Flattened, each plane is (DQ·HQ·WQ,) and the positions o
# are flat indices i = (od·HQ + oh)·WQ + ow: kernel cell m reads the plane from offset
# ((m_d // SD)·HQ + m_h // SH)·WQ + m_w // SW on — one contiguous run of L numbers for all the
# sample's positions (plus a few in the gaps between rows, computed and thrown away).
# Where that run is short (small images), several samples' planes are laid one after
# another (stacked along the depth), so one run covers them all (`DIRECT_RUN`).
# Each range of samples runs on its own thread (`direct_forward_batch`, `direct_backward_batch`).


@njit(cache=True, nogil=True)
def _columns_inside(plane_w, stride_w, phase_w, pad_w, width):
    """The plane columns ``wq_lo:wq_hi`` whose cell w = wq·SW + phase − P lies inside x."""
    lo = max(0, (pad_w - phase_w + stride_w - 1) // stride_w)
    hi = min(plane_w, (width - 1 + pad_w - phase_w) // stride_w + 1)
    return lo, max(lo, hi)


@njit(cache=True, nogil=True)
def _phase_copy(x, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, xq, to_planes):
    """Between the sample ``x (D, H, W, C)`` and ``xq (C·SD·SH·SW, DQ, HQ, WQ)``, x zero-padded and
    split by stride phase: ``to_planes`` writes xq from x (the padding as zeros), otherwise x
    from xq (the adjoint: each cell of x is in at most one plane; cells past the planes' end,
    which no output reads, get 0, and the padding is dropped)."""
    depth, height, width, channels = x.shape
    _, plane_d, plane_h, plane_w = xq.shape
    if to_planes:
        xq[...] = 0.0
    else:
        x[...] = 0.0
    p = 0
    for c in range(channels):
        for phase_d in range(stride_d):
            for phase_h in range(stride_h):
                for phase_w in range(stride_w):
                    plane = xq[p]
                    lo, hi = _columns_inside(plane_w, stride_w, phase_w, pad_w, width)
                    for dq in range(plane_d):
                        d = dq * stride_d + phase_d - pad_d
                        for hq in range(plane_h):
                            h = hq * stride_h + phase_h - pad_h
                            if 0 <= d < depth and 0 <= h < height:
                                row = plane[dq, hq]
                                if to_planes:
                                    for wq in range(lo, hi):
                                        row[wq] = x[d, h, wq * stride_w + phase_w - pad_w, c]
                                else:
                                    for wq in range(lo, hi):
                                        x[d, h, wq * stride_w + phase_w - pad_w, c] = row[wq]
                    p += 1


@njit(cache=True, nogil=True)
def _phase_planes(x, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, xq):
    """Write ``xq (C·SD·SH·SW, DQ, HQ, WQ)``: the sample ``x (D, H, W, C)`` zero-padded and split by stride phase."""
    _phase_copy(x, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, xq, True)


@njit(cache=True, nogil=True)
def _from_phase_planes(xq, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, x):
    """Write the sample ``x (D, H, W, C)`` from planes laid out as `_phase_planes` writes them (its adjoint)."""
    _phase_copy(x, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, xq, False)


@njit(cache=True, nogil=True)
def plane_sizes(out_d, out_h, out_w, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w):
    """``(DQ, HQ, WQ, L)``: the stride-phase planes' sizes and L, the number of flat
    positions i = (od·HQ + oh)·WQ + ow from the first output to the last."""
    plane_d = out_d - 1 + (kernel_d + stride_d - 1) // stride_d
    plane_h = out_h - 1 + (kernel_h + stride_h - 1) // stride_h
    plane_w = out_w - 1 + (kernel_w + stride_w - 1) // stride_w
    return plane_d, plane_h, plane_w, ((out_d - 1) * plane_h + out_h - 1) * plane_w + out_w


@njit(cache=True, nogil=True)
def cell_runs(kernel_d, kernel_h, kernel_w, channels, stride_d, stride_h, stride_w, plane_h, plane_w):
    """Per kernel cell k = (m, c) in the kernel's order: the plane it reads and the offset
    of its run, ``(plane_of, offset_of)``."""
    cells = kernel_d * kernel_h * kernel_w * channels
    plane_of, offset_of = np.empty(cells, dtype=np.int64), np.empty(cells, dtype=np.int64)
    k = 0
    for m_d in range(kernel_d):
        for m_h in range(kernel_h):
            for m_w in range(kernel_w):
                phase = ((m_d % stride_d) * stride_h + m_h % stride_h) * stride_w + m_w % stride_w
                for c in range(channels):
                    plane_of[k] = c * stride_d * stride_h * stride_w + phase
                    offset_of[k] = ((m_d // stride_d) * plane_h + m_h // stride_h) * plane_w + m_w // stride_w
                    k += 1
    return plane_of, offset_of


@njit(cache=True, nogil=True)
def cell_run(flat, plane_of, offset_of, k, size):
    """run(k): kernel cell k's ``size`` numbers in the planes, ``flat[plane_of[k], offset_of[k]:][:size]``."""
    start = offset_of[k]
    return flat[plane_of[k], start:start + size]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def add_cell_products(flat, plane_of, offset_of, weights, z):
    """``z[f, :] += Σ_k weights[k, f] · run(k)``, run(k) = `cell_run` (L numbers).

    Four cells and three filters a pass: each number of the four runs, loaded once, goes
    into three sums, and each pass over z adds four products — per twelve multiply-adds,
    four loads of the runs and three of z.  Measured on one thread (C = 32, F = 24,
    L = 3718): one filter a pass 35 GFLOP/s, two 54, three 61, four 57 (the weights no
    longer fit in registers)."""
    cells, filters = weights.shape
    size = z.shape[1]
    k = 0
    while k + 4 <= cells:
        p0 = cell_run(flat, plane_of, offset_of, k, size)  # (L,)
        p1 = cell_run(flat, plane_of, offset_of, k + 1, size)
        p2 = cell_run(flat, plane_of, offset_of, k + 2, size)
        p3 = cell_run(flat, plane_of, offset_of, k + 3, size)
        f = 0
        while f + 3 <= filters:
            z_a, z_b, z_c = z[f], z[f + 1], z[f + 2]
            a0, a1, a2, a3 = weights[k, f], weights[k + 1, f], weights[k + 2, f], weights[k + 3, f]
            b0, b1, b2, b3 = weights[k, f + 1], weights[k + 1, f + 1], weights[k + 2, f + 1], weights[k + 3, f + 1]
            c0, c1, c2, c3 = weights[k, f + 2], weights[k + 1, f + 2], weights[k + 2, f + 2], weights[k + 3, f + 2]
            for i in range(size):
                q0, q1, q2, q3 = p0[i], p1[i], p2[i], p3[i]
                z_a[i] += q0 * a0 + q1 * a1 + q2 * a2 + q3 * a3
                z_b[i] += q0 * b0 + q1 * b1 + q2 * b2 + q3 * b3
                z_c[i] += q0 * c0 + q1 * c1 + q2 * c2 + q3 * c3
            f += 3
        for f in range(f, filters):  # the last one or two filters
            z_f = z[f]
            w0, w1, w2, w3 = weights[k, f], weights[k + 1, f], weights[k + 2, f], weights[k + 3, f]
            for i in range(size):
                z_f[i] += p0[i] * w0 + p1[i] * w1 + p2[i] * w2 + p3[i] * w3
        k += 4
    for k in range(k, cells):  # the last one to three cells
        pixels = cell_run(flat, plane_of, offset_of, k, size)
        for f in range(filters):
            z_f = z[f]
            weight = weights[k, f]
            for i in range(size):
                z_f[i] += pixels[i] * weight


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def add_cell_gradients(flat, plane_of, offset_of, g, grads):
    """``grads[k, f] += run(k) · g[f, :]`` (see `add_cell_products`): four cells and two
    filters a pass, eight sums from six loads (1.4× one filter a pass)."""
    cells, filters = grads.shape
    size = g.shape[1]
    k = 0
    while k + 4 <= cells:
        p0 = cell_run(flat, plane_of, offset_of, k, size)
        p1 = cell_run(flat, plane_of, offset_of, k + 1, size)
        p2 = cell_run(flat, plane_of, offset_of, k + 2, size)
        p3 = cell_run(flat, plane_of, offset_of, k + 3, size)
        f = 0
        while f + 2 <= filters:
            g_a, g_b = g[f], g[f + 1]
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = g.dtype.type(0.0)
            for i in range(size):
                a0 += p0[i] * g_a[i]
                a1 += p1[i] * g_a[i]
                a2 += p2[i] * g_a[i]
                a3 += p3[i] * g_a[i]
                b0 += p0[i] * g_b[i]
                b1 += p1[i] * g_b[i]
                b2 += p2[i] * g_b[i]
                b3 += p3[i] * g_b[i]
            grads[k, f] += a0
            grads[k + 1, f] += a1
            grads[k + 2, f] += a2
            grads[k + 3, f] += a3
            grads[k, f + 1] += b0
            grads[k + 1, f + 1] += b1
            grads[k + 2, f + 1] += b2
            grads[k + 3, f + 1] += b3
            f += 2
        if f < filters:  # an odd filter count: the last filter, one cell at a time
            for j in range(4):
                grads[k + j, f] += _dot(cell_run(flat, plane_of, offset_of, k + j, size), g[f])
        k += 4
    for k in range(k, cells):  # the last one to three cells
        pixels = cell_run(flat, plane_of, offset_of, k, size)
        for f in range(filters):
            grads[k, f] += _dot(pixels, g[f])


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _dot(a, b):
    """Σ_i a[i]·b[i], the sum in vector lanes."""
    total = b.dtype.type(0.0)
    for i in range(a.size):
        total += a[i] * b[i]
    return total


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def add_cell_transposed(flat, plane_of, offset_of, weights, g):
    """``run(k) += Σ_f weights[k, f] · g[f, :]`` for every kernel cell k (see `add_cell_products`):
    ∂L/∂x on the planes, three cells and four filters a pass (measured on one thread,
    C = F = 32: two cells a pass 43 GFLOP/s, three 56; one cell and eight filters 37)."""
    cells, filters = weights.shape
    size = g.shape[1]
    k = 0
    while k + 3 <= cells:
        run_a = cell_run(flat, plane_of, offset_of, k, size)  # (L,)
        run_b = cell_run(flat, plane_of, offset_of, k + 1, size)
        run_c = cell_run(flat, plane_of, offset_of, k + 2, size)
        f = 0
        while f + 4 <= filters:
            g0, g1, g2, g3 = g[f], g[f + 1], g[f + 2], g[f + 3]
            a0, a1, a2, a3 = weights[k, f], weights[k, f + 1], weights[k, f + 2], weights[k, f + 3]
            b0, b1, b2, b3 = weights[k + 1, f], weights[k + 1, f + 1], weights[k + 1, f + 2], weights[k + 1, f + 3]
            c0, c1, c2, c3 = weights[k + 2, f], weights[k + 2, f + 1], weights[k + 2, f + 2], weights[k + 2, f + 3]
            for i in range(size):
                h0, h1, h2, h3 = g0[i], g1[i], g2[i], g3[i]
                run_a[i] += h0 * a0 + h1 * a1 + h2 * a2 + h3 * a3
                run_b[i] += h0 * b0 + h1 * b1 + h2 * b2 + h3 * b3
                run_c[i] += h0 * c0 + h1 * c1 + h2 * c2 + h3 * c3
            f += 4
        for f in range(f, filters):  # the last one to three filters
            g_f, weight_a, weight_b, weight_c = g[f], weights[k, f], weights[k + 1, f], weights[k + 2, f]
            for i in range(size):
                run_a[i] += g_f[i] * weight_a
                run_b[i] += g_f[i] * weight_b
                run_c[i] += g_f[i] * weight_c
        k += 3
    for k in range(k, cells):  # the last one or two cells
        run = cell_run(flat, plane_of, offset_of, k, size)
        for f in range(filters):
            g_f, weight = g[f], weights[k, f]
            for i in range(size):
                run[i] += g_f[i] * weight


@njit(cache=True, nogil=True)
def direct_planes(x, kernel, group, out_d, out_h, out_w, stride_d, stride_h, stride_w):
    """The direct kernels' work arrays and layout for one range of samples, taken ``group``
    samples at a time: ``(xq, flat, DQ, HQ, WQ, V, L, plane_of, offset_of)`` — the planes
    (``group`` samples' planes one after another along the depth) and their flat view, one
    sample's plane sizes and volume V = DQ·HQ·WQ, the group's run length
    L = (group − 1)·V + one sample's run, and each kernel cell's run."""
    channels = x.shape[4]
    kernel_d, kernel_h, kernel_w = kernel.shape[0], kernel.shape[1], kernel.shape[2]
    plane_d, plane_h, plane_w, size = plane_sizes(out_d, out_h, out_w, kernel_d, kernel_h, kernel_w,
                                                  stride_d, stride_h, stride_w)
    volume = plane_d * plane_h * plane_w
    xq = np.zeros((channels * stride_d * stride_h * stride_w, group * plane_d, plane_h, plane_w), dtype=x.dtype)
    flat = xq.reshape((xq.shape[0], group * volume))
    plane_of, offset_of = cell_runs(kernel_d, kernel_h, kernel_w, channels, stride_d, stride_h, stride_w,
                                    plane_h, plane_w)
    return xq, flat, plane_d, plane_h, plane_w, volume, (group - 1) * volume + size, plane_of, offset_of


@njit(inline="always", fastmath=FASTMATH)  # compiled only as part of its parallel wrapper
def direct_forward(start, stop, group, x, kernel, bias, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y, relu):
    """Samples ``start:stop`` of ``x (B, D, H, W, C)``, ``kernel (KD, KH, KW, C, F)``: write
    ``y (B, OD, OH, OW, F)`` = the convolution plus ``bias (F,)``, with ``relu`` max(0, ·) of it.

    Per group of samples, with z[f, :] the outputs at the flat positions i (see above; sample
    s of the group from s·V on) and the kernel's cells (m, c) numbered k = 0 … K·C − 1 in the
    kernel's order: z[f, :] = bias[f] + Σ_k kernel[k, f] · plane(k)[offset(k) : offset(k) + L]."""
    _, out_d, out_h, out_w, filters = y.shape
    xq, flat, plane_d, plane_h, plane_w, volume, size, plane_of, offset_of = direct_planes(
        x, kernel, group, out_d, out_h, out_w, stride_d, stride_h, stride_w)
    cells = plane_of.size
    z = np.empty((filters, size), dtype=y.dtype)
    for first in range(start, stop, group):
        count = min(group, stop - first)  # the range's last group may be short: its empty places are not read
        for s in range(count):
            _phase_planes(x[first + s], stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                          xq[:, s * plane_d:(s + 1) * plane_d])
        for f in range(filters):
            z_f = z[f]
            for i in range(size):
                z_f[i] = bias[f]
        add_cell_products(flat, plane_of, offset_of, kernel.reshape((cells, filters)), z)
        for s in range(count):
            for od in range(out_d):
                for oh in range(out_h):
                    i = s * volume + (od * plane_h + oh) * plane_w
                    for ow in range(out_w):
                        out = y[first + s, od, oh, ow]
                        for f in range(filters):
                            value = z[f, i + ow]
                            out[f] = 0.0 if relu and value < 0.0 else value  # (NaN stays NaN, as np.maximum)


@njit(inline="always", fastmath=FASTMATH)  # compiled only as part of its parallel wrapper
def direct_backward(start, stop, group, part, x, kernel, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, relu, y,
                    dy, partial_kernel, partial_bias, dx):
    """Samples ``start:stop``, ``group`` at a time: *add* their ∂L/∂kernel to ``partial_kernel[part]``
    and ∂L/∂bias to ``partial_bias[part]``, from ``dy (B, OD, OH, OW, F)`` = ∂L/∂y; unless ``dx`` is
    None, write their ``dx (B, D, H, W, C)``.  With ``relu``, ``y`` is the forward output of the relu
    applied in `direct_forward`, and ∂L/∂y counts only where y > 0 (without, y is not read).  (A
    None is a type to numba: a first layer's kernel is compiled without the ∂L/∂x code.  The relu
    is a flag, not a None, so that one compiled kernel serves both: each variant costs 10–15 s
    of compiling on a first run.)

    With g[f, :] = ∂L/∂z at the positions and zero in the gaps:
    ∂L/∂kernel[k, f] += plane(k)[offset(k) : offset(k) + L] · g[f, :]
    ∂L/∂plane(k)[offset(k) : offset(k) + L] += Σ_f kernel[k, f] · g[f, :], then back to x.
    (A sample's positions read only its own planes: offset(k) + its run ≤ V.)"""
    _, out_d, out_h, out_w, filters = dy.shape
    xq, flat, plane_d, plane_h, plane_w, volume, size, plane_of, offset_of = direct_planes(
        x, kernel, group, out_d, out_h, out_w, stride_d, stride_h, stride_w)
    cells = plane_of.size
    g = np.zeros((filters, size), dtype=dy.dtype)  # the gaps stay zero
    dbias = partial_bias[part]
    dz = np.empty(dy.shape[1:], dtype=dy.dtype)  # ∂L/∂z of one sample, (OD, OH, OW, F)
    dz_flat = dz.reshape(-1)
    for first in range(start, stop, group):
        count = min(group, stop - first)
        if count < group:  # the range's last group, short: its empty places add nothing
            xq[:, count * plane_d:] = 0.0
            g[:, count * volume:] = 0.0
        for s in range(count):
            b = first + s
            _phase_planes(x[b], stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                          xq[:, s * plane_d:(s + 1) * plane_d])
            grad = dy[b]
            if relu:  # relu's slope, one vector loop over the sample (not per position:
                # with a handful of filters that loop was too short for vector code and
                # mispredicted its test — 5 ns a number)
                dy_flat, y_flat = grad.reshape(-1), y[b].reshape(-1)
                for j in range(dz_flat.size):
                    dz_flat[j] = dy_flat[j] if y_flat[j] > 0 else 0.0
                grad = dz
            for od in range(out_d):
                for oh in range(out_h):
                    i = s * volume + (od * plane_h + oh) * plane_w
                    for ow in range(out_w):
                        grad_out = grad[od, oh, ow]
                        for f in range(filters):
                            dbias[f] += grad_out[f]
                        for f in range(filters):
                            g[f, i + ow] = grad_out[f]
        add_cell_gradients(flat, plane_of, offset_of, g, partial_kernel[part].reshape((cells, filters)))
        if dx is not None:
            flat[...] = 0.0  # the planes now collect ∂L/∂x
            add_cell_transposed(flat, plane_of, offset_of, kernel.reshape((cells, filters)), g)
            for s in range(count):
                _from_phase_planes(xq[:, s * plane_d:(s + 1) * plane_d], stride_d, stride_h, stride_w, pad_d,
                                   pad_h, pad_w, dx[first + s])


@njit(parallel=True, cache=True)
def direct_forward_batch(parts, group, x, kernel, bias, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y, relu):
    """`direct_forward` over the whole batch, cut into ``parts`` ranges run in parallel (`engine.threads`)."""
    batch = x.shape[0]
    for part in prange(parts):
        direct_forward(batch * part // parts, batch * (part + 1) // parts, group, x, kernel, bias, stride_d,
                       stride_h, stride_w, pad_d, pad_h, pad_w, y, relu)


@njit(parallel=True, cache=True)
def direct_backward_batch(parts, group, x, kernel, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, relu, y, dy,
                          partial_kernel, partial_bias, dx):
    """`direct_backward` over the whole batch, in ``parts`` ranges run in parallel."""
    batch = x.shape[0]
    for index in prange(parts):
        part = np.int64(index)  # one type for the kernel's argument (prange counts in uint64)
        direct_backward(batch * part // parts, batch * (part + 1) // parts, group, part, x, kernel, stride_d,
                        stride_h, stride_w, pad_d, pad_h, pad_w, relu, y, dy, partial_kernel, partial_bias, dx)


# ------------------------------------------------- plain-NumPy reference (test oracle)


def conv_forward_reference(x, kernel, bias, stride, pad_before, pad_after):
    """The convolution, one output position at a time, on an explicitly padded input.

    x (B, D, H, W, C), kernel (KD, KH, KW, C, F), bias (F,); stride and pads are 3-tuples.
    """
    xp = padded(x, pad_before, pad_after)
    kernel_size = kernel.shape[:3]
    out = output_sizes(x.shape[1:4], kernel_size, stride, pad_before, pad_after)
    y = np.empty((x.shape[0], *out, kernel.shape[4]), dtype=np.result_type(x, kernel))
    for o in np.ndindex(*out):
        y[:, o[0], o[1], o[2], :] = np.einsum("bdhwc,dhwcf->bf", xp[window_index(o, stride, kernel_size)], kernel) + bias
    return y


def conv_backward_reference(x, kernel, dy, stride, pad_before, pad_after):
    """``(dx, dkernel, dbias)``: each window's products send dy back to the window and the kernel."""
    xp = padded(x, pad_before, pad_after)
    dxp = np.zeros_like(xp, dtype=np.result_type(x, dy))
    dkernel = np.zeros(kernel.shape, dtype=np.result_type(x, dy))
    for o in np.ndindex(*dy.shape[1:4]):
        window = window_index(o, stride, kernel.shape[:3])
        grad_out = dy[:, o[0], o[1], o[2], :]  # (B, F)
        dxp[window] += np.einsum("bf,dhwcf->bdhwc", grad_out, kernel)
        dkernel += np.einsum("bdhwc,bf->dhwcf", xp[window], grad_out)
    return unpadded(dxp, pad_before, x.shape[1:4]), dkernel, dy.sum(axis=(0, 1, 2, 3))


# ------------------------------------------------------------------------- layer

#: Default for new layers: True, im2col + BLAS products; False, the per-sample loops above.
FAST = True
#: On the fast path, convolutions of at most this many input channels and filters run
#: the direct kernels (`direct_forward`, `direct_backward`) instead of im2col + BLAS, whose
#: products are then narrow on both sides.  Measured, forward + backward (medians, batch
#: as trained): LeNet-5's 6 → 16 layer 3.0 ms with im2col, 1.5 direct; the hand-signs
#: CNN's 32 → 32 (60×60 outputs) 120 ms with im2col, 85 direct; the three-conv network's
#: 8 → 12 (7×7 outputs) 2.6 ms with im2col, 2.0–2.3 direct with samples stacked (`DIRECT_RUN`);
#: but 32 → 64 on 6×6 outputs 4.2 ms with im2col, 4.6 direct: wider products are BLAS's.
DIRECT_MAX_CHANNELS = 32
#: The run length the direct kernels aim for: a sample whose run L (see `plane_sizes`) is
#: shorter is taken together with the next ones, their planes one after another, until the
#: group's run is this long (the three-conv network's 7×7 layer: L = 55, planes of V = 64,
#: 7 samples at a time — forward + backward 2.5–2.9 ms one sample at a time, 2.0–2.3 stacked;
#: 13 at a time no better; LeNet-5's 6 → 16, L = 136, 3 at a time: the same as one).
DIRECT_RUN = 400


class Conv(Layer):
    """A convolution layer of any spatial rank (1, 2 or 3), Keras layout and initialisation.

    ``params``: ``kernel (*K, C_in, F)`` (Glorot uniform, fan_in = K_volume·C_in,
    fan_out = K_volume·F) and ``bias (F,)`` (zeros).  Regularization options of
    the statement: ``l1 λ1``/``l2 λ2`` add λ1·Σ|W| + λ2·ΣW² over the kernel (not
    the bias) to the loss; ``dropconnect P`` multiplies the kernel, at train time
    only, by a fresh Bernoulli mask per batch scaled by 1/(1−P).
    """

    #: The statement's activation is *not* applied by this layer; the network adds it.
    applies_activation = False
    #: The network may set this to False on a first layer: ∂L/∂x of the data is never
    #: used, and it is about half the backward work.  `backward` then returns None.
    input_grad = True
    #: The activation step after this layer, when the network lets the layer run it itself
    #: (cpu backend, as for dense: `fuse_activation`); None: the output is the plain sum.
    activation: str | None = None
    #: Fast path only: None chooses by shape (see `_direct`); True always takes the direct
    #: kernels, False always im2col + BLAS (the tests use both).
    direct: bool | None = None

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False,
                 fast: bool | None = None) -> None:
        super().__init__(info, rng)
        self.reference = reference  # True: the plain-NumPy functions instead of the Numba kernels
        self.fast = FAST if fast is None else fast  # im2col + BLAS instead of the readable loops
        statement = info.layer
        *sizes, channels = info.input_shape
        self.window = Window(sizes, statement.kernel, statement.stride, statement.padding)
        self.filters = statement.filters
        self.regularization = statement.regularization
        expected = (*self.window.output, self.filters)
        if tuple(info.output_shape) != expected:
            raise ValueError(f"{info.name}: computed output shape {expected}, the model says {info.output_shape}")

        self.params = {
            "kernel": glorot_uniform(rng, (*self.window.kernel, channels, self.filters)),
            "bias": zeros((self.filters,)),
        }
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self._x = None  # the input of the last forward, as a volume (B, D, H, W, C)
        self._kernel = None  # the kernel it used, as (KD, KH, KW, C, F), DropConnect mask applied
        self._mask_scale = None  # DropConnect: mask / (1 − P) of the last training forward
        self._cols = None  # fast path: the last forward's im2col rows (B, OD, OH, OW, K·C + 1)
        self._scratch: dict[str, np.ndarray] = {}  # fast path: work arrays kept from batch to batch
        self._y = None  # with a fused activation: the last output, (B·O, F)
        w = self.window  # the direct kernels' run length L per sample (see `plane_sizes`) and planes' volume
        plane_d, plane_h, plane_w, self._run = plane_sizes(*w.output_3d, *w.kernel_3d, *w.stride_3d)
        self._volume = plane_d * plane_h * plane_w

    def fuse_activation(self, name: str) -> None:
        """Apply the activation ``name`` (relu, tanh, sigmoid, linear) inside this layer from now on."""
        if name not in FUSED_CODES:
            raise ValueError(f"{self.name}: cannot fuse the activation {name!r}")
        self.activation = None if name == "linear" else name

    def _volume_kernel(self, kernel: np.ndarray) -> np.ndarray:
        return kernel.reshape((*self.window.kernel_3d, *kernel.shape[-2:]))

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        kernel = self.params["kernel"]
        self._mask_scale = None
        rate = self.regularization.dropconnect
        if training and rate > 0.0:
            keep = self.rng.random(kernel.shape) >= rate
            self._mask_scale = keep.astype(kernel.dtype) / kernel.dtype.type(1.0 - rate)
            kernel = kernel * self._mask_scale

        x5 = as_volume(np.ascontiguousarray(x))
        self._x = x5
        self._kernel = np.ascontiguousarray(self._volume_kernel(kernel))
        w = self.window
        bias = self.params["bias"].astype(x5.dtype, copy=False)
        if self.reference:
            y = conv_forward_reference(x5, self._kernel, bias, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
        elif self._direct():
            self._cols = None
            y = np.empty((x5.shape[0], *w.output_3d, self.filters), dtype=np.result_type(x5, self._kernel))
            direct_forward_batch(parts(x5.shape[0]), self._group(), x5, self._kernel, bias, *w.stride_3d, *w.pad_before_3d, y,
                                 self._relu_inside())
        elif self.fast:
            y = self._forward_products(x5, bias)
        else:
            y = np.empty((x5.shape[0], *w.output_3d, self.filters), dtype=x5.dtype)
            conv_forward(x5, self._kernel, bias, *w.stride_3d, *w.pad_before_3d, y)
        if self.activation is not None:  # y = act(z), over z in place
            y2 = y.reshape(-1, self.filters)
            if self.reference:
                y2[...] = FUNCTIONS[self.activation][2](y2, 0.0)
            elif not self._relu_inside():
                activation_inplace(y2, self.activation)
            self._y = y2
        return y.reshape((x.shape[0], *self.info.output_shape))

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        w = self.window
        x5 = self._x
        dy5 = np.ascontiguousarray(dy).reshape((dy.shape[0], *w.output_3d, self.filters))
        if self.activation is not None and not self._relu_inside():
            # ∂L/∂z = ∂L/∂y · act'(z), act' read off y (see `engine.layers.activations`)
            dy2 = dy5.reshape(-1, self.filters)
            if self.reference:
                dz = FUNCTIONS[self.activation][3](self._y, self._y, dy2, 0.0)
            else:
                dz = self._work_array("dz", dy2.shape, dy2.dtype)
                activation_backward(self._y.reshape(-1), dy2.reshape(-1), FUSED_CODES[self.activation],
                                    dz.reshape(-1))
            dy5 = dz.reshape(dy5.shape)

        if self.reference:
            dx, dkernel, dbias = conv_backward_reference(x5, self._kernel, dy5, w.stride_3d, w.pad_before_3d,
                                                         w.pad_after_3d)
        elif self._direct():
            dx, dkernel, dbias = self._backward_direct(dy5)
        elif self.fast:
            dx, dkernel, dbias = self._backward_products(dy5)
        else:
            dx = np.empty_like(x5, dtype=dy5.dtype) if self.input_grad else np.empty((0,) * 5, dtype=dy5.dtype)
            dkernel = np.empty(self._kernel.shape, dtype=dy5.dtype)
            dbias = np.empty(self.filters, dtype=dy5.dtype)
            n_parts = max(1, min(x5.shape[0], numba.get_num_threads()))
            conv_backward(x5, dy5, self._kernel.astype(dy5.dtype, copy=False), *w.stride_3d, *w.pad_before_3d,
                          n_parts, self.input_grad, dx, dkernel, dbias)

        kernel = self.params["kernel"]
        dkernel = dkernel.reshape(kernel.shape)
        if self._mask_scale is not None:  # y used kernel·mask/(1−P): the chain rule multiplies by the same
            dkernel *= self._mask_scale
        dkernel += self._penalty_gradient(kernel)
        self.grads["kernel"] = dkernel.astype(kernel.dtype, copy=False)
        self.grads["bias"] = dbias.astype(self.params["bias"].dtype, copy=False)
        if not self.input_grad:
            return None
        return dx.reshape((dx.shape[0], *self.info.input_shape))

    # ---------------------------------------------- the fast path: im2col + three BLAS products

    def _direct(self) -> bool:
        """Whether this layer goes the direct way rather than im2col + BLAS: at most
        `DIRECT_MAX_CHANNELS` input channels and filters."""
        if not self.fast or self.direct is False:
            return False
        channels = self.info.input_shape[-1]
        return self.direct or max(channels, self.filters) <= DIRECT_MAX_CHANNELS

    def _group(self) -> int:
        """How many samples the direct kernels take at a time: enough that their run reaches
        `DIRECT_RUN` (one when a sample's own run does)."""
        short = max(0, DIRECT_RUN - self._run)
        return 1 + -(-short // self._volume)

    def _relu_inside(self) -> bool:
        """Whether the direct kernels apply this layer's relu themselves (no pass of its own)."""
        return self.activation == "relu" and not self.reference and self._direct()

    def _work_array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A scratch array kept by the layer and reused while the batch size stays the same."""
        array = self._scratch.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._scratch[name] = np.empty(shape, dtype=dtype)
        return array

    def _forward_products(self, x5: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """y = cols · [kernel; bias], cols = im2col(x) with a column of ones (see `engine.layers.im2col`):
        the copy on the kernels' threads, the product on BLAS's."""
        w = self.window
        rows = self._kernel.size // self.filters  # K·C
        cols = self._work_array("cols", (x5.shape[0], *w.output_3d, rows + 1), x5.dtype)
        im2col_batch(parts(x5.shape[0]), x5, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, cols)
        weights = np.empty((rows + 1, self.filters), dtype=np.result_type(x5, self._kernel))
        weights[:rows] = self._kernel.reshape(rows, self.filters)
        weights[rows] = bias
        self._cols = cols
        return np.matmul(cols.reshape(-1, rows + 1), weights).reshape((x5.shape[0], *w.output_3d, self.filters))

    def _backward_products(self, dy5: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dx, dkernel, dbias)``: [∂kernel; ∂bias] = colsᵀ·dy, dx = col2im(dy·kernelᵀ)."""
        rows = self._kernel.size // self.filters
        dweights = np.matmul(self._cols.reshape(-1, rows + 1).T, dy5.reshape(-1, self.filters))  # (K·C + 1, F)
        return self._input_gradient(dy5), dweights[:rows], dweights[rows]

    def _input_gradient(self, dy5: np.ndarray) -> np.ndarray | None:
        """∂L/∂x = col2im(∂L/∂y · kernelᵀ); None when the layer skips it."""
        if not self.input_grad:
            return None
        w = self.window
        rows = self._kernel.size // self.filters
        dtype = np.result_type(dy5, self._kernel)
        dcols = self._work_array("dcols", (*dy5.shape[:4], rows), dtype)
        np.matmul(dy5.reshape(-1, self.filters), self._kernel.reshape(rows, self.filters).T,
                  out=dcols.reshape(-1, rows))
        dx = np.empty(self._x.shape, dtype=dtype)
        col2im_batch(parts(dx.shape[0]), dcols, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
        return dx

    def _backward_direct(self, dy5: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dx, dkernel, dbias)`` of the direct path: the weight gradients summed per range of
        samples (`direct_backward`, which also writes ∂L/∂x), then the ranges' partials in a fixed order."""
        w, x5 = self.window, self._x
        ranges = parts(x5.shape[0])
        partial_kernel = np.zeros((ranges, *self._kernel.shape), dtype=dy5.dtype)
        partial_bias = np.zeros((ranges, self.filters), dtype=dy5.dtype)
        kernel = self._kernel.astype(dy5.dtype, copy=False)
        dx = np.empty(x5.shape, dtype=dy5.dtype) if self.input_grad else None
        relu = self._relu_inside()  # its slope read off the output y (without relu, y is not read)
        y = self._y.reshape(dy5.shape) if relu else dy5
        direct_backward_batch(ranges, self._group(), x5, kernel, *w.stride_3d, *w.pad_before_3d, relu, y, dy5,
                              partial_kernel, partial_bias, dx)
        return dx, partial_kernel.sum(axis=0), partial_bias.sum(axis=0)

    def penalty(self) -> float:
        kernel = self.params["kernel"]
        l1, l2 = self.regularization.l1, self.regularization.l2
        total = 0.0
        if l1:
            total += l1 * float(np.abs(kernel).sum(dtype=np.float64))
        if l2:
            total += l2 * float(np.square(kernel).sum(dtype=np.float64))
        return total

    def _penalty_gradient(self, kernel: np.ndarray) -> np.ndarray | float:
        """∂/∂W of λ1·Σ|W| + λ2·ΣW² = λ1·sign(W) + 2·λ2·W."""
        l1, l2 = self.regularization.l1, self.regularization.l2
        if not (l1 or l2):
            return 0.0
        return (l1 * np.sign(kernel) + 2.0 * l2 * kernel).astype(kernel.dtype)
