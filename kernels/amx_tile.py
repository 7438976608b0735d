"""AMX tile instructions as Numba intrinsics, and the bf16 micro-kernel built on them.

Import this module only after ``e5np.cpu`` has confirmed AMX and obtained the kernel's
permission: on a CPU without AMX, LLVM aborts the whole process when it compiles these
intrinsics, and without the permission the first tile instruction raises SIGILL.

Eight tile registers. The micro-kernel uses tmm0-3 as a 2 x 2 block of 16 x 16 fp32
accumulators (32 rows x 32 columns of the output), tmm4-5 for two 16 x 32 bf16 tiles of x and
tmm6-7 for two 32 x 16 bf16 weight tiles (VNNI layout: rows are k pairs). Each k step of 32
costs 4 tile loads and 4 ``tdpbf16ps``; the whole K is accumulated in the tiles.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .bf16 import TILE_BYTES, TILE_ROWS

_i8, _i64, _void = ir.IntType(8), ir.IntType(64), ir.VoidType()
_ptr = ir.IntType(8).as_pointer()


def _llvm(builder, name, arg_types):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(_void, arg_types), name)


def _tile(i):
    return ir.Constant(_i8, i)


@intrinsic
def load_tile_config(typingctx, config_addr):
    """ldtilecfg: every worker thread loads the 64-byte palette-1 configuration itself."""
    def codegen(context, builder, signature, args):
        builder.call(_llvm(builder, "llvm.x86.ldtilecfg", [_ptr]), [builder.inttoptr(args[0], _ptr)])
        return context.get_dummy_value()
    return types.void(types.intp), codegen


@intrinsic
def release_tiles(typingctx):
    """tilerelease: returns the tile state, so the thread stops paying for it on context switches."""
    def codegen(context, builder, signature, args):
        builder.call(_llvm(builder, "llvm.x86.tilerelease", []), [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def bf16_block_32x32(typingctx, x_addr, x_panel_stride, w_addr, w_panel_stride, k_steps, c_addr, c_stride):
    """c[32, 32] (fp32, row stride ``c_stride`` bytes) = x[32, 32 k_steps] @ w over the full K.

    Both operands are panels of contiguous 1 KiB tiles, the tile of k step s at s * 1024 bytes:
    x two panels of 16 rows (bf16 16 x 32 tiles), ``x_panel_stride`` bytes apart; w two panels
    of 16 columns (VNNI tiles), ``w_panel_stride`` bytes apart. Contiguous tiles matter: rows
    of a row-major x lie K * 2 bytes apart and fall into the same few L1 sets.
    """
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_i, x_panel_stride, w_i, w_panel_stride, k_steps, c_i, c_stride = args
        load = _llvm(builder, "llvm.x86.tileloadd64", [_i8, _ptr, _i64])
        dot = _llvm(builder, "llvm.x86.tdpbf16ps", [_i8, _i8, _i8])
        zero = _llvm(builder, "llvm.x86.tilezero", [_i8])
        store = _llvm(builder, "llvm.x86.tilestored64", [_i8, _ptr, _i64])
        i32 = ir.IntType(32)
        prefetch = _llvm(builder, "llvm.prefetch.p0", [_ptr, i32, i32, i32])  # (address, read, locality, data)
        read, keep, data = ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)

        def address(base, offset):
            return builder.inttoptr(builder.add(base, offset), _ptr)

        x_lower = builder.add(x_i, x_panel_stride)
        w_right = builder.add(w_i, w_panel_stride)
        for c in range(4):
            builder.call(zero, [_tile(c)])

        entry = builder.basic_block
        loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        k = builder.phi(_i64)
        offset = builder.mul(k, ir.Constant(_i64, TILE_BYTES))
        ahead = builder.add(offset, ir.Constant(_i64, 2 * TILE_BYTES))  # two k steps ahead
        # the weight tiles two steps ahead: they stream past while the x block is reused from cache
        # (prefetching both measured 10 to 20% faster than neither; the weights alone 6 to 8% more, A/B in random order)
        for base in (w_i, w_right):
            for line in range(0, TILE_BYTES, 64):
                builder.call(prefetch, [address(base, builder.add(ahead, ir.Constant(_i64, line))), read, keep, data])
        row_bytes = ir.Constant(_i64, 64)
        # each product issued as soon as its operands are loaded: tiles are not renamed, so the
        # next step's loads wait until the products that read the previous contents have started
        for loads, products in ((((4, x_i), (6, w_i)), ((0, 4, 6),)), (((7, w_right),), ((1, 4, 7),)),
                                (((5, x_lower),), ((2, 5, 6), (3, 5, 7)))):
            for tile, base in loads:
                builder.call(load, [_tile(tile), address(base, offset), row_bytes])
            for c, a, b in products:
                builder.call(dot, [_tile(c), _tile(a), _tile(b)])
        k_next = builder.add(k, ir.Constant(_i64, 1))
        builder.cbranch(builder.icmp_signed("<", k_next, k_steps), loop, done)
        k.add_incoming(ir.Constant(_i64, 0), entry)
        k.add_incoming(k_next, loop)

        builder.position_at_end(done)
        c_lower = builder.add(c_i, builder.mul(c_stride, ir.Constant(_i64, TILE_ROWS)))
        for c, (base, column) in enumerate(((c_i, 0), (c_i, 64), (c_lower, 0), (c_lower, 64))):
            builder.call(store, [_tile(c), address(base, ir.Constant(_i64, column)), c_stride])
        return context.get_dummy_value()

    return sig, codegen
