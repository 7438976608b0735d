"""A kernel's float32 output rows, stored either as float32 rows or straight into bf16 tiles.

The AMX GEMM reads its input as bf16 tiles [M'/16, K'/32, 16, 32] (``bf16.py``); a kernel whose
output feeds it can write those tiles itself, instead of float32 rows that a rounding pass reads
again. ``store_scaled_row_`` and ``zero_padding_`` compile to one form or the other by the output's type.
"""

import numpy as np
from numba.extending import overload

from .bf16 import TILE_K, TILE_ROWS, bf16_bits


def store_scaled_row_(out, t, col, values, scale):
    """out[t, col:col + len(values)] = float32(values * scale), the product in float64: a float32
    row, or that float32 rounded on to bf16 tiles. Written as plain loops over contiguous runs
    (a slice assignment per row, or an index computation per element, made attention's last step
    cost as much as its softmax on short sequences)."""


def zero_padding_(out, rows, cols):
    """Tiles: zero the padding (rows from ``rows`` on, columns from ``cols`` on): the GEMM reads it.
    Float32 rows have none."""


@overload(store_scaled_row_)
def _store_scaled_row(out, t, col, values, scale):
    if out.ndim == 4:  # bf16 tiles
        def store_bf16(out, t, col, values, scale):
            c = 0
            while c < values.shape[0]:  # one run per tile row crossed
                j = col + c
                dst, first = out[t // TILE_ROWS, j // TILE_K, t % TILE_ROWS], j % TILE_K
                run = min(TILE_K - first, values.shape[0] - c)
                for i in range(run):
                    dst[first + i] = bf16_bits(np.float32(values[c + i] * scale).view(np.uint32))
                c += run
        return store_bf16

    def store_f32(out, t, col, values, scale):
        for c in range(values.shape[0]):
            out[t, col + c] = np.float32(values[c] * scale)
    return store_f32


@overload(zero_padding_)
def _zero_padding(out, rows, cols):
    if out.ndim == 4:
        def zero_tile_padding(out, rows, cols):
            for t in range(out.shape[0] * TILE_ROWS):
                for j in range(cols if t < rows else 0, out.shape[1] * TILE_K):
                    out[t // TILE_ROWS, j // TILE_K, t % TILE_ROWS, j % TILE_K] = 0
        return zero_tile_padding

    def no_padding(out, rows, cols):
        pass
    return no_padding
