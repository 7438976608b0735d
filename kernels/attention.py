"""Scaled dot-product self-attention over packed sequences (HF ``eager_attention_forward``).

For each sequence s and head h, with Q, K, V the head's slices of that sequence's tokens:
  ctx = softmax(Q K^T / sqrt(d)) V
HF adds a float32-min mask on padding keys, which makes their softmax weight exactly 0; here the
batch is packed (no padding at all), so each sequence attends over its own tokens only: the same
numbers with no wasted work.

Both products run on the GEMM's register tile (``gemm_tile.py``), 8 queries at a time: K and V
are laid out once per (sequence, head) as 32-column panels (zero-padded), the 8 score rows are
replaced by their softmax exponentials E (``softmax.py``), multiplied by V, and each output row is
multiplied by the float64 reciprocal of its sum of E: d products per query instead of one per
key, and one float32 rounding fewer than rounding the probabilities first. Every dot product is
one FMA chain in index order.
"""

import math

import numba
import numpy as np
from numba import prange

from .gemm_tile import MR, NR, fma_tile_
from .jit import kernel
from .jobs import job_counter, next_job
from .prefetch import LINE, prefetch_
from .rows_or_tiles import store_scaled_row_, zero_padding_
from .softmax import exp_scores_
from .vector_ir import LANES

ROWS_AHEAD = 8


@kernel
def _head_panels(qkv, start, n, k0, v0, d):
    """The head's K as panels [keys/32, d, 32] (columns of K^T) and V as panels [d/32, keys, 32],
    zero-padded. Loops ordered so that V's copy runs along contiguous rows and K's transpose
    reads each key's row once, prefetching the K and V slices 8 rows ahead (measured 1.5x faster)."""
    keys = np.empty((-(-n // NR), d, NR), np.float32)
    values = np.empty((-(-d // NR), n, NR), np.float32)
    keys[-1, :, n - (keys.shape[0] - 1) * NR:] = 0.0
    values[-1, :, d - (values.shape[0] - 1) * NR:] = 0.0
    for j in range(n):
        if j + ROWS_AHEAD < n:
            row = qkv[start + j + ROWS_AHEAD].ctypes.data
            for line in range(0, 4 * d, LINE):
                prefetch_(row + 4 * k0 + line)
                prefetch_(row + 4 * v0 + line)
        panel, column = keys[j // NR], j % NR
        for c in range(d):
            panel[c, column] = qkv[start + j, k0 + c]
    for p in range(values.shape[0]):
        width = min(NR, d - p * NR)
        for j in range(n):
            for c in range(width):
                values[p, j, c] = qkv[start + j, v0 + p * NR + c]
    return keys, values


def attention_(ctx, qkv, seq_starts, num_heads):
    """ctx[t, head h] = softmax(q_t . K_s^T / sqrt(d)) V_s for every token t of every sequence s.

    qkv: [tokens, 3*hidden], the fused Q|K|V projection; seq_starts: [n_seq + 1] token offsets.
    ctx: float32 rows [tokens, hidden], or the output projection's bf16 input tiles
    (``rows_or_tiles.py``), written straight from the float32 result: no rounding pass after.
    One (sequence, head) pair per parallel job, numbered head-major so that the heads of one long
    sequence are spread over the threads; each worker thread takes the next job when it is free
    (``jobs.py``). Within a job every sum runs in a fixed order.
    """
    _attention(ctx, qkv, seq_starts, num_heads, numba.get_num_threads())


@kernel(parallel=True)
def _attention(ctx, qkv, seq_starts, num_heads, threads):  # threads as an argument: see gemm.py
    hidden = qkv.shape[1] // 3
    d = hidden // num_heads
    scale = np.float32(1.0 / math.sqrt(d))
    n_seq = seq_starts.shape[0] - 1
    jobs, counter = n_seq * num_heads, job_counter()
    for _ in prange(threads):  # one worker per thread, taking the next job when free
        while True:
            job = next_job(counter)
            if job >= jobs:
                break
            _head_attention(ctx, qkv, seq_starts, job // n_seq, job % n_seq, d, scale)
    zero_padding_(ctx, seq_starts[n_seq], hidden)


@kernel
def _head_attention(ctx, qkv, seq_starts, h, s, d, scale):
    """Attention of head h for every token of sequence s (one job), written into ctx."""
    hidden = qkv.shape[1] // 3
    start, n = seq_starts[s], seq_starts[s + 1] - seq_starts[s]
    if n == 0:
        return
    keys, values = _head_panels(qkv, start, n, hidden + h * d, 2 * hidden + h * d, d)
    width = -(-keys.shape[0] * NR // LANES) * LANES  # whole 16-float chunks for exp_scores_ (NR may be 8)
    out_width = values.shape[0] * NR
    scores = np.empty((MR, width), np.float32)
    out = np.empty((MR, out_width), np.float32)
    last_queries = np.zeros((MR, d), np.float32)  # a final partial tile of queries, zero-padded
    inv_sums = np.empty(MR, np.float64)
    for i0 in range(0, n, MR):
        rows = min(MR, n - i0)
        if rows == MR:  # 8 query rows read in place
            q, q_stride = qkv[start + i0, h * d:].ctypes.data, qkv.shape[1]
        else:
            for r in range(rows):
                last_queries[r] = qkv[start + i0 + r, h * d:h * d + d]
            q, q_stride = last_queries.ctypes.data, d
        scores[:] = 0.0
        for p in range(keys.shape[0]):                      # scores = Q K^T
            fma_tile_(q, q_stride, keys[p].ctypes.data, d, scores[0, p * NR:].ctypes.data, width)
        for r in range(rows):                               # E = exp(scores * scale - max)
            inv_sums[r] = 1.0 / exp_scores_(scores[r], n, scale)
        out[:] = 0.0
        for p in range(values.shape[0]):                    # ctx = (E V) / sum(E)
            fma_tile_(scores.ctypes.data, width, values[p].ctypes.data, n, out[0, p * NR:].ctypes.data, out_width)
        for r in range(rows):
            store_scaled_row_(ctx, start + i0 + r, h * d, out[r, :d], inv_sums[r])
