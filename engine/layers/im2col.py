"""The convolution as one matrix product: im2col, and its adjoint col2im.

Every output position o of a convolution reads one window of the input — the
``KD·KH·KW`` cells at o·S − P + m, each with its C channels.  Lay each window
out as one row (cells in the kernel's order, channels innermost) and the whole
layer is a matrix product:

    cols (N, K·C + 1)       N = B·OD·OH·OW rows; the last column is all ones
    W    (K·C + 1, F)       the kernel (KD, KH, KW, C, F) as K·C rows, then the bias row

    forward    y      = cols · W                           (N, F)   the bias comes from the ones
    backward   ∂L/∂W  = colsᵀ · ∂L/∂y                       (K·C + 1, F); its last row is ∂L/∂bias
               ∂L/∂cols = ∂L/∂y · W[:K·C]ᵀ                  (N, K·C)
               ∂L/∂x  = col2im(∂L/∂cols)                    each cell sums the rows it was copied to

The three products go to NumPy's BLAS (OpenBLAS, multi-threaded and blocked for
the cache), which is far faster than any loop we could write when K·C is not
tiny; the copies around them are the serial kernels below.  Cells in the
padding are zeros in ``cols`` and receive nothing in col2im.  The layout is the
volume form of `engine.layers.padding`: ``x (B, D, H, W, C)``.
"""
from __future__ import annotations

from numba import njit

# The kernels are plain copies and sums: no re-association question, but "contract"
# lets LLVM fuse the adds of col2im with nothing harmful.
FASTMATH = {"reassoc", "contract"}


@njit(cache=True, fastmath=FASTMATH)
def im2col(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, cols):
    """Write ``cols (B, OD, OH, OW, KD·KH·KW·C + 1)``: each output position's window of
    ``x (B, D, H, W, C)`` as one row, zeros for padding cells, then a 1 (for the bias).

    Along m_w the window's cells inside x are one contiguous run of x (and of the
    row), so each (m_d, m_h) is one straight copy of up to KW·C numbers, between
    slices taken once (an index computed as start + j would be checked for
    wrap-around on every access, which keeps LLVM from vectorising the copy)."""
    batch, depth, height, width, channels = x.shape
    _, out_d, out_h, out_w, row_size = cols.shape
    x_flat = x.reshape(-1)  # views: flat indices, no per-cell slicing
    cols_flat = cols.reshape(-1)
    run = kernel_w * channels  # one kernel row of cells, (m_w, c)
    row_start = 0
    for b in range(batch):
        for od in range(out_d):
            d0 = od * stride_d - pad_d
            for oh in range(out_h):
                h0 = oh * stride_h - pad_h
                for ow in range(out_w):
                    w0 = ow * stride_w - pad_w
                    w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)  # kernel columns inside x
                    i = row_start
                    for m_d in range(kernel_d):
                        d = d0 + m_d
                        for m_h in range(kernel_h):
                            h = h0 + m_h
                            part = cols_flat[i:i + run]  # (KW·C,) the kernel row (m_d, m_h, ·, ·)
                            if 0 <= d < depth and 0 <= h < height and w_lo < w_hi:
                                source = (((b * depth + d) * height + h) * width + w0) * channels
                                cells = x_flat[source + w_lo * channels:source + w_hi * channels]
                                for j in range(w_lo * channels):
                                    part[j] = 0.0
                                for j in range(cells.size):
                                    part[w_lo * channels + j] = cells[j]
                                for j in range(w_hi * channels, run):
                                    part[j] = 0.0
                            else:
                                for j in range(run):
                                    part[j] = 0.0
                            i += run
                    cols_flat[row_start + row_size - 1] = 1.0
                    row_start += row_size


@njit(cache=True, fastmath=FASTMATH)
def col2im(dcols, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx):
    """Write ``dx (B, D, H, W, C)``: every row of ``dcols (B, OD, OH, OW, KD·KH·KW·C)``
    added back onto the window it came from (im2col's adjoint; same contiguous runs)."""
    batch, depth, height, width, channels = dx.shape
    _, out_d, out_h, out_w, row_size = dcols.shape
    dx_flat = dx.reshape(-1)
    dcols_flat = dcols.reshape(-1)
    run = kernel_w * channels
    dx[...] = 0.0
    row_start = 0
    for b in range(batch):
        for od in range(out_d):
            d0 = od * stride_d - pad_d
            for oh in range(out_h):
                h0 = oh * stride_h - pad_h
                for ow in range(out_w):
                    w0 = ow * stride_w - pad_w
                    w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)
                    i = row_start
                    for m_d in range(kernel_d):
                        d = d0 + m_d
                        for m_h in range(kernel_h):
                            h = h0 + m_h
                            if 0 <= d < depth and 0 <= h < height and w_lo < w_hi:
                                target = (((b * depth + d) * height + h) * width + w0) * channels
                                cells = dx_flat[target + w_lo * channels:target + w_hi * channels]
                                part = dcols_flat[i + w_lo * channels:i + w_hi * channels]
                                for j in range(cells.size):
                                    cells[j] += part[j]
                            i += run
                    row_start += row_size
