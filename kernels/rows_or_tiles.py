"""A kernel's float32 output rows, stored either as float32 rows or straight into bf16 tiles.

The AMX GEMM reads its input as bf16 tiles [M'/16, K'/32, 16, 32] (``bf16.py``); a kernel whose
output feeds it can write those tiles itself, instead of float32 rows that a rounding pass reads
again. ``store_row_`` and ``zero_padding_`` compile to one form or the other by the output's type.
"""

import numpy as np
from numba.extending import overload

from .bf16 import TILE_K, TILE_ROWS, bf16_bits


def store_row_(out, t, col, values):
    """out[t, col:col + len(values)] = values (float32): a float32 row, or rounded to bf16 tiles."""


def zero_padding_(out, rows, cols):
    """Tiles: zero the padding (rows from ``rows`` on, columns from ``cols`` on): the GEMM reads it.
    Float32 rows have none."""


@overload(store_row_)
def _store_row(out, t, col, values):
    if out.ndim == 4:  # bf16 tiles
        def store_bf16(out, t, col, values):
            bits = values.view(np.uint32)
            for c in range(values.shape[0]):
                j = col + c
                out[t // TILE_ROWS, j // TILE_K, t % TILE_ROWS, j % TILE_K] = bf16_bits(bits[c])
        return store_bf16

    def store_f32(out, t, col, values):
        out[t, col:col + values.shape[0]] = values
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
