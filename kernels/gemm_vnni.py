"""The int8 GEMM on AVX512-VNNI (``vpdpbusd``): out = dequantized(xq @ Wq^T), exact int32 sums.

It mirrors the bf16 GEMM on AVX512-BF16 (``gemm_dpbf16.py``) with k quads for k pairs: x as
uint8 tiles [M'/16, K'/64, 16, 64], W as int8 VNNI tiles [N'/16, K'/64, 16, 64] whose row p holds
k quad p of 16 columns, exactly one ``vpdpbusd`` operand (16 int32 lanes, each a column, each
adding four uint8 x int8 products). Twice the multiply-adds of ``vdpbf16ps`` per instruction.

The micro-kernel: 8 rows x 32 columns in 16 zmm int32 accumulators; per k quad, two weight rows
are loaded and each row's x quad is broadcast into two ``vpdpbusd``. A 32 x 32 block is four of
them; its epilogue takes the zero points off (zero[t] * colsum[n], exact) and scales to float32:
out = float32(acc - zero[t] colsum[n]) * scale[t] * w_scale[n] (+ bias[n]) (``int8.py``'s twin).
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
from .int8 import QUAD, TILE_K8
from .jit import kernel
from .jobs import job_counter, next_job

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


@kernel
def _block_32x32(xq, rb, tiles, cb, c):
    """c[32, 32] (int32) = rows 32 rb.. of xq times columns 32 cb.. of W: four 8-row micro-kernel calls."""
    k_steps = tiles.shape[1]
    w = tiles[2 * cb].ctypes.data
    for q in range(BLOCK // MR):
        x = xq[2 * rb + q * MR // TILE_ROWS, 0, (q * MR) % TILE_ROWS].ctypes.data
        dpbusd_8x32(x, w, k_steps * TILE_BYTES, k_steps, c[q * MR].ctypes.data, BLOCK * 4)


def check_operands(out, xq, scale, zero, tiles, w_scale, colsum, bias):
    """Raise naming the operand of ``matmul_int8_`` of the wrong dtype or shape (the micro-kernel
    reads raw addresses: a wrong layout would give wrong numbers, not an error)."""
    m, n = out.shape
    wants = {"out": (out, np.float32, 2), "xq": (xq, np.uint8, 4), "scale": (scale, np.float32, 1),
             "zero": (zero, np.int32, 1), "tiles": (tiles, np.int8, 4), "w_scale": (w_scale, np.float32, 1),
             "colsum": (colsum, np.int32, 1)}
    for name, (a, dtype, ndim) in wants.items():
        if a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
            raise ValueError(f"matmul_int8_: {name} must be C-contiguous {np.dtype(dtype).name} with {ndim} dimensions")
    if xq.shape[2:] != (TILE_ROWS, TILE_K8) or tiles.shape[2:] != (TILE_ROWS, TILE_K8) or xq.shape[1] != tiles.shape[1]:
        raise ValueError("matmul_int8_: xq and tiles must be [.., K'/64, 16, 64] tiles with the same k steps")
    if xq.shape[0] % 2 or xq.shape[0] * TILE_ROWS < m or tiles.shape[0] * TILE_ROWS < n or tiles.shape[0] % 2:
        raise ValueError("matmul_int8_: xq or tiles do not cover out (use quantize_rows_to_tiles_ and pack_weight_int8)")
    if scale.shape[0] < m or zero.shape[0] < m or w_scale.shape[0] < n or colsum.shape[0] < n:
        raise ValueError("matmul_int8_: scale and zero need a value per row of out, w_scale and colsum per column")
    if bias is not None and (bias.dtype != np.float32 or bias.shape != (n,)):
        raise ValueError("matmul_int8_: bias must be float32 [N]")


def matmul_int8_(out, xq, scale, zero, tiles, w_scale, colsum, bias=None):
    """out[M, N] = (xq @ Wq^T - zero colsum) * scale * w_scale (+ bias), float32 rows."""
    check_operands(out, xq, scale, zero, tiles, w_scale, colsum, bias)
    _matmul(out, xq, scale, zero, tiles, w_scale, colsum, np.zeros(0, np.float32) if bias is None else bias,
            bias is not None, numba.get_num_threads())


@kernel(parallel=True)
def _matmul(out, xq, scale, zero, tiles, w_scale, colsum, bias, add_bias, threads):
    m, n = out.shape
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    n_jobs, counter = jobs(row_blocks, col_blocks), job_counter()
    for _ in prange(threads):  # one worker per thread (threads as an argument: see gemm_dpbf16)
        c = np.empty((BLOCK, BLOCK), np.int32)
        while True:
            job = next_job(counter)
            if job >= n_jobs:
                break
            r0, r1, c0, c1 = job_blocks(job, row_blocks, col_blocks)
            for rb in range(r0, r1):
                for cb in range(c0, c1):
                    _block_32x32(xq, rb, tiles, cb, c)
                    rows, cols = min(BLOCK, m - rb * BLOCK), min(BLOCK, n - cb * BLOCK)
                    _dequantize_block(out, c, rb * BLOCK, cb * BLOCK, rows, cols, scale, zero, w_scale, colsum,
                                      bias, add_bias)


@kernel
def _dequantize_block(out, c, t0, n0, rows, cols, scale, zero, w_scale, colsum, bias, add_bias):
    """The epilogue of block c (int32 [32, 32]) at out[t0.., n0..]: zero points off, scales on, bias
    (rows and columns past out, the padding, stay out). One loop per case, so that LLVM vectorizes each."""
    for r in range(rows):
        t = t0 + r
        z, s = np.int32(zero[t]), scale[t]
        acc, dst = c[r], out[t, n0:n0 + cols]
        if add_bias:
            for j in range(cols):
                dst[j] = np.float32(acc[j] - z * colsum[n0 + j]) * s * w_scale[n0 + j] + bias[n0 + j]
        else:
            for j in range(cols):
                dst[j] = np.float32(acc[j] - z * colsum[n0 + j]) * s * w_scale[n0 + j]
