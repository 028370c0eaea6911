"""Pooling, 1-D, 2-D and 3-D: ``pool max|avg K [stride S] [pad …]`` and ``pool max|avg global``.

Each channel separately, over the window of kernel cells at output position o
(stride S, padding P before the first cell; default stride = kernel):

    max:  y[b, o, c] = max  over m of x[b, o·S − P + m, c]
    avg:  y[b, o, c] = mean over m of x[b, o·S − P + m, c]

Padding cells never take part: max ignores them and the average is over the
window's cells that lie inside the input (Keras's ``same`` average pooling,
PyTorch's ``count_include_pad=False``).  Global pooling is the window that
covers the whole input, with output ``(B, C)``.

Backward, from ∂L/∂y:

    max:  the whole of ∂L/∂y[b, o, c] goes to the cell that was the maximum
          (the first one in scan order when several are equal), nothing to the others;
    avg:  each of the window's n valid cells receives ∂L/∂y[b, o, c] / n.

As in `engine.layers.conv`, every rank is handled as a volume ``(B, D, H, W, C)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnrun.dsl.spec import LayerInfo
from nnrun.engine.layers.base import Layer
from nnrun.engine.layers.padding import Window, as_volume, output_sizes, padded, unpadded, window_index

# ----------------------------------------------------------------- Numba kernels
#
# As in `engine.layers.conv`: each pass for one sample, then a `prange` wrapper
# over the batch (samples write disjoint memory).


@njit(cache=True)
def max_pool_forward_sample(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                            y, argmax):
    """One sample: write ``y (OD, OH, OW, C)``, the window maxima of ``x (D, H, W, C)``, and
    ``argmax`` (same shape, int64): the cell of each maximum as the flat index
    (d·H + h)·W + w, for the backward pass."""
    depth, height, width, channels = x.shape
    out_d, out_h, out_w, _ = y.shape
    for od in range(out_d):
        d0 = od * stride_d - pad_d  # where the window starts in x; < 0 inside the padding
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                out = y[od, oh, ow]  # (C,)
                best = argmax[od, oh, ow]  # (C,)
                for c in range(channels):
                    best[c] = -1
                # only the window's cells inside x: padding never wins
                for m_d in range(max(0, -d0), min(kernel_d, depth - d0)):
                    for m_h in range(max(0, -h0), min(kernel_h, height - h0)):
                        for m_w in range(max(0, -w0), min(kernel_w, width - w0)):
                            cell = ((d0 + m_d) * height + h0 + m_h) * width + w0 + m_w
                            for c in range(channels):
                                value = x[d0 + m_d, h0 + m_h, w0 + m_w, c]
                                if best[c] < 0 or value > out[c]:  # strict: of equal maxima the first stays
                                    out[c] = value
                                    best[c] = cell
                for c in range(channels):
                    if best[c] < 0:  # a window wholly in the padding (explicit pad ≥ kernel)
                        out[c] = 0.0


@njit(cache=True)
def max_pool_backward_sample(dy, argmax, dx):
    """One sample: write ``dx (D, H, W, C)``; each ∂L/∂y goes to the cell its ``argmax`` names."""
    depth, height, width, channels = dx.shape
    out_d, out_h, out_w, _ = dy.shape
    dx[...] = 0.0
    for od in range(out_d):
        for oh in range(out_h):
            for ow in range(out_w):
                for c in range(channels):
                    cell = argmax[od, oh, ow, c]
                    if cell >= 0:
                        d, rest = divmod(cell, height * width)
                        h, w = divmod(rest, width)
                        dx[d, h, w, c] += dy[od, oh, ow, c]


@njit(cache=True)
def avg_pool_forward_sample(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y):
    """One sample: write ``y (OD, OH, OW, C)``, the mean of each window's cells inside ``x (D, H, W, C)``."""
    depth, height, width, channels = x.shape
    out_d, out_h, out_w, _ = y.shape
    for od in range(out_d):
        d0 = od * stride_d - pad_d
        d_lo, d_hi = max(0, -d0), min(kernel_d, depth - d0)
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            h_lo, h_hi = max(0, -h0), min(kernel_h, height - h0)
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)
                count = max(d_hi - d_lo, 0) * max(h_hi - h_lo, 0) * max(w_hi - w_lo, 0)  # cells inside x
                out = y[od, oh, ow]  # (C,)
                for c in range(channels):
                    out[c] = 0.0
                for m_d in range(d_lo, d_hi):
                    for m_h in range(h_lo, h_hi):
                        for m_w in range(w_lo, w_hi):
                            for c in range(channels):
                                out[c] += x[d0 + m_d, h0 + m_h, w0 + m_w, c]
                if count > 0:
                    for c in range(channels):
                        out[c] /= count


