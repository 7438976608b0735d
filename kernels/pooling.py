"""Pooling: each sequence's token vectors -> one vector, then optional L2 normalization.

The modes of sentence-transformers' ``Pooling`` (models/Pooling.py), on one sequence's rows h:
  MEAN           sum(h) / max(n, 1e-9)   the E5 model card's average_pool ([CLS], [SEP] included)
  CLS            h[0]                    bge
  MAX            max over tokens         (sentence-transformers sets padding to -1e9 first; packed rows have none)
  MEAN_SQRT_LEN  sum(h) / sqrt(n)
``Normalize`` (torch ``F.normalize``): v / max(||v||_2, 1e-12). Sums are float64.
A sequence with no tokens pools to the zero vector, as the reference's clamp makes it.
"""

import math

import numpy as np
from numba import prange

from .jit import kernel

MEAN, CLS, MAX, MEAN_SQRT_LEN = 0, 1, 2, 3
MODES = {"mean": MEAN, "cls": CLS, "max": MAX, "mean_sqrt_len_tokens": MEAN_SQRT_LEN}  # sentence-transformers' names


@kernel(parallel=True)
def pool_(out, x, seq_starts, mode, normalize):
    """out[s] = sequence s's rows of x pooled by ``mode``, L2-normalized when ``normalize``."""
    hidden = x.shape[1]
    for s in prange(seq_starts.shape[0] - 1):
        start, stop = seq_starts[s], seq_starts[s + 1]
        acc = np.zeros(hidden, np.float64)
        if mode == CLS:
            if stop > start:
                acc[:] = x[start]
        elif mode == MAX:
            if stop > start:
                acc[:] = x[start]
            for t in range(start + 1, stop):
                for c in range(hidden):
                    acc[c] = max(acc[c], x[t, c])
        else:
            for t in range(start, stop):
                for c in range(hidden):
                    acc[c] += x[t, c]
            acc /= max(stop - start, 1) if mode == MEAN else math.sqrt(max(stop - start, 1))
        if normalize:
            norm = math.sqrt(np.sum(acc * acc))
            acc /= max(norm, 1e-12)
        for c in range(hidden):
            out[s, c] = np.float32(acc[c])
