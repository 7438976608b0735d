"""The bf16 GEMM on AVX512-BF16 (``vdpbf16ps``), for CPUs without AMX (AMD Zen 4 and later,
Intel Cooper Lake): out = x @ W^T with bf16 inputs and fp32 accumulation over the full K.

It reads the very layouts the AMX GEMM reads (``bf16.py``): x as bf16 tiles [M'/16, K'/32, 16, 32]
and W as VNNI tiles [N'/16, K'/32, 16, 32], whose row p holds k pair p of 16 columns, which is
exactly one ``vdpbf16ps`` operand (16 fp32 lanes, each a column, each taking a pair of k). So the
model's other bf16 steps (LayerNorm and attention writing tiles, split weights) work unchanged,
and the two paths share the block epilogues (``block_epilogue.py``).

The micro-kernel: 8 rows x 32 columns in 16 zmm accumulators; per k pair, two weight rows are
loaded and each row's x pair is broadcast into two ``vdpbf16ps``. A 32 x 32 block is four of
them. Jobs (``bf16_gemm.py``) go to whichever thread is free (``jobs.py``). Every output is one fp32 accumulation over k in a fixed order: a row's result does
not depend on the other rows, on the thread, or on how many threads there are.

Import only after ``e5np.runtime.cpu`` has found avx512_bf16: LLVM cannot compile ``vdpbf16ps`` for a CPU
without it.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .bf16 import BLOCK, TILE_BYTES, TILE_K, TILE_ROWS
from .bf16_gemm import check_gelu_tiles, check_matmul, job_blocks, jobs
from .block_epilogue import bias_store_block, gelu_to_bf16_block
from .jit import kernel
from .jobs import job_counter, next_job
from .rows_or_tiles import zero_padding_

MR = 8  # rows per micro-kernel call: 2 x MR accumulators, 2 weight rows, 1 broadcast
_i32, _i64 = ir.IntType(32), ir.IntType(64)
_f32x16, _i32x16 = ir.VectorType(ir.FloatType(), 16), ir.VectorType(ir.IntType(32), 16)


class _BFloat(ir.types.Type):
    """LLVM's ``bfloat``, which llvmlite's IR builder does not name (the intrinsic takes <32 x bfloat>)."""
    def _to_string(self):
        return "bfloat"

    def __eq__(self, other):
        return isinstance(other, _BFloat)

    def __hash__(self):
        return hash("bfloat")


_bf16x32 = ir.VectorType(_BFloat(), 32)


def _const(n):
    return ir.Constant(_i64, n)


@intrinsic
def dpbf16_8x32(typingctx, x_addr, x_steps, w_addr, w_panel_stride, k_steps, c_addr, c_stride):
    """c[8, 32] = x[8 rows] @ w over the full K (fp32, rows ``c_stride`` bytes apart).

    x_addr: row r0 of a 16-row x panel (tiles of k step s at s * 1 KiB, a row 64 bytes);
    w_addr: a 16-column VNNI panel, the next 16 columns ``w_panel_stride`` bytes on. w has k_steps
    k steps, x_steps or twice it (a split weight's hi and lo parts each multiply all of x)."""
    sig = types.void(*[types.intp] * 7)

    def codegen(context, builder, signature, args):
        x_i, x_steps, w_i, w_panel_stride, k_steps, c_i, c_stride = args
        dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_f32x16, [_f32x16, _bf16x32, _bf16x32]),
                                             "llvm.x86.avx512bf16.dpbf16ps.512")
        undef = ir.Constant(_i32x16, ir.Undefined)
        lane0 = ir.Constant(_i32x16, [0] * 16)

        def load_weights(base, pair):
            return builder.load(builder.inttoptr(builder.add(base, _const(64 * pair)), _bf16x32.as_pointer()), align=2)

        def broadcast_x(base, row, pair):
            at = builder.inttoptr(builder.add(base, _const(64 * row + 4 * pair)), _i32.as_pointer())
            word = builder.load(at, align=4)  # one bf16 pair of x as an i32
            splat = builder.shuffle_vector(builder.insert_element(undef, word, ir.Constant(_i32, 0)), undef, lane0)
            return builder.bitcast(splat, _bf16x32)

        entry = builder.basic_block
        loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        k, x_k = builder.phi(_i64), builder.phi(_i64)  # the k step in w, and in x (k mod x_steps)
        acc_in = [builder.phi(_f32x16) for _ in range(2 * MR)]  # row r: acc[2r] (columns 0-15), acc[2r+1] (16-31)
        w_left = builder.add(w_i, builder.mul(k, _const(TILE_BYTES)))
        w_right = builder.add(w_left, w_panel_stride)
        x_tile = builder.add(x_i, builder.mul(x_k, _const(TILE_BYTES)))
        acc = list(acc_in)
        for pair in range(TILE_K // 2):
            left, right = load_weights(w_left, pair), load_weights(w_right, pair)
            for r in range(MR):
                a = broadcast_x(x_tile, r, pair)
                acc[2 * r] = builder.call(dot, [acc[2 * r], a, left])
                acc[2 * r + 1] = builder.call(dot, [acc[2 * r + 1], a, right])
        k_next, x_k_next = builder.add(k, _const(1)), builder.add(x_k, _const(1))
        x_k_next = builder.select(builder.icmp_signed("==", x_k_next, x_steps), _const(0), x_k_next)
        latch = builder.basic_block
        builder.cbranch(builder.icmp_signed("<", k_next, k_steps), loop, done)
        for phi, first, following in ((k, _const(0), k_next), (x_k, _const(0), x_k_next)):
            phi.add_incoming(first, entry)
            phi.add_incoming(following, latch)
        for phi, value in zip(acc_in, acc):
            phi.add_incoming(ir.Constant(_f32x16, [0.0] * 16), entry)
            phi.add_incoming(value, latch)

        builder.position_at_end(done)
        for r in range(MR):
            for half in range(2):
                at = builder.add(c_i, builder.add(builder.mul(_const(r), c_stride), _const(64 * half)))
                builder.store(acc[2 * r + half], builder.inttoptr(at, _f32x16.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


@kernel
def _block_32x32(x16, rb, tiles, cb, k_steps, c_addr, c_stride):
    """c[32, 32] = rows 32 rb.. of x times columns 32 cb.. of W: four 8-row micro-kernel calls."""
    x_steps, w_panel = x16.shape[1], k_steps * TILE_BYTES
    w = tiles[2 * cb].ctypes.data
    for q in range(BLOCK // MR):
        x = x16[2 * rb + q * MR // TILE_ROWS, 0, (q * MR) % TILE_ROWS].ctypes.data
        dpbf16_8x32(x, x_steps, w, w_panel, k_steps, c_addr + q * MR * c_stride, c_stride)


def matmul_bf16_(out, x16, tiles, bias=None, split=False):
    """out[M, N] = x @ W^T (+ bias), as ``gemm_amx.matmul_bf16_`` (same arguments, same layouts)."""
    bias_or_none = check_matmul(out, x16, tiles, bias, split)
    if out.strides[1] != 4:
        raise ValueError("matmul_bf16_: the rows of out must be contiguous float32")
    if x16.shape[0] % 2 or x16.shape[0] * TILE_ROWS < out.shape[0] or tiles.shape[0] * TILE_ROWS < out.shape[1]:
        raise ValueError("matmul_bf16_: x16 or tiles do not match out (use round_to_bf16_tiles_ and pack_weight_bf16)")
    _matmul(out, x16, tiles, bias_or_none, bias is not None, numba.get_num_threads())


def matmul_bf16_gelu_tiles_(h16, x16, tiles, bias, m):
    """h16 = gelu(x @ W^T + bias) in bf16 tiles, as ``gemm_amx.matmul_bf16_gelu_tiles_``."""
    padded_bias = check_gelu_tiles(h16, x16, tiles, bias)
    if x16.shape[0] % 2 or x16.shape[0] * TILE_ROWS < m or h16.shape[0] != x16.shape[0]:
        raise ValueError("matmul_bf16_gelu_tiles_: x16, tiles and h16 do not match")
    _matmul_gelu_tiles(h16, x16, tiles, padded_bias, bias.shape[0], m, numba.get_num_threads())


@kernel(parallel=True)
def _matmul(out, x16, tiles, bias, add_bias, threads):  # threads as an argument: get_num_threads() inside a kernel stops caching
    m, n = out.shape
    k_steps = tiles.shape[1]
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    n_jobs, counter = jobs(row_blocks, col_blocks), job_counter()
    for _ in prange(threads):  # one worker per thread
        c = np.empty((BLOCK, BLOCK), np.float32)
        while True:
            job = next_job(counter)
            if job >= n_jobs:
                break
            r0, r1, c0, c1 = job_blocks(job, row_blocks, col_blocks)
            for rb in range(r0, r1):
                for cb in range(c0, c1):
                    rows, cols = min(BLOCK, m - rb * BLOCK), min(BLOCK, n - cb * BLOCK)
                    block_out = out[rb * BLOCK, cb * BLOCK:].ctypes.data
                    if rows == BLOCK and cols == BLOCK and not add_bias:  # straight into out
                        _block_32x32(x16, rb, tiles, cb, k_steps, block_out, out.strides[0])
                        continue
                    _block_32x32(x16, rb, tiles, cb, k_steps, c.ctypes.data, BLOCK * 4)
                    if rows == BLOCK and cols == BLOCK:
                        bias_store_block(c.ctypes.data, bias[cb * BLOCK:].ctypes.data, block_out, out.strides[0])
                        continue
                    for r in range(rows):  # an edge block: its padding stays out of out
                        for j in range(cols):
                            out[rb * BLOCK + r, cb * BLOCK + j] = c[r, j] + bias[cb * BLOCK + j] if add_bias else c[r, j]


@kernel(parallel=True)
def _matmul_gelu_tiles(h16, x16, tiles, bias, n, m, threads):
    k_steps = tiles.shape[1]
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    h_tile_stride = h16.shape[1] * TILE_BYTES  # h16[i, cb] to h16[i + 1, cb]
    n_jobs, counter = jobs(row_blocks, col_blocks), job_counter()
    for _ in prange(threads):  # one worker per thread
        c = np.empty((BLOCK, BLOCK), np.float32)
        while True:
            job = next_job(counter)
            if job >= n_jobs:
                break
            r0, r1, c0, c1 = job_blocks(job, row_blocks, col_blocks)
            for rb in range(r0, r1):
                for cb in range(c0, c1):
                    _block_32x32(x16, rb, tiles, cb, k_steps, c.ctypes.data, BLOCK * 4)
                    gelu_to_bf16_block(c.ctypes.data, bias[cb * BLOCK:].ctypes.data, h16[2 * rb, cb].ctypes.data,
                                       h_tile_stride)
    zero_padding_(h16, m, n)  # the epilogue ran on whole blocks, padding rows and columns included
