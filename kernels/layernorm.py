"""LayerNorm rows, and the fused bias + residual + LayerNorm that closes each BERT sub-block.

HF ``BertSelfOutput`` / ``BertOutput``:  x = LayerNorm(dense(h) + x)   (post-LN, eps from config)
torch LayerNorm:  (x - mean) / sqrt(var + eps) * gamma + beta,  var biased (divide by n).
Statistics are accumulated in float64 (``reductions.py``), at least as exact as torch's fp32 ones.
"""

import math

import numpy as np
from numba import prange

from .bf16 import TILE_K, TILE_ROWS, bf16_bits
from .jit import kernel
from .reductions import row_sum_f64, row_sum_sq_dev_f64


@kernel
def layernorm_row_(row, gamma, beta, eps):
    """Normalize one float32 row in place."""
    n = row.shape[0]
    mean = row_sum_f64(row) / n
    rstd = 1.0 / math.sqrt(row_sum_sq_dev_f64(row, mean) / n + eps)
    for c in range(n):
        row[c] = np.float32((row[c] - mean) * rstd * gamma[c] + beta[c])


@kernel(parallel=True)
def bias_residual_layernorm_(x, y, bias, gamma, beta, eps):
    """x[t] = LayerNorm(y[t] + bias + x[t]) for every token row t; x is overwritten.

    The adds round to float32 in HF's order ((y + bias) + x) before the normalization.
    """
    for t in prange(x.shape[0]):
        row = x[t]
        for c in range(row.shape[0]):
            row[c] = (y[t, c] + bias[c]) + row[c]
        layernorm_row_(row, gamma, beta, eps)


@kernel(parallel=True)
def bias_residual_layernorm_bf16_(x, x16, y, bias, gamma, beta, eps):
    """``bias_residual_layernorm_``, and the result also rounded into x16, the next AMX GEMM's
    input tiles [M'/16, K'/32, 16, 32] (as ``bf16.round_to_bf16_tiles_`` lays them out, padding
    zero), 16 rows at a time: the rows are still in cache when they are rounded, and the tiles
    are written in order (row by row, a row's K/32 tiles lie 1 KiB apart: 1.2 to 1.5x slower, measured)."""
    m, k = x.shape
    bits = x.view(np.uint32)
    for tile in prange(x16.shape[0]):
        for r in range(TILE_ROWS):
            t = tile * TILE_ROWS + r
            if t < m:
                row = x[t]
                for c in range(k):
                    row[c] = (y[t, c] + bias[c]) + row[c]
                layernorm_row_(row, gamma, beta, eps)
        for s in range(x16.shape[1]):
            for r in range(TILE_ROWS):
                t = tile * TILE_ROWS + r
                for c in range(TILE_K):
                    j = s * TILE_K + c
                    x16[tile, s, r, c] = bf16_bits(bits[t, j]) if t < m and j < k else 0
