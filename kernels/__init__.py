"""e5np's Numba kernels: one concern per module, each with a plain-NumPy twin in ``reference``.

Importable as ``e5np.kernels`` (never as a top-level ``kernels`` module).
"""

from .attention import attention_
from .embeddings import embed_layernorm_
from .gelu import add_bias_, bias_gelu_
from .gemm import matmul_blas, matmul_packed_, pack_weight
from .layernorm import bias_residual_layernorm_
from .pooling import pool_
from .softmax import exp_scores_


def bf16_kernels(gemm_name: str):
    """The module of a bf16 GEMM ("amx-bf16" or "avx512-bf16"), imported only once
    ``e5np.runtime.choose_precision`` found its instructions: compiling one the CPU lacks aborts LLVM."""
    if gemm_name == "amx-bf16":
        from . import gemm_amx
        return gemm_amx
    from . import gemm_dpbf16
    return gemm_dpbf16


__all__ = ["bf16_kernels", "attention_", "embed_layernorm_", "add_bias_", "bias_gelu_", "matmul_blas", "matmul_packed_",
           "pack_weight", "bias_residual_layernorm_", "pool_", "exp_scores_"]
