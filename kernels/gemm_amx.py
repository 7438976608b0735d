"""The bf16 GEMM on AMX: out = x @ W^T with bf16 inputs and fp32 accumulation over the full K.

Import only after ``e5np.cpu.choose_precision`` has chosen bf16 (see amx_tile.py). Work is split into jobs of
(GROUP x 32 rows) x (GROUP x 32 columns); a job's x rows and weight panels are read from memory
once and reused from L2 by the 32 x 32 micro-kernel. Each worker thread loads the tile
configuration once and walks its jobs in an order that keeps a weight panel group in L2.
Every output element is one fp32 accumulation over k in a fixed order: a row's result does
not depend on the other rows in the batch, nor on the thread count.
"""

import numba
import numpy as np
from numba import prange

from .amx_tile import bf16_block_32x32, load_tile_config, release_tiles
from .bf16 import BLOCK, TILE_BYTES, TILE_K, TILE_ROWS
from .jit import kernel

GROUP = 4  # 32-blocks per job side


@kernel
def _tile_config():
    """Palette 1; tiles 0-7 all 16 rows x 64 bytes (fp32 accumulators, bf16 x and weight tiles)."""
    config = np.zeros(64, np.uint8)
    config[0] = 1
    for t in range(8):
        config[16 + 2 * t] = TILE_BYTES // TILE_ROWS  # bytes per row
        config[48 + t] = TILE_ROWS
    return config


def matmul_bf16_(out, x16, tiles):
    """out[M, N] = x @ W^T; x16 is x as ``round_to_bf16_tiles_`` writes it [M'/16, K'/32, 16, 32],
    tiles is ``pack_weight_bf16(W)`` [N'/16, K'/32, 16, 32]. Only real rows and columns are written."""
    # the micro-kernel reads raw addresses: other dtypes or layouts would give wrong numbers, not an error
    for name, a in (("x16", x16), ("tiles", tiles)):
        if a.dtype != np.uint16 or a.ndim != 4 or a.shape[2:] != (TILE_ROWS, TILE_K) or not a.flags.c_contiguous:
            raise ValueError(f"matmul_bf16_: {name} must be C-contiguous uint16 tiles [.., .., 16, 32]")
    if out.dtype != np.float32:
        raise ValueError("matmul_bf16_: out must be float32")
    _matmul_bf16(out, x16, tiles, numba.get_num_threads())


@kernel(parallel=True)
def _matmul_bf16(out, x16, tiles, threads):  # threads as an argument: get_num_threads() inside a kernel stops caching
    m, n = out.shape
    k_steps = x16.shape[1]
    if out.strides[1] != 4:
        raise ValueError("matmul_bf16_: the rows of out must be contiguous float32")
    if x16.shape[0] % 2 or x16.shape[0] * TILE_ROWS < m or tiles.shape[1] != k_steps or tiles.shape[0] * TILE_ROWS < n:
        raise ValueError("matmul_bf16_: x16 or tiles do not match out (use round_to_bf16_tiles_ and pack_weight_bf16)")
    row_blocks, col_blocks = -(-m // BLOCK), tiles.shape[0] // 2
    row_groups, col_groups = -(-row_blocks // GROUP), -(-col_blocks // GROUP)
    jobs = row_groups * col_groups
    config = _tile_config()
    c_stride, out_stride, panel_bytes = BLOCK * 4, out.strides[0], k_steps * TILE_BYTES
    for t in prange(threads):
        load_tile_config(config.ctypes.data)
        c = np.empty((BLOCK, BLOCK), np.float32)
        for job in range(t, jobs, threads):
            cg, rg = job // row_groups, job % row_groups  # neighbouring jobs share weight panels
            for cb in range(cg * GROUP, min(col_blocks, (cg + 1) * GROUP)):
                w = tiles[2 * cb].ctypes.data
                for rb in range(rg * GROUP, min(row_blocks, (rg + 1) * GROUP)):
                    rows, cols = min(BLOCK, m - rb * BLOCK), min(BLOCK, n - cb * BLOCK)
                    if rows == BLOCK and cols == BLOCK:  # tiles stored straight into out
                        bf16_block_32x32(x16[2 * rb].ctypes.data, panel_bytes, w, panel_bytes, k_steps,
                                         out[rb * BLOCK, cb * BLOCK:].ctypes.data, out_stride)
                    else:  # an edge block: through c, so padding rows and columns never reach out
                        bf16_block_32x32(x16[2 * rb].ctypes.data, panel_bytes, w, panel_bytes, k_steps, c.ctypes.data, c_stride)
                        out[rb * BLOCK:rb * BLOCK + rows, cb * BLOCK:cb * BLOCK + cols] = c[:rows, :cols]
        release_tiles()
