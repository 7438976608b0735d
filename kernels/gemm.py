"""The GEMM of every Linear layer: out = x @ W^T, W stored [out_features, in_features] as in HF.

Two implementations behind one seam (``e5np.engine.linear``):
- ``matmul_packed_``: e5np's own Numba GEMM. W is packed once at load into column panels
  [ceil(N/NR), K, NR] (MR x NR: the register tile of the compile target, ``target.py``). Work is
  split into (block of MB rows, panel) jobs, each taken by the next free worker thread
  (``jobs.py``); within a job, each KC-long chunk of the panel (8 KiB on AVX-512)
  stays in L1 while every MR-row tile of the block runs the register micro-kernel (``gemm_tile.py``)
  over it. Each output element is summed in KC chunks (two-level summation: float32 round-off
  grows like sqrt(KC + K/KC), not sqrt(K)) in a fixed order, so a row's result never depends on
  the other rows in the batch, nor on which thread computed it.
- ``matmul_blas``: NumPy's BLAS on the unpacked weight (``x @ W.T`` without a copy).
"""

import numba
import numpy as np
from numba import prange

from .gemm_tile import MR, NR, fma_tile_, fma_tile_packed_
from .jit import kernel
from .jobs import job_counter, next_job

KC = 64  # k-steps per register pass (and per summation chunk)
MB = MR * (64 // MR)  # rows per job (whole tiles: 64 or 60): the x block (MB x K) stays in L2 while the job walks K


def pack_weight(w):
    """[N, K] nn.Linear weight -> [ceil(N/NR), K, NR] float32 panels (last panel zero-padded);
    ``reference.pack_weight`` is the same copy in NumPy."""
    n, k = w.shape
    panels = np.zeros((-(-n // NR), k, NR), np.float32)
    _pack_panels_(panels, w)
    return panels


@kernel(parallel=True)
def _pack_panels_(panels, w):
    # a row of w is read once, front to back, into one column of its panel: the load of a
    # 1.3 GB model is a transposing copy, split over the threads by rows of w
    for r in prange(w.shape[0]):
        p, j = r // NR, r % NR
        for k in range(w.shape[1]):
            panels[p, k, j] = w[r, k]


def matmul_blas(out, x, w):
    """out = x @ w.T through NumPy's BLAS (w: [N, K], any memory-mapped float32 array)."""
    np.matmul(x, w.T, out=out)


@kernel
def _row_block(out, x, last_rows, panel, i0, rows, j0):
    """out[i0:i0+rows, j0:j0+NR] = x[i0:i0+rows] @ panel. ``last_rows`` is the final partial
    MR-row tile of x, zero-padded, so the micro-kernel never reads past x."""
    k_total, stride = x.shape[1], x.strides[0] // 4
    tiles = -(-rows // MR)
    total = np.zeros((tiles, MR, NR), np.float32)
    for k0 in range(0, k_total, KC):
        kc = min(KC, k_total - k0)
        b = panel[k0:].ctypes.data
        for t in range(tiles):
            r0 = i0 + t * MR
            if r0 + MR <= x.shape[0]:
                fma_tile_(x[r0, k0:].ctypes.data, stride, b, kc, total[t].ctypes.data, NR)
            else:
                fma_tile_(last_rows[0, k0:].ctypes.data, k_total, b, kc, total[t].ctypes.data, NR)
    cols = min(NR, out.shape[1] - j0)
    for r in range(rows):
        for j in range(cols):
            out[i0 + r, j0 + j] = total[r // MR, r % MR, j]


# Packing x into MR-row micro-panels first (BLIS's A packing) pays where the tile is narrow and
# the panels many: AVX2's 6 x 16 tile on e5-large's shapes ran 1.09x to 1.2x faster in same-process
# A/B (x86-64-v3 build on Zen 4), MiniLM's FFN-out (24 panels) 0.91x to 0.95x; on AVX-512's 8 x 32
# tile 0.89x to 1.04x. Either way every output element is the same FMA chain: the same bits.
PACK_X_MIN_PANELS = 48


def packs_x(n_panels: int) -> bool:
    return MR * NR < 256 and n_panels >= PACK_X_MIN_PANELS


def matmul_packed_(out, x, panels, x_panels=None, pack_x=None):
    """out[M, N] = x[M, K] @ W^T with W given as ``pack_weight(W)``; x rows contiguous.
    ``x_panels``: a float32 buffer of at least ``x_panel_size(M, K)`` to pack x into where that
    pays (``packs_x``; ``pack_x`` forces it either way); allocated when not given."""
    if pack_x is None:
        pack_x = packs_x(panels.shape[0])
    if pack_x:
        if x_panels is None:
            x_panels = np.empty(x_panel_size(*x.shape), np.float32)
        _matmul_packed_x(out, x, panels, x_panels, numba.get_num_threads())
    else:
        _matmul_packed(out, x, panels, numba.get_num_threads())


def x_panel_size(m: int, k: int) -> int:
    """Floats of the buffer ``matmul_packed_`` packs x into: ceil(M / MR) micro-panels [K, MR]."""
    return -(-m // MR) * k * MR


@kernel(parallel=True)
def _matmul_packed_x(out, x, panels, x_panels, threads):
    if x.shape[1] > 0 and x.strides[1] != 4:
        raise ValueError("matmul_packed_: the rows of x must be contiguous float32")
    if panels.strides[2] != 4 or panels.strides[1] != 4 * NR:
        raise ValueError("matmul_packed_: panels must be the C-contiguous output of pack_weight")
    m, k_total = x.shape
    n_panels = panels.shape[0]
    if k_total == 0:
        out[:] = 0.0
        return
    tiles = -(-m // MR)
    xp = x_panels[:tiles * k_total * MR].reshape((tiles, k_total, MR))  # x as MR-row micro-panels, zero past row m
    for t in prange(tiles):
        rows = min(MR, m - t * MR)
        for k in range(k_total):  # MR rows read side by side, the micro-panel written front to back
            for r in range(rows):
                xp[t, k, r] = x[t * MR + r, k]
            for r in range(rows, MR):
                xp[t, k, r] = 0.0
    jobs, counter = -(-m // MB) * n_panels, job_counter()
    for _ in prange(threads):
        while True:
            job = next_job(counter)
            if job >= jobs:
                break
            rb, p = job // n_panels, job % n_panels
            i0 = rb * MB
            _row_block_x(out, xp, panels[p], i0, min(MB, m - i0), p * NR)


@kernel
def _row_block_x(out, xp, panel, i0, rows, j0):
    k_total = xp.shape[1]
    tiles = -(-rows // MR)
    total = np.zeros((tiles, MR, NR), np.float32)
    for k0 in range(0, k_total, KC):
        kc = min(KC, k_total - k0)
        b = panel[k0:].ctypes.data
        for t in range(tiles):
            fma_tile_packed_(xp[i0 // MR + t, k0:].ctypes.data, 0, b, kc, total[t].ctypes.data, NR)
    cols = min(NR, out.shape[1] - j0)
    for r in range(rows):
        for j in range(cols):
            out[i0 + r, j0 + j] = total[r // MR, r % MR, j]


@kernel(parallel=True)
def _matmul_packed(out, x, panels, threads):  # threads as an argument: get_num_threads() inside a kernel stops caching
    # the micro-kernel reads raw addresses: a strided x or panel would give wrong numbers, not an error
    if x.shape[1] > 0 and x.strides[1] != 4:
        raise ValueError("matmul_packed_: the rows of x must be contiguous float32")
    if panels.strides[2] != 4 or panels.strides[1] != 4 * NR:
        raise ValueError("matmul_packed_: panels must be the C-contiguous output of pack_weight")
    m, k_total = x.shape
    n_panels = panels.shape[0]
    full = (m // MR) * MR
    last_rows = np.zeros((MR, max(k_total, 1)), np.float32)
    for r in range(full, m):
        last_rows[r - full, :k_total] = x[r]
    if k_total == 0:
        out[:] = 0.0
        return
    jobs, counter = -(-m // MB) * n_panels, job_counter()
    for _ in prange(threads):  # one worker per thread, taking the next job when free
        while True:
            job = next_job(counter)
            if job >= jobs:
                break
            rb, p = job // n_panels, job % n_panels
            i0 = rb * MB
            _row_block(out, x, last_rows, panels[p], i0, min(MB, m - i0), p * NR)
