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

The three products go to NumPy's BLAS, which is far faster than any loop we
could write when K·C is not tiny; the copies around them are the kernels below.
They work on any run of consecutive rows (``first`` = the flat output position
b·OD·OH·OW + … of the run's first row); `im2col_batch` and `col2im_batch` run them
over the batch, each thread on its own samples.  Cells in the
padding are zeros in ``cols`` and receive nothing in col2im.  The layout is the
volume form of `engine.layers.padding`: ``x (B, D, H, W, C)``.
"""
from __future__ import annotations

from numba import njit, prange

# The kernels are plain copies and sums: no re-association question, but "contract"
# lets LLVM fuse the adds of col2im with nothing harmful.
FASTMATH = {"reassoc", "contract"}


@njit(cache=True, nogil=True)
def position(flat, out_d, out_h, out_w):
    """The output position ``(b, od, oh, ow)`` of the flat index ``flat`` over ``(B, OD, OH, OW)``."""
    ow, rest = flat % out_w, flat // out_w
    oh, rest = rest % out_h, rest // out_h
    return rest // out_d, rest % out_d, oh, ow


@njit(cache=True, nogil=True)
def next_position(b, od, oh, ow, out_d, out_h, out_w):
    """The output position after ``(b, od, oh, ow)``, in flat order."""
    ow += 1
    if ow == out_w:
        ow, oh = 0, oh + 1
        if oh == out_h:
            oh, od = 0, od + 1
            if od == out_d:
                od, b = 0, b + 1
    return b, od, oh, ow


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def im2col_rows(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                out_d, out_h, out_w, first, cols):
    """Write ``cols (n, KD·KH·KW·C + 1)``: the windows of ``x (B, D, H, W, C)`` at the
    output positions ``first … first + n − 1`` (flat over ``(B, OD, OH, OW)``), one row
    each, zeros for padding cells, then a 1 (for the bias).

    Along m_w the window's cells inside x are one contiguous run of x (and of the
    row), so each (m_d, m_h) is one straight copy of up to KW·C numbers, between
    slices taken once (an index computed as start + j would be checked for
    wrap-around on every access, which keeps LLVM from vectorising the copy)."""
    _, depth, height, width, channels = x.shape
    rows, row_size = cols.shape
    x_flat = x.reshape(-1)  # a view: flat indices, no per-cell slicing
    run = kernel_w * channels  # one kernel row of cells, (m_w, c)
    b, od, oh, ow = position(first, out_d, out_h, out_w)  # the first row's
    for r in range(rows):
        row = cols[r]
        d0, h0, w0 = od * stride_d - pad_d, oh * stride_h - pad_h, ow * stride_w - pad_w
        w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)  # kernel columns inside x
        i = 0
        for m_d in range(kernel_d):
            d = d0 + m_d
            for m_h in range(kernel_h):
                h = h0 + m_h
                part = row[i:i + run]  # (KW·C,) the kernel row (m_d, m_h, ·, ·)
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
        row[row_size - 1] = 1.0
        b, od, oh, ow = next_position(b, od, oh, ow, out_d, out_h, out_w)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def col2im_rows(dcols, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                out_d, out_h, out_w, first, dx):
    """*Add* every row of ``dcols (n, KD·KH·KW·C)`` — the output positions ``first …
    first + n − 1`` — onto the window of ``dx (B, D, H, W, C)`` it came from (im2col's
    adjoint; same contiguous runs)."""
    _, depth, height, width, channels = dx.shape
    rows = dcols.shape[0]
    dx_flat = dx.reshape(-1)
    run = kernel_w * channels
    b, od, oh, ow = position(first, out_d, out_h, out_w)
    for r in range(rows):
        row = dcols[r]
        d0, h0, w0 = od * stride_d - pad_d, oh * stride_h - pad_h, ow * stride_w - pad_w
        w_lo, w_hi = max(0, -w0), min(kernel_w, width - w0)
        i = 0
        for m_d in range(kernel_d):
            d = d0 + m_d
            for m_h in range(kernel_h):
                h = h0 + m_h
                if 0 <= d < depth and 0 <= h < height and w_lo < w_hi:
                    target = (((b * depth + d) * height + h) * width + w0) * channels
                    cells = dx_flat[target + w_lo * channels:target + w_hi * channels]
                    part = row[i + w_lo * channels:i + w_hi * channels]
                    for j in range(cells.size):
                        cells[j] += part[j]
                i += run
        b, od, oh, ow = next_position(b, od, oh, ow, out_d, out_h, out_w)


@njit(parallel=True, cache=True)
def im2col_batch(parts, x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, cols):
    """Write ``cols (B, OD, OH, OW, K·C + 1)``: every output position's window, as rows, the
    batch cut into ``parts`` ranges of samples copied in parallel (`engine.threads`)."""
    batch, out_d, out_h, out_w, row_size = cols.shape
    positions = out_d * out_h * out_w
    rows = cols.reshape((batch * positions, row_size))
    for part in prange(parts):
        first, last = batch * part // parts * positions, batch * (part + 1) // parts * positions
        im2col_rows(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                    out_d, out_h, out_w, first, rows[first:last])


@njit(parallel=True, cache=True)
def col2im_batch(parts, dcols, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx):
    """Write ``dx (B, D, H, W, C)``: the sum of what every row of ``dcols (B, OD, OH, OW, K·C)``
    sends back, in ``parts`` ranges of samples (a range's rows reach only its own samples)."""
    batch, out_d, out_h, out_w, row_size = dcols.shape
    positions = out_d * out_h * out_w
    rows = dcols.reshape((batch * positions, row_size))
    for part in prange(parts):
        start, stop = batch * part // parts, batch * (part + 1) // parts
        dx[start:stop] = 0.0
        col2im_rows(rows[start * positions:stop * positions], kernel_d, kernel_h, kernel_w, stride_d, stride_h,
                    stride_w, pad_d, pad_h, pad_w, out_d, out_h, out_w, start * positions, dx)


def im2col(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, cols):
    """`im2col_batch` on one thread."""
    im2col_batch(1, x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, cols)


def col2im(dcols, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx):
    """`col2im_batch` on one thread."""
    col2im_batch(1, dcols, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w, dx)
