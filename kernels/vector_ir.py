"""Helpers for kernels written as explicit 16-lane float32 LLVM IR (``gelu_f32.py``, ``softmax.py``).

Numba's loop vectorizer stops at 8 lanes on this host (LLVM's prefer-256-bit tuning); code built
here from <16 x float> values runs on full zmm registers. The exp is the one both the softmax and
the GELU use: e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln2 / 2 (Cody-Waite), e^r by a degree-7
Taylor polynomial: within 1.2 ulp of exp for x >= -87.
"""

import math

from llvmlite import ir
from numba.core import cgutils

LANES = 16
EXP_TAYLOR = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040)  # enough for |r| <= ln2 / 2
LN2_HI, LN2_LO = 0.693359375, -2.12194440e-4  # ln 2 in two parts: n * LN2_HI is exact for |n| < 2^12
LOWEST = -87.0  # e^-87 ~ 1.6e-38: below it 2^n leaves float32's normal range


class Vec16:
    """Builds <16 x float> arithmetic at ``builder``'s position."""

    def __init__(self, builder):
        self.b = builder
        self.f32, self.i32 = ir.FloatType(), ir.IntType(32)
        self.type, self.int_type = ir.VectorType(self.f32, LANES), ir.VectorType(self.i32, LANES)

    def splat(self, value, kind=None):
        return ir.Constant(kind or self.type, [value] * LANES)

    def call(self, name, *args, kind=None):
        """llvm.<name>.v16f32 (or another vector type's) applied to args of that type."""
        kind = kind or self.type
        suffix = f"v{kind.count}f{64 if kind.element == ir.DoubleType() else 32}"
        fn = cgutils.get_or_insert_function(self.b.module, ir.FunctionType(kind, [kind] * len(args)), f"llvm.{name}.{suffix}")
        return self.b.call(fn, args)

    def fma(self, a, b, c):
        return self.call("fma", a, b, c)

    def horner(self, t, coefficients):
        """c0 + t (c1 + t (c2 + ...)), one FMA a step."""
        value = self.splat(coefficients[-1])
        for c in reversed(coefficients[:-1]):
            value = self.fma(value, t, self.splat(c))
        return value

    def exp_parts(self, x):
        """(e^r, 2^n) with e^x = e^r * 2^n, x clamped below at LOWEST."""
        b = self.b
        x = self.call("maxnum", x, self.splat(LOWEST))
        n = self.call("floor", self.fma(x, self.splat(1 / math.log(2)), self.splat(0.5)))
        r = self.fma(b.fneg(n), self.splat(LN2_LO), self.fma(b.fneg(n), self.splat(LN2_HI), x))
        bits = b.shl(b.add(b.fptosi(n, self.int_type), self.splat(127, self.int_type)), self.splat(23, self.int_type))
        return self.horner(r, EXP_TAYLOR), b.bitcast(bits, self.type)

    def pointer(self, address):
        return self.b.inttoptr(address, self.type.as_pointer())

    def round_to_bf16(self, x):
        """<16 x i16> bf16 bits of x, nearest, ties to even: ``bf16.bf16_bits`` on every lane."""
        b, bits = self.b, self.b.bitcast(x, self.int_type)
        lowest_kept = b.and_(b.lshr(bits, self.splat(16, self.int_type)), self.splat(1, self.int_type))
        rounded = b.add(b.add(bits, self.splat(0x7FFF, self.int_type)), lowest_kept)
        return b.trunc(b.lshr(rounded, self.splat(16, self.int_type)), ir.VectorType(ir.IntType(16), LANES))

    def lanes_below(self, count):
        """A <16 x i1> mask: lane i is on when i < count (an i64 count)."""
        lane = ir.Constant(ir.VectorType(ir.IntType(64), LANES), list(range(LANES)))
        return self.b.icmp_signed("<", lane, self.splat_value(count, lane.type))

    def splat_value(self, value, kind=None):
        """A runtime scalar in every lane."""
        kind = kind or self.type
        lanes = self.b.insert_element(ir.Constant(kind, ir.Undefined), value, ir.Constant(self.i32, 0))
        return self.b.shuffle_vector(lanes, ir.Constant(kind, ir.Undefined), ir.Constant(self.int_type, [0] * LANES))

    def tree(self, v, combine):
        """Combine a vector's lanes pairwise (i with i + width/2, halving) down to one scalar."""
        width = v.type.count
        while width > 1:
            width //= 2
            v = combine(*(self.b.shuffle_vector(v, v, ir.Constant(ir.VectorType(self.i32, width), list(range(lo, lo + width))))
                          for lo in (0, width)))
        return self.b.extract_element(v, ir.Constant(self.i32, 0))

    def over_chunks(self, count, carried, body):
        """Emit a loop over j = 0, 16, 32, ... < count (an i64 >= 1): ``body(j, on, values)`` gets
        the lane mask ``on`` (lanes j + i < count) and the carried values, returns their next values.
        Returns the carried values after the last chunk."""
        b, i64 = self.b, ir.IntType(64)
        entry = b.basic_block
        loop, done = b.append_basic_block("chunks"), b.append_basic_block("chunks_done")
        b.branch(loop)
        b.position_at_end(loop)
        j = b.phi(i64)
        phis = [b.phi(value.type) for value in carried]
        updated = body(j, self.lanes_below(b.sub(count, j)), phis)
        j_next = b.add(j, ir.Constant(i64, LANES))
        latch = b.basic_block
        b.cbranch(b.icmp_signed("<", j_next, count), loop, done)
        for phi, first, last in zip([j] + phis, [ir.Constant(i64, 0)] + list(carried), [j_next] + list(updated)):
            phi.add_incoming(first, entry)
            phi.add_incoming(last, latch)
        b.position_at_end(done)
        return updated
