"""The GEMM's register tile, written in LLVM IR: c[8, 32] += x[8, kc] @ b[kc, 32].

Numba's loop vectorizer keeps a tile of accumulators in memory (load, FMA, store per k: about
60 GFLOP/s here); written as 16 explicit <16 x float> values carried through the k loop, they
stay in zmm registers and each k costs 2 panel loads, 8 broadcasts and 16 FMAs (the classic
BLIS/Goto micro-kernel). Each output element is one FMA chain over k, from 0, in order.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

MR = 8   # rows of x per tile
NR = 32  # columns per tile: two 16-float vectors


@intrinsic
def fma_tile_8x32_(typingctx, x_addr, x_stride, b_addr, k_count, c_addr, c_stride):
    """c[8, 32] += x[8, k_count] @ b[k_count, 32]. Addresses are byte addresses of float32 data:
    x and c row-major with row strides ``x_stride`` and ``c_stride`` elements, b a packed panel
    (32 floats per k). ``k_count`` must be at least 1."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_i, x_stride, b_i, k_count, c_i, c_stride = args
        i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
        v16 = ir.VectorType(f32, 16)
        x, b, c = (builder.inttoptr(a, f32.as_pointer()) for a in (x_i, b_i, c_i))
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16, v16, v16]), "llvm.fma.v16f32")
        undef = ir.Constant(v16, ir.Undefined)
        broadcast_lane0 = ir.Constant(ir.VectorType(i32, 16), [0] * 16)

        def vector_at(base, offset):
            return builder.bitcast(builder.gep(base, [offset]), v16.as_pointer())

        entry = builder.basic_block
        loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        k = builder.phi(i64)
        acc = [builder.phi(v16) for _ in range(2 * MR)]  # row r: acc[2r] (cols 0-15), acc[2r+1] (16-31)
        bk = builder.mul(k, ir.Constant(i64, NR))
        b_lo = builder.load(vector_at(b, bk), align=4)
        b_hi = builder.load(vector_at(b, builder.add(bk, ir.Constant(i64, 16))), align=4)
        summed = []
        for r in range(MR):
            a = builder.load(builder.gep(x, [builder.add(builder.mul(ir.Constant(i64, r), x_stride), k)]))
            a16 = builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(i32, 0)), undef, broadcast_lane0)
            summed += [builder.call(fma, [a16, b_lo, acc[2 * r]]), builder.call(fma, [a16, b_hi, acc[2 * r + 1]])]
        k_next = builder.add(k, ir.Constant(i64, 1))
        builder.cbranch(builder.icmp_signed("<", k_next, k_count), loop, done)
        k.add_incoming(ir.Constant(i64, 0), entry)
        k.add_incoming(k_next, loop)
        for phi, value in zip(acc, summed):
            phi.add_incoming(ir.Constant(v16, [0.0] * 16), entry)
            phi.add_incoming(value, loop)

        builder.position_at_end(done)
        for r in range(MR):
            for half in range(2):
                ptr = vector_at(c, builder.add(builder.mul(ir.Constant(i64, r), c_stride), ir.Constant(i64, 16 * half)))
                builder.store(builder.fadd(builder.load(ptr, align=4), summed[2 * r + half]), ptr, align=4)
        return context.get_dummy_value()

    return sig, codegen