@njit(cache=True)
def avg_pool_backward_sample(dy, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                             dx):
    """One sample: write ``dx (D, H, W, C)``; each window's n cells inside x receive ∂L/∂y / n."""
    depth, height, width, channels = dx.shape
    out_d, out_h, out_w, _ = dy.shape
    dx[...] = 0.0
    for od in range(out_d):
        d0 = od * stride_d - pad_d
        d_lo, d_hi = max(0, -d0), min(kernel_d, depth - d0)
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            h_lo, h_hi = max(0, -h0), min(kernel_h, height - h0)
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)
                count = max(d_hi - d_lo, 0) * max(h_hi - h_lo, 0) * max(w_hi - w_lo, 0)
                grad_out = dy[od, oh, ow]  # (C,)
                for m_d in range(d_lo, d_hi):
                    for m_h in range(h_lo, h_hi):
                        for m_w in range(w_lo, w_hi):
                            for c in range(channels):
                                dx[d0 + m_d, h0 + m_h, w0 + m_w, c] += grad_out[c] / count


@njit(parallel=True, cache=True)
def max_pool_forward(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y, argmax):
    """``x (B, D, H, W, C)`` → ``y``, ``argmax (B, OD, OH, OW, C)``; samples in parallel."""
    for b in prange(x.shape[0]):
        max_pool_forward_sample(x[b], kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                                y[b], argmax[b])


@njit(parallel=True, cache=True)
def max_pool_backward(dy, argmax, dx):
    """``dy``, ``argmax (B, OD, OH, OW, C)`` → ``dx (B, D, H, W, C)``; samples in parallel."""
    for b in prange(dx.shape[0]):
        max_pool_backward_sample(dy[b], argmax[b], dx[b])


@njit(parallel=True, cache=True)
def avg_pool_forward(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, y):
    """``x (B, D, H, W, C)`` → ``y (B, OD, OH, OW, C)``; samples in parallel."""
    for b in prange(x.shape[0]):
        avg_pool_forward_sample(x[b], kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                                y[b])


@njit(parallel=True, cache=True)
def avg_pool_backward(dy, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx):
    """``dy (B, OD, OH, OW, C)`` → ``dx (B, D, H, W, C)``; samples in parallel."""
    for b in prange(dx.shape[0]):
        avg_pool_backward_sample(dy[b], kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h,
                                 pad_w, dx[b])


# ------------------------------------------------------ fast kernels (the default path)
#
# The same passes over the whole batch in one serial loop — no thread pool to wake
# and none left spinning against the BLAS products of the conv and dense layers
# around them — with the channel loop innermost over contiguous memory, so that
# LLVM makes it vector code.  Two details matter (8× here): each cell's channels
# are a slice taken once (an index computed as base + c would be checked for
# wrap-around on every access, which blocks vectorisation), and the max is chosen
# with selects, not a branch.  The argmax is int32: the winning element's flat
# index inside its sample, cell·C + c.

FASTMATH = {"contract"}  # no re-association: the averages sum in the readable order


