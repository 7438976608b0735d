"""AMX tile instructions as Numba intrinsics, and the bf16 micro-kernel built on them.

Import this module only after ``e5np.runtime.cpu`` has confirmed AMX and obtained the kernel's
permission: on a CPU without AMX, LLVM aborts the whole process when it compiles these
intrinsics, and without the permission the first tile instruction raises SIGILL.

Eight tile registers. The micro-kernel uses tmm0-3 as a 2 x 2 block of 16 x 16 fp32
accumulators (32 rows x 32 columns of the output), tmm4-5 for two 16 x 32 bf16 tiles of x and
tmm6-7 for two 32 x 16 bf16 weight tiles (VNNI layout: rows are k pairs). Each k step of 32
costs 4 tile loads and 4 ``tdpbf16ps``; the whole K is accumulated in the tiles. A block's
epilogue (``block_epilogue.py``: the FFN's bias + GELU + bf16 rounding, or a bias) runs on the
vector units inside the next block's k loop.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .bf16 import TILE_BYTES, TILE_ROWS
from .block_epilogue import VECTORS, bias_store_block, bias_store_vector, gelu_to_bf16_block, gelu_to_bf16_vector  # noqa: F401

_i8, _i64, _void = ir.IntType(8), ir.IntType(64), ir.VoidType()
_ptr = ir.IntType(8).as_pointer()


def _llvm(builder, name, arg_types):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(_void, arg_types), name)


def _tile(i):
    return ir.Constant(_i8, i)


def _const(n):
    return ir.Constant(_i64, n)


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


def _block_32x32(builder, args, behind=None):
    """c[32, 32] (fp32, row stride ``c_stride`` bytes) = x[32, 32 x_steps] @ w over the full K;
    args = (x_addr, x_panel_stride, x_steps, w_addr, w_panel_stride, k_steps, c_addr, c_stride).
    w has k_steps k steps, x_steps or a multiple of it: w's parts (hi and lo of a split weight,
    ``pack_weight_bf16``) each multiply all of x, into the same accumulators.

    Both operands are panels of contiguous 1 KiB tiles, the tile of k step s at s * 1024 bytes:
    x two panels of 16 rows (bf16 16 x 32 tiles), ``x_panel_stride`` bytes apart; w two panels
    of 16 columns (VNNI tiles), ``w_panel_stride`` bytes apart. Contiguous tiles matter: rows
    of a row-major x lie K * 2 bytes apart and fall into the same few L1 sets.
    ``behind``: (epilogue, its arguments), the epilogue of the block before, one 16-float vector
    at a time, spread over this block's k steps: the vector units work while the tile unit multiplies.
    """
    x_i, x_panel_stride, x_steps, w_i, w_panel_stride, k_steps, c_i, c_stride = args
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
    if behind is not None:  # vectors per k step, all 64 done by the last step; none if there is no block before
        epilogue, epilogue_args = behind
        per_step = builder.select(builder.icmp_signed("==", epilogue_args[0], _const(0)), _const(0),
                                  builder.sdiv(builder.add(k_steps, _const(VECTORS - 1)), k_steps))

    entry = builder.basic_block
    loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
    builder.branch(loop)
    builder.position_at_end(loop)
    k, x_k = builder.phi(_i64), builder.phi(_i64)  # the k step in w, and in x (k mod x_steps)
    offset, x_offset = builder.mul(k, _const(TILE_BYTES)), builder.mul(x_k, _const(TILE_BYTES))
    ahead = builder.add(offset, _const(2 * TILE_BYTES))  # two k steps ahead
    # the weight tiles two steps ahead: they stream past while the x block is reused from cache
    # (prefetching both measured 10 to 20% faster than neither; the weights alone 6 to 8% more, A/B in random order)
    for base in (w_i, w_right):
        for line in range(0, TILE_BYTES, 64):
            builder.call(prefetch, [address(base, builder.add(ahead, _const(line))), read, keep, data])
    row_bytes = _const(64)
    # each product issued as soon as its operands are loaded: tiles are not renamed, so the
    # next step's loads wait until the products that read the previous contents have started
    for loads, products in ((((4, x_i), (6, w_i)), ((0, 4, 6),)), (((7, w_right),), ((1, 4, 7),)),
                            (((5, x_lower),), ((2, 5, 6), (3, 5, 7)))):
        for tile, base in loads:
            builder.call(load, [_tile(tile), address(base, x_offset if tile in (4, 5) else offset), row_bytes])
        for c, a, b in products:
            builder.call(dot, [_tile(c), _tile(a), _tile(b)])
    if behind is not None:  # vector work on the AVX-512 ports while the tile unit multiplies
        first = builder.mul(k, per_step)
        last = builder.add(first, per_step)
        first, last = (builder.select(builder.icmp_signed("<", i, _const(VECTORS)), i, _const(VECTORS)) for i in (first, last))
        with cgutils.for_range_slice(builder, first, last, _const(1)) as (vector, _):
            epilogue(builder, vector, *epilogue_args)
    k_next, x_k_next = builder.add(k, _const(1)), builder.add(x_k, _const(1))
    x_k_next = builder.select(builder.icmp_signed("==", x_k_next, x_steps), _const(0), x_k_next)
    latch = builder.basic_block
    builder.cbranch(builder.icmp_signed("<", k_next, k_steps), loop, done)
    for phi, first, following in ((k, _const(0), k_next), (x_k, _const(0), x_k_next)):
        phi.add_incoming(first, entry)
        phi.add_incoming(following, latch)

    builder.position_at_end(done)
    c_lower = builder.add(c_i, builder.mul(c_stride, _const(TILE_ROWS)))
    for c, (base, column) in enumerate(((c_i, 0), (c_i, 64), (c_lower, 0), (c_lower, 64))):
        builder.call(store, [_tile(c), address(base, _const(column)), c_stride])


@intrinsic
def bf16_block_32x32(typingctx, x_addr, x_panel_stride, x_steps, w_addr, w_panel_stride, k_steps, c_addr, c_stride):
    """One AMX block (``_block_32x32``), nothing else."""
    def codegen(context, builder, signature, args):
        _block_32x32(builder, args)
        return context.get_dummy_value()

    return types.void(*[types.intp] * 8), codegen


@intrinsic
def bf16_block_32x32_gelu_behind(typingctx, x_addr, x_panel_stride, x_steps, w_addr, w_panel_stride, k_steps, c_addr,
                                 c_stride, prev_c, prev_bias, prev_dst, dst_tile_stride):
    """One AMX block (``_block_32x32``), and meanwhile the previous block's FFN epilogue
    (``gelu_to_bf16_block`` of prev_c, prev_bias, prev_dst; prev_c 0: none). With the epilogue
    after each block instead, the FFN GEMM took 1.35 to 1.5x as long at 512 to 2,555 rows."""
    def codegen(context, builder, signature, args):
        _block_32x32(builder, args[:8], behind=(gelu_to_bf16_vector, args[8:]))
        return context.get_dummy_value()

    return types.void(*[types.intp] * 12), codegen


@intrinsic
def bf16_block_32x32_bias_behind(typingctx, x_addr, x_panel_stride, x_steps, w_addr, w_panel_stride, k_steps, c_addr,
                                 c_stride, prev_c, prev_bias, prev_dst, dst_row_stride):
    """One AMX block (``_block_32x32``), and meanwhile the previous block's bias epilogue
    (``bias_store_block`` of prev_c, prev_bias, prev_dst; prev_c 0: none). The QKV GEMM with a
    bias pass after it took 1.04 to 1.16x as long as with the bias here (448 to 8,192 rows)."""
    def codegen(context, builder, signature, args):
        _block_32x32(builder, args[:8], behind=(bias_store_vector, args[8:]))
        return context.get_dummy_value()

    return types.void(*[types.intp] * 12), codegen
