"""Scaled dot-product self-attention over packed sequences (HF ``eager_attention_forward``).

For each sequence s and head h, with Q, K, V the head's slices of that sequence's tokens:
  ctx = softmax(Q K^T / sqrt(d)) V
HF adds a float32-min mask on padding keys, which makes their softmax weight exactly 0; here the
batch is packed (no padding at all), so each sequence attends over its own tokens only: the same
numbers with no wasted work.
"""

import math

import numpy as np
from numba import prange

from .jit import kernel
from .softmax import softmax_


@kernel(parallel=True)
def attention_(ctx, qkv, seq_starts, num_heads):
    """ctx[t, head h] = softmax(q_t . K_s^T / sqrt(d)) V_s for every token t of every sequence s.

    qkv: [tokens, 3*hidden], the fused Q|K|V projection; seq_starts: [n_seq + 1] token offsets.
    One (sequence, head) pair per parallel job, numbered head-major so that the heads of one long
    sequence are spread over the threads. Within a job every sum runs in a fixed order.
    """
    hidden = ctx.shape[1]
    d = hidden // num_heads
    scale = np.float32(1.0 / math.sqrt(d))
    n_seq = seq_starts.shape[0] - 1
    for job in prange(n_seq * num_heads):
        h, s = job // n_seq, job % n_seq
        start, n = seq_starts[s], seq_starts[s + 1] - seq_starts[s]
        q0, k0, v0 = h * d, hidden + h * d, 2 * hidden + h * d
        keys_t = np.empty((d, n), np.float32)  # K^T: the score loop runs along contiguous keys
        values = np.empty((n, d), np.float32)  # V: the output loop runs along contiguous features
        for j in range(n):
            for c in range(d):
                keys_t[c, j] = qkv[start + j, k0 + c]
                values[j, c] = qkv[start + j, v0 + c]
        scores = np.empty(n, np.float32)
        powers = np.empty(n, np.int32)
        out = np.empty(d, np.float32)
        for i in range(n):
            scores[:] = 0.0
            for c in range(d):
                qc = qkv[start + i, q0 + c]
                for j in range(n):
                    scores[j] += qc * keys_t[c, j]
            for j in range(n):
                scores[j] *= scale
            softmax_(scores, powers)
            out[:] = 0.0
            for j in range(n):
                p = scores[j]
                for c in range(d):
                    out[c] += p * values[j, c]
            for c in range(d):
                ctx[start + i, q0 + c] = out[c]
