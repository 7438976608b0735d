"""int8 data for the VNNI GEMM: weights quantized once, activations per token, and the NumPy twin.

The scheme (chosen by measurement: ``benchmarks/int8_quality.py``, ``docs/precision.md``):

- weights: int8 per output channel, symmetric: w_scale[n] = max_k |W'[n, k]| / 127, where
  W' = W * smooth (a per-input-channel factor, 1 where nothing is migrated; SmoothQuant's);
- activations: uint8 per token, asymmetric: v = x / smooth, lo = min(v, 0), hi = max(v, 0),
  scale = (hi - lo) / 255, zero = rint(-lo / scale), q = clip(rint(v / scale) + zero, 0, 255).
  One scale per token: a token's codes do not depend on the other tokens of the batch;
- the product: ``vpdpbusd`` multiplies uint8 by int8 and sums in int32, exactly (K <= 8192 keeps
  255 * 127 * K below 2^31); the zero point comes off exactly too, as zero[t] * colsum[n];
- out[t, n] = float32(acc[t, n] - zero[t] * colsum[n]) * scale[t] * w_scale[n] (+ bias[n], in one FMA);
- outlier channels: the OUTLIER_CHANNELS input channels of each GEMM with the largest calibrated
  range (after smoothing) stay float32, LLM.int8's decomposition: their weight columns are zero in
  the int8 weight, their activations zero before quantization (inv_smooth 0), and the epilogue adds
  x[t, c] * W[n, c] for each, one FMA each, in channel order. One channel of 24 where the rest stay
  below 6 (all-MiniLM-L6-v2's FFN-out input) would otherwise leave the others a quarter of the levels.

Layouts, as the bf16 GEMM's (``bf16.py``) with k quads for k pairs: a tile is 16 rows of 64 bytes;
x as uint8 tiles [M'/16, K'/64, 16, 64] (row r: 64 consecutive k of token r), W as VNNI tiles
[N'/16, K'/64, 16, 64] whose row p holds k quad p of 16 columns, one ``vpdpbusd`` operand.
Pure NumPy/Numba, no VNNI instruction: safe to import on any CPU.
"""

import numpy as np
from numba import prange

from .bf16 import BLOCK, TILE_ROWS, round_up
from .jit import kernel

TILE_K8 = 64  # int8 elements per tile row (64 bytes)
QUAD = 4      # k per vpdpbusd lane
SMOOTHING_ALPHA = 0.5  # SmoothQuant's migration strength (0.5 measured above 0.75: docs/precision.md)
OUTLIER_CHANNELS = 4  # per GEMM, kept float32 (1 did most of it, 4 a little more: docs/precision.md)