@njit(cache=True, fastmath=FASTMATH)
def pool_forward_fast(x, is_max, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                      y, argmax):
    """``x (B, D, H, W, C)`` → ``y (B, OD, OH, OW, C)``: window maxima (``is_max``, with
    ``argmax`` written) or means (``argmax`` untouched), as the readable per-sample kernels."""
    batch, depth, height, width, channels = x.shape
    _, out_d, out_h, out_w, _ = y.shape
    x_flat, y_flat, argmax_flat = x.reshape(-1), y.reshape(-1), argmax.reshape(-1)
    sample = depth * height * width * channels
    o = 0  # flat index of y[b, od, oh, ow, 0]
    for b in range(batch):
        for od in range(out_d):
            d0 = od * stride_d - pad_d
            d_lo, d_hi = max(0, -d0), min(kernel_d, depth - d0)
            for oh in range(out_h):
                h0 = oh * stride_h - pad_h
                h_lo, h_hi = max(0, -h0), min(kernel_h, height - h0)
                for ow in range(out_w):
                    w0 = ow * stride_w - pad_w
                    w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)
                    out = y_flat[o:o + channels]  # (C,)
                    best = argmax_flat[o:o + channels] if is_max else argmax_flat[0:0]
                    count = 0  # cells of the window inside x
                    for m_d in range(d_lo, d_hi):
                        for m_h in range(h_lo, h_hi):
                            for m_w in range(w_lo, w_hi):
                                cell = (((d0 + m_d) * height + h0 + m_h) * width + w0 + m_w) * channels
                                pixel = x_flat[b * sample + cell:b * sample + cell + channels]  # (C,)
                                if count == 0:
                                    for c in range(channels):
                                        out[c] = pixel[c]
                                    if is_max:
                                        for c in range(channels):
                                            best[c] = cell + c
                                elif is_max:
                                    for c in range(channels):  # strict >: of equal maxima the first stays
                                        better = pixel[c] > out[c]
                                        out[c] = pixel[c] if better else out[c]
                                        best[c] = cell + c if better else best[c]
                                else:
                                    for c in range(channels):
                                        out[c] += pixel[c]
                                count += 1
                    if count == 0:  # a window wholly in the padding (explicit pad ≥ kernel)
                        for c in range(channels):
                            out[c] = 0.0
                        if is_max:
                            for c in range(channels):
                                best[c] = -1
                    elif not is_max:
                        for c in range(channels):
                            out[c] /= count
                    o += channels


