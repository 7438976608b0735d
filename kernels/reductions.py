"""LayerNorm's float64 row sums: not one long chain of dependent adds, and in one order on every CPU.

A scalar sum over a row is a chain: each step waits for the previous one (4 cycles), which cost
more than the rest of a LayerNorm. Here the row is summed in 16 float64 lanes (two <8 x double>
accumulators, lane i taking elements i, i + 16, ...), then the lanes pairwise, then the tail of
fewer than 16 elements in order. The order is written in the IR, not left to the vectorizer (which
split the sum by the target's vector width, so AVX2 and AVX-512 builds differed in the last bit):
the same sum for every batch, thread count, vector width and architecture.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import kernel
from .vector_ir import LANES, Vec16


def _lane_sums(builder, address, chunks, term):
    """sum over c < chunks of term(<16 x double> x[16c .. 16c + 15]), lanes kept apart, then the
    16 lanes combined pairwise (lane i with i + 8, then i + 4, ...)."""
    v, i64 = Vec16(builder), ir.IntType(64)
    f64x8, f64x16 = ir.VectorType(ir.DoubleType(), 8), ir.VectorType(ir.DoubleType(), LANES)
    row = builder.inttoptr(address, v.f32.as_pointer())
    entry = builder.basic_block
    loop, done = builder.append_basic_block("chunks"), builder.append_basic_block("chunks_done")
    builder.branch(loop)
    builder.position_at_end(loop)
    c = builder.phi(i64)
    sums = [builder.phi(f64x8) for _ in range(2)]
    chunk = builder.bitcast(builder.gep(row, [builder.mul(c, ir.Constant(i64, LANES))]), v.type.as_pointer())
    wide = term(builder.fpext(builder.load(chunk, align=4), f64x16))
    halves = [builder.shuffle_vector(wide, wide, ir.Constant(ir.VectorType(v.i32, 8), list(range(lo, lo + 8))))
              for lo in (0, 8)]
    updated = [builder.fadd(total, half) for total, half in zip(sums, halves)]
    c_next = builder.add(c, ir.Constant(i64, 1))
    builder.cbranch(builder.icmp_signed("<", c_next, chunks), loop, done)
    c.add_incoming(ir.Constant(i64, 0), entry)
    c.add_incoming(c_next, loop)
    for phi, value in zip(sums, updated):
        phi.add_incoming(ir.Constant(f64x8, [0.0] * 8), entry)
        phi.add_incoming(value, loop)
    builder.position_at_end(done)
    return v.tree(builder.fadd(*updated), builder.fadd)


@intrinsic
def _chunk_sum(typingctx, address, chunks):
    def codegen(context, builder, signature, args):
        return _lane_sums(builder, args[0], args[1], lambda x: x)
    return types.float64(types.intp, types.intp), codegen


@intrinsic
def _chunk_sum_sq_dev(typingctx, address, chunks, mean):
    def codegen(context, builder, signature, args):
        v = Vec16(builder)
        mean16 = v.splat_value(args[2], ir.VectorType(ir.DoubleType(), LANES))

        def squared_deviation(x):
            d = builder.fsub(x, mean16)
            return builder.fmul(d, d)  # no fast-math flags: never fused into an FMA with the sum
        return _lane_sums(builder, args[0], args[1], squared_deviation)
    return types.float64(types.intp, types.intp, types.float64), codegen


@kernel
def row_sum_f64(s):
    """sum(s) in float64 (s: a contiguous float32 row)."""
    full = s.shape[0] // LANES
    total = _chunk_sum(s.ctypes.data, full) if full > 0 else 0.0
    for j in range(full * LANES, s.shape[0]):
        total += np.float64(s[j])
    return total


@kernel
def row_sum_sq_dev_f64(s, mean):
    """sum((s - mean)^2) in float64 (s: a contiguous float32 row)."""
    full = s.shape[0] // LANES
    total = _chunk_sum_sq_dev(s.ctypes.data, full, mean) if full > 0 else 0.0
    for j in range(full * LANES, s.shape[0]):
        d = np.float64(s[j]) - mean
        total += d * d
    return total
