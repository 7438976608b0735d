"""The GEMM of every Linear layer: out = x @ W^T, W stored [out_features, in_features] as in HF.

Two implementations behind one seam (``e5np.linear``):
- ``matmul_packed_``: e5np's own Numba GEMM. W is packed once at load into column panels
  [ceil(N/NR), K, NR]; a register tile of MR rows x NR columns is accumulated over K with one
  FMA per element per k, in chunks of KC, always in the same order. So every output element is the same
  float32 whatever the number of rows in the batch (the batch-invariance promise).
- ``matmul_blas``: NumPy's BLAS on the unpacked weight (``x @ W.T`` without a copy).
"""

import numpy as np
from numba import prange

from .jit import kernel

MR = 8   # rows of a register tile: each row's NR accumulators stay in two zmm registers
NR = 32  # columns of a packed weight panel
KC = 64  # k-steps summed in registers before joining the tile's running total: two-level
#          summation, so float32 round-off grows like sqrt(KC + K/KC) instead of sqrt(K)


def pack_weight(w):
    """[N, K] nn.Linear weight -> [ceil(N/NR), K, NR] float32 panels (last panel zero-padded)."""
    n, k = w.shape
    panels = np.zeros((-(-n // NR), k, NR), np.float32)
    for p in range(panels.shape[0]):
        cols = w[p * NR:(p + 1) * NR]  # [<=NR, K]
        panels[p, :, :cols.shape[0]] = cols.T
    return panels


def matmul_blas(out, x, w):
    """out = x @ w.T through NumPy's BLAS (w: [N, K], any memory-mapped float32 array)."""
    np.matmul(x, w.T, out=out)


@kernel
def _tile_full(out, x, panel, i0, j0):
    """out[i0:i0+MR, j0:j0+NR] = x[i0:i0+MR] @ panel; the MR rows unrolled so LLVM vectorizes along NR."""
    total = np.zeros((MR, NR), np.float32)
    acc = np.zeros((MR, NR), np.float32)
    for k in range(x.shape[1]):
        b = panel[k]
        a0, a1, a2, a3 = x[i0, k], x[i0 + 1, k], x[i0 + 2, k], x[i0 + 3, k]
        a4, a5, a6, a7 = x[i0 + 4, k], x[i0 + 5, k], x[i0 + 6, k], x[i0 + 7, k]
        for j in range(NR):
            bj = b[j]
            acc[0, j] += a0 * bj
            acc[1, j] += a1 * bj
            acc[2, j] += a2 * bj
            acc[3, j] += a3 * bj
            acc[4, j] += a4 * bj
            acc[5, j] += a5 * bj
            acc[6, j] += a6 * bj
            acc[7, j] += a7 * bj
        if (k + 1) % KC == 0 or k + 1 == x.shape[1]:
            _join_(total, acc)
    _store(out, total, i0, MR, j0)


@kernel
def _tile_rows(out, x, panel, i0, rows, j0):
    """The same tile for the last rows < MR: per element the same FMAs in the same order."""
    total = np.zeros((MR, NR), np.float32)
    acc = np.zeros((MR, NR), np.float32)
    for k in range(x.shape[1]):
        b = panel[k]
        for r in range(rows):
            a = x[i0 + r, k]
            for j in range(NR):
                acc[r, j] += a * b[j]
        if (k + 1) % KC == 0 or k + 1 == x.shape[1]:
            _join_(total, acc)
    _store(out, total, i0, rows, j0)


@kernel
def _join_(total, acc):
    """total += acc; acc = 0 (the end of one KC chunk)."""
    for r in range(MR):
        for j in range(NR):
            total[r, j] += acc[r, j]
            acc[r, j] = 0.0


@kernel
def _store(out, acc, i0, rows, j0):
    cols = min(NR, out.shape[1] - j0)
    for r in range(rows):
        for j in range(cols):
            out[i0 + r, j0 + j] = acc[r, j]


@kernel(parallel=True)
def matmul_packed_(out, x, panels):
    """out[M, N] = x[M, K] @ W^T with W given as ``pack_weight(W)``; one (row tile, panel) per job."""
    m = x.shape[0]
    n_panels = panels.shape[0]
    row_tiles = -(-m // MR)
    for job in prange(row_tiles * n_panels):
        rt, p = job // n_panels, job % n_panels
        i0 = rt * MR
        if i0 + MR <= m:
            _tile_full(out, x, panels[p], i0, p * NR)
        else:
            _tile_rows(out, x, panels[p], i0, m - i0, p * NR)
