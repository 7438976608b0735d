"""Fused bias + exact GELU, applied in place to the FFN's first projection.

HF ``hidden_act="gelu"`` is torch's erf GELU (not the tanh approximation):
  gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2))) = 0.5 * x * erfc(-x / sqrt(2))
The erfc form has no cancellation for negative x. erfc is Numerical Recipes' ``erfcc``
(Chebyshev fit, relative error below 1.2e-7 everywhere), evaluated in float64 with an exp written
as plain arithmetic (2^n * e^r, Cody-Waite reduction, degree-9 Taylor) so that LLVM vectorizes
every loop; libm's scalar erf cost about 8 ns per element here.
"""

import math

import numpy as np
from numba import prange

from .jit import kernel

INV_SQRT2 = 1.0 / math.sqrt(2.0)
LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125          # ln 2 split in two so that n * LN2_HI is exact
LN2_LO = 1.4286068203094173e-06
LOWEST = -708.0                     # e^-708 ~ 3e-308: below it 2^n leaves float64's normal range


@kernel
def erfc_(out, z, powers):
    """out[c] = erfc(z[c]) (float64 rows; ``powers``: int64 scratch as long as z)."""
    n_items = z.shape[0]
    for c in range(n_items):
        a = abs(z[c])
        t = 1.0 / (1.0 + 0.5 * a)
        y = max(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
            -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
                -0.82215223 + t * 0.17087277)))))))), LOWEST)
        n = np.floor(y * LOG2E + 0.5)
        r = (y - n * LN2_HI) - n * LN2_LO
        e = 1.0 + r * (1.0 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
            1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880)))))))))
        powers[c] = (np.int64(n) + 1023) << 52  # the float64 bits of 2^n
        out[c] = t * e
    two_to_n = powers[:n_items].view(np.float64)
    for c in range(n_items):
        tail = out[c] * two_to_n[c]  # erfc(|z|)
        out[c] = tail if z[c] >= 0.0 else 2.0 - tail


@kernel(parallel=True)
def bias_gelu_(y, bias):
    """y[t] = gelu(y[t] + bias) for every row t (the add rounds to float32 first, as HF's Linear does)."""
    width = y.shape[1]
    for t in prange(y.shape[0]):
        row = y[t]
        x = np.empty(width, np.float64)
        z = np.empty(width, np.float64)
        erfc_z = np.empty(width, np.float64)
        powers = np.empty(width, np.int64)
        for c in range(width):
            x[c] = np.float32(row[c] + bias[c])
            z[c] = -x[c] * INV_SQRT2
        erfc_(erfc_z, z, powers)
        for c in range(width):
            row[c] = np.float32(0.5 * x[c] * erfc_z[c])


@kernel(parallel=True)
def add_bias_(y, bias):
    """y[t] += bias for every row t (a Linear's bias, for projections without a fused epilogue)."""
    for t in prange(y.shape[0]):
        row = y[t]
        for c in range(row.shape[0]):
            row[c] += bias[c]


# The bf16 path's GELU, in float32 arithmetic: its result is rounded to bf16 (8 significant bits)
# next, so the float32 evaluation (relative error about 1e-6, tested) moves a value by at most one
# bf16 step, and only when it lies within that error of a rounding tie. Half the work of float64.
ERFCC_F32 = np.array([-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
                      -1.13520398, 1.48851587, -0.82215223, 0.17087277], np.float32)  # erfc_'s fit
EXP_TAYLOR_F32 = np.array([1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040], np.float32)  # |r| <= ln2 / 2
INV_SQRT2_F32, LOG2E_F32 = np.float32(INV_SQRT2), np.float32(LOG2E)
LN2_HI_F32, LN2_LO_F32 = np.float32(0.693359375), np.float32(-2.12194440e-4)  # n * LN2_HI_F32 exact
LOWEST_F32 = np.float32(-87.0)  # e^-87 ~ 1.6e-38: below it 2^n leaves float32's normal range
HALF, ONE, TWO = np.float32(0.5), np.float32(1.0), np.float32(2.0)


@kernel
def bias_gelu_f32_(y, bias, scaled, powers):
    """y[r, c] = gelu(y[r, c] + bias[c]) in place, float32 throughout. y, scaled (float32 scratch) and
    powers (int32 scratch) are C-contiguous and of one shape. The same erfc fit and exp as ``erfc_``;
    polynomials written out, so the loop over c is the innermost loop and vectorizes."""
    rows, width = y.shape
    e, p = EXP_TAYLOR_F32, ERFCC_F32
    for r in range(rows):
        for c in range(width):
            x = y[r, c] + bias[c]
            y[r, c] = x
            a = abs(x) * INV_SQRT2_F32  # |z|, z = -x / sqrt(2)
            t = ONE / (ONE + HALF * a)
            fit = p[0] + t * (p[1] + t * (p[2] + t * (p[3] + t * (p[4] + t * (p[5] + t * (
                p[6] + t * (p[7] + t * (p[8] + t * p[9]))))))))
            arg = max(fit - a * a, LOWEST_F32)
            n = np.floor(arg * LOG2E_F32 + HALF)
            f = (arg - n * LN2_HI_F32) - n * LN2_LO_F32
            scaled[r, c] = t * (e[0] + f * (e[1] + f * (e[2] + f * (e[3] + f * (e[4] + f * (
                e[5] + f * (e[6] + f * e[7])))))))
            powers[r, c] = (np.int32(n) + 127) << 23  # the float32 bits of 2^n
    two_to_n = powers.view(np.float32)
    for r in range(rows):
        for c in range(width):
            x = y[r, c]
            tail = scaled[r, c] * two_to_n[r, c]  # erfc(|z|)
            y[r, c] = HALF * x * (tail if x <= 0 else TWO - tail)