def smoothing(activation_max: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's per-input-channel factor s[k] = a[k]^alpha / max_n |W[n, k]|^(1 - alpha)
    (x / s into the int8 activations, W * s into the int8 weights: x @ W^T unchanged), normalised
    to geometric mean 1. ``activation_max``: the channel's largest |x| (estimated)."""
    a = np.maximum(np.asarray(activation_max, np.float64), 1e-6)
    w = np.maximum(np.abs(np.asarray(weight, np.float64)).max(axis=0), 1e-6)
    s = a ** alpha / w ** (1 - alpha)
    return (s / np.exp(np.log(s).mean())).astype(np.float32)


def outlier_channels(activation_max: np.ndarray, smooth: np.ndarray | None = None,
                     count: int = OUTLIER_CHANNELS) -> np.ndarray:
    """The ``count`` input channels of largest range as they reach the quantizer (after smoothing),
    in channel order."""
    if count == 0:
        return np.zeros(0, np.int64)
    a = np.asarray(activation_max, np.float32) / (np.float32(1) if smooth is None else smooth)
    return np.sort(np.argsort(a, kind="stable")[-count:]).astype(np.int64)


def split_outliers(w: np.ndarray, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W [N, K] -> (W with the ``channels`` columns zero: the int8 part, W[:, channels]^T float32
    [len(channels), N]: the float32 part)."""
    w = np.array(w, np.float32)
    outlier_w = np.ascontiguousarray(w[:, channels].T)
    w[:, channels] = 0
    return w, outlier_w


def quantize_weight(w: np.ndarray, smooth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[N, K] float32 -> (int8 [N, K], w_scale float32 [N], colsum int32 [N]) as the module says."""
    w = np.asarray(w, np.float32)
    if smooth is not None:
        w = w * smooth[None, :]
    scale = (np.abs(w).max(axis=1) / np.float32(127)).astype(np.float32)
    scale[scale == 0] = 1
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale, q.astype(np.int32).sum(axis=1, dtype=np.int32)


def quantize_rows(x: np.ndarray, inv_smooth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[M, K] float32 -> (uint8 [M, K], scale float32 [M], zero int32 [M]): the NumPy twin of
    ``quantize_rows_to_tiles_``, the same float32 operations in the same order."""
    v = np.asarray(x, np.float32)
    if inv_smooth is not None:
        v = v * inv_smooth[None, :]
    lo, hi = np.minimum(v.min(axis=1), 0), np.maximum(v.max(axis=1), 0)
    scale = ((hi - lo) / np.float32(255)).astype(np.float32)
    scale[scale == 0] = 1
    inv = (np.float32(1) / scale).astype(np.float32)
    zero = np.clip(np.rint(-lo * inv), 0, 255).astype(np.int32)
    q = np.clip(np.rint(v * inv[:, None]) + zero[:, None], 0, 255).astype(np.uint8)
    return q, scale, zero


def matmul_int8(xq, scale, zero, wq, w_scale, colsum, bias=None, outlier_x=None, outlier_w=None) -> np.ndarray:
    """The GEMM's twin: exact integer sums, then the epilogue. The sums run in float64 (BLAS; NumPy's
    integer matmul has none), exact as integers: every product and partial sum is below 2^53.
    Without a bias or outliers it is the kernel bit for bit; with them, the kernel's FMAs round once
    where this rounds twice. ``outlier_x`` [M, c], ``outlier_w`` [c, N]: the float32 channels."""
    acc = (xq.astype(np.float64) @ wq.astype(np.float64).T).astype(np.int64) - zero[:, None].astype(np.int64) * colsum[None, :]
    out = acc.astype(np.int32).astype(np.float32) * scale[:, None] * w_scale[None, :]
    if bias is not None:
        out = out + bias[None, :]
    for c in range(0 if outlier_x is None else outlier_x.shape[1]):
        out = out + outlier_x[:, c:c + 1] * outlier_w[c][None, :]
    return out


def pack_weight_int8(wq: np.ndarray) -> np.ndarray:
    """int8 [N, K] -> VNNI tiles [N'/16, K'/64, 16, 64] (N' a multiple of 32, K' of 64, zero-padded).
    Tile (j, s) holds columns 16j.. and k 64s..; its row p is k quad (4p .. 4p + 3) of each column."""
    n, k = wq.shape
    padded = np.zeros((round_up(n, BLOCK), round_up(k, TILE_K8)), np.int8)
    padded[:n, :k] = wq
    tiles = padded.reshape(padded.shape[0] // TILE_ROWS, TILE_ROWS, padded.shape[1] // TILE_K8, TILE_ROWS, QUAD)
    return np.ascontiguousarray(tiles.transpose(0, 2, 3, 1, 4)).reshape(
        padded.shape[0] // TILE_ROWS, padded.shape[1] // TILE_K8, TILE_ROWS, TILE_K8)


def rows_to_tiles(q: np.ndarray) -> np.ndarray:
    """uint8 [M, K] -> tiles [M'/16, K'/64, 16, 64] (M' a multiple of 32), zero-padded: the twin of
    the layout ``quantize_rows_to_tiles_`` writes."""
    m, k = q.shape
    padded = np.zeros((round_up(m, BLOCK), round_up(k, TILE_K8)), np.uint8)
    padded[:m, :k] = q
    return np.ascontiguousarray(padded.reshape(padded.shape[0] // TILE_ROWS, TILE_ROWS, -1, TILE_K8)
                                .transpose(0, 2, 1, 3))


@kernel(row_reduction=True)
def _row_range(x, i, inv_smooth):
    """min(x[i] / smooth, 0) and max(..., 0): exact whatever the order, so LLVM may vectorize it."""
    lo, hi = np.float32(0), np.float32(0)
    for j in range(x.shape[1]):
        v = x[i, j] * inv_smooth[j]
        lo, hi = min(lo, v), max(hi, v)
    return lo, hi


@kernel
def _codes(v, inv, z):
    return np.uint8(min(max(np.rint(v * inv) + z, np.float32(0)), np.float32(255)))


@kernel(parallel=True)
def quantize_rows_to_tiles_(out, scale, zero, x, inv_smooth):
    """``quantize_rows`` into uint8 tiles ``out`` [M'/16, K'/64, 16, 64], scale and zero per row.
    Zero in the padding: padded k add exact zeros (padded rows' outputs are never stored)."""
    m, k = x.shape
    full_steps = k // TILE_K8
    for i in prange(m, out.shape[0] * TILE_ROWS):
        out[i // TILE_ROWS, :, i % TILE_ROWS, :] = 0
    for i in prange(m):
        lo, hi = _row_range(x, i, inv_smooth)
        s = (hi - lo) / np.float32(255)
        if s == 0:
            s = np.float32(1)
        inv = np.float32(1) / s
        z = min(max(np.rint(-lo * inv), np.float32(0)), np.float32(255))
        scale[i], zero[i] = s, np.int32(z)
        t, r = i // TILE_ROWS, i % TILE_ROWS
        for step in range(full_steps):  # 64 contiguous codes a tile row
            row = out[t, step, r]
            for c in range(TILE_K8):
                j = step * TILE_K8 + c
                row[c] = _codes(x[i, j] * inv_smooth[j], inv, z)
        for step in range(full_steps, out.shape[1]):  # the last, partial k step, and padding
            row = out[t, step, r]
            for c in range(TILE_K8):
                j = step * TILE_K8 + c
                row[c] = _codes(x[i, j] * inv_smooth[j], inv, z) if j < k else np.uint8(0)
