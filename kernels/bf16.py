"""bf16 data for the AMX GEMM: weights packed once into VNNI tiles, activations rounded per call.

Both round float32 to the nearest bf16, ties to even (what torch and oneDNN do): keep the top
16 bits of the float after adding 0x7FFF plus the lowest kept bit. Pure NumPy/Numba: no AMX
instruction here, so this module is safe to import on any CPU.
"""

import numpy as np
from numba import prange

from .jit import kernel

# The tile geometry, shared with the AMX kernels (which import it from here: this module is safe anywhere)
TILE_ROWS = 16               # rows of every tile
TILE_K = 32                  # bf16 elements per tile row (64 bytes)
TILE_BYTES = TILE_ROWS * 64  # one tile, contiguous
BLOCK = 2 * TILE_ROWS        # the micro-kernel's output block is BLOCK x BLOCK


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 array -> uint16 bf16 bit patterns, round to nearest even (the NumPy reference)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def pack_weight_bf16(w: np.ndarray, split: bool = False) -> np.ndarray:
    """[N, K] float32 nn.Linear weight -> [N'/16, K'/32, 16, 32] bf16 VNNI tiles (N' a multiple of
    32, K' of 32, zero-padded). Tile (j, s) holds columns 16j.. and k 32s..; its row r is the k pair
    (2r, 2r + 1) of each of the 16 columns, interleaved, as ``tdpbf16ps`` reads it.

    ``split``: W as two bf16 parts, hi = bf16(W) and lo = bf16(W - hi), their k steps one after the
    other ([N'/16, 2K'/32, 16, 32]); hi + lo holds 16 of W's 24 significant bits where hi holds 8.
    The GEMM multiplies x by both (``matmul_bf16_``) for twice the work of one."""
    hi = to_bf16_bits(w)
    if not split:
        return _vnni_tiles(hi)
    lo = to_bf16_bits(np.asarray(w, np.float32) - bf16_bits_to_f32(hi))
    return np.concatenate([_vnni_tiles(hi), _vnni_tiles(lo)], axis=1)


def _vnni_tiles(bits: np.ndarray) -> np.ndarray:
    n, k = bits.shape
    padded = np.zeros((round_up(n, BLOCK), round_up(k, TILE_K)), np.uint16)
    padded[:n, :k] = bits
    tiles = padded.reshape(padded.shape[0] // TILE_ROWS, TILE_ROWS, padded.shape[1] // TILE_K, TILE_ROWS, 2)
    return np.ascontiguousarray(tiles.transpose(0, 2, 3, 1, 4)).reshape(
        padded.shape[0] // TILE_ROWS, padded.shape[1] // TILE_K, TILE_ROWS, TILE_K)


@kernel
def bf16_bits(u):
    """The bf16 nearest to the float32 with bit pattern u (uint32), ties to even, as uint16 bits."""
    return np.uint16((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))


@kernel(parallel=True)
def round_to_bf16_tiles_(out, x_bits):
    """out[M'/16, K'/32, 16, 32] (uint16; M', K' multiples of 32) = bf16 of the float32 bit patterns
    x_bits[M, K] (``x.view(np.uint32)``) in tile order: tile (i, s) holds rows 16i.. and k 32s..,
    contiguous. Zero in the padding, so padded rows and k steps add exact zeros."""
    m, k = x_bits.shape
    for t in prange(out.shape[0]):
        for s in range(out.shape[1]):
            for r in range(TILE_ROWS):
                i = t * TILE_ROWS + r
                for c in range(TILE_K):
                    j = s * TILE_K + c
                    if i < m and j < k:
                        out[t, s, r, c] = bf16_bits(x_bits[i, j])
                    else:
                        out[t, s, r, c] = 0


def weight_tiles_to_rows(tiles: np.ndarray, split: bool = False) -> np.ndarray:
    """The inverse layout of ``pack_weight_bf16``: [N'/16, K'/32, 16, 32] VNNI tiles -> the bf16
    weight [N', K'] as float32 (padding included); with ``split``, hi + lo (exact in float32: 16
    significant bits)."""
    parts = 2 if split else 1
    n16, k32 = tiles.shape[0], tiles.shape[1] // parts
    pairs = tiles.reshape(n16, parts, k32, TILE_ROWS, TILE_ROWS, 2)  # [column tile, part, k step, k pair, column, k in pair]
    return bf16_bits_to_f32(pairs.transpose(1, 0, 4, 2, 3, 5).reshape(parts, n16 * TILE_ROWS, k32 * TILE_K)).sum(0)


def bf16_tiles_to_rows(tiles: np.ndarray, m: int, k: int) -> np.ndarray:
    """The inverse layout of ``round_to_bf16_tiles_`` (for tests): [M'/16, K'/32, 16, 32] -> [m, k]."""
    return tiles.transpose(0, 2, 1, 3).reshape(tiles.shape[0] * TILE_ROWS, -1)[:m, :k]
