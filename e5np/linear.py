"""The seam every Linear layer goes through: which GEMM runs, and the weight layout it wants.

- ``"numba"``: e5np's own GEMM (``kernels/gemm.py``), weights packed once at load. A token's
  output does not depend on which other tokens share the batch (bit for bit).
- ``"blas"``: NumPy's BLAS on the checkpoint's memory-mapped weights, no copy.
"""

from dataclasses import dataclass

import numpy as np

from .kernels import gemm

GEMMS = ("numba", "blas")


@dataclass(frozen=True)
class Linear:
    """y = x @ W^T + b (nn.Linear), with W held in the layout the chosen GEMM reads."""
    weight: np.ndarray  # [N, K] for "blas"; [ceil(N/NR), K, NR] panels for "numba"
    bias: np.ndarray    # [N]
    out_features: int
    gemm: str

    @classmethod
    def from_checkpoint(cls, weight: np.ndarray, bias: np.ndarray, gemm_name: str) -> "Linear":
        if gemm_name not in GEMMS:
            raise ValueError(f"gemm must be one of {GEMMS}, not {gemm_name!r}")
        prepared = gemm.pack_weight(weight) if gemm_name == "numba" else weight
        return cls(prepared, np.ascontiguousarray(bias, dtype=np.float32), weight.shape[0], gemm_name)

    def matmul(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = x @ W^T (the bias is left to the fused epilogue that follows)."""
        if self.gemm == "numba":
            gemm.matmul_packed_(out, x, self.weight)
        else:
            gemm.matmul_blas(out, x, self.weight)
        return out
