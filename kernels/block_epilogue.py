"""What happens to a finished 32 x 32 block of fp32 accumulators: + bias, stored as float32 rows;
or + bias, GELU and bf16 rounding into the next GEMM's tiles. 16-lane AVX-512 IR, shared by the
bf16 GEMMs on AMX (``amx_tile.py``, which runs them beside the tile unit) and on AVX512-BF16
(``gemm_dpbf16.py``). No AMX instruction here.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .bf16 import BLOCK, TILE_ROWS
from .gelu_f32 import gelu
from .vector_ir import LANES, Vec16

_i64 = ir.IntType(64)
VECTORS = BLOCK * BLOCK // LANES  # 16-float vectors in a 32 x 32 block


def _const(n):
    return ir.Constant(_i64, n)


def block_vector_plus_bias(builder, vector, c, bias):
    """Vector v (0 to 63) of a finished block c [32, 32] (contiguous float32), row v // 2, columns
    16 (v % 2) on, plus those 16 biases: returns (Vec16, row, half, the sum)."""
    v = Vec16(builder)
    row, half = builder.lshr(vector, _const(1)), builder.and_(vector, _const(1))
    at = builder.add(c, builder.add(builder.mul(row, _const(BLOCK * 4)), builder.mul(half, _const(64))))
    b = builder.load(v.pointer(builder.add(bias, builder.mul(half, _const(64)))), align=4)
    return v, row, half, builder.fadd(builder.load(v.pointer(at), align=4), b)


def gelu_to_bf16_vector(builder, vector, c, bias, dst, dst_tile_stride):
    """One 16-float vector v (0 to 63) of a finished block c [32, 32] (contiguous float32), row
    v // 2, columns 16 (v % 2) on: + bias, GELU, rounded to bf16 into that row of the block's two
    16-row output tiles (the upper at ``dst``, the lower ``dst_tile_stride`` bytes on)."""
    v, row, half, x = block_vector_plus_bias(builder, vector, c, bias)
    tile_row = builder.add(builder.mul(builder.lshr(row, _const(4)), dst_tile_stride),
                           builder.mul(builder.and_(row, _const(TILE_ROWS - 1)), _const(64)))
    out = builder.add(dst, builder.add(tile_row, builder.mul(half, _const(32))))
    builder.store(v.round_to_bf16(gelu(v, x)), builder.inttoptr(out, ir.VectorType(ir.IntType(16), LANES).as_pointer()), align=2)


def bias_store_vector(builder, vector, c, bias, dst, dst_row_stride):
    """One 16-float vector v (0 to 63) of a finished block c [32, 32] (contiguous float32), row
    v // 2, columns 16 (v % 2) on: + bias, stored into that row of ``dst`` (float32 rows
    ``dst_row_stride`` bytes apart)."""
    v, row, half, x = block_vector_plus_bias(builder, vector, c, bias)
    out = builder.add(dst, builder.add(builder.mul(row, dst_row_stride), builder.mul(half, _const(64))))
    builder.store(x, v.pointer(out), align=4)


def every_vector(builder, epilogue, args):
    """An epilogue on all 64 vectors of a block, on its own."""
    with cgutils.for_range(builder, _const(VECTORS)) as loop:
        epilogue(builder, loop.index, *args)


@intrinsic
def gelu_to_bf16_block(typingctx, c_addr, bias_addr, dst_addr, dst_tile_stride):
    """The FFN epilogue of one block: c [32, 32] float32 (contiguous) + bias [32], GELU, rounded
    to bf16 into two 16-row output tiles, the upper at ``dst``, the lower ``dst_tile_stride`` bytes on."""
    def codegen(context, builder, signature, args):
        every_vector(builder, gelu_to_bf16_vector, args)
        return context.get_dummy_value()

    return types.void(*[types.intp] * 4), codegen


@intrinsic
def bias_store_block(typingctx, c_addr, bias_addr, dst_addr, dst_row_stride):
    """The bias epilogue of one block: c [32, 32] float32 (contiguous) + bias [32], stored into
    float32 rows ``dst_row_stride`` bytes apart from ``dst``."""
    def codegen(context, builder, signature, args):
        every_vector(builder, bias_store_vector, args)
        return context.get_dummy_value()

    return types.void(*[types.intp] * 4), codegen
