"""Fused bias + exact GELU, applied in place to the FFN's first projection.

HF ``hidden_act="gelu"`` is torch's erf GELU (not the tanh approximation):
  gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
evaluated here in float64 and rounded once to float32.
"""

import math

import numpy as np
from numba import prange

from .jit import kernel

INV_SQRT2 = 1.0 / math.sqrt(2.0)


@kernel(parallel=True)
def bias_gelu_(y, bias):
    """y[t] = gelu(y[t] + bias) for every row t (the add rounds to float32 first, as HF's Linear does)."""
    for t in prange(y.shape[0]):
        row = y[t]
        for c in range(row.shape[0]):
            v = np.float64(np.float32(row[c] + bias[c]))
            row[c] = np.float32(0.5 * v * (1.0 + math.erf(v * INV_SQRT2)))


@kernel(parallel=True)
def add_bias_(y, bias):
    """y[t] += bias for every row t (a Linear's bias, for projections without a fused epilogue)."""
    for t in prange(y.shape[0]):
        row = y[t]
        for c in range(row.shape[0]):
            row[c] += bias[c]
