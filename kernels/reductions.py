"""Reductions over one row, written so that they are not one long chain of dependent instructions.

A scalar max or sum over a row is a chain: each step waits for the previous one (4 cycles), which
cost more than the exps of a softmax row or the rest of a LayerNorm. LLVM does not vectorize a max
reduction, so the max runs as 8 independent chains (a max is exact in any order). The float64
sums are compiled with ``jit.ROW_REDUCTION`` and vectorized by LLVM: they differ from a sequential
sum by float64 round-off at most, in an order fixed by the compiled code, the same for every batch
and thread count.
"""

import numpy as np

from .jit import kernel


@kernel
def row_max(s):
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = s[0]
    full = s.shape[0] - s.shape[0] % 8
    for j in range(0, full, 8):
        a0, a1, a2, a3 = max(a0, s[j]), max(a1, s[j + 1]), max(a2, s[j + 2]), max(a3, s[j + 3])
        a4, a5, a6, a7 = max(a4, s[j + 4]), max(a5, s[j + 5]), max(a6, s[j + 6]), max(a7, s[j + 7])
    top = max(max(max(a0, a1), max(a2, a3)), max(max(a4, a5), max(a6, a7)))
    for j in range(full, s.shape[0]):
        top = max(top, s[j])
    return top


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
