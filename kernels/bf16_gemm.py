"""What the two bf16 GEMMs (``gemm_amx.py`` on AMX tiles, ``gemm_dpbf16.py`` on AVX512-BF16) share:
the checks on their operands, and how their work is cut into jobs. No bf16 instruction here.

Both multiply x as ``round_to_bf16_tiles_`` writes it [M'/16, K'/32, 16, 32] by W as
``pack_weight_bf16(W, split)`` writes it [N'/16, K'/32, 16, 32] (twice the k steps if split). Their
micro-kernels read raw addresses: operands of another dtype or layout would give wrong numbers,
not an error, so the wrappers check them first.

Jobs: one 32-row block of x against JOB_COLS 32-column weight panels. The x block stays in cache
while the panels stream past and the output rows are written in long runs (on AMX, jobs of 4 x 4
blocks measured 10 to 30% slower); neighbouring jobs share their weight panels.
"""

import numpy as np

from .bf16 import TILE_K, TILE_ROWS
from .jit import kernel

JOB_ROWS, JOB_COLS = 1, 16  # 32-blocks per job


def check_tiles(caller, **arrays):
    for name, a in arrays.items():
        if a.dtype != np.uint16 or a.ndim != 4 or a.shape[2:] != (TILE_ROWS, TILE_K) or not a.flags.c_contiguous:
            raise ValueError(f"{caller}: {name} must be C-contiguous uint16 tiles [.., .., 16, 32]")


def check_matmul(out, x16, tiles, bias, split) -> np.ndarray:
    """The operands of ``matmul_bf16_``; returns the bias to pass (empty when there is none)."""
    check_tiles("matmul_bf16_", x16=x16, tiles=tiles)
    if out.dtype != np.float32:
        raise ValueError("matmul_bf16_: out must be float32")
    if bias is not None and (bias.dtype != np.float32 or bias.shape != (out.shape[1],)):
        raise ValueError("matmul_bf16_: bias must be float32 [N]")
    if tiles.shape[1] != (2 if split else 1) * x16.shape[1]:
        raise ValueError(f"matmul_bf16_: x16 has {x16.shape[1]} k steps, the weight tiles {tiles.shape[1]}"
                         f"{' (split: hi and lo)' if split else ''}; they do not match")
    return np.zeros(0, np.float32) if bias is None else bias


def check_gelu_tiles(h16, x16, tiles, bias) -> np.ndarray:
    """The operands of ``matmul_bf16_gelu_tiles_``; returns the bias padded to whole 32-column blocks."""
    check_tiles("matmul_bf16_gelu_tiles_", h16=h16, x16=x16, tiles=tiles)
    if tiles.shape[1] != x16.shape[1]:
        raise ValueError("matmul_bf16_gelu_tiles_: x16 and the weight tiles differ in k steps (split weights: not here)")
    if bias.dtype != np.float32 or h16.shape[1] * TILE_K != tiles.shape[0] * TILE_ROWS or bias.shape[0] > h16.shape[1] * TILE_K:
        raise ValueError("matmul_bf16_gelu_tiles_: h16 or bias do not match the weight tiles")
    padded_bias = np.zeros(h16.shape[1] * TILE_K, np.float32)  # so that every block reads 32 biases
    padded_bias[:bias.shape[0]] = bias
    return padded_bias


@kernel
def job_blocks(job, row_blocks, col_blocks):
    """The 32-blocks of one job: rows [r0, r1) x columns [c0, c1)."""
    row_groups = -(-row_blocks // JOB_ROWS)
    cg, rg = job // row_groups, job % row_groups
    return rg * JOB_ROWS, min(row_blocks, (rg + 1) * JOB_ROWS), cg * JOB_COLS, min(col_blocks, (cg + 1) * JOB_COLS)


@kernel
def jobs(row_blocks, col_blocks):
    return -(-row_blocks // JOB_ROWS) * -(-col_blocks // JOB_COLS)
