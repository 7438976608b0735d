"""The exponentials of a softmax over one row of attention scores, in place, on 16-lane vectors.

  softmax(s * scale)_j = e_j / sum_k e_k,   e_j = exp(s_j * scale - m),  m = max_k s_k * scale

as HF computes it: the scores are scaled (rounded to float32) first, then torch.softmax. This
kernel leaves e_j in the row and returns sum_k e_k in float64; attention divides its 64 outputs
by the sum instead of dividing the n probabilities. ``math.exp`` is a scalar libm call (about 7 ns
here) and attention needs tokens^2 of them per head, so exp is ``vector_ir.py``'s 2^n e^r (within
1.2 ulp of exp over the range that matters). Written as LLVM IR on <16 x float> (Numba's vectorizer
stops at 8 lanes here and does not vectorize a max): one pass for the max, one for exp and sum.
Sums run in a fixed order (16 float64 lanes along the row, then pairwise): the same for every
batch and thread count. m uses max(s) * scale, equal to max(s * scale) as rounding is monotone.

A row is a buffer with room for ``n`` rounded up to 16 floats; lanes past ``n`` are neither used
nor changed.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import kernel
from .vector_ir import LANES, Vec16


@intrinsic
def _exp_scores(typingctx, addr, count, scale):
    sig = types.float64(types.intp, types.intp, types.float32)

    def codegen(context, builder, signature, args):
        v = Vec16(builder)
        row, n = v.pointer(args[0]), args[1]
        f64x8 = ir.VectorType(ir.DoubleType(), 8)

        def chunk(j):
            return builder.bitcast(builder.gep(builder.bitcast(row, v.f32.as_pointer()), [j]), v.type.as_pointer())

        def running_max(j, on, carried):
            scores = builder.select(on, builder.load(chunk(j), align=4), v.splat(float("-inf")))
            return [v.call("maxnum", carried[0], scores)]

        (top,) = v.over_chunks(n, [v.splat(float("-inf"))], running_max)
        top = builder.fmul(v.tree(top, lambda a, b: v.call("maxnum", a, b, kind=a.type)), args[2])
        scale16, top16 = v.splat_value(args[2]), v.splat_value(top)

        def exp_and_sum(j, on, sums):
            old = builder.load(chunk(j), align=4)
            scaled = v.call("arithmetic.fence", builder.fmul(old, scale16))  # rounded: no FMA with the subtraction
            e_r, two_to_n = v.exp_parts(builder.fsub(scaled, top16))
            e = builder.fmul(e_r, two_to_n)
            builder.store(builder.select(on, e, old), chunk(j), align=4)
            wide = builder.fpext(builder.select(on, e, v.splat(0.0)), ir.VectorType(ir.DoubleType(), LANES))
            halves = [builder.shuffle_vector(wide, wide, ir.Constant(ir.VectorType(v.i32, 8), list(range(lo, lo + 8))))
                      for lo in (0, 8)]
            return [builder.fadd(total, half) for total, half in zip(sums, halves)]

        sums = v.over_chunks(n, [ir.Constant(f64x8, [0.0] * 8)] * 2, exp_and_sum)
        return v.tree(builder.fadd(*sums), builder.fadd)

    return sig, codegen


@kernel
def exp_scores_(s, n, scale):
    """s[:n] = exp(s[:n] * scale - max(s[:n] * scale)) in place; returns sum(s[:n]) in float64.
    ``s``: contiguous float32 with room for n rounded up to 16."""
    if n < 1 or s.shape[0] < -(-n // LANES) * LANES or s.strides[0] != 4:
        raise ValueError("exp_scores_: need 1 <= n and a contiguous float32 row with room for n rounded up to 16")
    return _exp_scores(s.ctypes.data, n, scale)
