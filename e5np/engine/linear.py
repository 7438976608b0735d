"""The seam every Linear layer goes through: which GEMM runs, and the weight layout it wants.

- ``"numba"``: e5np's own fp32 GEMM (``kernels/gemm.py``), weights packed once at load. A
  token's output does not depend on which other tokens share the batch (bit for bit).
- ``"blas"``: NumPy's BLAS on the checkpoint's memory-mapped weights, no copy.
- ``"amx-bf16"``: bf16 inputs, fp32 accumulation on AMX tiles (``kernels/gemm_amx.py``); weights
  packed once at load into bf16 VNNI tiles (half the memory), activations rounded to bf16 on the
  way in. Batch-invariant bit for bit too. Only after ``e5np.runtime.choose_precision`` chose it.
  ``split`` weights are held as two bf16 parts, hi + lo (16 of the weight's 24 bits, twice the
  GEMM work): the model uses them where one part's rounding costs the most (``weights.py``).
- ``"avx512-bf16"``: the same bf16 layouts and epilogues, multiplied with AVX512-BF16's
  ``vdpbf16ps`` where there is no AMX (``kernels/gemm_dpbf16.py``). Only after ``choose_precision``.
"""

from dataclasses import dataclass

import numpy as np

from ..kernels import add_bias_, bf16, bf16_kernels, bias_gelu_, gemm
from .workspace import Workspace

GEMMS = ("numba", "blas", "amx-bf16", "avx512-bf16")
BF16_GEMMS = ("amx-bf16", "avx512-bf16")


