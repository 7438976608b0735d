"""The GEMM's register tile, written in LLVM IR: c[MR, NR] += x[MR, kc] @ b[kc, NR].

Numba's loop vectorizer keeps a tile of accumulators in memory (load, FMA, store per k: about
60 GFLOP/s here); written as explicit vectors carried through the k loop, they stay in registers
and each k costs NR / lanes panel loads, MR broadcasts and MR * NR / lanes FMAs (the classic
BLIS/Goto micro-kernel). MR x NR is chosen for the compile target's register file (``target.py``:
8 x 32 on AVX-512, 6 x 16 on AVX2 and NEON, 6 x 8 on SSE2), so the accumulators never spill. Each output
element is one FMA chain over k, from 0, in order, whatever the tile, so every FMA target gives
the same bits. Generic x86-64 has no FMA unit: there llvm.fma is a libm call per lane (which
spills every accumulator around it), so that tile multiplies and adds apart, rounding twice.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .target import Tile, compile_tile

TILE = compile_tile()
MR = TILE.mr  # rows of x per tile
NR = TILE.nr  # columns per tile: NR / lanes vectors


@intrinsic
def fma_tile_(typingctx, x_addr, x_stride, b_addr, k_count, c_addr, c_stride):
    """c[MR, NR] += x[MR, k_count] @ b[k_count, NR]. Addresses are byte addresses of float32 data:
    x and c row-major with row strides ``x_stride`` and ``c_stride`` elements, b a packed panel
    (NR floats per k). ``k_count`` must be at least 1."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        emit_tile(builder, args, TILE)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def fma_tile_packed_(typingctx, x_addr, x_stride, b_addr, k_count, c_addr, c_stride):
    """``fma_tile_`` with x packed as a micro-panel: its MR values of each k side by side
    ([k_count, MR], ``x_stride`` unused), so each k's broadcasts read one cache line, in order,
    instead of MR rows a whole row apart (which share an L1 set when the row is 4 KiB)."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        emit_tile(builder, args, TILE, packed_x=True)
        return context.get_dummy_value()

    return sig, codegen


def emit_tile(builder, args, tile: Tile, packed_x: bool = False) -> None:
    """The micro-kernel's IR at ``builder`` for ``tile`` (args: the six i64 values of ``fma_tile_``).
    A function of its own so that the tile of another architecture can be compiled and read
    (``tests/test_tiles.py`` builds the NEON tile for AArch64 on any host)."""
    x_i, x_stride, b_i, k_count, c_i, c_stride = args
    i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
    lanes, vectors = tile.lanes, tile.nr // tile.lanes
    vec = ir.VectorType(f32, lanes)
    x, b, c = (builder.inttoptr(a, f32.as_pointer()) for a in (x_i, b_i, c_i))
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{lanes}f32")
    undef = ir.Constant(vec, ir.Undefined)
    broadcast_lane0 = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)

    def multiply_add(a, w, acc):
        if tile.fused:
            return builder.call(fma, [a, w, acc])
        return builder.fadd(builder.fmul(a, w), acc)  # no FMA unit: llvm.fma would be a libm call per lane

    def vector_at(base, offset):
        return builder.bitcast(builder.gep(base, [offset]), vec.as_pointer())

    entry = builder.basic_block
    loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
    builder.branch(loop)
    builder.position_at_end(loop)
    k = builder.phi(i64)
    acc = [builder.phi(vec) for _ in range(tile.mr * vectors)]  # row r, vector v: acc[r * vectors + v]
    bk = builder.mul(k, ir.Constant(i64, tile.nr))
    panel = [builder.load(vector_at(b, builder.add(bk, ir.Constant(i64, v * lanes))), align=4) for v in range(vectors)]
    summed = []
    xk = builder.mul(k, ir.Constant(i64, tile.mr))
    for r in range(tile.mr):
        at = (builder.add(xk, ir.Constant(i64, r)) if packed_x
              else builder.add(builder.mul(ir.Constant(i64, r), x_stride), k))
        a = builder.load(builder.gep(x, [at]))
        a_all = builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(i32, 0)), undef, broadcast_lane0)
        summed += [multiply_add(a_all, panel[v], acc[r * vectors + v]) for v in range(vectors)]
    k_next = builder.add(k, ir.Constant(i64, 1))
    builder.cbranch(builder.icmp_signed("<", k_next, k_count), loop, done)
    k.add_incoming(ir.Constant(i64, 0), entry)
    k.add_incoming(k_next, loop)
    for phi, value in zip(acc, summed):
        phi.add_incoming(ir.Constant(vec, [0.0] * lanes), entry)
        phi.add_incoming(value, loop)

    builder.position_at_end(done)
    for r in range(tile.mr):
        for v in range(vectors):
            ptr = vector_at(c, builder.add(builder.mul(ir.Constant(i64, r), c_stride), ir.Constant(i64, v * lanes)))
            builder.store(builder.fadd(builder.load(ptr, align=4), summed[r * vectors + v]), ptr, align=4)
