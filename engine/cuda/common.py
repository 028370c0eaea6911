"""What every CUDA kernel module shares: launch sizes, device arrays, and the small
generic kernels (fill, copy, products, sums, random numbers).

Launch shape.  Element-wise kernels use grid-stride loops

    for i in range(cuda.grid(1), n, cuda.gridsize(1)):  …

so any number of threads computes the right result; `grid(n)` picks one thread
per element on a GPU, and only a few threads under the simulator (each simulated
thread is a Python thread: launching thousands of them would take seconds).
"""
from __future__ import annotations

import math

import numpy as np
from numba import config, cuda, float32, float64

SIMULATED = bool(config.ENABLE_CUDASIM)
THREADS = 8 if SIMULATED else 256  # threads per block (a power of 2: `block_sum` halves it)
MAX_BLOCKS = 1 if SIMULATED else 4096


@cuda.jit(device=True)
def volume_cell(i, depth, height, width, channels):
    """The flat index ``i`` of a ``(B, D, H, W, C)`` array as ``(b, d, h, w, c)``."""
    c = i % channels
    w = (i // channels) % width
    h = (i // (channels * width)) % height
    d = (i // (channels * width * height)) % depth
    b = i // (channels * width * height * depth)
    return b, d, h, w, c


def grid(count: int) -> tuple[int, int]:
    """(blocks, threads) for a grid-stride kernel over ``count`` items."""
    return max(1, min(MAX_BLOCKS, math.ceil(count / THREADS))), THREADS


# ------------------------------------------------------------------ device arrays


def to_device(x: np.ndarray):
    return cuda.to_device(np.ascontiguousarray(x))


def to_host(a) -> np.ndarray:
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def empty(shape, dtype=np.float32):
    return cuda.device_array(tuple(shape), dtype=dtype)


def zeros(shape, dtype=np.float32):
    a = empty(shape, dtype)
    fill(a, 0)
    return a


def last(a) -> int:
    """The size of an array's last axis (the simulator's shapes refuse ``shape[-1]``, as kernels' do)."""
    return a.shape[a.ndim - 1]


def flat(a):
    """A contiguous device array as 1-D (a view)."""
    return a.reshape(a.size)


def fill(a, value) -> None:
    f = flat(a)
    fill_kernel[grid(f.size)](f, value)


def copy(source, target) -> None:
    """target[...] = source, both 2-D or both 3-D of the same shape (either may be a strided view)."""
    if source.ndim == 2:
        copy2_kernel[grid(source.size)](source, target)
    else:
        copy3_kernel[grid(source.size)](source, target)


# ------------------------------------------------------------------------ kernels


@cuda.jit
def fill_kernel(a, value):  # a flat (N,) = value
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


@cuda.jit
def copy2_kernel(source, target):  # (R, C) → (R, C)
    columns = source.shape[1]
    for i in range(cuda.grid(1), source.size, cuda.gridsize(1)):
        target[i // columns, i % columns] = source[i // columns, i % columns]


@cuda.jit
def copy3_kernel(source, target):  # (A, B, C) → (A, B, C)
    rows, columns = source.shape[1], source.shape[2]
    for i in range(cuda.grid(1), source.size, cuda.gridsize(1)):
        a, rest = i // (rows * columns), i % (rows * columns)
        target[a, rest // columns, rest % columns] = source[a, rest // columns, rest % columns]


@cuda.jit
def multiply_kernel(a, b, out):  # out = a ⊙ b, all flat (N,)
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = a[i] * b[i]


@cuda.jit
def add_penalty_grad_kernel(kernel, l1, l2, dkernel):  # dkernel += λ1·sign(W) + 2·λ2·W, flat
    for i in range(cuda.grid(1), kernel.size, cuda.gridsize(1)):
        w = kernel[i]
        sign = float32(1.0) if w > 0 else (float32(-1.0) if w < 0 else float32(0.0))
        dkernel[i] += float32(l1) * sign + float32(2.0 * l2) * w


@cuda.jit
def dropconnect_mask_kernel(uniform, rate, mask):  # mask = [u ≥ P] / (1 − P), flat
    scale = float32(1.0 / (1.0 - rate))
    for i in range(cuda.grid(1), uniform.size, cuda.gridsize(1)):
        mask[i] = scale if uniform[i] >= rate else float32(0.0)


@cuda.jit(device=True)
def block_sum(buffer, value):
    """Σ of ``value`` over the threads of the block (every thread gets it), by halving in shared memory."""
    tid = cuda.threadIdx.x
    buffer[tid] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if tid < stride:
            buffer[tid] += buffer[tid + stride]
        cuda.syncthreads()
        stride //= 2
    total = buffer[0]
    cuda.syncthreads()  # everyone has read buffer[0] before it is reused
    return total


VALUE, ABSOLUTE, SQUARE = 0, 1, 2


@cuda.jit
def sum_kernel(a, mode, out):  # out[0] = Σ a, Σ|a| or Σa² over a flat (N,); one block, float64 partials
    buffer = cuda.shared.array(THREADS, float64)
    partial = 0.0
    for i in range(cuda.threadIdx.x, a.size, cuda.blockDim.x):
        v = float64(a[i])
        partial += v if mode == VALUE else (abs(v) if mode == ABSOLUTE else v * v)
    total = block_sum(buffer, partial)
    if cuda.threadIdx.x == 0:
        out[0] = total


def total(a, mode: int = VALUE, out=None):
    """A 1-element device array holding Σ a (or Σ|a|, Σa²) over the contiguous array ``a``."""
    out = empty((1,), np.float64) if out is None else out
    sum_kernel[1, THREADS](flat(a), mode, out)
    return out


@cuda.jit
def column_sums_kernel(a, b, use_b, out):  # out[c] = Σ_i a[i, c] (· b[i, c] when use_b); a block per column
    buffer = cuda.shared.array(THREADS, float64)
    rows, columns = a.shape
    for c in range(cuda.blockIdx.x, columns, cuda.gridDim.x):
        partial = 0.0
        for i in range(cuda.threadIdx.x, rows, cuda.blockDim.x):
            partial += a[i, c] * b[i, c] if use_b else a[i, c]
        s = block_sum(buffer, partial)
        if cuda.threadIdx.x == 0:
            out[c] = s


def column_sums(a, out, times=None) -> None:
    """out (C,) = Σ over the rows of ``a`` (R, C) [⊙ ``times`` (R, C)]: bias gradients, batch-norm sums."""
    blocks = min(a.shape[1], MAX_BLOCKS * 16)
    column_sums_kernel[blocks, THREADS](a, a if times is None else times, times is not None, out)


# ------------------------------------------------------------------ random numbers
# A counter-based generator: u = hash(seed, draw, i), the same numbers on a GPU and in
# the simulator, no state arrays.  The hash is 32-bit, every product kept below 2⁶³.

MASK32 = 0xFFFFFFFF


@cuda.jit(device=True)
def hash32(x):
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x5BD1E995) & MASK32
    x ^= x >> 16
    return x


@cuda.jit
def uniform_kernel(seed, draw, out):  # out flat (N,) ~ U[0, 1), float32
    key = hash32(hash32(seed) ^ hash32(draw + 0x632BE5AB))
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        h = hash32(hash32(key ^ (i & MASK32)) ^ (i >> 32))
        out[i] = float32(h >> 8) * float32(1.0 / 16777216.0)


class Uniform:
    """Fresh U[0, 1) numbers on the device for dropout and DropConnect.

    The seed is drawn from the layer's generator at the first use (not in the
    constructor, so initialisation consumes the generator exactly as on the CPU).
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.seed, self.draws = rng, None, 0

    def fill(self, out) -> None:
        if self.seed is None:
            self.seed = int(self.rng.integers(0, 2**31))
        self.draws += 1
        f = flat(out)
        uniform_kernel[grid(f.size)](self.seed, self.draws, f)