@dataclass(frozen=True)
class Linear:
    """y = x @ W^T + b (nn.Linear), with W held in the layout the chosen GEMM reads."""
    weight: np.ndarray  # [N, K] for "blas"; [ceil(N/32), K, 32] panels for "numba"; bf16 tiles for the bf16 GEMMs
    bias: np.ndarray    # [N]
    out_features: int
    gemm: str
    split: bool = False  # bf16 weights as hi + lo bf16 parts (``pack_weight_bf16``)

    @classmethod
    def from_checkpoint(cls, weight: np.ndarray, bias: np.ndarray, gemm_name: str, split: bool = False) -> "Linear":
        """``split``: on a bf16 GEMM, hold W as bf16 hi + lo (the fp32 GEMMs use W as it is)."""
        return cls.from_packed(cls.pack(weight, gemm_name, split), bias, gemm_name, split)

    @classmethod
    def from_packed(cls, prepared: np.ndarray, bias: np.ndarray, gemm_name: str, split: bool = False) -> "Linear":
        """A Linear from ``pack``'s output (as the packed-weight cache gives it back)."""
        return cls(prepared, np.ascontiguousarray(bias, dtype=np.float32), bias.shape[0], gemm_name,
                   split and gemm_name in BF16_GEMMS)

    @staticmethod
    def pack(weight: np.ndarray, gemm_name: str, split: bool = False) -> np.ndarray:
        """W [N, K] in the layout ``gemm_name`` reads (``split`` as in ``from_checkpoint``)."""
        if gemm_name not in GEMMS:
            raise ValueError(f"gemm must be one of {GEMMS}, not {gemm_name!r}")
        if gemm_name == "numba":
            return gemm.pack_weight(weight)
        if gemm_name in BF16_GEMMS:
            return bf16.pack_weight_bf16(weight, split)
        return weight

    def matmul(self, x: np.ndarray, out: np.ndarray, ws: Workspace) -> np.ndarray:
        """out = x @ W^T (the bias is left to the fused epilogue that follows). x is float32 rows,
        or, on a bf16 path, bf16 tiles already (written by the epilogue before: GELU, LayerNorm)."""
        if self.gemm == "numba":
            x_panels = (ws.get("x micro-panels", gemm.x_panel_size(*x.shape), 1).reshape(-1)
                        if gemm.packs_x(self.weight.shape[0]) else None)
            gemm.matmul_packed_(out, x, self.weight, x_panels)
        elif self.reads_tiles:
            bf16_kernels(self.gemm).matmul_bf16_(out, self._as_tiles(x, ws), self.weight, split=self.split)
        else:
            gemm.matmul_blas(out, x, self.weight)
        return out

    def matmul_bias(self, x: np.ndarray, out: np.ndarray, ws: Workspace) -> np.ndarray:
        """out = x @ W^T + b (x as ``matmul`` takes it); on the AMX path the bias is added to each
        block of the output while the tile unit computes the next one, not in a pass of its own."""
        if not self.reads_tiles:
            add_bias_(self.matmul(x, out, ws), self.bias)
            return out
        bf16_kernels(self.gemm).matmul_bf16_(out, self._as_tiles(x, ws), self.weight, self.bias, self.split)
        return out

    def matmul_gelu(self, x: np.ndarray, rows: int, ws: Workspace) -> np.ndarray:
        """gelu(x @ W^T + b), erf form, as the next Linear's input: float32 rows [T, N], or on the
        AMX path bf16 tiles written by the GEMM's epilogue (no float32 [T, N], no rounding pass).
        x as ``matmul`` takes it; ``rows`` = T (tiles are padded)."""
        if not self.reads_tiles:
            h = self.matmul(x, ws.get("ffn", rows, self.out_features), ws)
            bias_gelu_(h, self.bias)
            return h
        h16 = self._tiles_buffer("ffn in bf16 tiles", rows, self.weight.shape[0] // 2, ws)
        bf16_kernels(self.gemm).matmul_bf16_gelu_tiles_(h16, self._as_tiles(x, ws), self.weight, self.bias, rows)
        return h16

    def input_rows(self, x: np.ndarray, start: int, count: int) -> np.ndarray:
        """Rows start..start+count of x as ``matmul`` takes it: a row slice of float32 rows, or of
        bf16 tiles (whole 32-row blocks; start must be a multiple of 32)."""
        if x.dtype != np.uint16:
            return x[start:start + count]
        if start % bf16.BLOCK:
            raise ValueError(f"bf16 tiles are sliced at multiples of {bf16.BLOCK} rows, not at row {start}")
        return x[start // bf16.TILE_ROWS:(start + bf16.round_up(count, bf16.BLOCK)) // bf16.TILE_ROWS]

    @property
    def reads_tiles(self) -> bool:
        """Whether ``matmul`` reads bf16 tiles (and would round float32 rows into them first)."""
        return self.gemm in BF16_GEMMS

    def input_tiles(self, rows: int, ws: Workspace) -> np.ndarray:
        """The workspace buffer of bf16 tiles this Linear reads, for ``rows`` input rows."""
        k_steps = self.weight.shape[1] // (2 if self.split else 1)
        return self._tiles_buffer(f"x in bf16 tiles, K/32 = {k_steps}", rows, k_steps, ws)

    def _as_tiles(self, x: np.ndarray, ws: Workspace) -> np.ndarray:
        """x as bf16 tiles: as given if it is already (uint16), else float32 rows rounded into them."""
        if x.dtype == np.uint16:
            return x
        x16 = self.input_tiles(x.shape[0], ws)
        bf16.round_to_bf16_tiles_(x16, np.ascontiguousarray(x).view(np.uint32))
        return x16

    @staticmethod
    def _tiles_buffer(name: str, rows: int, k_steps: int, ws: Workspace) -> np.ndarray:
        """A workspace buffer of bf16 tiles [rows'/16, k_steps, 16, 32], rows' = rows rounded up to 32."""
        row_tiles = bf16.round_up(rows, bf16.BLOCK) // bf16.TILE_ROWS
        return ws.get(name, row_tiles, k_steps * bf16.TILE_ROWS * bf16.TILE_K, np.uint16).reshape(
            row_tiles, k_steps, bf16.TILE_ROWS, bf16.TILE_K)
