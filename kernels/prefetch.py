"""``prefetch_(address)``: ask the CPU to start loading a cache line that will be read soon.

For rows read at a large stride (a head's slice of the fused Q|K|V rows, 12 KiB apart for e5-large):
the hardware prefetchers follow a stream within a 4 KiB page and so miss every such row.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 64  # bytes per cache line


@intrinsic
def prefetch_(typingctx, address):
    sig = types.void(types.intp)

    def codegen(context, builder, signature, args):
        i32, byte_ptr = ir.IntType(32), ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]), "llvm.prefetch.p0")
        read, keep_in_all_levels, data = (ir.Constant(i32, c) for c in (0, 3, 1))
        builder.call(fn, [builder.inttoptr(args[0], byte_ptr), read, keep_in_all_levels, data])
        return context.get_dummy_value()

    return sig, codegen
