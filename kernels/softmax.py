"""Softmax of one row of attention scores, in place, with a vectorizable exp.

  softmax(s)_j = exp(s_j - max(s)) / sum_k exp(s_k - max(s))          (as torch.softmax)

``math.exp`` is a scalar libm call (about 7 ns here) and attention needs tokens^2 of them per
head, so exp is evaluated here as 2^n * e^r with n = round(x / ln 2) and |r| <= ln2 / 2: a
Cody-Waite reduction and a degree-7 Taylor polynomial, all plain float32 arithmetic that LLVM
vectorizes (about 1.2 ns), within 1.2 ulp of exp over the range that matters. The max and the
float64 sum are ``reductions.py``'s (not one chain of dependent instructions, which cost more
than the exps).
"""

import numpy as np

from .jit import kernel
from .reductions import row_max, row_sum_f64

LOG2E = np.float32(1.4426950408889634)
LN2_HI = np.float32(0.693359375)      # ln 2 split in two so that n * LN2_HI is exact
LN2_LO = np.float32(-2.12194440e-4)
LOWEST = np.float32(-87.0)            # e^-87 ~ 1.6e-38: below it 2^n leaves float32's normal range


@kernel
def exp_shifted_(s, top, powers):
    """s[j] = exp(s[j] - top) for s[j] <= top; ``powers``: int32 scratch at least as long as s."""
    n_items = s.shape[0]
    for j in range(n_items):
        x = max(s[j] - top, LOWEST)
        n = np.floor(x * LOG2E + np.float32(0.5))
        r = (x - n * LN2_HI) - n * LN2_LO
        p = np.float32(1.0 / 5040)
        p = p * r + np.float32(1.0 / 720)
        p = p * r + np.float32(1.0 / 120)
        p = p * r + np.float32(1.0 / 24)
        p = p * r + np.float32(1.0 / 6)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        p = p * r + np.float32(1.0)
        powers[j] = (np.int32(n) + np.int32(127)) << 23  # the float32 bits of 2^n
        s[j] = p
    two_to_n = powers[:n_items].view(np.float32)
    for j in range(n_items):
        s[j] *= two_to_n[j]


@kernel
def softmax_(s, powers):
    """s = softmax(s) in place (float32 row; ``powers``: int32 scratch at least as long as s)."""
    exp_shifted_(s, row_max(s), powers)
    inv = 1.0 / row_sum_f64(s)
    for j in range(s.shape[0]):
        s[j] = np.float32(s[j] * inv)
