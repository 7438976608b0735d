"""LayerNorm's float64 row sums, written so that they are not one long chain of dependent instructions.

A scalar sum over a row is a chain: each step waits for the previous one (4 cycles), which cost
more than the rest of a LayerNorm. These are compiled with ``jit.ROW_REDUCTION`` and vectorized by
LLVM: they differ from a sequential sum by float64 round-off at most, in an order fixed by the
compiled code, the same for every batch and thread count.
"""

import numpy as np

from .jit import kernel


@kernel(row_reduction=True)
def row_sum_f64(s):
    """sum(s) in float64."""
    total = 0.0
    for j in range(s.shape[0]):
        total += np.float64(s[j])
    return total


@kernel(row_reduction=True)
def row_sum_sq_dev_f64(s, mean):
    """sum((s - mean)^2) in float64."""
    total = 0.0
    for j in range(s.shape[0]):
        d = np.float64(s[j]) - mean
        total += d * d
    return total