@njit(cache=True, fastmath=FASTMATH)
def max_pool_forward_inside(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, y, argmax):
    """`pool_forward_fast` for max pooling whose windows all lie inside x (no padding).

    The same maxima and winners, with the loops turned so that the innermost one runs
    over a whole output row (OW·C numbers) rather than one cell's C channels.  With
    few channels (LeNet-5's 6) a loop over C is too short to become vector code, and
    its scalar compare-and-select turns into a branch that random data mispredicts
    half the time (3.5× slower on random numbers than on sorted ones).  So each input
    line is first split by stride phase — columns w with w mod SW = p side by side —
    after which kernel column m_w of every window in the row is one contiguous run
    (phase m_w mod SW, from column m_w // SW on).  The cells are visited in the
    readable order and the test is a strict >, so of equal maxima the first wins."""
    batch, depth, height, width, channels = x.shape
    _, out_d, out_h, out_w, _ = y.shape
    x_flat, y_flat, argmax_flat = x.reshape(-1), y.reshape(-1), argmax.reshape(-1)
    sample = depth * height * width * channels
    row = out_w * channels
    per_phase = (width + stride_w - 1) // stride_w * channels
    split = np.empty((stride_w, per_phase), dtype=x.dtype)  # one input line, split by stride phase
    where = np.empty((stride_w, per_phase), dtype=np.int32)  # those cells' flat indices in the sample
    o = 0  # flat index of y[b, od, oh, 0, 0]
    for b in range(batch):
        for od in range(out_d):
            for oh in range(out_h):
                out = y_flat[o:o + row]  # (OW·C,)
                best = argmax_flat[o:o + row]
                first = True
                for m_d in range(kernel_d):
                    for m_h in range(kernel_h):
                        line = ((od * stride_d + m_d) * height + oh * stride_h + m_h) * width * channels
                        cells = x_flat[b * sample + line:b * sample + line + width * channels]  # (W·C,)
                        for w in range(width):
                            q = (w // stride_w) * channels
                            phase_cells, phase_where = split[w % stride_w], where[w % stride_w]
                            for c in range(channels):
                                phase_cells[q + c] = cells[w * channels + c]
                                phase_where[q + c] = line + w * channels + c
                        for m_w in range(kernel_w):
                            shift = (m_w // stride_w) * channels
                            pixels = split[m_w % stride_w, shift:shift + row]  # kernel column m_w of every window
                            index = where[m_w % stride_w, shift:shift + row]
                            if first:
                                for j in range(row):
                                    out[j] = pixels[j]
                                    best[j] = index[j]
                            else:
                                for j in range(row):
                                    better = pixels[j] > out[j]
                                    out[j] = pixels[j] if better else out[j]
                                    best[j] = index[j] if better else best[j]
                            first = False
                o += row


@njit(cache=True, fastmath=FASTMATH)
def max_pool_backward_fast(dy, argmax, dx):
    """``dy``, ``argmax (B, OD, OH, OW, C)`` → ``dx (B, D, H, W, C)``: each ∂L/∂y to its winner."""
    dx[...] = 0.0
    batch = dx.shape[0]
    for b in range(batch):
        dx_b, dy_b, argmax_b = dx[b].reshape(-1), dy[b].reshape(-1), argmax[b].reshape(-1)
        for i in range(dy_b.size):
            if argmax_b[i] >= 0:
                dx_b[argmax_b[i]] += dy_b[i]


@njit(cache=True, fastmath=FASTMATH)
def avg_pool_backward_fast(dy, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx):
    """``dy (B, OD, OH, OW, C)`` → ``dx (B, D, H, W, C)``: each window's n cells inside x get ∂L/∂y / n."""
    batch, depth, height, width, channels = dx.shape
    _, out_d, out_h, out_w, _ = dy.shape
    dx[...] = 0.0
    dx_flat, dy_flat = dx.reshape(-1), dy.reshape(-1)
    sample = depth * height * width * channels
    o = 0
    for b in range(batch):
        for od in range(out_d):
            d0 = od * stride_d - pad_d
            d_lo, d_hi = max(0, -d0), min(kernel_d, depth - d0)
            for oh in range(out_h):
                h0 = oh * stride_h - pad_h
                h_lo, h_hi = max(0, -h0), min(kernel_h, height - h0)
                for ow in range(out_w):
                    w0 = ow * stride_w - pad_w
                    w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)
                    count = max(d_hi - d_lo, 0) * max(h_hi - h_lo, 0) * max(w_hi - w_lo, 0)
                    grad_out = dy_flat[o:o + channels]  # (C,)
                    for m_d in range(d_lo, d_hi):
                        for m_h in range(h_lo, h_hi):
                            for m_w in range(w_lo, w_hi):
                                cell = b * sample + (((d0 + m_d) * height + h0 + m_h) * width + w0 + m_w) * channels
                                grad_in = dx_flat[cell:cell + channels]  # (C,)
                                for c in range(channels):
                                    grad_in[c] += grad_out[c] / count
                    o += channels


# ------------------------------------------------- plain-NumPy reference (test oracle)


def _windows(x, kernel, stride, pad_before, pad_after):
    """Yield ``(o, window, cells)`` per output position: ``window`` indexes the NaN-padded
    input, ``cells`` is that window as ``(B, KD·KH·KW, C)`` with NaN on the padding."""
    xp = padded(x.astype(np.float64), pad_before, pad_after, value=np.nan)
    for o in np.ndindex(*output_sizes(x.shape[1:4], kernel, stride, pad_before, pad_after)):
        window = window_index(o, stride, kernel)
        yield o, window, xp[window].reshape(x.shape[0], -1, x.shape[4])


def pool_forward_reference(x, mode, kernel, stride, pad_before, pad_after):
    """Max or mean of each window, NaN-padded so that the padding takes no part (x is a volume)."""
    reduce = np.nanmax if mode == "max" else np.nanmean
    out = output_sizes(x.shape[1:4], kernel, stride, pad_before, pad_after)
    y = np.empty((x.shape[0], *out, x.shape[4]), dtype=x.dtype)
    for o, _, cells in _windows(x, kernel, stride, pad_before, pad_after):
        y[:, o[0], o[1], o[2], :] = reduce(cells, axis=1)
    return y


def pool_backward_reference(x, dy, mode, kernel, stride, pad_before, pad_after):
    """∂L/∂x: to the first maximum of each window (max) or shared by its valid cells (avg)."""
    dxp = np.zeros(padded(x, pad_before, pad_after).shape)
    for o, window, cells in _windows(x, kernel, stride, pad_before, pad_after):
        grad_out = dy[:, o[0], o[1], o[2], :]  # (B, C)
        if mode == "max":
            first = np.nanargmax(cells, axis=1)  # (B, C); nanargmax returns the first of equal maxima
            share = np.arange(cells.shape[1])[None, :, None] == first[:, None, :]
        else:
            valid = ~np.isnan(cells)
            share = valid / valid.sum(axis=1, keepdims=True)
        dxp[window] += (share * grad_out[:, None, :]).reshape(dxp[window].shape)
    return unpadded(dxp, pad_before, x.shape[1:4]).astype(np.result_type(x, dy))


# ------------------------------------------------------------------------- layer


#: Default for new layers: True, the serial whole-batch kernels above; False, the readable per-sample ones.
FAST = True


class Pool(Layer):
    """Max or average pooling of any spatial rank, windowed or global; no parameters."""

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False,
                 fast: bool | None = None) -> None:
        super().__init__(info, rng)
        self.reference = reference  # True: the plain-NumPy functions instead of the Numba kernels
        self.fast = FAST if fast is None else fast
        statement = info.layer
        self.mode = statement.mode
        if self.mode not in ("max", "avg"):
            raise ValueError(f"{info.name}: pooling mode {self.mode!r} is neither 'max' nor 'avg'")
        *sizes, channels = info.input_shape
        self.is_global = statement.is_global
        if self.is_global:  # one window over the whole input
            self.window = Window(sizes, sizes, (1,), "valid")
            expected = (channels,)
        else:
            self.window = Window(sizes, statement.kernel, statement.stride, statement.padding)
            expected = (*self.window.output, channels)
        if tuple(info.output_shape) != expected:
            raise ValueError(f"{info.name}: computed output shape {expected}, the model says {info.output_shape}")
        self._argmax = None  # max: the winning cell per output, from the last forward
        self._x = None  # the last input as a volume (the reference backward recomputes from it)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        w = self.window
        x5 = as_volume(np.ascontiguousarray(x))
        self._x = x5
        if self.reference:
            y = pool_forward_reference(x5, self.mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
            return y.reshape((x.shape[0], *self.info.output_shape))
        y = np.empty((x5.shape[0], *w.output_3d, x5.shape[4]), dtype=x5.dtype)
        if self.fast:
            is_max = self.mode == "max"
            self._argmax = np.empty(y.shape if is_max else (0,) * 5, dtype=np.int32)
            if is_max and not any(w.pad_before_3d) and not any(w.pad_after_3d):
                max_pool_forward_inside(x5, *w.kernel_3d, *w.stride_3d, y, self._argmax)
            else:
                pool_forward_fast(x5, is_max, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y, self._argmax)
        elif self.mode == "max":
            self._argmax = np.empty(y.shape, dtype=np.int64)
            max_pool_forward(x5, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y, self._argmax)
        else:
            avg_pool_forward(x5, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y)
        return y.reshape((x.shape[0], *self.info.output_shape))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        w = self.window
        x5 = self._x
        dy5 = np.ascontiguousarray(dy).reshape((dy.shape[0], *w.output_3d, x5.shape[4]))
        if self.reference:
            dx = pool_backward_reference(x5, dy5, self.mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
            return dx.reshape((dx.shape[0], *self.info.input_shape))
        dx = np.empty(x5.shape, dtype=dy5.dtype)
        if self.fast and self.mode == "max":
            max_pool_backward_fast(dy5, self._argmax, dx)
        elif self.fast:
            avg_pool_backward_fast(dy5, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
        elif self.mode == "max":
            max_pool_backward(dy5, self._argmax, dx)
        else:
            avg_pool_backward(dy5, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
        return dx.reshape((dx.shape[0], *self.info.input_shape))
