"""The bf16 path's GELU: float32 arithmetic on explicit 16-lane vectors, written in LLVM IR.

Its result is rounded to bf16 (8 significant bits) next, so float32 evaluation (relative error
below 2e-6 for x >= -5, tested against float64) moves a bf16 value by one step only when it lies
within that error of a rounding tie (3 of 491,520 values in a test). The math is ``gelu.py``'s:
gelu(x) = 0.5 x erfc(-x / sqrt(2)), erfc from Numerical Recipes' ``erfcc`` fit, e^y as 2^n e^r.
Written as <16 x float> IR (like ``gemm_tile.py``) because Numba's loop vectorizer stops at 8
lanes on this host (LLVM's prefer-256-bit tuning): full-width vectors measured 2x faster.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import kernel

LANES = 16
ERFCC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
         -1.13520398, 1.48851587, -0.82215223, 0.17087277)  # erfcc's fit, lowest power first
EXP_TAYLOR = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040)  # enough for |r| <= ln2 / 2
LN2_HI, LN2_LO = 0.693359375, -2.12194440e-4  # ln 2 in two parts: n * LN2_HI is exact for |n| < 2^12
LOWEST = -87.0  # e^-87 ~ 1.6e-38: below it 2^n leaves float32's normal range


@intrinsic
def bias_gelu_16_(typingctx, y_addr, bias_addr):
    """y[0:16] = gelu(y[0:16] + bias[0:16]), float32, in place (byte addresses of 16 floats each)."""
    sig = types.void(types.intp, types.intp)

    def codegen(context, builder, signature, args):
        f32, i32 = ir.FloatType(), ir.IntType(32)
        v16, v16i = ir.VectorType(f32, LANES), ir.VectorType(i32, LANES)

        def splat(value, kind=v16):
            return ir.Constant(kind, [value] * LANES)

        def llvm(name, arity):
            return cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16] * arity), f"llvm.{name}.v16f32")

        fma, fabs, floor, maxnum = llvm("fma", 3), llvm("fabs", 1), llvm("floor", 1), llvm("maxnum", 2)

        def horner(t, coefficients):  # c0 + t (c1 + t (c2 + ...))
            value = splat(coefficients[-1])
            for c in reversed(coefficients[:-1]):
                value = builder.call(fma, [value, t, splat(c)])
            return value

        y_ptr, b_ptr = (builder.inttoptr(a, v16.as_pointer()) for a in args)
        x = builder.fadd(builder.load(y_ptr, align=4), builder.load(b_ptr, align=4))
        a = builder.fmul(builder.call(fabs, [x]), splat(1 / math.sqrt(2)))                  # |z|, z = -x / sqrt(2)
        t = builder.fdiv(splat(1.0), builder.call(fma, [splat(0.5), a, splat(1.0)]))
        arg = builder.call(maxnum, [builder.call(fma, [builder.fneg(a), a, horner(t, ERFCC)]), splat(LOWEST)])
        n = builder.call(floor, [builder.call(fma, [arg, splat(1 / math.log(2)), splat(0.5)])])   # e^arg = 2^n e^r
        r = builder.call(fma, [builder.fneg(n), splat(LN2_LO), builder.call(fma, [builder.fneg(n), splat(LN2_HI), arg])])
        two_to_n = builder.bitcast(builder.shl(builder.add(builder.fptosi(n, v16i), splat(127, v16i)), splat(23, v16i)), v16)
        tail = builder.fmul(builder.fmul(t, horner(r, EXP_TAYLOR)), two_to_n)                 # erfc(|z|)
        erfc = builder.select(builder.fcmp_ordered("<=", x, splat(0.0)), tail, builder.fsub(splat(2.0), tail))
        builder.store(builder.fmul(builder.fmul(splat(0.5), x), erfc), y_ptr, align=4)
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
