"""The int8 GEMM on AVX512-VNNI (``vpdpbusd``): out = dequantized(xq @ Wq^T), exact int32 sums.

It mirrors the bf16 GEMM on AVX512-BF16 (``gemm_dpbf16.py``) with k quads for k pairs: x as
uint8 tiles [M'/16, K'/64, 16, 64], W as int8 VNNI tiles [N'/16, K'/64, 16, 64] whose row p holds
k quad p of 16 columns, exactly one ``vpdpbusd`` operand (16 int32 lanes, each a column, each
adding four uint8 x int8 products). Twice the multiply-adds of ``vdpbf16ps`` per instruction.

The micro-kernel: 8 rows x 32 columns in 16 zmm int32 accumulators; per k quad, two weight rows
are loaded and each row's x quad is broadcast into two ``vpdpbusd``. A 32 x 32 block is four of
them; its epilogue (16-lane IR, one row at a time) takes the zero points off (zero[t] * colsum[n],
exact) and scales to float32: out = float32(acc - zero[t] colsum[n]) * scale[t] * w_scale[n] (+ bias[n]),
the last product and the bias one FMA (``int8.py``'s twin), one FMA more for each float32 outlier
channel, then GELU for the FFN (``gelu_f32.py``).
Integer sums do not depend on order, so a row's result is the same whatever the batch, the thread
or the number of threads. Jobs as the bf16 GEMMs (``bf16_gemm.py``).

Import only after ``e5np.runtime.cpu`` has found avx512_vnni: LLVM cannot compile ``vpdpbusd`` for a
CPU without it.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .bf16 import BLOCK, TILE_BYTES, TILE_ROWS
from .bf16_gemm import job_blocks, jobs
from .gelu_f32 import gelu
from .int8 import QUAD, TILE_K8
from .jit import kernel
from .jobs import job_counter, next_job
from .vector_ir import Vec16

MR = 8  # rows per micro-kernel call: 2 x MR accumulators, 2 weight rows, 1 broadcast
_i32, _i64 = ir.IntType(32), ir.IntType(64)
_i32x16 = ir.VectorType(_i32, 16)


def _const(n):
    return ir.Constant(_i64, n)


@intrinsic
def dpbusd_8x32(typingctx, x_addr, w_addr, w_panel_stride, k_steps, c_addr, c_stride):
    """c[8, 32] = x[8 rows] @ w over the full K (int32, rows ``c_stride`` bytes apart).

    x_addr: row r0 of a 16-row x panel (tiles of k step s at s * 1 KiB, a row 64 bytes);
    w_addr: a 16-column VNNI panel, the next 16 columns ``w_panel_stride`` bytes on."""
    sig = types.void(*[types.intp] * 6)

    def codegen(context, builder, signature, args):
        x_i, w_i, w_panel_stride, k_steps, c_i, c_stride = args
        dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_i32x16, [_i32x16] * 3),
                                             "llvm.x86.avx512.vpdpbusd.512")
        undef = ir.Constant(_i32x16, ir.Undefined)
        lane0 = ir.Constant(_i32x16, [0] * 16)

        def load_weights(base, quad):
            return builder.load(builder.inttoptr(builder.add(base, _const(64 * quad)), _i32x16.as_pointer()), align=1)

        def broadcast_x(base, row, quad):
            at = builder.inttoptr(builder.add(base, _const(64 * row + QUAD * quad)), _i32.as_pointer())
            word = builder.load(at, align=4)  # four uint8 of x as an i32
            return builder.shuffle_vector(builder.insert_element(undef, word, ir.Constant(_i32, 0)), undef, lane0)

        entry = builder.basic_block
        loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        k = builder.phi(_i64)
        acc_in = [builder.phi(_i32x16) for _ in range(2 * MR)]  # row r: acc[2r] (columns 0-15), acc[2r+1] (16-31)
        w_left = builder.add(w_i, builder.mul(k, _const(TILE_BYTES)))
        w_right = builder.add(w_left, w_panel_stride)
        x_tile = builder.add(x_i, builder.mul(k, _const(TILE_BYTES)))
        acc = list(acc_in)
        for quad in range(TILE_K8 // QUAD):
            left, right = load_weights(w_left, quad), load_weights(w_right, quad)
            for r in range(MR):
                a = broadcast_x(x_tile, r, quad)
                acc[2 * r] = builder.call(dot, [acc[2 * r], a, left])
                acc[2 * r + 1] = builder.call(dot, [acc[2 * r + 1], a, right])
        k_next = builder.add(k, _const(1))
        latch = builder.basic_block
        builder.cbranch(builder.icmp_signed("<", k_next, k_steps), loop, done)
        k.add_incoming(_const(0), entry)
        k.add_incoming(k_next, latch)
        for phi, value in zip(acc_in, acc):
            phi.add_incoming(ir.Constant(_i32x16, [0] * 16), entry)
            phi.add_incoming(value, latch)

        builder.position_at_end(done)
        for r in range(MR):
            for half in range(2):
                at = builder.add(c_i, builder.add(builder.mul(_const(r), c_stride), _const(64 * half)))
                builder.store(acc[2 * r + half], builder.inttoptr(at, _i32x16.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def dequantize_row_32(typingctx, c_addr, out_addr, zero, scale, colsum_addr, w_scale_addr, bias_addr,
                      outlier_x_addr, outlier_w_addr, outlier_w_stride, outliers, with_gelu):
    """out[0:32] = float32(c[0:32] - zero colsum[0:32]) * scale * w_scale[0:32] + bias[0:32]
    + sum over outlier channels j of x_j * W_j[0:32], then GELU if ``with_gelu``: one row of a
    finished block, in two 16-lane vectors. The last scaling and the bias are one FMA (a bias of
    zeros leaves the product exact), each outlier channel one more, in channel order (its weights
    ``outlier_w_stride`` bytes apart). Full and edge blocks both pass through here, so a token's
    output is the same bit for bit wherever it sits in the batch."""
    sig = types.void(types.intp, types.intp, types.int32, types.float32, types.intp, types.intp, types.intp,
                     types.intp, types.intp, types.intp, types.intp, types.boolean)

    def codegen(context, builder, signature, args):
        c, out, z, s, colsum, w_scale, bias, outlier_x, outlier_w, outlier_stride, outliers, with_gelu = args
        v = Vec16(builder)
        ints = v.int_type.as_pointer()

        def broadcast(value, kind):
            undef = ir.Constant(kind, ir.Undefined)
            return builder.shuffle_vector(builder.insert_element(undef, value, ir.Constant(_i32, 0)), undef,
                                          ir.Constant(v.int_type, [0] * 16))

        z16, s16 = broadcast(z, v.int_type), broadcast(s, v.type)
        values = []
        for half in range(2):
            at = _const(64 * half)
            acc = builder.load(builder.inttoptr(builder.add(c, at), ints), align=4)
            sums = builder.load(builder.inttoptr(builder.add(colsum, at), ints), align=4)
            exact = builder.sub(acc, builder.mul(z16, sums))  # the zero point off, in int32
            scaled = builder.fmul(builder.sitofp(exact, v.type), s16)
            ws = builder.load(v.pointer(builder.add(w_scale, at)), align=4)
            values.append(v.fma(scaled, ws, builder.load(v.pointer(builder.add(bias, at)), align=4)))

        # the float32 outlier channels: for j < outliers, values += x_j * W_j (a loop: usually 4)
        entry = builder.basic_block
        loop, done = builder.append_basic_block("outliers"), builder.append_basic_block("outliers_done")
        builder.cbranch(builder.icmp_signed(">", outliers, _const(0)), loop, done)
        builder.position_at_end(loop)
        j = builder.phi(_i64)
        carried = [builder.phi(v.type) for _ in range(2)]
        x_j = builder.load(builder.inttoptr(builder.add(outlier_x, builder.mul(j, _const(4))), v.f32.as_pointer()),
                           align=4)
        x16 = broadcast(x_j, v.type)
        row = builder.add(outlier_w, builder.mul(j, outlier_stride))
        summed = [v.fma(x16, builder.load(v.pointer(builder.add(row, _const(64 * half))), align=4), carried[half])
                  for half in range(2)]
        j_next = builder.add(j, _const(1))
        latch = builder.basic_block
        builder.cbranch(builder.icmp_signed("<", j_next, outliers), loop, done)
        j.add_incoming(_const(0), entry)
        j.add_incoming(j_next, latch)
        for phi, first, last in zip(carried, values, summed):
            phi.add_incoming(first, entry)
            phi.add_incoming(last, latch)
        builder.position_at_end(done)
        finals = []
        for first, last in zip(values, summed):
            phi = builder.phi(v.type)
            phi.add_incoming(first, entry)
            phi.add_incoming(last, latch)
            finals.append(phi)

        with builder.if_else(with_gelu) as (then, otherwise):
            with then:
                for half, x in enumerate(finals):
                    builder.store(gelu(v, x), v.pointer(builder.add(out, _const(64 * half))), align=4)
            with otherwise:
                for half, x in enumerate(finals):
                    builder.store(x, v.pointer(builder.add(out, _const(64 * half))), align=4)
        return context.get_dummy_value()

    return sig, codegen


@kernel
def _block_32x32(xq, rb, tiles, cb, c):
    """c[32, 32] (int32) = rows 32 rb.. of xq times columns 32 cb.. of W: four 8-row micro-kernel calls."""
    k_steps = tiles.shape[1]
    w = tiles[2 * cb].ctypes.data
    for q in range(BLOCK // MR):
        x = xq[2 * rb + q * MR // TILE_ROWS, 0, (q * MR) % TILE_ROWS].ctypes.data
        dpbusd_8x32(x, w, k_steps * TILE_BYTES, k_steps, c[q * MR].ctypes.data, BLOCK * 4)


def check_operands(out, xq, scale, zero, tiles, w_scale, colsum, bias, outlier_x, outlier_w):
    """Raise naming the operand of ``matmul_int8_`` of the wrong dtype or shape (the micro-kernel
    reads raw addresses: a wrong layout would give wrong numbers, not an error)."""
    m, n = out.shape
    wants = {"out": (out, np.float32, 2), "xq": (xq, np.uint8, 4), "scale": (scale, np.float32, 1),
             "zero": (zero, np.int32, 1), "tiles": (tiles, np.int8, 4), "w_scale": (w_scale, np.float32, 1),
             "colsum": (colsum, np.int32, 1)}
    for name, (a, dtype, ndim) in wants.items():
        if a.dtype != dtype or a.ndim != ndim or not (a.flags.c_contiguous or name == "out"):
            raise ValueError(f"matmul_int8_: {name} must be C-contiguous {np.dtype(dtype).name} with {ndim} dimensions")
    if out.strides[1] != 4:
        raise ValueError("matmul_int8_: the rows of out must be contiguous float32")
    if xq.shape[2:] != (TILE_ROWS, TILE_K8) or tiles.shape[2:] != (TILE_ROWS, TILE_K8) or xq.shape[1] != tiles.shape[1]:
        raise ValueError("matmul_int8_: xq and tiles must be [.., K'/64, 16, 64] tiles with the same k steps")
    if xq.shape[0] % 2 or xq.shape[0] * TILE_ROWS < m or tiles.shape[0] * TILE_ROWS < n or tiles.shape[0] % 2:
        raise ValueError("matmul_int8_: xq or tiles do not cover out (use quantize_rows_to_tiles_ and pack_weight_int8)")
    if scale.shape[0] < m or zero.shape[0] < m or w_scale.shape[0] < n or colsum.shape[0] < n:
        raise ValueError("matmul_int8_: scale and zero need a value per row of out, w_scale and colsum per column")
    if bias is not None and (bias.dtype != np.float32 or bias.shape[0] < n or bias.ndim != 1):
        raise ValueError("matmul_int8_: bias must be float32 [N]")
    if (outlier_x is None) != (outlier_w is None):
        raise ValueError("matmul_int8_: outlier_x and outlier_w come together")
    if outlier_x is not None:
        for name, a in (("outlier_x", outlier_x), ("outlier_w", outlier_w)):
            if a.dtype != np.float32 or a.ndim != 2 or not a.flags.c_contiguous:
                raise ValueError(f"matmul_int8_: {name} must be C-contiguous float32 with 2 dimensions")
        if outlier_x.shape[0] < m or outlier_x.shape[1] != outlier_w.shape[0] or outlier_w.shape[1] < n:
            raise ValueError("matmul_int8_: outlier_x must be [M, c] and outlier_w [c, N]")


def padded(a: np.ndarray | None, length: int, dtype) -> np.ndarray:
    """a zero-padded to ``length`` (every epilogue reads whole 32-column blocks); a itself if long enough."""
    if a is not None and a.shape[0] >= length:
        return a
    out = np.zeros(length, dtype)
    if a is not None:
        out[:a.shape[0]] = a
    return out


def matmul_int8_(out, xq, scale, zero, tiles, w_scale, colsum, bias=None, gelu=False, outlier_x=None, outlier_w=None):
    """out[M, N] = (xq @ Wq^T - zero colsum) * scale * w_scale (+ bias) (+ outlier_x @ outlier_w),
    then GELU if ``gelu``; float32 rows. w_scale, colsum, bias and outlier_w's rows may be padded to
    the weight tiles' N' (``Int8Linear``'s are)."""
    check_operands(out, xq, scale, zero, tiles, w_scale, colsum, bias, outlier_x, outlier_w)
    n_padded = tiles.shape[0] * TILE_ROWS
    if outlier_x is None:
        outlier_x, outlier_w = np.zeros((out.shape[0], 0), np.float32), np.zeros((0, n_padded), np.float32)
    elif outlier_w.shape[1] < n_padded:
        outlier_w = np.ascontiguousarray(np.pad(outlier_w, ((0, 0), (0, n_padded - outlier_w.shape[1]))))
    _matmul(out, xq, scale, zero, tiles, padded(w_scale, n_padded, np.float32), padded(colsum, n_padded, np.int32),
            padded(bias, n_padded, np.float32), outlier_x, outlier_w, gelu, numba.get_num_threads())


@kernel(parallel=True)
def _matmul(out, xq, scale, zero, tiles, w_scale, colsum, bias, outlier_x, outlier_w, with_gelu, threads):
    m, n = out.shape
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    n_jobs, counter = jobs(row_blocks, col_blocks), job_counter()
    outliers, outlier_stride = outlier_w.shape[0], outlier_w.shape[1] * 4
    for _ in prange(threads):  # one worker per thread (threads as an argument: see gemm_dpbf16)
        c = np.empty((BLOCK, BLOCK), np.int32)
        edge = np.empty(BLOCK, np.float32)  # one row of an edge block, before its columns past N are dropped
        while True:
            job = next_job(counter)
            if job >= n_jobs:
                break
            r0, r1, c0, c1 = job_blocks(job, row_blocks, col_blocks)
            for rb in range(r0, r1):
                for cb in range(c0, c1):
                    _block_32x32(xq, rb, tiles, cb, c)
                    n0 = cb * BLOCK
                    cols = min(BLOCK, n - n0)
                    for r in range(min(BLOCK, m - rb * BLOCK)):  # rows past M (padding) stay out
                        t = rb * BLOCK + r
                        dst = out[t, n0:].ctypes.data if cols == BLOCK else edge.ctypes.data
                        dequantize_row_32(c[r].ctypes.data, dst, zero[t], scale[t], colsum[n0:].ctypes.data,
                                          w_scale[n0:].ctypes.data, bias[n0:].ctypes.data,
                                          outlier_x.ctypes.data + 4 * outliers * t, outlier_w.ctypes.data + 4 * n0,
                                          outlier_stride, outliers, with_gelu)
                        if cols < BLOCK:
                            out[t, n0:n0 + cols] = edge[:cols]
