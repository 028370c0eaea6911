"""The matrix product on the GPU, tiled in shared memory (no cuBLAS).

    C = op(A)·op(B) [+ bias] [+ C]          op(A) (M, K), op(B) (K, N), C (M, N), op = identity or ᵀ

A block of TILE×TILE threads computes one TILE×TILE tile of C.  Walking along K
a tile at a time, the block first copies a tile of op(A) and a tile of op(B)
into shared memory (each thread one element of each), waits for all threads,
then every thread adds its TILE products C[i, j] += Σ_k A[i, k]·B[k, j] from the
fast copies — each element of A and B is read from global memory M/TILE or
N/TILE times instead of N or M times.

Dense layers, convolutions (on the im2col matrix) and the recurrent layers'
input and weight-gradient products all go through `matmul`.  The transposes are
index swaps when a tile is loaded: no transposed copy is made.  Under the
simulator the tile is 4×4 (16 Python threads a block instead of 256); the code
is the same.
"""
from __future__ import annotations

import math

from numba import cuda, float32

from .common import SIMULATED, empty

TILE = 4 if SIMULATED else 16
# One block per tile of C, up to MAX_BLOCKS blocks; beyond that (and always under the
# simulator, where one block of 16 threads does the whole product) a block loops over tiles.
MAX_BLOCKS = 1 if SIMULATED else 2**20


@cuda.jit
def matmul_kernel(a, b, c, trans_a, trans_b, bias, has_bias, accumulate):
    tile_a = cuda.shared.array((TILE, TILE), float32)
    tile_b = cuda.shared.array((TILE, TILE), float32)
    ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
    rows, columns = c.shape
    inner = a.shape[0] if trans_a else a.shape[1]
    column_tiles = (columns + TILE - 1) // TILE
    for tile in range(cuda.blockIdx.x, ((rows + TILE - 1) // TILE) * column_tiles, cuda.gridDim.x):
        i = (tile // column_tiles) * TILE + ty  # row of C
        j = (tile % column_tiles) * TILE + tx  # column of C
        acc = float32(0.0)
        for start in range(0, inner, TILE):
            k = start + tx  # this thread loads op(A)[i, k] …
            if i < rows and k < inner:
                tile_a[ty, tx] = a[k, i] if trans_a else a[i, k]
            else:
                tile_a[ty, tx] = float32(0.0)
            k = start + ty  # … and op(B)[k, j]
            if k < inner and j < columns:
                tile_b[ty, tx] = b[j, k] if trans_b else b[k, j]
            else:
                tile_b[ty, tx] = float32(0.0)
            cuda.syncthreads()
            for kk in range(TILE):
                acc += tile_a[ty, kk] * tile_b[kk, tx]
            cuda.syncthreads()
        if i < rows and j < columns:
            if has_bias:
                acc += bias[j]
            if accumulate:
                acc += c[i, j]
            c[i, j] = acc


def matmul(a, b, out=None, *, trans_a: bool = False, trans_b: bool = False, bias=None, accumulate: bool = False):
    """``out`` (M, N) = op(a)·op(b) [+ bias (N,)] [+ out]; allocated when not given.  Returns ``out``."""
    rows = a.shape[1] if trans_a else a.shape[0]
    inner = a.shape[0] if trans_a else a.shape[1]
    columns = b.shape[0] if trans_b else b.shape[1]
    if (b.shape[1] if trans_b else b.shape[0]) != inner:
        raise ValueError(f"matmul: inner sizes differ, {a.shape}{'ᵀ' * trans_a} · {b.shape}{'ᵀ' * trans_b}")
    if out is None:
        out = empty((rows, columns))
    has_bias = bias is not None
    blocks = max(1, min(MAX_BLOCKS, math.ceil(rows / TILE) * math.ceil(columns / TILE)))
    matmul_kernel[blocks, (TILE, TILE)](a, b, out, trans_a, trans_b, bias if has_bias else out[0], has_bias, accumulate)
    return out
