"""The bf16 path's GELU: float32 arithmetic on explicit 16-lane vectors, written in LLVM IR.

Its result is rounded to bf16 (8 significant bits) next, so float32 evaluation (relative error
below 2e-6 for x >= -5, tested against float64) moves a bf16 value by one step only when it lies
within that error of a rounding tie (3 of 491,520 values in a test). The math is ``gelu.py``'s:
gelu(x) = 0.5 x erfc(-x / sqrt(2)), erfc from Numerical Recipes' ``erfcc`` fit, e^y as 2^n e^r
(``vector_ir.py``). Written as <16 x float> IR because Numba's loop vectorizer stops at 8 lanes
on this host: full-width vectors measured 2x faster.
"""

import math

import numpy as np
from numba import types
from numba.extending import intrinsic

from .jit import kernel
from .vector_ir import LANES, Vec16

ERFCC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
         -1.13520398, 1.48851587, -0.82215223, 0.17087277)  # erfcc's fit, lowest power first


def gelu(v: Vec16, x):
    """gelu(x) of a <16 x float> value, built at ``v``'s position (the AMX epilogue uses it too)."""
    b = v.b
    a = b.fmul(v.call("fabs", x), v.splat(1 / math.sqrt(2)))                            # |z|, z = -x / sqrt(2)
    t = b.fdiv(v.splat(1.0), v.fma(v.splat(0.5), a, v.splat(1.0)))
    e_r, two_to_n = v.exp_parts(v.fma(b.fneg(a), a, v.horner(t, ERFCC)))
    tail = b.fmul(b.fmul(t, e_r), two_to_n)                                             # erfc(|z|)
    erfc = b.select(b.fcmp_ordered("<=", x, v.splat(0.0)), tail, b.fsub(v.splat(2.0), tail))
    return b.fmul(b.fmul(v.splat(0.5), x), erfc)


@intrinsic
def bias_gelu_16_(typingctx, y_addr, bias_addr):
    """y[0:16] = gelu(y[0:16] + bias[0:16]), float32, in place (byte addresses of 16 floats each)."""
    sig = types.void(types.intp, types.intp)

    def codegen(context, builder, signature, args):
        v = Vec16(builder)
        y_ptr, b_ptr = (v.pointer(a) for a in args)
        builder.store(gelu(v, builder.fadd(builder.load(y_ptr, align=4), builder.load(b_ptr, align=4))), y_ptr, align=4)
        return context.get_dummy_value()

    return sig, codegen


@kernel
def bias_gelu_f32_(y, bias):
    """y[r, c] = gelu(y[r, c] + bias[c]) in place, float32 (y C-contiguous [rows, width])."""
    rows, width = y.shape
    full = width - width % LANES
    y_addr, bias_addr = y.ctypes.data, bias.ctypes.data
    for r in range(rows):
        for c in range(0, full, LANES):
            bias_gelu_16_(y_addr + 4 * (r * width + c), bias_addr + 4 * c)
    if full < width:  # the last width % 16 columns, through a padded vector
        padded = np.zeros((2, LANES), np.float32)
        padded[1, :width - full] = bias[full:]
        for r in range(rows):
            padded[0, :width - full] = y[r, full:]
            bias_gelu_16_(padded[0].ctypes.data, padded[1].ctypes.data)
            y[r, full:] = padded[0, :width - full]
