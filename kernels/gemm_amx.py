"""The bf16 GEMM on AMX: out = x @ W^T with bf16 inputs and fp32 accumulation over the full K.

Import only after ``e5np.runtime.choose_precision`` has chosen bf16 (see amx_tile.py). Work is split
into jobs of one 32-row block of x and JOB_COLS 32-column weight panels: the x block stays in
L1/L2 while the panels stream past, and the output rows are written in long runs (a job of 4 x 4
blocks measured 10 to 30% slower). Each worker thread loads the tile configuration once and takes
the next job whenever it is free (``jobs.py``: the two cores here run at different speeds); jobs
in sequence share their weight panels. Every output element is one fp32 accumulation over k in a
fixed order: a row's result does not depend on the other rows in the batch, nor on which thread
computed it or how many there are.

Two epilogues, each run on a 32 x 32 block of accumulators while the tile unit computes the next
block: ``matmul_bf16_`` stores fp32 rows (adding the bias, if given); ``matmul_bf16_gelu_tiles_``
(the FFN's first projection) adds the bias, applies GELU in float32 and rounds to bf16 tiles, the
layout the next GEMM reads.
"""

import numba
import numpy as np
from numba import prange

from .amx_tile import (bf16_block_32x32, bf16_block_32x32_bias_behind, bf16_block_32x32_gelu_behind, bias_store_block,
                       gelu_to_bf16_block, load_tile_config, release_tiles)
from .bf16 import BLOCK, TILE_BYTES, TILE_ROWS
from .bf16_gemm import check_gelu_tiles, check_matmul, job_blocks, jobs
from .jit import kernel
from .jobs import job_counter, next_job
from .rows_or_tiles import zero_padding_


@kernel
def _tile_config():
    """Palette 1; tiles 0-7 all 16 rows x 64 bytes (fp32 accumulators, bf16 x and weight tiles)."""
    config = np.zeros(64, np.uint8)
    config[0] = 1
    for t in range(8):
        config[16 + 2 * t] = TILE_BYTES // TILE_ROWS  # bytes per row
        config[48 + t] = TILE_ROWS
    return config


def matmul_bf16_(out, x16, tiles, bias=None, split=False):
    """out[M, N] = x @ W^T (+ bias, if given: added to each block while the tile unit computes the
    next); x16 is x as ``round_to_bf16_tiles_`` writes it [M'/16, K'/32, 16, 32], tiles is
    ``pack_weight_bf16(W, split)`` [N'/16, K'/32, 16, 32], with twice the k steps if ``split`` (then
    out = x @ (hi + lo)^T). Only real rows and columns are written."""
    bias_or_none = check_matmul(out, x16, tiles, bias, split)
    _matmul_bf16(out, x16, tiles, bias_or_none, bias is not None, numba.get_num_threads())


def matmul_bf16_gelu_tiles_(h16, x16, tiles, bias, m):
    """h16 = gelu(x @ W^T + bias) in bf16 tiles [M'/16, N'/32, 16, 32], the next GEMM's input, written
    from the accumulators with no float32 [M, N] in between. Bit for bit what ``matmul_bf16_``,
    ``bias_gelu_f32_`` and ``round_to_bf16_tiles_`` give one after the other; rows from m on are zero."""
    padded_bias = check_gelu_tiles(h16, x16, tiles, bias)
    _matmul_bf16_gelu_tiles(h16, x16, tiles, padded_bias, bias.shape[0], m, numba.get_num_threads())


