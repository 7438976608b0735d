"""A Linear on the int8 path (``precision="int8"``): the same seam as ``linear.Linear``, int8 inside.

W is held quantized once (int8 per output channel, VNNI tiles, ``kernels/int8.py``); each call
quantizes its float32 input rows per token into uint8 tiles (a token's codes depend on that token
alone), multiplies with ``vpdpbusd`` in exact int32 (``kernels/gemm_vnni.py``) and writes float32
rows, bias and GELU added in the GEMM's epilogue. ``inv_smooth`` divides the input channel by
channel before it is quantized (SmoothQuant's migration; W was multiplied by the same factors); the
few outlier channels stay float32 (their inv_smooth is 0, their float32 weights are added in the
epilogue: LLM.int8's decomposition).
"""

from dataclasses import dataclass

import numpy as np

from ..kernels import int8
from .workspace import Workspace

GEMM = "vnni-int8"
SMOOTHED = ("qkv", "ffn_in")  # the LayerNorm-fed GEMMs: migrated (the other two measured no better so)


@dataclass(frozen=True)
class Int8Linear:
    """y = x @ W^T + b with W as int8 VNNI tiles; float32 rows in and out."""
    weight: np.ndarray      # int8 tiles [N'/16, K'/64, 16, 64]
    w_scale: np.ndarray     # float32 [N]: W'[n] = w_scale[n] * weight codes
    colsum: np.ndarray      # int32 [N]: sum over k of the codes (takes the activations' zero points off)
    inv_smooth: np.ndarray  # float32 [K]: 1 / the migration factor of each input channel (1: none, 0: outlier)
    outlier_channels: np.ndarray  # int64 [c]: the input channels kept float32
    outlier_weight: np.ndarray    # float32 [c, N']: their weights, W[:, channels]^T (zero past N)
    bias: np.ndarray        # float32 [N]
    out_features: int
    zero_bias: np.ndarray   # float32 zeros [N'], the epilogue's bias where the bias is left to a later step
    gemm: str = GEMM
    reads_tiles = False     # float32 rows in: the quantization is this Linear's own first step
    PARTS = ("weight", "w_scale", "colsum", "inv_smooth", "outlier_channels", "outlier_weight")  # ``pack``'s

    @staticmethod
    def pack(weight: np.ndarray, activation_max: np.ndarray, smooth: bool) -> dict[str, np.ndarray]:
        """The arrays an Int8Linear is made of (what the packed-weight cache stores), from W [N, K] and
        the calibrated largest |x| of each input channel; ``smooth``: migrate (SmoothQuant) or not."""
        factors = int8.smoothing(activation_max, weight, int8.SMOOTHING_ALPHA) if smooth else None
        channels = int8.outlier_channels(activation_max, factors)
        int8_part, outlier_weight = int8.split_outliers(weight, channels)
        codes, w_scale, colsum = int8.quantize_weight(int8_part, factors)
        inv_smooth = np.ones(weight.shape[1], np.float32) if factors is None else (np.float32(1) / factors).astype(np.float32)
        inv_smooth[channels] = 0  # the outlier channels reach the int8 GEMM as zeros
        return {"weight": int8.pack_weight_int8(codes), "w_scale": w_scale, "colsum": colsum,
                "inv_smooth": inv_smooth, "outlier_channels": channels, "outlier_weight": outlier_weight}

    @classmethod
    def from_packed(cls, arrays: dict[str, np.ndarray], bias: np.ndarray) -> "Int8Linear":
        """An Int8Linear from ``pack``'s arrays; the per-column ones padded to the tiles' N' (the GEMM's
        epilogue reads whole 32-column blocks)."""
        from ..kernels.gemm_vnni import padded

        n_padded = arrays["weight"].shape[0] * int8.TILE_ROWS
        outlier_weight = np.zeros((arrays["outlier_weight"].shape[0], n_padded), np.float32)
        outlier_weight[:, :bias.shape[0]] = arrays["outlier_weight"]
        return cls(arrays["weight"], padded(arrays["w_scale"], n_padded, np.float32),
                   padded(arrays["colsum"], n_padded, np.int32), arrays["inv_smooth"],
                   np.asarray(arrays["outlier_channels"], np.int64), outlier_weight,
                   np.ascontiguousarray(bias, dtype=np.float32), bias.shape[0], np.zeros(n_padded, np.float32))

    def matmul(self, x: np.ndarray, out: np.ndarray, ws: Workspace) -> np.ndarray:
        """out = x @ W^T, x float32 rows (quantized here, per token)."""
        return self._matmul(x, out, ws, self.zero_bias)

    def matmul_bias(self, x: np.ndarray, out: np.ndarray, ws: Workspace) -> np.ndarray:
        """out = x @ W^T + b, the bias added in the GEMM's epilogue."""
        return self._matmul(x, out, ws, self.bias)

    def matmul_gelu(self, x: np.ndarray, rows: int, ws: Workspace) -> np.ndarray:
        """gelu(x @ W^T + b), erf form, float32 rows [rows, N]: bias and GELU in the GEMM's epilogue."""
        return self._matmul(x, ws.get("ffn", rows, self.out_features), ws, self.bias, gelu=True)

    def input_rows(self, x: np.ndarray, start: int, count: int) -> np.ndarray:
        return x[start:start + count]

    def _matmul(self, x, out, ws, bias, gelu=False):
        from ..kernels.gemm_vnni import matmul_int8_  # only after choose_precision found VNNI

        rows = x.shape[0]
        row_tiles = int8.round_up(rows, int8.BLOCK) // int8.TILE_ROWS
        xq = ws.get(f"x in uint8 tiles, K/64 = {self.weight.shape[1]}", row_tiles,
                    self.weight.shape[1] * int8.TILE_ROWS * int8.TILE_K8, np.uint8).reshape(
            row_tiles, self.weight.shape[1], int8.TILE_ROWS, int8.TILE_K8)
        scale, zero = ws.get("x scales", rows, 1)[:, 0], ws.get("x zero points", rows, 1, np.int32)[:, 0]
        x = np.ascontiguousarray(x)
        int8.quantize_rows_to_tiles_(xq, scale, zero, x, self.inv_smooth)
        outlier_x = ws.get(f"x outlier channels, K = {x.shape[1]}", rows, self.outlier_channels.shape[0])
        np.take(x, self.outlier_channels, axis=1, out=outlier_x)
        matmul_int8_(out, xq, scale, zero, self.weight, self.w_scale, self.colsum, bias, gelu, outlier_x,
                     self.outlier_weight)
        return out
