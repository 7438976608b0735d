"""Mean pooling over each sequence's tokens, then L2 normalization (the E5 model card's ``average_pool``).

sentence-transformers ``Pooling(mean)``:  sum(h * mask) / max(sum(mask), 1e-9)   ([CLS], [SEP] included)
``Normalize`` (torch ``F.normalize``):      v / max(||v||_2, 1e-12)
Sums are float64. A sequence with no tokens pools to the zero vector, as the reference does.
"""

import math

import numpy as np
from numba import prange

from .jit import kernel


@kernel(parallel=True)
def mean_pool_(out, x, seq_starts, normalize):
    """out[s] = mean of x over sequence s's rows, L2-normalized when ``normalize``."""
    hidden = x.shape[1]
    for s in prange(seq_starts.shape[0] - 1):
        start, stop = seq_starts[s], seq_starts[s + 1]
        acc = np.zeros(hidden, np.float64)
        for t in range(start, stop):
            for c in range(hidden):
                acc[c] += x[t, c]
        acc /= max(stop - start, 1)
        if normalize:
            norm = math.sqrt(np.sum(acc * acc))
            acc /= max(norm, 1e-12)
        for c in range(hidden):
            out[s, c] = np.float32(acc[c])