@kernel(parallel=True)
def _matmul_bf16(out, x16, tiles, bias, add_bias, threads):  # threads as an argument: get_num_threads() inside a kernel stops caching
    m, n = out.shape
    x_steps, k_steps = x16.shape[1], tiles.shape[1]
    if out.strides[1] != 4:
        raise ValueError("matmul_bf16_: the rows of out must be contiguous float32")
    if x16.shape[0] % 2 or x16.shape[0] * TILE_ROWS < m or k_steps % x_steps or tiles.shape[0] * TILE_ROWS < n:
        raise ValueError("matmul_bf16_: x16 or tiles do not match out (use round_to_bf16_tiles_ and pack_weight_bf16)")
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    config = _tile_config()
    c_stride, out_stride, x_panel, w_panel = BLOCK * 4, out.strides[0], x_steps * TILE_BYTES, k_steps * TILE_BYTES
    n_jobs, counter = jobs(row_blocks, col_blocks), job_counter()
    for _ in prange(threads):  # one worker per thread
        load_tile_config(config.ctypes.data)
        c = np.empty((2, BLOCK, BLOCK), np.float32)  # the block being multiplied, and the one in its epilogue
        done = 0
        prev_c, prev_bias, prev_out = 0, 0, 0  # the previous block, given its bias during this one (0: none)
        while True:
            job = next_job(counter)
            if job >= n_jobs:
                break
            r0, r1, c0, c1 = job_blocks(job, row_blocks, col_blocks)
            for rb in range(r0, r1):
                for cb in range(c0, c1):
                    x, w = x16[2 * rb].ctypes.data, tiles[2 * cb].ctypes.data
                    rows, cols = min(BLOCK, m - rb * BLOCK), min(BLOCK, n - cb * BLOCK)
                    whole = rows == BLOCK and cols == BLOCK
                    block_out = out[rb * BLOCK, cb * BLOCK:].ctypes.data
                    if whole and not add_bias:  # tiles stored straight into out
                        bf16_block_32x32(x, x_panel, x_steps, w, w_panel, k_steps, block_out, out_stride)
                        continue
                    this_c = c[done % 2]  # through c: the bias comes first, and an edge block's padding stays out of out
                    bf16_block_32x32_bias_behind(x, x_panel, x_steps, w, w_panel, k_steps, this_c.ctypes.data, c_stride,
                                                 prev_c, prev_bias, prev_out, out_stride)
                    prev_c = 0
                    if whole:  # its bias added and stored during the next block
                        prev_c, prev_bias, prev_out = this_c.ctypes.data, bias[cb * BLOCK:].ctypes.data, block_out
                        done += 1
                    else:
                        for r in range(rows):
                            for j in range(cols):
                                value = this_c[r, j] + bias[cb * BLOCK + j] if add_bias else this_c[r, j]
                                out[rb * BLOCK + r, cb * BLOCK + j] = value
        if prev_c:
            bias_store_block(prev_c, prev_bias, prev_out, out_stride)
        release_tiles()


@kernel(parallel=True)
def _matmul_bf16_gelu_tiles(h16, x16, tiles, bias, n, m, threads):
    x_steps, k_steps = x16.shape[1], tiles.shape[1]
    if x16.shape[0] % 2 or x16.shape[0] * TILE_ROWS < m or k_steps != x_steps or h16.shape[0] != x16.shape[0]:
        raise ValueError("matmul_bf16_gelu_tiles_: x16, tiles and h16 do not match")
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    config = _tile_config()
    x_panel, w_panel = x_steps * TILE_BYTES, k_steps * TILE_BYTES
    h_tile_stride = h16.shape[1] * TILE_BYTES  # h16[i, cb] to h16[i + 1, cb]
    n_jobs, counter = jobs(row_blocks, col_blocks), job_counter()
    for _ in prange(threads):  # one worker per thread
        load_tile_config(config.ctypes.data)
        c = np.empty((2, BLOCK, BLOCK), np.float32)  # the block being multiplied, and the one in its epilogue
        done = 0
        prev_c, prev_bias, prev_h = 0, 0, 0  # the previous block: accumulators, bias, output tiles (0: none yet)
        while True:
            job = next_job(counter)
            if job >= n_jobs:
                break
            r0, r1, c0, c1 = job_blocks(job, row_blocks, col_blocks)
            for rb in range(r0, r1):
                for cb in range(c0, c1):
                    this_c = c[done % 2].ctypes.data
                    bf16_block_32x32_gelu_behind(x16[2 * rb].ctypes.data, x_panel, x_steps, tiles[2 * cb].ctypes.data, w_panel,
                                                 k_steps, this_c, BLOCK * 4, prev_c, prev_bias, prev_h, h_tile_stride)
                    prev_c, prev_bias, prev_h = this_c, bias[cb * BLOCK:].ctypes.data, h16[2 * rb, cb].ctypes.data
                    done += 1
        if done:
            gelu_to_bf16_block(prev_c, prev_bias, prev_h, h_tile_stride)
        release_tiles()
    zero_padding_(h16, m, n)  # the epilogue ran on whole blocks, padding rows and columns included
